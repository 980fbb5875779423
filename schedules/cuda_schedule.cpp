#include "cuda_schedule.h"

#include <algorithm>
#include <iostream>
#include <set>
#include <string>
#include <utility>

namespace convgen::schedules {

using Halide::Expr;
using Halide::Func;
using Halide::MemoryType;
using Halide::RVar;
using Halide::TailStrategy;
using Halide::Var;
using Halide::VarOrRVar;

namespace {

// The constant value of `e`, or -1 when it is only known at run time.
int64_t constant(const Expr& e) {
  const int64_t* value = Halide::Internal::as_const_int(e);
  return value ? *value : -1;
}

int64_t known_extent(const std::vector<int64_t>& extents, size_t d) {
  return d < extents.size() ? extents[d] : -1;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The most parts a reduction over rows is split into (each adds a pass over the partial sums).
constexpr int kMaxSplitParts = 64;

int pow2_at_least(int64_t n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

// A Func that the update definition of a reduction reads, and which of its dimensions are indexed
// by the reduction variable named `chunked` alone.
struct Operand {
  Func func;
  std::vector<int> chunked_dims;
};

// The operands of the update definition of `f` (every Func it reads but itself): the tiles to
// stage in shared memory.
std::vector<Operand> operands(const Func& f, const std::string& chunked) {
  class Calls : public Halide::Internal::IRVisitor {
   public:
    Calls(std::string self, std::string chunked)
        : self_(std::move(self)), chunked_(std::move(chunked)) {}
    std::vector<Operand> found;

   private:
    using IRVisitor::visit;
    void visit(const Halide::Internal::Call* op) override {
      IRVisitor::visit(op);
      if (op->call_type != Halide::Internal::Call::Halide || !op->func.defined() ||
          op->name == self_ || !seen_.insert(op->name).second) {
        return;
      }
      Operand operand{Func(Halide::Internal::Function(op->func)), {}};
      for (size_t i = 0; i < op->args.size(); i++) {
        const auto* v = op->args[i].as<Halide::Internal::Variable>();
        if (v && v->name == chunked_) operand.chunked_dims.push_back(int(i));
      }
      found.push_back(operand);
    }
    std::string self_, chunked_;
    std::set<std::string> seen_;
  };
  Calls calls(f.name(), chunked);
  f.update_value().accept(&calls);
  return calls.found;
}

// The block size of the kernel that computes `f`, for tools/ptx_report.py (see the header).
void report_kernel(const Func& f, int threads) {
  std::cout << "convgen-cuda-kernel " << f.name() << " threads " << threads << std::endl;
}

// One thread block's share of the work, from the knobs, shrunk to a specialized kernel's extents
// so that a narrow layer does not launch mostly idle lanes or compute discarded registers.
struct Tile {
  int lanes, lane_regs, pixel_regs, chunk;
};

Tile fit(const KnobValues& knobs, int64_t lane_extent, int64_t pixel_extent) {
  Tile t{knobs["lanes"], knobs["lane_regs"], knobs["pixel_regs"], knobs["reduce_chunk"]};
  if (lane_extent > 0) {
    t.lanes = std::min(t.lanes, std::max(4, pow2_at_least(lane_extent)));
    t.lane_regs = int(std::min<int64_t>(t.lane_regs, ceil_div(lane_extent, t.lanes)));
  }
  if (pixel_extent > 0) t.pixel_regs = int(std::min<int64_t>(t.pixel_regs, pixel_extent));
  return t;
}

// A stage's dimensions by role in a tile.
struct Roles {
  Var lane;                 // across the lanes of the warp (and each lane's `lane_regs` registers)
  Var pixel;                // across each lane's `pixel_regs` registers
  std::vector<Var> rest;    // one point per block, innermost first
  std::vector<Var> serial;  // looped over inside each block, a tile per point, innermost first
};

// Marks loops `lane_tiles`, `pixel_tiles` and the `rest` dimensions (fused into one) of `stage` as
// the block grid.
void gpu_blocks(Halide::Stage stage, const Var& lane_tiles, const Var& pixel_tiles,
                const std::vector<Var>& rest) {
  if (rest.empty()) {
    stage.gpu_blocks(lane_tiles, pixel_tiles);
    return;
  }
  Var fused = rest[0];
  for (size_t i = 1; i < rest.size(); i++) {
    Var next("rest_" + std::to_string(i));
    stage.fuse(fused, rest[i], next);
    fused = next;
  }
  stage.gpu_blocks(lane_tiles, pixel_tiles, fused);
}

// How a tile's reduction runs: dimension `chunked` in chunks staged in shared memory; `inner`
// (innermost first) run by each lane within a chunk; `outer` (innermost first) run by the block
// around the chunks.
struct ReductionLoops {
  RVar chunked;
  std::vector<RVar> inner, outer;
  std::vector<RVar> unrolled;  // members of `inner` with small constant extents
};

// Computes `out` (a pure copy of `acc`, in any dimension order) one tile per thread block of one
// warp. The tile's accumulators stay in registers for the whole reduction, striped across the
// lanes: lane l holds channels l, l + lanes, ... of each of `pixel_regs` pixels. (Halide 14 keeps
// a per-block register allocation per lane only when the block is a single warp of gpu_lanes;
// with more warps every thread would hold the whole tile, in local memory.) Per chunk of the
// reduction the lanes first copy the operand tiles the chunk reads into shared memory,
// consecutive lanes on consecutive elements, then each lane runs the chunk, unrolled, from there.
// Tiles past the output's end are computed and discarded (the stores are guarded), so the
// operands must be readable anywhere: the generators pass boundary-conditioned operands to a GPU
// kernel.
void schedule_block_tile(Func out, const Roles& o, Func acc, const Roles& a, const Tile& t,
                         const ReductionLoops& r) {
  const int tile_lanes = t.lanes * t.lane_regs;

  // The output: a lane per channel, its registers unrolled; guarded stores at the edges.
  Var lb("lane_b"), li("lane_i"), lr("lane_r"), lt("lane_t"), pb("pixel_b"), pr("pixel_r");
  out.split(o.lane, lb, li, tile_lanes, TailStrategy::GuardWithIf)
      .split(li, lr, lt, t.lanes)
      .split(o.pixel, pb, pr, t.pixel_regs, TailStrategy::GuardWithIf);
  std::vector<VarOrRVar> order = {lr, pr, lt};
  order.insert(order.end(), o.serial.begin(), o.serial.end());
  order.insert(order.end(), {lb, pb});
  order.insert(order.end(), o.rest.begin(), o.rest.end());
  out.reorder(order).unroll(lr).unroll(pr).gpu_lanes(lt);
  gpu_blocks(out, lb, pb, o.rest);

  // The accumulators: a register allocation per tile, striped across the lanes; both
  // definitions use the output's lane layout, so each lane finds its own outputs.
  Var alr("acc_lane_r"), alt("acc_lane_t");
  acc.store_in(MemoryType::Register)
      .compute_at(out, o.serial.empty() ? lb : o.serial.front())
      .bound_extent(a.lane, tile_lanes)
      .bound_extent(a.pixel, t.pixel_regs);
  for (const Var& v : a.rest) acc.bound_extent(v, 1);
  for (const Var& v : a.serial) acc.bound_extent(v, 1);
  order = {alr, a.pixel, alt};
  order.insert(order.end(), a.serial.begin(), a.serial.end());
  order.insert(order.end(), a.rest.begin(), a.rest.end());
  acc.split(a.lane, alr, alt, t.lanes).reorder(order).gpu_lanes(alt).unroll(alr).unroll(a.pixel);

  RVar rco("chunk_o"), rci("chunk_i");
  Halide::Stage update = acc.update();
  update.split(r.chunked, rco, rci, t.chunk, TailStrategy::GuardWithIf)
      .split(a.lane, alr, alt, t.lanes, TailStrategy::GuardWithIf);
  order = {alr, a.pixel, rci};
  order.insert(order.end(), r.inner.begin(), r.inner.end());
  order.emplace_back(alt);
  order.insert(order.end(), a.serial.begin(), a.serial.end());
  order.insert(order.end(), a.rest.begin(), a.rest.end());
  order.emplace_back(rco);
  order.insert(order.end(), r.outer.begin(), r.outer.end());
  update.reorder(order).gpu_lanes(alt).unroll(alr).unroll(a.pixel).unroll(rci);
  for (const RVar& v : r.unrolled) update.unroll(v);

  // The operand tiles of one chunk in shared memory, the lanes loading consecutive elements of
  // the two innermost dimensions. A tile always spans a whole chunk, even the last (whose loads
  // past the end are harmless, like those of tiles past the output's end): its size never depends
  // on where the chunk starts, which keeps Halide's shared-memory sizing simple and fast. The
  // loads are gpu_threads, not gpu_lanes: Halide 14 takes a block of lane loops alone to run in
  // lockstep and puts no barrier between a tile's stores and other lanes' loads, which since
  // Volta's independent thread scheduling is a race; with a thread loop in the block it inserts
  // them (bar.sync after staging and at the end of each chunk).
  for (Operand& operand : operands(acc, r.chunked.name())) {
    Func staged = operand.func.in(acc);
    const std::vector<Var> args = staged.args();
    for (int d : operand.chunked_dims) staged.bound_extent(args[size_t(d)], t.chunk);
    Var fused("staged_f"), so("staged_o"), si("staged_t");
    staged.compute_at(acc, rco)
        .store_in(MemoryType::GPUShared)
        .fuse(args[0], args[1], fused)
        .split(fused, so, si, t.lanes, TailStrategy::GuardWithIf)
        .gpu_threads(si);
  }
}

// How many parts a reduction over output rows is split into: the knob split_parts, or more, up to
// one part per row, when a specialized kernel's other block dimensions give `other_blocks` blocks,
// fewer than the knob min_blocks that keep every SM busy (a 3->1 filter's gradient has 9 values
// to reduce over a whole image). Unknown extents (-1) keep the knob.
int split_parts(const KnobValues& knobs, const Halide::RDom& domain, int64_t other_blocks) {
  const int64_t rows = constant(domain[1].extent());
  int64_t parts = knobs["split_parts"];
  if (rows > 0 && other_blocks > 0) {
    parts = std::max(parts, std::min({ceil_div(knobs["min_blocks"], other_blocks), rows,
                                      int64_t(kMaxSplitParts)}));
  }
  return int(parts);
}

// Threads across the second dimension in the kernels that add partial sums.
constexpr int kSumRows = 4;

// The bias gradient db(k) = sum of dY(k, ...) over every pixel: partial sums per part of the rows,
// a thread per channel (coalesced across lanes in NHWC), then the parts added in order.
void schedule_vector_reduction(const ReductionStage& stage, const KnobValues& knobs) {
  Func out = stage.output;
  Func acc = stage.accumulator;
  const Halide::RDom& rd = stage.domain;
  const Tile t = fit(knobs, known_extent(stage.extents, 0), -1);
  const int threads = t.lanes * t.lane_regs;
  const int64_t channels = known_extent(stage.extents, 0);
  RVar rows_inner;
  Func partial = split_rows(acc.update(), rd,
                            split_parts(knobs, rd, channels > 0 ? ceil_div(channels, threads) : -1),
                            rows_inner);
  const Var k = partial.args()[0], part = partial.args()[1];
  Var kb("k_b"), kt("k_t");
  partial.compute_root()
      .split(k, kb, kt, threads, TailStrategy::GuardWithIf)
      .reorder(kt, kb, part)
      .gpu_threads(kt)
      .gpu_blocks(kb, part);
  partial.update()
      .split(k, kb, kt, threads, TailStrategy::GuardWithIf)
      .reorder({rd[0], rows_inner, rd[2], kt, kb, part})
      .gpu_threads(kt)
      .gpu_blocks(kb, part);
  report_kernel(partial, threads);

  out.split(stage.dims[0], kb, kt, threads, TailStrategy::GuardWithIf)
      .gpu_threads(kt)
      .gpu_blocks(kb);
  acc.compute_at(out, kt);
  report_kernel(out, threads);
}

}  // namespace

std::vector<Knob> cuda_knobs(const Halide::Target& /*target*/) {
  // Defaults for sm_80/sm_90: a block is one warp (see schedule_block_tile), so 32 resident
  // blocks per SM give 1024 threads; 2 x 8 = 16 accumulators per lane (a 64-channel by 8-pixel
  // tile) reuse each staged input value 64 times and each filter value 8 times, and keep every
  // kernel of the test layers far below the 255-register cap without spills (tools/ptx_report.py
  // prints the counts).
  return {
      {"lanes", 4, 32, 32,
       "threads per block, one per output channel (in channel for backprop_input): a warp's lanes"},
      {"lane_regs", 1, 8, 2, "accumulators per lane along the channels (lanes apart)"},
      {"pixel_regs", 1, 16, 8,
       "accumulators per lane along the pixels (in channels for a filter gradient)"},
      {"reduce_chunk", 1, 32, 8,
       "reduction steps (in channels; output columns for a filter gradient) staged in shared "
       "memory at once and unrolled"},
      {"unroll_taps", 0, 1, 1,
       "unroll the filter-column loop of a specialized kernel (its extent is known)"},
      {"split_parts", 1, kMaxSplitParts, 8,
       "partial sums of a filter or bias gradient, over parts of the output rows, computed in "
       "parallel and added in a fixed order"},
      {"min_blocks", 1, 4096, 256,
       "a specialized filter or bias gradient is split into more parts (up to one per output "
       "row) while it would launch fewer blocks than this"},
  };
}

void schedule_cuda(const ReductionStage& stage, ReductionKind kind,
                   const Halide::Target& /*target*/, const KnobValues& knobs) {
  if (stage.dims.size() == 1) {
    schedule_vector_reduction(stage, knobs);
    return;
  }
  // Roles by the accumulator's canonical dimensions: the first (out channels k; in channels c for
  // backprop_input) across lanes, the second (pixels x; in channels c for a filter gradient)
  // across registers, the others one per block.
  const std::vector<Var> canonical = stage.accumulator.args();
  auto position = [&](const Var& v) {
    for (size_t d = 0; d < stage.acc_dims.size(); d++) {
      if (stage.acc_dims[d].name() == v.name()) return d;
    }
    throw std::logic_error("schedule_cuda: the accumulator's dims do not match the stage's");
  };
  const size_t lane_d = position(canonical[0]), pixel_d = position(canonical[1]);
  Roles o{stage.dims[lane_d], stage.dims[pixel_d], {}};
  Roles a{stage.acc_dims[lane_d], stage.acc_dims[pixel_d], {}};
  for (size_t d = 0; d < stage.dims.size(); d++) {
    if (d == lane_d || d == pixel_d) continue;
    o.rest.push_back(stage.dims[d]);
    a.rest.push_back(stage.acc_dims[d]);
  }
  Tile t = fit(knobs, known_extent(stage.extents, lane_d), known_extent(stage.extents, pixel_d));
  const Halide::RDom& rd = stage.domain;
  const int64_t chunk_extent = constant(rd[0].extent());
  if (chunk_extent > 0) t.chunk = int(std::min<int64_t>(t.chunk, chunk_extent));

  if (kind == ReductionKind::taps) {
    // Per filter row, chunks of channels; the filter columns inside each thread when their count
    // is known (unrolled), else around the chunks, which bounds the staged tiles for any filter.
    ReductionLoops loops{rd[0], {}, {}, {}};
    const int64_t columns = constant(rd[1].extent());
    if (columns > 0) {
      loops.inner.push_back(rd[1]);
      if (knobs["unroll_taps"] && columns <= 8) loops.unrolled.push_back(rd[1]);
      loops.outer = {rd[2]};
    } else {
      loops.outer = {rd[1], rd[2]};
    }
    schedule_block_tile(stage.output, o, stage.accumulator, a, t, loops);
    report_kernel(stage.output, t.lanes);
    return;
  }

  // A filter gradient: the partial sums tile by tile like any reduction (lanes over k, registers
  // over c, blocks over the taps and the parts), chunks of output columns staged; then the parts
  // added in order, one thread per (k, c).
  Func out = stage.output;
  Func acc = stage.accumulator;
  int64_t tiles = -1;  // thread blocks per part
  if (!stage.extents.empty()) {
    tiles = ceil_div(stage.extents[lane_d], t.lanes * t.lane_regs) *
            ceil_div(stage.extents[pixel_d], t.pixel_regs);
    for (size_t d = 0; d < stage.extents.size(); d++) {
      if (d != lane_d && d != pixel_d) tiles *= stage.extents[d];
    }
  }
  RVar rows_inner;
  Func partial = split_rows(acc.update(), rd, split_parts(knobs, rd, tiles), rows_inner);
  Func partials = partial.in(acc);
  partials.compute_root();
  // The taps (s, r) and the part, one point per block each: they must be fused into one block
  // dimension, and Halide 14 bounds a Func computed inside fused loops of unknown extents by the
  // whole range of each (here more than the one-point register tile holds). So a generic kernel
  // loops over the taps inside each block, a tile per tap, and only the part is a block index.
  const std::vector<Var> p_args = partial.args(), w_args = partials.args();
  const auto roles = [&](const std::vector<Var>& args) {
    Roles r{args[0], args[1], {args.begin() + 2, args.end()}, {}};
    if (stage.extents.empty()) {
      r.serial.assign(r.rest.begin(), r.rest.end() - 1);
      r.rest.erase(r.rest.begin(), r.rest.end() - 1);
    }
    return r;
  };
  const Roles pa = roles(p_args), wa = roles(w_args);
  schedule_block_tile(partials, wa, partial, pa, t, {rd[0], {}, {rows_inner, rd[2]}, {}});
  report_kernel(partials, t.lanes);

  Var lb("lane_b"), lt("lane_t"), pb("pixel_b"), pt("pixel_t"), thread("thread");
  std::vector<VarOrRVar> order = {lt, pt, lb, pb};
  order.insert(order.end(), o.rest.begin(), o.rest.end());
  out.split(o.lane, lb, lt, t.lanes, TailStrategy::GuardWithIf)
      .split(o.pixel, pb, pt, kSumRows, TailStrategy::GuardWithIf)
      .reorder(order)
      .fuse(lt, pt, thread)
      .gpu_threads(thread);
  gpu_blocks(out, lb, pb, o.rest);
  acc.compute_at(out, thread);
  report_kernel(out, t.lanes * kSumRows);
}

}  // namespace convgen::schedules
