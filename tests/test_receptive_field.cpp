// Unit tests for convgen/receptive_field.h against brute force from SPEC.md's index formula:
// output pixel (i, j) with tap (r, s) reads input row i*sh + r*dh - pt and column j*sw + s*dw - pl.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "convgen/error.h"
#include "convgen/geometry.h"
#include "convgen/receptive_field.h"
#include "convgen/reference.h"
#include "geometry_builder.h"

namespace {

using convgen::ActivationShape;
using convgen::Error;
using convgen::ErrorId;
using convgen::FilterShape;
using convgen::Geometry;
using convgen::Range;
using convgen::Reader;
using convgen::testing::activation_index;
using convgen::testing::filter_index;
using convgen::testing::check_error;
using convgen::testing::GeometryBuilder;


std::string show(const Range& r) {
  return "[" + std::to_string(r.begin) + ", " + std::to_string(r.end) + ")";
}

// The spatial geometries checked pixel by pixel (batch and channels do not matter here).
std::vector<GeometryBuilder> spatial_cases() {
  using B = GeometryBuilder;
  return {
      B().input(1, 5, 5, 1).filter(3, 3, 1).valid(),
      B().input(1, 5, 6, 1).filter(4, 4, 1).same(),                // SAME 1/2 and 1/2
      B().input(1, 7, 6, 1).filter(3, 3, 1).stride(2, 2).same(),   // h 1/1, w 0/1
      B().input(1, 10, 9, 1).filter(2, 2, 1).stride(3, 4).same(),  // stride > kernel
      B().input(1, 8, 9, 1).filter(3, 3, 1).stride(4, 3).valid(),  // unread rows and columns
      B().input(1, 11, 9, 1).filter(3, 3, 1).dilation(2, 3).valid(),
      B().input(1, 10, 10, 1).filter(3, 2, 1).stride(2, 1).dilation(3, 2).same().nchw(),
      B().input(1, 9, 9, 1).filter(7, 7, 1).same(),
      B().input(1, 7, 7, 1).filter(3, 3, 1).explicit_pads(5, 6, 0, 7),  // windows all in padding
      B().input(1, 4, 4, 1).filter(3, 3, 1).explicit_pads(4, 4, 4, 4),
      B().input(1, 13, 11, 1).filter(3, 3, 1).stride(4, 2).dilation(2, 3).explicit_pads(2, 1, 3, 0),
      B().input(1, 2, 3, 1).filter(5, 7, 1).same(),  // input smaller than the filter
      B().input(1, 1, 1, 1).filter(1, 1, 1).valid(),
      B().input(1, 15, 4, 1).filter(1, 3, 1).stride(4, 1).dilation(1, 2).same(),
      B().input(1, 9, 8, 1).filter(8, 1, 1).stride(2, 3).dilation(1, 1).explicit_pads(7, 0, 0, 2),
  };
}

// The intersection of [begin, end) with [0, size), found by enumerating [0, size).
Range brute_clip(int64_t begin, int64_t end, int64_t size) {
  int64_t lo = -1, hi = -1;
  for (int64_t y = 0; y < size; y++) {
    if (y >= begin && y < end) {
      if (lo < 0) lo = y;
      hi = y + 1;
    }
  }
  return lo < 0 ? Range{} : Range{lo, hi};
}

auto as_tuple(const Reader& r) { return std::make_tuple(r.out_row, r.out_col, r.r, r.s); }

}  // namespace

