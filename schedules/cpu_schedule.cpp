#include "cpu_schedule.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "convgen/geometry.h"

namespace convgen::schedules {

using Halide::Func;
using Halide::RVar;
using Halide::TailStrategy;
using Halide::Var;
using Halide::VarOrRVar;

namespace {

// The constant extent of reduction dimension `d`, or -1 when it is only known at run time.
int64_t constant_extent(const Halide::RDom& domain, int d) {
  const int64_t* extent = Halide::Internal::as_const_int(domain[d].extent());
  return extent ? *extent : -1;
}

int64_t ceil_div(int64_t value, int64_t divisor) { return (value + divisor - 1) / divisor; }

// The multiply-adds of a specialized stage: its output's elements times its reduction's steps.
int64_t multiply_adds(const ReductionStage& stage) {
  int64_t work = 1;
  for (int64_t extent : stage.extents) work *= extent;
  for (int d = 0; d < stage.domain.dimensions(); d++) work *= constant_extent(stage.domain, d);
  return work;
}

// A register tile: vectors of channels (dimension 0) x positions (dimension 1); for an output of
// fewer channels than a vector's lanes, vectors of positions x rows.
struct Tile {
  int vectors, pixels;
};

// The register tile of an output of `channels` channels, fewer than a vector's lanes: about 4
// vectors of positions over all the channels, in 2 rows (schedule_position_tile()).
Tile thin_tile(int channels) { return {int(ceil_div(4, channels)), 2}; }

// The bytes of a generic register tile's slice of its vector operand over the whole reduction
// past which tiles run in blocks (schedule_generic_register_tile()): a filter gradient's output
// gradient over all its pixels; a forward pass's or input gradient's filter over all its taps
// and channels, past the L2 cache (1 MiB a core on the Zen 5 EPYC), and its chunks of channels.
constexpr int kBlockSlice = 256 * 1024;
constexpr int kTapBlockSlice = 1024 * 1024;
constexpr int kTapsBlockImages = 2;
constexpr int kTapBlockChunk = 64;

// Distances between rows, in floats, at which they fall in few sets of the L1 cache (64-byte
// lines, 64 sets: rows 4 KiB apart share one set, rows 2 KiB apart two).
constexpr int64_t kSetAliasing = 512;    // 2 KiB
constexpr int64_t kPageAliasing = 1024;  // 4 KiB
// The multiply-adds from which a specialized output narrow in both its innermost dimensions
// runs the generic ladder's tiles (schedule_cpu()).
constexpr int64_t kLadderWork = int64_t(1) << 20;

int64_t ceil_to(int64_t value, int64_t multiple) { return ceil_div(value, multiple) * multiple; }

// The largest divisor of `extent` that is at most `limit`.
int64_t largest_divisor(int64_t extent, int64_t limit) {
  for (int64_t d = std::min(extent, limit); d > 1; d--) {
    if (extent % d == 0) return d;
  }
  return 1;
}

// The divisor of `extent` nearest to `target` in ratio: the largest divisor up to it, unless the
// smallest one above it is nearer (13 rows for a target of 7 in an image 13 rows high, not 1).
int64_t nearest_divisor(int64_t extent, int64_t target) {
  if (target >= extent) return extent;
  const int64_t below = largest_divisor(extent, target);
  int64_t above = std::max<int64_t>(target, 1);
  while (extent % above != 0) above++;
  return above * below < target * target ? above : below;
}

// The run-time extent of dimension `d` of a stage's output: the output buffer's, or, for a stage
// in canonical order (ReductionStage::transposed), the kernel's output's along the same var.
Halide::Expr output_extent(const ReductionStage& stage, int d) {
  if (!stage.transposed.defined()) return stage.output.output_buffer().dim(d).extent();
  const std::vector<Var>& dims = stage.transposed_dims;
  const auto same = std::find_if(dims.begin(), dims.end(),
                                 [&](const Var& v) { return v.same_as(stage.dims[size_t(d)]); });
  return stage.transposed.output_buffer().dim(int(same - dims.begin())).extent();
}

// Parallel over the outermost two dimensions of a 4-d output (height and batch, or the filter's
// rows and columns), which are independent units of work, in at most kTasks tasks of whole rows:
// the thread pool hands out one task at a time under a lock, which a narrow output's rows (the
// edge layer's, 2 µs of work each) would make the bottleneck. A task's rows lie in one image,
// so that what is computed per task covers just their rows. Returns the tasks' loop and the
// rows' loop inside it. With `images`, a task's rows are that fraction of an image's (1: all of
// them, 2: half, rounded up). `output` is the output or one of its specializations.
constexpr int kTasks = 32;
struct TaskRows {
  Var task, row;
};

// The rows of one of parallel_rows()'s tasks, for `batch` images of `height` rows: run-time
// extents (Halide::Expr) or a specialized kernel's (int64_t).
template <typename T>
T task_rows(const T& height, const T& batch) {
  using std::max, std::min;
  return min(max(T(height * batch / kTasks), T(1)), height);
}

TaskRows parallel_rows(Halide::Stage output, const ReductionStage& stage, int images = 0) {
  const Halide::Expr height = output_extent(stage, 2);
  const Halide::Expr rows = images > 0 ? (height + images - 1) / images
                                       : task_rows(height, output_extent(stage, 3));
  Var task("task"), row("row");
  output.split(stage.dims[2], task, row, rows, TailStrategy::ShiftInwards)
      .fuse(task, stage.dims[3], task)
      .parallel(task);
  return {task, row};
}

// Guarded vectors of channels (dimension 0), one row of them per accumulator: the output, and
// the accumulator's initial values (channel_vector_update() schedules its update).
void channel_vector_output(const ReductionStage& stage, int lanes) {
  Func output = stage.output;
  Func acc = stage.accumulator;
  Var vo("v_o"), vi("v_i");
  output.split(stage.dims[0], vo, vi, lanes, TailStrategy::GuardWithIf).vectorize(vi);
  const bool four_d = stage.dims.size() == 4;
  if (four_d) parallel_rows(output, stage);
  acc.compute_at(four_d ? Halide::LoopLevel(output, stage.dims[1]) : Halide::LoopLevel::root());
  acc.vectorize(stage.acc_dims[0], lanes, TailStrategy::GuardWithIf);
}

// `update` (the update of `stage`'s accumulator, or a specialization of it) as guarded vectors
// of channels. A row of channels alone (a bias gradient) is summed whole, all its vectors in
// turn per step of the reduction: independent adds, and the output gradient read in its stored
// order, where each vector's own sum over all the pixels was one chain of dependent adds, reading
// a vector per pixel. Each channel's sum runs in the same order. Measured on the Zen 5 EPYC (1
// thread, convgen bench): res2_1x1's generic filter gradient (256 channels, 3136 pixels) spent
// 16% of its time in its bias gradient before.
void channel_vector_update(Halide::Stage update, const ReductionStage& stage, int lanes) {
  const bool four_d = stage.dims.size() == 4;
  Var ao("acc_o"), ai("acc_i");
  std::vector<VarOrRVar> order = {ai};
  if (!four_d) order.emplace_back(ao);
  for (int d = 0; d < stage.domain.dimensions(); d++) order.emplace_back(stage.domain[d]);
  if (four_d) order.emplace_back(ao);
  update.split(stage.acc_dims[0], ao, ai, lanes, TailStrategy::GuardWithIf)
      .vectorize(ai)
      .reorder(order);
}

// Both, for the accumulator's update itself.
void schedule_channel_vectors(const ReductionStage& stage, int lanes) {
  channel_vector_output(stage, lanes);
  channel_vector_update(Func(stage.accumulator).update(), stage, lanes);
}

// The register tile of vectors along dimension 1 (positions) over all of an output's channels:
// `vectors` vectors of positions x `rows` rows x `channels` channels, each an independent
// accumulator, so that the reduction's chain of dependent multiply-adds (27 for a 3x3 filter
// over 3 channels) runs interleaved across the tile instead of one latency at a time, and so that
// the tile's rows share their loads: output rows y and y + 1 read input rows y + r, and a load of
// one serves both rows' taps (with a 3x3 filter, 2 rows make 4 input rows' loads instead of 6,
// where the reduction is unrolled). `output`, `init` and `update` are the output and its
// accumulator's definitions, or specializations of them where the output has `channels`
// channels; the channels lie inside each vector's positions, so that their strided stores
// interleave densely. A row splits into tiles with `tail` (a tile past its end computed whole,
// or moved back); the rows of a task into tiles of `rows`, the last one moved back. The
// accumulator, computed per tile, is stored positions first: each of its vectors dense, kept in
// a register. Returns the tasks' loop.
Var schedule_position_tile(Halide::Stage output, Halide::Stage init,
                           const std::vector<Halide::Stage>& updates, const ReductionStage& stage,
                           int lanes, int vectors, int rows, int channels, TailStrategy tail) {
  const std::vector<Var>& d = stage.dims;
  const Var& ac = stage.acc_dims[0];
  const Var& ax = stage.acc_dims[1];
  Var co("c_o"), ci("c_i"), xo("x_o"), xi("x_i"), xv("x_v");
  output.split(d[0], co, ci, channels)
      .split(d[1], xo, xi, vectors * lanes, tail)
      .split(xi, xi, xv, lanes)
      .vectorize(xv)
      .unroll(xi)
      .unroll(ci);
  const TaskRows tasks = parallel_rows(output, stage);
  Var ro("row_o"), ri("row_i");
  output.split(tasks.row, ro, ri, rows, TailStrategy::ShiftInwards)
      .reorder(xv, ci, xi, ri, xo, ro, co, tasks.task)
      .unroll(ri);
  Var ao("acc_o"), ai("acc_i");
  std::vector<VarOrRVar> order = {ai, ao, ac};
  if (rows > 1) order.emplace_back(stage.acc_dims[2]);
  for (int r = 0; r < stage.domain.dimensions(); r++) order.emplace_back(stage.domain[r]);
  std::vector<Halide::Stage> stages = updates;
  stages.push_back(init);
  for (Halide::Stage s : stages) {
    s.split(ax, ao, ai, lanes).vectorize(ai).unroll(ao).unroll(ac);
    if (rows > 1) s.unroll(stage.acc_dims[2]);
  }
  for (Halide::Stage s : updates) s.reorder(order);
  return tasks.task;
}

// A specialized output with fewer channels than a vector's lanes: schedule_position_tile()'s, the
// tiles of a row of equal size, the last one computed whole past the output's edge (reading
// padding) and discarded. A short reduction is unrolled whole. Returns where the zero-padded inputs
// go: per task of rows, so that they stay in the cache.
//
// Measured on the Zen 5 EPYC (AVX-512, one kernel against another, warm, 1 and 2 threads): the
// 3->1 edge layer's forward pass with 4 vectors x 2 rows in 0.78x the time of 16 vectors x 1
// row (0.18 ms, 77 GFLOP/s on 1 thread, 165 on 2; it reads a 3 MB input once), its input
// gradient with 2 x 2 x 3 channels in 0.90x the time of 8 x 1 x 3 (149 GFLOP/s on 1 thread, 272
// on 2, 57-60% of peak; it writes a 3 MB output). Taller tiles spill: their accumulators and the
// 27 taps do not fit in 32 registers. Tried, not kept: the input gradient reading the output
// gradient in place, its padded copy per task left inline (Halide partitions the tiles' loops at
// the image's border, the interior's loads dense): 1.03-1.08x the time (1 thread, 3 alternating
// runs), where the copy took a fifth of the kernel's samples (perf).
Halide::LoopLevel schedule_position_vectors(const ReductionStage& stage, int lanes, int vectors,
                                            int rows) {
  constexpr int64_t kUnrolledSteps = 32;
  Func output = stage.output;
  Func acc = stage.accumulator;
  const int64_t row_vectors = ceil_div(stage.extents[1], lanes);
  vectors = int(ceil_div(row_vectors, ceil_div(row_vectors, vectors)));
  rows = int(std::min<int64_t>(rows, task_rows(stage.extents[2], stage.extents[3])));
  Halide::Stage update = acc.update();
  const Var task = schedule_position_tile(output, acc, {update}, stage, lanes, vectors, rows,
                                          int(stage.extents[0]), TailStrategy::GuardWithIf);
  acc.compute_at(output, Var("x_o"))
      .bound_extent(stage.acc_dims[1], vectors * lanes)
      .reorder_storage(stage.acc_dims[1], stage.acc_dims[0]);
  int64_t steps = 1;
  for (int r = 0; r < stage.domain.dimensions(); r++) {
    const int64_t extent = constant_extent(stage.domain, r);
    steps *= extent > 0 ? extent : kUnrolledSteps + 1;
  }
  if (steps <= kUnrolledSteps) {
    for (int r = 0; r < stage.domain.dimensions(); r++) update.unroll(stage.domain[r]);
  }
  return Halide::LoopLevel(output, task);
}

// Vectors along the reduction's innermost dimension: each output's sum is a vector of partial
// sums, added across its lanes at the end. For outputs too narrow to vectorize (a filter gradient
// with one in and out channel, the input gradient of a 3-channel image), and for a tile of
// channels x positions that reads its operands along that dimension as stored (backprop_input's
// HWIO filter, in place of a transposed copy). Each of a few vectors of partial sums (`parts`)
// takes every parts-th vector of that dimension, for every output of a unit: independent
// accumulators, in `registers` vector registers while the other reduction dimensions run outside
// (the taps, with a stride's predicate on them tested once per tap). The vectors are added, then
// their lanes, in a fixed order. A unit is the whole output when it fits (an edge filter's
// gradient, 27 values): its reduction then runs in blocks of the outermost reduction dimension,
// in parallel, whose sums are added in order. Otherwise a unit is `channels` of dimension 0 times
// `positions` of dimension 1, and blocks of channels x rows run in parallel.
//
// Measured (convgen bench, Intel Xeon with AVX-512, 2 threads, peak 272 GFLOP/s): the 3->64 stem's
// input gradient at 48 GFLOP/s, 0.96x oneDNN's best (4 GFLOP/s with the partial sums in memory and
// the taps inside); the 3->1 edge filter's gradient at 19, 3.9x oneDNN (5 with guarded vectors);
// res5's input gradient (7x7x512) at 71-94 with reduction_vectors, against 53-62 transposing the
// filter on every call.
void schedule_reduction_lanes(const ReductionStage& stage, int lanes, int64_t registers,
                              int64_t positions) {
  Func output = stage.output;
  Func acc = stage.accumulator;
  int64_t outputs = 1;
  for (int64_t extent : stage.extents) outputs *= extent;
  const bool whole = outputs <= registers && stage.domain.dimensions() > 1;
  const bool tiled = !whole && stage.dims.size() >= 4;
  positions = tiled ? std::min(positions, stage.extents[1]) : 1;
  const int64_t channels =
      largest_divisor(stage.extents[0], std::max<int64_t>(registers / positions, 1));
  const int64_t unit = whole ? outputs : channels * positions;
  const int64_t vectors = constant_extent(stage.domain, 0) / lanes;
  const int parts = int(largest_divisor(vectors, std::max<int64_t>(registers / unit, 1)));
  RVar rest("rest"), outer("lanes_o"), inner("lanes_i"), block_o("block_o"), block_i("block_i");
  Var lane("lane"), part("part"), block("block");
  Halide::Stage update = acc.update();
  update.split(stage.domain[0], outer, inner, lanes).split(outer, rest, outer, parts);
  // What the accumulators' partial sums are factored out of: the accumulator, or its blocks.
  Func sums = acc;
  int last = stage.domain.dimensions() - 1;  // the dimension of the blocks
  while (last > 1 && constant_extent(stage.domain, last) == 1) last--;
  if (whole) {
    const int64_t extent = constant_extent(stage.domain, last);
    update.split(stage.domain[last], block_o, block_i, int(extent / largest_divisor(extent, 16)));
    sums = update.rfactor(block_o, block);
    acc.compute_root().update().unroll(block_o);
    for (const Var& v : stage.acc_dims) acc.update().unroll(v);  // straight-line adds
    sums.compute_root();
  } else if (tiled) {
    // Channel blocks outermost, so that the operand slice they read stays in cache over the rows.
    Var co("c_o"), ci("c_i"), xo("x_o"), xi("x_i"), blocks("blocks");
    const std::vector<Var>& d = stage.dims;
    std::vector<VarOrRVar> loops = {ci, xi, xo};
    loops.insert(loops.end(), d.begin() + 2, d.end());  // the taps (and the parts)
    loops.emplace_back(co);
    output.split(d[0], co, ci, int(channels))
        .split(d[1], xo, xi, int(positions), TailStrategy::ShiftInwards)
        .reorder(loops)
        .fuse(d[2], d[3], blocks);
    for (size_t outer = 4; outer < d.size(); outer++) output.fuse(blocks, d[outer], blocks);
    output.fuse(blocks, co, blocks).parallel(blocks).unroll(ci).unroll(xi);
    acc.compute_at(output, xo)
        .bound_extent(stage.acc_dims[0], int(channels))
        .bound_extent(stage.acc_dims[1], int(positions));
  } else {
    acc.compute_root();
  }
  // The accumulators: every output of the unit, times the parts, unrolled.
  const std::vector<Var> unrolled(stage.acc_dims.begin(),
                                  whole ? stage.acc_dims.end()
                                        : stage.acc_dims.begin() + (tiled ? 2 : 1));
  for (const Var& v : unrolled) acc.unroll(v);
  Func partial = sums.update().rfactor({{inner, lane}, {outer, part}});
  Var sum_lane("sum_lane");
  Func vector_sum = sums.update().rfactor(inner, sum_lane);  // the parts added as vectors
  vector_sum.compute_at(sums, whole ? block : Var::outermost());
  partial.compute_at(vector_sum, Var::outermost());
  std::vector<Var> storage = {lane, part};
  storage.insert(storage.end(), unrolled.begin(), unrolled.end());
  partial.reorder_storage(storage).vectorize(lane).unroll(part);
  std::vector<VarOrRVar> order(storage.begin(), storage.end());
  order.emplace_back(rest);
  for (int d = 1; d < stage.domain.dimensions(); d++) {
    order.emplace_back(whole && d == last ? block_i : stage.domain[d]);
  }
  Halide::Stage partial_update = partial.update();
  partial_update.reorder(order).vectorize(lane).unroll(part);
  std::vector<Var> sum_storage = {sum_lane};
  sum_storage.insert(sum_storage.end(), unrolled.begin(), unrolled.end());
  vector_sum.reorder_storage(sum_storage).vectorize(sum_lane);
  Halide::Stage vector_sum_update = vector_sum.update();
  vector_sum_update.reorder(sum_lane, outer).vectorize(sum_lane).unroll(outer);
  Halide::Stage merge = sums.update();
  std::vector<VarOrRVar> merge_order = {inner};
  merge_order.insert(merge_order.end(), unrolled.begin(), unrolled.end());
  if (whole) merge_order.emplace_back(block);
  merge.reorder(merge_order);
  if (whole) {
    merge.unroll(inner).parallel(block);  // per block: atomic() would make adds atomic
  } else {
    merge.atomic().vectorize(inner);  // horizontal adds
  }
  for (const Var& v : unrolled) {
    for (Halide::Stage s : {Halide::Stage(partial), partial_update, Halide::Stage(vector_sum),
                            vector_sum_update, merge}) {
      s.unroll(v);
    }
  }
}

// Schedules `copy`, stored along storage[0], of a `source` stored along storage[1] (its args
// innermost-first as stored), in blocks of lanes x lanes: each block is loaded as vectors along
// storage[1] and transposed in registers (the block transpose of Halide's performance tests),
// rather than gathered one element per lane. Partial blocks at the edges are guarded. The
// caller orders the blocks (compute_staged(): along the source's rows).
void transpose_blocks(Func copy, const Func& source, const std::vector<Var>& storage, int lanes) {
  Var ci("pack_c"), ki("pack_k");
  copy.tile(storage[0], storage[1], ci, ki, lanes, lanes, TailStrategy::GuardWithIf)
      .vectorize(ci)
      .unroll(ki);
  Func block = Func(source).in(copy);
  block.compute_at(copy, storage[1])
      .store_in(Halide::MemoryType::Stack)  // a generic kernel's blocks have no constant size
      .vectorize(block.args()[0], lanes, TailStrategy::GuardWithIf)
      .unroll(block.args()[1], lanes, TailStrategy::GuardWithIf);
}

// The kernel's output of a stage computed in canonical order (ReductionStage::transposed): the
// canonical values computed whole, then copied in blocks of lanes columns x lanes channels, each
// loaded as vectors of channels and transposed in registers into vectors of columns, the rows
// in parallel. NCHW activations so run the register tiles of NHWC, vectors along the channels
// with the filter as their vector operand, where vectors along the columns broadcast the filter
// an element at a time and fell to guarded vectors on rows narrower than a vector. Measured on
// the Zen 5 EPYC (convgen bench, 2 threads, three alternating runs, ms before -> after, the
// specialized kernel; the generic one): NCHW res2_3x3 forward 3.76 -> 0.76, 17.1 -> 0.91;
// input gradient 3.53 -> 0.81, 26.5 -> 0.87; res4_3x3 10.8 -> 0.88, 20.6 -> 1.16 and
// 1.37 -> 0.87, 21.2 -> 1.23; res4_1x1 7.35 -> 0.51, 9.70 -> 0.65; res5_3x3 31.8 -> 1.13,
// 101 -> 1.46 and 1.75 -> 1.23, 96.4 -> 1.85. The copy and the gathers of the padded NCHW
// input take about a tenth of the time (perf, 1 thread: res2_3x3's forward pass 1.12x its
// NHWC kernel's time); the filter gradient, whose output is the filter, is unchanged.
void transpose_output(const ReductionStage& stage, int lanes) {
  Func output = stage.transposed;
  const std::vector<Var>& d = stage.transposed_dims;  // columns, rows, channels, batch
  Func(stage.output).compute_root();
  transpose_blocks(output, stage.output, {d[0], d[2]}, lanes);
  Var rows("rows");
  output.reorder(d[2], d[0], d[1], d[3]).fuse(d[1], d[3], rows).parallel(rows);
}

// Whether `staged` is the input the register tile loads as vectors.
bool is_vector_operand(const ReductionStage& stage, const Staged& staged) {
  return stage.vector_operand.func.defined() &&
         staged.func.name() == stage.vector_operand.func.name();
}

// Whether the vector operand is one of the inputs restaged (read in another order than stored).
bool vector_operand_restaged(const ReductionStage& stage) {
  return std::any_of(stage.staged.begin(), stage.staged.end(),
                     [&](const Staged& staged) { return is_vector_operand(stage, staged); });
}

// How a specialized kernel blocks its work: a register tile of `vectors` vectors of channels
// (dimension 0) times `pixels` positions of dimension 1, and an accumulator block of `block_x` x
// `block_y` positions of dimensions 1 and 2 that the reduction runs over in chunks of `chunk` steps
// of its innermost dimension.
struct Blocking {
  int vectors, pixels, block_x, block_y, chunk;
  int channel_tiles;     // register tiles along dimension 0 per block, their packed slices one
  int phase_x, phase_y;  // a register tile's positions are phase_x apart, of one phase; its rows
                         // run in phase_y phases (1: dense)
  int chunk_dims;      // when the chunk is all of the innermost reduction dimension: how many
                       // of the next ones it spans as well
  bool restage_whole;    // restage inputs whole (Staged), rather than as each chunk's packed slice
  bool transpose_packs;  // pack a restaged input's slices by in-register transposes, not gathers
  bool pack_slices;      // copy each chunk's slice of the vector operand into a dense buffer
};

// The register tile of a specialized kernel, accumulated over blocks. Per reduction step, the tile
// makes `vectors` loads of the filter (or gradient), `pixels` broadcasts and vectors x pixels
// fused multiply-adds, its accumulators in registers while a chunk of the reduction runs. The
// accumulator block lives in the L1 cache: for every chunk (and every other reduction dimension:
// filter taps, or rows of pixels), all the block's register tiles run in turn, so the operand the
// tile loads as vectors (a slice of the filter, or a row of the output gradient) is read from
// memory once per block instead of once per tile. Positions past the end of dimensions 1 and 2 are
// computed and discarded (their reads land in zero padding or clamped rows), so tiles are whole.
//
// Measured (convgen bench, Intel Xeon with AVX-512, 2 threads, peak FMA throughput 302 GFLOP/s,
// the schedule database's knobs): the 3x3 layers of bench/layers.json run at 77-181 GFLOP/s
// (25-60% of peak), 0.51-1.02x oneDNN's best; the 1x1 layers at 77-135 (25-45%), 0.70-0.89x.
// Stride-2 res3_s2's input gradient, its tiles of one phase: 125 GFLOP/s, 0.79x (1 thread: 0.84x,
// against 0.63x with tiles across the phases). On AMD EPYC (Zen 3, AVX2+FMA, 2 threads, peak
// 204 GFLOP/s) with the database's AVX2 entries, on convgen's thread pool: the 3x3 layers at
// 76-163 GFLOP/s (37-79% of peak), 0.67-1.60x the best peer over two runs; the 1x1 layers at
// 74-132 (36-65%), 0.62-1.51x. On AMD EPYC (Zen 5, AVX-512, 2 threads, peak 463 GFLOP/s) with
// the AVX-512 entries tuned there, oneDNN's threads bound while it runs: the 3x3 layers at 239-355
// GFLOP/s (53-79% of a peak of 449), 0.63-1.18x; the 1x1 layers at 212-399 (47-89%), 0.72-1.09x
// (1 thread: 59-85% and 67-90% of peak; res3's forward pass in a loop of calls, 97%). In a register
// tile over a 128-step chunk in the L1 cache, 2 x 7, 4 x 5, 4 x 6, 3 x 8 and 2 x 12 all run at the
// peak (231-235 GFLOP/s on one thread), 4 x 4 at 177, 1 x 7 at 183, 8 x 3 at 196. Blocks of several
// channel tiles (block_channel_tiles) won 6 of the 33 AVX2 entries: res5's forward pass 47 -> 57-70
// GFLOP/s with 7.
void schedule_register_tile(const ReductionStage& stage, int lanes, const Blocking& b) {
  Func output = stage.output;
  Func acc = stage.accumulator;
  const std::vector<Var>& d = stage.dims;
  const int dims = stage.domain.dimensions();
  // A chunk that spans the whole reduction needs no accumulator block: each tile's sums go
  // from its registers to the output. The block then only shares the vector operand's slice.
  const bool whole = b.chunk == constant_extent(stage.domain, 0) && b.chunk_dims + 1 == dims;
  Var co("c_o"), ci("c_i"), cv("c_v"), xo("x_o"), xi("x_i"), xt("x_t"), yo("y_o"), yi("y_i");
  Var blocks("blocks");
  const int tile_channels = b.vectors * lanes;
  const int channel_tiles = whole ? 1 : b.channel_tiles;
  std::vector<VarOrRVar> loops = {ci, xi, yi, xo, co, yo};
  loops.insert(loops.end(), d.begin() + 3, d.end());  // the batch (or filter rows, and parts)
  output.split(d[0], co, ci, tile_channels * channel_tiles)
      .split(d[1], xo, xi, b.block_x, TailStrategy::GuardWithIf)
      .split(d[2], yo, yi, b.block_y, TailStrategy::GuardWithIf)
      .reorder(loops)
      .split(ci, ci, cv, lanes)
      .vectorize(cv)
      .fuse(co, yo, blocks);
  for (size_t outer = 3; outer < d.size(); outer++) output.fuse(blocks, d[outer], blocks);
  output.parallel(blocks);
  if (whole) {
    const int span = b.pixels * b.phase_x;
    output.split(xi, xt, xi, span, TailStrategy::GuardWithIf).reorder(ci, xi, yi, xt);
    acc.compute_at(output, yi).bound_extent(stage.acc_dims[1], span);
  } else {
    acc.compute_at(output, xo)
        .bound_extent(stage.acc_dims[1], b.block_x)
        .bound_extent(stage.acc_dims[2], b.block_y);
  }

  const Var& ac = stage.acc_dims[0];
  const Var& ax = stage.acc_dims[1];
  const Var& ay = stage.acc_dims[2];
  Var acb("acc_c_b"), act("acc_c_t"), aco("acc_c_o"), aci("acc_c_i"), axo("acc_x_o"),
      axi("acc_x_i");
  Halide::Stage update = acc.update();
  for (Halide::Stage s : {Halide::Stage(acc), update}) {
    s.split(ac, acb, act, tile_channels).split(act, aco, aci, lanes).vectorize(aci).unroll(aco);
  }
  // Positions of one phase of a periodic predicate (a stride's grid) make up each tile, and the
  // phases run outside the tiles: every position of a tile takes the same taps, so the predicate
  // is tested once per tap and chunk, not per position and step.
  Var axq("acc_x_q"), axp("acc_x_p"), ayq("acc_y_q"), ayp("acc_y_p");
  std::vector<VarOrRVar> phases;
  VarOrRVar x_tiles = ax, rows = ay;
  if (b.phase_x > 1) {
    update.split(ax, axq, axp, b.phase_x);
    x_tiles = axq;
    phases.emplace_back(axp);
  }
  if (b.phase_y > 1 && !whole) {  // a whole chunk's tiles are single rows
    update.split(ay, ayq, ayp, b.phase_y);
    rows = ayq;
    phases.emplace_back(ayp);
  }
  update.split(x_tiles, axo, axi, b.pixels).unroll(axi);
  // Inside the tile's loops, the chunk: part of the innermost reduction dimension, or all of it
  // and of the next chunk_dims.
  std::vector<VarOrRVar> order = {aci, aco, axi};
  RVar rko("chunk_o"), rki("chunk_i");
  const int outer = b.chunk_dims + 1;  // the first reduction dimension outside the block's tiles
  const bool chunked = b.chunk < constant_extent(stage.domain, 0);
  if (chunked) {
    update.split(stage.domain[0], rko, rki, b.chunk);
    order.emplace_back(rki);
  } else {
    for (int r = 0; r < outer; r++) order.emplace_back(stage.domain[r]);
  }
  order.insert(order.end(), {axo, rows});
  order.insert(order.end(), phases.begin(), phases.end());
  order.emplace_back(acb);  // the block's tiles along the channels share what the chunk packs
  if (chunked) order.emplace_back(rko);
  for (int r = outer; r < dims; r++) order.emplace_back(stage.domain[r]);
  update.reorder(order);
  // The slice of the vector operand that one chunk reads (one tap's, or one row's) is copied
  // into a dense buffer first: in place, its rows lie a whole dimension apart, often a multiple
  // of 4 KiB, and would evict each other from the L1 cache's sets. A restaged operand (read in
  // another order than stored) is packed by gathers, or in blocks of lanes x lanes read along
  // the dimension it is stored along and transposed in registers (the block transpose of
  // Halide's performance tests), the blocks in turn along lanes rows of the source, as a whole
  // copy's (compute_staged()): across the rows, each block's lines of lanes rows were as many
  // misses, a line of each row in turn (res4_1x1's input gradient, its 1 MB filter's rows 4 KiB
  // apart, six runs of each build on the Zen 5 EPYC: 0.53-0.70 -> 0.49-0.58 ms on 1 thread,
  // 0.28-0.37 -> 0.25-0.28 on 2; res5's, 512 rows 2 KiB apart, in the tuner's timing on 2
  // threads: 186-211 -> 248-277 GFLOP/s, where gathers run at 222-238). A kernel for packed
  // filters (FilterLayout::blocked) has no vector operand to pack: its filter already lies in
  // the order the tiles read it, one contiguous stream per block of 16 channels (on the Zen 5
  // EPYC, 2 threads, res5: the forward pass 1.3-1.4x and the input gradient 1.46x faster than
  // from HWIO, bitwise the same results with the same knobs; its tuned entries run the 3x3 and
  // 1x1 layers at 74-98% of peak back to back). From HWIO, each row of a block's slice is 256 of
  // the 2048 bytes of a row of res5's filter, a new 4 KiB page every two rows, and each chunk
  // waits on its packing's misses: res5's forward pass took 1.77 ms from HWIO, 1.32 packed and
  // 1.34 in oneDNN (blocked, not timed), one thread, one run. Tried, not kept: Halide 14's
  // prefetch directive on the filter, one chunk ahead (it emits prefetchnta, one line in four:
  // a 256-byte stride), 1.86-2.02 ms against 1.85-1.97 in alternating runs. Nor would a copy of
  // the whole filter per call into blocks pay: a plain AVX-512 loop copying res5's 9.4 MB into
  // blocks of 16 channels, each 2 KiB row read whole, takes 0.82 ms on one thread (best of 100).
  if (stage.vector_operand.func.defined() && b.pack_slices) {
    const std::vector<Var>& storage = stage.vector_operand.storage;
    Func slice = Func(stage.vector_operand.func).in(acc);
    if (whole) {
      slice.compute_at(output, xo);
    } else if (b.chunk < constant_extent(stage.domain, 0)) {
      slice.compute_at(acc, rko);
    } else {
      slice.compute_at(acc, stage.domain[outer]);
    }
    slice.reorder_storage(storage)
        .reorder(std::vector<VarOrRVar>(storage.begin(), storage.end()));
    const bool restaged = vector_operand_restaged(stage);
    if (b.transpose_packs && restaged) {
      transpose_blocks(slice, stage.vector_operand.func, storage, lanes);
      slice.reorder(storage[1], storage[0]);
    } else {
      slice.vectorize(storage[0], lanes, TailStrategy::GuardWithIf);
    }
  }
}

// The blocking of a specialized kernel from the knobs, where a knob left at 0 takes a size from
// the extents: a block of whole rows (dimension 1) and as many of them as make about 96
// positions, so that each slice of the vector operand serves that many. Blocks divide dimension 2
// exactly (in NCHW it holds the channels, which a tile must not overrun).
// Reduction chunks: a sum over taps takes up to 1024 steps (most layers' whole reduction, each
// tile's sums then going from its registers to the output), a sum over pixels 64, or all of an
// image of up to 256 pixels. Its vector
// operand is read in place, unless its rows lie a multiple of 2 KiB apart (512 channels or more),
// where they would share a few of the L1 cache's sets: then each chunk's slice is packed. A sum
// over pixels packs its slices (of the output gradient). On the Zen 5 EPYC (AVX-512, 2 threads,
// convgen bench), 19 layers without tuned entries (the 11 of bench/layers.json and 8 others),
// best peer / convgen, geomean over two runs: forward passes 0.91 -> 0.95-1.00, input gradients
// 0.99 -> 1.02-1.08, against 64-step chunks with packed slices. The tuner's winners of four of
// those layers all chose chunks of 764-2170 steps, read in place (1.16-1.34x their old defaults).
// Filter gradients of 14 x 14 and 13 x 13 images, all of it against 64 (the tuner's timing,
// 2 threads, two or three rounds, GFLOP/s): res4's 317-326 -> 352-366, res4_1x1's 240-246 ->
// 270-287, alex_conv4's 300-304 -> 352-369. Images of up to 1024 pixels were mixed: deeplab's
// (28 x 28) and train_res3_n8's 1.1x faster, res3_down's 0.94x, mnist_conv1's 0.75x; so were
// chunks of whole rows of wide images (vgg_conv2's 112 columns 0.88x, mobile_1x1's 1.1x).
// A forward pass over 1024 in-channels or more (its input's pixels 4 KiB apart or more, and a
// whole chunk's tile streaming that many rows of the filter) takes chunks of 64 with packed
// slices instead (the tuner's timing, 2 threads, two runs, GFLOP/s, 1024 -> 256 channels):
// 14 x 14 1x1 250-280 -> 319-350, 3x3 236-250 -> 295-316, 28 x 28 1x1 210-242 -> 248-312;
// 7 x 7 1x1 with 2048 -> 512 even (271-306 -> 276-301). (An input gradient's filter, restaged,
// is packed per chunk already; its 1x1 layers of 7 x 7 and 14 x 14 pixels with 1024 and 2048
// out-channels ran no faster in chunks of 64 or 256.)
Blocking blocking(const ReductionStage& stage, ReductionKind kind, const KnobValues& knobs,
                  int lanes, int vectors, int pixels) {
  Blocking b{vectors, pixels, 0, 0, 0, 1, 1, 1, 0, true, false, true};
  const int64_t width = stage.extents[1], height = stage.extents[2];
  const int64_t tiles_0 = stage.extents[0] / (int64_t(vectors) * lanes);
  b.channel_tiles = int(largest_divisor(tiles_0, knobs["block_channel_tiles"]));
  if (!stage.period.empty()) b.phase_x = int(stage.period[1]);
  b.pixels = int(std::min<int64_t>(b.pixels, ceil_div(width, b.phase_x)));
  const int64_t span = int64_t(b.pixels) * b.phase_x;  // a tile's positions, over its phases
  const int64_t tiles = knobs["block_tiles"] ? knobs["block_tiles"] : ceil_div(width, span);
  b.block_x = int(std::min(ceil_to(width, span), tiles * span));
  constexpr int64_t kSmallImage = 256;  // pixels
  const bool whole_image = kind == ReductionKind::pixels &&
                           constant_extent(stage.domain, 0) * constant_extent(stage.domain, 1) <=
                               kSmallImage;
  const bool restaged = vector_operand_restaged(stage);
  const bool deep = kind == ReductionKind::taps && !restaged &&
                    constant_extent(stage.domain, 0) >= kPageAliasing;
  const int64_t limit = knobs["reduction_chunk"] ? knobs["reduction_chunk"]
                        : (kind == ReductionKind::taps && !deep) || whole_image ? 1024
                                                                                 : 64;
  int64_t steps = constant_extent(stage.domain, 0);
  b.chunk = int(largest_divisor(steps, limit));
  const bool all_of_first = b.chunk == steps;
  for (int r = 1; all_of_first && r < stage.domain.dimensions(); r++) {
    if (steps * constant_extent(stage.domain, r) > limit) break;
    steps *= constant_extent(stage.domain, r);
    b.chunk_dims++;
  }
  // Rows: the largest divisor of the height up to the knob's. By default, up to enough rows for
  // 96 positions; or, for a sum over taps in chunks, the divisor nearest to that: each block
  // reads the whole filter, a chunk's slice at a time shared by its tiles, and blocks of one row
  // (all that a height of 13 has up to 7) would stream a filter too large for the L2 cache once
  // per row. On the Zen 5 EPYC (2 threads, the tuner's side-by-side timing, GFLOP/s), alex_conv4
  // (13 x 13, 384 -> 384 channels, a 5.3 MB filter) with its 13 rows as one block against 13
  // blocks: forward pass 318-328 against 279-330, input gradient 315-319 against 237-245. A
  // chunk of the whole reduction shares no slice between tiles, and more blocks are more
  // parallel tasks: odd_3x3 (33 rows) with blocks of 3 rows ran its forward pass at 348-353
  // against 391-402 with blocks of one. Nor do a filter gradient's rows (its taps) share what
  // a block reads (yolo_s2's with all 3 in a block: 179-183 against 195-203).
  const bool whole = all_of_first && b.chunk_dims + 1 == stage.domain.dimensions();
  const bool nearest = !knobs["block_rows"] && kind == ReductionKind::taps && !whole;
  const int64_t rows = knobs["block_rows"] ? knobs["block_rows"] : ceil_div(96, b.block_x);
  auto divisor = nearest ? nearest_divisor : largest_divisor;
  b.block_y = int(divisor(height, rows));
  if (!stage.period.empty() && height % stage.period[2] == 0) {  // blocks of whole phases
    b.phase_y = int(stage.period[2]);
    b.block_y = int(divisor(height / b.phase_y, ceil_div(rows, b.phase_y)) * b.phase_y);
  }
  // A restaged input read in another order than stored (backprop_input's filter) is packed per
  // chunk: cheap when each channel block has few spatial blocks to pack it for, else better
  // restaged once, whole.
  int64_t blocks = ceil_div(width, b.block_x) * (height / b.block_y);
  for (size_t d = 3; d < stage.extents.size(); d++) blocks *= stage.extents[d];
  // The knobs are read only where they mean something (the tuner varies just those): restage
  // where the vector operand is restaged (backprop_input's HWIO filter), pack_slices where there
  // is one (a packed filter is read in place).
  // Packed per chunk, its slices are gathered, unless the input's rows (along which a gather's
  // lanes lie) are a multiple of 4 KiB apart, a reduction over 1024 channels or more: then all
  // of a gather's lanes fall in one set of the L1 cache, and in-register transposes of blocks
  // read along the rows do better. On the Zen 5 EPYC (2 threads, the tuner's side-by-side
  // timing, two runs, GFLOP/s), the input gradients of 1x1 layers (in -> out channels) by
  // transposes against gathers: 7 x 7, 512 -> 2048 245-279 against 151-180; res4_1x1 (14 x 14,
  // 256 -> 1024) 322-346 against 237-276. Rows 2 KiB apart were even (res5's 3x3; 7 x 7,
  // 2048 -> 512) or slower (28 x 28, 128 -> 512: 0.95x), rows 1 KiB apart slower (14 x 14,
  // 1024 -> 256: 0.92x).
  if (restaged) {
    const int restage = knobs["restage"];
    b.restage_whole = restage ? restage == 1 : blocks > 2;
    const bool aliasing = constant_extent(stage.domain, 0) % kPageAliasing == 0;
    b.transpose_packs = !b.restage_whole && (restage == 3 || (restage == 0 && aliasing));
  }
  // In place only where the operand is read in the order it is stored, or restaged whole.
  const bool operand = stage.vector_operand.func.defined();
  const int pack = operand ? knobs["pack_slices"] : 0;
  const bool packed_by_knob =
      pack == 2 ? kind == ReductionKind::pixels || stage.extents[0] % kSetAliasing == 0 || deep
                : pack == 1;
  b.pack_slices = operand && (packed_by_knob || (restaged && !b.restage_whole));
  return b;
}

// Runs `reduced`, a specialization of the update of `stage`'s accumulator, as vectors along the
// reduction's innermost dimension (its tail guarded): each accumulator element sums its own
// vector of partial sums (rfactor), added across lanes at the end; a register tile's positions
// `unrolled` run inside the other dimensions' steps, so that each keeps its sum in a register.
// With `phases` of 0 they run outside the vectors' loop, each testing a predicate of its own
// (a stride's grid) per tap. Otherwise they run inside it, sharing each vector of the other
// operand (a generic input gradient's loads of its restaged filter along the out-channels are
// gathers): all of them where no predicate depends on them (1), or split into that many phases
// of a stride's grid, which run outside the taps, so that a phase tests its predicate once per
// tap. The accumulator's `channels`, when given, are unrolled inside them, each position's vector
// of the other operand then shared by all of a thin output's channels (thin_sums()). Each
// position's sum runs in the same order either way.
void sum_along_reduction(Halide::Stage reduced, const ReductionStage& stage, int lanes,
                         const std::optional<Var>& unrolled = std::nullopt, int phases = 0,
                         const std::optional<Var>& channels = std::nullopt) {
  RVar outer("lanes_o"), inner("lanes_i");
  Var lane("lane"), same("phase_positions"), phase("phase");
  reduced.split(stage.domain[0], outer, inner, lanes, TailStrategy::GuardWithIf);
  Func partial = reduced.rfactor(inner, lane);
  reduced.atomic().vectorize(inner);  // horizontal adds
  const bool shared = unrolled && phases > 0;
  std::vector<VarOrRVar> order = {lane};
  if (channels) {
    partial.unroll(*channels);
    partial.update().unroll(*channels);
    order.emplace_back(*channels);
  }
  if (shared) {
    partial.update().split(*unrolled, same, phase, phases).unroll(same).unroll(phase);
    order.emplace_back(same);
  }
  order.emplace_back(outer);
  if (unrolled && !shared) order.emplace_back(*unrolled);
  for (int d = 1; d < stage.domain.dimensions(); d++) order.emplace_back(stage.domain[d]);
  if (shared) order.emplace_back(phase);
  std::vector<Var> storage = {lane};
  for (const Var& v : partial.args()) {
    if (v.name() != lane.name()) storage.push_back(v);
  }
  partial.compute_at(stage.accumulator, Var::outermost())
      .reorder_storage(storage)
      .vectorize(lane);
  partial.update().reorder(order).vectorize(lane);
  if (unrolled) partial.unroll(*unrolled);
  if (unrolled && !shared) partial.update().unroll(*unrolled);
}

// Computes `staged` once, whole, before the kernel's reduction, or per iteration of loop level
// `at`, in its storage order: vectors along the innermost dimension; whole, the outermost two
// dimensions in parallel, in tasks of whole rows (an edge image's padded gradient has 514 rows of
// 2 KiB: one task each, the thread pool's lock took a sixth of the time on 2 threads). An
// innermost dimension narrower than a vector (an image's 3 channels) is unrolled inside vectors
// along the next one, whose stores interleave it densely; or, for a reduction that loads vectors
// along that next dimension (`planar`), stored outside it, so that those loads are dense, not
// strided.
void compute_staged(const Staged& staged, int lanes, bool planar,
                    const std::optional<Halide::LoopLevel>& at = std::nullopt) {
  Func f = staged.func;
  std::vector<Var> storage = staged.storage;
  const bool narrow = staged.inner_extent > 0 && staged.inner_extent < lanes;
  if (narrow && planar) std::swap(storage[0], storage[1]);
  std::vector<VarOrRVar> order(storage.begin(), storage.end());
  if (at) {
    f.compute_at(*at);
  } else {
    f.compute_root();
  }
  f.reorder_storage(storage);
  // A generic kernel's padded image of 3 channels or one (RGB or grey), whole: as a specialized
  // kernel's, its channels unrolled inside vectors along the rows (a vector along the channels
  // had one pixel's: the edge layer's generic forward pass 1.07 -> 0.35-0.40 ms, its input
  // gradient 0.96 -> 0.25, filter gradient 3.6 -> 3.0; Zen 5 EPYC, 2 threads).
  std::vector<Halide::Stage> thin;
  if (staged.extent.defined() && !at) {
    f.bound(staged.storage[0], 0, staged.extent);
    for (int channels : kThinChannels) thin.push_back(f.specialize(staged.extent == channels));
  }
  for (Halide::Stage s : thin) {
    s.reorder(order).unroll(storage[0]).vectorize(storage[1], lanes, TailStrategy::GuardWithIf);
  }
  f.reorder(order);
  if (narrow && !planar) {
    f.unroll(storage[0]).vectorize(storage[1], lanes, TailStrategy::GuardWithIf);
  } else if (narrow) {
    // Per vector of positions, each channel's plane, unrolled: their strided loads then have a
    // known alignment, so they are dense loads and shuffles, shared by the channels, instead of
    // a load per lane (which took longer than the edge layer's convolution itself).
    Var xo("x_o"), xv("x_v");
    f.align_bounds(storage[0], lanes)  // vectors of whole channel triples (a 3-channel image)
        .split(storage[0], xo, xv, lanes, TailStrategy::GuardWithIf)
        .reorder(xv, storage[1], xo)
        .vectorize(xv)
        .unroll(storage[1]);
  } else if (staged.source.defined()) {
    transpose_blocks(f, staged.source, storage, lanes);
  } else {
    f.vectorize(storage[0], lanes, TailStrategy::GuardWithIf);
  }
  Var row = storage[2];  // the loop over the rows of one image
  if (!at) {
    Var rows("rows"), tasks("row_tasks");
    const Halide::Expr task =
        staged.row_elements.defined()
            ? Halide::max(Staged::kTaskElements / staged.row_elements, 1)
            : Halide::Expr(1);
    row = Var("row");
    auto in_tasks = [&](Halide::Stage s) {
      s.split(rows, tasks, row, task, TailStrategy::GuardWithIf).parallel(tasks);
    };
    const Var& outer = storage[storage.size() - 2];
    for (Halide::Stage s : thin) in_tasks(s.fuse(outer, storage.back(), rows));
    f.fuse(outer, storage.back(), rows);
    const int64_t* elements =
        staged.row_elements.defined()
            ? Halide::Internal::as_const_int(Halide::Internal::simplify(staged.row_elements))
            : nullptr;
    // A transposed copy, or one of a row per task (a generic forward pass's filter, its rows
    // its taps): long rows in blocks of storage[1] as well, since a 1x1 filter has only one.
    const bool taps = staged.source.defined() || !staged.row_elements.defined();
    if (taps && !narrow && (!elements || *elements > 2 * Staged::kTaskElements)) {
      // Measured on the Zen 5 EPYC (2 threads, convgen bench, one build after the other):
      // res4_1x1's generic input gradient (its 1 MB filter transposed per call) 0.455 -> 0.388 ms,
      // its forward pass (the filter copied in its own order, one task) 0.68 -> 0.51.
      constexpr int kBlock = 256;
      Var blocks("row_blocks");
      f.split(storage[1], blocks, storage[1], kBlock / lanes, TailStrategy::GuardWithIf)
          .fuse(blocks, rows, rows);
    }
    // A transposed copy's blocks in turn along lanes rows of its source, which it then reads as
    // that many streams of whole lines, rather than across all of them, a line of each row in
    // turn (rows often a multiple of 2 KiB apart, in few sets of the L1 cache). Measured on the
    // Zen 5 EPYC (convgen bench, two runs each, 2 threads; 1 thread in brackets): res5's generic
    // input gradient, its 9.4 MB filter transposed per call, 1.88-2.06 -> 1.21-1.43 ms
    // (3.81-4.29 -> 2.53-2.70).
    if (staged.source.defined()) f.reorder(storage[1], storage[0]);
    in_tasks(f);
  }
  if (narrow && planar && staged.interleaved.defined() && staged.inner_extent > 1) {
    // Each row of the input copied first, as it is, into a buffer of the kernel's own: from it,
    // Halide lowers a strided load of lanes x 3 elements to three dense loads and two permutes,
    // where from the input itself, which it may not read past, it loads 2 or 1 elements fewer
    // and LLVM shuffles those lane by lane. With the edge layer's tiles of 2 rows (measured
    // as in schedule_position_vectors), its forward pass ran in 0.8x the time. One channel has
    // nothing to deinterleave: its rows are read in place (the edge layer's input gradient, its
    // tuned knobs, the tuner's timing on 2 threads, 3 rounds: 188-212 -> 201-234 GFLOP/s).
    Func copy = Func(staged.interleaved).in();
    const std::vector<Var> args = copy.args();
    Var flat("flat");
    copy.compute_at(f, row)
        .bound(args[0], 0, int(staged.inner_extent))
        .fuse(args[0], args[1], flat)
        .vectorize(flat, lanes, TailStrategy::GuardWithIf);
  }
}

// How a generic kernel for thin images stores the rows of a zero-padded input
// (compute_thin_padded()).
enum class RowLayout {
  planar,       // each row's channels one plane after the other: vectors of columns load densely
  interleaved,  // as NHWC stores them: vectors of channels load densely
};

// A generic kernel's zero-padded input, per iteration of loop level `at`, its rows in `layout`
// (planar: its channel count known only at run time, so that vectors along the columns load
// densely); where it has one of kThinChannels channels and its input dense rows, the channels are
// unrolled inside vectors along the columns, whatever the layout; other interleaved rows copy
// guarded vectors of channels. With `rows_first` (planar rows), the input
// (Staged::interleaved) is copied first, a row at a time, as it is, into a row of the kernel's
// own, stored per iteration of `at` and folded to one row inside those specializations, so that
// its channel count is a constant there: a vector of 3 channels by a vector of columns then loads
// densely from the input and deinterleaves by shuffles, where each channel's plane loaded from
// the input itself (which Halide may not read past) took a load per element. An image of one
// channel pays for a copy it does not need (Halide's wrapper of a Func serves all its
// specializations), which only a kernel with more work per pixel than the copy's hides (see
// schedule_thin() and schedule_thin_filter_gradient()).
void compute_thin_padded(const Staged& padded, const Halide::LoopLevel& at, int lanes,
                         RowLayout layout, bool rows_first) {
  Func f = padded.func;
  const std::vector<Var>& s = padded.storage;  // channels, columns, rows, batch
  const std::vector<Var> planar = {s[1], s[0], s[2], s[3]};
  // A generic kernel's channel count, known at run time; a specialized kernel's (a deep output
  // gradient's, schedule_thin()) is a constant.
  const bool generic = padded.extent.defined();
  const Halide::Expr channels = generic ? padded.extent : Halide::Expr(int(padded.inner_extent));
  // n channels, and dense rows: the column stride a constant too.
  auto thin = [&](int n) { return padded.extent == n && padded.column_stride == n; };
  Var xo("x_o"), xi("x_i");
  f.compute_at(at)
      .bound(s[0], 0, channels)
      .reorder(std::vector<VarOrRVar>(planar.begin(), planar.end()))
      .split(s[1], xo, xi, lanes, TailStrategy::GuardWithIf);
  if (layout == RowLayout::planar) f.reorder_storage(planar);
  if (generic) {
    for (int n : kThinChannels) {
      f.specialize(thin(n)).reorder(xi, s[0], xo).vectorize(xi).unroll(s[0]);
    }
  }
  if (layout == RowLayout::planar) {
    f.vectorize(xi);
  } else {
    f.reorder(s[0], xi, xo).vectorize(s[0], lanes, TailStrategy::GuardWithIf);
  }
  if (!generic || !rows_first || !padded.interleaved.defined()) return;
  Func row = Func(padded.interleaved).in();
  const std::vector<Var> r = row.args();  // channels, columns, rows, batch
  Var ro("columns_o"), ri("columns_i");
  row.store_at(f, s[3]).compute_at(f, s[2]).fold_storage(r[2], 1);
  for (int n : kThinChannels) {
    row.specialize(thin(n))
        .split(r[1], ro, ri, lanes, TailStrategy::GuardWithIf)
        .reorder(r[0], ri, ro)
        .vectorize(ri)
        .vectorize(r[0]);
  }
  row.vectorize(r[0], lanes, TailStrategy::GuardWithIf);
}

// schedule_thin()'s tiles of positions: schedule_position_tile()'s, where a ladder of
// specializations on the run-time extents finds one of kThinChannels channels, a constant, dense
// rows (the output's row stride its channel count, as the runtime passes tensors), rows wide
// enough for the tile and a unit column stride; taller tiles first, then one row, then one
// vector. The reduction runs without its predicate where the common case drops it
// (backprop_input's unit strides), and unrolled whole where it is a 3x3 filter's over 3 channels
// or one; elsewhere its loops run as they are, their extents known only at run time.
void thin_position_tiles(const ReductionStage& stage, int lanes) {
  Func output = stage.output;
  Func acc = stage.accumulator;
  const Halide::Expr channels = output_extent(stage, 0), positions = output_extent(stage, 1);
  const Halide::Expr rows = task_rows(output_extent(stage, 2), output_extent(stage, 3));
  const Halide::Expr row_stride = output.output_buffer().dim(1).stride();
  // The reduction without its predicate where the common case drops it; then each of those
  // also unrolled whole where it is a 3x3 filter's over 3 channels or one.
  std::vector<Halide::Expr> cases = {Halide::Internal::const_true()};
  if (!stage.common_case.empty()) {
    Halide::Expr common = Halide::Internal::const_true();
    for (const Halide::Expr& condition : stage.common_case) common = common && condition;
    cases.insert(cases.begin(), common);
  }
  std::vector<Halide::Expr> short_reductions;
  for (int m : kThinChannels) {
    short_reductions.push_back(stage.domain[0].extent() == m && stage.domain[1].extent() == 3 &&
                               stage.domain[2].extent() == 3);
  }
  for (int n : kThinChannels) {
    const Tile t = thin_tile(n);
    for (const auto& [vectors, tile_rows] :
         {std::pair{t.vectors, t.pixels}, {t.vectors, 1}, {1, 1}}) {
      const Halide::Expr when = stage.unit_columns && channels == n && row_stride == n &&
                                positions >= vectors * lanes && rows >= tile_rows;
      Halide::Stage update = acc.update();
      std::vector<Halide::Stage> updates, unrolled;
      for (const Halide::Expr& c : cases) {
        for (const Halide::Expr& r : short_reductions) {
          unrolled.push_back(update.specialize(when && c && r));
        }
        updates.push_back(update.specialize(when && c));
      }
      updates.insert(updates.end(), unrolled.begin(), unrolled.end());
      schedule_position_tile(output.specialize(when), acc.specialize(when), updates, stage, lanes,
                             vectors, tile_rows, n, TailStrategy::ShiftInwards);
      for (Halide::Stage u : unrolled) {
        for (int r = 0; r < stage.domain.dimensions(); r++) u.unroll(stage.domain[r]);
      }
    }
  }
}

// schedule_thin()'s tiles for a dense reduction (ReductionStage::dense_reduction: an input
// gradient from a deep output gradient, Thin::deep) a vector long or more: all of the output's
// kThinChannels channels by positions, each summing its own vector of partial sums along the
// reduction, added across lanes at the end (sum_along_reduction()). Per vector of out-channels
// and tap, the tile's positions load a vector of the output gradient each and its channels one
// of the filter each (read in place, HWIO), which all the positions share: n x p multiply-adds,
// their sums in about three quarters of the vector registers. With a unit column stride the
// positions share their taps; with a column stride of 2 the tile is twice as wide, two phases of
// p positions (every other column), each sharing its taps (its predicate tested once per tap);
// otherwise, and in outputs narrower than a tile, a position at a time.
//
// Measured on the Zen 5 EPYC (convgen bench, 1 thread pinned to a core, alternating runs, median
// ms, the generic kernel before -> after): the stem's input gradient (3 <- 64 channels, 7x7,
// stride 2) 6.05-6.26 -> 2.48-2.84, against its specialized kernel's 3.0-3.5 and 2.1 from a
// packed filter in the same runs. Its hottest loop, per vector of out-channels: 8 loads of the
// output gradient, 3 of the filter, 24 multiply-adds; the sums loaded and stored around each
// tap's loop over the 4 vectors. Read from the planar rows of the kernel for thin images, the
// vectors along the out-channels would be gathers; the tiles of positions of that kernel, from
// interleaved rows, load a vector of 3-channel positions as 3 vectors and shuffles
// (tried in one kernel: rgb_3to3's input gradient 1.3x the time, a 1 <- 3 channel 5x5 one's
// 1.8x), hence a kernel of its own.
//
// A specialized kernel of such a shape (the stem's, Thin::deep) runs the first rung that its
// constants meet, its column stride its reduction's period along the columns, and returns its
// tasks' loop; a generic one runs them all as specializations. Measured on the Zen 5 EPYC
// (convgen bench, alternating runs of 20 rounds, median ms, 1 / 2 threads): the stem's
// specialized input gradient 3.43-3.44 / 1.64-1.67 -> 2.16-2.18 / 1.10-1.12 where its register
// tile of one position's 3 channels by 4 vectors ran slow, 1.8-2.1 -> 2.0-2.2 on one thread in
// the runs where it did not; this kernel ran 1.36-2.2x faster than the generic one on the five
// such layers measured (the stem's, MobileNet's, VGG's, an MNIST layer's, 1 <- 32 at stride 2).
std::optional<Var> thin_sums(const ReductionStage& stage, int lanes, int registers) {
  Func output = stage.output;
  Func acc = stage.accumulator;
  const std::vector<Var>& d = stage.dims;
  const bool specialized = !stage.extents.empty();
  auto extent = [&](int dim) {
    return specialized ? Halide::Expr(int(stage.extents[size_t(dim)])) : output_extent(stage, dim);
  };
  const Halide::Expr channels = extent(0), positions = extent(1);
  Halide::Expr unit_columns = stage.unit_columns, period_two = stage.period_two;
  if (specialized) {
    const int64_t column_stride = stage.period.empty() ? 1 : stage.period[1];
    unit_columns = Halide::Internal::make_bool(column_stride == 1);
    period_two = Halide::Internal::make_bool(column_stride == 2);
  }
  struct Rung {
    Halide::Expr when;
    int positions, phases;  // sum_along_reduction()'s
  };
  Var xo("x_o"), xi("x_i");
  for (int n : kThinChannels) {
    const int p = std::min(16, registers * 3 / 4 / n);
    const Halide::Expr dense = channels == n && stage.domain[0].extent() >= lanes;
    for (const Rung& rung : {Rung{dense && unit_columns && positions >= p, p, 1},
                             Rung{dense && period_two && positions >= 2 * p, 2 * p, 2},
                             Rung{dense, 1, 0}}) {
      const bool taken = specialized && Halide::Internal::can_prove(rung.when);
      if (specialized && !taken) continue;
      auto where = [&](Halide::Stage s) { return taken ? s : s.specialize(rung.when); };
      Halide::Stage tiles = where(output);
      tiles.split(d[1], xo, xi, rung.positions, TailStrategy::ShiftInwards);
      const TaskRows tasks = parallel_rows(tiles, stage);
      tiles.reorder(d[0], xi, xo, tasks.row, tasks.task).unroll(d[0]).unroll(xi);
      where(acc).unroll(stage.acc_dims[0]).unroll(stage.acc_dims[1]);
      sum_along_reduction(where(acc.update()), stage, lanes, stage.acc_dims[1], rung.phases,
                          stage.acc_dims[0]);
      if (taken) {
        acc.compute_at(output, xo);
        return tasks.task;
      }
    }
  }
  return std::nullopt;
}

// A generic kernel of its own for thin images (ReductionStage::thin), which the runtime prefers
// for images of 3 channels or one with a unit column stride (Thin::images):
// thin_position_tiles(); or for input gradients of such images from deep output gradients
// (Thin::deep, a dense reduction): thin_sums(). (The generic kernel of every shape cannot store
// its accumulator positions first: Halide sets a Func's storage order for all its
// specializations at once, and that kernel's channel tiles need the channels first.) Other
// outputs: guarded vectors of positions, a channel at a time. The zero-padded inputs, per task
// of rows, store each row's channels one plane after the other, so that vectors along the
// positions load densely, whatever their channel count; for a dense reduction, as NHWC does.
//
// Measured on the Zen 5 EPYC (convgen bench, the edge layer, 512 x 512, 3 -> 1, median ms, 1 / 2
// threads): the forward pass 0.384 / 0.208 (its specialized kernel 0.198 / 0.131), the input
// gradient 0.177 / 0.100 (0.122 / 0.065); the generic kernel of every shape took 0.726 / 0.376 and
// 0.463 / 0.287 (the last main job). Each step measured on the way, 2 threads: the 3 channels
// stored interleaved, the input gradient 0.29 -> 0.17 ms; dense rows known (the stores were
// scatters, the padded copy gathers), 0.17 -> 0.14, the forward pass 0.24 -> 0.23; the 3x3
// reductions unrolled, 0.14 -> 0.094 and 0.23 -> 0.21. The forward pass's planar copy of its
// 3-channel input still loads it element by element (from the input, which it may not read past;
// a specialized kernel copies each row first, compute_staged()): through a copy of each row as a
// flat vector of channels and columns instead, both kernels ran slower (0.25 and 0.11-0.15 ms),
// and a copy through Func::in() fused its channels and columns with run-time extents, scattering
// its stores (0.50 ms). The rows copied first as compute_thin_padded() can (`rows_first`): on 1
// thread, 5 alternating runs in each of 3 rounds, the forward pass 0.83-0.96x the time, rgb_3to3's
// 0.90-0.99x, but images of one channel 1.09-1.15x (gray_1to1, gray_1to3): not kept.
void schedule_thin(const ReductionStage& stage, int lanes, int registers) {
  Func output = stage.output;
  Func acc = stage.accumulator;
  const std::vector<Var>& d = stage.dims;
  Var xo("x_o"), xi("x_i");
  const RowLayout layout = stage.dense_reduction ? RowLayout::interleaved : RowLayout::planar;
  auto pad_per_task = [&](const Var& task) {
    for (const Staged& padded : stage.padded) {
      compute_thin_padded(padded, Halide::LoopLevel(output, task), lanes, layout,
                          /*rows_first=*/false);
    }
  };
  if (stage.dense_reduction) {
    if (const std::optional<Var> task = thin_sums(stage, lanes, registers)) {
      pad_per_task(*task);
      return;
    }
  } else {
    thin_position_tiles(stage, lanes);
  }
  const TaskRows tasks = parallel_rows(output, stage);
  output.split(d[1], xo, xi, lanes, TailStrategy::GuardWithIf)
      .reorder(xi, d[0], xo, tasks.row, tasks.task)
      .vectorize(xi);
  acc.compute_at(output, xo)
      .reorder_storage(stage.acc_dims[1], stage.acc_dims[0])
      .vectorize(stage.acc_dims[1], lanes, TailStrategy::GuardWithIf);
  acc.update().vectorize(stage.acc_dims[1], lanes, TailStrategy::GuardWithIf);
  pad_per_task(tasks.task);
}

// A filter gradient's generic kernel for thin images (ReductionStage::thin), which the runtime
// prefers for an input of 3 channels or one summed against an output gradient of one channel (an
// edge filter's): its sums run along the columns, each as kThinSums vectors of partial sums
// (rfactor), over kThinParts parts of the rows in parallel, each part's partial sums on their own,
// then all added in a fixed order (each part's lanes by horizontal adds: an inner loop of scalar
// adds would be the kernel's only one). A part runs every tap and output channel in turn over each
// chunk of its rows, whose zero-padded input, copied per part and stored planar
// (compute_thin_padded()), the L1 cache then holds; the output is tiled by 3 channels or one, so
// that where the input has that many, a tap's channels are unrolled and share each vector of the
// output gradient. The generic kernel of every shape computes the padded input whole, its channels
// interleaved, and each tap's task reads all of it, deinterleaving its channels again. Measured on
// the Zen 5 EPYC (convgen bench, the edge layer, 512 x 512, 3 -> 1, median ms, 1 / 2 threads,
// alternating runs): 0.44 / 0.26-0.30 against 0.57-0.62 / 0.52-0.54 (its specialized kernel:
// 0.23-0.25 / 0.13-0.15). Each part copies the input's rows first (compute_thin_padded()'s
// `rows_first`): a third of the time went to the padded copy, loading the 3-channel input
// element by element; with the rows first, pinned to one core, 10 alternating runs,
// 0.441 -> 0.410 ms (0.91-0.96x), an image of one channel 1.01-1.03x (gray_1to1). With 1
// vector of partial sums per channel instead of 4, the multiply-adds waited on each other
// (0.55 ms on 1 thread). Tried, not kept: a tile of 3x3 taps (and all channels) unrolled in one
// pass over the rows, 27 sums per vector of the output gradient, 0.38-1.03 ms on 1 thread: with a
// column dilation known only at run time, each of its loads took a base address of its own,
// spilled; with a unit dilation, LLVM kept the sums in memory, loaded and stored around every
// multiply-add.
void schedule_thin_filter_gradient(const ReductionStage& stage, int lanes) {
  constexpr int kThinParts = 8;
  constexpr int kThinSums = 4;
  constexpr int kThinChunk = 2;  // rows
  Func output = stage.output;
  Func acc = stage.accumulator;
  const std::vector<Var>& d = stage.dims;      // out-channels, in-channels, taps' columns, rows
  const std::vector<Var>& a = stage.acc_dims;  // the same
  const Halide::RDom& pixels = stage.domain;   // columns, rows, batch
  Var co("c_o"), ci("c_i");
  for (int n : kThinChannels) {
    output.specialize(output_extent(stage, 1) == n)
        .split(d[1], co, ci, n, TailStrategy::ShiftInwards)
        .reorder(d[0], ci, d[2], d[3], co);
  }
  output.split(d[1], co, ci, 1).reorder(d[0], ci, d[2], d[3], co);
  acc.compute_at(output, co);
  RVar xo("columns_o"), xi("columns_i"), ro("rows_o"), ri("rows_i");
  Var lane("lane"), part("part");
  const Halide::Expr rows = pixels[1].extent();
  Func partial = acc.update()
                     .split(pixels[0], xo, xi, kThinSums * lanes, TailStrategy::GuardWithIf)
                     .split(pixels[1], ro, ri, (rows + kThinParts - 1) / kThinParts,
                            TailStrategy::GuardWithIf)
                     .rfactor({{xi, lane}, {ro, part}});
  acc.update().atomic().vectorize(xi, lanes);  // each part's lanes: horizontal adds
  partial.compute_at(acc, Var::outermost())
      .reorder_storage(lane, a[1], a[0], a[2], a[3], part)
      .vectorize(lane);
  Halide::Stage sums = partial.update();
  RVar chunk("rows_chunk"), rc("rows_c");
  for (Halide::Stage s : {sums.specialize(stage.unit_columns), sums}) {
    s.split(ri, chunk, rc, kThinChunk, TailStrategy::GuardWithIf)
        .reorder(lane, a[1], xo, rc, a[2], a[3], a[0], chunk, pixels[2], part)
        .vectorize(lane)
        .unroll(a[1])
        .parallel(part);
  }
  for (const Staged& padded : stage.padded) {
    compute_thin_padded(padded, Halide::LoopLevel(partial, part), lanes, RowLayout::planar,
                        /*rows_first=*/true);
  }
}

// The register tile of a generic kernel, whose extents are known only at run time: a ladder of
// specializations from `vectors` channel vectors down to one (and `vectors` of them by one
// position, for a narrow dimension 1), each taken when the output has at least a whole tile;
// tiles overlap at the edges (ShiftInwards: the last tile is moved back and recomputes a few
// outputs, which are pure and identical), so every tile is whole and unrolled. (A specialized
// kernel runs it too where no vector divides its channels, or where its output is narrower
// than a vector in both innermost dimensions: schedule_cpu().)
// Outputs with fewer channels than a vector's lanes run vectors along dimension 1; outputs
// smaller than that, guarded single vectors. Each block of channels runs over a whole row of
// positions, so that its slice of the vector operand (the filter) stays in the cache; the
// operand is copied first, whole, with rows padded to an odd number of cache lines: in place
// its rows lie a whole dimension apart, often a multiple of 4 KiB, and the tile's loads, one per
// row, evicted each other (res5's generic forward pass on the EPYC,
// 2 threads: 28 ms before, 7-12 after).
// A task is a block of channels over a task's rows (parallel_rows), so that a layer of few rows
// (res5's 7) still makes enough tasks for every thread, and each block's rows share its slice.
// A filter gradient's rows are its taps (one for a 1x1 filter, nine for 3x3): with
// `spread_tiles`, each half of a block's positions is a task too. Measured on the Zen 5 EPYC
// (AVX-512, 2 threads, convgen bench, generic time / specialized): the 1x1 filter gradients of
// res2 2.3 -> 1.7-1.8 and res4 2.2 -> 1.3-1.6 (they ran on one thread); res3_s2's input
// gradient, one kernel against the other: 1.18x faster on 1 thread, 1.12x on 2; res4's and
// res5's forward passes and res5's input gradient unchanged (0.93-1.05x).
// A filter gradient's tile that would read more than kBlockSlice of the output gradient (its
// vectors of channels over all the pixels) runs in a block: the tiles of a task's half sum into
// one accumulator, in turn over each row of the output gradient, whose slice they then share
// from the L1 cache, as a specialized kernel's accumulator block does with its chunks. Measured
// on the Zen 5 EPYC (convgen bench, 1 thread, two runs of each build, new / old time, the
// bias gradient's change in schedule_channel_vectors() included): res2_1x1's generic filter
// gradient 0.63x, train_res3_n8's 0.71x, res2_3x3's 0.84x; on 2 threads the runs vary too much
// to tell (0.8-1.4x).
// A forward pass's or input gradient's largest tile whose slice of the filter (its vectors of
// channels over all the taps and reduced channels) outgrows the L2 cache (kTapBlockSlice) runs
// in a block of a whole image, a task per block of channels: its rows of tiles sum into one
// accumulator, in turn over each chunk of kTapBlockChunk channels of each tap, whose slice they
// then share from the L1 cache. Measured on the Zen 5 EPYC (convgen bench, two runs of each
// build): res5's generic forward pass, whose tiles each streamed a 1.2 MB slice from the L3
// cache, 2.04-2.49 -> 1.08-1.22 ms on 2 threads, 2.29-2.57 -> 1.58-1.66 on 1; past 256 KiB
// instead, res4's (a 590 KB slice, in the L2 cache) ran slower, 1.15-1.31 -> 1.42-1.77 ms on 1.
void schedule_generic_register_tile(const ReductionStage& stage, int lanes, int vectors,
                                    int pixels, bool spread_tiles) {
  Func output = stage.output;
  Func acc = stage.accumulator;
  const Var& c = stage.dims[0];
  const Var& x = stage.dims[1];
  const Var& ac = stage.acc_dims[0];
  const Var& ax = stage.acc_dims[1];
  const Halide::Expr channels = output_extent(stage, 0), positions = output_extent(stage, 1);
  Var co("c_o"), ci("c_i"), cv("c_v"), xo("x_o"), xi("x_i"), xt("x_t");
  Var aco("acc_c_o"), aci("acc_c_i"), axo("acc_x_o"), axi("acc_x_i");
  std::vector<VarOrRVar> order = {aci, aco, ax};
  for (int d = 0; d < stage.domain.dimensions(); d++) order.emplace_back(stage.domain[d]);
  // A tile, which its accumulator holds one at a time (axo then runs once); or a block of them
  // (Rung::block, below): a filter gradient's tiles in turn over each row, a forward pass's or
  // input gradient's rows of tiles in turn over each chunk of kTapBlockChunk channels of each
  // tap. Every update splits its positions in tiles, since Halide compiles it for the
  // accumulators of every rung, blocks included.
  std::vector<VarOrRVar> tile_order = {aci, aco, axi}, row_order = {aci, aco, axi};
  std::vector<VarOrRVar> taps_row_order = {aci, aco, axi};
  RVar rco("r_c_o"), rci("r_c_i");
  std::vector<VarOrRVar> tap_order = {aci, aco, axi, rci, axo, stage.acc_dims[2], rco};
  for (int d = 0; d < stage.domain.dimensions(); d++) {
    tile_order.emplace_back(stage.domain[d]);
    row_order.emplace_back(stage.domain[d]);
    taps_row_order.emplace_back(stage.domain[d]);
    if (d > 0) tap_order.emplace_back(stage.domain[d]);
    if (d == 0) row_order.emplace_back(axo);
    if (d == 0) taps_row_order.insert(taps_row_order.end(), {axo, stage.acc_dims[2]});
  }
  tile_order.emplace_back(axo);
  std::vector<VarOrRVar> along_x = {axi};
  for (int d = 0; d < stage.domain.dimensions(); d++) along_x.emplace_back(stage.domain[d]);
  along_x.insert(along_x.end(), {axo, ac});

  std::vector<std::pair<int, int>> tiles;  // (vectors, pixels)
  for (int v = vectors; v >= 1; v /= 2) tiles.emplace_back(v, pixels);
  // A narrow dimension 1: a filter gradient's 3 in-channels (an image's) as 3 positions (the
  // stem's generic filter gradient, 2 threads: 4.0-4.1 -> 2.0-2.1 ms, its specialized kernel
  // 0.9-1.1); as many accumulators in fewer positions; then one.
  if (pixels > 3 && spread_tiles) tiles.emplace_back(vectors, 3);
  if (pixels > 3) tiles.emplace_back(vectors * 2, pixels / 2);
  if (pixels > 1) tiles.emplace_back(vectors, 1);
  auto whole = [&](int v, int p) {
    return channels >= v * lanes && positions >= p;
  };
  // Each tile, where the output has a whole one. A tile whose slice of the vector operand over
  // the whole reduction outgrows the cache runs in a block of tiles that share one accumulator,
  // so that they share the slice's parts from the L1 cache; each output's sum runs in the same
  // order. A filter gradient's block (its slice over kBlockSlice) is a task's block of channels
  // and half of its positions, where that is several tiles, its tiles in turn over each row of
  // the output gradient. A forward pass's or input gradient's (the largest tile's slice over
  // kTapBlockSlice: in the L2 cache, the tiles ran as fast) is a block of channels of a whole
  // image, a task, its tiles in turn over each chunk of kTapBlockChunk channels of each tap.
  // A filter gradient whose half of the positions is one or two tiles of 3 (an image's 3
  // in-channels) runs a block of its task's rows (the taps' columns) instead, a task then a
  // kTapsBlockImages-th of them: per row of the output gradient, every tap column's tiles in
  // turn, which read that row from the L1 cache; a tile alone streamed all of the gradient from
  // the L3 cache once per tap. Measured on the Zen 5 EPYC (convgen bench, alternating runs, median
  // ms): the stem's generic filter gradient (3 -> 64, 7x7, stride 2) 2.64-3.09 -> 2.15-2.28 on 1
  // thread, 1.68-1.75 -> 1.37-1.45 on 2 (its specialized kernel 1.7-1.8 and 0.9-0.95), VGG's
  // first layer's 5.9-6.1 -> 5.4-5.7 on 1. A block for every tile of the ladder took the kernel
  // 10 minutes to compile and more (Halide's bounds of each over every branch).
  enum class Block { none, rows, taps, image };  // a tile alone; the three blocks above
  struct Rung {
    int vectors, pixels;
    Halide::Expr when;
    Block block;
  };
  Halide::Expr steps = Halide::cast<int64_t>(1);  // the reduction's
  for (int d = 0; d < stage.domain.dimensions(); d++) steps *= stage.domain[d].extent();
  std::vector<Rung> rungs;
  const auto slice_over = [&](int v, int bytes) { return steps * (v * lanes * 4) > bytes; };
  for (const auto& [v, p] : tiles) {
    if (spread_tiles) {
      const Halide::Expr several_tiles = positions > 2 * p;  // per half
      rungs.push_back(
          {v, p, whole(v, p) && several_tiles && slice_over(v, kBlockSlice), Block::rows});
      if (p == 3) {
        rungs.push_back(
            {v, p, whole(v, p) && !several_tiles && slice_over(v, kBlockSlice), Block::taps});
      }
    } else if (rungs.empty()) {
      rungs.push_back({v, p, whole(v, p) && slice_over(v, kTapBlockSlice), Block::image});
    }
    rungs.push_back({v, p, whole(v, p), Block::none});
  }
  // Fewer channels than a vector's lanes over a reduction whose innermost dimension has at least
  // a vector's (the input gradient of a 3-channel image sums over the 64 channels of the layer
  // above; an edge filter's gradient over the image's columns): vectors along that dimension, as
  // the gradient stores it, each of `p` positions of one channel summing its own vector of partial
  // sums (rfactor, the dimension's tail guarded), added across lanes at the end. Per tap, each
  // position tests a stride's predicate once and runs over the vectors with its sum in a
  // register (inside the loop over the positions, the predicated sums were kept in memory).
  // Measured on the Zen 5 EPYC (AVX-512, 2 threads, convgen bench): the stem's input gradient
  // (3 <- 64 channels, 7x7, stride 2) 114 -> 11.8 ms (19 with the positions innermost), the edge
  // layer's filter gradient 29.8 -> 4.1 ms; their specialized kernels take 1.0 and 0.18. Tiles
  // of 16 or 8 positions, or 3 (a filter gradient's 3 in-channels), or 1, which share each
  // vector of the other operand where the taps allow (sum_along_reduction()'s phases): the
  // stem's input gradient reads its restaged filter along the out-channels by gathers, one per
  // position and step before; 15.0 -> 3.4-3.7 ms with 8 per phase (4.9 with 4; 2 threads).
  // Tried, not kept: that filter read in place (HWIO, dense along the out-channels) in these
  // branches, the algorithm choosing between the filter and its copy on the channel count that
  // the branches test: the stem's input gradient 5.84 -> 3.91 ms (1 thread, pinned), but the
  // kernel (NHWC, AVX-512) took 112 s to compile against 35, Halide's region of the filter it
  // checks a union over every branch; 103 s with the reads promised inside the filter's
  // channels and taps; 76 s promised along the out-channels too, whose vectors were then
  // gathers again (6.26 -> 7.77 ms). The runtime now runs such outputs of 3 channels or one on
  // a kernel of its own (Thin::deep, thin_sums()).
  const int reduction_positions[] = {16, 8, 3, 1};
  auto along_reduction = [&](int p) {
    return channels < lanes && stage.domain[0].extent() >= lanes && positions >= p;
  };
  // Fewer channels than a vector's lanes (an image's 3, an edge filter's 1): vectors along
  // dimension 1 instead, one channel at a time, so that no lane idles.
  const Halide::Expr narrow = channels < lanes && positions >= lanes;
  // The same from a padded image of 3 channels or one (RGB or grey) with unit column strides (from
  // 4 vectors of positions on): its channel count then a constant, the loads along the width are
  // dense loads and shuffles, not gathers, and tiles of 8 vectors of positions (4 below 8 vectors)
  // sum independently (the output's row stride its channel count, as the runtime passes it).
  // Measured on the Zen 5 EPYC (2 threads, convgen bench, one build after the other): the edge
  // layer's generic forward pass 2.41 -> 1.07 ms, its input gradient 2.43 -> 0.96 (with
  // compute_staged()'s image rows, 0.35-0.40 and 0.25; its specialized kernels 0.11 and 0.06);
  // tiles of 8 vectors instead of 4, whose 4 accumulators per channel left the multiply-adds
  // latency bound: the input gradient 0.85x the time on 1 thread, 0.75x on 2 (0.48 -> 0.37 ms), the
  // forward pass unchanged (1.01x, 1.04x; four alternating runs of each build). Still 2.8-4.8x
  // their specialized kernels' time (1 and 2 threads; perf, 1 thread, before the tiles of 8): the
  // input gradient's stores along the width, strided by its 3 channels, run one element at a time
  // (29% of its samples); the forward pass deinterleaves its input's channels once per tap (24
  // shuffles to 12 multiply-adds), and its padded copy of the whole image takes a quarter of its
  // time. All of a thin output's channels in one tile, stored interleaved as
  // schedule_position_vectors() stores them, would need the accumulator stored positions first,
  // which Halide sets for the whole Func, every rung of this ladder included; and Halide merges
  // strided stores into interleaved ones only where their values load nothing from the buffer they
  // store to, which an accumulator's update does (tried: the generic input gradient's code then
  // extracted and stored 584 single elements, against 152). The generic kernels for thin images
  // (schedule_thin()) do that, and the runtime prefers them for outputs of 3 channels or one with
  // a unit column stride; these rungs serve the other outputs of thin images (3 -> 8 channels).
  constexpr int kNarrowVectors[] = {8, 4};
  std::vector<VarOrRVar> dense_x = {axi, axo};
  for (int d = 0; d < stage.domain.dimensions(); d++) dense_x.emplace_back(stage.domain[d]);
  dense_x.emplace_back(ac);
  const bool thin_images =
      stage.unit_columns.defined() && !stage.padded.empty() && stage.padded[0].extent.defined();
  struct DenseNarrow {
    Halide::Expr when;
    int vectors;
  };
  std::vector<DenseNarrow> dense_narrow;
  const Halide::Expr dense_rows = stage.transposed.defined()  // computed whole, dense
                                      ? Halide::Internal::const_true()
                                      : output.output_buffer().dim(1).stride() == channels;
  if (thin_images && !spread_tiles) {
    for (int v : kNarrowVectors) {
      for (int n : kThinChannels) {
        dense_narrow.push_back({channels < lanes && positions >= v * lanes &&
                                    stage.unit_columns && stage.padded[0].extent == n &&
                                    stage.domain[0].extent() == n && dense_rows,
                                v});
      }
    }
  }

  // The reduction's loops, for each branch of the output's ladder; `phases` as in
  // sum_along_reduction() for tiles that hold whole phases.
  auto schedule_update = [&](Halide::Stage update, bool innermost, int phases) {
    if (innermost) {
      for (const DenseNarrow& d : dense_narrow) {
        update.specialize(d.when)
            .split(ax, axo, axi, lanes)
            .vectorize(axi)
            .unroll(axo)
            .reorder(dense_x);
      }
    }
    for (const Rung& r : rungs) {
      Halide::Stage s = update.specialize(r.when)
                            .split(ac, aco, aci, lanes)
                            .vectorize(aci)
                            .unroll(aco);
      if (r.block == Block::image) {
        s.split(stage.domain[0], rco, rci, kTapBlockChunk, TailStrategy::GuardWithIf);
      }
      s.split(ax, axo, axi, r.pixels, TailStrategy::GuardWithIf)
          .unroll(axi)
          .reorder(r.block == Block::none   ? tile_order
                   : r.block == Block::rows ? row_order
                   : r.block == Block::taps ? taps_row_order
                                            : tap_order);
    }
    for (int p : reduction_positions) {
      // A sum over the columns of such an image (an edge filter's gradient): its loads along
      // them dense loads and shuffles as well. With the bias gradient's sum along the columns
      // (schedule_cpu), the edge layer's generic filter gradient 3.0 -> 1.9-2.1 -> 0.78-0.84 ms
      // (Zen 5 EPYC, 2 threads; its specialized kernel 0.12-0.14).
      if (innermost && thin_images && spread_tiles) {
        for (int n : kThinChannels) {
          const Halide::Expr thin = stage.unit_columns && stage.padded[0].extent == n;
          sum_along_reduction(update.specialize(along_reduction(p) && thin), stage, lanes, ax,
                              phases);
        }
      }
      sum_along_reduction(update.specialize(along_reduction(p)), stage, lanes, ax,
                          phases > 1 && p % phases != 0 ? 0 : phases);
    }
    update.specialize(narrow).split(ax, axo, axi, lanes).vectorize(axi).reorder(along_x);
    update.split(ac, aco, aci, lanes, TailStrategy::GuardWithIf).vectorize(aci).reorder(order);
  };
  // The reduction in the common case first (backprop_input with unit strides loses its
  // predicate), then in general. Each condition nests in the one before; every level is
  // scheduled (its own default runs when its condition holds and the next one's does not),
  // innermost first, so that the nested level is the first specialization each level tries.
  std::vector<Halide::Stage> levels = {acc.update()};
  for (const Halide::Expr& condition : stage.common_case) {
    levels.push_back(levels.back().specialize(condition));
  }
  // With a column stride of 2, tiles of twice the positions, whose sums run over the reduction
  // a phase (every other column) at a time: its positions take the same taps, so the stride's
  // predicate is tested once per tap and phase rather than per position, and none idles. (A
  // specialization starts from its stage's schedule so far: it is made first.) Measured on the
  // Zen 5 EPYC (2 threads, convgen bench, one build after the other, twice): res3_s2's generic
  // input gradient 1.28-1.60 -> 1.13-1.17 ms (its specialized kernel: 0.69-0.80). The phases
  // run as a loop, not unrolled: unrolled, the second phase's accumulators (4 x 5 on AVX-512)
  // were live through the first phase's reduction beside its own, past the 32 registers, and
  // every step of that reduction moved and spilled accumulators (res3_s2's generic input
  // gradient, three runs of each build: 2.38-4.38 -> 1.35-1.58 ms on 1 thread, 1.10-1.39 ->
  // 0.70-0.75 on 2).
  std::optional<Halide::Stage> periodic;
  if (stage.period_two.defined()) periodic = acc.update().specialize(stage.period_two);
  // Positions of a tile share the taps unless a predicate along them (a column stride other
  // than 1 or 2) remains: in the general case of a predicated reduction.
  const bool predicated = !Halide::Internal::is_const_one(stage.domain.domain().predicate());
  for (auto level = levels.rbegin(); level != levels.rend(); ++level) {
    const bool general = level == levels.rend() - 1;
    schedule_update(*level, level == levels.rbegin(), general && predicated ? 0 : 1);
  }
  if (periodic) {
    Var axr("acc_x_r"), axq("acc_x_q"), axp("acc_x_p");
    std::vector<VarOrRVar> phase_order = {aci, aco, axq};
    for (int d = 0; d < stage.domain.dimensions(); d++) phase_order.emplace_back(stage.domain[d]);
    phase_order.insert(phase_order.end(), {axp, axo});
    for (const auto& [v, p] : tiles) {
      periodic->specialize(whole(v, 2 * p))
          .split(ac, aco, aci, lanes)
          .vectorize(aci)
          .unroll(aco)
          .split(ax, axo, axr, 2 * p, TailStrategy::GuardWithIf)  // one tile, as above
          .split(axr, axq, axp, 2)
          .unroll(axq)
          .reorder(phase_order);
    }
    schedule_update(*periodic, false, 2);
  }

  // The vector operand read in its stored order (a forward pass's filter, a filter gradient's
  // output gradient) is copied whole, its rows an odd number of cache lines apart. Copied per
  // task instead, a filter gradient's (Zen 5 EPYC, convgen bench, two alternating runs of each
  // build, generic kernels, per task / whole time on 2 threads): res2_1x1 0.77, res3_s2 0.88,
  // res4_1x1 0.92, but res2_3x3 1.06, train_res3_n8 1.21 and the stem 2.07, whose tasks of one
  // row of taps each copied all of their channels' gradient.
  if (stage.vector_operand.func.defined()) {
    constexpr int kLine = 16;  // floats per cache line
    const Halide::Expr lines = (channels + kLine - 1) / kLine;
    const Halide::Expr padded = Halide::select(channels < kLine, channels, (lines | 1) * kLine);
    const bool restaged = vector_operand_restaged(stage);
    Staged copy = stage.vector_operand;
    if (!restaged) {
      copy.func = Func(copy.func).in(acc);
      compute_staged(copy, lanes, false);
    }
    copy.func.bound_storage(copy.storage[0], padded);
  }
  // A branch's tiles of `width` positions, each block of channels of a task's rows (and, spread,
  // each half of its positions) a task of its own.
  // A block (Rung::block) is one accumulator: it is computed at xo, which then runs once around
  // the block's tiles (xt); a forward pass's or input gradient's around a whole image's rows too,
  // a task's.
  auto tasks_of = [&](Halide::Stage s, const Halide::Expr& width, Block block = Block::none) {
    const TaskRows tasks = parallel_rows(s, stage,
                                         block == Block::image  ? 1
                                         : block == Block::taps ? kTapsBlockImages
                                                                : 0);
    if (spread_tiles) {
      Var half("x_half");
      const bool blocked = block == Block::rows || block == Block::taps;
      const Var tiles_loop = blocked ? xt : xo;
      const Halide::Expr blocks = (positions + width - 1) / width;
      s.split(xo, half, tiles_loop, (blocks + 1) / 2, TailStrategy::GuardWithIf);
      std::vector<VarOrRVar> loops = {ci, xi, tiles_loop};
      if (blocked) s.split(half, half, xo, 1);
      if (block == Block::rows) loops.emplace_back(xo);
      loops.emplace_back(tasks.row);
      if (block == Block::taps) loops.emplace_back(xo);
      loops.insert(loops.end(), {half, co, tasks.task});
      s.reorder(loops).fuse(half, co, co);
    } else if (block == Block::image) {
      s.split(co, co, xo, 1).reorder(ci, xi, xt, tasks.row, xo, co, tasks.task);
    } else {
      s.reorder(ci, xi, xo, tasks.row, co, tasks.task);
    }
    s.fuse(co, tasks.task, tasks.task).parallel(tasks.task);
    return s;
  };
  // A rung's tiles, `v` vectors of channels by `width` positions, where `condition` holds.
  auto rung = [&](const Halide::Expr& condition, int v, int width, Block block) {
    const Var& tiles_loop = block == Block::image ? xt : xo;
    tasks_of(output.specialize(condition)
                 .split(c, co, ci, v * lanes, TailStrategy::ShiftInwards)
                 .split(x, tiles_loop, xi, width, TailStrategy::ShiftInwards),
             width, block)
        .split(ci, ci, cv, lanes)
        .vectorize(cv);
    Halide::Stage init = acc.specialize(condition).split(ac, aco, aci, lanes).vectorize(aci);
    init.unroll(aco);
    if (!spread_tiles && block == Block::none) init.unroll(ax);
  };
  if (stage.period_two.defined()) {
    for (const auto& [v, p] : tiles) {
      rung(stage.period_two && whole(v, 2 * p), v, 2 * p, Block::none);
    }
  }
  for (const Rung& r : rungs) rung(r.when, r.vectors, r.pixels, r.block);
  for (int p : reduction_positions) {
    tasks_of(output.specialize(along_reduction(p))
                 .split(c, co, ci, 1)
                 .split(x, xo, xi, p, TailStrategy::ShiftInwards),
             p);
    acc.specialize(along_reduction(p)).unroll(ax);
  }
  for (const DenseNarrow& d : dense_narrow) {
    tasks_of(output.specialize(d.when)
                 .split(c, co, ci, 1)
                 .split(x, xo, xi, d.vectors * lanes, TailStrategy::ShiftInwards),
             d.vectors * lanes)
        .vectorize(xi, lanes);
    acc.specialize(d.when).vectorize(ax, lanes);
  }
  tasks_of(output.specialize(narrow)
               .split(c, co, ci, 1)
               .split(x, xo, xi, lanes, TailStrategy::ShiftInwards),
           lanes)
      .vectorize(xi);
  acc.specialize(narrow).vectorize(ax, lanes);
  // Outputs smaller than one tile: guarded vectors of channels, a task's rows one task (their
  // guarded channel blocks as tasks would leave the accumulator's vectors without constant
  // bounds). (The specializations above, made first, have their own tasks.)
  parallel_rows(output, stage);
  output.split(c, co, ci, lanes, TailStrategy::GuardWithIf)
      .split(x, xo, xi, 1)
      .reorder(ci, xi, xo, co)
      .vectorize(ci);
  acc.compute_at(output, xo);
  acc.vectorize(ac, lanes, TailStrategy::GuardWithIf);
}

// Whether the target has AVX-512.
bool avx512(const Halide::Target& target) {
  return target.has_feature(Halide::Target::AVX512) ||
         target.has_feature(Halide::Target::AVX512_Skylake);
}

// The target's vector registers.
int vector_registers(const Halide::Target& target) {
  return avx512(target) || target.arch == Halide::Target::ARM ? 32 : 16;
}

// The lanes of the schedule's float vectors.
int vector_lanes(const Halide::Target& target, const KnobValues& knobs) {
  return target.natural_vector_size<float>() * knobs["vector_multiple"];
}

// The target's register tile. AVX2 has 16 vector registers, so 2 x 6 = 12 accumulators leave room
// for the filter vectors and a broadcast; AVX-512 and AArch64 have 32, so 4 x 5 = 20.
Tile target_tile(const Halide::Target& target) {
  return vector_registers(target) == 32 ? Tile{4, 5} : Tile{2, 6};
}

// What a vector load of a register tile's filter (or output gradient) costs in the model of
// specialized_tile(), in multiply-adds. On AVX-512, 3.5: the fit to the tiles measured on the
// Zen 5 EPYC (yolo_s2's forward pass, rows of 52, 2 threads, in GFLOP/s: 4 x 6 375, 2 x 8 364,
// 4 x 5 359, 2 x 7 357, 4 x 4 300, 8 x 3 273, 2 x 4 255), where tiles that load a vector per 4
// multiply-adds or more ran 20-35% below the others, though loads never outnumber multiply-adds.
// Elsewhere 1, the count the AVX2 measurements below were made with.
double vector_load_cost(const Halide::Target& target) {
  return avx512(target) ? 3.5 : 1.0;
}

// The knobs' tile, a knob at 0 taking the target's value.
Tile knob_tile(const KnobValues& knobs, const Halide::Target& target) {
  const Tile isa = target_tile(target);
  return {knobs["tile_vectors"] ? knobs["tile_vectors"] : isa.vectors,
          knobs["tile_pixels"] ? knobs["tile_pixels"] : isa.pixels};
}

// The register tile of a specialized kernel, its vectors the most (up to the knob's, or the
// target's) that divide the channels exactly; 0 when none does. Knobs at 0 take the target's
// tile, unless another of at most as many accumulators takes at least 5% fewer cycles per row of
// positions (of one phase of a stride's grid): tiles overrun a row whose width they do not divide
// (res5's 7 positions take two 6-position tiles, res3's 28 take five). The count takes, per
// reduction step, the largest of the tile's multiply-adds, its loads (a vector per channel vector,
// at vector_load_cost(), and a broadcast per position) and the 8 in flight that hide the
// multiply-add's latency on 2 pipes;
// between tiles that tie, the fewest positions past the row's end, then the most positions.
// Measured on the EPYC (AVX2, side by side): res5's forward pass (2 threads) with 1 x 7 tiles in
// 0.80x the time of 2 x 5, its input gradient 0.91x; res4's forward pass at 117 GFLOP/s with 4 x 2
// against 87 with 1 x 7; the forward passes and input gradients of res2's and res3's 3x3 layers
// and deeplab's (rows of 56 and 28) with 2 x 4 in 0.77-0.97x the time of 2 x 6 (1 and 2 threads).
// On the Zen 5 EPYC (AVX-512, 2 threads, convgen bench, no database entries), where the vector
// loads' cost took yolo_s2's tiles from 2 x 4 to 4 x 5: its forward pass 1.585 -> 1.33-1.40 ms
// (0.63 -> 0.86x oneDNN), its input gradient 1.04-1.15x oneDNN; in the tuner's side-by-side
// timing, the input gradients of mobile_1x1 (2 x 5 -> 2 x 8) 1.00-1.07x and odd_3x3 (3 x 5 ->
// 2 x 8) 1.04-1.12x faster. No other tile of the 19 layers of both configs changed.
Tile specialized_tile(const ReductionStage& stage, const KnobValues& knobs, int lanes,
                      const Halide::Target& target) {
  const Tile isa = target_tile(target);
  auto divides = [&](int vectors) { return stage.extents[0] % (int64_t(vectors) * lanes) == 0; };
  auto dividing = [&](int limit) {
    for (int v = limit; v >= 1; v--) {
      if (divides(v)) return v;
    }
    return 0;
  };
  if (knobs["tile_vectors"] || knobs["tile_pixels"]) {
    const Tile set = knob_tile(knobs, target);
    return {dividing(set.vectors), set.pixels};
  }
  const Tile preferred{dividing(isa.vectors), isa.pixels};
  if (preferred.vectors == 0) return preferred;
  const int64_t row = ceil_div(stage.extents[1], stage.period.empty() ? 1 : stage.period[1]);
  const double load = vector_load_cost(target);
  auto cycles = [&](const Tile& t) {
    const double step = std::max({double(t.vectors * t.pixels), load * t.vectors + t.pixels, 8.0});
    return double(ceil_div(row, t.pixels)) * step / t.vectors;
  };
  auto cost = [&](const Tile& t) { return std::make_pair(cycles(t), ceil_to(row, t.pixels)); };
  Tile best = preferred;
  constexpr int kMaxKnob = 8;
  for (int p = kMaxKnob; p >= 2; p--) {  // a filter vector serves at least two positions
    for (int v = 1; v <= kMaxKnob && v * p <= isa.vectors * isa.pixels; v++) {
      const Tile t{v, p};
      if (divides(v) && cost(t) < cost(best)) best = t;
    }
  }
  return cycles(best) * 20 <= cycles(preferred) * 19 ? best : preferred;
}

// The register tile of a specialized output with fewer channels than a vector's lanes
// (schedule_position_vectors): vectors of positions x rows, the knobs' when set, else
// thin_tile()'s.
Tile position_tile(const ReductionStage& stage, const KnobValues& knobs) {
  const Tile fit = thin_tile(int(stage.extents[0]));
  return {knobs["tile_vectors"] ? knobs["tile_vectors"] : fit.vectors,
          knobs["tile_pixels"] ? knobs["tile_pixels"] : fit.pixels};
}

// The reduction domain of an update after rfactor, what remains of the original one, by the
// names that schedule it (a split's RVar is named after its parent, "pixels$y.rows_i").
Halide::RDom rfactored_domain(const Halide::Stage& update) {
  std::vector<Halide::Internal::ReductionVariable> rvars = update.get_schedule().rvars();
  for (auto& rvar : rvars) rvar.var = rvar.var.substr(rvar.var.rfind('.') + 1);
  return Halide::RDom(Halide::Internal::ReductionDomain(rvars));
}

// The partial sums of `update` (the update of `stage`'s accumulator, or a specialization of it)
// over `parts` parts of its rows (split_rows), whose update takes the part as its last pure
// dimension; `update` then adds the parts in order, a vector of channels at a time.
Func partial_sums(const ReductionStage& stage, Halide::Stage update, int parts, int lanes) {
  RVar rows_inner;
  Func partial = split_rows(update, stage.domain, parts, rows_inner);
  ReductionStage merge = stage;
  merge.domain = rfactored_domain(update);
  channel_vector_update(update, merge, lanes);
  return partial;
}

// A filter gradient's partial sums over `parts` parts of the output rows (split_rows), as the
// stage a register tile then schedules: its output holds the partial sums, whole, with the part
// as its last dimension, so that the parts' blocks run in parallel like any others. The parts
// are then added in order, a vector of channels at a time. The few blocks of a filter gradient
// (9 for res2's 3x3 filter, one per tap) then make enough tasks to keep every thread busy, and
// each thread reads only its part of the input and the output gradient. Measured on the Zen 5
// EPYC (AVX-512, 2 threads, convgen bench before and after): res2's 3x3 filter gradient 0.894 ->
// 0.725 ms (299 GFLOP/s, 67% of peak in the main job), the stem's 1.109 -> 0.859 (2.1x oneDNN).
ReductionStage split_partial_sums(const ReductionStage& stage, int parts, int lanes) {
  Func partial = partial_sums(stage, Func(stage.accumulator).update(), parts, lanes);
  channel_vector_output(stage, lanes);
  Func partials = partial.in(stage.accumulator);
  partials.compute_root();
  ReductionStage parted = stage;
  parted.output = partials;
  parted.dims = partials.args();
  parted.extents.push_back(parts);
  parted.accumulator = partial;
  parted.acc_dims = partial.args();
  parted.domain = rfactored_domain(partial.update());
  return parted;
}

// A row of a vector of channels or more alone (a bias gradient) summed over a reduction of at
// least kPartedSum elements: partial sums over kSumParts parts of the rows (split_rows), in
// parallel, each part's in its stored order, all the vectors of channels in turn per step; then
// the parts added in order. The parts depend only on the rows, so results do not depend on the
// threads. A generic kernel's sum takes the parts where its run-time extents allow (a
// specialization), else it is summed whole (schedule_channel_vectors). Summed whole by the
// calling thread, the other idle, the bias gradient took 8-15% of the calling thread's time in
// the filter gradients of res2_1x1 and the stem (3136 and 12544 pixels of 256 and 64 channels)
// on 2 threads (perf, Zen 5 EPYC). In parts, ten runs of each build side by side, median times:
// the stem's specialized filter gradient 0.858 -> 0.800 ms on 2 threads, res2_1x1's 0.332 ->
// 0.314 (each run's new / old: median 0.95); eight runs of the generic kernels: res2_1x1's 0.78
// -> 0.70 (median per run 0.91), the stem's 1.73 -> 1.60 (0.93), res2_3x3's 0.99 -> 0.92 (0.94);
// 1 thread unchanged. As tasks of channels instead, each over all the pixels, res2_1x1's
// specialized kernel ran 1.19x slower on 1 thread (one pass over all the lines per task,
// reading a part of each). Returns whether it scheduled the whole stage: a generic kernel's
// sum for the other extents is the caller's to schedule.
bool schedule_parted_sum(const ReductionStage& stage, int lanes) {
  constexpr int64_t kPartedSum = int64_t(1) << 18;  // elements: 1 MiB
  constexpr int kSumParts = 4;
  if (stage.dims.size() != 1) return false;
  Func acc = stage.accumulator;
  Halide::Stage update = acc.update();
  const bool generic = stage.extents.empty();
  if (generic) {
    const Halide::Expr channels = stage.output.output_buffer().dim(0).extent();
    Halide::Expr elements = Halide::cast<int64_t>(channels);
    for (int d = 0; d < stage.domain.dimensions(); d++) elements *= stage.domain[d].extent();
    update = update.specialize(channels >= lanes && elements >= Halide::Expr(kPartedSum) &&
                               stage.domain[1].extent() >= kSumParts);
  } else if (stage.extents[0] < lanes || multiply_adds(stage) < kPartedSum ||
             constant_extent(stage.domain, 1) < kSumParts) {
    return false;
  }
  Func partial = partial_sums(stage, update, kSumParts, lanes);
  const std::vector<Var> args = partial.args();  // the channels, then the part
  const Var &c = args[0], &part = args[1];
  Var co("c_o"), ci("c_i");
  std::vector<VarOrRVar> order = {ci, co};
  const Halide::RDom steps = rfactored_domain(partial.update());
  for (int d = 0; d < steps.dimensions(); d++) order.emplace_back(steps[d]);
  order.emplace_back(part);
  partial.compute_at(acc, Var::outermost()).vectorize(c, lanes, TailStrategy::GuardWithIf);
  partial.update()
      .split(c, co, ci, lanes, TailStrategy::GuardWithIf)
      .vectorize(ci)
      .reorder(order)
      .parallel(part);
  if (generic) return false;
  channel_vector_output(stage, lanes);
  return true;
}

// How many parts of the output rows a specialized filter gradient's register tile sums over
// (split_partial_sums): the knob's, or by default 2 where the blocks are an odd number (a 3x3
// filter's 9 taps, one block of channels: on 2 threads, one runs 5 blocks while the other waits
// after 4) and the rows make parts of at least 4. Measured on the Zen 5 EPYC (2 threads, the
// tuner's timing, three rounds, GFLOP/s): the stem's filter gradient (49 blocks) 221-233 ->
// 277-285, res2's 3x3 (9 blocks) 256-319 -> 321-336; with 2 parts, the even blocks of res4's,
// res5's and res4_1x1's lost 12-50%.
int partial_sum_parts(const ReductionStage& stage, const KnobValues& knobs, int lanes,
                      int vectors, int pixels) {
  if (knobs["split_parts"] > 0) return knobs["split_parts"];
  const Blocking b = blocking(stage, ReductionKind::pixels, knobs, lanes, vectors, pixels);
  int64_t blocks = ceil_div(stage.extents[0], int64_t(b.vectors) * lanes * b.channel_tiles) *
                   ceil_div(stage.extents[2], b.block_y);
  int64_t elements = 1;
  for (int64_t extent : stage.extents) elements *= extent;
  for (size_t d = 3; d < stage.extents.size(); d++) blocks *= stage.extents[d];
  constexpr int64_t kMinRows = 8;
  constexpr int64_t kMaxPartials = int64_t(1) << 28;  // floats: 1 GiB, half what a buffer may hold
  const bool split = blocks % 2 == 1 && constant_extent(stage.domain, 1) >= kMinRows &&
                     2 * elements <= kMaxPartials;
  return split ? 2 : 1;
}

}  // namespace

Halide::Func split_rows(const Halide::Stage& update, const Halide::RDom& domain, int parts,
                        Halide::RVar& rows_inner) {
  const Halide::Expr rows = domain[1].extent();
  const int64_t known_rows = constant_extent(domain, 1);
  const Halide::Expr per_part = known_rows > 0 ? Halide::Expr(int(ceil_div(known_rows, parts)))
                                               : (rows + (parts - 1)) / parts;
  RVar rows_outer("rows_o");
  rows_inner = RVar("rows_i");
  Var part("rows_part");
  Halide::Stage stage = update;
  return stage.split(domain[1], rows_outer, rows_inner, per_part, TailStrategy::GuardWithIf)
      .rfactor(rows_outer, part);
}

std::vector<Knob> cpu_knobs(const Halide::Target& target) {
  // Narrow channels: vectors along the reduction where it is long enough, else tiles of vectors
  // along the positions, win over guarded channel vectors (whose idle lanes NEON, without masked
  // loads, would even leave scalar). Measured on x86 (Xeon, AVX-512, 2 threads): 23 GFLOP/s
  // against 6 for the 3->1 edge layer's backprop_filter, 58 against 1 for conv1's
  // backprop_input, 34-42 against 15-32 for the edge layer's conv2d (one output channel).
  // Register tiles: target_tile() and specialized_tile().
  const Tile isa = target_tile(target);
  const std::string tile = std::to_string(isa.vectors) + " x " + std::to_string(isa.pixels);
  return {
      {"tile_vectors", 0, 8, 0,
       "register tile of a specialized kernel: vectors of output channels (0 with tile_pixels "
       "0: the target's " + tile + ", unless a count of cycles per row favours another by 5%; "
       "else " + std::to_string(isa.vectors) + "); with fewer channels than a vector's lanes, "
       "vectors of positions (0: 4 over all the channels)"},
      {"tile_pixels", 0, 8, 0,
       "register tile of a specialized kernel: output pixels, or filter in-channels (0: as "
       "tile_vectors says; else " + std::to_string(isa.pixels) + "); with fewer channels than a "
       "vector's lanes, output rows (0: 2)"},
      {"vector_multiple", 1, 4, 1,
       "vector width as a multiple of the target's natural float vector (8 on AVX2, 16 on "
       "AVX-512)"},
      {"narrow_channels", 0, 1, 1,
       "when a specialized kernel's channels are fewer than a vector's lanes: 0 = guarded channel "
       "vectors, 1 = vectors along the reduction or else tiles of vectors along the positions"},
      {"block_channel_tiles", 1, 16, 1,
       "accumulator block of a specialized kernel: register tiles along dimension 0 (channels), "
       "the largest divisor of their count up to this; a chunk's packed slice serves them all"},
      {"block_tiles", 0, 64, 0,
       "accumulator block of a specialized kernel: register tiles along dimension 1 (0 = all)"},
      {"block_rows", 0, 64, 0,
       "accumulator block of a specialized kernel: positions along dimension 2, the largest "
       "divisor of its extent up to this (0 = enough for 96 positions)"},
      {"restage", 0, 3, 0,
       "an input read in another order than stored (backprop_input's filter): 1 = restaged "
       "whole, 2 = only packed per chunk, by gathers, 3 = by transposes of lanes x lanes blocks "
       "in registers, 0 = 1 when more than 2 spatial blocks share each channel block, else 2, or "
       "3 where the input's rows are a multiple of 4 KiB apart"},
      {"pack_slices", 0, 2, 2,
       "1 = a specialized kernel copies the slice of the filter (or gradient) that a reduction "
       "chunk loads as vectors into a dense buffer first; 0 = loads it in place, where it is "
       "stored in the order it is read (a filter too large for the cache then streams once); "
       "2 = 1 for a filter gradient, rows 2 KiB apart (512 channels or more) or a forward pass "
       "over 1024 in-channels or more, else 0"},
      {"reduction_vectors", 0, 1, 0,
       "1 = a specialized kernel whose reduction's innermost dimension fills whole vectors "
       "vectorizes it rather than the output channels: tiles of channels x tile_pixels positions "
       "whose sums are added across lanes at the end, the operands read as stored (no restaging)"},
      {"split_parts", 0, 8, 0,
       "a specialized filter gradient's register tile: partial sums over this many parts of the "
       "output rows, computed in parallel like more blocks, then added in order (1 = none; "
       "0 = 2 where the blocks are an odd number and the rows at least 8, else 1)"},
      {"reduction_chunk", 0, 8192, 0,
       "reduction steps (in-channels, or output columns) per pass over an accumulator block: the "
       "largest divisor of the extent up to this, or all of it times whole next dimensions "
       "(filter columns, output rows) while the product stays within this (0 = 1024 for "
       "conv2d and backprop_input, 64 for conv2d over 1024 in-channels or more and for "
       "backprop_filter, 1024 for one of at most 256 output pixels)"},
  };
}

bool tiles_channels(const ReductionStage& stage, const Halide::Target& target,
                    const KnobValues& knobs) {
  return stage.dims.size() == 4 &&
         (stage.extents.empty() || stage.extents[0] >= vector_lanes(target, knobs));
}

void schedule_cpu(const ReductionStage& stage, ReductionKind kind, const Halide::Target& target,
                  const KnobValues& knobs) {
  const int lanes = vector_lanes(target, knobs);
  // A kernel for thin images schedules its operator's reduction its own way, and so does a
  // specialized input gradient of such an image from a deep output gradient (dense_reduction);
  // a filter gradient's bias gradient (a row of channels) runs as in any generic kernel.
  if ((stage.thin || stage.dense_reduction) && stage.dims.size() == 4) {
    if (kind == ReductionKind::taps) {
      schedule_thin(stage, lanes, vector_registers(target));
    } else {
      schedule_thin_filter_gradient(stage, lanes);
    }
    return;
  }
  if (stage.transposed.defined()) transpose_output(stage, lanes);
  auto narrow = [&](size_t d) {
    return d < stage.extents.size() && stage.extents[d] < lanes;
  };
  // A specialized kernel's register tile, its channel vectors dividing the channels exactly; a
  // generic kernel's ladder starts from the knobs' tile. So does a specialized kernel's whose
  // channels no vector divides (40 or 72 of them on AVX-512, as in mobile networks): its tiles
  // then overlap at the end, as a generic kernel's. Guarded vectors of channels, one row of
  // them per accumulator, took such kernels 2-9x the generic kernel's time (Zen 5 EPYC, 2 threads,
  // convgen verify: 28 x 28, 24 -> 40 channels, 3x3, NHWC: forward pass 0.619 ms against 0.153,
  // input gradient 0.939 against 0.099, filter gradient 0.771 against 0.094; 14 x 14, 40 -> 72,
  // 1x1: 0.026-0.071 against 0.018-0.026).
  const Tile knobbed = knob_tile(knobs, target);
  auto ladder = [&] {
    schedule_generic_register_tile(stage, lanes, knobbed.vectors, knobbed.pixels,
                                   kind == ReductionKind::pixels);
  };
  Tile tile{0, knobbed.pixels};
  if (stage.dims.size() == 4 && stage.extents.size() == 4) {
    tile = specialized_tile(stage, knobs, lanes, target);
  }
  const int vectors = tile.vectors;
  const bool reduction_lanes = constant_extent(stage.domain, 0) >= lanes &&
                               constant_extent(stage.domain, 0) % lanes == 0;
  const bool guarded_channels = !narrow(0) || knobs["narrow_channels"] == 0;
  // Zero-padded inputs are computed ahead of the reduction with their border (whole, or per task
  // of rows: pad_at) unless the reduction reads them one element at a time (channel vectors):
  // read in place along a vector, each lane's index would be clamped to the edge, a gather.
  bool stage_padded = true;
  bool planar = false;  // vectors load the padded inputs along their dimension 1
  std::optional<Halide::LoopLevel> pad_at;  // where they go when not whole
  bool restage = true;  // the staged inputs
  bool restage_whole = true;
  // Vectors along the reduction read its operands in their stored order: no restaging. Only
  // whole vectors: a remainder would be a scalar loop. All registers but 4 hold accumulators.
  const int64_t accumulators = vector_registers(target) - 4;
  // A specialized filter gradient's tile may run over partial sums of parts of the rows.
  const int parts = vectors > 0 && kind == ReductionKind::pixels
                        ? partial_sum_parts(stage, knobs, lanes, vectors, tile.pixels)
                        : 1;
  const ReductionStage tiled = parts > 1 ? split_partial_sums(stage, parts, lanes) : stage;
  if (vectors > 0 && knobs["reduction_vectors"] && reduction_lanes) {
    // A tile of channels x positions, each sum a vector along the reduction.
    schedule_reduction_lanes(tiled, lanes, accumulators, tile.pixels);
    restage = false;
  } else if (vectors > 0) {
    const Blocking b = blocking(tiled, kind, knobs, lanes, vectors, tile.pixels);
    schedule_register_tile(tiled, lanes, b);
    restage_whole = b.restage_whole;
  } else if (stage.dims.size() == 4 && (stage.extents.empty() || !narrow(0))) {
    ladder();
  } else if (guarded_channels) {
    if (stage.extents.empty()) {
      // A generic sum of fewer channels than a vector's lanes over a wide reduction (the bias
      // gradient of an edge filter's one channel) along that reduction instead: as one guarded
      // vector of channels, it took the Zen 5 EPYC 0.23 ms per 512 x 512 image, one step of
      // the add's latency per pixel.
      Func output = stage.output, acc = stage.accumulator;
      const Halide::Expr few =
          output.output_buffer().dim(0).extent() < lanes && stage.domain[0].extent() >= lanes;
      sum_along_reduction(acc.update().specialize(few), stage, lanes);
    }
    if (!schedule_parted_sum(stage, lanes)) schedule_channel_vectors(stage, lanes);
    stage_padded = false;
  } else if (reduction_lanes) {
    schedule_reduction_lanes(stage, lanes, accumulators, 1);
    restage = false;
    planar = true;
  } else if (stage.dims.size() > 1 && !narrow(1)) {
    const Tile t = position_tile(stage, knobs);
    pad_at = schedule_position_vectors(stage, lanes, t.vectors, t.pixels);
    planar = true;
  } else if (stage.dims.size() == 4 && multiply_adds(stage) >= kLadderWork) {
    // A specialized output narrower than a vector in both its innermost dimensions (NCHW's
    // columns and rows, of fewer channels than a vector: others run in canonical order,
    // ReductionStage::transposed) that makes enough work: the generic ladder's tiles for narrow
    // outputs (vectors along the reduction where it is long enough). Measured on the Zen 5 EPYC
    // (convgen verify, 2 threads), before NCHW outputs ran in canonical order: an NCHW forward
    // pass of 14 x 15 outputs, 33 -> 50 channels, 3x3 (3.1 M multiply-adds) 0.726 -> 0.222 ms;
    // guarded vectors did better below (the test layers of 20-80 K multiply-adds 1.2-1.4x
    // faster, 8-35 µs: the ladder's tasks and copies cost more than they save there).
    ladder();
  } else {
    schedule_channel_vectors(stage, lanes);  // everything is small: guarded vectors
    stage_padded = false;
  }
  if (stage_padded) {
    for (Staged padded : stage.padded) {
      // A specialized NCHW output of fewer channels than a vector (others run in canonical
      // order) whose register tiles, from a vector of columns on, load vectors along the
      // columns (dimension 1) of the padded inputs, which the generator defines channels first
      // (canonically): stored so, those loads were gathers, one lane at a time. They are stored
      // columns first instead, each row's channels one after the other (storage[0] is then no
      // longer the channels). Measured on the Zen 5 EPYC (2 threads, convgen bench), when every
      // NCHW output ran so: NCHW res2_3x3 (56 x 56, 64 -> 64) forward 12.3 -> 4.0 ms, input
      // gradient 12.6 -> 3.5; res3_3x3 (28 x 28, 128 -> 128) 12.5 -> 4.3 and 12.7 -> 4.6.
      if (!planar && !stage.extents.empty() && stage.extents[0] >= lanes &&
          padded.storage[1].same_as(stage.acc_dims[0])) {
        std::swap(padded.storage[0], padded.storage[1]);
        padded.inner_extent = 0;
        padded.extent = Halide::Expr();
      }
      compute_staged(padded, lanes, planar, pad_at);
    }
  }
  for (const Staged& staged : stage.staged) {
    // A register tile packs the slices of its vector operand as it goes, from the input as
    // stored when it is not restaged whole.
    const bool packed_only = !restage_whole && is_vector_operand(stage, staged);
    if (restage && !packed_only) compute_staged(staged, lanes, false);
  }
}

}  // namespace convgen::schedules
