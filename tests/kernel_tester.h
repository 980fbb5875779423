// Checks one compiled kernel against the naive reference on one geometry, in the manner of
// XNNPACK's testers: random data from a printed seed, the failing coordinate on failure.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "convgen/convgen.h"

namespace convgen::testing {

// A geometry in data-format-independent terms; `pads` = {top, bottom, left, right} for EXPLICIT.
struct Case {
  int64_t n, h, w, c, k, r, s;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  Padding padding = Padding::SAME;
  std::array<int64_t, 4> pads{};
};

// The Geometry of `c` in `format`.
Geometry make_geometry(const Case& c, DataFormat format);

// A tensor of `dims` with entries uniform in [-1, 1).
std::vector<float> random_tensor(const std::array<int64_t, 4>& dims, std::mt19937& rng);

// Random operands for any operator on `g`, drawn from `seed`: the input, the filter, the output
// gradient and the bias.
struct Operands {
  Operands(const Geometry& g, uint32_t seed);
  std::vector<float> x, w, dy, bias;
};

// The number of floats `op` computes on `g`: the output, the input gradient, or the filter gradient
// followed by the bias gradient.
size_t result_size(Op op, const Geometry& g);

// Runs `op` on `g` through `engine` into `result` (result_size(op, g) floats), with the filter as
// it is, or packed by the engine first (FilterLayout::blocked: the engine must have a kernel for
// it).
void run(const Engine& engine, Op op, const Geometry& g, const Operands& operands, float* result,
         FilterLayout filter = FilterLayout::hwio);

// The largest error seen, as a fraction of the tolerance (1 = at the bound).
struct Agreement {
  double max_abs_error = 0;
  double max_ratio = 0;
};

class KernelTester {
 public:
  explicit KernelTester(const Kernel& kernel) : kernel_(kernel) {}

  // Runs the kernel and the reference on random data and REQUIREs every element to agree within
  // the float32 accumulation bound: |kernel - reference| <= gamma(n) * sum |a * b| + u * |reference|,
  // with n the number of terms in the element's sum and u = 2^-24.
  Agreement test(const Geometry& g, uint32_t seed) const;

 private:
  const Kernel& kernel_;
};

}  // namespace convgen::testing
