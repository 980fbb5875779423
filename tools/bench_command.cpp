// convgen bench: every layer and operator of a shape config with convgen's specialized and generic
// kernels and with its peers -- oneDNN (its preferred weight format, and HWIO), im2col + OpenBLAS
// sgemm (forward), the naive reference (small layers) -- side by side, per thread count: median
// and minimum time, GFLOP/s, convgen's share of the machine's measured peak FMA throughput, and
// the ratio of the best peer's time to convgen's.
//
// Every implementation's outputs are first checked against the reference with verify's rounding
// bound (bench/problem.h): a fast wrong kernel is a bug, not a result, so one that is over the
// bound is reported and not timed. Then one more warm-up run of each, and rounds of one timed
// sample of each in turn, so that all see the same machine state; a sample repeats a short run
// until it lasts about kMinSampleMs.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "HalideRuntime.h"
#include "bench/im2col_openblas.h"
#include "bench/onednn.h"
#include "bench/peak_fma.h"
#include "bench/problem.h"
#include "cli.h"
#include "command_parsers.h"
#include "commands.h"
#include "convgen/convgen.h"
#include "convgen/shape_config.h"
#include "convgen_kernels.h"
#include "tool_kernels.h"

namespace convgen::tools {
namespace {

constexpr uint64_t kDefaultSeed = 1;
constexpr int64_t kDefaultRepeats = 10;
constexpr double kDefaultReferenceMaxGflop = 0.5;
constexpr int kMaxThreads = 256;
constexpr double kMinSampleMs = 1.0;
constexpr int64_t kMaxRunsPerSample = 10000;

// The implementations, in table order.
enum Impl {
  kSpecialized, kPacked, kGeneric, kCuda, kOnednnAny, kOnednnHwio, kIm2col, kReference, kImpls
};
// Their names in --json, and in the tables.
constexpr const char* kImplNames[kImpls] = {
    "convgen-specialized", "convgen-packed", "convgen-generic", "convgen-cuda",
    "onednn-any",          "onednn-hwio",    "im2col-openblas", "reference"};
constexpr const char* kImplShort[kImpls] = {"spec",     "packed",    "gen",    "cuda",
                                            "dnnl-any", "dnnl-hwio", "im2col", "naive"};
bool is_peer(int impl) { return impl == kOnednnAny || impl == kOnednnHwio || impl == kIm2col; }

// The short operator names of the tables (STYLE.md), the full ones in --json.
const char* short_name(Op op) {
  switch (op) {
    case Op::conv2d:
      return "forward";
    case Op::conv2d_backprop_input:
      return "backprop_input";
    case Op::conv2d_backprop_filter:
      return "backprop_filter";
  }
  return "?";
}

std::string format(const char* pattern, ...) {
  char buffer[512];
  va_list args;
  va_start(args, pattern);
  std::vsnprintf(buffer, sizeof buffer, pattern, args);
  va_end(args);
  return buffer;
}

// An implementation's part of a row.
struct Measurement {
  enum class State { absent, wrong, failed, timed };
  State state = State::absent;
  std::string detail;  // absent: why; wrong: the error ratio; failed: the error; oneDNN: its kernel
  double median_ms = 0, min_ms = 0;
};

struct Row {
  size_t layer;
  Op op;
  int threads;
  double flops;
  Measurement m[kImpls];

  // The fastest peer that was timed, or -1.
  int best_peer() const {
    int best = -1;
    for (int i = 0; i < kImpls; i++) {
      if (is_peer(i) && m[i].state == Measurement::State::timed &&
          (best < 0 || m[i].median_ms < m[best].median_ms)) {
        best = i;
      }
    }
    return best;
  }
  // How many times faster convgen's specialized kernel (`impl`: with the filter as it is, or
  // packed) runs than the best peer; 0 when either is missing.
  double ratio(int impl = kSpecialized) const {
    const int best = best_peer();
    if (best < 0 || m[impl].state != Measurement::State::timed) return 0;
    return m[best].median_ms / m[impl].median_ms;
  }
};

// An Engine's kernel, or the reference, as an Implementation.
class EngineImplementation : public Implementation {
 public:
  EngineImplementation(const Problem& problem, const Engine* engine)
      : problem_(problem), engine_(engine), outputs_(problem.poisoned_outputs()) {}
  void run() override {
    if (engine_) {
      problem_.run(*engine_, outputs_);
    } else {
      problem_.run_reference(outputs_);
    }
  }
  const Problem::Outputs& results() override { return outputs_; }

