// convgen verify: runs every layer and operator of a shape config with the compiled kernels and
// with the naive reference, on the same random data, and prints one table row each: specialized
// kernel, generic kernel and naive reference side by side.
//
// For each (layer, operator) the row shows which kind of kernel the Engine chooses for the layer
// ("specialized" when the tool's list has a kernel compiled for exactly this shape that this CPU
// can run, else "generic"); then the specialized kernel (when there is one) and the generic kernel
// of the operator and layout -- run through an Engine over only the list's generic kernels -- each
// with its error against the reference, its time and its GFLOP/s; the reference's time; and the
// specialized kernel's speedup over the generic kernel and over the reference. Both compiled
// kernels must be within the bound. Their timed runs alternate (a warm-up of each, then one run of
// each per round) so that both see the same machine state; the table shows the medians.
//
// The bound. A float32 sum of n products a*b, in any order and with or without fused multiply-adds,
// differs from the exact sum by at most about n * u * sum |a*b| (u = 2^-24, the unit roundoff); the
// reference (double accumulation, one final rounding) adds at most u * |result|. So element i
// passes when
//     |kernel_i - reference_i| <= tol_i = u * (n + 1) * absdot_i + 1e-30,
// where absdot_i = sum |a*b| over the terms of element i -- exactly what the reference computes
// when given |X|, |W| (|dY|, |b|) -- and n is the number of terms: R*S*C (+1 with a bias) for
// conv2d, R*S*K (an upper bound) for conv2d_backprop_input, N*Ho*Wo for conv2d_backprop_filter and
// its bias gradient. The table reports max_i |err_i| / tol_i; above 1 is a failure.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "convgen/convgen.h"
#include "convgen/shape_config.h"
#include "convgen_kernels.h"

namespace convgen::tools {
namespace {

constexpr uint64_t kDefaultSeed = 1;
constexpr int64_t kDefaultRepeats = 5;

// SplitMix64: tiny, and the same numbers on every platform and standard library.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1), multiples of 2^-23 (exact in float32).
  float uniform() { return float(int64_t(next() >> 40)) * 0x1p-23f - 1.0f; }

 private:
  uint64_t state_;
};

std::vector<float> random_tensor(size_t count, Random& random) {
  std::vector<float> values(count);
  for (float& v : values) v = random.uniform();
  return values;
}

std::vector<float> absolute(const std::vector<float>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); i++) out[i] = std::fabs(values[i]);
  return out;
}

size_t element_count(const std::array<int64_t, 4>& dims) {
  return size_t(checked_element_count(dims, "--config"));
}

// An output buffer the kernel must overwrite completely: any element it skips stays NaN and fails.
std::vector<float> poisoned(size_t count) {
  return std::vector<float>(count, std::numeric_limits<float>::quiet_NaN());
}

