// convgen run: one operator on .npy files, exactly as SPEC.md's command-line contract says.
//
// Everything is checked before the output is written: options, then files, then the geometry and
// every tensor's shape. The output is written last and atomically, so a failed run leaves no file.
// With --explain the command stops once the kernel is chosen: it prints which kernel of the tool's
// list would run the call and why each other one would not, and computes and writes nothing.
// --target restricts the choice to CPU or CUDA kernels; without a CUDA device, --target cuda fails
// with the reason before anything is computed.
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <iostream>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli.h"
#include "command_parsers.h"
#include "commands.h"
#include "convgen/convgen.h"
#include "convgen/npy.h"
#include "memory_budget.h"
#include "tool_kernels.h"

namespace convgen::tools {
namespace {

// The options that only some operators take.
struct OpOptions {
  std::vector<std::string> required, optional;
};
OpOptions op_options(Op op) {
  switch (op) {
    case Op::conv2d:
      return {{"--input", "--filter"}, {"--bias"}};
    case Op::conv2d_backprop_input:
      return {{"--input-sizes", "--filter", "--out-backprop"}, {}};
    case Op::conv2d_backprop_filter:
      return {{"--input", "--filter-sizes", "--out-backprop"}, {"--bias-grad-output"}};
  }
  return {};
}
const char* const kOpSpecificOptions[] = {"--input",           "--filter",       "--bias",
                                          "--input-sizes",     "--filter-sizes", "--out-backprop",
                                          "--bias-grad-output"};

void check_op_options(Op op, const cli::Arguments& args) {
  const OpOptions wanted = op_options(op);
  auto listed = [](const std::vector<std::string>& names, const std::string& name) {
    for (const std::string& n : names) {
      if (n == name) return true;
    }
    return false;
  };
  std::string takes;
  for (const std::string& name : wanted.required) takes += (takes.empty() ? "" : ", ") + name;
  for (const std::string& name : wanted.optional) takes += ", optionally " + name;
  for (const char* name : kOpSpecificOptions) {
    if (args.has(name) && !listed(wanted.required, name) && !listed(wanted.optional, name)) {
      throw Error(
          ErrorId::invalid_argument, name,
          std::string("is not an option of --op ") + to_string(op) + " (it takes " + takes + ")");
    }
  }
  for (const std::string& name : wanted.required) {
    if (!args.has(name)) {
      throw Error(ErrorId::invalid_argument, name,
                  std::string("is required by --op ") + to_string(op));
    }
  }
}

// The runtime names attributes and tensors as TensorFlow's op does ("strides", "input"); the CLI
// user typed options.
std::string option_for(const std::string& argument, Op op) {
  if (argument == "strides") return "--strides";
  if (argument == "dilations") return "--dilations";
  if (argument == "explicit_paddings") return "--explicit-paddings";
  if (argument == "input") return op == Op::conv2d_backprop_input ? "--input-sizes" : "--input";
  if (argument == "filter") return op == Op::conv2d_backprop_filter ? "--filter-sizes" : "--filter";
  if (argument == "output") return op == Op::conv2d ? "--output" : "--out-backprop";
  return argument;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); i++) {
    text += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> to_vector(const std::array<int64_t, 4>& dims) {
  return {dims.begin(), dims.end()};
}

void check_shape(const std::vector<int64_t>& shape, const std::vector<int64_t>& expected,
                 const std::string& argument, const std::string& what) {
  if (shape != expected) {
    throw Error(ErrorId::shape_mismatch, argument,
                "expected shape " + shape_text(expected) + " (" + what + "), got " +
                    shape_text(shape));
  }
}

// Runs `allocate`, turning a failed allocation into an error naming the option whose numbers asked
// for it. (The memory budget refuses what this machine cannot hold before anything is allocated;
// this catches a lower limit, such as ulimit -v.)
template <typename Allocate>
auto allocating(const std::string& argument, Allocate allocate) -> decltype(allocate()) {
  try {
    return allocate();
  } catch (const std::bad_alloc&) {
    throw Error(ErrorId::too_large, argument, "out of memory");
  }
}

// An operand file. Only its header is read at first, so that every shape of the run is checked and
// every tensor's memory reserved before any data is read.
struct Operand {
  std::string option;  // e.g. "--input"
  std::vector<int64_t> shape;

  int64_t elements() const {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    return count;
  }
};

Operand operand(const cli::Arguments& args, const std::string& option) {
  return {option, npy::read_shape(args.value(option), option)};
}

// The operand's data, which must still have the shape its header declared.
std::vector<float> load(const cli::Arguments& args, const Operand& operand) {
  npy::Array array = allocating(operand.option, [&] {
    return npy::read(args.value(operand.option), operand.option);
  });
  check_shape(array.shape, operand.shape, operand.option,
              "what the file's header declared when the run began");
  return std::move(array.data);
}

// A zeroed result tensor.
std::vector<float> allocate(const std::array<int64_t, 4>& dims, const std::string& argument) {
  const int64_t count = checked_element_count(dims, argument);
  return allocating(argument, [&] { return std::vector<float>(size_t(count), 0.0f); });
}

// Fails early, before any computing, when the output cannot be a file in an existing directory.
void check_output_path(const std::string& path, const std::string& argument) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    throw Error(ErrorId::io_error, argument, "cannot write " + path + ": it is a directory");
  }
  const size_t slash = path.rfind('/');
  const std::string directory =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (::stat(directory.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    throw Error(ErrorId::io_error, argument,
                "cannot write " + path + ": no directory " + directory);
  }
}

struct Request {
  Op op;
  Attributes attributes;
  Device device;  // --target
  bool use_reference;
  bool explain;  // stop after choosing the kernel: print the choice, compute and write nothing
};

// The end of an --explain run, once every input has been checked: the call on one line, then the
// Engine's explanation. The kernel is then chosen as a real run chooses it, so that
// CONVGEN_VERBOSE=dispatch logs the choice as it would for a real run.
void explain(const Request& request, const Engine& engine, const Geometry& g) {
  const Explanation explanation = engine.explain(request.op, g);
  std::cout << to_string(request.op) << " " << g.key() << "\n"
            << explanation.to_string() << std::flush;
  if (explanation.chosen) engine.select(request.op, g);
}

// Before any computing: with --target cuda, a clear error when no CUDA kernel can run the call (on
// a machine without a CUDA device, the Engine refuses every CUDA kernel).
void check_target(const Request& request, const Engine& engine, const Geometry& g) {
  if (request.use_reference || request.device != Device::cuda) return;
  if (engine.explain(request.op, g).chosen) return;
  const std::string why = cuda_refusal();
  throw Error(ErrorId::unsupported, "--target",
              why.empty() ? std::string("cuda: no CUDA kernel of this build runs ") +
                                to_string(request.op) + " on " + g.key()
                          : "cuda: this machine cannot run CUDA kernels: " + why);
}

Geometry make_geometry(const Request& request, const ActivationShape& input,
                       const FilterShape& filter) {
  try {
    return Geometry::make(input, filter, request.attributes);
  } catch (const Error& e) {
    throw cli::with_argument(e, option_for(e.argument(), request.op));
  }
}

void write_output(const std::string& path, const std::vector<int64_t>& shape,
                  const std::vector<float>& data) {
  npy::write(path, shape, data.data(), "--output");
}

// With --explain, prints the explanation and returns true: nothing is to be computed. Otherwise
// checks that --target can run the call and returns false.
bool explained_or_checked(const Request& request, const Engine& engine, const Geometry& g) {
  if (request.explain) {
    explain(request, engine, g);
    return true;
  }
  check_target(request, engine, g);
  return false;
}

// --out-backprop, which must have exactly the shape of the forward convolution's output.
Operand out_backprop_operand(const cli::Arguments& args, const Geometry& g) {
  Operand out_backprop = operand(args, "--out-backprop");
  check_shape(out_backprop.shape, to_vector(g.output_dims()), "--out-backprop",
              "the output shape of the forward convolution");
  return out_backprop;
}

// A result tensor: its dimensions and the option whose numbers asked for it.
using Result = std::pair<std::array<int64_t, 4>, std::string>;

// Reserves this machine's memory for the run's operands, then for its results, before anything is
// read or allocated.
void reserve_memory(const std::vector<const Operand*>& operands,
                    const std::vector<Result>& results) {
  MemoryBudget budget = MemoryBudget::physical_memory();
  for (const Operand* operand : operands) budget.reserve(operand->elements(), operand->option);
  for (const auto& [dims, option] : results) {
    budget.reserve(checked_element_count(dims, option), option);
  }
}

void run_conv2d(const Request& request, const cli::Arguments& args, const Engine& engine) {
  const Operand input = operand(args, "--input");
  const Operand filter = operand(args, "--filter");
  const Geometry g =
      make_geometry(request, activation_shape(input.shape, request.attributes.format, "--input"),
                    filter_shape(filter.shape, "--filter"));
  std::vector<const Operand*> operands = {&input, &filter};
  std::optional<Operand> bias;
  if (args.has("--bias")) {
    bias = operand(args, "--bias");
    check_shape(bias->shape, {g.filter().k}, "--bias", "[K], K = the filter's out_channels");
    operands.push_back(&*bias);
  }
  if (explained_or_checked(request, engine, g)) return;

  reserve_memory(operands, {{g.output_dims(), "--output"}});
  const std::vector<float> x = load(args, input), w = load(args, filter);
  const std::vector<float> b = bias ? load(args, *bias) : std::vector<float>();
  std::vector<float> output = allocate(g.output_dims(), "--output");
  const float* bias_data = bias ? b.data() : nullptr;
  if (request.use_reference) {
    reference::conv2d(g, x.data(), w.data(), bias_data, output.data());
  } else {
    engine.conv2d(g, x.data(), w.data(), bias_data, output.data());
  }
  write_output(args.value("--output"), to_vector(g.output_dims()), output);
}

void run_backprop_input(const Request& request, const cli::Arguments& args, const Engine& engine) {
  const std::vector<int64_t> sizes =
      cli::parse_int_list(args.value("--input-sizes"), "--input-sizes", 4,
                          request.attributes.format == DataFormat::NHWC ? "N,H,W,C" : "N,C,H,W");
  const Operand filter = operand(args, "--filter");
  const Geometry g =
      make_geometry(request, activation_shape(sizes, request.attributes.format, "--input-sizes"),
                    filter_shape(filter.shape, "--filter"));
  const Operand out_backprop = out_backprop_operand(args, g);
  if (explained_or_checked(request, engine, g)) return;

  reserve_memory({&filter, &out_backprop}, {{g.input_dims(), "--input-sizes"}});
  const std::vector<float> w = load(args, filter), dy = load(args, out_backprop);
  std::vector<float> input_grad = allocate(g.input_dims(), "--input-sizes");
  if (request.use_reference) {
    reference::conv2d_backprop_input(g, w.data(), dy.data(), input_grad.data());
  } else {
    engine.conv2d_backprop_input(g, w.data(), dy.data(), input_grad.data());
  }
  write_output(args.value("--output"), to_vector(g.input_dims()), input_grad);
}

void run_backprop_filter(const Request& request, const cli::Arguments& args, const Engine& engine) {
  const std::vector<int64_t> sizes =
      cli::parse_int_list(args.value("--filter-sizes"), "--filter-sizes", 4, "R,S,C,K");
  const Operand input = operand(args, "--input");
  const Geometry g =
      make_geometry(request, activation_shape(input.shape, request.attributes.format, "--input"),
                    filter_shape(sizes, "--filter-sizes"));
  const Operand out_backprop = out_backprop_operand(args, g);
  if (explained_or_checked(request, engine, g)) return;

  const std::array<int64_t, 4> bias_dims = {1, 1, 1, g.filter().k};
  reserve_memory({&input, &out_backprop},
                 {{g.filter_dims(), "--filter-sizes"}, {bias_dims, "--filter-sizes"}});
  const std::vector<float> x = load(args, input), dy = load(args, out_backprop);
  std::vector<float> filter_grad = allocate(g.filter_dims(), "--filter-sizes");
  std::vector<float> bias_grad = allocate(bias_dims, "--filter-sizes");
  if (request.use_reference) {
    reference::conv2d_backprop_filter(g, x.data(), dy.data(), filter_grad.data(),
                                      bias_grad.data());
  } else {
    engine.conv2d_backprop_filter(g, x.data(), dy.data(), filter_grad.data(), bias_grad.data());
  }
  const std::vector<int64_t> output_shape = to_vector(g.filter_dims());
  if (!args.has("--bias-grad-output")) {
    write_output(args.value("--output"), output_shape, filter_grad);
    return;
  }
  // Two files: the bias gradient first, removed again if the main output cannot be written, so
  // that a failed run leaves neither.
  const std::string bias_path = args.value("--bias-grad-output");
  npy::write(bias_path, {g.filter().k}, bias_grad.data(), "--bias-grad-output");
  try {
    write_output(args.value("--output"), output_shape, filter_grad);
  } catch (...) {
    ::unlink(bias_path.c_str());
    throw;
  }
}

}  // namespace

