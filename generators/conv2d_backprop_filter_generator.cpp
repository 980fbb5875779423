// conv2d_backprop_filter: dW, the gradient of sum(Y * dY) with respect to the HWIO filter, and db,
// the gradient with respect to the bias.
#include "conv_generator.h"

namespace convgen {
namespace {

class Conv2DBackpropFilter : public ConvGenerator<Conv2DBackpropFilter> {
 public:
  Input<Halide::Buffer<float>> input{"input", 4};
  Input<Halide::Buffer<float>> out_backprop{"out_backprop", 4};
  Output<Halide::Buffer<float>> filter_grad{"filter_grad", 4};
  Output<Halide::Buffer<float>> bias_grad{"bias_grad", 1};

  void generate() {
    // The algorithm.
    ConvExprs g = geometry();
    with_input_side(g, input);
    with_output_side(g, out_backprop);
    const Halide::Func dy = canonical(operand(out_backprop));
    const Halide::Func x = zero_padded(canonical(input), input, Tensor::input,
                                         conv2d_input_window);
    const Reduction dw = conv2d_backprop_filter(vars, g, x, dy);
    const Reduction db = bias_gradient(vars, g, dy);
    const ConvVars& v = vars;
    filter_grad(v.k, v.c, v.s, v.r) = dw.func(v.k, v.c, v.s, v.r);
    bias_grad(v.k) = db.func(v.k);
    require(input, Tensor::input);
    require(out_backprop, Tensor::output);
    require(filter_grad, Tensor::filter);
    require(bias_grad, Tensor::bias);

    // The schedule. With unit column strides, an output gradient of one channel (an edge
    // filter's) has its columns one element apart.
    const int columns = data_format == DataFormat::NHWC ? 1 : 0;
    unit_columns(stride_w == 1 && out_backprop.dim(columns).stride() == 1);
    // Copied whole (by a generic kernel), the output gradient's rows go to tasks of several.
    schedule_output(filter_grad, Tensor::filter, {v.k, v.c, v.s, v.r}, dw, dw.func.args(), {},
                    {dy, dy.args(), 0, g.out_w * g.out_c});
    schedule_output(bias_grad, Tensor::bias, {v.k}, db, db.func.args());
  }
};

}  // namespace
}  // namespace convgen

HALIDE_REGISTER_GENERATOR(convgen::Conv2DBackpropFilter, conv2d_backprop_filter)
