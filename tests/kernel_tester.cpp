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

Operands::Operands(const Geometry& g, uint32_t seed) {
  std::mt19937 rng(seed);
  x = random_tensor(g.input_dims(), rng);
  w = random_tensor(g.filter_dims(), rng);
  dy = random_tensor(g.output_dims(), rng);
  bias = random_tensor({1, 1, 1, g.filter().k}, rng);
}

size_t result_size(Op op, const Geometry& g) {
  switch (op) {
    case Op::conv2d: return size_t(checked_element_count(g.output_dims(), "output"));
    case Op::conv2d_backprop_input: return size_t(checked_element_count(g.input_dims(), "input"));
    case Op::conv2d_backprop_filter:
      return size_t(checked_element_count(g.filter_dims(), "filter") + g.filter().k);
  }
  return 0;
}

void run(const Engine& engine, Op op, const Geometry& g, const Operands& o, float* result,
         FilterLayout filter) {
  if (filter == FilterLayout::blocked) {
    const PackedFilter packed = engine.pack_filter(op, g, o.w.data());
    REQUIRE(packed.layout() == FilterLayout::blocked);
    if (op == Op::conv2d) {
      engine.conv2d(g, o.x.data(), packed, o.bias.data(), result);
    } else {
      engine.conv2d_backprop_input(g, packed, o.dy.data(), result);
    }
    return;
  }
  switch (op) {
    case Op::conv2d:
      engine.conv2d(g, o.x.data(), o.w.data(), o.bias.data(), result);
      break;
    case Op::conv2d_backprop_input:
      engine.conv2d_backprop_input(g, o.w.data(), o.dy.data(), result);
      break;
    case Op::conv2d_backprop_filter:
      engine.conv2d_backprop_filter(g, o.x.data(), o.dy.data(), result, result + o.w.size());
      break;
  }
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
  const Operands o(g, seed);
  // The kernel under test, alone in its list, so the Engine can pick nothing else.
  const KernelList only{kernel_};
  const Engine engine(only);
  std::vector<float> actual(result_size(kernel_.op, g), NAN);
  run(engine, kernel_.op, g, o, actual.data(), kernel_.filter);

  // The reference, and the bound: the sum of |a * b| per element.
  std::vector<float> expected(actual.size()), bound(actual.size());
  std::array<int64_t, 4> dims{};
  int64_t terms = 0;  // the number of products summed into one element
  const FilterShape& f = g.filter();
  switch (kernel_.op) {
    case Op::conv2d:
      dims = g.output_dims();
      reference::conv2d(g, o.x.data(), o.w.data(), o.bias.data(), expected.data());
      reference::conv2d(g, absolute(o.x).data(), absolute(o.w).data(), absolute(o.bias).data(),
                        bound.data());
      terms = f.r * f.s * f.c + 1;
      break;
    case Op::conv2d_backprop_input:
      dims = g.input_dims();
      reference::conv2d_backprop_input(g, o.w.data(), o.dy.data(), expected.data());
      reference::conv2d_backprop_input(g, absolute(o.w).data(), absolute(o.dy).data(),
                                       bound.data());
      terms = f.r * f.s * f.k;
      break;
    case Op::conv2d_backprop_filter:
      // The bias gradient rides along with the filter gradient: same sum over (n, y, x).
      dims = {1, 1, 1, int64_t(actual.size())};
      reference::conv2d_backprop_filter(g, o.x.data(), o.dy.data(), expected.data(),
                                        expected.data() + o.w.size());
      reference::conv2d_backprop_filter(g, absolute(o.x).data(), absolute(o.dy).data(),
                                        bound.data(), bound.data() + o.w.size());
      terms = g.output().n * g.output().h * g.output().w;
      break;
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
