// convgen verify: runs every layer and operator of a shape config with the compiled kernel that the
// Engine selects and with the naive reference, on the same random data, and prints one table row
// each: the error against a rounding-error bound, and both times.
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

// One warm-up run, then the median of `repeats` timed runs.
template <typename F>
double median_milliseconds(int64_t repeats, F&& run) {
  run();
  std::vector<double> times;
  for (int64_t i = 0; i < repeats; i++) times.push_back(milliseconds(run));
  std::sort(times.begin(), times.end());
  const size_t mid = times.size() / 2;
  return times.size() % 2 ? times[mid] : 0.5 * (times[mid - 1] + times[mid]);
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
};

struct Result {
  Comparison comparison;
  double kernel_ms = 0, reference_ms = 0;
};

Result verify(const Engine& engine, const Layer& layer, Op op, uint64_t seed, int64_t repeats) {
  const Geometry& g = layer.geometry;
  Random random(seed);
  const size_t input_count = element_count(g.input_dims());
  const size_t filter_count = element_count(g.filter_dims());
  const size_t output_count = element_count(g.output_dims());
  const size_t k = size_t(g.filter().k);
  const double windows = double(g.output().n) * double(g.output().h) * double(g.output().w);
  Result result;

  switch (op) {
    case Op::conv2d: {
      const std::vector<float> x = random_tensor(input_count, random);
      const std::vector<float> w = random_tensor(filter_count, random);
      const std::vector<float> b = layer.bias ? random_tensor(k, random) : std::vector<float>();
      const float* bias = layer.bias ? b.data() : nullptr;
      std::vector<float> y = poisoned(output_count), y_ref(output_count), bound(output_count);
      result.kernel_ms = median_milliseconds(
          repeats, [&] { engine.conv2d(g, x.data(), w.data(), bias, y.data()); });
      result.reference_ms =
          milliseconds([&] { reference::conv2d(g, x.data(), w.data(), bias, y_ref.data()); });
      const std::vector<float> abs_b = absolute(b);
      reference::conv2d(g, absolute(x).data(), absolute(w).data(),
                        layer.bias ? abs_b.data() : nullptr, bound.data());
      const double terms =
          double(g.filter().r) * double(g.filter().s) * double(g.filter().c) + (layer.bias ? 1 : 0);
      result.comparison.add(y, y_ref, bound, terms);
      break;
    }
    case Op::conv2d_backprop_input: {
      const std::vector<float> w = random_tensor(filter_count, random);
      const std::vector<float> dy = random_tensor(output_count, random);
      std::vector<float> dx = poisoned(input_count), dx_ref(input_count), bound(input_count);
      result.kernel_ms = median_milliseconds(
          repeats, [&] { engine.conv2d_backprop_input(g, w.data(), dy.data(), dx.data()); });
      result.reference_ms = milliseconds(
          [&] { reference::conv2d_backprop_input(g, w.data(), dy.data(), dx_ref.data()); });
      reference::conv2d_backprop_input(g, absolute(w).data(), absolute(dy).data(), bound.data());
      const double terms = double(g.filter().r) * double(g.filter().s) * double(g.filter().k);
      result.comparison.add(dx, dx_ref, bound, terms);
      break;
    }
    case Op::conv2d_backprop_filter: {
      const std::vector<float> x = random_tensor(input_count, random);
      const std::vector<float> dy = random_tensor(output_count, random);
      std::vector<float> dw = poisoned(filter_count), dw_ref(filter_count), bound(filter_count);
      std::vector<float> db = poisoned(k), db_ref(k), db_bound(k);
      float* bias_grad = layer.bias ? db.data() : nullptr;
      result.kernel_ms = median_milliseconds(repeats, [&] {
        engine.conv2d_backprop_filter(g, x.data(), dy.data(), dw.data(), bias_grad);
      });
      result.reference_ms = milliseconds([&] {
        reference::conv2d_backprop_filter(g, x.data(), dy.data(), dw_ref.data(),
                                          layer.bias ? db_ref.data() : nullptr);
      });
      reference::conv2d_backprop_filter(g, absolute(x).data(), absolute(dy).data(), bound.data(),
                                        db_bound.data());
      result.comparison.add(dw, dw_ref, bound, windows);
      if (layer.bias) result.comparison.add(db, db_ref, db_bound, windows);
      break;
    }
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
  std::string kernel;
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

}  // namespace

int verify_command(int argc, char** argv) {
  cli::Parser parser(
      "convgen verify",
      "Runs every layer and operator of a shape config with the compiled kernel and "
      "the naive reference on random data (uniform in [-1, 1)), and reports the error "
      "against a rounding bound and the times. Exits 1 if any kernel is over the bound.");
  parser.option("--config", "FILE", "shape config, e.g. configs/resnet_layers.json", true)
      .option("--ops", "OP,...", "operators to verify (default: each layer's ops)")
      .option("--layers", "NAME,...", "layers to verify (default: all)")
      .option("--seed", "S", "random seed (default 1); the same seed gives the same data")
      .option("--repeats", "N",
              "timed kernel runs after one warm-up; the median is shown (default 5)");
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

  const Engine engine(convgen_kernels());
  std::vector<Case> cases;
  size_t name_width = 0, key_width = 0, kernel_width = 0;
  for (size_t i = 0; i < config.layers.size(); i++) {
    const Layer& layer = config.layers[i];
    if (!names.empty() && !names.count(layer.name)) continue;
    for (Op op : layer.ops) {
      if (!ops.empty() && !ops.count(op)) continue;
      cases.push_back({i, op, std::string(engine.select(op, layer.geometry).name)});
      name_width = std::max(name_width, layer.name.size());
      key_width = std::max(key_width, layer.geometry.key().size());
      kernel_width = std::max(kernel_width, cases.back().kernel.size());
    }
  }
  if (cases.empty()) {
    throw Error(ErrorId::invalid_argument, args.has("--ops") ? "--ops" : "--layers",
                "selects no operator of any layer in " + config_path);
  }

  std::cout << "convgen verify: " << config_path << ", " << cases.size() << " kernels, seed "
            << seed << ", median of " << repeats << " runs after a warm-up\n"
            << "tolerance per element: |kernel - reference| <= 2^-24 * (n + 1) * sum|a*b| "
               "(n = terms in its sum); ratio = max |error| / tolerance, over 1 fails\n\n";
  const Table table({{"layer", name_width, false},
                     {"op", std::string("conv2d_backprop_filter").size(), false},
                     {"shape key", key_width, false},
                     {"kernel", kernel_width, false},
                     {"max |err|", 9, true},
                     {"tol ratio", 9, true},
                     {"kernel ms", 10, true},
                     {"GFLOP/s", 8, true},
                     {"ref ms", 10, true},
                     {"speedup", 8, true},
                     {"status", 6, false}});
  table.print_header(std::cout);

  size_t over = 0;
  std::vector<std::string> errors;
  for (const Case& c : cases) {
    const Layer& layer = config.layers[c.layer_index];
    // Each case has its own data, the same whichever subset of the config is verified.
    const uint64_t case_seed =
        seed ^ (0x9E3779B97F4A7C15ull * (3 * uint64_t(c.layer_index) + uint64_t(c.op) + 1));
    Result r;
    std::string status = "ok";
    try {
      r = verify(engine, layer, c.op, case_seed, repeats);
      if (!(r.comparison.max_ratio <= 1.0)) status = "OVER";
    } catch (const Error& e) {
      // A kernel that fails to run is reported with the others, not the end of the table.
      status = "ERROR";
      errors.push_back(layer.name + " " + to_string(c.op) + ": " + e.what());
    }
    if (status != "ok") over++;
    if (status == "ERROR") {
      table.print_row(std::cout, {layer.name, to_string(c.op), layer.geometry.key(), c.kernel, "-",
                                  "-", "-", "-", "-", "-", status});
      continue;
    }
    const double gflops = layer.geometry.flops() / (r.kernel_ms * 1e6);
    table.print_row(std::cout, {layer.name, to_string(c.op), layer.geometry.key(), c.kernel,
                                format("%.2e", r.comparison.max_error),
                                format("%.2e", r.comparison.max_ratio), format("%.3f", r.kernel_ms),
                                format("%.1f", gflops), format("%.1f", r.reference_ms),
                                format("%.1fx", r.reference_ms / r.kernel_ms), status});
  }
  for (const std::string& error : errors) std::cout << "\nerror: " << error;
  if (!errors.empty()) std::cout << "\n";
  std::cout << "\nverified " << cases.size() << " kernels, " << over << " over tolerance\n";
  return over ? 1 : 0;
}

}  // namespace convgen::tools
