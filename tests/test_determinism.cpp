// Every kernel's result is bitwise the same on every run of the same call, whatever the number of
// threads: schedules parallelize only across independent outputs, every reduction runs in one fixed
// order, and nothing depends on where the buffers lie or what the output held before.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "convgen/convgen.h"
#include "convgen_test_kernels.h"
#include "kernel_tester.h"

namespace convgen::testing {
namespace {

// How one run of a call differs from the first.
struct Run {
  int threads;
  size_t offset;  // where the result starts in its storage, in floats (1: not vector-aligned)
  float fill;     // what the storage holds before the call
};

// The result of `kernel` on `g` (always the same operands) in the manner of `run`.
std::vector<float> result(const Kernel& kernel, const Geometry& g, const Run& run) {
  const Operands operands(g, 42);
  const KernelList only{kernel};
  const Engine engine(only);
  std::vector<float> storage(run.offset + result_size(kernel.op, g), run.fill);
  set_num_threads(run.threads);
  testing::run(engine, kernel.op, g, operands, storage.data() + run.offset, kernel.filter);
  set_num_threads(0);
  return {storage.begin() + long(run.offset), storage.end()};
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

TEST_CASE("determinism: results are bitwise identical across runs and for 1, 2 and 8 threads",
          "[kernels]") {
  // The first run, then the same call again with the result elsewhere in memory over other
  // contents, then with more threads.
  const Run first{1, 0, NAN};
  const Run again[] = {{1, 1, -7.0f}, {2, 0, 0.0f}, {8, 3, INFINITY}, {1, 0, NAN}};
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
      const std::vector<float> expected = result(kernel, g, first);
      for (const Run& run : again) {
        INFO(run.threads << " threads, result at offset " << run.offset << " over " << run.fill);
        const std::vector<float> other = result(kernel, g, run);
        REQUIRE(other.size() == expected.size());
        CHECK(std::memcmp(expected.data(), other.data(), expected.size() * sizeof(float)) == 0);
        compared++;
      }
    }
  }
  CHECK(compared > 0);
}

}  // namespace convgen::testing
