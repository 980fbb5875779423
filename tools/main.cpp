// convgen <command> [options]: the one command-line tool of convgen.
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "cli.h"
#include "commands.h"
#include "convgen/error.h"

namespace {

constexpr const char* kVersion = "convgen 0.1.0";

constexpr const char* kUsage =
    "usage: convgen <command> [options]\n"
    "\n"
    "commands:\n"
    "  run       run one operator on .npy files (TensorFlow's argument names)\n"
    "  verify    check every layer of a shape config against the naive reference, with timings\n"
    "  generate  compile kernels specialized for a shape config into a static library\n"
    "  bench     time every layer of a shape config against oneDNN, im2col + OpenBLAS and the "
    "reference\n"
    "  tune      search each layer's schedule and record the best in a schedule database\n"
    "  help      print this help; 'convgen help <command>' prints a command's options\n"
    "\n"
    "options:\n"
    "  -h, --help   print this help\n"
    "  --version    print the version\n";

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  if (command == "run") return convgen::tools::run_command(argc - 1, argv + 1);
  if (command == "verify") return convgen::tools::verify_command(argc - 1, argv + 1);
  if (command == "generate") return convgen::tools::generate_command(argc - 1, argv + 1);
  if (command == "bench") return convgen::tools::bench_command(argc - 1, argv + 1);
  if (command == "tune") return convgen::tools::tune_command(argc - 1, argv + 1);
  if (command == "--version") {
    std::printf("%s\n", kVersion);
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    if (argc >= 3) {
      const std::string topic = argv[2];
      char help_flag[] = "--help";
      char* help_argv[] = {argv[2], help_flag, nullptr};
      if (topic == "run") return convgen::tools::run_command(2, help_argv);
      if (topic == "verify") return convgen::tools::verify_command(2, help_argv);
      if (topic == "generate") return convgen::tools::generate_command(2, help_argv);
      if (topic == "bench") return convgen::tools::bench_command(2, help_argv);
      if (topic == "tune") return convgen::tools::tune_command(2, help_argv);
      convgen::cli::report_error("unknown command '" + topic + "'");
      std::fputs(kUsage, stderr);
      return 2;
    }
    std::fputs(kUsage, stdout);
    return 0;
  }
  convgen::cli::report_error("unknown command '" + command + "'");
  std::fputs(kUsage, stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) { return convgen::cli::guarded_main(argc, argv, dispatch); }
