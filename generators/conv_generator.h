// What the three operator generators have in common: the geometry parameters, the layout of the
// user's activations, shape specialization and the schedule record. Each generator adds its buffers
// and calls the shared algorithm (conv2d_algorithm.h) and the target's schedule (schedules/).
//
// A generic kernel reads its geometry at run time: the scalar inputs below and its buffers' extents.
// A specialized kernel (GeneratorParam `shape`, a Geometry::key()) keeps the same signature but
// ignores the scalars: every stride, pad and extent is a constant, so the schedule sees exact trip
// counts and bounds checks fold away. The runtime calls it only for that exact geometry.
#pragma once

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "Halide.h"
#include "conv2d_algorithm.h"
#include "convgen/geometry.h"
#include "cpu_schedule.h"
#include "cuda_schedule.h"

namespace convgen {

template <typename T>
class ConvGenerator : public Halide::Generator<T> {
 public:
  template <typename U>
  using Input = typename Halide::Generator<T>::template Input<U>;
  template <typename U>
  using GeneratorParam = typename Halide::Generator<T>::template GeneratorParam<U>;

  // The layout of the activation tensors (input, output and their gradients).
  GeneratorParam<DataFormat> data_format{
      "data_format", DataFormat::NHWC, {{"NHWC", DataFormat::NHWC}, {"NCHW", DataFormat::NCHW}}};
  // The Geometry::key() this kernel is specialized for; empty for a generic kernel.
  GeneratorParam<std::string> shape{"shape", ""};
  // A JSON file with the schedule's knob values; empty means the schedule's declared defaults.
  GeneratorParam<std::string> schedule_record{"schedule_record", ""};
  // Where to write the knob space and the values used (schedules/knobs.h); empty: nowhere.
  GeneratorParam<std::string> knob_report{"knob_report", ""};
  // Whether the filter comes packed in blocks of kFilterBlock channels (convgen/geometry.h,
  // FilterLayout::blocked) rather than as HWIO; specialized kernels of conv2d and
  // conv2d_backprop_input only.
  GeneratorParam<bool> blocked_filter{"blocked_filter", false};
  // Whether the kernel is a generic one for thin images (convgen/geometry.h, Thin;
  // schedules::ReductionStage::thin): NHWC, fastest where a forward pass's or input gradient's
  // output has 3 channels or one, or a filter gradient's input, against an output gradient of
  // one channel (images); or an input gradient's output, from a deep output gradient (deep,
  // conv2d_backprop_input only).
  GeneratorParam<Thin> thin{"thin", Thin::none,
                            {{to_string(Thin::none), Thin::none},
                             {to_string(Thin::images), Thin::images},
                             {to_string(Thin::deep), Thin::deep}}};

  // The geometry that buffer extents cannot tell: every kernel takes these, in this order, first.
  Input<int> stride_h{"stride_h"}, stride_w{"stride_w"};
  Input<int> dilation_h{"dilation_h"}, dilation_w{"dilation_w"};
  Input<int> pad_top{"pad_top"}, pad_left{"pad_left"};

 protected:
  ConvVars vars;

  // The activation buffer `buffer` seen in canonical coordinates a(c, x, y, n).
  Halide::Func canonical(const Halide::Func& buffer) const {
    const ConvVars& v = vars;
    Halide::Func a(buffer.name() + "_canonical");
    if (data_format == DataFormat::NHWC) {
      a(v.c, v.x, v.y, v.n) = buffer(v.c, v.x, v.y, v.n);
    } else {
      a(v.c, v.x, v.y, v.n) = buffer(v.x, v.y, v.c, v.n);
    }
    return a;
  }

