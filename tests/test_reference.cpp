// Unit tests for the naive reference (convgen/reference.h):
//   (a) tiny cases whose every value is derived by hand in the comments;
//   (b) the adjoint identity
//         <conv2d(X,W), dY> = <X, backprop_input(W,dY)> = <W, backprop_filter(X,dY)>
//       over a table of geometries;
//   (c) central finite differences of the forward op (computed by this file's own
//       double-precision loop, written straight from SPEC.md's formula) against both gradients
//       and the bias gradient.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "convgen/geometry.h"
#include "convgen/reference.h"
#include "geometry_builder.h"

namespace {

using convgen::ActivationShape;
using convgen::DataFormat;
using convgen::FilterShape;
using convgen::Geometry;
using convgen::testing::activation_index;
using convgen::testing::filter_index;
using convgen::testing::GeometryBuilder;
namespace reference = convgen::reference;

size_t count(const std::array<int64_t, 4>& dims) {
  return size_t(dims[0] * dims[1] * dims[2] * dims[3]);
}

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = uniform(rng);
  return v;
}

template <typename A, typename B>
double dot(const std::vector<A>& a, const std::vector<B>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); i++) sum += double(a[i]) * double(b[i]);
  return sum;
}
template <typename A, typename B>
double abs_dot(const std::vector<A>& a, const std::vector<B>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); i++) sum += std::abs(double(a[i]) * double(b[i]));
  return sum;
}

