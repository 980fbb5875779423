#include "codegen.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <mutex>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>

#include "convgen/error.h"

extern char** environ;

namespace convgen::codegen {
namespace fs = std::filesystem;
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return text;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (size_t i = 0; i < items.size(); i++) text += (i ? separator : "") + items[i];
  return text;
}

bool is_identifier(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes through a temporary file and a rename, so a reader never sees half a file.
void write_file(const fs::path& path, const std::string& content) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw Error(ErrorId::io_error, path.string(), "cannot write");
  }
  fs::rename(tmp, path);
}

// Runs `argv` with stdout and stderr going to `log`; returns the exit status (-1: not started).
int run_logged(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The last lines of a generator log, for an error message.
std::string tail(const fs::path& log) {
  const std::string text = read_file(log);
  size_t at = text.size();
  for (int lines = 0; lines < 4 && at > 0; lines++) at = text.rfind('\n', at - 1);
  std::string last = text.substr(at == std::string::npos ? 0 : at);
  std::replace(last.begin(), last.end(), '\n', ' ');
  return last;
}

// What makes a kernel's build unique: its command line and the generator executable it ran.
std::string stamp_of(const std::vector<std::string>& command, const fs::path& generator) {
  struct stat info {};
  stat(generator.c_str(), &info);
  return join(command, " ") + "\n" + std::to_string(info.st_size) + " " +
         std::to_string(info.st_mtim.tv_sec) + "." + std::to_string(info.st_mtim.tv_nsec) + "\n";
}

std::vector<fs::path> objects_in(const fs::path& dir) {
  std::vector<fs::path> objects;
  if (!fs::is_directory(dir)) return objects;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".o") objects.push_back(entry.path());
  }
  std::sort(objects.begin(), objects.end());
  return objects;
}

std::vector<std::string> with_feature(const std::vector<std::string>& targets,
                                      const std::string& feature) {
  std::vector<std::string> result;
  for (const std::string& t : targets) result.push_back(t + "-" + feature);
  return result;
}

const char* format_name(DataFormat f) { return f == DataFormat::NHWC ? "NHWC" : "NCHW"; }

// The generator command that builds `kernel` into `dir`.
std::vector<std::string> generator_command(const Options& options, const KernelPlan& kernel,
                                           const fs::path& dir) {
  std::vector<std::string> outputs = {"object", "h"};
  outputs.insert(outputs.end(), options.review_outputs.begin(), options.review_outputs.end());
  std::vector<std::string> command = {
      options.generator,
      "-g",
      to_string(kernel.op),
      "-f",
      kernel.name,
      "-o",
      dir.string(),
      "-e",
      join(outputs, ","),
      "target=" + join(with_feature(options.targets, "no_runtime"), ","),
      std::string("data_format=") + format_name(kernel.format)};
  if (!kernel.shape_key.empty()) command.push_back("shape=" + kernel.shape_key);
  return command;
}

// Builds one kernel unless its stamp says it is up to date.
KernelReport build(const Options& options, const KernelPlan& kernel, const std::string& name,
                   const std::vector<std::string>& command) {
  const fs::path dir = fs::path(options.out_dir) / "kernels" / name;
  const fs::path stamp_path = dir / "stamp";
  const std::string stamp = stamp_of(command, options.generator);
  KernelReport report{kernel};
  const bool up_to_date = fs::exists(stamp_path) && read_file(stamp_path) == stamp &&
                          fs::exists(dir / (name + ".h")) && !objects_in(dir).empty();
  if (!up_to_date) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    const auto start = std::chrono::steady_clock::now();
    const int status = run_logged(command, dir / "log");
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (status != 0) {
      throw Error(ErrorId::generation_failed, name,
                  status < 0 ? "cannot run the generator " + options.generator
                             : "the generator failed (see " + (dir / "log").string() +
                                   "):" + tail(dir / "log"));
    }
    write_file(stamp_path, stamp);
    report.rebuilt = true;
  }
  for (const fs::path& object : objects_in(dir)) report.bytes += int64_t(fs::file_size(object));
  return report;
}

