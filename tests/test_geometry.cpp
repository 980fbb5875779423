// Unit tests for convgen/geometry.h: output sizes and paddings (SPEC.md, "Geometry"), TensorFlow
// attribute parsing and validation, and Geometry::key().
//
// Every expected number below is derived by hand from SPEC.md's formulas (shown in the comments),
// never by calling the code under test:
//   ek    = (k - 1) * d + 1
//   VALID:    out = floor((in - ek) / s) + 1                  (in < ek is an error)
//   SAME:     out = ceil(in / s), total = max((out - 1) * s + ek - in, 0),
//             before = floor(total / 2), after = total - before
//   EXPLICIT: out = floor((in + before + after - ek) / s) + 1 (must be >= 1)
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "convgen/error.h"
#include "convgen/geometry.h"
#include "geometry_builder.h"

namespace {

using convgen::ActivationShape;
using convgen::Attributes;
using convgen::DataFormat;
using convgen::Error;
using convgen::ErrorId;
using convgen::FilterShape;
using convgen::Geometry;
using convgen::Padding;
using convgen::testing::check_error;
using convgen::testing::GeometryBuilder;


// One spatial dimension of a problem and its hand-derived result.
struct DimensionCase {
  const char* derivation;
  int64_t in, k, stride, dilation;
  Padding padding;
  int64_t before, after;  // EXPLICIT only
  int64_t out, pad_before, pad_after;
};

const DimensionCase kDimensionCases[] = {
    // SAME (odd totals put the extra row/column after: bottom/right).
    {"SAME in5 k4 s1: out=ceil(5/1)=5, total=4*1+4-5=3 -> 1/2", 5, 4, 1, 1, Padding::SAME, 0, 0, 5,
     1, 2},
    {"SAME in7 k3 s2: out=ceil(7/2)=4, total=3*2+3-7=2 -> 1/1", 7, 3, 2, 1, Padding::SAME, 0, 0, 4,
     1, 1},
    {"SAME in6 k3 s2: out=ceil(6/2)=3, total=2*2+3-6=1 -> 0/1", 6, 3, 2, 1, Padding::SAME, 0, 0, 3,
     0, 1},
    {"SAME in4 k3 s1: out=4, total=3*1+3-4=2 -> 1/1", 4, 3, 1, 1, Padding::SAME, 0, 0, 4, 1, 1},
    {"SAME in10 k2 s3 (stride > kernel): out=ceil(10/3)=4, total=3*3+2-10=1 -> 0/1", 10, 2, 3, 1,
     Padding::SAME, 0, 0, 4, 0, 1},
    {"SAME in8 k1 s3 (stride > kernel): out=ceil(8/3)=3, total=max(2*3+1-8,0)=0 -> 0/0", 8, 1, 3, 1,
     Padding::SAME, 0, 0, 3, 0, 0},
    {"SAME in9 k2 s4 (stride > kernel): out=ceil(9/4)=3, total=2*4+2-9=1 -> 0/1", 9, 2, 4, 1,
     Padding::SAME, 0, 0, 3, 0, 1},
    {"SAME in10 k3 d2 s1: ek=5, out=10, total=9*1+5-10=4 -> 2/2", 10, 3, 1, 2, Padding::SAME, 0, 0,
     10, 2, 2},
    {"SAME in10 k3 d3 s2: ek=7, out=ceil(10/2)=5, total=4*2+7-10=5 -> 2/3", 10, 3, 2, 3,
     Padding::SAME, 0, 0, 5, 2, 3},
    {"SAME in1 k7 s1: out=1, total=0+7-1=6 -> 3/3", 1, 7, 1, 1, Padding::SAME, 0, 0, 1, 3, 3},
    {"SAME in2 k5 s1: out=2, total=1+5-2=4 -> 2/2", 2, 5, 1, 1, Padding::SAME, 0, 0, 2, 2, 2},
    {"SAME in5 k1 s1: out=5, total=4+1-5=0 -> 0/0", 5, 1, 1, 1, Padding::SAME, 0, 0, 5, 0, 0},
    // VALID.
    {"VALID in5 k3 s1: (5-3)/1+1=3", 5, 3, 1, 1, Padding::VALID, 0, 0, 3, 0, 0},
    {"VALID in7 k3 s2: floor(4/2)+1=3", 7, 3, 2, 1, Padding::VALID, 0, 0, 3, 0, 0},
    {"VALID in6 k3 s2: floor(3/2)+1=2", 6, 3, 2, 1, Padding::VALID, 0, 0, 2, 0, 0},
    {"VALID in10 k2 s3: floor(8/3)+1=3", 10, 2, 3, 1, Padding::VALID, 0, 0, 3, 0, 0},
    {"VALID in3 k3 s1: 0/1+1=1", 3, 3, 1, 1, Padding::VALID, 0, 0, 1, 0, 0},
    {"VALID in9 k3 d3 s1: ek=7, (9-7)/1+1=3", 9, 3, 1, 3, Padding::VALID, 0, 0, 3, 0, 0},
    {"VALID in9 k3 d4 s2: ek=9, 0/2+1=1", 9, 3, 2, 4, Padding::VALID, 0, 0, 1, 0, 0},
    {"VALID in1 k1 s5: 0/5+1=1", 1, 1, 5, 1, Padding::VALID, 0, 0, 1, 0, 0},
    {"VALID in12 k5 d2 s3: ek=9, floor(3/3)+1=2", 12, 5, 3, 2, Padding::VALID, 0, 0, 2, 0, 0},
    // EXPLICIT.
    {"EXPLICIT in5 k3 s1 pads 2/0: (5+2-3)/1+1=5", 5, 3, 1, 1, Padding::EXPLICIT, 2, 0, 5, 2, 0},
    {"EXPLICIT in5 k3 s2 pads 0/3: floor((5+3-3)/2)+1=3", 5, 3, 2, 1, Padding::EXPLICIT, 0, 3, 3, 0,
     3},
    {"EXPLICIT in4 k3 s1 pads 5/6: (4+11-3)/1+1=13", 4, 3, 1, 1, Padding::EXPLICIT, 5, 6, 13, 5, 6},
    {"EXPLICIT in6 k2 d3 s4 pads 1/2: ek=4, floor((6+3-4)/4)+1=2", 6, 2, 4, 3, Padding::EXPLICIT, 1,
     2, 2, 1, 2},
    {"EXPLICIT in1 k3 s1 pads 1/1: (1+2-3)/1+1=1", 1, 3, 1, 1, Padding::EXPLICIT, 1, 1, 1, 1, 1},
    {"EXPLICIT in7 k3 s3 pads 0/0: floor(4/3)+1=2", 7, 3, 3, 1, Padding::EXPLICIT, 0, 0, 2, 0, 0},
};

GeometryBuilder with_padding(GeometryBuilder b, Padding p, int64_t top, int64_t bottom,
                             int64_t left, int64_t right) {
  switch (p) {
    case Padding::SAME:
      return b.same();
    case Padding::VALID:
      return b.valid();
    case Padding::EXPLICIT:
      return b.explicit_pads(top, bottom, left, right);
  }
  return b;
}

}  // namespace

