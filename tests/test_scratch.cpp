// The cache of kernels' scratch memory: a large block freed is kept and handed to the next
// request it fits, aligned and padded as Halide requires, up to the cache's limit; a kernel's
// second call reuses the blocks of its first; release_scratch_memory() returns them all.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "HalideRuntime.h"
#include "convgen/convgen.h"
#include "convgen_test_kernels.h"
#include "geometry_builder.h"
#include "kernel_tester.h"

// Sanitizer builds keep no blocks (AddressSanitizer would not see a use after free).
#ifndef CONVGEN_SANITIZE

namespace convgen::testing {
namespace {

constexpr size_t kMiB = size_t(1) << 20;

// Empties the cache (installed before main()).
void fresh_cache() {
  release_scratch_memory();
  REQUIRE(cached_scratch_bytes() == 0);
}

TEST_CASE("scratch memory: a freed block is reused, aligned, with readable slack", "[unit]") {
  fresh_cache();
  const size_t bytes = kMiB + 3;
  auto* first = static_cast<unsigned char*>(halide_malloc(nullptr, bytes));
  REQUIRE(first != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(first) % 64 == 0);
  std::memset(first, 0xab, bytes);
  volatile unsigned char around = first[-8];  // Halide may read 8 bytes before and after
  around = first[bytes + 7];
  (void)around;
  halide_free(nullptr, first);
  CHECK(cached_scratch_bytes() >= bytes);

  void* again = halide_malloc(nullptr, kMiB);  // fits the kept block
  CHECK(again == first);
  CHECK(cached_scratch_bytes() == 0);
  void* other = halide_malloc(nullptr, kMiB);  // nothing kept: a new block
  CHECK(other != again);
  halide_free(nullptr, again);
  halide_free(nullptr, other);
  CHECK(cached_scratch_bytes() >= 2 * kMiB);
  release_scratch_memory();
  CHECK(cached_scratch_bytes() == 0);
}

TEST_CASE("scratch memory: a kept block much larger than a request is not spent on it",
          "[unit]") {
  fresh_cache();
  void* large = halide_malloc(nullptr, 4 * kMiB);
  halide_free(nullptr, large);
  void* small = halide_malloc(nullptr, kMiB);
  CHECK(small != large);
  CHECK(cached_scratch_bytes() >= 4 * kMiB);
  halide_free(nullptr, small);
  release_scratch_memory();
}

TEST_CASE("scratch memory: the cache keeps at most 256 MiB, and no small blocks",
          "[unit]") {
  fresh_cache();
  std::vector<void*> blocks;
  for (int i = 0; i < 3; i++) blocks.push_back(halide_malloc(nullptr, 100 * kMiB));
  for (void* block : blocks) halide_free(nullptr, block);
  CHECK(cached_scratch_bytes() >= 200 * kMiB);
  CHECK(cached_scratch_bytes() <= 256 * kMiB);
  release_scratch_memory();
  halide_free(nullptr, halide_malloc(nullptr, 1000));
  CHECK(cached_scratch_bytes() == 0);
}

TEST_CASE("scratch memory: a kernel's second call reuses its first call's blocks", "[unit]") {
  const Engine engine(convgen_test_kernels());
  release_scratch_memory();
  // A generic kernel pads its 64 x 64 x 32 input (557 KB) ahead of the reduction.
  const Geometry g = GeometryBuilder().input(1, 64, 64, 32).filter(3, 3, 16).same().build();
  std::mt19937 rng(3);
  const std::vector<float> x = random_tensor(g.input_dims(), rng);
  const std::vector<float> w = random_tensor(g.filter_dims(), rng);
  std::vector<float> first(size_t(g.output().n * g.output().h * g.output().w * g.output().c));
  std::vector<float> second(first.size(), -1.0f);
  engine.conv2d(g, x.data(), w.data(), nullptr, first.data());
  const size_t kept = cached_scratch_bytes();
  CHECK(kept > 0);
  engine.conv2d(g, x.data(), w.data(), nullptr, second.data());
  CHECK(cached_scratch_bytes() == kept);
  CHECK(second == first);
  release_scratch_memory();
}

}  // namespace
}  // namespace convgen::testing

#endif  // CONVGEN_SANITIZE
