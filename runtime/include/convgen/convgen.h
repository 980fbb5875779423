// convgen's C++ API: run the three operators on tensors in the user's layout, with the best compiled
// kernel of a kernel list, or with the naive reference.
//
//   convgen::Geometry g = convgen::Geometry::make(input_shape, filter_shape, attributes);
//   convgen::Engine engine(my_kernels());
//   engine.conv2d(g, x, w, bias, y);
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convgen/error.h"
#include "convgen/geometry.h"
#include "convgen/kernel.h"
#include "convgen/receptive_field.h"
#include "convgen/reference.h"

namespace convgen {

// Why each kernel of a list was or was not chosen for one call.
struct Explanation {
  struct Candidate {
    const Kernel* kernel;
    std::string verdict;  // "chosen", or why not: the shape, the target, a better kernel
  };
  const Kernel* chosen = nullptr;  // null when no kernel can run the call
  std::vector<Candidate> candidates;

  // One line per candidate, the chosen one first.
  std::string to_string() const;
};

// Which kernels an Engine may dispatch to.
enum class Device {
  any,   // every kernel this machine can run, in list order (CPU kernels come first in the lists
         // convgen builds, so a CUDA kernel runs only where no CPU kernel serves the call)
  cpu,   // CPU kernels only
  cuda,  // CUDA kernels only (refused, with the reason, on a machine without a CUDA device)
};

// Dispatches each call to a kernel of `kernels`: one specialized for exactly the call's geometry
// when the list has one that this machine can run, else a generic one for the layout. Holds no
// mutable state: one Engine may serve any number of threads at once (each call computes into the
// caller's buffers; calls may share inputs). With CONVGEN_VERBOSE=dispatch in the environment (read
// when the Engine is made) each call logs its explanation on stderr.
//
// A kernel that fails (Halide reports an error, e.g. an allocation it cannot make) throws
// ErrorId::kernel_failed with Halide's message. For that the first Engine made installs a Halide
// error handler (halide_set_error_handler) that records the message for the calling thread, where
// Halide's default one would abort the process. It also installs convgen's thread pool for the
// kernels' parallel loops (see set_num_threads()).
//
// A CUDA kernel is usable only where a CUDA driver and device are present (probed once per
// process). It takes and returns host memory like any kernel: the Engine copies the outputs back
// and frees the device copies before the call returns.
class PackedFilter;

class Engine {
 public:
  explicit Engine(const KernelList& kernels, Device device = Device::any);

  // Which kernel would run `op` on `g` with a filter in `layout`, and why the others would not.
  Explanation explain(Op op, const Geometry& g, FilterLayout layout = FilterLayout::hwio) const;
  // The kernel that runs `op` on `g` with a filter in `layout`; throws ErrorId::unsupported when
  // none can.
  const Kernel& select(Op op, const Geometry& g, FilterLayout layout = FilterLayout::hwio) const;

  // The HWIO `filter` of `op` (conv2d or conv2d_backprop_input) on `g`, copied once for any
  // number of later calls that read it (an inference loop's weights): in the blocked layout when
  // the list has a kernel for packed filters that runs the call here (a shape config's
  // `packed_filter`), else as it is. Throws ErrorId::invalid_argument naming "op" for
  // conv2d_backprop_filter, "filter" when it is null.
  PackedFilter pack_filter(Op op, const Geometry& g, const float* filter) const;

  // Tensors are dense and C-ordered with the geometry's sizes, as in convgen::reference. `bias` and
  // `bias_grad` may be null.
  void conv2d(const Geometry& g, const float* input, const float* filter, const float* bias,
              float* output) const;
  void conv2d_backprop_input(const Geometry& g, const float* filter, const float* out_backprop,
                             float* input_grad) const;
  void conv2d_backprop_filter(const Geometry& g, const float* input, const float* out_backprop,
                              float* filter_grad, float* bias_grad) const;
  // The same with a filter from pack_filter() for the same operator and geometry (else
  // ErrorId::invalid_argument naming "filter").
  void conv2d(const Geometry& g, const float* input, const PackedFilter& filter, const float* bias,
              float* output) const;
  void conv2d_backprop_input(const Geometry& g, const PackedFilter& filter,
                             const float* out_backprop, float* input_grad) const;

 private:
  const KernelList* kernels_;
  std::vector<std::string> target_refusals_;  // per kernel: empty when this machine can run it
  bool verbose_ = false;
};

// A filter copied once by Engine::pack_filter for calls of one operator on one geometry.
class PackedFilter {
 public:
  Op op() const { return op_; }
  const Geometry& geometry() const { return geometry_; }
  FilterLayout layout() const { return layout_; }
  const float* data() const { return data_.data(); }