TEST_CASE("geometry: output size and pads per dimension, hand-derived", "[unit]") {
  for (const DimensionCase& d : kDimensionCases) {
    for (DataFormat format : {DataFormat::NHWC, DataFormat::NCHW}) {
      INFO(d.derivation << " (" << convgen::to_string(format) << ")");
      // The case in the height dimension; the width is a trivial 1-pixel, 1-tap dimension.
      {
        GeometryBuilder b = GeometryBuilder()
                                .input(2, d.in, 1, 3)
                                .filter(d.k, 1, 4)
                                .stride(d.stride, 1)
                                .dilation(d.dilation, 1)
                                .format(format);
        const Geometry g = with_padding(b, d.padding, d.before, d.after, 0, 0).build();
        CHECK(g.output() == ActivationShape{2, d.out, 1, 4});
        CHECK(g.pad_top() == d.pad_before);
        CHECK(g.pad_bottom() == d.pad_after);
        CHECK(g.pad_left() == 0);
        CHECK(g.pad_right() == 0);
        CHECK(g.effective_filter_h() == (d.k - 1) * d.dilation + 1);
        CHECK(g.effective_filter_w() == 1);
      }
      // The same case in the width dimension.
      {
        GeometryBuilder b = GeometryBuilder()
                                .input(1, 1, d.in, 2)
                                .filter(1, d.k, 3)
                                .stride(1, d.stride)
                                .dilation(1, d.dilation)
                                .format(format);
        const Geometry g = with_padding(b, d.padding, 0, 0, d.before, d.after).build();
        CHECK(g.output() == ActivationShape{1, 1, d.out, 3});
        CHECK(g.pad_left() == d.pad_before);
        CHECK(g.pad_right() == d.pad_after);
        CHECK(g.pad_top() == 0);
        CHECK(g.pad_bottom() == 0);
        CHECK(g.effective_filter_w() == (d.k - 1) * d.dilation + 1);
      }
    }
  }
}

