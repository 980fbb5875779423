// Every kernel's result is bitwise the same whatever the number of threads: schedules parallelize
// only across independent outputs, and every reduction runs in one fixed order.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "convgen/convgen.h"
#include "convgen_test_kernels.h"
#include "kernel_tester.h"

namespace convgen::testing {
namespace {

// The kernel's output (and the bias gradient, for backprop_filter) with `threads` threads.
std::vector<float> run(const Kernel& kernel, const Geometry& g, int threads) {
  std::mt19937 rng(42);
  const std::vector<float> x = random_tensor(g.input_dims(), rng);
  const std::vector<float> w = random_tensor(g.filter_dims(), rng);
  const std::vector<float> dy = random_tensor(g.output_dims(), rng);
  const std::vector<float> bias = random_tensor({1, 1, 1, g.filter().k}, rng);
  const KernelList only{kernel};
  const Engine engine(only);
  set_num_threads(threads);
  std::vector<float> out;
  switch (kernel.op) {
    case Op::conv2d:
      out.resize(dy.size());
      engine.conv2d(g, x.data(), w.data(), bias.data(), out.data());
      break;
    case Op::conv2d_backprop_input:
      out.resize(x.size());
      engine.conv2d_backprop_input(g, w.data(), dy.data(), out.data());
      break;
    case Op::conv2d_backprop_filter:
      out.resize(w.size() + size_t(g.filter().k));
      engine.conv2d_backprop_filter(g, x.data(), dy.data(), out.data(), out.data() + w.size());
      break;
  }
  set_num_threads(0);
  return out;
}

// Geometries for the generic kernels: several rows of work for several threads to share.
std::vector<Geometry> generic_geometries(DataFormat format) {
  Attributes same;
  same.padding = Padding::SAME;
  same.format = format;
  Attributes strided = same;
  strided.stride_h = 2;
  strided.dilation_w = 2;
  return {Geometry::make({2, 17, 13, 5}, {3, 3, 5, 19}, same),
          Geometry::make({3, 24, 9, 16}, {5, 2, 16, 8}, strided)};
}

}  // namespace

TEST_CASE("determinism: results are bitwise identical for 1, 2 and 8 threads", "[kernels]") {
  int compared = 0;
  for (const Kernel& kernel : convgen_test_kernels()) {
    std::vector<Geometry> geometries;
    if (kernel.shape_key.empty()) {
      geometries = generic_geometries(kernel.format);
    } else {
      geometries = {Geometry::from_key(std::string(kernel.shape_key), "shape_key")};
    }
    for (const Geometry& g : geometries) {
      INFO(kernel.name << " on " << g.key());
      const std::vector<float> one = run(kernel, g, 1);
      for (int threads : {2, 8, 1}) {
        const std::vector<float> other = run(kernel, g, threads);
        REQUIRE(other.size() == one.size());
        INFO(threads << " threads");
        CHECK(std::memcmp(one.data(), other.data(), one.size() * sizeof(float)) == 0);
        compared++;
      }
    }
  }
  CHECK(compared > 0);
}

}  // namespace convgen::testing
