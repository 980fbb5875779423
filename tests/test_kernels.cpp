// Every compiled kernel in the build's kernel list against the naive reference, over parametrized
// geometry tables. New kernels in the list are covered without touching this file.
#include <iostream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "convgen_test_kernels.h"
#include "kernel_tester.h"

namespace convgen::testing {
namespace {

// Runs every generic kernel of the list (each in its own layout) on every case.
void check_all_kernels(const std::vector<Case>& cases) {
  for (const Kernel& kernel : convgen_test_kernels()) {
    if (!kernel.shape_key.empty()) continue;
    DYNAMIC_SECTION(kernel.name) {
      const KernelTester tester(kernel);
      Agreement worst;
      uint32_t seed = 1;
      for (const Case& c : cases) {
        const Geometry g = make_geometry(c, kernel.format);
        const Agreement a = tester.test(g, seed++);
        CHECK(a.max_ratio <= 1.0);
        worst.max_abs_error = std::max(worst.max_abs_error, a.max_abs_error);
        worst.max_ratio = std::max(worst.max_ratio, a.max_ratio);
      }
      // Reported (not asserted beyond the per-element check) so runs show how close kernels come.
      std::cout << kernel.name << ": " << cases.size() << " geometries, max |error| "
                << worst.max_abs_error << ", max error/tolerance " << worst.max_ratio << "\n";
    }
  }
}

// The systematic grid: kernel shapes x strides x dilations x paddings, with sizes, channels and
// batch cycling through odd, prime and vector-width-straddling values.
std::vector<Case> grid() {
  const std::vector<std::pair<int64_t, int64_t>> kernels = {{1, 1}, {3, 3}, {7, 7}, {1, 3}, {5, 2}};
  const std::vector<std::pair<int64_t, int64_t>> strides = {{1, 1}, {2, 1}, {1, 3}, {4, 4}};
  const std::vector<std::pair<int64_t, int64_t>> dilations = {{1, 1}, {2, 3}, {3, 1}};
  const int64_t channels[] = {1, 3, 7, 16, 17, 2};
  const int64_t out_channels[] = {1, 5, 8, 13, 32, 19, 3};
  std::vector<Case> cases;
  int i = 0;
  for (auto [r, s] : kernels)
    for (auto [sh, sw] : strides)
      for (auto [dh, dw] : dilations)
        for (Padding p : {Padding::SAME, Padding::VALID, Padding::EXPLICIT}) {
          // At least the dilated filter, so VALID has an output, plus 0..4 extra rows/columns.
          const int64_t h = (r - 1) * dh + 1 + i % 5, w = (s - 1) * dw + 1 + (i * 3) % 5;
          Case c{1 + i % 3, h, w, channels[i % 6], out_channels[i % 7], r, s, sh, sw, dh, dw, p};
          if (p == Padding::EXPLICIT) c.pads = {i % 4, (i * 7) % 5, (i * 5) % 3, i % 6};
          cases.push_back(c);
          i++;
        }
  return cases;
}

}  // namespace

TEST_CASE("kernels match the reference on the geometry grid", "[kernels]") {
  check_all_kernels(grid());
}

TEST_CASE("kernels match the reference on SAME with odd padding totals", "[kernels]") {
  // Odd totals put the extra row at the bottom and the extra column at the right.
  check_all_kernels({
      {1, 5, 5, 3, 4, 4, 4},                 // total 3: 1 before, 2 after
      {2, 6, 7, 2, 3, 2, 3},                 // total 1 rows, 2 columns
      {1, 6, 6, 5, 9, 3, 3, 2, 2},           // out 3, total 1: 0 before, 1 after
      {1, 8, 9, 3, 3, 5, 4, 3, 2},           // uneven strides
      {3, 11, 4, 7, 17, 3, 2, 2, 1, 2, 3},   // dilated: effective 5x4
  });
}

TEST_CASE("kernels match the reference when the stride exceeds the kernel", "[kernels]") {
  // Some input rows and columns are read by no window; their input gradient is 0.
  check_all_kernels({
      {1, 9, 9, 3, 4, 1, 1, 3, 3, 1, 1, Padding::VALID},
      {2, 10, 11, 2, 5, 2, 2, 4, 3, 1, 1, Padding::VALID},
      {1, 13, 7, 5, 3, 3, 1, 4, 2, 1, 1, Padding::SAME},
      {1, 12, 12, 4, 8, 2, 3, 3, 4, 1, 1, Padding::EXPLICIT, {2, 0, 1, 3}},
  });
}

TEST_CASE("kernels match the reference on wide images with few channels", "[kernels]") {
  // Wider than a vector, with fewer channels than its lanes: a generic kernel vectorizes along
  // the width; a filter gradient with 3 in-channels takes the register tile of 3 positions.
  // From 4 vectors wide on, with unit column strides, images of 3 channels or one (read as
  // constant strides, and tiles of 4 vectors, or 8 from 8 vectors wide on, whose last one
  // overlaps the one before). Outputs of 3 channels or one with unit column strides: a generic
  // kernel for thin images keeps all of them in its tiles.
  check_all_kernels({
      {1, 7, 40, 3, 1, 3, 3},                                // an edge filter: 3 -> 1
      {2, 5, 37, 1, 3, 3, 5, 1, 2},                          // 1 -> 3, strided columns
      {1, 12, 41, 3, 64, 7, 7, 2, 2},                        // an RGB stem: 3 -> 64, 7x7 / 2
      {1, 9, 35, 2, 5, 3, 3, 1, 1, 2, 2, Padding::VALID},   // dilated
      {1, 6, 83, 3, 1, 3, 3},                                // edge, 83 columns
      {2, 5, 70, 1, 3, 3, 5, 2, 1},                          // 1 -> 3, strided rows
      {1, 8, 67, 3, 3, 3, 3, 1, 1, 2, 2},                    // 3 -> 3, dilated
      {1, 5, 100, 1, 2, 2, 3, 1, 1, 1, 1, Padding::EXPLICIT, {0, 2, 3, 1}},
      {1, 4, 66, 3, 1, 3, 3, 1, 1, 1, 1, Padding::VALID},   // 64 output columns
      {1, 4, 131, 3, 1, 3, 3},                               // edge: tiles of 8 vectors
      {1, 3, 140, 1, 3, 3, 3},                               // 1 -> 3, 140 columns
      // Tall enough for tasks of several rows: a generic kernel for thin images then runs
      // tiles of 2 rows, the last one of a task moved back; a row stride of 2 on the way.
      {1, 69, 70, 3, 1, 3, 3},                               // edge
      {1, 66, 45, 1, 3, 5, 3},                               // 1 -> 3, 5 x 3 filter
      {1, 70, 40, 3, 3, 3, 3, 2, 1},                         // 3 -> 3, strided rows
      // Fewer channels than lanes on the output side only: a generic kernel's vectors run along
      // the reduction's channels (a tail of 8 at 24) for tiles of 16 positions, which share them
      // with unit column strides and test a stride's predicate each with one of 3.
      {1, 6, 37, 3, 24, 3, 3},                                // input gradient: 3 <- 24
      {1, 5, 50, 2, 20, 3, 3, 1, 3},                          // columns strided by 3
      {1, 5, 40, 20, 3, 3, 3},                                // forward: 20 -> 3
  });
}

TEST_CASE("kernels match the reference on thin input gradients from deep output gradients",
          "[kernels]") {
  // Outputs of 3 channels or one summed over 16 channels or more (Thin::deep): tiles of all their
  // channels by positions, vectors along the out-channels (tails of 4, 1 and 8 lanes on
  // AVX-512), positions sharing their taps with a unit column stride, two phases of them with a
  // column stride of 2, one at a time with other strides and in outputs narrower than a tile.
  check_all_kernels({
      {1, 5, 23, 1, 32, 5, 5},                                // one channel, unit strides
      {2, 4, 37, 3, 20, 3, 3, 2, 1},                          // strided rows
      {1, 7, 45, 1, 20, 3, 3, 2, 2},                          // a column stride of 2
      {1, 8, 35, 3, 17, 7, 7, 2, 2},                          // a stem's, its width odd
      {1, 9, 30, 3, 16, 4, 4, 2, 2, 2, 1, Padding::EXPLICIT, {0, 3, 2, 1}},  // dilated rows
      {1, 6, 19, 3, 17, 3, 3, 1, 3},                          // columns strided by 3
      {1, 4, 9, 3, 40, 3, 3, 2, 2},                           // narrower than a tile
      {1, 3, 33, 1, 24, 2, 3, 1, 1, 1, 2, Padding::VALID},    // dilated columns
  });
}

TEST_CASE("kernels match the reference on filter gradients over many pixels", "[kernels]") {
  // A generic filter gradient whose tiles would each read more of the output gradient than the
  // L1 cache holds sums blocks of them, row by row: halves of two and three tiles, the last one
  // of a block partial (23 in-channels); with 3 in-channels, blocks of each task's tap columns
  // (3 of 5, the second task's moved back), a block of channels shifted inwards (70).
  check_all_kernels({
      {1, 96, 96, 23, 64, 1, 1},         // 9216 pixels: blocks on every ISA
      {2, 130, 70, 13, 32, 3, 3, 2, 2},  // 4550 pixels, strided: on AVX2 and AVX-512
      {2, 60, 40, 3, 70, 5, 5},          // 4800 pixels, an image's 3 in-channels
  });
}

TEST_CASE("kernels match the reference on filters of many taps and channels", "[kernels]") {
  // A generic forward pass or input gradient whose tiles would each read more of the filter than
  // the L2 cache holds (on AVX-512) sums blocks of a whole image, in chunks of 64 channels of
  // each tap: channels the chunks do not divide, a channel block shifted inwards, a partial last
  // tile of each row, strides and dilations, two images.
  check_all_kernels({
      {1, 7, 9, 200, 70, 5, 5},               // the forward pass in blocks
      {2, 8, 10, 200, 66, 5, 5, 2, 1, 1, 2},  // strided and dilated
      {1, 6, 11, 70, 200, 5, 5},              // the input gradient in blocks
  });
}

TEST_CASE("kernels match the reference with a column stride of 2", "[kernels]") {
  // A generic input gradient then runs tiles of positions of one phase (every other column),
  // twice as wide as its other tiles: channel tails, widths they do not divide, dilated and
  // padded columns, row strides of 1 to 3.
  check_all_kernels({
      {1, 7, 23, 17, 8, 3, 3, 2, 2},
      {2, 5, 21, 64, 16, 3, 3, 1, 2},
      {1, 6, 19, 33, 5, 2, 3, 3, 2, 1, 2, Padding::VALID},
      {1, 4, 12, 16, 3, 1, 1, 1, 2, 1, 1, Padding::VALID},
      {1, 9, 10, 130, 7, 3, 5, 2, 2, 1, 1, Padding::EXPLICIT, {1, 2, 0, 3}},
  });
}

TEST_CASE("kernels match the reference on tiny inputs", "[kernels]") {
  check_all_kernels({
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, Padding::VALID},  // a single multiply
      {1, 1, 1, 3, 2, 3, 3},                               // SAME: only the centre tap is inside
      {2, 3, 3, 2, 4, 3, 3, 1, 1, 1, 1, Padding::VALID},   // kernel equal to the input
      {1, 2, 5, 1, 1, 2, 5, 1, 1, 1, 1, Padding::VALID},
      {1, 1, 4, 2, 3, 1, 4, 2, 2, 3, 1},                   // 1-row input, dilated
  });
}