TEST_CASE("geometry: height and width are independent", "[unit]") {
  // h: SAME in7 k3 s2 -> out 4, total 3*2+3-7=2 -> 1/1.
  // w: SAME in6 k3 s2 -> out 3, total 2*2+3-6=1 -> 0/1 (the extra column goes right).
  const Geometry a =
      GeometryBuilder().input(2, 7, 6, 3).filter(3, 3, 5).stride(2, 2).same().build();
  CHECK(a.output() == ActivationShape{2, 4, 3, 5});
  CHECK((a.pad_top() == 1 && a.pad_bottom() == 1 && a.pad_left() == 0 && a.pad_right() == 1));

  // h: SAME in5 k4 s1 d1 -> out 5, total 4+4-5=3 -> 1/2 (extra row at the bottom).
  // w: SAME in9 k2 s4 d3 -> ek=4, out ceil(9/4)=3, total 2*4+4-9=3 -> 1/2.
  const Geometry b = GeometryBuilder()
                         .input(1, 5, 9, 2)
                         .filter(4, 2, 1)
                         .stride(1, 4)
                         .dilation(1, 3)
                         .same()
                         .build();
  CHECK(b.output() == ActivationShape{1, 5, 3, 1});
  CHECK((b.pad_top() == 1 && b.pad_bottom() == 2 && b.pad_left() == 1 && b.pad_right() == 2));
  CHECK(b.effective_filter_h() == 4);
  CHECK(b.effective_filter_w() == 4);

  // h: EXPLICIT in4 k3 s1 pads 0/5 -> (4+5-3)/1+1=7; w: pads 3/0, in5 k2 d2 s2 -> ek=3,
  // floor((5+3-3)/2)+1=3.
  const Geometry c = GeometryBuilder()
                         .input(3, 4, 5, 1)
                         .filter(3, 2, 2)
                         .stride(1, 2)
                         .dilation(1, 2)
                         .explicit_pads(0, 5, 3, 0)
                         .nchw()
                         .build();
  CHECK(c.output() == ActivationShape{3, 7, 3, 2});
  CHECK((c.pad_top() == 0 && c.pad_bottom() == 5 && c.pad_left() == 3 && c.pad_right() == 0));

  // VALID pads are always 0; h: in7 k3 s2 -> 3, w: in6 k3 s2 -> 2.
  const Geometry v =
      GeometryBuilder().input(2, 7, 6, 3).filter(3, 3, 5).stride(2, 2).valid().build();
  CHECK(v.output() == ActivationShape{2, 3, 2, 5});
  CHECK((v.pad_top() == 0 && v.pad_bottom() == 0 && v.pad_left() == 0 && v.pad_right() == 0));
}

TEST_CASE("geometry: tensor dimensions in layout order and flops", "[unit]") {
  // SAME in 7x6, stride 2: out ceil(7/2)=4 x ceil(6/2)=3.
  const GeometryBuilder b = GeometryBuilder().input(2, 7, 6, 3).filter(3, 3, 5).stride(2, 2).same();
  const Geometry nhwc = GeometryBuilder(b).nhwc().build();
  const Geometry nchw = GeometryBuilder(b).nchw().build();
  using Dims = std::array<int64_t, 4>;
  CHECK(nhwc.input_dims() == Dims{2, 7, 6, 3});
  CHECK(nhwc.output_dims() == Dims{2, 4, 3, 5});
  CHECK(nhwc.filter_dims() == Dims{3, 3, 3, 5});
  CHECK(nchw.input_dims() == Dims{2, 3, 7, 6});
  CHECK(nchw.output_dims() == Dims{2, 5, 4, 3});
  CHECK(nchw.filter_dims() == Dims{3, 3, 3, 5});  // the filter is HWIO in both layouts
  CHECK(nchw.format() == DataFormat::NCHW);
  // 2 * N * Ho * Wo * K * R * S * C = 2 * 2 * 4 * 3 * 5 * 3 * 3 * 3 = 6480.
  CHECK(nhwc.flops() == 6480.0);
  CHECK(nchw.flops() == 6480.0);
}