int run_command(int argc, char** argv) {
  const cli::Parser parser = run_parser();
  const cli::Arguments args = parser.parse(argc, argv);
  if (args.help()) {
    std::cout << parser.usage();
    return 0;
  }

  // Options first: the cheap checks come before any file is read.
  Request request{};
  request.op = parse_op(args.value("--op"), "--op");
  check_op_options(request.op, args);
  request.use_reference = args.flag("--reference");
  request.explain = args.flag("--explain");
  if (request.explain && request.use_reference) {
    throw Error(ErrorId::invalid_argument, "--explain",
                "cannot be combined with --reference (the reference involves no kernel choice)");
  }
  const std::string target = args.value_or("--target", "auto");
  if (target == "auto") {
    request.device = Device::any;
  } else if (target == "cpu") {
    request.device = Device::cpu;
  } else if (target == "cuda") {
    request.device = Device::cuda;
  } else {
    throw Error(ErrorId::invalid_argument, "--target",
                "must be auto, cpu or cuda, got '" + target + "'");
  }
  if (args.has("--target") && request.use_reference) {
    throw Error(ErrorId::invalid_argument, "--target",
                "cannot be combined with --reference (the reference runs on the CPU, no kernel)");
  }
  if (!request.explain && !args.has("--output")) {
    throw Error(ErrorId::invalid_argument, "--output",
                "is required (--output OUT.npy) unless --explain is given");
  }
  const DataFormat format =
      parse_data_format(args.value_or("--data-format", "NHWC"), "--data-format");
  const Padding padding = parse_padding(args.value("--padding"), "--padding");
  const std::vector<int64_t> strides = cli::parse_int_list(args.value("--strides"), "--strides");
  std::vector<int64_t> explicit_paddings, dilations;
  if (args.has("--explicit-paddings")) {
    explicit_paddings =
        cli::parse_int_list(args.value("--explicit-paddings"), "--explicit-paddings");
  }
  if (args.has("--dilations")) {
    dilations = cli::parse_int_list(args.value("--dilations"), "--dilations");
  }
  try {
    request.attributes =
        Attributes::from_tensorflow(format, strides, padding, explicit_paddings, dilations);
  } catch (const Error& e) {
    throw cli::with_argument(e, option_for(e.argument(), request.op));
  }
  // An --explain run writes nothing, so its output paths are not checked.
  if (!request.explain) check_output_path(args.value("--output"), "--output");
  if (args.has("--bias-grad-output") && !request.explain) {
    check_output_path(args.value("--bias-grad-output"), "--bias-grad-output");
    if (args.value("--bias-grad-output") == args.value("--output")) {
      throw Error(ErrorId::invalid_argument, "--bias-grad-output",
                  "must name another file than --output");
    }
  }

  const Engine engine(tool_kernels(), request.device);
  switch (request.op) {
    case Op::conv2d:
      run_conv2d(request, args, engine);
      break;
    case Op::conv2d_backprop_input:
      run_backprop_input(request, args, engine);
      break;
    case Op::conv2d_backprop_filter:
      run_backprop_filter(request, args, engine);
      break;
  }
  return 0;
}

}  // namespace convgen::tools
