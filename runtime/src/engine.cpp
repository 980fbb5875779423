#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
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

// `data`, or else `count` zeros held by `storage`: kernels always take a bias and always write a
// bias gradient.
template <typename T>
T* or_scratch(T* data, int64_t count, std::vector<float>& storage) {
  if (data) return data;
  storage.assign(size_t(count), 0.0f);
  return storage.data();
}

// The message of the last Halide error raised on this thread (see Engine::Engine).
thread_local std::string halide_error_message;

void record_halide_error(void* /*user_context*/, const char* message) {
  halide_error_message = message;
}

KernelArgs scalar_args(const Geometry& g) {
  return {int(g.stride_h()), int(g.stride_w()), int(g.dilation_h()), int(g.dilation_w()),
          int(g.pad_top()),  int(g.pad_left()), {}};
}

// Runs `kernel`; buffers from `first_output` on are its outputs. A GPU kernel copies its inputs
// to the device itself (they are marked as written on the host), and leaves its outputs there:
// they are copied back, and every device copy freed, before returning, so that the caller's
// buffers are plain host memory again.
void run(const Kernel& kernel, const KernelArgs& args, int first_output) {
  // (The substring test first keeps string splitting off the CPU kernels' path.)
  const bool gpu =
      kernel.targets.find("cuda") != std::string_view::npos && runs_on_gpu(kernel.targets);
  if (gpu) {
    for (int i = 0; i < first_output; i++) args.buffers[i]->set_host_dirty(true);
  }
  halide_error_message.clear();
  int status = kernel.entry(args);
  if (gpu) {
    for (int i = 0; i < 4 && args.buffers[i]; i++) {
      if (i >= first_output && status == 0) status = halide_copy_to_host(nullptr, args.buffers[i]);
      halide_device_free(nullptr, args.buffers[i]);
    }
  }
  if (status != 0) {
    std::string reason = "kernel returned Halide error code " + std::to_string(status);
    const std::string& message = halide_error_message;
    const size_t end = message.find_last_not_of(" \n");
    if (end != std::string::npos) reason += ": " + message.substr(0, end + 1);
    throw Error(ErrorId::kernel_failed, std::string(kernel.name), reason);
  }
}

}  // namespace

Engine::Engine(const KernelList& kernels, Device device) : kernels_(&kernels) {
  // Halide's default error handler prints the message and aborts the process. This one records it
  // for the calling thread, and run() throws the kernel's error code with it as an Error.
  [[maybe_unused]] static const halide_error_handler_t default_handler =
      halide_set_error_handler(record_halide_error);
  for (const Kernel& kernel : kernels) {
    const bool gpu = runs_on_gpu(kernel.targets);
    if (device == Device::cpu && gpu) {
      target_refusals_.push_back("a CUDA kernel, and dispatch is restricted to the CPU");
    } else if (device == Device::cuda && !gpu) {
      target_refusals_.push_back("a CPU kernel, and dispatch is restricted to CUDA");
    } else {
      target_refusals_.push_back(target_refusal(kernel.targets));
    }
  }
  const char* verbose = std::getenv("CONVGEN_VERBOSE");
  verbose_ = verbose && std::string(verbose).find("dispatch") != std::string::npos;
}

namespace {

// Why a kernel was passed over (or chosen) for one call.
enum class Verdict { chosen, other_op, other_format, other_shape, target, duplicate, not_preferred };

// The one selection rule, shared by select() (no verdicts, no strings: the hot path) and explain().
// Preference: a specialized kernel for exactly this geometry, then a generic one; the first of each
// kind in list order.
const Kernel* choose(const KernelList& kernels, const std::vector<std::string>& refusals,
                            Op op, const Geometry& g, std::vector<Verdict>* verdicts) {
  const std::string key = g.key();
  const Kernel* specialized = nullptr;
  const Kernel* generic = nullptr;
  for (size_t i = 0; i < kernels.size(); i++) {
    const Kernel& k = kernels[i];
    Verdict v = Verdict::not_preferred;
    if (k.op != op) {
      v = Verdict::other_op;
    } else if (k.format != g.format()) {
      v = Verdict::other_format;
    } else if (!k.shape_key.empty() && k.shape_key != key) {
      v = Verdict::other_shape;
    } else if (!refusals[i].empty()) {
      v = Verdict::target;
    } else if (!k.shape_key.empty() ? specialized : generic) {
      v = Verdict::duplicate;
    } else {
      (k.shape_key.empty() ? generic : specialized) = &k;
    }
    if (verdicts) verdicts->push_back(v);
  }
  const Kernel* chosen = specialized ? specialized : generic;
  if (verdicts && chosen) (*verdicts)[size_t(chosen - kernels.data())] = Verdict::chosen;
  return chosen;
}

}  // namespace

