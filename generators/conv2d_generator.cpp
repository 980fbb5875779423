// conv2d: Y = X (*) W + b, in NHWC or NCHW, with HWIO filters.
#include "conv_generator.h"

namespace convgen {
namespace {

class Conv2D : public ConvGenerator<Conv2D> {
 public:
  Input<Halide::Buffer<float>> input{"input", 4};
  Input<Halide::Buffer<float>> filter{"filter", 4};
  Input<Halide::Buffer<float>> bias{"bias", 1};
  Output<Halide::Buffer<float>> output{"output", 4};

  void generate() {
    // The algorithm.
    ConvExprs g = geometry();
    with_input_side(g, input);
    with_filter(g, filter);
    const Halide::Func w = blocked_filter ? blocked(filter, Op::conv2d) : operand(filter);
    const Halide::Func x = zero_padded(canonical(input), input, Tensor::input, conv2d_input_window);
    const Reduction y = conv2d(vars, g, x, w, operand(bias));
    define_activation_output(output, y.func);

    // The buffers' contract with the runtime.
    require(input, Tensor::input);
    require(filter, Tensor::filter);
    require(bias, Tensor::bias);
    require(output, Tensor::output);

    // The schedule.
    unit_columns(stride_w == 1);
    // A tile loads the filter as vectors from a packed copy of each chunk's slice, or in place
    // from a blocked filter.
    schedule_activation_output(output, Tensor::output, y,
                               blocked_filter ? schedules::Staged{} : schedules::Staged{w, w.args()});
  }
};

}  // namespace
}  // namespace convgen

HALIDE_REGISTER_GENERATOR(convgen::Conv2D, conv2d)