TEST_CASE("geometry: activation_shape and filter_shape read the user's layout", "[unit]") {
  CHECK(convgen::activation_shape({2, 7, 6, 3}, DataFormat::NHWC, "input") ==
        ActivationShape{2, 7, 6, 3});
  CHECK(convgen::activation_shape({2, 3, 7, 6}, DataFormat::NCHW, "input") ==
        ActivationShape{2, 7, 6, 3});
  CHECK(convgen::filter_shape({3, 2, 4, 5}, "filter") == FilterShape{3, 2, 4, 5});
  check_error(
      [] {
        convgen::activation_shape({2, 7, 6}, DataFormat::NHWC, "--input-sizes");
      },
      ErrorId::shape_mismatch, "--input-sizes");
  check_error(
      [] {
        convgen::filter_shape({3, 3, 1, 1, 1}, "filter");
      },
      ErrorId::shape_mismatch, "filter");
}

TEST_CASE("geometry: Attributes::from_tensorflow reads data-format order", "[unit]") {
  SECTION("NHWC") {
    const Attributes a = Attributes::from_tensorflow(
        DataFormat::NHWC, {1, 2, 3, 1}, Padding::EXPLICIT, {0, 0, 1, 2, 3, 4, 0, 0}, {1, 4, 5, 1});
    CHECK(a.format == DataFormat::NHWC);
    CHECK(a.padding == Padding::EXPLICIT);
    CHECK((a.stride_h == 2 && a.stride_w == 3));
    CHECK((a.dilation_h == 4 && a.dilation_w == 5));
    CHECK((a.pad_top == 1 && a.pad_bottom == 2 && a.pad_left == 3 && a.pad_right == 4));
  }
  SECTION("NCHW") {
    const Attributes a = Attributes::from_tensorflow(
        DataFormat::NCHW, {1, 1, 2, 3}, Padding::EXPLICIT, {0, 0, 0, 0, 1, 2, 3, 4}, {1, 1, 4, 5});
    CHECK(a.format == DataFormat::NCHW);
    CHECK((a.stride_h == 2 && a.stride_w == 3));
    CHECK((a.dilation_h == 4 && a.dilation_w == 5));
    CHECK((a.pad_top == 1 && a.pad_bottom == 2 && a.pad_left == 3 && a.pad_right == 4));
  }
  SECTION("empty dilations mean 1; SAME and VALID take no pads") {
    for (DataFormat f : {DataFormat::NHWC, DataFormat::NCHW}) {
      for (Padding p : {Padding::SAME, Padding::VALID}) {
        const Attributes a = Attributes::from_tensorflow(f, {1, 1, 1, 1}, p, {}, {});
        CHECK(a.padding == p);
        CHECK((a.dilation_h == 1 && a.dilation_w == 1));
        CHECK((a.pad_top == 0 && a.pad_bottom == 0 && a.pad_left == 0 && a.pad_right == 0));
      }
    }
  }
  SECTION("the channel position depends on the format") {
    // {1,1,1,2}: NHWC channel stride 2 (invalid), NCHW width stride 2 (valid).
    const Attributes a = Attributes::from_tensorflow(DataFormat::NCHW, {1, 1, 1, 2}, Padding::VALID,
                                                     {}, {1, 1, 3, 1});
    CHECK((a.stride_h == 1 && a.stride_w == 2 && a.dilation_h == 3 && a.dilation_w == 1));
    // NHWC pads {0,0,1,0,0,0,0,0}: a height pad; in NCHW the same entries are a channel pad.
    const Attributes b = Attributes::from_tensorflow(
        DataFormat::NHWC, {1, 1, 1, 1}, Padding::EXPLICIT, {0, 0, 1, 0, 0, 0, 0, 0}, {});
    CHECK((b.pad_top == 1 && b.pad_bottom == 0 && b.pad_left == 0 && b.pad_right == 0));
  }
  SECTION("the parsed attributes build the geometry TensorFlow would") {
    // NCHW input 1x2x7x6, 3x3 filter, strides 1,1,2,2 SAME: out ceil(7/2)=4 x ceil(6/2)=3,
    // h total 3*2+3-7=2 -> 1/1, w total 2*2+3-6=1 -> 0/1.
    const Attributes a =
        Attributes::from_tensorflow(DataFormat::NCHW, {1, 1, 2, 2}, Padding::SAME, {}, {});
    const Geometry g = Geometry::make(ActivationShape{1, 7, 6, 2}, FilterShape{3, 3, 2, 4}, a);
    CHECK(g.output_dims() == std::array<int64_t, 4>{1, 4, 4, 3});
    CHECK((g.pad_top() == 1 && g.pad_bottom() == 1 && g.pad_left() == 0 && g.pad_right() == 1));
  }
}

