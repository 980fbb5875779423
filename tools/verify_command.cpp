// convgen verify: runs every layer and operator of a shape config with the compiled kernels and
// with the naive reference, on the same random data, and prints one table row each: specialized
// kernel (and its kernel for packed filters, where the config has one), generic kernel and naive
// reference side by side.
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
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "bench/problem.h"
#include "cli.h"
#include "command_parsers.h"
#include "commands.h"
#include "convgen/convgen.h"
#include "convgen/shape_config.h"
#include "convgen_kernels.h"

namespace convgen::tools {
namespace {

constexpr uint64_t kDefaultSeed = 1;
constexpr int64_t kDefaultRepeats = 5;

// One compiled kernel's part of a row.
struct KernelResult {
  bool present = false;  // false: no such kernel for this case
  Comparison comparison;
  double ms = 0;
};

struct Result {
  KernelResult specialized, generic;
  KernelResult packed;  // the kernel for packed filters, checked once (not timed)
  double reference_ms = 0;
};

// Runs the case with the reference, then with each of `specialized` and `generic` that is not null
// (an Engine that selects the kernel of that kind), interleaved; and once with `specialized`'s
// kernel for packed filters when `packed`.
Result verify(const Engine* specialized, const Engine* generic, bool packed, const Layer& layer,
              Op op, uint64_t seed, int64_t repeats) {
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
  std::vector<TimedRun> runs;
  for (Contender& c : contenders) {
    c.outputs = problem.poisoned_outputs();
    // Both are convgen's: Halide's idle workers go to sleep at once, there is nothing to wait out.
    runs.push_back({[&problem, &c] { problem.run(*c.engine, c.outputs); }, 0});
  }
  // One warm-up run of each, then the timed rounds; the table shows the medians.
  const std::vector<std::vector<double>> ms = interleaved_milliseconds(1, repeats, runs);
  for (size_t i = 0; i < contenders.size(); i++) {
    KernelResult& r = *contenders[i].result;
    r.present = true;
    r.ms = median(ms[i]);
    r.comparison = problem.compare(contenders[i].outputs);
  }
  if (packed) {
    const PackedFilter filter = specialized->pack_filter(op, problem.geometry, problem.filter.data());
    Problem::Outputs outputs = problem.poisoned_outputs();
    BoundCall call(*specialized, op, problem.geometry, problem.tensors(outputs, &filter));
    call.run();
    call.copy_results();
    result.packed.present = true;
    result.packed.comparison = problem.compare(outputs);
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
  bool packed;       // the list has a kernel for packed filters this CPU can run for the case
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
  const cli::Parser parser = verify_parser();
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
      const bool packed = takes_blocked_filter(op, layer.geometry) &&
                          engine.explain(op, layer.geometry, FilterLayout::blocked).chosen;
      cases.push_back({i, op, specialized, generic, packed});
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
               "specialized for the layer's shape, packed = its kernel for packed filters "
               "(checked, not timed), gen = the generic kernel, naive = the reference;\nspec/gen, spec/naive: how many times faster the specialized kernel "
               "runs; '-': no such kernel\n\n";
  const Table table({{"layer", name_width, false},
                     {"op", std::string("conv2d_backprop_filter").size(), false},
                     {"chosen", std::string("specialized").size(), false},
                     {"spec ratio", 8, true},
                     {"spec ms", 9, true},
                     {"spec GF/s", 7, true},
                     {"packed ratio", 8, true},
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
    const size_t kernels = size_t(c.specialized) + size_t(c.packed) + size_t(c.generic);
    verified += kernels;
    Result r;
    std::string status = "ok";
    try {
      r = verify(c.specialized ? &engine : nullptr, c.generic ? &generic_engine : nullptr,
                 c.packed, layer, c.op, case_seed, repeats);
      for (const KernelResult* k : {&r.specialized, &r.packed, &r.generic}) {
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
      row.resize(13, "-");
      row.push_back(status);
      table.print_row(std::cout, row);
      continue;
    }
    const double flops = layer.geometry.flops();
    for (std::string& cell : kernel_cells(r.specialized, flops)) row.push_back(std::move(cell));
    row.push_back(r.packed.present ? format("%.2e", r.packed.comparison.max_ratio) : "-");
    for (std::string& cell : kernel_cells(r.generic, flops)) row.push_back(std::move(cell));
    row.push_back(format("%.1f", r.reference_ms));
    row.push_back(r.specialized.present && r.generic.present
                      ? format("%.2fx", r.generic.ms / r.specialized.ms)
                      : "-");
    row.push_back(r.specialized.present ? format("%.1fx", r.reference_ms / r.specialized.ms) : "-");
    row.push_back(status);
    table.print_row(std::cout, row);
  }

  std::cout << "\nshape keys (a specialized kernel is named convgen_<op>__<key>, a generic one "
               "convgen_<op>__generic_<nhwc|nchw>, or convgen_<op>__generic_nhwc_thin for thin "
               "images):\n";
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
