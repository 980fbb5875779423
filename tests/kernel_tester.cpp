#include "kernel_tester.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include <catch2/catch.hpp>

namespace convgen::testing {

Geometry make_geometry(const Case& t, DataFormat format) {
  Attributes a;
  a.format = format;
  a.stride_h = t.sh;
  a.stride_w = t.sw;
  a.dilation_h = t.dh;
  a.dilation_w = t.dw;
  a.padding = t.padding;
  if (t.padding == Padding::EXPLICIT) {
    a.pad_top = t.pads[0], a.pad_bottom = t.pads[1], a.pad_left = t.pads[2], a.pad_right = t.pads[3];
  }
  return Geometry::make({t.n, t.h, t.w, t.c}, {t.r, t.s, t.c, t.k}, a);
}

std::vector<float> random_tensor(const std::array<int64_t, 4>& dims, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> t(size_t(checked_element_count(dims, "test tensor")));
  for (float& v : t) v = uniform(rng);
  return t;
}

namespace {

std::vector<float> absolute(const std::vector<float>& t) {
  std::vector<float> a(t.size());
  std::transform(t.begin(), t.end(), a.begin(), [](float v) { return std::fabs(v); });
  return a;
}

// The C-order coordinate of flat index `at` in a tensor of `dims`, for failure messages.
std::string coordinate(size_t at, const std::array<int64_t, 4>& dims) {
  int64_t index[4];
  for (int d = 3; d >= 0; d--) {
    index[d] = int64_t(at) % dims[size_t(d)];
    at /= size_t(dims[size_t(d)]);
  }
  std::ostringstream text;
  text << "[" << index[0] << "," << index[1] << "," << index[2] << "," << index[3] << "]";
  return text.str();
}

}  // namespace

Agreement KernelTester::test(const Geometry& g, uint32_t seed) const {
  std::mt19937 rng(seed);
  const std::vector<float> x = random_tensor(g.input_dims(), rng);
  const std::vector<float> w = random_tensor(g.filter_dims(), rng);
  const std::vector<float> dy = random_tensor(g.output_dims(), rng);
  const std::vector<float> bias = random_tensor({1, 1, 1, g.filter().k}, rng);

  // The kernel under test, alone in its list, so the Engine can pick nothing else.
  const KernelList only{kernel_};
  const Engine engine(only);
  std::vector<float> actual, expected, bound;  // bound: sum of |a * b| per element
  std::array<int64_t, 4> dims{};
  int64_t terms = 0;  // the number of products summed into one element
  const FilterShape& f = g.filter();
  switch (kernel_.op) {
    case Op::conv2d:
      dims = g.output_dims();
      actual.assign(dy.size(), NAN);
      expected = bound = actual;
      engine.conv2d(g, x.data(), w.data(), bias.data(), actual.data());
      reference::conv2d(g, x.data(), w.data(), bias.data(), expected.data());
      reference::conv2d(g, absolute(x).data(), absolute(w).data(), absolute(bias).data(),
                        bound.data());
      terms = f.r * f.s * f.c + 1;
      break;
    case Op::conv2d_backprop_input:
      dims = g.input_dims();
      actual.assign(x.size(), NAN);
      expected = bound = actual;
      engine.conv2d_backprop_input(g, w.data(), dy.data(), actual.data());
      reference::conv2d_backprop_input(g, w.data(), dy.data(), expected.data());
      reference::conv2d_backprop_input(g, absolute(w).data(), absolute(dy).data(), bound.data());
      terms = f.r * f.s * f.k;
      break;
    case Op::conv2d_backprop_filter: {
      dims = g.filter_dims();
      actual.assign(w.size(), NAN);
      expected = bound = actual;
      std::vector<float> db(size_t(f.k), NAN), db_expected(size_t(f.k)), db_bound(size_t(f.k));
      engine.conv2d_backprop_filter(g, x.data(), dy.data(), actual.data(), db.data());
      reference::conv2d_backprop_filter(g, x.data(), dy.data(), expected.data(), db_expected.data());
      reference::conv2d_backprop_filter(g, absolute(x).data(), absolute(dy).data(), bound.data(),
                                        db_bound.data());
      // The bias gradient rides along with the filter gradient: same sum over (n, y, x).
      dims = {1, 1, 1, int64_t(w.size()) + f.k};
      actual.insert(actual.end(), db.begin(), db.end());
      expected.insert(expected.end(), db_expected.begin(), db_expected.end());
      bound.insert(bound.end(), db_bound.begin(), db_bound.end());
      terms = g.output().n * g.output().h * g.output().w;
      break;
    }
  }

  constexpr double u = 1.0 / (1 << 24);
  const double gamma = double(terms) * u / (1 - double(terms) * u);
  Agreement agreement;
  for (size_t e = 0; e < actual.size(); e++) {
    const double error = std::fabs(double(actual[e]) - double(expected[e]));
    const double tolerance = gamma * double(bound[e]) + u * std::fabs(double(expected[e])) + 1e-30;
    agreement.max_abs_error = std::max(agreement.max_abs_error, error);
    agreement.max_ratio = std::max(agreement.max_ratio, error / tolerance);
    if (!(error <= tolerance)) {  // also catches NaN: an element the kernel never wrote
      FAIL_CHECK(kernel_.name << " on " << g.key() << " (seed " << seed << "): element "
                              << coordinate(e, dims) << " is " << actual[e] << ", reference "
                              << expected[e] << ", tolerance " << tolerance);
      return agreement;
    }
  }
  return agreement;
}

}  // namespace convgen::testing
