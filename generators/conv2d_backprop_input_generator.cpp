// conv2d_backprop_input: dX, the gradient of sum(Y * dY) with respect to X (the transposed
// convolution). The input's sizes come from the output buffer's extents.
#include "conv_generator.h"

namespace convgen {
namespace {

class Conv2DBackpropInput : public ConvGenerator<Conv2DBackpropInput> {
 public:
  Input<Halide::Buffer<float>> filter{"filter", 4};
  Input<Halide::Buffer<float>> out_backprop{"out_backprop", 4};
  Output<Halide::Buffer<float>> output{"output", 4};

  void generate() {
    // The algorithm.
    ConvExprs g = geometry();
    with_output_side(g, out_backprop);
    with_filter(g, filter);
    // The filter is read along its in-channels, which HWIO does not store contiguously: restaged,
    // or blocked along them. The kernels for thin images from deep output gradients, generic or
    // specialized, read it in place, along the out-channels they sum over.
    const ConvVars& v = vars;
    const Halide::Func w = operand(filter);
    Halide::Func staged_filter("staged_filter");
    const bool deep = thin == Thin::deep || (!blocked_filter && deep_shape());
    if (blocked_filter) {
      staged_filter = blocked(filter, Op::conv2d_backprop_input);
    } else if (deep) {
      staged_filter = w;
      dense_reduction();
    } else {
      staged_filter(v.k, v.c, v.s, v.r) = w(v.k, v.c, v.s, v.r);
    }
    const Halide::Func dy = zero_padded(canonical(out_backprop), out_backprop, Tensor::output,
                                          backprop_input_window);
    const Reduction dx = conv2d_backprop_input(vars, g, dy, staged_filter);
    define_activation_output(output, dx.func);
    require(filter, Tensor::filter);
    require(out_backprop, Tensor::output);
    require(output, Tensor::input);

    // The schedule. With unit strides (most layers) the reduction has no predicate; with a column
    // stride of 2 (a downsampling layer's), it repeats every 2 columns.
    common_case(stride_w == 1);
    common_case(stride_h == 1);
    period_two(stride_w == 2);
    unit_columns(stride_w == 1);
    const schedules::Staged along_c{staged_filter, {v.c, v.k, v.s, v.r}, 0, g.out_c * g.in_c, w};
    if (blocked_filter || deep) {
      schedule_activation_output(output, Tensor::input, dx, {});
    } else {
      schedule_activation_output(output, Tensor::input, dx, along_c, {along_c});
    }
  }

 private:
  // Whether this is a specialized CPU kernel of an input gradient that the kernel for thin images
  // from deep output gradients computes fastest (Thin::deep: the stem's); it runs the same tiles.
  bool deep_shape() const {
    const std::optional<Geometry> s = specialization();
    return s && !get_target().has_gpu_feature() &&
           thin_images(Op::conv2d_backprop_input, *s) == Thin::deep;
  }
};

}  // namespace
}  // namespace convgen

HALIDE_REGISTER_GENERATOR(convgen::Conv2DBackpropInput, conv2d_backprop_input)
