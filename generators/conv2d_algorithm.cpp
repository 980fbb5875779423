#include "conv2d_algorithm.h"

namespace convgen {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;

Halide::Region conv2d_input_window(const ConvExprs& g) {
  const Expr col = input_col(g, 0, 0), row = input_row(g, 0, 0);
  return {{col, input_col(g, g.out_w - 1, g.filter_w - 1) - col + 1},
          {row, input_row(g, g.out_h - 1, g.filter_h - 1) - row + 1}};
}

Halide::Region backprop_input_window(const ConvExprs& g) {
  // The same indices as conv2d_backprop_input's, at the ends of their ranges (Halide's / floors).
  const Expr col = (g.pad_left - (g.filter_w - 1) * g.dilation_w) / g.stride_w;
  const Expr row = (g.pad_top - (g.filter_h - 1) * g.dilation_h) / g.stride_h;
  return {{col, (g.in_w - 1 + g.pad_left) / g.stride_w - col + 1},
          {row, (g.in_h - 1 + g.pad_top) / g.stride_h - row + 1}};
}

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
  // Only taps whose pixel lies on the stride's grid; Halide's % rounds towards minus infinity, so
  // negative numerators are handled exactly. With unit strides (a constant 1) every tap does, and
  // the reduction is a dense convolution of the zero-padded gradient.
  Expr on_grid = col % g.stride_w == 0 && row % g.stride_h == 0;
  std::vector<Expr> period;
  if (!Halide::Internal::is_const_one(Halide::Internal::simplify(on_grid))) {
    rd.where(on_grid);
    period = {1, g.stride_w, g.stride_h, 1};
  }

  Func acc("conv2d_backprop_input_acc");
  acc(v.c, v.x, v.y, v.n) = 0.0f;
  acc(v.c, v.x, v.y, v.n) +=
      out_grad(rd.x, col / g.stride_w, row / g.stride_h, v.n) * filter(rd.x, v.c, rd.y, rd.z);
  return {acc, rd, period};
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
