#include <array>
#include <vector>

#include "convgen/convgen.h"

namespace convgen {
namespace {

// A halide_buffer_t over a dense C-order tensor owned by the caller. Halide lists dimensions
// innermost first, so C-order dims are reversed.
template <size_t Rank>
class View {
 public:
  View(const float* data, const std::array<int64_t, Rank>& c_order_dims) {
    int64_t stride = 1;
    for (size_t d = 0; d < Rank; d++) {
      const int64_t extent = c_order_dims[Rank - 1 - d];
      dims_[d] = halide_dimension_t(0, int32_t(extent), int32_t(stride));
      stride *= extent;
    }
    buffer_.host = reinterpret_cast<uint8_t*>(const_cast<float*>(data));
    buffer_.type = halide_type_t(halide_type_float, 32);
    buffer_.dimensions = int32_t(Rank);
    buffer_.dim = dims_.data();
  }
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  halide_buffer_t* get() { return &buffer_; }

 private:
  std::array<halide_dimension_t, Rank> dims_{};
  halide_buffer_t buffer_{};
};

KernelArgs scalar_args(const Geometry& g) {
  return {int(g.stride_h()), int(g.stride_w()), int(g.dilation_h()), int(g.dilation_w()),
          int(g.pad_top()),  int(g.pad_left()), {}};
}

void run(const Kernel& kernel, const KernelArgs& args) {
  const int status = kernel.entry(args);
  if (status != 0) {
    throw Error(ErrorId::kernel_failed, std::string(kernel.name),
                "kernel returned Halide error code " + std::to_string(status));
  }
}

}  // namespace

const Kernel& Engine::select(Op op, const Geometry& g) const {
  const std::string key = g.key();
  const Kernel* generic = nullptr;
  for (const Kernel& kernel : *kernels_) {
    if (kernel.op != op || kernel.format != g.format()) continue;
    if (kernel.shape_key == key) return kernel;
    if (kernel.shape_key.empty() && !generic) generic = &kernel;
  }
  if (!generic) {
    throw Error(ErrorId::unsupported, "op",
                std::string("no compiled ") + to_string(op) + " kernel for " + to_string(g.format()));
  }
  return *generic;
}

void Engine::conv2d(const Geometry& g, const float* input, const float* filter, const float* bias,
                    float* output) const {
  const Kernel& kernel = select(Op::conv2d, g);
  // Kernels always add a bias; without one they add zeros.
  std::vector<float> zeros;
  if (!bias) {
    zeros.assign(size_t(g.filter().k), 0.0f);
    bias = zeros.data();
  }
  View<4> x(input, g.input_dims()), w(filter, g.filter_dims()), y(output, g.output_dims());
  View<1> b(bias, {g.filter().k});
  KernelArgs args = scalar_args(g);
  args.buffers[0] = x.get();
  args.buffers[1] = w.get();
  args.buffers[2] = b.get();
  args.buffers[3] = y.get();
  run(kernel, args);
}

void Engine::conv2d_backprop_input(const Geometry& g, const float* filter, const float* out_backprop,
                                   float* input_grad) const {
  const Kernel& kernel = select(Op::conv2d_backprop_input, g);
  View<4> w(filter, g.filter_dims()), dy(out_backprop, g.output_dims()),
      dx(input_grad, g.input_dims());
  KernelArgs args = scalar_args(g);
  args.buffers[0] = w.get();
  args.buffers[1] = dy.get();
  args.buffers[2] = dx.get();
  run(kernel, args);
}

void Engine::conv2d_backprop_filter(const Geometry& g, const float* input,
                                    const float* out_backprop, float* filter_grad,
                                    float* bias_grad) const {
  const Kernel& kernel = select(Op::conv2d_backprop_filter, g);
  // Kernels always produce the bias gradient; when it is not wanted it goes to scratch.
  std::vector<float> scratch;
  if (!bias_grad) {
    scratch.resize(size_t(g.filter().k));
    bias_grad = scratch.data();
  }
  View<4> x(input, g.input_dims()), dy(out_backprop, g.output_dims()),
      dw(filter_grad, g.filter_dims());
  View<1> db(bias_grad, {g.filter().k});
  KernelArgs args = scalar_args(g);
  args.buffers[0] = x.get();
  args.buffers[1] = dy.get();
  args.buffers[2] = dw.get();
  args.buffers[3] = db.get();
  run(kernel, args);
}

}  // namespace convgen
