#include "bench/onednn.h"

#include <string>

#include "convgen/error.h"

#ifdef CONVGEN_HAVE_ONEDNN
#include <unordered_map>
#include <vector>

#include "dnnl.hpp"
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP && defined(CONVGEN_HAVE_OPENMP)
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#define CONVGEN_ONEDNN_OPENMP 1
#endif
#endif

namespace convgen::tools::bench {

#ifndef CONVGEN_HAVE_ONEDNN

bool onednn_built() { return false; }

std::string onednn_about() {
  return "not built in (install libdnnl-dev, e.g. with scripts/setup, and configure again)";
}

int onednn_set_threads(int) { return 0; }

std::unique_ptr<Implementation> make_onednn(const Problem&, OnednnWeights, std::string*) {
  throw Error(ErrorId::unsupported, "oneDNN", "not built in");
}

#else

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

const char* runtime_name(unsigned runtime) {
  switch (runtime) {
    case DNNL_RUNTIME_SEQ:
      return "sequential";
    case DNNL_RUNTIME_OMP:
      return "OpenMP";
    case DNNL_RUNTIME_TBB:
      return "TBB";
    case DNNL_RUNTIME_THREADPOOL:
      return "threadpool";
    default:
      return "unknown";
  }
}

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The primitive descriptors of oneDNN 2 (an operation descriptor, then a primitive descriptor) and
// of oneDNN 3 (one constructor).
struct Shapes {
  memory::desc src, weights, bias, dst;  // bias: zero desc without a bias
  memory::dims strides, dilates, padding_l, padding_r;
};

constexpr auto kAlgorithm = dnnl::algorithm::convolution_direct;

dnnl::convolution_forward::primitive_desc forward_pd(const Shapes& s, dnnl::prop_kind kind) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::convolution_forward::primitive_desc(cpu_engine(), kind, kAlgorithm, s.src, s.weights,
                                                   s.bias, s.dst, s.strides, s.dilates, s.padding_l,
                                                   s.padding_r);
#else
  const dnnl::convolution_forward::desc desc(kind, kAlgorithm, s.src, s.weights, s.bias, s.dst,
                                             s.strides, s.dilates, s.padding_l, s.padding_r);
  return dnnl::convolution_forward::primitive_desc(desc, cpu_engine());
#endif
}

dnnl::convolution_backward_data::primitive_desc backward_data_pd(
    const Shapes& s, const dnnl::convolution_forward::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::convolution_backward_data::primitive_desc(cpu_engine(), kAlgorithm, s.src, s.weights,
                                                         s.dst, s.strides, s.dilates, s.padding_l,
                                                         s.padding_r, hint);
#else
  const dnnl::convolution_backward_data::desc desc(kAlgorithm, s.src, s.weights, s.dst, s.strides,
                                                   s.dilates, s.padding_l, s.padding_r);
  return dnnl::convolution_backward_data::primitive_desc(desc, cpu_engine(), hint);
#endif
}

dnnl::convolution_backward_weights::primitive_desc backward_weights_pd(
    const Shapes& s, const dnnl::convolution_forward::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::convolution_backward_weights::primitive_desc(
      cpu_engine(), kAlgorithm, s.src, s.weights, s.bias, s.dst, s.strides, s.dilates, s.padding_l,
      s.padding_r, hint);
#else
  const dnnl::convolution_backward_weights::desc desc(
      kAlgorithm, s.src, s.weights, s.bias, s.dst, s.strides, s.dilates, s.padding_l, s.padding_r);
  return dnnl::convolution_backward_weights::primitive_desc(desc, cpu_engine(), hint);
#endif
}

#ifdef CONVGEN_ONEDNN_OPENMP
// Binds each thread of OpenMP's team to one CPU of those the calling thread may run on (thread i
// to the i-th, round robin), the calling thread included, as OMP_PROC_BIND=close does for
// oneDNN's own benchmarks; leave() gives the calling thread its CPUs back. Unbound, an OpenMP
// worker that went to sleep is woken on the CPU of the thread that wakes it, where Linux may
// leave it queued behind that thread for a scheduler tick when it sees no cache the CPUs share
// (on a 2-vCPU EPYC VM, half of oneDNN's samples took 4 ms longer than the rest). The binding
// lasts while oneDNN is timed only, so that it does not confine the threads of the others.
class OpenmpBinding {
 public:
  void enter() {
    if (pthread_getaffinity_np(pthread_self(), sizeof caller_, &caller_) != 0) return;
    bound_ = true;
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
      if (CPU_ISSET(cpu, &caller_)) cpus.push_back(cpu);
    }
#pragma omp parallel
    {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[size_t(omp_get_thread_num()) % cpus.size()], &one);
      pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    }
  }

  void leave() {
    if (bound_) pthread_setaffinity_np(pthread_self(), sizeof caller_, &caller_);
    bound_ = false;
  }

 private:
  cpu_set_t caller_;
  bool bound_ = false;
};
#else
class OpenmpBinding {  // another runtime: its threads stay where it puts them
 public:
  void enter() {}
  void leave() {}
};
#endif

