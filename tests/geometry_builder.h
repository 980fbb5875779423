// A fluent builder of convgen::Geometry for tests, in the style of XNNPACK's operator testers:
//
//   Geometry g =
//       GeometryBuilder().input(2, 7, 6, 3).filter(3, 3, 5).stride(2, 1).same().nchw().build();
//
// Defaults: a 1x1x1x1 input, a 1x1 filter with 1 output channel, unit strides and dilations, VALID
// padding, NHWC. The filter's input channels always follow the input's channels.
//
// Also: the flat C-order offsets of activation and filter elements, for tests that index tensors,
// and check_error() for tests of refusals.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <catch2/catch.hpp>

#include "convgen/error.h"
#include "convgen/geometry.h"

namespace convgen::testing {

class GeometryBuilder {
 public:
  GeometryBuilder& input(int64_t n, int64_t h, int64_t w, int64_t c) {
    input_ = {n, h, w, c};
    return *this;
  }
  // Filter height r, width s and output channels k (HWIO; in_channels = the input's channels).
  GeometryBuilder& filter(int64_t r, int64_t s, int64_t k) {
    filter_r_ = r;
    filter_s_ = s;
    filter_k_ = k;
    return *this;
  }
  GeometryBuilder& stride(int64_t sh, int64_t sw) {
    attributes_.stride_h = sh;
    attributes_.stride_w = sw;
    return *this;
  }
  GeometryBuilder& dilation(int64_t dh, int64_t dw) {
    attributes_.dilation_h = dh;
    attributes_.dilation_w = dw;
    return *this;
  }
  GeometryBuilder& same() { return padding(Padding::SAME, 0, 0, 0, 0); }
  GeometryBuilder& valid() { return padding(Padding::VALID, 0, 0, 0, 0); }
  GeometryBuilder& explicit_pads(int64_t top, int64_t bottom, int64_t left, int64_t right) {
    return padding(Padding::EXPLICIT, top, bottom, left, right);
  }
  GeometryBuilder& nhwc() { return format(DataFormat::NHWC); }
  GeometryBuilder& nchw() { return format(DataFormat::NCHW); }
  GeometryBuilder& format(DataFormat f) {
    attributes_.format = f;
    return *this;
  }

  const ActivationShape& input_shape() const { return input_; }
  FilterShape filter_shape() const { return {filter_r_, filter_s_, input_.c, filter_k_}; }
  const Attributes& attributes() const { return attributes_; }

  // Validates like any other caller: throws convgen::Error for an invalid combination.
  Geometry build() const { return Geometry::make(input_, filter_shape(), attributes_); }

  // A readable description for test messages (works for geometries build() would reject).
  std::string describe() const {
    auto s = [](int64_t v) { return std::to_string(v); };
    std::string text = "input " + s(input_.n) + "x" + s(input_.h) + "x" + s(input_.w) + "x" +
                       s(input_.c) + " filter " + s(filter_r_) + "x" + s(filter_s_) + "x" +
                       s(filter_k_) + " stride " + s(attributes_.stride_h) + "," +
                       s(attributes_.stride_w) + " dilation " + s(attributes_.dilation_h) + "," +
                       s(attributes_.dilation_w) + " " + to_string(attributes_.padding);
    if (attributes_.padding == Padding::EXPLICIT) {
      text += " " + s(attributes_.pad_top) + "," + s(attributes_.pad_bottom) + "," +
              s(attributes_.pad_left) + "," + s(attributes_.pad_right);
    }
    return text + " " + to_string(attributes_.format);
  }

 private:
  GeometryBuilder& padding(Padding p, int64_t top, int64_t bottom, int64_t left, int64_t right) {
    attributes_.padding = p;
    attributes_.pad_top = top;
    attributes_.pad_bottom = bottom;
    attributes_.pad_left = left;
    attributes_.pad_right = right;
    return *this;
  }

  ActivationShape input_{1, 1, 1, 1};
  int64_t filter_r_ = 1, filter_s_ = 1, filter_k_ = 1;
  Attributes attributes_;
};

// Offset of activation element (n, y, x, c) of a tensor of logical shape `shape` stored in
// `format`.
inline int64_t activation_index(const ActivationShape& shape, DataFormat format, int64_t n,
                                int64_t y, int64_t x, int64_t c) {
  if (format == DataFormat::NHWC) return ((n * shape.h + y) * shape.w + x) * shape.c + c;
  return ((n * shape.c + c) * shape.h + y) * shape.w + x;
}

// Offset of filter element (r, s, c, k) of an HWIO filter.
inline int64_t filter_index(const FilterShape& f, int64_t r, int64_t s, int64_t c, int64_t k) {
  return ((r * f.s + s) * f.c + c) * f.k + k;
}

// Runs `f` and checks that it throws convgen::Error with the given id and argument.
inline void check_error(const std::function<void()>& f, ErrorId id, const std::string& argument) {
  bool thrown = false;
  try {
    f();
  } catch (const Error& e) {
    thrown = true;
    INFO("message: " << e.what());
    CHECK(std::string(convgen::to_string(e.id())) == convgen::to_string(id));
    CHECK(e.argument() == argument);
  }
  INFO("expected convgen::Error " << convgen::to_string(id) << " naming '" << argument << "'");
  CHECK(thrown);
}

}  // namespace convgen::testing