  // Defines the output buffer `out` (in the user's layout) from a canonical Func a(c, x, y, n).
  // NCHW goes through a canonical copy of `a`, inline unless the schedule computes it
  // (schedule_activation_output()).
  template <typename Output>
  void define_activation_output(Output& out, const Halide::Func& a) {
    const ConvVars& v = vars;
    if (data_format == DataFormat::NHWC) {
      out(v.c, v.x, v.y, v.n) = a(v.c, v.x, v.y, v.n);
    } else {
      canonical_output_ = Halide::Func(a.name() + "_canonical");
      canonical_output_(v.c, v.x, v.y, v.n) = a(v.c, v.x, v.y, v.n);
      out(v.x, v.y, v.c, v.n) = canonical_output_(v.c, v.x, v.y, v.n);
    }
  }

  // Extents of an activation buffer in canonical order: channels, width, height, batch.
  static auto as_tuple(const std::array<Halide::Expr, 4>& e) {
    return std::make_tuple(e[0], e[1], e[2], e[3]);
  }
  template <typename Buffer>
  static std::array<Halide::Expr, 4> canonical_extents(const Buffer& b, DataFormat format) {
    if (format == DataFormat::NHWC) {
      return {b.dim(0).extent(), b.dim(1).extent(), b.dim(2).extent(), b.dim(3).extent()};
    }
    return {b.dim(2).extent(), b.dim(0).extent(), b.dim(1).extent(), b.dim(3).extent()};
  }

  // The specialized geometry, if any (checked against the layout parameter).
  std::optional<Geometry> specialization() const {
    if (shape.value().empty()) return std::nullopt;
    const Geometry g = Geometry::from_key(shape, "shape");
    if (g.format() != data_format) {
      throw std::invalid_argument("shape: key " + shape.value() + " is not in the data_format");
    }
    return g;
  }

  // The geometry: all constants when specialized. Else the scalars are the run-time inputs and
  // buffer extents are added with the with_*() calls below from whichever buffers are the kernel's
  // inputs (an output's extents cannot be read while the algorithm that defines it is being
  // written); fields no buffer gives stay undefined and unused.
  ConvExprs geometry() const {
    ConvExprs g;
    if (const auto s = specialization()) {
      // Every field a constant, so reduction extents are too and the schedule can read them.
      g.batch = int(s->input().n);
      g.in_h = int(s->input().h), g.in_w = int(s->input().w), g.in_c = int(s->input().c);
      g.out_h = int(s->output().h), g.out_w = int(s->output().w), g.out_c = int(s->output().c);
      g.filter_h = int(s->filter().r), g.filter_w = int(s->filter().s);
      g.stride_h = int(s->stride_h()), g.stride_w = int(s->stride_w());
      g.dilation_h = int(s->dilation_h()), g.dilation_w = int(s->dilation_w());
      g.pad_top = int(s->pad_top()), g.pad_left = int(s->pad_left());
    } else {
      g.stride_h = stride_h, g.stride_w = stride_w;
      g.dilation_h = dilation_h, g.dilation_w = dilation_w;
      g.pad_top = pad_top, g.pad_left = pad_left;
    }
    return g;
  }
  template <typename Buffer>
  void with_input_side(ConvExprs& g, const Buffer& in) const {
    if (specialization()) return;
    std::tie(g.in_c, g.in_w, g.in_h, g.batch) = as_tuple(canonical_extents(in, data_format));
  }
  template <typename Buffer>
  void with_output_side(ConvExprs& g, const Buffer& out) const {
    if (specialization()) return;
    std::tie(g.out_c, g.out_w, g.out_h, g.batch) = as_tuple(canonical_extents(out, data_format));
  }
  // HWIO in row-major order is (k, c, s, r) in Halide's innermost-first order.
  template <typename Buffer>
  void with_filter(ConvExprs& g, const Buffer& filter) const {
    if (specialization()) return;
    g.out_c = filter.dim(0).extent();
    g.in_c = filter.dim(1).extent();
    g.filter_w = filter.dim(2).extent();
    g.filter_h = filter.dim(3).extent();
  }