template <typename F>
double milliseconds(F&& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

// Times several computations interleaved: one warm-up run of each, then `repeats` rounds of one
// timed run of each, so that all see the same machine state (clock speed, caches, other load).
// Returns the median time of each, in milliseconds.
std::vector<double> interleaved_median_milliseconds(
    int64_t repeats, const std::vector<std::function<void()>>& runs) {
  for (const auto& run : runs) run();
  std::vector<std::vector<double>> times(runs.size());
  for (int64_t r = 0; r < repeats; r++) {
    for (size_t i = 0; i < runs.size(); i++) times[i].push_back(milliseconds(runs[i]));
  }
  std::vector<double> medians;
  for (const std::vector<double>& t : times) medians.push_back(median(t));
  return medians;
}

struct Comparison {
  double max_error = 0;
  double max_ratio = 0;

  void add(const std::vector<float>& kernel, const std::vector<float>& reference,
           const std::vector<float>& absdot, double terms) {
    const double unit = std::ldexp(1.0, -24);
    for (size_t i = 0; i < kernel.size(); i++) {
      const double error = std::fabs(double(kernel[i]) - double(reference[i]));
      const double tolerance = unit * (terms + 1) * double(absdot[i]) + 1e-30;
      if (!std::isfinite(error)) {  // NaN or infinity from the kernel
        max_error = std::numeric_limits<double>::infinity();
        max_ratio = std::numeric_limits<double>::infinity();
        continue;
      }
      max_error = std::max(max_error, error);
      max_ratio = std::max(max_ratio, error / tolerance);
    }
  }
  bool ok() const { return max_ratio <= 1.0; }  // false for NaN too
};

// One case made concrete: random inputs, the reference's outputs and their error bounds, and how to
// compute the outputs with an Engine. Operators have one output, or two for conv2d_backprop_filter
// with a bias (the filter gradient and the bias gradient).
struct Problem {
  using Outputs = std::vector<std::vector<float>>;
  std::vector<size_t> sizes;  // of each output
  Outputs expected, bound;    // the reference's outputs; sum |a*b| per element
  double terms = 0;           // n of the bound
  double reference_ms = 0;    // one run of the reference
  std::function<void(const Engine&, Outputs&)> run;

  Outputs poisoned_outputs() const {
    Outputs outputs;
    for (size_t size : sizes) outputs.push_back(poisoned(size));
    return outputs;
  }
  Comparison compare(const Outputs& outputs) const {
    Comparison comparison;
    for (size_t i = 0; i < outputs.size(); i++) {
      comparison.add(outputs[i], expected[i], bound[i], terms);
    }
    return comparison;
  }
};

Problem make_problem(const Layer& layer, Op op, uint64_t seed) {
  const Geometry g = layer.geometry;
  Random random(seed);
  const size_t input_count = element_count(g.input_dims());
  const size_t filter_count = element_count(g.filter_dims());
  const size_t output_count = element_count(g.output_dims());
  const size_t k = size_t(g.filter().k);
  const bool has_bias = layer.bias;
  Problem p;

  switch (op) {
    case Op::conv2d: {
      std::vector<float> x = random_tensor(input_count, random);
      std::vector<float> w = random_tensor(filter_count, random);
      std::vector<float> b = has_bias ? random_tensor(k, random) : std::vector<float>();
      p.sizes = {output_count};
      p.expected = p.bound = {std::vector<float>(output_count)};
      p.reference_ms = milliseconds([&] {
        reference::conv2d(g, x.data(), w.data(), has_bias ? b.data() : nullptr,
                          p.expected[0].data());
      });
      const std::vector<float> abs_b = absolute(b);
      reference::conv2d(g, absolute(x).data(), absolute(w).data(),
                        has_bias ? abs_b.data() : nullptr, p.bound[0].data());
      p.terms =
          double(g.filter().r) * double(g.filter().s) * double(g.filter().c) + (has_bias ? 1 : 0);
      p.run = [g, x = std::move(x), w = std::move(w), b = std::move(b), has_bias](
                  const Engine& engine, Problem::Outputs& out) {
        engine.conv2d(g, x.data(), w.data(), has_bias ? b.data() : nullptr, out[0].data());
      };
      break;
    }
    case Op::conv2d_backprop_input: {
      std::vector<float> w = random_tensor(filter_count, random);
      std::vector<float> dy = random_tensor(output_count, random);
      p.sizes = {input_count};
      p.expected = p.bound = {std::vector<float>(input_count)};
      p.reference_ms = milliseconds(
          [&] { reference::conv2d_backprop_input(g, w.data(), dy.data(), p.expected[0].data()); });
      reference::conv2d_backprop_input(g, absolute(w).data(), absolute(dy).data(),
                                       p.bound[0].data());
      p.terms = double(g.filter().r) * double(g.filter().s) * double(g.filter().k);
      p.run = [g, w = std::move(w), dy = std::move(dy)](const Engine& engine,
                                                        Problem::Outputs& out) {
        engine.conv2d_backprop_input(g, w.data(), dy.data(), out[0].data());
      };
      break;
    }
    case Op::conv2d_backprop_filter: {
      std::vector<float> x = random_tensor(input_count, random);
      std::vector<float> dy = random_tensor(output_count, random);
      p.sizes = {filter_count};
      if (has_bias) p.sizes.push_back(k);
      for (size_t size : p.sizes) {
        p.expected.emplace_back(size);
        p.bound.emplace_back(size);
      }
      p.reference_ms = milliseconds([&] {
        reference::conv2d_backprop_filter(g, x.data(), dy.data(), p.expected[0].data(),
                                          has_bias ? p.expected[1].data() : nullptr);
      });
      std::vector<float> db_bound(k);
      reference::conv2d_backprop_filter(g, absolute(x).data(), absolute(dy).data(),
                                        p.bound[0].data(), db_bound.data());
      if (has_bias) p.bound[1] = db_bound;
      p.terms = double(g.output().n) * double(g.output().h) * double(g.output().w);
      p.run = [g, x = std::move(x), dy = std::move(dy), has_bias](const Engine& engine,
                                                                  Problem::Outputs& out) {
        engine.conv2d_backprop_filter(g, x.data(), dy.data(), out[0].data(),
                                      has_bias ? out[1].data() : nullptr);
      };
      break;
    }
  }
  return p;
}

// One compiled kernel's part of a row.
struct KernelResult {
  bool present = false;  // false: no such kernel for this case
  Comparison comparison;
  double ms = 0;
};

struct Result {
  KernelResult specialized, generic;
  double reference_ms = 0;
};

// Runs the case with the reference, then with each of `specialized` and `generic` that is not null
// (an Engine that selects the kernel of that kind), interleaved.
Result verify(const Engine* specialized, const Engine* generic, const Layer& layer, Op op,
              uint64_t seed, int64_t repeats) {
  const Problem problem = make_problem(layer, op, seed);
  Result result;
  result.reference_ms = problem.reference_ms;

  struct Contender {
    const Engine* engine;
    KernelResult* result;
    Problem::Outputs outputs;
  };
  std::vector<Contender> contenders;
  if (specialized) contenders.push_back({specialized, &result.specialized, {}});
  if (generic) contenders.push_back({generic, &result.generic, {}});
  std::vector<std::function<void()>> runs;
  for (Contender& c : contenders) {
    c.outputs = problem.poisoned_outputs();
    runs.push_back([&problem, &c] { problem.run(*c.engine, c.outputs); });
  }
  const std::vector<double> ms = interleaved_median_milliseconds(repeats, runs);
  for (size_t i = 0; i < contenders.size(); i++) {
    KernelResult& r = *contenders[i].result;
    r.present = true;
    r.ms = ms[i];
    r.comparison = problem.compare(contenders[i].outputs);
  }
  return result;
}

std::string format(const char* pattern, ...) {
  char buffer[256];
  va_list args;
  va_start(args, pattern);
  std::vsnprintf(buffer, sizeof buffer, pattern, args);
  va_end(args);
  return buffer;
}

struct Case {
  size_t layer_index;
  Op op;
  bool specialized;  // the Engine chooses a specialized kernel (else a generic one)
  bool generic;      // the list has a generic kernel this CPU can run for the op and layout
};

// A table whose text columns are left-aligned and number columns right-aligned.
class Table {
 public:
  struct Column {
    std::string title;
    size_t width;
    bool numeric;
  };
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {
    for (Column& c : columns_) c.width = std::max(c.width, c.title.size());
  }
  void print_header(std::ostream& out) const {
    std::vector<std::string> titles;
    for (const Column& c : columns_) titles.push_back(c.title);
    print_row(out, titles);
    std::string rule;
    for (size_t i = 0; i < columns_.size(); i++) {
      rule += (i ? "  " : "") + std::string(columns_[i].width, '-');
    }
    out << rule << "\n";
  }
  void print_row(std::ostream& out, const std::vector<std::string>& cells) const {
    std::string line;
    for (size_t i = 0; i < columns_.size(); i++) {
      const std::string& cell = cells[i];
      const std::string pad(columns_[i].width > cell.size() ? columns_[i].width - cell.size() : 0,
                            ' ');
      if (i) line += "  ";
      line += columns_[i].numeric ? pad + cell : cell + (i + 1 < columns_.size() ? pad : "");
    }
    out << line << "\n" << std::flush;
  }

 private:
  std::vector<Column> columns_;
};

// A kernel's three cells: error ratio, ms, GFLOP/s ("-" when the row has no such kernel).
std::vector<std::string> kernel_cells(const KernelResult& r, double flops) {
  if (!r.present) return {"-", "-", "-"};
  return {format("%.2e", r.comparison.max_ratio), format("%.3f", r.ms),
          format("%.1f", flops / (r.ms * 1e6))};
}

}  // namespace