TEST_CASE("receptive_field: every output pixel vs brute force", "[unit]") {
  for (const GeometryBuilder& b : spatial_cases()) {
    INFO(b.describe());
    const Geometry g = b.build();
    const int64_t H = g.input().h, W = g.input().w;
    const int64_t R = g.filter().r, S = g.filter().s;
    int64_t empty_windows = 0;
    for (int64_t i = 0; i < g.output().h; i++) {
      for (int64_t j = 0; j < g.output().w; j++) {
        INFO("output pixel (" << i << ", " << j << ")");
        const convgen::ReceptiveField f = convgen::receptive_field(g, i, j);
        // Unclipped: rows [i*sh - pt, i*sh - pt + (R-1)*dh + 1), columns likewise.
        const int64_t top = i * g.stride_h() - g.pad_top();
        const int64_t left = j * g.stride_w() - g.pad_left();
        const Range rows{top, top + (R - 1) * g.dilation_h() + 1};
        const Range cols{left, left + (S - 1) * g.dilation_w() + 1};
        INFO("unclipped " << show(f.unclipped.rows) << " x " << show(f.unclipped.cols)
                          << ", expected " << show(rows) << " x " << show(cols));
        CHECK(f.unclipped.rows == rows);
        CHECK(f.unclipped.cols == cols);

        // Clipped: the intersection with the input; a window with no input pixel (entirely in
        // the padding, in either dimension) is the empty Window{} in both dimensions.
        Range crows = brute_clip(rows.begin, rows.end, H);
        Range ccols = brute_clip(cols.begin, cols.end, W);
        if (crows.size() == 0 || ccols.size() == 0) {
          crows = ccols = Range{};
          empty_windows++;
        }
        INFO("clipped " << show(f.clipped.rows) << " x " << show(f.clipped.cols) << ", expected "
                        << show(crows) << " x " << show(ccols));
        CHECK(f.clipped.rows == crows);
        CHECK(f.clipped.cols == ccols);

        // Every tap that reads an input pixel lies inside the clipped window.
        for (int64_t r = 0; r < R; r++) {
          for (int64_t s = 0; s < S; s++) {
            const int64_t y = top + r * g.dilation_h(), x = left + s * g.dilation_w();
            if (y < 0 || y >= H || x < 0 || x >= W) continue;
            CHECK((y >= f.clipped.rows.begin && y < f.clipped.rows.end));
            CHECK((x >= f.clipped.cols.begin && x < f.clipped.cols.end));
          }
        }
      }
    }
    // Only the geometries with pads at least as large as the dilated filter have empty windows.
    const bool can_be_empty =
        g.pad_top() >= g.effective_filter_h() || g.pad_bottom() >= g.effective_filter_h() ||
        g.pad_left() >= g.effective_filter_w() || g.pad_right() >= g.effective_filter_w();
    if (!can_be_empty) CHECK(empty_windows == 0);
  }
}

TEST_CASE("receptive_field: windows entirely in the padding are empty", "[unit]") {
  // EXPLICIT pads 4/4 on a 4x4 input with a 3x3 filter: out = 4+8-3+1 = 10. Output row 0 reads
  // rows [-4, -1): all padding. Output (4, 4) reads rows and columns [0, 3).
  const Geometry g =
      GeometryBuilder().input(1, 4, 4, 1).filter(3, 3, 1).explicit_pads(4, 4, 4, 4).build();
  const convgen::ReceptiveField corner = convgen::receptive_field(g, 0, 0);
  CHECK(corner.unclipped.rows == Range{-4, -1});
  CHECK(corner.unclipped.cols == Range{-4, -1});
  CHECK(corner.clipped.rows.size() == 0);
  CHECK(corner.clipped.cols.size() == 0);
  // Row 0 is padding even where the columns are inside: still empty in both dimensions.
  const convgen::ReceptiveField edge = convgen::receptive_field(g, 0, 5);
  CHECK(edge.unclipped.cols == Range{1, 4});
  CHECK(edge.clipped.rows == Range{});
  CHECK(edge.clipped.cols == Range{});
  const convgen::ReceptiveField inside = convgen::receptive_field(g, 4, 4);
  CHECK(inside.clipped.rows == Range{0, 3});
  CHECK(inside.clipped.cols == Range{0, 3});
  // Output (9, 9) reads [5, 8): past the bottom-right edge.
  CHECK(convgen::receptive_field(g, 9, 9).clipped.rows.size() == 0);
  // A partly padded window is clipped: output (3, 6) reads rows [-1, 2) -> [0, 2), cols [2, 5) ->
  // [2, 4).
  const convgen::ReceptiveField partial = convgen::receptive_field(g, 3, 6);
  CHECK(partial.clipped.rows == Range{0, 2});
  CHECK(partial.clipped.cols == Range{2, 4});
}