  // Input buffer `b` as the algorithm reads it. A GPU schedule computes whole tiles and discards
  // what lies past the output's edges, so its reads there must stay inside the buffers: they are
  // clamped to the edge (the values are never used). A CPU schedule never reads past the edges.
  template <typename Buffer>
  Halide::Func operand(const Buffer& b) const {
    if (!this->get_target().has_gpu_feature()) return b;
    Halide::Region bounds;
    for (int d = 0; d < b.dimensions(); d++) bounds.emplace_back(0, b.dim(d).extent());
    return Halide::BoundaryConditions::repeat_edge(b, bounds);
  }

  // Tells the schedule of the next output that its reduction simplifies when `condition` (a
  // scalar input equal to a constant) holds, so that a generic kernel compiles that case too.
  void common_case(const Halide::Expr& condition) {
    if (!specialization()) common_case_.push_back(condition);
  }

  // Tells the schedule of the next output that its reduction's predicate repeats every 2 columns
  // when `condition` (a scalar input equal to a constant) holds (schedules::ReductionStage).
  void period_two(const Halide::Expr& condition) {
    if (!specialization()) period_two_ = condition;
  }

  // Tells the schedule of the next output that its reduction reads consecutive columns of its
  // inputs one element apart when `condition` (scalar inputs equal to constants) holds
  // (schedules::ReductionStage::unit_columns).
  void unit_columns(const Halide::Expr& condition) {
    if (!specialization()) unit_columns_ = condition;
  }

  // Tells the schedule of the next output that its padded input and its other operand both store
  // the reduction's innermost dimension contiguously (schedules::ReductionStage::dense_reduction).
  void dense_reduction() { dense_reduction_ = true; }

  // The kernel's tensors.
  enum class Tensor { input, output, filter, bias };

  // The filter w(k, c, s, r) of operator `op`'s kernel whose filter buffer is blocked along the
  // channels its register tile loads as vectors (k for conv2d, c for conv2d_backprop_input). Each
  // block holds kFilterBlock of those channels innermost, then every other channel, tap column
  // and tap row: a 4-D buffer (kFilterBlock x other channels, S, R, blocks), which a tile reads
  // as contiguous streams, one per block.
  template <typename Buffer>
  Halide::Func blocked(const Buffer& b, Op op) {
    const std::optional<Geometry> s = specialization();
    if (!s) throw std::invalid_argument("blocked_filter: needs a shape");
    if (!takes_blocked_filter(op, *s)) {
      throw std::invalid_argument("blocked_filter: the channels are not whole blocks");
    }
    const ConvVars& v = vars;
    const Halide::Var& channel = op == Op::conv2d ? v.k : v.c;
    const Halide::Var& other = op == Op::conv2d ? v.c : v.k;
    Halide::Func w("filter_unblocked");
    const int block = int(kFilterBlock);
    w(v.k, v.c, v.s, v.r) = b(channel % block + block * other, v.s, v.r, channel / block);
    blocked_op_ = op;
    return w;
  }

  // `a` extended with zeros outside the canonical extents of buffer `b`, for a reduction that
  // reads the columns and rows `window` gives (conv2d_algorithm.h). The schedule may compute it
  // once, whole (ReductionStage::padded). A specialized kernel whose window lies inside `b` (a
  // VALID 1x1 layer) reads `b` in place instead, clamped to its edges: only outputs that a tile
  // computes past the output's edges, and discards, read a clamped value.
  template <typename Buffer>
  Halide::Func zero_padded(const Halide::Func& a, const Buffer& b, Tensor tensor,
                           Halide::Region (*window)(const ConvExprs&)) {
    auto [c, w, h, n] = canonical_extents(b, data_format);
    const Halide::Region bounds = {{0, c}, {0, w}, {0, h}, {0, n}};
    const std::vector<int64_t> extents = known_extents(tensor);
    if (extents.empty()) {
      Halide::Func padded = pad(a, bounds, 0);
      if (thin != Thin::none) {
        padded_.back().column_stride = b.dim(1).stride();  // NHWC (schedule_output())
      }
      return padded;
    }
    const bool nhwc = data_format == DataFormat::NHWC;
    const int64_t width = extents[nhwc ? 1 : 0], height = extents[nhwc ? 2 : 1];
    const Halide::Region read = window(geometry());  // all constants
    if (inside(read[0], width) && inside(read[1], height)) {
      return Halide::BoundaryConditions::repeat_edge(a, bounds);
    }
    return pad(a, bounds, extents[nhwc ? 0 : 2]);
  }