// Y = conv2d(X, W, b) in double, straight from SPEC.md:
//   Y[n,i,j,k] = b[k] + sum_{r,s,c} X[n, i*sh + r*dh - pt, j*sw + s*dw - pl, c] * W[r,s,c,k]
// (out-of-range X reads as 0). Independent of the reference's loop nest.
std::vector<double> conv2d_double(const Geometry& g, const std::vector<double>& x,
                                  const std::vector<double>& w, const std::vector<double>& b) {
  const ActivationShape& in = g.input();
  const ActivationShape& out = g.output();
  const FilterShape& f = g.filter();
  std::vector<double> y(count(g.output_dims()));
  for (int64_t n = 0; n < out.n; n++)
    for (int64_t k = 0; k < out.c; k++)
      for (int64_t i = 0; i < out.h; i++)
        for (int64_t j = 0; j < out.w; j++) {
          double sum = b.empty() ? 0.0 : b[size_t(k)];
          for (int64_t r = 0; r < f.r; r++)
            for (int64_t s = 0; s < f.s; s++)
              for (int64_t c = 0; c < f.c; c++) {
                const int64_t yy = i * g.stride_h() + r * g.dilation_h() - g.pad_top();
                const int64_t xx = j * g.stride_w() + s * g.dilation_w() - g.pad_left();
                if (yy < 0 || yy >= in.h || xx < 0 || xx >= in.w) continue;
                sum += x[size_t(activation_index(in, g.format(), n, yy, xx, c))] *
                       w[size_t(filter_index(f, r, s, c, k))];
              }
          y[size_t(activation_index(out, g.format(), n, i, j, k))] = sum;
        }
  return y;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// The geometries of (b) and (c). Many have an input size that the output size does not determine
// ((in + pads - ek) % stride != 0), so backprop_input leaves rows or columns that no window reads.
std::vector<GeometryBuilder> gradient_cases() {
  using B = GeometryBuilder;
  return {
      B().input(1, 5, 5, 1).filter(3, 3, 1).valid(),
      B().input(1, 5, 5, 1).filter(3, 3, 1).valid().nchw(),
      B().input(1, 5, 5, 2).filter(4, 4, 3).same(),                      // SAME pads 1/2 (odd)
      B().input(2, 7, 6, 3).filter(3, 3, 2).stride(2, 2).same().nchw(),  // h 1/1, w 0/1
      B().input(1, 6, 7, 3).filter(3, 3, 5).stride(2, 3).same(),
      B().input(3, 8, 9, 2).filter(3, 3, 3).stride(4, 3).valid().nchw(),  // stride > kernel
      B().input(1, 10, 11, 3).filter(2, 2, 2).stride(3, 3).same(),        // stride > kernel
      B().input(1, 11, 9, 2).filter(3, 3, 2).dilation(2, 3).valid(),
      B().input(2, 9, 10, 3).filter(3, 3, 3).dilation(3, 2).same().nchw(),
      B().input(1, 9, 9, 5).filter(7, 7, 3).same(),
      B().input(1, 12, 13, 2).filter(7, 7, 2).stride(2, 2).valid().nchw(),
      B().input(1, 8, 8, 7).filter(1, 1, 11).valid(),
      B().input(2, 8, 9, 3).filter(1, 1, 5).stride(2, 2).valid().nchw(),  // 1x1 that skips pixels
      B().input(1, 6, 9, 3).filter(1, 3, 4).stride(1, 2).same(),
      B().input(1, 9, 6, 2).filter(5, 2, 3).stride(2, 1).same().nchw(),
      B().input(1, 7, 7, 3).filter(3, 3, 2).explicit_pads(5, 6, 0, 7),  // large asymmetric pads
      B().input(2, 5, 6, 2).filter(3, 2, 3).stride(2, 3).explicit_pads(0, 4, 3, 1).nchw(),
      B().input(1, 4, 4, 1).filter(3, 3, 1).explicit_pads(4, 4, 4, 4),  // windows all in padding
      B().input(1, 13, 11, 3).filter(3, 3, 2).stride(4, 2).dilation(2, 3).explicit_pads(2, 1, 3, 0),
      B().input(3, 5, 7, 2).filter(5, 2, 3).stride(3, 4).dilation(1, 2).valid(),
      B().input(1, 1, 1, 3).filter(1, 1, 2).valid(),
      B().input(1, 1, 1, 2).filter(3, 3, 2).same(),  // input smaller than the filter
      B().input(1, 2, 3, 5).filter(5, 7, 2).same().nchw(),
      B().input(2, 17, 13, 13).filter(3, 3, 7).stride(2, 3).same().nchw(),  // prime channels
      B().input(1, 10, 10, 2).filter(2, 2, 3).dilation(3, 3).same(),
      B().input(1, 8, 10, 3).filter(7, 7, 2).stride(3, 4).same(),
      B().input(1, 9, 9, 2).filter(5, 2, 2).stride(3, 2).dilation(2, 1).valid().nchw(),
      B().input(3, 6, 5, 1).filter(3, 3, 1).stride(2, 2).explicit_pads(1, 0, 0, 2),
      B().input(1, 15, 4, 3).filter(1, 3, 2).stride(4, 1).dilation(1, 2).same(),
      B().input(2, 7, 8, 5)
          .filter(3, 3, 3)
          .stride(1, 2)
          .dilation(2, 1)
          .explicit_pads(0, 3, 2, 0)
          .nchw(),
      B().input(1, 6, 6, 3).filter(5, 2, 2).stride(1, 4).dilation(1, 3).explicit_pads(3, 0, 0, 3),
  };
}

constexpr uint32_t kSeed = 20240611;

}  // namespace

// ---------------------------------------------------------------------------------------------
// (a) Hand-checked cases.
//
// X (1x3x3x1, NHWC) = 1 2 3     W (2x2x1x1, HWIO) = 1 2
//                     4 5 6                         3 4
//                     7 8 9
// so Y[i,j] = X[y,x]*1 + X[y,x+1]*2 + X[y+1,x]*3 + X[y+1,x+1]*4 with y = i*sh - pt, x = j*sw - pl
// (for dilation 1).
// ---------------------------------------------------------------------------------------------