std::string kernel_list_source(const Options& options, const std::vector<KernelPlan>& kernels) {
  std::ostringstream out;
  out << "// Generated by convgen generate; do not edit.\n#include \"" << options.library
      << ".h\"\n\n";
  for (const KernelPlan& k : kernels)
    out << "#include \"kernels/" << k.name << "/" << k.name << ".h\"\n";
  out << "\nconst convgen::KernelList& " << options.library << "() {\n"
      << "  static const convgen::KernelList kernels = {\n";
  const std::string targets = join(options.targets, ",");
  for (const KernelPlan& k : kernels) {
    out << "      {\"" << k.name << "\", convgen::Op::" << to_string(k.op)
        << ", convgen::DataFormat::" << format_name(k.format) << ", \"" << k.shape_key << "\", \""
        << targets << "\", &convgen::call_" << to_string(k.op) << "<" << k.name << ">},\n";
  }
  out << "  };\n  return kernels;\n}\n";
  return out.str();
}

std::string kernel_list_header(const Options& options) {
  return "// Generated by convgen generate; do not edit.\n#pragma once\n\n"
         "#include \"convgen/kernel.h\"\n\n// Every kernel of lib" +
         options.library + ".a.\nconst convgen::KernelList& " + options.library + "();\n";
}

// Replaces the archive with one holding `objects`.
void archive(const fs::path& path, const std::vector<fs::path>& objects) {
  const fs::path tmp = path.string() + ".tmp";
  fs::remove(tmp);
  std::vector<std::string> command = {std::getenv("AR") ? std::getenv("AR") : "ar", "qcs",
                                      tmp.string()};
  for (const fs::path& o : objects) command.push_back(o.string());
  const fs::path log = path.string() + ".log";
  if (run_logged(command, log) != 0) {
    throw Error(ErrorId::generation_failed, path.string(), "ar failed:" + tail(log));
  }
  fs::remove(log);
  fs::rename(tmp, path);
}

}  // namespace

std::vector<std::string> expand_targets(const std::vector<std::string>& names,
                                        const std::string& argument) {
  std::vector<std::string> targets;
  for (const std::string& name : names) {
    if (name == "x86-64") {
      for (const char* t :
           {"x86-64-linux-avx512_skylake", "x86-64-linux-avx2-fma-f16c", "x86-64-linux-sse41"}) {
        targets.push_back(t);
      }
    } else if (name == "cuda") {
      targets.push_back("x86-64-linux-cuda-cuda_capability_80");
    } else if (name.empty() || name.find_first_of(", \t\n") != std::string::npos) {
      throw Error(ErrorId::invalid_argument, argument, "malformed target '" + name + "'");
    } else {
      targets.push_back(name);
    }
  }
  if (targets.empty()) throw Error(ErrorId::invalid_argument, argument, "no target given");
  return targets;
}

std::vector<KernelPlan> plan(const Options& options) {
  if (!is_identifier(options.library)) {
    throw Error(ErrorId::invalid_argument, "library",
                "'" + options.library + "' is not a C identifier");
  }
  // GPU kernels are named apart (op__shape__cuda), so that one program can link a CPU and a CUDA
  // kernel library side by side.
  std::string device_suffix;
  for (const std::string& target : options.targets) {
    if (("-" + target + "-").find("-cuda-") != std::string::npos) device_suffix = "__cuda";
  }
  std::vector<KernelPlan> kernels;
  std::set<std::string> seen;
  for (const Layer& layer : options.layers) {
    for (Op op : layer.ops) {
      const std::string key = layer.geometry.key();
      const std::string name = std::string("convgen_") + to_string(op) + "__" + key + device_suffix;
      if (seen.insert(name).second) {
        kernels.push_back({name, op, layer.geometry.format(), key, layer.name});
      }
    }
  }
  for (DataFormat format : options.generic_formats) {
    for (Op op : {Op::conv2d, Op::conv2d_backprop_input, Op::conv2d_backprop_filter}) {
      const std::string name = std::string("convgen_") + to_string(op) + "__generic_" +
                               lower(format_name(format)) + device_suffix;
      if (seen.insert(name).second) kernels.push_back({name, op, format, "", ""});
    }
  }
  if (kernels.empty()) {
    throw Error(ErrorId::invalid_argument, "config",
                "nothing to generate: no layers and no generic layout");
  }
  return kernels;
}