TEST_CASE("geometry: invalid TensorFlow attributes throw convgen::Error", "[unit]") {
  struct Invalid {
    const char* what;
    DataFormat format;
    std::vector<int64_t> strides;
    Padding padding;
    std::vector<int64_t> pads;
    std::vector<int64_t> dilations;
    ErrorId id;
    const char* argument;
  };
  const DataFormat NHWC = DataFormat::NHWC, NCHW = DataFormat::NCHW;
  const Invalid cases[] = {
      {"stride 0", NHWC, {1, 0, 1, 1}, Padding::VALID, {}, {}, ErrorId::invalid_stride, "strides"},
      {"negative stride",
       NCHW,
       {1, 1, 1, -2},
       Padding::VALID,
       {},
       {},
       ErrorId::invalid_stride,
       "strides"},
      {"batch stride 2",
       NHWC,
       {2, 1, 1, 1},
       Padding::VALID,
       {},
       {},
       ErrorId::invalid_stride,
       "strides"},
      {"NHWC channel stride 2",
       NHWC,
       {1, 1, 1, 2},
       Padding::VALID,
       {},
       {},
       ErrorId::invalid_stride,
       "strides"},
      {"NCHW channel stride 2",
       NCHW,
       {1, 2, 1, 1},
       Padding::VALID,
       {},
       {},
       ErrorId::invalid_stride,
       "strides"},
      {"3-entry strides",
       NHWC,
       {1, 2, 2},
       Padding::VALID,
       {},
       {},
       ErrorId::invalid_argument,
       "strides"},
      {"empty strides", NHWC, {}, Padding::VALID, {}, {}, ErrorId::invalid_argument, "strides"},
      {"NHWC channel dilation 2",
       NHWC,
       {1, 1, 1, 1},
       Padding::VALID,
       {},
       {1, 1, 1, 2},
       ErrorId::invalid_dilation,
       "dilations"},
      {"NCHW channel dilation 2",
       NCHW,
       {1, 1, 1, 1},
       Padding::VALID,
       {},
       {1, 2, 1, 1},
       ErrorId::invalid_dilation,
       "dilations"},
      {"batch dilation 2",
       NHWC,
       {1, 1, 1, 1},
       Padding::VALID,
       {},
       {2, 1, 1, 1},
       ErrorId::invalid_dilation,
       "dilations"},
      {"dilation 0",
       NCHW,
       {1, 1, 1, 1},
       Padding::VALID,
       {},
       {1, 1, 0, 1},
       ErrorId::invalid_dilation,
       "dilations"},
      {"5-entry dilations",
       NHWC,
       {1, 1, 1, 1},
       Padding::VALID,
       {},
       {1, 1, 1, 1, 1},
       ErrorId::invalid_argument,
       "dilations"},
      {"8 pads with a batch pad",
       NHWC,
       {1, 1, 1, 1},
       Padding::EXPLICIT,
       {1, 0, 0, 0, 0, 0, 0, 0},
       {},
       ErrorId::invalid_padding,
       "explicit_paddings"},
      {"NHWC channel pad",
       NHWC,
       {1, 1, 1, 1},
       Padding::EXPLICIT,
       {0, 0, 0, 0, 0, 0, 0, 1},
       {},
       ErrorId::invalid_padding,
       "explicit_paddings"},
      {"NCHW channel pad",
       NCHW,
       {1, 1, 1, 1},
       Padding::EXPLICIT,
       {0, 0, 1, 0, 0, 0, 0, 0},
       {},
       ErrorId::invalid_padding,
       "explicit_paddings"},
      {"negative pad",
       NHWC,
       {1, 1, 1, 1},
       Padding::EXPLICIT,
       {0, 0, 1, -1, 0, 0, 0, 0},
       {},
       ErrorId::invalid_padding,
       "explicit_paddings"},
      // A wrong count of pads is a padding error (as in the shape config's "pads"), while a wrong
      // count of strides or dilations is invalid_argument.
      {"EXPLICIT with 6 pads",
       NHWC,
       {1, 1, 1, 1},
       Padding::EXPLICIT,
       {0, 0, 1, 1, 1, 1},
       {},
       ErrorId::invalid_padding,
       "explicit_paddings"},
      {"EXPLICIT without pads",
       NCHW,
       {1, 1, 1, 1},
       Padding::EXPLICIT,
       {},
       {},
       ErrorId::invalid_padding,
       "explicit_paddings"},
      {"pads with SAME",
       NHWC,
       {1, 1, 1, 1},
       Padding::SAME,
       {0, 0, 1, 1, 1, 1, 0, 0},
       {},
       ErrorId::invalid_padding,
       "explicit_paddings"},
      {"all-zero pads with VALID",
       NHWC,
       {1, 1, 1, 1},
       Padding::VALID,
       {0, 0, 0, 0, 0, 0, 0, 0},
       {},
       ErrorId::invalid_padding,
       "explicit_paddings"},
  };
  for (const Invalid& c : cases) {
    INFO(c.what);
    check_error(
        [&] { Attributes::from_tensorflow(c.format, c.strides, c.padding, c.pads, c.dilations); },
        c.id, c.argument);
  }
}