 private:
  const Problem& problem_;
  const Engine* engine_;  // null: the reference
  Problem::Outputs outputs_;
};

// A kernel bound to its tensors, which a CUDA kernel keeps on the device, as a training step on a
// GPU has them: run() is the kernel alone, and results() copies the outputs back.
class BoundImplementation : public Implementation {
 public:
  BoundImplementation(const Problem& problem, const Engine& engine)
      : outputs_(problem.poisoned_outputs()),
        call_(engine, problem.op, problem.geometry, problem.tensors(outputs_)) {}
  void run() override { call_.run(); }
  const Problem::Outputs& results() override {
    call_.copy_results();
    return outputs_;
  }

 private:
  Problem::Outputs outputs_;
  BoundCall call_;
};

// The specialized kernel with a filter packed once, outside the timing (Engine::pack_filter), as
// an inference loop runs it with its weights: like oneDNN's preferred weight format. Where no
// kernel takes a packed filter, pack_filter keeps it as HWIO and the call runs that kernel.
class PackedImplementation : public Implementation {
 public:
  PackedImplementation(const Problem& problem, const Engine& engine)
      : packed_(engine.pack_filter(problem.op, problem.geometry, problem.filter.data())),
        outputs_(problem.poisoned_outputs()),
        call_(engine, problem.op, problem.geometry, problem.tensors(outputs_, &packed_)) {}
  void run() override { call_.run(); }
  const Problem::Outputs& results() override { return outputs_; }

