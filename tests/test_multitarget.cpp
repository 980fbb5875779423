// The x86 kernels are Halide multitarget libraries: AVX-512, AVX2+FMA and SSE4.1 variants behind
// one entry point that picks the best the CPU supports. These tests force each variant in turn (by
// vetoing the features above it) and check it against the reference, so that variants this
// machine would never pick on its own are still run. Each test case must run in its own process,
// since each kernel's wrapper remembers its first choice: they are hidden from a plain run of the
// test binary, and CTest runs each alone (tag [multitarget], label kernels).
#include <algorithm>
#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "HalideRuntime.h"
#include "convgen_test_kernels.h"
#include "kernel_tester.h"

namespace convgen::testing {
namespace {

bool has_feature(int count, const uint64_t* features, halide_target_feature_t f) {
  const int word = int(f) / 64;
  return word < count && (features[word] >> (int(f) % 64) & 1);
}

// The highest ISA level the variant chooser may accept, and the highest it did accept. The
// wrapper asks about every variant but the baseline (SSE4.1, never asked about) and keeps the
// best one allowed; it remembers the choice, so each kernel asks once.
enum class Level { sse41, avx2, avx512 };
Level allowed = Level::avx512;
Level chosen = Level::sse41;

Level level_of(int count, const uint64_t* features) {
  if (has_feature(count, features, halide_target_feature_avx512) ||
      has_feature(count, features, halide_target_feature_avx512_skylake)) {
    return Level::avx512;
  }
  if (has_feature(count, features, halide_target_feature_avx2)) return Level::avx2;
  return Level::sse41;
}

int veto_above_allowed(int count, const uint64_t* features) {
  const Level level = level_of(count, features);
  if (level > allowed || !halide_default_can_use_target_features(count, features)) return 0;
  chosen = std::max(chosen, level);
  return 1;
}

bool cpu_can(Level level) {
  switch (level) {
    case Level::sse41: return __builtin_cpu_supports("sse4.1");
    case Level::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Level::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }
  return false;
}

// Runs every kernel of the test library (specialized at its shape, generic on a few shapes) with
// the variant chooser capped at `level`, and checks which variant ran.
void check_variant(Level level) {
  if (!cpu_can(level)) {
    WARN("skipped: this CPU cannot run the variant");
    return;
  }
  allowed = level;
  halide_set_custom_can_use_target_features(veto_above_allowed);
  const std::vector<Geometry> generic_shapes = {
      Geometry::make({2, 9, 7, 5}, {3, 3, 5, 11}, [] {
        Attributes a;
        a.padding = Padding::SAME;
        a.stride_h = 2;
        return a;
      }()),
  };
  int checked = 0;
  for (const Kernel& kernel : convgen_test_kernels()) {
    const KernelTester tester(kernel);
    if (!kernel.shape_key.empty()) {
      CHECK(tester.test(Geometry::from_key(std::string(kernel.shape_key), "shape_key"), 7).max_ratio <= 1.0);
      checked++;
    } else if (kernel.format == DataFormat::NHWC) {
      for (const Geometry& g : generic_shapes) CHECK(tester.test(g, 7).max_ratio <= 1.0);
      checked++;
    }
  }
  CHECK(checked > 0);
  CHECK(int(chosen) == int(level));
}

}  // namespace

TEST_CASE("multitarget: the SSE4.1 variants match the reference", "[.multitarget]") {
  check_variant(Level::sse41);
}

TEST_CASE("multitarget: the AVX2 variants match the reference", "[.multitarget]") {
  check_variant(Level::avx2);
}

TEST_CASE("multitarget: the AVX-512 variants match the reference", "[.multitarget]") {
  check_variant(Level::avx512);
}

}  // namespace convgen::testing