TEST_CASE("geometry: invalid shapes and attributes throw convgen::Error", "[unit]") {
  // VALID with an input smaller than the dilated filter: ek = (3-1)*2+1 = 5 > 4.
  check_error(
      [] { GeometryBuilder().input(1, 4, 9, 1).filter(3, 3, 1).dilation(2, 1).valid().build(); },
      ErrorId::empty_output, "input");
  check_error(
      [] { GeometryBuilder().input(1, 9, 4, 1).filter(3, 3, 1).dilation(1, 2).valid().build(); },
      ErrorId::empty_output, "input");
  // VALID with an undilated filter larger than the input: 3 > 2.
  check_error([] { GeometryBuilder().input(1, 2, 5, 1).filter(3, 1, 1).valid().build(); },
              ErrorId::empty_output, "input");
  // EXPLICIT: padded input 1+0+1 = 2 < ek 3.
  check_error(
      [] { GeometryBuilder().input(1, 1, 5, 1).filter(3, 1, 1).explicit_pads(0, 1, 0, 0).build(); },
      ErrorId::empty_output, "explicit_paddings");

  // Channel mismatch between input and filter.
  check_error(
      [] {
        Geometry::make(ActivationShape{1, 5, 5, 3}, FilterShape{3, 3, 4, 2}, Attributes{});
      },
      ErrorId::shape_mismatch, "filter");
  // Zero sizes.
  check_error([] { GeometryBuilder().input(1, 0, 5, 1).build(); }, ErrorId::shape_mismatch,
              "input");
  check_error([] { GeometryBuilder().input(0, 5, 5, 1).build(); }, ErrorId::shape_mismatch,
              "input");
  check_error([] { GeometryBuilder().input(1, 5, 5, 1).filter(1, 1, 0).build(); },
              ErrorId::shape_mismatch, "filter");
  check_error([] { GeometryBuilder().input(1, 5, 5, 1).filter(0, 1, 1).same().build(); },
              ErrorId::shape_mismatch, "filter");

  // Huge sizes: 70000 * 70000 * 1000 = 4.9e12 input elements > 2^31 - 1.
  check_error([] { GeometryBuilder().input(1, 70000, 70000, 1000).filter(3, 3, 1).same().build(); },
              ErrorId::too_large, "input");
  // One dimension beyond 32 bits.
  check_error([] { GeometryBuilder().input(1, 3000000000LL, 1, 1).build(); }, ErrorId::too_large,
              "input");
  // Filter 1 * 1 * 50000 * 50000 = 2.5e9 elements (input 1x1x1x50000 and output 1x1x1x50000 fit).
  check_error([] { GeometryBuilder().input(1, 1, 1, 50000).filter(1, 1, 50000).build(); },
              ErrorId::too_large, "filter");
  // Output 1000 * 1000 * 3000 = 3e9 elements (input 1e6 and filter 3000 fit).
  check_error([] { GeometryBuilder().input(1, 1000, 1000, 1).filter(1, 1, 3000).same().build(); },
              ErrorId::too_large, "output");
  // SAME pads beyond 32 bits: in 2, ek = (2-1)*2147483646+1 = 2^31-1 (fits), out = 2,
  // total = 1*1 + ek - 2 = 2^31-2, so the padded height 2 + total = 2^31 does not.
  check_error(
      [] {
        GeometryBuilder().input(1, 2, 1, 1).filter(2, 1, 1).dilation(2147483646, 1).same().build();
      },
      ErrorId::too_large, "input");

  // Attributes given directly (not through from_tensorflow) are validated too; error.h documents
  // the ids: a stride < 1 is invalid_stride, a dilation < 1 invalid_dilation, a negative pad
  // invalid_padding.
  check_error([] { GeometryBuilder().input(1, 5, 5, 1).stride(0, 1).build(); },
              ErrorId::invalid_stride, "strides");
  check_error([] { GeometryBuilder().input(1, 5, 5, 1).stride(1, -1).same().build(); },
              ErrorId::invalid_stride, "strides");
  check_error([] { GeometryBuilder().input(1, 5, 5, 1).dilation(0, 1).build(); },
              ErrorId::invalid_dilation, "dilations");
  check_error([] { GeometryBuilder().input(1, 5, 5, 1).explicit_pads(0, 0, -1, 0).build(); },
              ErrorId::invalid_padding, "explicit_paddings");
}