int verify_command(int argc, char** argv) {
  cli::Parser parser(
      "convgen verify",
      "Runs every layer and operator of a shape config with the specialized kernel (when the "
      "tool has one for the layer), the generic kernel and the naive reference on random data "
      "(uniform in [-1, 1)), and reports each kernel's error against a rounding bound, the times "
      "and the speedups. Exits 1 if any kernel is over the bound.");
  parser.option("--config", "FILE", "shape config, e.g. configs/resnet_layers.json", true)
      .option("--ops", "OP,...", "operators to verify (default: each layer's ops)")
      .option("--layers", "NAME,...", "layers to verify (default: all)")
      .option("--seed", "S", "random seed (default 1); the same seed gives the same data")
      .option("--repeats", "N",
              "timed runs of each kernel after one warm-up, the two kernels alternating; the "
              "median is shown (default 5)");
  const cli::Arguments args = parser.parse(argc, argv);
  if (args.help()) {
    std::cout << parser.usage();
    return 0;
  }

  std::set<Op> ops;
  if (args.has("--ops")) {
    for (const std::string& name : cli::parse_list(args.value("--ops"), "--ops")) {
      ops.insert(parse_op(name, "--ops"));
    }
  }
  std::set<std::string> names;
  if (args.has("--layers")) {
    for (const std::string& name : cli::parse_list(args.value("--layers"), "--layers")) {
      names.insert(name);
    }
  }
  uint64_t seed = kDefaultSeed;
  if (args.has("--seed")) {
    const int64_t value = cli::parse_int(args.value("--seed"), "--seed");
    if (value < 0) throw Error(ErrorId::invalid_argument, "--seed", "must be >= 0");
    seed = uint64_t(value);
  }
  int64_t repeats = kDefaultRepeats;
  if (args.has("--repeats")) {
    repeats = cli::parse_int(args.value("--repeats"), "--repeats");
    if (repeats < 1 || repeats > 1000) {
      throw Error(ErrorId::invalid_argument, "--repeats",
                  "must be in [1, 1000], got " + std::to_string(repeats));
    }
  }

  const std::string config_path = args.value("--config");
  const ShapeConfig config = read_shape_config(config_path);
  for (const std::string& name : names) {
    const bool found = std::any_of(config.layers.begin(), config.layers.end(),
                                   [&](const Layer& layer) { return layer.name == name; });
    if (!found) {
      throw Error(ErrorId::invalid_argument, "--layers",
                  "no layer named " + cli::quote(name) + " in " + config_path);
    }
  }

  // The Engine of `convgen run`, and one that can only choose a generic kernel. (An Engine keeps a
  // pointer to its list: the list outlives it.)
  const Engine engine(convgen_kernels());
  KernelList generic_kernels;
  for (const Kernel& kernel : convgen_kernels()) {
    if (kernel.shape_key.empty()) generic_kernels.push_back(kernel);
  }
  const Engine generic_engine(generic_kernels);

  std::vector<Case> cases;
  std::vector<size_t> shown_layers;  // for the legend, in config order
  size_t name_width = 0;
  for (size_t i = 0; i < config.layers.size(); i++) {
    const Layer& layer = config.layers[i];
    if (!names.empty() && !names.count(layer.name)) continue;
    bool shown = false;
    for (Op op : layer.ops) {
      if (!ops.empty() && !ops.count(op)) continue;
      const bool specialized = !engine.select(op, layer.geometry).shape_key.empty();
      const bool generic = generic_engine.explain(op, layer.geometry).chosen != nullptr;
      cases.push_back({i, op, specialized, generic});
      name_width = std::max(name_width, layer.name.size());
      shown = true;
    }
    if (shown) shown_layers.push_back(i);
  }
  if (cases.empty()) {
    throw Error(ErrorId::invalid_argument, args.has("--ops") ? "--ops" : "--layers",
                "selects no operator of any layer in " + config_path);
  }

  std::cout << "convgen verify: " << config_path << ", " << cases.size()
            << " layer/operator pairs, seed " << seed << ", median of " << repeats
            << " runs after a warm-up, specialized and generic kernel runs alternating\n"
            << "tolerance per element: |kernel - reference| <= 2^-24 * (n + 1) * sum|a*b| "
               "(n = terms in its sum); ratio = max |error| / tolerance, over 1 fails\n"
            << "chosen: the kernel kind `convgen run` uses for the layer; spec = the kernel "
               "specialized for the layer's shape, gen = the generic kernel, naive = the "
               "reference;\nspec/gen, spec/naive: how many times faster the specialized kernel "
               "runs; '-': no such kernel\n\n";
  const Table table({{"layer", name_width, false},
                     {"op", std::string("conv2d_backprop_filter").size(), false},
                     {"chosen", std::string("specialized").size(), false},
                     {"spec ratio", 8, true},
                     {"spec ms", 9, true},
                     {"spec GF/s", 7, true},
                     {"gen ratio", 8, true},
                     {"gen ms", 9, true},
                     {"gen GF/s", 7, true},
                     {"naive ms", 9, true},
                     {"spec/gen", 7, true},
                     {"spec/naive", 7, true},
                     {"status", 6, false}});
  table.print_header(std::cout);

  size_t verified = 0, over = 0;
  std::vector<std::string> errors;
  for (const Case& c : cases) {
    const Layer& layer = config.layers[c.layer_index];
    // Each case has its own data, the same whichever subset of the config is verified.
    const uint64_t case_seed =
        seed ^ (0x9E3779B97F4A7C15ull * (3 * uint64_t(c.layer_index) + uint64_t(c.op) + 1));
    const size_t kernels = size_t(c.specialized) + size_t(c.generic);
    verified += kernels;
    Result r;
    std::string status = "ok";
    try {
      r = verify(c.specialized ? &engine : nullptr, c.generic ? &generic_engine : nullptr, layer,
                 c.op, case_seed, repeats);
      for (const KernelResult* k : {&r.specialized, &r.generic}) {
        if (k->present && !k->comparison.ok()) {
          status = "OVER";
          over++;
        }
      }
    } catch (const Error& e) {
      // A kernel that fails to run is reported with the others, not the end of the table; both
      // kernels of the row count as failed.
      status = "ERROR";
      over += kernels;
      errors.push_back(layer.name + " " + to_string(c.op) + ": " + e.what());
    }
    std::vector<std::string> row = {layer.name, to_string(c.op),
                                    c.specialized ? "specialized" : "generic"};
    if (status == "ERROR") {
      row.resize(12, "-");
      row.push_back(status);
      table.print_row(std::cout, row);
      continue;
    }
    const double flops = layer.geometry.flops();
    for (const KernelResult* k : {&r.specialized, &r.generic}) {
      for (std::string& cell : kernel_cells(*k, flops)) row.push_back(std::move(cell));
    }
    row.push_back(format("%.1f", r.reference_ms));
    row.push_back(r.specialized.present && r.generic.present
                      ? format("%.2fx", r.generic.ms / r.specialized.ms)
                      : "-");
    row.push_back(r.specialized.present ? format("%.1fx", r.reference_ms / r.specialized.ms) : "-");
    row.push_back(status);
    table.print_row(std::cout, row);
  }

  std::cout << "\nshape keys (a specialized kernel is named convgen_<op>__<key>, a generic one "
               "convgen_<op>__generic_<nhwc|nchw>):\n";
  for (size_t i : shown_layers) {
    const Layer& layer = config.layers[i];
    std::cout << "  " << layer.name << std::string(name_width - layer.name.size() + 2, ' ')
              << layer.geometry.key() << "\n";
  }
  for (const std::string& error : errors) std::cout << "\nerror: " << error;
  if (!errors.empty()) std::cout << "\n";
  std::cout << "\nverified " << verified << " kernels, " << over << " over tolerance\n";
  return over ? 1 : 0;
}

}  // namespace convgen::tools