namespace {
const std::vector<float> kX3x3 = {1, 2, 3, 4, 5, 6, 7, 8, 9};
const std::vector<float> kW2x2 = {1, 2, 3, 4};

std::vector<float> run_conv2d(const Geometry& g, const std::vector<float>& x,
                              const std::vector<float>& w, const float* bias = nullptr) {
  std::vector<float> y(count(g.output_dims()), -12345.0f);
  reference::conv2d(g, x.data(), w.data(), bias, y.data());
  return y;
}
}  // namespace

TEST_CASE("reference conv2d: hand-checked 3x3 input, 2x2 filter", "[unit]") {
  const GeometryBuilder b = GeometryBuilder().input(1, 3, 3, 1).filter(2, 2, 1);

  SECTION("VALID, stride 1") {
    // out = (3-2)/1+1 = 2.
    // Y[0,0] = 1*1 + 2*2 + 4*3 + 5*4 = 37   Y[0,1] = 2*1 + 3*2 + 5*3 + 6*4 = 47
    // Y[1,0] = 4*1 + 5*2 + 7*3 + 8*4 = 67   Y[1,1] = 5*1 + 6*2 + 8*3 + 9*4 = 77
    const Geometry g = GeometryBuilder(b).valid().build();
    CHECK(run_conv2d(g, kX3x3, kW2x2) == std::vector<float>{37, 47, 67, 77});
  }
  SECTION("SAME, stride 1: the odd total pad goes bottom/right only") {
    // out = 3, total = 2*1+2-3 = 1 -> top/left 0, bottom/right 1.
    // Row 0: 37, 47, Y[0,2] = 3*1 + 6*3 = 21
    // Row 1: 67, 77, Y[1,2] = 6*1 + 9*3 = 33
    // Row 2: Y[2,0] = 7*1 + 8*2 = 23, Y[2,1] = 8*1 + 9*2 = 26, Y[2,2] = 9*1 = 9
    const Geometry g = GeometryBuilder(b).same().build();
    CHECK((g.pad_top() == 0 && g.pad_bottom() == 1 && g.pad_left() == 0 && g.pad_right() == 1));
    CHECK(run_conv2d(g, kX3x3, kW2x2) == std::vector<float>{37, 47, 21, 67, 77, 33, 23, 26, 9});
  }
  SECTION("VALID, stride 2") {
    // out = floor((3-2)/2)+1 = 1: only Y[0,0] = 37.
    const Geometry g = GeometryBuilder(b).stride(2, 2).valid().build();
    CHECK(run_conv2d(g, kX3x3, kW2x2) == std::vector<float>{37});
  }
  SECTION("SAME, stride 2") {
    // out = ceil(3/2) = 2, total = 1*2+2-3 = 1 -> 0/1.
    // Y[0,0] = 37; Y[0,1] (x = 2) = 3*1 + 6*3 = 21; Y[1,0] (y = 2) = 7*1 + 8*2 = 23;
    // Y[1,1] = 9*1 = 9.
    const Geometry g = GeometryBuilder(b).stride(2, 2).same().build();
    CHECK(run_conv2d(g, kX3x3, kW2x2) == std::vector<float>{37, 21, 23, 9});
  }
  SECTION("VALID, dilation 2") {
    // ek = 3, out = 1: Y = X[0,0]*1 + X[0,2]*2 + X[2,0]*3 + X[2,2]*4 = 1 + 6 + 21 + 36 = 64.
    const Geometry g = GeometryBuilder(b).dilation(2, 2).valid().build();
    CHECK(run_conv2d(g, kX3x3, kW2x2) == std::vector<float>{64});
  }
  SECTION("SAME, dilation 2") {
    // ek = 3, out = 3, total = 2+3-3 = 2 -> 1/1. Taps read rows i-1, i+1 and columns j-1, j+1.
    // Y[0,0]: only (r1,s1) -> X[1,1]*4 = 20          Y[0,1]: X[1,0]*3 + X[1,2]*4 = 12+24 = 36
    // Y[0,2]: only (r1,s0) -> X[1,1]*3 = 15          Y[1,0]: X[0,1]*2 + X[2,1]*4 = 4+32 = 36
    // Y[1,1]: 1*1 + 3*2 + 7*3 + 9*4 = 64             Y[1,2]: X[0,1]*1 + X[2,1]*3 = 2+24 = 26
    // Y[2,0]: only (r0,s1) -> X[1,1]*2 = 10          Y[2,1]: X[1,0]*1 + X[1,2]*2 = 4+12 = 16
    // Y[2,2]: only (r0,s0) -> X[1,1]*1 = 5
    const Geometry g = GeometryBuilder(b).dilation(2, 2).same().build();
    CHECK(run_conv2d(g, kX3x3, kW2x2) == std::vector<float>{20, 36, 15, 36, 64, 26, 10, 16, 5});
  }
  SECTION("a null bias and a zero bias agree") {
    const Geometry g = GeometryBuilder(b).valid().build();
    const float zero = 0.0f;
    CHECK(run_conv2d(g, kX3x3, kW2x2, &zero) == run_conv2d(g, kX3x3, kW2x2));
  }
}