TEST_CASE("geometry: each tensor at its size limit is accepted, one element more is refused",
          "[unit]") {
  constexpr int64_t max = convgen::kMaxTensorElements;  // 2^31 - 1, a prime
  constexpr int64_t half = int64_t(1) << 30;
  constexpr int64_t max_filter = convgen::kMaxFilterElements;  // (2^31 - 1) / 4 = 2^29 - 1
  static_assert(max_filter == (int64_t(1) << 29) - 1);
  struct Limit {
    const char* tensor;  // the argument the refusal names
    GeometryBuilder largest, too_large;
  };
  const Limit limits[] = {
      // 1x1x(2^31 - 1)x1 (the output, through a 1x1 filter, too), then 2x1x2^30x1.
      {"input", GeometryBuilder().input(1, 1, max, 1), GeometryBuilder().input(2, 1, half, 1)},
      // Two out channels: 1x1x(2^30 - 1)x2 = 2^31 - 2 output elements, then 1x1x2^30x2 = 2^31 from
      // an input of 2^30.
      {"output", GeometryBuilder().input(1, 1, half - 1, 1).filter(1, 1, 2),
       GeometryBuilder().input(1, 1, half, 1).filter(1, 1, 2)},
      // 1x1x1x(2^29 - 1), then 1x1x2x2^28 = 2^29 (input and output far smaller).
      {"filter", GeometryBuilder().filter(1, 1, max_filter),
       GeometryBuilder().input(1, 1, 1, 2).filter(1, 1, half / 4)},
  };
  for (DataFormat format : {DataFormat::NHWC, DataFormat::NCHW}) {
    for (const Limit& limit : limits) {
      const GeometryBuilder largest = GeometryBuilder(limit.largest).format(format);
      const GeometryBuilder too_large = GeometryBuilder(limit.too_large).format(format);
      INFO(limit.tensor << ": " << largest.describe() << ", then " << too_large.describe());
      CHECK_NOTHROW(largest.build());
      check_error([&] { too_large.build(); }, ErrorId::too_large, limit.tensor);
    }
  }
  // The reason shows the tensor in the layout's order and the limit.
  try {
    GeometryBuilder().input(2, 1, half, 1).nchw().build();
    FAIL_CHECK("not refused");
  } catch (const Error& e) {
    CHECK(e.reason() == "2x1x1x1073741824 has more elements than the 2147483647 a kernel can take");
  }
}

