// The mathematics of the three operators, written once as free functions over Halide Funcs.
//
// Everything here works in canonical coordinates, whatever the user's layout:
//   activations  a(c, x, y, n)   (channel innermost, like NHWC)
//   filters      w(k, c, s, r)   (HWIO: out channel innermost)
// The generators adapt user buffers to these coordinates (layout.h) and the schedules decide how the
// loops run (schedules/). Nothing in this file knows about a target.
#pragma once

#include <vector>

#include "Halide.h"

namespace convgen {

// The problem as Halide expressions. In a generic kernel these are run-time parameters and buffer
// extents; in a shape-specialized kernel they are constants, so the same algorithm compiles to loops
// with exact trip counts.
struct ConvExprs {
  Halide::Expr batch;
  Halide::Expr in_h, in_w, in_c;
  Halide::Expr out_h, out_w, out_c;
  Halide::Expr filter_h, filter_w;
  Halide::Expr stride_h, stride_w;
  Halide::Expr dilation_h, dilation_w;
  Halide::Expr pad_top, pad_left;
};

// The loop variables every operator and schedule shares. `c` and `k` are the in/out channels, `x`
// and `y` the width and height positions, `n` the batch entry; `s` and `r` index filter taps.
struct ConvVars {
  Halide::Var c{"c"}, k{"k"}, x{"x"}, y{"y"}, n{"n"}, s{"s"}, r{"r"};
};

// An operator's result in canonical coordinates: a pure initial value and one update over `domain`.
// Schedules need both the Func and its reduction domain to order the loops.
struct Reduction {
  Halide::Func func;
  Halide::RDom domain;
  // Per pure var of `func`, the period with which the domain's predicate repeats along it
  // (backprop_input's strides along x and y); empty when the domain has no predicate. A tile of
  // positions that share a phase takes the same taps, so it tests the predicate once per tap.
  std::vector<Halide::Expr> period;
};

// The input row (column) that output row i (column j) reads through filter tap r (s).
inline Halide::Expr input_row(const ConvExprs& g, const Halide::Expr& i, const Halide::Expr& r) {
  return i * g.stride_h + r * g.dilation_h - g.pad_top;
}
inline Halide::Expr input_col(const ConvExprs& g, const Halide::Expr& j, const Halide::Expr& s) {
  return j * g.stride_w + s * g.dilation_w - g.pad_left;
}

// The columns and rows of its activation operand that a reduction reads, as {min, extent}: the
// input's for conv2d and conv2d_backprop_filter, dY's for conv2d_backprop_input (taps off the
// stride's grid included). Where both lie inside the tensor, it needs no zero padding.
Halide::Region conv2d_input_window(const ConvExprs& g);
Halide::Region backprop_input_window(const ConvExprs& g);

// Y(k, x, y, n) = bias(k) + sum over (c, s, r) of X(c, x*sw + s*dw - pl, y*sh + r*dh - pt, n) * W(k, c, s, r).
// `input` must read as zero outside the input (see zero_padded()).
Reduction conv2d(const ConvVars& v, const ConvExprs& g, const Halide::Func& input,
                 const Halide::Func& filter, const Halide::Func& bias);

// dX(c, x, y, n) = sum over the (output pixel, tap) pairs that read X(c, x, y, n) of dY * W. A gather:
// for tap (s, r) the output column is (x + pl - s*dw) / sw when that division is exact; other taps
// are skipped by the reduction's predicate, not multiplied by 0. `out_grad` must read as zero
// outside dY (see zero_padded()), which covers the columns past its edges.
Reduction conv2d_backprop_input(const ConvVars& v, const ConvExprs& g, const Halide::Func& out_grad,
                                const Halide::Func& filter);

// dW(k, c, s, r) = sum over (x, y, n) of X(c, x*sw + s*dw - pl, y*sh + r*dh - pt, n) * dY(k, x, y, n).
// `input` must read as zero outside the input.
Reduction conv2d_backprop_filter(const ConvVars& v, const ConvExprs& g, const Halide::Func& input,
                                 const Halide::Func& out_grad);

// db(k) = sum over (x, y, n) of dY(k, x, y, n).
Reduction bias_gradient(const ConvVars& v, const ConvExprs& g, const Halide::Func& out_grad);

}  // namespace convgen