 private:
  PackedFilter packed_;
  Problem::Outputs outputs_;
  BoundCall call_;
};

// The thread counts each library reports after being told `threads`.
struct ThreadCounts {
  int convgen = 0, onednn = 0, openblas = 0;
};

ThreadCounts set_threads(int threads) {
  ThreadCounts counts;
  counts.convgen = convgen::set_num_threads(threads);
  counts.onednn = bench::onednn_set_threads(threads);
  counts.openblas = bench::openblas_set_threads(threads);
  return counts;
}

std::string describe(const ThreadCounts& counts) {
  const auto count = [](int n) { return n > 0 ? std::to_string(n) : std::string("not set"); };
  std::string text = "convgen (own thread pool) " + count(counts.convgen);
  if (bench::onednn_built()) text += ", oneDNN " + count(counts.onednn);
  if (bench::openblas_built()) text += ", OpenBLAS " + count(counts.openblas);
  return text;
}

// The 1-, 5- and 15-minute load averages, or "unknown".
std::string load_average() {
  double loads[3];
  if (getloadavg(loads, 3) != 3) return "unknown";
  return format("%.2f, %.2f, %.2f", loads[0], loads[1], loads[2]);
}

std::string cpu_model() {
  std::ifstream file("/proc/cpuinfo");
  std::string line;
  while (std::getline(file, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

// Prepares every implementation for one problem, checks its outputs against the reference, and
// times those that pass, interleaved. Fills row.m.
// `selected` says which to run at all (--impls).
void measure(const Problem& problem, const Engine* specialized, const Engine* generic,
             const Engine& cuda, bool time_reference, const std::set<int>& selected,
             int64_t repeats, Row& row) {
  std::unique_ptr<Implementation> impls[kImpls];
  const auto make = [&](int i, auto&& factory) {
    if (!selected.count(i)) return;
    try {
      impls[i] = factory();
    } catch (const Error& e) {
      row.m[i].state = Measurement::State::absent;
      row.m[i].detail = e.reason();
    }
  };
  // Each absent implementation's `detail` says why (the notes under the tables); one not selected
  // is simply left out.
  make(kSpecialized, [&]() -> std::unique_ptr<Implementation> {
    if (!specialized) {
      throw Error(ErrorId::unsupported, "spec",
                  "no specialized kernel: the layer is not in the built config");
    }
    return std::make_unique<EngineImplementation>(problem, specialized);
  });
  make(kPacked, [&]() -> std::unique_ptr<Implementation> {
    if (!specialized) throw Error(ErrorId::unsupported, "packed", "no specialized kernel");
    if (problem.op == Op::conv2d_backprop_filter) {
      throw Error(ErrorId::unsupported, "packed", "the operator reads no filter");
    }
    return std::make_unique<PackedImplementation>(problem, *specialized);
  });
  make(kGeneric, [&]() -> std::unique_ptr<Implementation> {
    if (!generic) throw Error(ErrorId::unsupported, "gen", "no generic kernel for the layout");
    return std::make_unique<EngineImplementation>(problem, generic);
  });
  make(kCuda, [&]() -> std::unique_ptr<Implementation> {
    if (const std::string why = cuda_refusal(); !why.empty()) {
      throw Error(ErrorId::unsupported, "cuda", why);
    }
    return std::make_unique<BoundImplementation>(problem, cuda);  // throws when no kernel fits
  });
  make(kOnednnAny, [&] {
    return bench::make_onednn(problem, bench::OnednnWeights::any, &row.m[kOnednnAny].detail);
  });
  make(kOnednnHwio, [&] {
    return bench::make_onednn(problem, bench::OnednnWeights::hwio, &row.m[kOnednnHwio].detail);
  });
  make(kIm2col, [&] { return bench::make_im2col_openblas(problem); });
  make(kReference, [&]() -> std::unique_ptr<Implementation> {
    if (!time_reference) throw Error(ErrorId::unsupported, "naive", "over --reference-max-gflop");
    return std::make_unique<EngineImplementation>(problem, nullptr);
  });

  // The check, which is also the first warm-up run.
  std::vector<int> timed;
  for (int i = 0; i < kImpls; i++) {
    if (!impls[i]) continue;
    if (i == kReference) {  // the reference is the standard, and too slow to run twice for nothing
      timed.push_back(i);
      continue;
    }
    try {
      impls[i]->run();
      const Comparison comparison = problem.compare(impls[i]->results());
      if (comparison.ok()) {
        timed.push_back(i);
      } else {
        row.m[i].state = Measurement::State::wrong;
        row.m[i].detail = format("max |error| / bound = %.3g (max |error| %.3g)",
                                 comparison.max_ratio, comparison.max_error);
      }
    } catch (const std::exception& e) {  // convgen::Error, or a peer's own (dnnl::error)
      row.m[i].state = Measurement::State::failed;
      row.m[i].detail = e.what();
    }
  }
  // A second warm-up of the fast ones, which also says how many runs make one sample: a run
  // shorter than kMinSampleMs is repeated within a sample (the clock and the call overhead would
  // dominate it otherwise), and the sample's time divided by the count.
  std::vector<int64_t> counts;
  for (int i : timed) {
    double ms = problem.reference_ms;
    if (i != kReference) {
      impls[i]->enter();
      ms = milliseconds([&] { impls[i]->run(); });
      impls[i]->leave();
    }
    counts.push_back(std::clamp<int64_t>(int64_t(std::ceil(kMinSampleMs / std::max(ms, 1e-6))), 1,
                                         kMaxRunsPerSample));
  }
  std::vector<TimedRun> runs;
  for (size_t t = 0; t < timed.size(); t++) {
    const int i = timed[t];
    runs.push_back({[&impls, i, n = counts[t]] {
                      for (int64_t k = 0; k < n; k++) impls[i]->run();
                    },
                    impls[i]->spin_ms(), [&impls, i] { impls[i]->enter(); },
                    [&impls, i] { impls[i]->leave(); }});
  }
  const std::vector<std::vector<double>> times = interleaved_milliseconds(0, repeats, runs);
  for (size_t t = 0; t < timed.size(); t++) {
    Measurement& m = row.m[timed[t]];
    m.state = Measurement::State::timed;
    m.median_ms = median(times[t]) / double(counts[t]);
    m.min_ms = *std::min_element(times[t].begin(), times[t].end()) / double(counts[t]);
  }
}

// A table whose text columns are left-aligned and number columns right-aligned, as text or as
// markdown.
class Table {
 public:
  struct Column {
    std::string title;
    bool numeric;
  };
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  std::string text() const {
    std::vector<size_t> widths;
    for (const Column& c : columns_) widths.push_back(c.title.size());
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); i++) widths[i] = std::max(widths[i], row[i].size());
    }
    std::vector<std::string> titles;
    for (const Column& c : columns_) titles.push_back(c.title);
    std::string out = line(titles, widths);
    for (size_t i = 0; i < columns_.size(); i++) {
      out += (i ? "  " : "") + std::string(widths[i], '-');
    }
    out += "\n";
    for (const auto& row : rows_) out += line(row, widths);
    return out;
  }

  std::string markdown() const {
    std::string out = "|";
    for (const Column& c : columns_) out += " " + c.title + " |";
    out += "\n|";
    for (const Column& c : columns_) out += c.numeric ? "---:|" : "---|";
    out += "\n";
    for (const auto& row : rows_) {
      out += "|";
      for (const std::string& cell : row) out += " " + cell + " |";
      out += "\n";
    }
    return out;
  }

 private:
  std::string line(const std::vector<std::string>& cells, const std::vector<size_t>& widths) const {
    std::string out;
    for (size_t i = 0; i < columns_.size(); i++) {
      const std::string pad(widths[i] - cells[i].size(), ' ');
      if (i) out += "  ";
      out += columns_[i].numeric ? pad + cells[i] : cells[i] + (i + 1 < columns_.size() ? pad : "");
    }
    return out + "\n";
  }

  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

double gflops(double flops, double ms) { return flops / (ms * 1e6); }

std::string ms_cell(const Measurement& m, double value) {
  switch (m.state) {
    case Measurement::State::absent:
      return "-";
    case Measurement::State::wrong:
      return "WRONG";
    case Measurement::State::failed:
      return "ERROR";
    case Measurement::State::timed:
      break;
  }
  // Three significant digits, at least: "1234", "12.3", "1.234", "0.0123".
  return value >= 100  ? format("%.0f", value)
         : value >= 10 ? format("%.1f", value)
         : value >= 1  ? format("%.3f", value)
                       : format("%.3g", value);
}

std::string gflops_cell(const Measurement& m, double flops) {
  if (m.state != Measurement::State::timed) return "-";
  const double g = gflops(flops, m.median_ms);
  return g >= 10 ? format("%.0f", g) : format("%.1f", g);
}

double parse_number(const std::string& text, const std::string& argument) {
  char* end = nullptr;
  const double value = text.empty() ? NAN : std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value)) {
    throw Error(ErrorId::invalid_argument, argument, "not a number: " + cli::quote(text));
  }
  return value;
}

struct Options {
  std::string config;
  std::set<int> impls;           // Impl values
  std::vector<int> threads;
  int64_t repeats = kDefaultRepeats;
  double reference_max_gflop = kDefaultReferenceMaxGflop;
  uint64_t seed = kDefaultSeed;
};

Options parse_options(const cli::Arguments& args, int cpus) {
  Options options;
  options.config = args.value("--config");
  if (args.has("--impls")) {
    for (const std::string& name : cli::parse_list(args.value("--impls"), "--impls")) {
      const auto* found = std::find_if(std::begin(kImplNames), std::end(kImplNames),
                                       [&](const char* impl) { return name == impl; });
      if (found == std::end(kImplNames)) {
        std::string known;
        for (const char* impl : kImplNames) known += std::string(known.empty() ? "" : ", ") + impl;
        throw Error(ErrorId::invalid_argument, "--impls",
                    "unknown implementation " + cli::quote(name) + " (known: " + known + ")");
      }
      options.impls.insert(int(found - std::begin(kImplNames)));
    }
  } else {
    for (int i = 0; i < kImpls; i++) options.impls.insert(i);
  }
  if (args.has("--threads")) {
    for (int64_t n : cli::parse_int_list(args.value("--threads"), "--threads")) {
      if (n < 1 || n > kMaxThreads) {
        throw Error(
            ErrorId::invalid_argument, "--threads",
            "must be in [1, " + std::to_string(kMaxThreads) + "], got " + std::to_string(n));
      }
      if (std::count(options.threads.begin(), options.threads.end(), int(n))) {
        throw Error(ErrorId::invalid_argument, "--threads",
                    "lists " + std::to_string(n) + " twice");
      }
      options.threads.push_back(int(n));
    }
  } else {
    options.threads = {1};
    if (cpus > 1) options.threads.push_back(cpus);
  }
  if (args.has("--repeats")) {
    options.repeats = cli::parse_int(args.value("--repeats"), "--repeats");
    if (options.repeats < 1 || options.repeats > 1000) {
      throw Error(ErrorId::invalid_argument, "--repeats",
                  "must be in [1, 1000], got " + std::to_string(options.repeats));
    }
  }
  if (args.has("--reference-max-gflop")) {
    options.reference_max_gflop =
        parse_number(args.value("--reference-max-gflop"), "--reference-max-gflop");
    if (options.reference_max_gflop < 0) {
      throw Error(ErrorId::invalid_argument, "--reference-max-gflop", "must be >= 0");
    }
  }
  if (args.has("--seed")) {
    const int64_t value = cli::parse_int(args.value("--seed"), "--seed");
    if (value < 0) throw Error(ErrorId::invalid_argument, "--seed", "must be >= 0");
    options.seed = uint64_t(value);
  }
  return options;
}

// The machine's peak FMA throughput per thread count: the highest measurement so far. Other load
// on the machine lowers a measurement, so it is taken before the benchmark, briefly between its
// cases, and after it; the highest is the 100% of "% of peak".
class Peaks {
 public:
  explicit Peaks(std::vector<int> threads) : threads_(std::move(threads)) {}
  void measure(int trials, double trial_seconds) {
    for (int t : threads_) {
      loop_ = bench::measure_peak_fma(t, trials, trial_seconds);
      peaks_[t] = std::max(peaks_[t], loop_.gflops);
    }
  }
  double at(int threads) const { return peaks_.at(threads); }
  // "AVX-512, 16 independent accumulators per thread"
  std::string loop() const {
    return loop_.isa + ", " + std::to_string(loop_.accumulators) +
           " independent accumulators per thread";
  }
  // "1 thread 135.2 GFLOP/s, 2 threads 262.0 GFLOP/s"
  std::string describe() const {
    std::string text;
    for (int t : threads_) {
      text += format("%s%d thread%s %.1f GFLOP/s", text.empty() ? "" : ", ", t, t == 1 ? "" : "s",
                     peaks_.at(t));
    }
    return text;
  }

