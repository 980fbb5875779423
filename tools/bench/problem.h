// What `convgen verify` and `convgen bench` share: one layer and operator made concrete (random
// inputs, the reference's outputs and a rounding bound per output element), the check of any
// implementation's outputs against that bound, and interleaved timing.
//
// The bound. A float32 sum of n products a*b, in any order and with or without fused multiply-adds,
// differs from the exact sum by at most about n * u * sum |a*b| (u = 2^-24, the unit roundoff); the
// reference (double accumulation, one final rounding) adds at most u * |result|. So element i
// passes when
//     |kernel_i - reference_i| <= tol_i = u * (n + 1) * absdot_i + 1e-30,
// where absdot_i = sum |a*b| over the terms of element i -- exactly what the reference computes
// when given |X|, |W| (|dY|, |b|) -- and n is the number of terms: R*S*C (+1 with a bias) for
// conv2d, R*S*K (an upper bound) for conv2d_backprop_input, N*Ho*Wo for conv2d_backprop_filter and
// its bias gradient.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "convgen/convgen.h"
#include "convgen/shape_config.h"

namespace convgen::tools {

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

// The largest error of a set of outputs, absolute and relative to the bound above.
struct Comparison {
  double max_error = 0;
  double max_ratio = 0;

  void add(const std::vector<float>& kernel, const std::vector<float>& reference,
           const std::vector<float>& absdot, double terms);
  bool ok() const { return max_ratio <= 1.0; }  // false for NaN too
};

// One case made concrete. Operators have one output, or two for conv2d_backprop_filter with a bias
// (the filter gradient and the bias gradient).
struct Problem {
  using Outputs = std::vector<std::vector<float>>;
  Geometry geometry;
  Op op = Op::conv2d;
  bool has_bias = false;
  // The operator's inputs, dense and C-ordered in the geometry's layout (filters HWIO); those the
  // operator does not read are empty, and so is `bias` without a bias.
  std::vector<float> input, filter, bias, out_backprop;
  std::vector<size_t> sizes;  // of each output
  Outputs expected, bound;    // the reference's outputs; sum |a*b| per element
  double terms = 0;           // n of the bound
  double reference_ms = 0;    // one run of the reference

  // Outputs that must be overwritten completely: any element left alone stays NaN and fails.
  Outputs poisoned_outputs() const;
  Comparison compare(const Outputs& outputs) const;
  // The tensors of a call that writes `outputs`, with `packed` for the filter when not null.
  Tensors tensors(Outputs& outputs, const PackedFilter* packed = nullptr) const;
  // Computes the outputs with the kernel `engine` selects, or with the naive reference.
  void run(const Engine& engine, Outputs& outputs) const;
  void run_reference(Outputs& outputs) const;
};

// Random inputs uniform in [-1, 1) from `seed` (the same data for the same seed), and the
// reference's outputs and bounds. Throws what the geometry's size checks throw, naming "--config".
Problem make_problem(const Layer& layer, Op op, uint64_t seed);

// One implementation of an operator prepared for one Problem (its buffers allocated, its weights
// reordered, ...): run() computes the outputs and is all that is timed; results() returns the last
// run's outputs in the Problem's layout (a conversion, if any, happens there, outside the timing).
class Implementation {
 public:
  virtual ~Implementation() = default;
  virtual void run() = 0;
  virtual const Problem::Outputs& results() = 0;
  // How long its idle worker threads may keep spinning after a run, competing for the cores with
  // whatever runs next: OpenMP's (oneDNN) spin for milliseconds, OpenBLAS's for about 2^28 cycles.
  virtual int spin_ms() const { return kDefaultSpinMs; }
  static constexpr int kDefaultSpinMs = 30;
  // Untimed, around each timed sample and the untimed run before it: where its threads run
  // (oneDNN's OpenMP threads, one per CPU, as oneDNN's own benchmarks bind them), and back.
  virtual void enter() {}
  virtual void leave() {}
};

// The wall time of one call, in milliseconds.
double milliseconds(const std::function<void()>& run);

double median(std::vector<double> values);

// A computation to time, and how long the machine needs after it before the next one is timed.
struct TimedRun {
  std::function<void()> run;
  int spin_ms = Implementation::kDefaultSpinMs;
  std::function<void()> enter = [] {}, leave = [] {};  // Implementation::enter() and leave()
};

// Times several computations interleaved: `warmups` untimed rounds, then `repeats` rounds of one
// timed run of each, so that all see the same machine state (clock speed, caches, other load).
// Each timed run waits out the previous computation's spin_ms (so that no idle threads compete
// with it) and follows one untimed run of itself (so that its own threads are awake), between its
// enter() and leave().
// Returns the times of each, in milliseconds, in run order.
std::vector<std::vector<double>> interleaved_milliseconds(int64_t warmups, int64_t repeats,
                                                          const std::vector<TimedRun>& runs);

}  // namespace convgen::tools