  // `a` with zeros outside `bounds`, to compute once whole; `channels` is its innermost extent when
  // known, else 0.
  Halide::Func pad(const Halide::Func& a, const Halide::Region& bounds, int64_t channels) {
    Halide::Func padded = Halide::BoundaryConditions::constant_exterior(a, 0.0f, bounds);
    schedules::Staged staged{padded, padded.args(), channels, bounds[0].extent * bounds[1].extent};
    if (channels == 0) staged.extent = bounds[0].extent;
    if (data_format == DataFormat::NHWC) staged.interleaved = a;
    padded_.push_back(staged);
    return padded;
  }

  // Whether constant range `r` lies inside [0, extent).
  static bool inside(const Halide::Range& r, int64_t extent) {
    // as_const_int points into its argument's node: the simplified Exprs must outlive the reads.
    const Halide::Expr min = Halide::Internal::simplify(r.min);
    const Halide::Expr size = Halide::Internal::simplify(r.extent);
    const int64_t* m = Halide::Internal::as_const_int(min);
    const int64_t* s = Halide::Internal::as_const_int(size);
    return m && s && *m >= 0 && *m + *s <= extent;
  }

  // The buffers' contract with the runtime: whole, dense tensors starting at coordinate 0. A
  // specialized kernel also fixes every extent and stride, so that they fold into constants.
  template <typename Buffer>
  void require(Buffer& b, Tensor tensor) const {
    const std::vector<int64_t> extents = known_extents(tensor);
    int64_t stride = 1;
    for (int d = 0; d < b.dimensions(); d++) {
      b.dim(d).set_min(0);
      if (extents.empty()) continue;
      b.dim(d).set_extent(int(extents[size_t(d)])).set_stride(int(stride));
      stride *= extents[size_t(d)];
    }
    if (this->get_auto_schedule()) {
      autoscheduled_geometry();  // refuses a generic kernel
      Halide::Region estimates;
      for (int64_t extent : extents) estimates.emplace_back(0, int(extent));
      b.set_estimates(estimates);
    }
  }

  // A tensor's extents in Halide's order (innermost first) when specialized; empty otherwise.
  std::vector<int64_t> known_extents(Tensor tensor) const {
    const std::optional<Geometry> s = specialization();
    if (!s) return {};
    std::array<int64_t, 4> dims{};  // C order, as the user sees the tensor
    switch (tensor) {
      case Tensor::input: dims = s->input_dims(); break;
      case Tensor::output: dims = s->output_dims(); break;
      case Tensor::filter:
        dims = blocked_op_ ? blocked_filter_dims(*blocked_op_, *s) : s->filter_dims();
        break;
      case Tensor::bias: return {s->filter().k};
    }
    return {dims.rbegin(), dims.rend()};
  }

  // An activation output's values in canonical order (channels innermost), which a CPU schedule
  // may compute in that order and transpose into the output's layout (NCHW): the Func, and the
  // vector operand its register tile then loads (the filter, along the output's channels).
  struct Canonical {
    Halide::Func func;
    schedules::Staged vector_operand;
  };