TEST_CASE("reference conv2d: hand-checked NCHW with 2 channels and a bias", "[unit]") {
  // X (NCHW 1x2x2x3): channel 0 = 1 2 3    channel 1 = 10 20 30
  //                              4 5 6                 40 50 60
  // W (1x2x2x2 HWIO), chosen so that
  //   Y0[i,j] = X0[i,j] + X1[i,j+1]        (W[0,0,0,0] = 1, W[0,1,1,0] = 1, rest of k=0 zero)
  //   Y1[i,j] = 2*X0[i,j+1] - X1[i,j]      (W[0,1,0,1] = 2, W[0,0,1,1] = -1, rest of k=1 zero)
  // HWIO offsets ((r*S + s)*C + c)*K + k with r = 0: s0c0k0 s0c0k1 s0c1k0 s0c1k1 s1c0k0 s1c0k1
  // s1c1k0 s1c1k1 = 1 0 0 -1 0 2 1 0.
  // VALID: out 2 x (3-2+1) = 2x2.
  //   Y0 = [1+20, 2+30; 4+50, 5+60] = [21, 32; 54, 65]
  //   Y1 = [2*2-10, 2*3-20; 2*5-40, 2*6-50] = [-6, -14; -30, -38]
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60};
  const std::vector<float> w = {1, 0, 0, -1, 0, 2, 1, 0};
  const Geometry g = GeometryBuilder().input(1, 2, 3, 2).filter(1, 2, 2).valid().nchw().build();
  REQUIRE(g.output_dims() == std::array<int64_t, 4>{1, 2, 2, 2});
  CHECK(run_conv2d(g, x, w) == std::vector<float>{21, 32, 54, 65, -6, -14, -30, -38});
  // Bias [100, -100] is added per output channel (the outer NCHW dimension here).
  const std::vector<float> bias = {100, -100};
  CHECK(run_conv2d(g, x, w, bias.data()) ==
        std::vector<float>{121, 132, 154, 165, -106, -114, -130, -138});

  // The same problem in NHWC: X transposed to [n][h][w][c], Y comes back as [n][h][w][k].
  const std::vector<float> x_nhwc = {1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60};
  const Geometry g2 = GeometryBuilder().input(1, 2, 3, 2).filter(1, 2, 2).valid().build();
  CHECK(run_conv2d(g2, x_nhwc, w, bias.data()) ==
        std::vector<float>{121, -106, 132, -114, 154, -130, 165, -138});
}