TEST_CASE("kernels match the reference with large asymmetric explicit pads", "[kernels]") {
  // Pads larger than the filter: whole output rows and columns read only zeros.
  check_all_kernels({
      {1, 4, 5, 3, 4, 3, 3, 1, 1, 1, 1, Padding::EXPLICIT, {7, 0, 0, 9}},
      {2, 6, 3, 2, 5, 2, 3, 2, 1, 2, 1, Padding::EXPLICIT, {0, 11, 5, 2}},
      {1, 3, 3, 17, 16, 1, 1, 1, 2, 1, 1, Padding::EXPLICIT, {4, 4, 1, 6}},
  });
}

TEST_CASE("kernels match the reference when the input size is not recoverable", "[kernels]") {
  // (in + pads - effective) is not a multiple of the stride: several input sizes give the same
  // output size, and the trailing rows/columns that no window reads get 0 in backprop_input.
  check_all_kernels({
      {1, 10, 10, 3, 4, 3, 3, 3, 3, 1, 1, Padding::VALID},  // 7 = 2*3 + 1
      {1, 11, 9, 2, 3, 2, 2, 4, 4, 1, 1, Padding::VALID},
      {2, 12, 13, 5, 7, 3, 3, 2, 3, 2, 1, Padding::VALID},
      {1, 8, 8, 4, 4, 3, 3, 3, 2, 1, 1, Padding::EXPLICIT, {1, 0, 0, 2}},
  });
}