 private:
  std::vector<int> threads_;
  std::map<int, double> peaks_;
  bench::PeakFma loop_;
};

// The benchmark's output: the text of stdout, the markdown, the --json records, and whether a
// convgen kernel was wrong or failed.
struct Report {
  std::string text, markdown, json;
  bool convgen_wrong = false;
};

Report make_report(const ShapeConfig& config, const Options& options, const std::vector<Row>& rows,
                   const Peaks& peaks, const std::map<int, ThreadCounts>& counts,
                   const std::string& header, const std::string& footer) {
  Report report;
  std::ostringstream text, markdown;
  const std::string legend =
      "ms: median of the timed runs; min: the fastest; GF/s: 2*N*Ho*Wo*K*R*S*C / median (the "
      "same count for every operator); %peak: spec's GF/s / the highest peak FMA throughput "
      "measured (over 100%: the peak was never measured on a machine as quiet as the kernel "
      "found it)\n"
      "spec: convgen's kernel specialized for the layer; packed: the same with the filter packed "
      "once (Engine::pack_filter, not timed, as dnnl-any's reorder), which a layer with "
      "packed_filter runs with its kernel for packed filters; gen: convgen's generic kernel; cuda: "
      "convgen's CUDA kernel (specialized when built for the layer), its tensors on the device "
      "(only with a CUDA device); "
      "dnnl-any: oneDNN, its preferred weight format (the reorder from and to HWIO is not timed); "
      "dnnl-hwio: oneDNN, HWIO weights; im2col: im2col + OpenBLAS sgemm (forward, NHWC; the "
      "im2col copy is timed, single-threaded; a 1x1 stride-1 layer needs none); naive: the "
      "reference (layers under " +
      format("%g", options.reference_max_gflop) +
      " GFLOP)\nbest peer: the fastest of dnnl-any, dnnl-hwio, im2col; ratio = best peer ms / spec "
      "ms (above 1: convgen is faster), packed ratio = best peer ms / packed ms; '-': not run (see "
      "the notes); WRONG: over the rounding bound against the reference, not timed\n";
  text << "\n" << legend;
  markdown << "# convgen bench\n\n```\n" << header << "```\n\n" << legend << "\n";
  std::vector<std::string> notes;
  std::set<std::string> seen_notes;
  const auto note = [&](const std::string& line) {
    if (seen_notes.insert(line).second) notes.push_back(line);
  };
  nlohmann::ordered_json records = nlohmann::ordered_json::array();

  for (int t : options.threads) {
    std::vector<Table::Column> columns = {{"layer", false},   {"op", false},  {"spec ms", true},
                                          {"spec min", true}, {"GF/s", true}, {"%peak", true}};
    for (int i = kPacked; i < kImpls; i++) {
      columns.push_back({std::string(kImplShort[i]) + " ms", true});
      columns.push_back({"GF/s", true});
    }
    columns.push_back({"best peer", false});
    columns.push_back({"ratio", true});
    columns.push_back({"packed ratio", true});
    Table table(columns);
    std::map<Op, std::vector<double>> ratios[2];  // spec, packed
    for (const Row& row : rows) {
      if (row.threads != t) continue;
      const Layer& layer = config.layers[row.layer];
      const Measurement& spec = row.m[kSpecialized];
      std::vector<std::string> cells = {layer.name, short_name(row.op),
                                        ms_cell(spec, spec.median_ms), ms_cell(spec, spec.min_ms),
                                        gflops_cell(spec, row.flops)};
      cells.push_back(spec.state == Measurement::State::timed
                          ? format("%.0f%%", 100 * gflops(row.flops, spec.median_ms) / peaks.at(t))
                          : "-");
      for (int i = kPacked; i < kImpls; i++) {
        cells.push_back(ms_cell(row.m[i], row.m[i].median_ms));
        cells.push_back(gflops_cell(row.m[i], row.flops));
      }
      const int best = row.best_peer();
      cells.push_back(best >= 0 ? kImplShort[best] : "-");
      for (int packed = 0; packed < 2; packed++) {
        const double ratio = row.ratio(packed ? kPacked : kSpecialized);
        cells.push_back(ratio > 0 ? format("%.2f", ratio) : "-");
        if (ratio > 0) ratios[packed][row.op].push_back(ratio);
      }
      table.add(cells);

      const std::string where = layer.name + " " + to_string(row.op) + ": ";
      for (int i = 0; i < kImpls; i++) {
        const Measurement& m = row.m[i];
        switch (m.state) {
          case Measurement::State::absent:
            if (!options.impls.count(i)) {
              break;
            } else if (i == kSpecialized) {
              note(layer.name +
                   ": no specialized kernel (its shape is not in the config the tool "
                   "was built with, or this CPU cannot run it)");
            } else if (i == kReference) {
              note("naive: not timed on layers of " + format("%g", options.reference_max_gflop) +
                   " GFLOP or more (every output is still checked against it)");
            } else if ((i == kOnednnAny || i == kOnednnHwio) && !bench::onednn_built()) {
              note("oneDNN: " + bench::onednn_about());
            } else if (i == kIm2col && !bench::openblas_built()) {
              note("OpenBLAS: " + bench::openblas_about());
            } else if (!(i == kIm2col && row.op != Op::conv2d) &&
                       !(i == kPacked && row.op == Op::conv2d_backprop_filter)) {
              note(where + kImplShort[i] + " not run: " + m.detail);
            }
            break;
          case Measurement::State::wrong:
          case Measurement::State::failed:
            if (i != kReference && !is_peer(i)) report.convgen_wrong = true;
            note(format("%s%s %s (%d threads): %s", where.c_str(), kImplShort[i],
                        m.state == Measurement::State::wrong ? "WRONG" : "ERROR", t,
                        m.detail.c_str()));
            break;
          case Measurement::State::timed: {
            nlohmann::ordered_json record = {{"layer", layer.name},
                                             {"op", to_string(row.op)},
                                             {"impl", kImplNames[i]},
                                             {"threads", t},
                                             {"median_ms", m.median_ms},
                                             {"min_ms", m.min_ms},
                                             {"gflops", gflops(row.flops, m.median_ms)},
                                             {"shape_key", layer.geometry.key()}};
            if (i == kOnednnAny || i == kOnednnHwio) record["onednn_impl"] = m.detail;
            records.push_back(std::move(record));
            break;
          }
        }
      }
    }

    std::string summary;
    for (int packed = 0; packed < 2; packed++) {
      std::string lines;
      for (Op op : {Op::conv2d, Op::conv2d_backprop_input, Op::conv2d_backprop_filter}) {
        const std::vector<double>& r = ratios[packed][op];
        if (r.empty()) continue;
        double log_sum = 0;
        size_t faster = 0;
        for (double value : r) {
          log_sum += std::log(value);
          faster += value > 1;
        }
        lines += format("  %-16s geomean ratio %.2f over %zu layers (convgen faster on %zu)\n",
                        short_name(op), std::exp(log_sum / double(r.size())), r.size(), faster);
      }
      if (!lines.empty()) {
        summary += packed ? "convgen, the filter packed once / best peer:\n"
                          : "convgen specialized / best peer:\n";
        summary += lines;
      }
    }
    if (summary.empty()) summary = "no layer has both a specialized kernel and a peer\n";

    const std::string title = format("%d thread%s: %s; peak %.1f GFLOP/s", t, t == 1 ? "" : "s",
                                     describe(counts.at(t)).c_str(), peaks.at(t));
    text << "\n"
         << title << "\n"
         << table.text() << summary;
    markdown << "## " << title << "\n\n" << table.markdown() << "\n";
    std::istringstream lines(summary);
    for (std::string line; std::getline(lines, line);) {
      if (line[0] == ' ') {
        markdown << "- " << line.substr(line.find_first_not_of(' ')) << "\n";
      } else {
        markdown << "\n" << line << "\n\n";
      }
    }
    markdown << "\n";
  }

  // Which oneDNN kernels ran (per thread count they may differ; the first one's are shown).
  std::string onednn_kernels;
  for (const Row& row : rows) {
    if (row.threads != options.threads.front()) continue;
    const Measurement &any = row.m[kOnednnAny], &hwio = row.m[kOnednnHwio];
    if (any.state == Measurement::State::absent && hwio.state == Measurement::State::absent) {
      continue;
    }
    onednn_kernels += "  " + config.layers[row.layer].name + " " + short_name(row.op) + ": any " +
                      (any.state == Measurement::State::absent ? "-" : any.detail) + ", hwio " +
                      (hwio.state == Measurement::State::absent ? "-" : hwio.detail) + "\n";
  }
  if (!onednn_kernels.empty()) {
    const int t = options.threads.front();
    text << "\noneDNN's kernels (" << t << " thread" << (t == 1 ? "" : "s") << "):\n"
         << onednn_kernels;
    markdown << "oneDNN's kernels:\n\n```\n" << onednn_kernels << "```\n\n";
  }
  text << "\n" << footer;
  markdown << footer << "\n";
  if (!notes.empty()) {
    text << "\nnotes:\n";
    markdown << "Notes:\n\n";
    for (const std::string& line : notes) {
      text << "  " << line << "\n";
      markdown << "- " << line << "\n";
    }
  }
  if (report.convgen_wrong) {
    text << "\na convgen kernel is over the rounding bound or failed (see the notes)\n";
  }

  // One record per line.
  report.json = "[";
  for (size_t i = 0; i < records.size(); i++) {
    report.json += (i ? ",\n " : "\n ") + records[i].dump();
  }
  report.json += "\n]\n";
  report.text = text.str();
  report.markdown = markdown.str();
  return report;
}

}  // namespace