TEST_CASE("reference conv2d_backprop_input: hand-checked", "[unit]") {
  SECTION("stride 2: a column that no window reads gets 0") {
    // X 1x2x5x1, W 1x2 = [3, 5], strides (1, 2), VALID: out h = 2, w = floor((5-2)/2)+1 = 2.
    // Window j=0 reads columns 0,1; j=1 reads 2,3; column 4 is read by nobody.
    // dY = [2, 7; 1, -1] ->
    //   dX row 0 = [2*3, 2*5, 7*3, 7*5, 0] = [6, 10, 21, 35, 0]
    //   dX row 1 = [1*3, 1*5, -1*3, -1*5, 0] = [3, 5, -3, -5, 0]
    const std::vector<float> w = {3, 5};
    const std::vector<float> dy = {2, 7, 1, -1};
    const Geometry g =
        GeometryBuilder().input(1, 2, 5, 1).filter(1, 2, 1).stride(1, 2).valid().build();
    REQUIRE(g.output() == ActivationShape{1, 2, 2, 1});
    std::vector<float> dx(10, -1.0f);
    reference::conv2d_backprop_input(g, w.data(), dy.data(), dx.data());
    CHECK(dx == std::vector<float>{6, 10, 21, 35, 0, 3, 5, -3, -5, 0});

    // Input width 4 gives the same output width (floor((4-2)/2)+1 = 2): the input size is not
    // recoverable from dY, and now every column is read.
    const Geometry g4 =
        GeometryBuilder().input(1, 2, 4, 1).filter(1, 2, 1).stride(1, 2).valid().build();
    REQUIRE(g4.output() == g.output());
    std::vector<float> dx4(8, -1.0f);
    reference::conv2d_backprop_input(g4, w.data(), dy.data(), dx4.data());
    CHECK(dx4 == std::vector<float>{6, 10, 21, 35, 3, 5, -3, -5});
  }
  SECTION("stride 1: overlapping windows add up") {
    // X 1x1x3x1, W = [1, 2], VALID: out w = 2; dY = [10, 100].
    // dX[0] = 10*1 = 10; dX[1] = 10*2 + 100*1 = 120; dX[2] = 100*2 = 200.
    const std::vector<float> w = {1, 2}, dy = {10, 100};
    const Geometry g = GeometryBuilder().input(1, 1, 3, 1).filter(1, 2, 1).valid().build();
    std::vector<float> dx(3, -1.0f);
    reference::conv2d_backprop_input(g, w.data(), dy.data(), dx.data());
    CHECK(dx == std::vector<float>{10, 120, 200});
  }
  SECTION("SAME: padded taps contribute nothing") {
    // The SAME 3x3/2x2 geometry above (pads 0/1). With dY = 1 at Y[2,2] only, that window reads
    // X[2,2] with W[0,0] = 1 and padding elsewhere: dX = 1 at [2,2], 0 elsewhere.
    // With dY = 1 at Y[0,0] only: dX[0,0]=1, dX[0,1]=2, dX[1,0]=3, dX[1,1]=4.
    const Geometry g = GeometryBuilder().input(1, 3, 3, 1).filter(2, 2, 1).same().build();
    std::vector<float> dy(9, 0.0f), dx(9, -1.0f);
    dy[8] = 1;
    reference::conv2d_backprop_input(g, kW2x2.data(), dy.data(), dx.data());
    CHECK(dx == std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0, 1});
    std::fill(dy.begin(), dy.end(), 0.0f);
    dy[0] = 1;
    reference::conv2d_backprop_input(g, kW2x2.data(), dy.data(), dx.data());
    CHECK(dx == std::vector<float>{1, 2, 0, 3, 4, 0, 0, 0, 0});
  }
}