TEST_CASE("geometry: key() tells apart geometries differing in any one field", "[unit]") {
  // h: EXPLICIT in9 k3 s2 pads 1/2 -> floor((9+3-3)/2)+1 = 5; w: in10 k2 d2 s1 pads 0/1 -> ek=3,
  // (10+1-3)/1+1 = 9. Every variant below stays valid.
  const GeometryBuilder base = GeometryBuilder()
                                   .input(2, 9, 10, 3)
                                   .filter(3, 2, 4)
                                   .stride(2, 1)
                                   .dilation(1, 2)
                                   .explicit_pads(1, 2, 0, 1)
                                   .nhwc();
  const GeometryBuilder b = base;
  std::vector<std::pair<std::string, GeometryBuilder>> variants = {
      {"base", b},
      {"n", GeometryBuilder(b).input(3, 9, 10, 3)},
      {"h", GeometryBuilder(b).input(2, 10, 10, 3)},
      {"w", GeometryBuilder(b).input(2, 9, 11, 3)},
      {"c", GeometryBuilder(b).input(2, 9, 10, 4)},
      {"k", GeometryBuilder(b).filter(3, 2, 5)},
      {"r", GeometryBuilder(b).filter(2, 2, 4)},
      {"s", GeometryBuilder(b).filter(3, 3, 4)},
      {"stride_h", GeometryBuilder(b).stride(3, 1)},
      {"stride_w", GeometryBuilder(b).stride(2, 2)},
      {"dilation_h", GeometryBuilder(b).dilation(2, 2)},
      {"dilation_w", GeometryBuilder(b).dilation(1, 3)},
      {"pad_top", GeometryBuilder(b).explicit_pads(0, 2, 0, 1)},
      {"pad_bottom", GeometryBuilder(b).explicit_pads(1, 3, 0, 1)},
      {"pad_left", GeometryBuilder(b).explicit_pads(1, 2, 1, 1)},
      {"pad_right", GeometryBuilder(b).explicit_pads(1, 2, 0, 0)},
      {"format", GeometryBuilder(b).nchw()},
  };
  std::vector<std::string> keys;
  for (const auto& v : variants) keys.push_back(v.second.build().key());
  for (size_t x = 0; x < keys.size(); x++) {
    for (size_t y = x + 1; y < keys.size(); y++) {
      INFO(variants[x].first << ": " << keys[x] << " vs " << variants[y].first << ": " << keys[y]);
      CHECK(keys[x] != keys[y]);
    }
  }

  // Equal geometries have equal keys, however they were built.
  CHECK(base.build().key() == GeometryBuilder(base).build().key());
  const Attributes tf = Attributes::from_tensorflow(
      DataFormat::NHWC, {1, 2, 1, 1}, Padding::EXPLICIT, {0, 0, 1, 2, 0, 1, 0, 0}, {1, 1, 2, 1});
  CHECK(Geometry::make(ActivationShape{2, 9, 10, 3}, FilterShape{3, 2, 3, 4}, tf).key() ==
        base.build().key());
  // The same computation described two ways: SAME in7 k3 s1 resolves to pads 1/1 on both sides,
  // VALID is EXPLICIT with zero pads.
  CHECK(
      GeometryBuilder().input(1, 7, 7, 2).filter(3, 3, 2).same().build().key() ==
      GeometryBuilder().input(1, 7, 7, 2).filter(3, 3, 2).explicit_pads(1, 1, 1, 1).build().key());
  CHECK(
      GeometryBuilder().input(1, 7, 7, 2).filter(3, 3, 2).valid().build().key() ==
      GeometryBuilder().input(1, 7, 7, 2).filter(3, 3, 2).explicit_pads(0, 0, 0, 0).build().key());
}