Explanation Engine::explain(Op op, const Geometry& g) const {
  std::vector<Verdict> verdicts;
  Explanation e;
  e.chosen = choose(*kernels_, target_refusals_, op, g, &verdicts);
  for (size_t i = 0; i < kernels_->size(); i++) {
    const Kernel& k = (*kernels_)[i];
    std::string text;
    switch (verdicts[i]) {
      case Verdict::chosen: text = "chosen"; break;
      case Verdict::other_op: text = std::string("computes ") + to_string(k.op); break;
      case Verdict::other_format: text = std::string("takes ") + to_string(k.format); break;
      case Verdict::other_shape:
        text = "specialized for another shape (" + std::string(k.shape_key) + ")";
        break;
      case Verdict::target: text = target_refusals_[i]; break;
      case Verdict::duplicate: text = "an earlier kernel of the list does the same"; break;
      case Verdict::not_preferred: text = "a kernel specialized for this shape is preferred"; break;
    }
    e.candidates.push_back({&k, text});
  }
  std::stable_partition(e.candidates.begin(), e.candidates.end(),
                        [&](const Explanation::Candidate& c) { return c.kernel == e.chosen; });
  return e;
}

std::string Explanation::to_string() const {
  std::string text;
  for (const Candidate& c : candidates) {
    text += (c.kernel == chosen ? "* " : "  ") + std::string(c.kernel->name) + ": " + c.verdict + "\n";
  }
  if (!chosen) text += "no kernel can run this call\n";
  return text;
}

const Kernel& Engine::select(Op op, const Geometry& g) const {
  if (verbose_) {
    std::fprintf(stderr, "convgen dispatch: %s %s\n%s", to_string(op), g.key().c_str(),
                 explain(op, g).to_string().c_str());
  }
  const Kernel* chosen = choose(*kernels_, target_refusals_, op, g, nullptr);
  if (!chosen) {
    throw Error(ErrorId::unsupported, "op",
                std::string("no kernel of the list runs ") + to_string(op) + " on " + g.key() +
                    " on this machine");
  }
  return *chosen;
}

void Engine::conv2d(const Geometry& g, const float* input, const float* filter, const float* bias,
                    float* output) const {
  const Kernel& kernel = select(Op::conv2d, g);
  // Kernels always add a bias; without one they add zeros.
  std::vector<float> zeros;
  bias = or_scratch(bias, g.filter().k, zeros);
  View<4> x(input, g.input_dims()), w(filter, g.filter_dims()), y(output, g.output_dims());
  View<1> b(bias, {g.filter().k});
  KernelArgs args = scalar_args(g);
  args.buffers[0] = x.get();
  args.buffers[1] = w.get();
  args.buffers[2] = b.get();
  args.buffers[3] = y.get();
  run(kernel, args, 3);
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
  run(kernel, args, 2);
}

void Engine::conv2d_backprop_filter(const Geometry& g, const float* input,
                                    const float* out_backprop, float* filter_grad,
                                    float* bias_grad) const {
  const Kernel& kernel = select(Op::conv2d_backprop_filter, g);
  // Kernels always produce the bias gradient; when it is not wanted it goes to scratch.
  std::vector<float> scratch;
  bias_grad = or_scratch(bias_grad, g.filter().k, scratch);
  View<4> x(input, g.input_dims()), dy(out_backprop, g.output_dims()),
      dw(filter_grad, g.filter_dims());
  View<1> db(bias_grad, {g.filter().k});
  KernelArgs args = scalar_args(g);
  args.buffers[0] = x.get();
  args.buffers[1] = dy.get();
  args.buffers[2] = dw.get();
  args.buffers[3] = db.get();
  run(kernel, args, 2);
}

}  // namespace convgen