 private:
  friend class Engine;
  PackedFilter(Op op, const Geometry& g, FilterLayout layout, std::vector<float> data)
      : op_(op), geometry_(g), layout_(layout), data_(std::move(data)) {}

  Op op_;
  Geometry geometry_;
  FilterLayout layout_;
  std::vector<float> data_;
};

// The tensors of one call, by role. Each operator reads and writes its own (see Engine's methods);
// the others stay null.
struct Tensors {
  const float* input = nullptr;         // conv2d, conv2d_backprop_filter
  const float* filter = nullptr;        // conv2d, conv2d_backprop_input
  const float* bias = nullptr;          // conv2d; may be null
  const float* out_backprop = nullptr;  // conv2d_backprop_input, conv2d_backprop_filter
  float* result = nullptr;              // output, input_grad or filter_grad
  float* bias_grad = nullptr;           // conv2d_backprop_filter; may be null
  // Instead of `filter`: one packed for this operator and geometry (Engine::pack_filter), which
  // the call runs with the kernel for its layout.
  const PackedFilter* packed_filter = nullptr;
};

// One call bound to its kernel and tensors, to be run any number of times (what a training loop
// or a benchmark does). A CPU kernel reads and writes the caller's memory on every run(). A CUDA
// kernel copies the inputs to the device on the first run() and keeps them there, with its
// outputs: later runs reuse them, and copy_results() brings the outputs back to the caller's
// memory. The destructor frees every device copy. Engine's operator methods are one run() and one
// copy_results(). Not thread-safe (it owns device state): one BoundCall per thread.
class BoundCall {
 public:
  // Selects the kernel as engine.select(op, g, layout of the filter) does; throws what it throws,
  // and ErrorId::invalid_argument naming the tensor when one the operator needs is null (or
  // "filter" for a packed filter of another operator or geometry).
  BoundCall(const Engine& engine, Op op, const Geometry& g, const Tensors& tensors);
  ~BoundCall();
  BoundCall(const BoundCall&) = delete;
  BoundCall& operator=(const BoundCall&) = delete;

  const Kernel& kernel() const { return *kernel_; }
  // Computes the outputs; returns when the kernel has finished, on a GPU too. Throws
  // ErrorId::kernel_failed with Halide's error code and message (convgen replaces Halide's
  // default error handler, which aborts the process, with one that keeps the message).
  void run();
  // Makes the caller's output memory hold the last run's results (a copy from the device for a
  // CUDA kernel; nothing to do for a CPU kernel).
  void copy_results();

 private:
  void check(int status) const;

  const Kernel* kernel_;
  bool gpu_ = false;
  bool ran_ = false;
  KernelArgs args_{};
  int first_output_ = 0, buffer_count_ = 0;
  halide_buffer_t buffers_[4]{};
  halide_dimension_t dims_[4][4]{};
  std::vector<float> scratch_;  // zeros for a missing bias, or a bias gradient nobody wants
};

// Sets the number of threads kernels run on, the calling thread included (0: one per core; the
// default, or $HL_NUM_THREADS), and returns the count now in force. Kernels' parallel loops run on
// convgen's thread pool rather than Halide's: between loops its idle workers spin for 2 ms before
// they sleep, as OpenMP runtimes do, so that back-to-back calls do not pay for waking them. Call it
// while no kernel runs. It installs the pool in the kernels' Halide runtime, so only a program that
// links a kernel library may call it.
int set_num_threads(int threads);

// Kernels allocate their scratch buffers (zero-padded inputs, packed filters) at every call and
// free them before returning. convgen keeps the large ones once freed, up to 256 MiB in all, for
// the next call to reuse: returned to the system, each call would fault their pages in again
// (a quarter of the time of a 3x3 layer, measured). The bytes kept now, and a call that returns
// them to the system (call it while no kernel runs). Builds with sanitizers keep none.
std::size_t cached_scratch_bytes();
void release_scratch_memory();

// Whether this machine can run code for a Halide target string ("x86-64-linux-avx2-fma", "host",
// or a comma-separated multitarget list, which runs when any of its entries does). Returns an empty
// string when it can, else the reason it cannot.
std::string target_refusal(std::string_view targets);

// Why this machine cannot run CUDA kernels (no driver, no device), or an empty string when CUDA
// device 0 is usable.
std::string cuda_refusal();

// Whether code for a Halide target string runs on a GPU (the `cuda` feature).
bool runs_on_gpu(std::string_view targets);

}  // namespace convgen
