#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "convgen/convgen.h"
#include "scratch.h"
#include "threads.h"

namespace convgen {
namespace {

KernelArgs scalar_args(const Geometry& g) {
  return {int(g.stride_h()), int(g.stride_w()), int(g.dilation_h()), int(g.dilation_w()),
          int(g.pad_top()),  int(g.pad_left()), {}};
}

// Describes a dense C-order tensor to Halide, which lists dimensions innermost first.
template <size_t Rank>
void describe(halide_buffer_t& buffer, halide_dimension_t* dims, const float* data,
              const std::array<int64_t, Rank>& c_order_dims) {
  int64_t stride = 1;
  for (size_t d = 0; d < Rank; d++) {
    const int64_t extent = c_order_dims[Rank - 1 - d];
    dims[d] = halide_dimension_t(0, int32_t(extent), int32_t(stride));
    stride *= extent;
  }
  buffer.host = reinterpret_cast<uint8_t*>(const_cast<float*>(data));
  buffer.type = halide_type_t(halide_type_float, 32);
  buffer.dimensions = int32_t(Rank);
  buffer.dim = dims;
}

// Halide's default error handler prints the message and aborts the process. convgen's records it
// instead, per thread, and the failing call throws a convgen::Error carrying it.
thread_local std::string halide_message;

void record_halide_error(void* /*user_context*/, const char* message) {
  halide_message += message;
}

void install_error_handler() {
  static const bool installed = (halide_set_error_handler(record_halide_error), true);
  (void)installed;
}

template <typename T>
T* required(T* data, const char* argument) {
  if (!data) throw Error(ErrorId::invalid_argument, argument, "no tensor given");
  return data;
}

}  // namespace

Engine::Engine(const KernelList& kernels, Device device) : kernels_(&kernels) {
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
enum class Verdict {
  chosen, other_op, other_format, other_shape, other_filter, target, duplicate, not_preferred
};

// The one selection rule, shared by select() (no verdicts, no strings: the hot path) and explain().
// Preference: a specialized kernel for exactly this geometry, then a generic one for shapes of
// its kind (for thin images of its kind, thin_images(), or for any), then the generic one for
// any shape, then any generic one; the first of each rank in list order. Only kernels for the
// filter's layout qualify (a blocked one is specialized).
const Kernel* choose(const KernelList& kernels, const std::vector<std::string>& refusals, Op op,
                     const Geometry& g, FilterLayout layout, std::vector<Verdict>* verdicts) {
  const std::string key = g.key();
  const Thin thin = thin_images(op, g);
  auto rank = [&](const Kernel& k) {
    return !k.shape_key.empty() ? 0 : k.thin == thin ? 1 : 2 + int(k.thin);  // none first
  };
  std::array<const Kernel*, 5> first{};  // of each rank
  for (size_t i = 0; i < kernels.size(); i++) {
    const Kernel& k = kernels[i];
    Verdict v = Verdict::not_preferred;
    if (k.op != op) {
      v = Verdict::other_op;
    } else if (k.format != g.format()) {
      v = Verdict::other_format;
    } else if (!k.shape_key.empty() && k.shape_key != key) {
      v = Verdict::other_shape;
    } else if (k.filter != layout) {
      v = Verdict::other_filter;
    } else if (!refusals[i].empty()) {
      v = Verdict::target;
    } else if (first[size_t(rank(k))]) {
      v = Verdict::duplicate;
    } else {
      first[size_t(rank(k))] = &k;
    }
    if (verdicts) verdicts->push_back(v);
  }
  const Kernel* chosen = nullptr;
  for (const Kernel* k : first) chosen = chosen ? chosen : k;
  if (verdicts && chosen) (*verdicts)[size_t(chosen - kernels.data())] = Verdict::chosen;
  return chosen;
}

}  // namespace

Explanation Engine::explain(Op op, const Geometry& g, FilterLayout layout) const {
  std::vector<Verdict> verdicts;
  Explanation e;
  e.chosen = choose(*kernels_, target_refusals_, op, g, layout, &verdicts);
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
      case Verdict::other_filter:
        text = k.filter == FilterLayout::blocked ? "takes a packed filter" : "takes an HWIO filter";
        break;
      case Verdict::target: text = target_refusals_[i]; break;
      case Verdict::duplicate: text = "an earlier kernel of the list does the same"; break;
      case Verdict::not_preferred:
        if (!e.chosen->shape_key.empty()) {
          text = "a kernel specialized for this shape is preferred";
        } else if (e.chosen->thin == Thin::images) {
          text = "the images are thin: the generic kernel for thin images is preferred";
        } else if (e.chosen->thin == Thin::deep) {
          text = "the input gradient is a thin image from a deep output gradient: the generic "
                 "kernel for those is preferred";
        } else {
          text = "for thin images, which these are not: the generic kernel for any shape is "
                 "preferred";
        }
        break;
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

const Kernel& Engine::select(Op op, const Geometry& g, FilterLayout layout) const {
  if (verbose_) {
    std::fprintf(stderr, "convgen dispatch: %s %s%s\n%s", to_string(op), g.key().c_str(),
                 layout == FilterLayout::blocked ? " (packed filter)" : "",
                 explain(op, g, layout).to_string().c_str());
  }
  const Kernel* chosen = choose(*kernels_, target_refusals_, op, g, layout, nullptr);
  if (!chosen) {
    throw Error(ErrorId::unsupported, "op",
                std::string("no kernel of the list runs ") + to_string(op) + " on " + g.key() +
                    " on this machine");
  }
  return *chosen;
}

namespace {

// One call, its results copied back: what each of Engine's operator methods does.
void run_once(const Engine& engine, Op op, const Geometry& g, const Tensors& tensors) {
  BoundCall call(engine, op, g, tensors);
  call.run();
  call.copy_results();
}

}  // namespace

void Engine::conv2d(const Geometry& g, const float* input, const float* filter, const float* bias,
                    float* output) const {
  run_once(*this, Op::conv2d, g, {input, filter, bias, nullptr, output, nullptr});
}

void Engine::conv2d_backprop_input(const Geometry& g, const float* filter, const float* out_backprop,
                                   float* input_grad) const {
  run_once(*this, Op::conv2d_backprop_input, g,
           {nullptr, filter, nullptr, out_backprop, input_grad, nullptr});
}

PackedFilter Engine::pack_filter(Op op, const Geometry& g, const float* filter) const {
  if (op == Op::conv2d_backprop_filter) {
    throw Error(ErrorId::invalid_argument, "op", "conv2d_backprop_filter reads no filter");
  }
  required(filter, "filter");
  std::vector<float> data(size_t(g.filter().r * g.filter().s * g.filter().c * g.filter().k));
  if (takes_blocked_filter(op, g) &&
      choose(*kernels_, target_refusals_, op, g, FilterLayout::blocked, nullptr)) {
    block_filter(op, g, filter, data.data());
    return PackedFilter(op, g, FilterLayout::blocked, std::move(data));
  }
  std::copy(filter, filter + data.size(), data.begin());
  return PackedFilter(op, g, FilterLayout::hwio, std::move(data));
}

void Engine::conv2d(const Geometry& g, const float* input, const PackedFilter& filter,
                    const float* bias, float* output) const {
  Tensors t{input, nullptr, bias, nullptr, output, nullptr};
  t.packed_filter = &filter;
  run_once(*this, Op::conv2d, g, t);
}

void Engine::conv2d_backprop_input(const Geometry& g, const PackedFilter& filter,
                                   const float* out_backprop, float* input_grad) const {
  Tensors t{nullptr, nullptr, nullptr, out_backprop, input_grad, nullptr};
  t.packed_filter = &filter;
  run_once(*this, Op::conv2d_backprop_input, g, t);
}

void Engine::conv2d_backprop_filter(const Geometry& g, const float* input,
                                    const float* out_backprop, float* filter_grad,
                                    float* bias_grad) const {
  run_once(*this, Op::conv2d_backprop_filter, g,
           {input, nullptr, nullptr, out_backprop, filter_grad, bias_grad});
}

namespace {

// The layout of the call's filter: a packed one's, checked against the call.
FilterLayout filter_layout(Op op, const Geometry& g, const Tensors& t) {
  if (!t.packed_filter) return FilterLayout::hwio;
  if (t.packed_filter->op() != op || t.packed_filter->geometry().key() != g.key()) {
    throw Error(ErrorId::invalid_argument, "filter",
                std::string("packed for ") + to_string(t.packed_filter->op()) + " on " +
                    t.packed_filter->geometry().key() + ", not for this call");
  }
  return t.packed_filter->layout();
}

// The filter's dims in C order: HWIO, or blocked (geometry.h).
std::array<int64_t, 4> filter_dims(Op op, const Geometry& g, FilterLayout layout) {
  return layout == FilterLayout::hwio ? g.filter_dims() : blocked_filter_dims(op, g);
}

}  // namespace

// The buffers in each operator's order (KernelArgs); kernels always take a bias and always write a
// bias gradient, so a missing one is zeros or scratch.
BoundCall::BoundCall(const Engine& engine, Op op, const Geometry& g, const Tensors& t)
    : kernel_(&engine.select(op, g, filter_layout(op, g, t))), args_(scalar_args(g)) {
  install_error_handler();
  install_thread_pool();
  install_scratch_cache();
  gpu_ = kernel_->targets.find("cuda") != std::string_view::npos && runs_on_gpu(kernel_->targets);
  const auto add = [&](const float* data, const auto& c_order_dims) {
    describe(buffers_[buffer_count_], dims_[buffer_count_], data, c_order_dims);
    args_.buffers[buffer_count_] = &buffers_[buffer_count_];
    buffer_count_++;
  };
  const std::array<int64_t, 1> channels{g.filter().k};
  const float* filter = t.packed_filter ? t.packed_filter->data() : t.filter;
  const std::array<int64_t, 4> filter_shape = filter_dims(op, g, kernel_->filter);
  if (op == Op::conv2d || op == Op::conv2d_backprop_filter) {
    const bool has_vector = op == Op::conv2d ? t.bias : t.bias_grad;
    if (!has_vector) scratch_.assign(size_t(g.filter().k), 0.0f);
  }
  switch (op) {
    case Op::conv2d:
      add(required(t.input, "input"), g.input_dims());
      add(required(filter, "filter"), filter_shape);
      add(t.bias ? t.bias : scratch_.data(), channels);
      first_output_ = buffer_count_;
      add(required(t.result, "output"), g.output_dims());
      break;
    case Op::conv2d_backprop_input:
      add(required(filter, "filter"), filter_shape);
      add(required(t.out_backprop, "out_backprop"), g.output_dims());
      first_output_ = buffer_count_;
      add(required(t.result, "input_grad"), g.input_dims());
      break;
    case Op::conv2d_backprop_filter:
      add(required(t.input, "input"), g.input_dims());
      add(required(t.out_backprop, "out_backprop"), g.output_dims());
      first_output_ = buffer_count_;
      add(required(t.result, "filter_grad"), g.filter_dims());
      add(t.bias_grad ? t.bias_grad : scratch_.data(), channels);
      break;
  }
}

BoundCall::~BoundCall() {
  if (!gpu_) return;
  for (int i = 0; i < buffer_count_; i++) halide_device_free(nullptr, &buffers_[i]);
}

void BoundCall::check(int status) const {
  std::string message = std::move(halide_message);
  halide_message.clear();
  if (status == 0) return;
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  throw Error(ErrorId::kernel_failed, std::string(kernel_->name),
              "Halide error " + std::to_string(status) + (message.empty() ? "" : ": " + message));
}

// A GPU kernel copies the inputs it finds written on the host to the device itself, and leaves its
// outputs there; kernel launches are asynchronous, so run() waits for them.
void BoundCall::run() {
  if (gpu_ && !ran_) {
    for (int i = 0; i < first_output_; i++) buffers_[i].set_host_dirty(true);
  }
  ran_ = true;
  halide_message.clear();
  check(kernel_->entry(args_));
  if (gpu_) check(halide_device_sync(nullptr, &buffers_[first_output_]));
}

void BoundCall::copy_results() {
  if (!gpu_) return;
  halide_message.clear();
  for (int i = first_output_; i < buffer_count_; i++) check(halide_copy_to_host(nullptr, &buffers_[i]));
}

}  // namespace convgen
