#include "conv2d_algorithm.h"

namespace convgen {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;

Reduction conv2d(const ConvVars& v, const ConvExprs& g, const Func& input, const Func& filter,
                 const Func& bias) {
  // Channels innermost, then filter columns, then rows: the order both layouts store them in.
  RDom rd(0, g.in_c, 0, g.filter_w, 0, g.filter_h, "taps");
  Func acc("conv2d_acc");
  acc(v.k, v.x, v.y, v.n) = bias(v.k);
  acc(v.k, v.x, v.y, v.n) +=
      input(rd.x, input_col(g, v.x, rd.y), input_row(g, v.y, rd.z), v.n) * filter(v.k, rd.x, rd.y, rd.z);
  return {acc, rd};
}

Reduction conv2d_backprop_input(const ConvVars& v, const ConvExprs& g, const Func& out_grad,
                                const Func& filter) {
  RDom rd(0, g.out_c, 0, g.filter_w, 0, g.filter_h, "taps");
  // The output pixel that reads (x, y) through tap (s, r), before dividing by the stride.
  Expr col = v.x + g.pad_left - rd.y * g.dilation_w;
  Expr row = v.y + g.pad_top - rd.z * g.dilation_h;
  // Halide's % and / round towards minus infinity, so negative numerators are handled exactly.
  rd.where(col % g.stride_w == 0 && row % g.stride_h == 0);
  rd.where(col >= 0 && col < g.out_w * g.stride_w && row >= 0 && row < g.out_h * g.stride_h);
  // The predicate above keeps every read inside dY; the clamp only tells bounds inference so.
  Expr j = Halide::clamp(col / g.stride_w, 0, g.out_w - 1);
  Expr i = Halide::clamp(row / g.stride_h, 0, g.out_h - 1);

  Func acc("conv2d_backprop_input_acc");
  acc(v.c, v.x, v.y, v.n) = 0.0f;
  acc(v.c, v.x, v.y, v.n) += out_grad(rd.x, j, i, v.n) * filter(rd.x, v.c, rd.y, rd.z);
  return {acc, rd};
}

Reduction conv2d_backprop_filter(const ConvVars& v, const ConvExprs& g, const Func& input,
                                 const Func& out_grad) {
  RDom rd(0, g.out_w, 0, g.out_h, 0, g.batch, "pixels");
  Func acc("conv2d_backprop_filter_acc");
  acc(v.k, v.c, v.s, v.r) = 0.0f;
  acc(v.k, v.c, v.s, v.r) +=
      input(v.c, input_col(g, rd.x, v.s), input_row(g, rd.y, v.r), rd.z) * out_grad(v.k, rd.x, rd.y, rd.z);
  return {acc, rd};
}

Reduction bias_gradient(const ConvVars& v, const ConvExprs& g, const Func& out_grad) {
  RDom rd(0, g.out_w, 0, g.out_h, 0, g.batch, "pixels");
  Func acc("bias_gradient_acc");
  acc(v.k) = 0.0f;
  acc(v.k) += out_grad(v.k, rd.x, rd.y, rd.z);
  return {acc, rd};
}

}  // namespace convgen