TEST_CASE("reference conv2d_backprop_filter: hand-checked with the bias gradient", "[unit]") {
  // X: batch 2, both images = the 3x3 above (1..9); W 2x2x1x2; VALID, stride 1 -> dY 2x2x2x2.
  // dY channel 0: image 0 = [1, 2; 3, 4], image 1 = [0, 0; 0, 2]
  // dY channel 1: image 0 = [1, 1; 1, 1], image 1 = 0
  // dW[r,s,0,0] = sum_{n,i,j} X[n, i+r, j+s] * dY[n,i,j,0]
  //             = (X[r,s] + 2X[r,s+1] + 3X[r+1,s] + 4X[r+1,s+1]) + 2X[r+1,s+1]
  //   r0s0: 37 + 2*5 = 47   r0s1: 47 + 2*6 = 59   r1s0: 67 + 2*8 = 83   r1s1: 77 + 2*9 = 95
  // dW[r,s,0,1] = the 2x2 block sums of image 0 starting at (r,s):
  //   r0s0: 1+2+4+5 = 12   r0s1: 2+3+5+6 = 16   r1s0: 4+5+7+8 = 24   r1s1: 5+6+8+9 = 28
  // db[0] = 1+2+3+4 + 2 = 12, db[1] = 4.
  const Geometry g = GeometryBuilder().input(2, 3, 3, 1).filter(2, 2, 2).valid().build();
  std::vector<float> x = kX3x3;
  x.insert(x.end(), kX3x3.begin(), kX3x3.end());
  // NHWC [n][i][j][k].
  const std::vector<float> dy = {1, 1, 2, 1, 3, 1, 4, 1, /* image 1 */ 0, 0, 0, 0, 0, 0, 2, 0};
  std::vector<float> dw(8, -1.0f), db(2, -1.0f);
  reference::conv2d_backprop_filter(g, x.data(), dy.data(), dw.data(), db.data());
  CHECK(dw == std::vector<float>{47, 12, 59, 16, 83, 24, 95, 28});
  CHECK(db == std::vector<float>{12, 4});
  // A null bias gradient is allowed and changes nothing else.
  std::vector<float> dw2(8, -1.0f);
  reference::conv2d_backprop_filter(g, x.data(), dy.data(), dw2.data(), nullptr);
  CHECK(dw2 == dw);
}

// ---------------------------------------------------------------------------------------------
// (b) The adjoint identity, and the forward op against this file's own double loop.
// ---------------------------------------------------------------------------------------------

TEST_CASE("reference: conv2d matches an independent double-precision loop", "[unit]") {
  const std::vector<GeometryBuilder> cases = gradient_cases();
  for (size_t t = 0; t < cases.size(); t++) {
    const uint32_t seed = kSeed + uint32_t(t);
    INFO("case " << t << ": " << cases[t].describe() << ", seed " << seed);
    const Geometry g = cases[t].build();
    std::mt19937 rng(seed);
    const std::vector<float> x = random_floats(count(g.input_dims()), rng);
    const std::vector<float> w = random_floats(count(g.filter_dims()), rng);
    const std::vector<float> b = random_floats(size_t(g.filter().k), rng);
    const std::vector<float> y = run_conv2d(g, x, w, b.data());
    const std::vector<double> expected = conv2d_double(g, to_double(x), to_double(w), to_double(b));
    size_t mismatches = 0, first = 0;
    for (size_t e = 0; e < y.size(); e++) {
      // The reference accumulates in double and rounds once: within float rounding.
      if (std::abs(double(y[e]) - expected[e]) > 1e-6 * std::max(1.0, std::abs(expected[e]))) {
        if (!mismatches++) first = e;
      }
    }
    INFO("first mismatch at " << first << ": " << (y.empty() ? 0.0f : y[first]) << " vs "
                              << (expected.empty() ? 0.0 : expected[first]));
    CHECK(mismatches == 0);
  }
}