int bench_command(int argc, char** argv) {
  const cli::Parser parser = bench_parser();
  const cli::Arguments args = parser.parse(argc, argv);
  if (args.help()) {
    std::cout << parser.usage();
    return 0;
  }
  const int cpus = int(std::max(1u, std::thread::hardware_concurrency()));
  const Options options = parse_options(args, cpus);
  const ShapeConfig config = read_shape_config(options.config);
  const std::vector<cli::LayerOp> cases = cli::select_layer_ops(args, config, options.config);
  std::unique_ptr<cli::OutputFile> json_file, markdown_file;
  if (args.has("--json")) json_file = std::make_unique<cli::OutputFile>(args.value("--json"), "--json");
  if (args.has("--markdown")) {
    markdown_file = std::make_unique<cli::OutputFile>(args.value("--markdown"), "--markdown");
  }

  // The Engine of `convgen run`, and one that can only choose a generic kernel, as in verify.
  const Engine engine(convgen_kernels());
  KernelList generic_kernels;
  for (const Kernel& kernel : convgen_kernels()) {
    if (kernel.shape_key.empty()) generic_kernels.push_back(kernel);
  }
  const Engine generic_engine(generic_kernels);
  // The CUDA kernels, timed with their tensors on the device.
  const Engine cuda_engine(tool_kernels(), Device::cuda);

  // The header: what runs, on what, against what.
  Peaks peaks(options.threads);
  peaks.measure(10, 0.02);
  std::map<int, ThreadCounts> counts;
  for (int t : options.threads) counts[t] = set_threads(t);
  std::ostringstream header;
  header << "convgen bench: " << options.config << ", " << cases.size()
         << " layer/operator pairs, seed " << options.seed
         << "; per implementation a check against the reference and a warm-up, then "
         << options.repeats
         << " timed rounds, each running every implementation once in turn (one sample: as many "
            "runs as take "
         << format("%g", kMinSampleMs) << " ms)\n";
  header << "machine: " << cpu_model() << ", " << cpus << " CPUs; load average " << load_average()
         << "\n";
  header << "oneDNN: " << bench::onednn_about() << "\n";
  header << "OpenBLAS: " << bench::openblas_about() << "\n";
  header << "peak FMA throughput (" << peaks.loop() << "): " << peaks.describe() << "\n";
  for (int t : options.threads) {
    if (t > cpus) {
      header << "note: " << t << " threads on " << cpus << " CPUs: the threads share CPUs\n";
    }
  }
  std::cout << header.str() << std::flush;

  // The measurements: each case's reference once, then every thread count.
  std::vector<Row> rows;
  for (size_t c = 0; c < cases.size(); c++) {
    const Layer& layer = config.layers[cases[c].layer];
    const Op op = cases[c].op;
    // The data of each case is that of `convgen verify` with the same seed.
    const uint64_t case_seed =
        options.seed ^ (0x9E3779B97F4A7C15ull * (3 * uint64_t(cases[c].layer) + uint64_t(op) + 1));
    const Problem problem = make_problem(layer, op, case_seed);
    std::cerr << format("bench: [%zu/%zu] %s %s: reference %.3g ms\n", c + 1, cases.size(),
                        layer.name.c_str(), to_string(op), problem.reference_ms);
    const bool specialized = !engine.select(op, layer.geometry).shape_key.empty();
    const bool generic = generic_engine.explain(op, layer.geometry).chosen != nullptr;
    const double flops = layer.geometry.flops();
    for (int t : options.threads) {
      set_threads(t);
      Row row{cases[c].layer, op, t, flops, {}};
      measure(problem, specialized ? &engine : nullptr, generic ? &generic_engine : nullptr,
              cuda_engine, flops < options.reference_max_gflop * 1e9, options.impls, options.repeats, row);
      std::string progress = format("bench:   %d thread%s:", t, t == 1 ? "" : "s");
      for (int i = 0; i < kImpls; i++) {
        if (row.m[i].state != Measurement::State::absent) {
          progress +=
              std::string(" ") + kImplShort[i] + " " + ms_cell(row.m[i], row.m[i].median_ms);
        }
      }
      std::cerr << progress << "\n";
      rows.push_back(std::move(row));
    }
    peaks.measure(5, 0.01);
  }
  peaks.measure(10, 0.02);
  const std::string footer =
      "peak FMA throughput, the highest measured before, during and after "
      "the benchmark: " +
      peaks.describe() + "; load average at the end " + load_average() + "\n";

  const Report report = make_report(config, options, rows, peaks, counts, header.str(), footer);
  std::cout << report.text << std::flush;
  if (json_file) json_file->commit(report.json);
  if (markdown_file) markdown_file->commit(report.markdown);
  return report.convgen_wrong ? 1 : 0;
}

}  // namespace convgen::tools
