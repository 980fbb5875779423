// Every CUDA kernel of convgen_cuda_test_kernels against the naive reference, on a CUDA device
// (cuda_main.cpp skips the suite without one): the specialized kernels on their layer's shape, the
// generic kernels on a grid of edge cases, each through an Engine, as an application calls them.
#include <catch2/catch.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "convgen_cuda_test_kernels.h"
#include "kernel_tester.h"

namespace convgen::testing {
namespace {

// Channel counts around a warp and a register tile (32 lanes x 2), pixel counts around the
// 8-pixel tile, strides larger than the filter, dilations, odd and large explicit pads.
const std::vector<Case> kGrid = {
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, Padding::VALID},
    {1, 5, 6, 3, 1, 3, 3},
    {2, 11, 9, 5, 9, 3, 3},
    {1, 7, 5, 17, 33, 1, 1, 1, 1, 1, 1, Padding::VALID},
    {1, 9, 17, 31, 64, 3, 3, 2, 2},
    {1, 8, 8, 65, 63, 3, 3, 1, 1, 2, 2},
    {3, 6, 14, 2, 5, 1, 3, 1, 3, 1, 1, Padding::SAME},
    {1, 15, 15, 3, 8, 7, 7, 2, 2},
    {1, 13, 12, 3, 16, 5, 2, 2, 2, 2, 1, Padding::VALID},
    {1, 12, 12, 4, 8, 2, 3, 3, 4, 1, 1, Padding::EXPLICIT, {2, 0, 1, 3}},
    {1, 4, 5, 3, 4, 3, 3, 1, 1, 1, 1, Padding::EXPLICIT, {7, 0, 0, 9}},
    {2, 12, 13, 5, 7, 3, 3, 2, 3, 2, 1, Padding::VALID},
    {1, 20, 19, 40, 70, 3, 3, 1, 1, 1, 1, Padding::SAME},
};

TEST_CASE("CUDA generic kernels match the reference on the grid", "[cuda]") {
  for (const Kernel& kernel : convgen_cuda_test_kernels()) {
    if (!kernel.shape_key.empty()) continue;
    DYNAMIC_SECTION(kernel.name) {
      const KernelTester tester(kernel);
      double worst = 0;
      uint32_t seed = 1;
      for (const Case& c : kGrid) {
        const Geometry g = make_geometry(c, kernel.format);
        INFO(g.key());
        const Agreement a = tester.test(g, seed++);
        CHECK(a.max_ratio <= 1.0);
        worst = std::max(worst, a.max_ratio);
      }
      std::cout << kernel.name << ": " << kGrid.size() << " geometries, max error/tolerance "
                << worst << "\n";
    }
  }
}

TEST_CASE("CUDA specialized kernels match the reference on their shape", "[cuda]") {
  int specialized = 0;
  for (const Kernel& kernel : convgen_cuda_test_kernels()) {
    if (kernel.shape_key.empty()) continue;
    specialized++;
    DYNAMIC_SECTION(kernel.name) {
      const Geometry g = Geometry::from_key(std::string(kernel.shape_key), "shape_key");
      const KernelTester tester(kernel);
      for (uint32_t seed : {1u, 2u}) CHECK(tester.test(g, seed).max_ratio <= 1.0);
    }
  }
  CHECK(specialized == 34);  // as in test_kernels.cpp: 8 layers x 3 operators + 4 x 2 + 2 x 1;
                             // no CUDA kernels for packed filters
}

TEST_CASE("CUDA kernels are deterministic", "[cuda]") {
  // backprop_filter's split reduction adds its partial sums in a fixed order: no atomics.
  for (const Kernel& kernel : convgen_cuda_test_kernels()) {
    if (!kernel.shape_key.empty() || kernel.op != Op::conv2d_backprop_filter) continue;
    DYNAMIC_SECTION(kernel.name) {
      const KernelList only{kernel};
      const Engine engine(only);
      const Geometry g = make_geometry({2, 20, 19, 40, 70, 3, 3}, kernel.format);
      std::vector<float> x(size_t(checked_element_count(g.input_dims(), "x")), 0.5f);
      std::vector<float> dy(size_t(checked_element_count(g.output_dims(), "dy")));
      for (size_t i = 0; i < dy.size(); i++) dy[i] = float(int(i % 7) - 3) * 0.37f;
      std::vector<float> first(size_t(checked_element_count(g.filter_dims(), "dw")));
      std::vector<float> again(first.size());
      engine.conv2d_backprop_filter(g, x.data(), dy.data(), first.data(), nullptr);
      for (int run = 0; run < 3; run++) {
        engine.conv2d_backprop_filter(g, x.data(), dy.data(), again.data(), nullptr);
        CHECK(again == first);
      }
    }
  }
}

}  // namespace
}  // namespace convgen::testing