TEST_CASE("reference: adjoint identity <conv2d(X,W),dY> = <X,dX> = <W,dW>", "[unit]") {
  const std::vector<GeometryBuilder> cases = gradient_cases();
  for (size_t t = 0; t < cases.size(); t++) {
    const uint32_t seed = kSeed + 1000 + uint32_t(t);
    INFO("case " << t << ": " << cases[t].describe() << ", seed " << seed);
    const Geometry g = cases[t].build();
    INFO("key " << g.key());
    std::mt19937 rng(seed);
    const std::vector<float> x = random_floats(count(g.input_dims()), rng);
    const std::vector<float> w = random_floats(count(g.filter_dims()), rng);
    const std::vector<float> b = random_floats(size_t(g.filter().k), rng);
    const std::vector<float> dy = random_floats(count(g.output_dims()), rng);

    const std::vector<float> y = run_conv2d(g, x, w);
    std::vector<float> dx(x.size(), -1.0f), dw(w.size(), -1.0f), db(b.size(), -1.0f);
    reference::conv2d_backprop_input(g, w.data(), dy.data(), dx.data());
    reference::conv2d_backprop_filter(g, x.data(), dy.data(), dw.data(), db.data());

    const double y_dy = dot(y, dy), x_dx = dot(x, dx), w_dw = dot(w, dw);
    // Each side carries float rounding of its gradient (relative 2^-24 per element); measure the
    // tolerance against the sums of absolute products, so cancellation cannot hide an error.
    const double scale = std::max({abs_dot(y, dy), abs_dot(x, dx), abs_dot(w, dw), 1e-30});
    INFO("<Y,dY> = " << y_dy << ", <X,dX> = " << x_dx << ", <W,dW> = " << w_dw << ", scale "
                     << scale);
    CHECK(std::abs(y_dy - x_dx) <= 1e-5 * scale);
    CHECK(std::abs(y_dy - w_dw) <= 1e-5 * scale);

    // The bias: <conv2d(X,W,b) - conv2d(X,W), dY> = <b, db>.
    const std::vector<float> yb = run_conv2d(g, x, w, b.data());
    const double bias_part = dot(yb, dy) - y_dy;
    const double bias_scale = abs_dot(yb, dy) + abs_dot(y, dy) + abs_dot(b, db);
    INFO("<Yb - Y, dY> = " << bias_part << ", <b, db> = " << dot(b, db));
    CHECK(std::abs(bias_part - dot(b, db)) <= 1e-5 * bias_scale);
  }
}

// ---------------------------------------------------------------------------------------------
// (c) Central finite differences of f = sum(conv2d(X, W, b) * dY), computed in double by
//     conv2d_double. f is linear in each of X, W and b, so the central difference is exact up to
//     rounding for any step.
// ---------------------------------------------------------------------------------------------

TEST_CASE("reference: gradients match central finite differences", "[unit]") {
  const std::vector<GeometryBuilder> cases = gradient_cases();
  const double h = 1e-2;
  for (size_t t = 0; t < cases.size(); t++) {
    const uint32_t seed = kSeed + 2000 + uint32_t(t);
    INFO("case " << t << ": " << cases[t].describe() << ", seed " << seed);
    const Geometry g = cases[t].build();
    std::mt19937 rng(seed);
    const std::vector<float> xf = random_floats(count(g.input_dims()), rng);
    const std::vector<float> wf = random_floats(count(g.filter_dims()), rng);
    const std::vector<float> bf = random_floats(size_t(g.filter().k), rng);
    const std::vector<float> dyf = random_floats(count(g.output_dims()), rng);
    std::vector<float> dx(xf.size()), dw(wf.size()), db(bf.size());
    reference::conv2d_backprop_input(g, wf.data(), dyf.data(), dx.data());
    reference::conv2d_backprop_filter(g, xf.data(), dyf.data(), dw.data(), db.data());

    std::vector<double> x = to_double(xf), w = to_double(wf), b = to_double(bf);
    const std::vector<double> dy = to_double(dyf);
    auto f = [&] { return dot(conv2d_double(g, x, w, b), dy); };
    // d f / d v[e] by a central difference, restoring v[e] afterwards.
    auto central = [&](std::vector<double>& v, size_t e) {
      const double saved = v[e];
      v[e] = saved + h;
      const double plus = f();
      v[e] = saved - h;
      const double minus = f();
      v[e] = saved;
      return (plus - minus) / (2 * h);
    };
    // A few random elements, plus the last input element (at the bottom-right corner, which many
    // of these geometries never read, where its gradient is 0).
    std::uniform_int_distribution<size_t> pick_x(0, x.size() - 1), pick_w(0, w.size() - 1);
    std::vector<size_t> xs = {x.size() - 1}, ws = {0};
    for (int e = 0; e < 6; e++) {
      xs.push_back(pick_x(rng));
      ws.push_back(pick_w(rng));
    }
    for (size_t e : xs) {
      INFO("dX element " << e);
      CHECK(central(x, e) == Approx(dx[e]).epsilon(1e-3).margin(1e-5));
    }
    for (size_t e : ws) {
      INFO("dW element " << e);
      CHECK(central(w, e) == Approx(dw[e]).epsilon(1e-3).margin(1e-5));
    }
    for (size_t k = 0; k < b.size(); k++) {
      INFO("db element " << k);
      CHECK(central(b, k) == Approx(db[k]).epsilon(1e-3).margin(1e-5));
    }
  }
}