TEST_CASE("readers: every input pixel vs brute force", "[unit]") {
  for (const GeometryBuilder& b : spatial_cases()) {
    INFO(b.describe());
    const Geometry g = b.build();
    int64_t total = 0, in_bounds_terms = 0;
    for (int64_t y = 0; y < g.input().h; y++) {
      for (int64_t x = 0; x < g.input().w; x++) {
        INFO("input pixel (" << y << ", " << x << ")");
        std::vector<Reader> expected;
        for (int64_t i = 0; i < g.output().h; i++)
          for (int64_t j = 0; j < g.output().w; j++)
            for (int64_t r = 0; r < g.filter().r; r++)
              for (int64_t s = 0; s < g.filter().s; s++)
                if (i * g.stride_h() + r * g.dilation_h() - g.pad_top() == y &&
                    j * g.stride_w() + s * g.dilation_w() - g.pad_left() == x) {
                  expected.push_back({i, j, r, s});
                }
        std::vector<Reader> actual = convgen::readers(g, y, x);
        // Documented order: by (r, s).
        CHECK(std::is_sorted(actual.begin(), actual.end(), [](const Reader& p, const Reader& q) {
          return std::make_pair(p.r, p.s) < std::make_pair(q.r, q.s);
        }));
        auto by_tuple = [](const Reader& p, const Reader& q) { return as_tuple(p) < as_tuple(q); };
        std::sort(expected.begin(), expected.end(), by_tuple);
        std::sort(actual.begin(), actual.end(), by_tuple);
        INFO(actual.size() << " readers, expected " << expected.size());
        CHECK(actual == expected);
        total += int64_t(actual.size());
      }
    }
    // Every in-bounds (output pixel, tap) term is the reader of exactly one input pixel.
    for (int64_t i = 0; i < g.output().h; i++)
      for (int64_t j = 0; j < g.output().w; j++)
        for (int64_t r = 0; r < g.filter().r; r++)
          for (int64_t s = 0; s < g.filter().s; s++) {
            const int64_t y = i * g.stride_h() + r * g.dilation_h() - g.pad_top();
            const int64_t x = j * g.stride_w() + s * g.dilation_w() - g.pad_left();
            if (y >= 0 && y < g.input().h && x >= 0 && x < g.input().w) in_bounds_terms++;
          }
    CHECK(total == in_bounds_terms);
  }
}

TEST_CASE("receptive_field and readers: pixels outside the tensors throw", "[unit]") {
  // VALID 5x6 input, 3x3 filter: output 3x4.
  const Geometry g = GeometryBuilder().input(1, 5, 6, 1).filter(3, 3, 1).valid().build();
  REQUIRE(g.output() == ActivationShape{1, 3, 4, 1});
  CHECK_NOTHROW(convgen::receptive_field(g, 2, 3));
  CHECK_NOTHROW(convgen::readers(g, 4, 5));
  for (auto p : {std::make_pair(-1, 0), std::make_pair(0, -1), std::make_pair(3, 0),
                 std::make_pair(0, 4), std::make_pair(3, 4)}) {
    INFO("output pixel (" << p.first << ", " << p.second << ")");
    check_error([&] { convgen::receptive_field(g, p.first, p.second); }, ErrorId::invalid_argument,
                "output");
  }
  for (auto p : {std::make_pair(-1, 0), std::make_pair(0, -1), std::make_pair(5, 0),
                 std::make_pair(0, 6), std::make_pair(5, 6)}) {
    INFO("input pixel (" << p.first << ", " << p.second << ")");
    check_error([&] { convgen::readers(g, p.first, p.second); }, ErrorId::invalid_argument,
                "input");
  }
}