Outputs outputs(const Options& options) {
  const fs::path dir(options.out_dir);
  return {(dir / ("lib" + options.library + ".a")).string(),
          (dir / (options.library + ".h")).string(), (dir / (options.library + ".cpp")).string()};
}

std::vector<KernelReport> generate(const Options& options, std::ostream& progress) {
  const std::vector<KernelPlan> kernels = plan(options);
  fs::create_directories(fs::path(options.out_dir) / "kernels");
  const auto start = std::chrono::steady_clock::now();
  progress << "generating " << kernels.size() << " kernels of " << options.library << " for "
           << join(options.targets, ",") << std::endl;

  // The kernels, built by `jobs` workers; the Halide runtime is one more job.
  std::vector<KernelReport> reports(kernels.size());
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::mutex mutex;
  std::vector<std::string> failures;
  const std::string runtime_name = options.library + "_halide_runtime";
  auto worker = [&] {
    for (size_t i = next++; i <= kernels.size(); i = next++) {
      try {
        if (i == kernels.size()) {
          const fs::path dir = fs::path(options.out_dir) / "kernels" / runtime_name;
          const std::vector<std::string> command = {
              options.generator, "-r", runtime_name, "-o",
              dir.string(),      "-e", "object,h",   "target=" + join(options.targets, ",")};
          build(options, {runtime_name, Op::conv2d, DataFormat::NHWC, "", ""}, runtime_name,
                command);
          continue;
        }
        const KernelPlan& k = kernels[i];
        const fs::path dir = fs::path(options.out_dir) / "kernels" / k.name;
        reports[i] = build(options, k, k.name, generator_command(options, k, dir));
        std::lock_guard<std::mutex> lock(mutex);
        progress << "[" << ++done << "/" << kernels.size() << "] " << to_string(k.op) << " "
                 << (k.layer.empty() ? "generic " + std::string(format_name(k.format)) : k.layer)
                 << ": "
                 << (reports[i].rebuilt ? std::to_string(reports[i].seconds).substr(0, 4) + " s"
                                        : std::string("up to date"))
                 << std::endl;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex);
        failures.push_back(e.what());
      }
    }
  };
  std::vector<std::thread> workers;
  for (int j = 0; j < std::max(1, options.jobs); j++) workers.emplace_back(worker);
  for (std::thread& t : workers) t.join();
  if (!failures.empty()) {
    throw Error(ErrorId::generation_failed, options.library,
                std::to_string(failures.size()) + " kernel(s) failed; first: " + failures.front());
  }

  // The archive and the kernel list.
  std::vector<fs::path> objects = objects_in(fs::path(options.out_dir) / "kernels" / runtime_name);
  for (const KernelPlan& k : kernels) {
    const std::vector<fs::path> o = objects_in(fs::path(options.out_dir) / "kernels" / k.name);
    objects.insert(objects.end(), o.begin(), o.end());
  }
  const Outputs out = outputs(options);
  archive(out.archive, objects);
  write_file(out.list_header, kernel_list_header(options));
  write_file(out.list_source, kernel_list_source(options, kernels));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress << "generated " << kernels.size() << " kernels into " << out.archive << " ("
           << fs::file_size(out.archive) / 1024 << " KiB) in " << std::fixed << std::setprecision(1)
           << seconds << " s" << std::endl;
  return reports;
}

}  // namespace convgen::codegen