TEST_CASE("reference: NHWC and NCHW compute the same thing", "[unit]") {
  // The same random problem in both layouts: results must be the same numbers, transposed.
  const std::vector<GeometryBuilder> cases = {
      GeometryBuilder().input(2, 7, 6, 3).filter(3, 3, 5).stride(2, 1).dilation(1, 2).same(),
      GeometryBuilder().input(1, 6, 9, 2).filter(2, 3, 3).stride(3, 2).explicit_pads(1, 2, 0, 3),
  };
  for (size_t t = 0; t < cases.size(); t++) {
    const uint32_t seed = kSeed + 3000 + uint32_t(t);
    INFO("case " << t << ": " << cases[t].describe() << ", seed " << seed);
    const Geometry a = GeometryBuilder(cases[t]).nhwc().build();
    const Geometry c = GeometryBuilder(cases[t]).nchw().build();
    std::mt19937 rng(seed);
    const std::vector<float> x = random_floats(count(a.input_dims()), rng);
    const std::vector<float> w = random_floats(count(a.filter_dims()), rng);
    const std::vector<float> dy = random_floats(count(a.output_dims()), rng);
    // Transpose an NHWC tensor of logical shape s into NCHW.
    auto to_nchw = [](const std::vector<float>& v, const ActivationShape& s) {
      std::vector<float> out(v.size());
      for (int64_t n = 0; n < s.n; n++)
        for (int64_t y = 0; y < s.h; y++)
          for (int64_t xx = 0; xx < s.w; xx++)
            for (int64_t ch = 0; ch < s.c; ch++)
              out[size_t(activation_index(s, DataFormat::NCHW, n, y, xx, ch))] =
                  v[size_t(activation_index(s, DataFormat::NHWC, n, y, xx, ch))];
      return out;
    };
    CHECK(to_nchw(run_conv2d(a, x, w), a.output()) == run_conv2d(c, to_nchw(x, a.input()), w));
    std::vector<float> dx_a(x.size()), dx_c(x.size()), dw_a(w.size()), dw_c(w.size());
    reference::conv2d_backprop_input(a, w.data(), dy.data(), dx_a.data());
    reference::conv2d_backprop_input(c, w.data(), to_nchw(dy, a.output()).data(), dx_c.data());
    CHECK(to_nchw(dx_a, a.input()) == dx_c);
    reference::conv2d_backprop_filter(a, x.data(), dy.data(), dw_a.data(), nullptr);
    reference::conv2d_backprop_filter(c, to_nchw(x, a.input()).data(),
                                      to_nchw(dy, a.output()).data(), dw_c.data(), nullptr);
    CHECK(dw_a == dw_c);
  }
}