TEST_CASE("readers: summing the readers' terms reproduces conv2d_backprop_input", "[unit]") {
  // dX[n,y,x,c] = sum over readers (i, j, r, s) of y,x and over k of dY[n,i,j,k] * W[r,s,c,k].
  // With the count of input pixels that no window reads, derived by hand:
  //  1. h: SAME in9 k3 d2 s2 -> ek 5, out 5, total 4*2+5-9 = 4 -> 2/2; rows 2i - 2 + 2r are even:
  //     rows 1,3,5,7 unread. w: SAME in10 k2 s3 -> out 4, total 3*3+2-10 = 1 -> 0/1; columns
  //     3j + s: 2, 5, 8 unread. Unread pixels: 4*10 + 5*3 = 55.
  //  2. h: VALID in8 k3 s4 -> out 2, rows 0-2 and 4-6: rows 3, 7 unread; w: VALID in9 k3 s3 ->
  //     out 3, all columns read. Unread: 2*9 = 18.
  //  3. h: EXPLICIT in7 k2 pads 4/0 -> out 10, rows i-4+r cover -4..6; w: in6 k3 s2 pads 1/3 ->
  //     out floor(7/2)+1 = 4, columns 2j-1+s cover -1..7. Unread: 0.
  const std::vector<std::pair<GeometryBuilder, int64_t>> cases = {
      {GeometryBuilder().input(2, 9, 10, 3).filter(3, 2, 4).stride(2, 3).dilation(2, 1).same(), 55},
      {GeometryBuilder().input(1, 8, 9, 2).filter(3, 3, 3).stride(4, 3).valid().nchw(), 18},
      {GeometryBuilder().input(1, 7, 6, 2).filter(2, 3, 2).stride(1, 2).explicit_pads(4, 0, 1, 3),
       0},
  };
  const uint32_t seed = 7321;
  for (const auto& [b, expected_unread] : cases) {
    INFO(b.describe() << ", seed " << seed);
    const Geometry g = b.build();
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    auto random = [&](const std::array<int64_t, 4>& dims) {
      std::vector<float> v(size_t(dims[0] * dims[1] * dims[2] * dims[3]));
      for (float& e : v) e = uniform(rng);
      return v;
    };
    const std::vector<float> w = random(g.filter_dims());
    const std::vector<float> dy = random(g.output_dims());
    std::vector<float> dx(size_t(g.input().n * g.input().h * g.input().w * g.input().c), -1.0f);
    convgen::reference::conv2d_backprop_input(g, w.data(), dy.data(), dx.data());

    const ActivationShape& in = g.input();
    const FilterShape& f = g.filter();
    int64_t unread = 0;
    for (int64_t y = 0; y < in.h; y++) {
      for (int64_t x = 0; x < in.w; x++) {
        const std::vector<Reader> rs = convgen::readers(g, y, x);
        if (rs.empty()) unread++;
        for (int64_t n = 0; n < in.n; n++) {
          for (int64_t c = 0; c < in.c; c++) {
            double sum = 0;
            for (const Reader& rd : rs)
              for (int64_t k = 0; k < f.k; k++)
                sum += double(dy[size_t(activation_index(g.output(), g.format(), n, rd.out_row,
                                                         rd.out_col, k))]) *
                       double(w[size_t(filter_index(f, rd.r, rd.s, c, k))]);
            const float got = dx[size_t(activation_index(in, g.format(), n, y, x, c))];
            INFO("dX(n=" << n << ", y=" << y << ", x=" << x << ", c=" << c << ")");
            if (rs.empty()) {
              CHECK(got == 0.0f);  // rows and columns that no window reads get exactly 0
            } else {
              CHECK(double(got) == Approx(sum).epsilon(1e-6).margin(1e-6));
            }
          }
        }
      }
    }
    CHECK(unread == expected_unread);
  }
}