TEST_CASE("kernels match the reference on channel counts around the vector width", "[kernels]") {
  // Lane counts are 4 (NEON, SSE), 8 (AVX2) and 16 (AVX-512): primes and +-1 around them.
  std::vector<Case> cases;
  for (int64_t c : {1, 4, 7, 8, 9, 15, 16, 17, 31, 33})
    cases.push_back({1, 5, 6, c, 40 - c, 3, 3, 1, 1, 1, 1, Padding::SAME});
  check_all_kernels(cases);
}

TEST_CASE("specialized kernels match the reference on their shape", "[kernels]") {
  int specialized = 0;
  for (const Kernel& kernel : convgen_test_kernels()) {
    if (kernel.shape_key.empty()) continue;
    specialized++;
    DYNAMIC_SECTION(kernel.name) {
      const Geometry g = Geometry::from_key(std::string(kernel.shape_key), "shape_key");
      const KernelTester tester(kernel);
      for (uint32_t seed : {1u, 2u, 3u}) CHECK(tester.test(g, seed).max_ratio <= 1.0);
    }
  }
  // 14 layers of tests/configs/test_layers.json: 8 with all three operators, 4 with two, 2 with
  // one; and for packed filters, 1 conv2d (valid_s2_5x2_dil's 3 in-channels make no block) and
  // 2 x 2.
  CHECK(specialized == 39);
}

}  // namespace convgen::testing