  // Schedules output `out` (any layout) computed from reduction `a`, whose pure vars are `a_dims`
  // in the same order as `out_dims` (innermost first). With `canonical`, a CPU kernel whose
  // register tiles vectorize the channels (schedules::tiles_channels(): a generic kernel, or one
  // specialized for a vector of them or more) computes that instead and transposes it.
  void schedule_output(const Halide::Func& out, Tensor tensor,
                       const std::vector<Halide::Var>& out_dims, const Reduction& a,
                       const std::vector<Halide::Var>& a_dims,
                       const std::vector<schedules::Staged>& staged = {},
                       const schedules::Staged& vector_operand = {},
                       const Canonical& canonical = {}) {
    if (this->get_auto_schedule()) {
      estimate_scalars();
      return;  // Halide's autoscheduler schedules the whole pipeline from the estimates
    }
    // The zero-padded inputs go with the first output scheduled (the one whose reduction reads
    // them: a filter gradient's, not the bias gradient's after it).
    schedules::ReductionStage stage{out, out_dims, known_extents(tensor), a.func, a_dims,
                                    a.domain, staged, padded_, vector_operand, common_case_,
                                    constant_period(a, a_dims), period_two_, unit_columns_};
    stage.thin = thin != Thin::none;
    stage.dense_reduction = dense_reduction_;
    // The same reduction with `canonical` as its output, in the accumulator's own order.
    std::optional<schedules::ReductionStage> in_canonical_order;
    if (canonical.func.defined()) {
      schedules::ReductionStage& c = in_canonical_order.emplace(stage);
      c.output = canonical.func;
      c.dims = canonical.func.args();
      c.acc_dims = a.func.args();
      const std::vector<int64_t>& e = stage.extents;  // columns, rows, channels, batch
      if (!e.empty()) c.extents = {e[2], e[0], e[1], e[3]};
      c.vector_operand = canonical.vector_operand;
      c.period = constant_period(a, c.acc_dims);
      c.transposed = out;
      c.transposed_dims = out_dims;
    }
    padded_.clear();
    common_case_.clear();
    period_two_ = Halide::Expr();
    unit_columns_ = Halide::Expr();
    dense_reduction_ = false;
    const Halide::Target target = this->get_target();
    const bool gpu = target.has_gpu_feature();
    const std::vector<schedules::Knob> space =
        gpu ? schedules::cuda_knobs(target) : schedules::cpu_knobs(target);
    // One set of values for all the outputs, so that the report names every knob any of their
    // schedules read.
    if (!knobs_) knobs_.emplace(space, schedule_record, target);
    const schedules::KnobValues& knobs = *knobs_;
    const schedules::ReductionKind kind = tensor == Tensor::filter || tensor == Tensor::bias
                                              ? schedules::ReductionKind::pixels
                                              : schedules::ReductionKind::taps;
    if (thin != Thin::none && (specialization() || data_format != DataFormat::NHWC || gpu)) {
      throw std::invalid_argument("thin: only generic NHWC kernels on a CPU have kernels for "
                                  "thin images");
    }
    if (thin == Thin::deep && !stage.dense_reduction) {
      throw std::invalid_argument("thin: only conv2d_backprop_input has a kernel for deep "
                                  "output gradients");
    }
    if (gpu) {
      if (kind == schedules::ReductionKind::pixels) {
        require_indexable_partial_sums(out, knobs["split_parts"]);
      }
      schedules::schedule_cuda(stage, kind, target, knobs);
    } else if (in_canonical_order &&
               schedules::tiles_channels(*in_canonical_order, target, knobs)) {
      schedules::schedule_cpu(*in_canonical_order, kind, target, knobs);
    } else {
      schedules::schedule_cpu(stage, kind, target, knobs);
    }
    if (!knob_report.value().empty()) {
      schedules::write_knob_report(knob_report, target.to_string(), space, knobs);
    }
  }

  // Reduction `a`'s period along each of `dims` (its vars, reordered), when all are constants.
  static std::vector<int64_t> constant_period(const Reduction& a,
                                              const std::vector<Halide::Var>& dims) {
    std::vector<int64_t> period;
    if (a.period.empty()) return period;
    const std::vector<Halide::Var> args = a.func.args();
    for (const Halide::Var& d : dims) {
      const auto arg = std::find_if(args.begin(), args.end(),
                                    [&](const Halide::Var& v) { return v.same_as(d); });
      const int64_t* p = Halide::Internal::as_const_int(a.period[size_t(arg - args.begin())]);
      if (!p) return {};
      period.push_back(*p);
    }
    return period;
  }