// A oneDNN primitive with its arguments bound: run() executes it and waits.
class OnednnConvolution : public Implementation {
 public:
  OnednnConvolution(const Problem& problem, OnednnWeights weights, std::string* name)
      : stream_(cpu_engine()) {
    const Geometry& g = problem.geometry;
    const Tag activations = g.format() == DataFormat::NHWC ? Tag::nhwc : Tag::nchw;
    const auto f32 = memory::data_type::f32;
    // oneDNN's dimensions are logical (N, C, H, W and O, I, H, W) whatever the layout; a dilation
    // of 0 is dense (TensorFlow's 1).
    const memory::dims src_dims = {g.input().n, g.input().c, g.input().h, g.input().w};
    const memory::dims dst_dims = {g.output().n, g.output().c, g.output().h, g.output().w};
    const memory::dims weight_dims = {g.filter().k, g.filter().c, g.filter().r, g.filter().s};
    const memory::desc user_weights(weight_dims, f32, Tag::hwio);
    Shapes s;
    s.src = memory::desc(src_dims, f32, activations);
    s.dst = memory::desc(dst_dims, f32, activations);
    s.weights =
        weights == OnednnWeights::any ? memory::desc(weight_dims, f32, Tag::any) : user_weights;
    if (problem.has_bias) s.bias = memory::desc({g.filter().k}, f32, Tag::x);
    s.strides = {g.stride_h(), g.stride_w()};
    s.dilates = {g.dilation_h() - 1, g.dilation_w() - 1};
    s.padding_l = {g.pad_top(), g.pad_left()};
    s.padding_r = {g.pad_bottom(), g.pad_right()};

    outputs_ = problem.poisoned_outputs();
    auto& engine = cpu_engine();
    // oneDNN only reads its inputs; the const_casts give it the Problem's buffers without a copy.
    const auto in = [&](const memory::desc& desc, const std::vector<float>& data) {
      return memory(desc, engine, const_cast<float*>(data.data()));
    };
    // The user's HWIO weights as the primitive wants them: reordered once, here, when it prefers
    // another format.
    const auto weights_for = [&](const memory::desc& wanted) {
      memory user = in(user_weights, problem.filter);
      if (wanted == user_weights) return user;
      memory reordered(wanted, engine);
      dnnl::reorder(user, reordered).execute(stream_, user, reordered);
      stream_.wait();
      return reordered;
    };

    switch (problem.op) {
      case Op::conv2d: {
        const auto pd = forward_pd(s, dnnl::prop_kind::forward_inference);
        *name = pd.impl_info_str();
        primitive_ = dnnl::convolution_forward(pd);
        args_[DNNL_ARG_SRC] = in(s.src, problem.input);
        args_[DNNL_ARG_WEIGHTS] = weights_for(pd.weights_desc());
        if (problem.has_bias) args_[DNNL_ARG_BIAS] = in(s.bias, problem.bias);
        args_[DNNL_ARG_DST] = memory(s.dst, engine, outputs_[0].data());
        break;
      }
      case Op::conv2d_backprop_input: {
        const auto hint = forward_pd(s, dnnl::prop_kind::forward_training);
        const auto pd = backward_data_pd(s, hint);
        *name = pd.impl_info_str();
        primitive_ = dnnl::convolution_backward_data(pd);
        args_[DNNL_ARG_DIFF_DST] = in(s.dst, problem.out_backprop);
        args_[DNNL_ARG_WEIGHTS] = weights_for(pd.weights_desc());
        args_[DNNL_ARG_DIFF_SRC] = memory(s.src, engine, outputs_[0].data());
        break;
      }
      case Op::conv2d_backprop_filter: {
        const auto hint = forward_pd(s, dnnl::prop_kind::forward_training);
        const auto pd = backward_weights_pd(s, hint);
        *name = pd.impl_info_str();
        primitive_ = dnnl::convolution_backward_weights(pd);
        args_[DNNL_ARG_SRC] = in(s.src, problem.input);
        args_[DNNL_ARG_DIFF_DST] = in(s.dst, problem.out_backprop);
        user_diff_weights_ = memory(user_weights, engine, outputs_[0].data());
        if (pd.diff_weights_desc() == user_weights) {
          args_[DNNL_ARG_DIFF_WEIGHTS] = user_diff_weights_;
        } else {  // reordered to HWIO by results(), outside the timing
          diff_weights_ = memory(pd.diff_weights_desc(), engine);
          args_[DNNL_ARG_DIFF_WEIGHTS] = diff_weights_;
        }
        if (problem.has_bias) {
          args_[DNNL_ARG_DIFF_BIAS] = memory(s.bias, engine, outputs_[1].data());
        }
        break;
      }
    }
  }

  void run() override {
    primitive_.execute(stream_, args_);
    stream_.wait();
  }

  void enter() override { binding_.enter(); }
  void leave() override { binding_.leave(); }

  const Problem::Outputs& results() override {
    if (diff_weights_) {
      dnnl::reorder(diff_weights_, user_diff_weights_)
          .execute(stream_, diff_weights_, user_diff_weights_);
      stream_.wait();
    }
    return outputs_;
  }

 private:
  dnnl::stream stream_;
  dnnl::primitive primitive_;
  std::unordered_map<int, memory> args_;
  Problem::Outputs outputs_;
  memory diff_weights_, user_diff_weights_;  // backprop_filter in a blocked format only
  OpenmpBinding binding_;
};

}  // namespace

bool onednn_built() { return true; }

std::string onednn_about() {
  const dnnl_version_t* v = dnnl::version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + " (CPU runtime " + runtime_name(v->cpu_runtime) + ")";
}

int onednn_set_threads(int threads) {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_SEQ
  (void)threads;
  return 1;
#elif defined(CONVGEN_ONEDNN_OPENMP)
  omp_set_num_threads(threads);
  return omp_get_max_threads();
#else
  (void)threads;
  return 0;
#endif
}

std::unique_ptr<Implementation> make_onednn(const Problem& problem, OnednnWeights weights,
                                            std::string* name) {
  try {
    return std::make_unique<OnednnConvolution>(problem, weights, name);
  } catch (const dnnl::error& e) {
    throw Error(ErrorId::unsupported, "oneDNN", e.what());
  }
}

#endif

}  // namespace convgen::tools::bench