  // The scalar inputs' estimates for an autoscheduler: a specialized kernel's own values.
  void estimate_scalars() {
    const Geometry g = autoscheduled_geometry();
    stride_h.set_estimate(int(g.stride_h()));
    stride_w.set_estimate(int(g.stride_w()));
    dilation_h.set_estimate(int(g.dilation_h()));
    dilation_w.set_estimate(int(g.dilation_w()));
    pad_top.set_estimate(int(g.pad_top()));
    pad_left.set_estimate(int(g.pad_left()));
  }

  // An autoscheduler needs every extent estimated, which only a specialized kernel knows.
  Geometry autoscheduled_geometry() const {
    const std::optional<Geometry> s = specialization();
    if (!s) throw std::invalid_argument("auto_schedule: needs a shape (a specialized kernel)");
    return *s;
  }

  // A reduction over pixels on a GPU keeps up to `parts` partial sums of its whole output in one
  // buffer, which Halide indexes with 32 bits: a call whose output is too large for that fails
  // with an error instead of writing out of bounds. (A specialized kernel may split into more
  // parts than the knob split_parts, but only when its output is small: see min_blocks.)
  void require_indexable_partial_sums(const Halide::Func& out, int parts) {
    const Halide::OutputImageParam buffer = out.output_buffer();
    Halide::Expr elements = Halide::cast<int64_t>(parts);
    for (int d = 0; d < buffer.dimensions(); d++) {
      elements *= Halide::cast<int64_t>(buffer.dim(d).extent());
    }
    requirements_.push_back(
        {elements <= Halide::Expr(kMaxTensorElements),
         {Halide::Expr("the partial sums of " + out.name() + " take"), elements,
          Halide::Expr("elements, more than a kernel can index")}});
  }

  // Schedules an activation output (in the user's layout) defined by define_activation_output().
  // `filter` is the filter as the reduction reads it, stored along the output's channels first.
  template <typename Output>
  void schedule_activation_output(Output& out, Tensor tensor, const Reduction& a,
                                  const schedules::Staged& filter,
                                  const std::vector<schedules::Staged>& staged = {}) {
    const ConvVars& v = vars;
    const std::vector<Halide::Var> args = a.func.args();  // canonical order: channel, x, y, n
    if (data_format == DataFormat::NHWC) {
      schedule_output(out, tensor, {v.c, v.x, v.y, v.n}, a, args, staged, filter);
    } else {  // vectors along x, the filter read one element at a time, or transposed
      schedule_output(out, tensor, {v.x, v.y, v.c, v.n}, a, {args[1], args[2], args[0], args[3]},
                      staged, {}, {canonical_output_, filter});
    }
  }

 public:
  // Halide calls it after generate(), the only time a pipeline takes requirements: those that
  // generate() recorded, which every call checks before it computes anything.
  void schedule() {
    for (auto& [condition, message] : requirements_) this->add_requirement(condition, message);
  }

 private:
  std::vector<std::pair<Halide::Expr, std::vector<Halide::Expr>>> requirements_;
  std::vector<schedules::Staged> padded_;  // what zero_padded() made
  std::optional<schedules::KnobValues> knobs_;  // the schedule record's, once an output is scheduled
  std::vector<Halide::Expr> common_case_;  // what common_case() said
  Halide::Expr period_two_;                // what period_two() said
  Halide::Expr unit_columns_;              // what unit_columns() said
  bool dense_reduction_ = false;           // what dense_reduction() said
  std::optional<Op> blocked_op_;           // what blocked() said
  Halide::Func canonical_output_;          // what define_activation_output() made for NCHW
};

}  // namespace convgen
