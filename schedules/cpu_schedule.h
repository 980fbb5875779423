// The CPU schedule shared by every operator and every CPU target. The ISA only changes the vector
// width (Halide's natural vector size for the target) and the knobs' values, never the schedule
// body.
#pragma once

#include <cstdint>
#include <vector>

#include "Halide.h"
#include "knobs.h"

namespace convgen::schedules {

// An input the accumulator reads in another order than the user stores it (the filter of
// backprop_input, read along its in-channels): the schedule computes it once, whole, stored in
// `storage` order (innermost first), so that the inner loop's loads are contiguous.
struct Staged {
  Halide::Func func;
  std::vector<Halide::Var> storage;
  int64_t inner_extent = 0;  // the extent of storage[0] when a specialized kernel knows it, else 0
  // The elements of one row (storage[0] x storage[1]); undefined when unknown. Computed whole,
  // rows go to parallel tasks of about kTaskElements elements, not one each.
  Halide::Expr row_elements;
  // When `func` is a copy of an input in another order (a transposition): that input, which the
  // schedule then loads in its own order, in blocks of lanes x lanes transposed in registers.
  Halide::Func source;
  // When `func` pads an input that stores its channels innermost (NHWC): that input. A schedule
  // that deinterleaves a few channels into planes copies each of its rows first (see
  // compute_staged()).
  Halide::Func interleaved;
  // A generic kernel's run-time extent of storage[0] (a padded input's channels); undefined
  // where the kernel knows it.
  Halide::Expr extent;
  // A generic kernel's for thin images (ReductionStage::thin): the run-time distance between the
  // columns of the NHWC input `func` pads (its channel count, as the runtime passes tensors);
  // undefined elsewhere.
  Halide::Expr column_stride;
  static constexpr int kTaskElements = 16384;
};

// One reduction stage and the kernel output it feeds.
struct ReductionStage {
  Halide::Func output;                // the kernel's output, in the user's layout
  std::vector<Halide::Var> dims;      // its vars, innermost (contiguous in memory) first
  std::vector<int64_t> extents;       // their extents when the kernel is specialized; else empty
  Halide::Func accumulator;           // the reduction, computed per output tile
  std::vector<Halide::Var> acc_dims;  // the accumulator's vars matching `dims`, in the same order
  Halide::RDom domain;                // the accumulator's reduction domain
  std::vector<Staged> staged;         // inputs to restage before the reduction runs
  // Inputs extended with zeros past their edges (BoundaryConditions::constant_exterior): a schedule
  // may compute them once, whole with their border, so that the reduction reads them unchecked.
  // (A specialized kernel whose reads stay inside an input reads it in place and has none.)
  std::vector<Staged> padded;
  // The input the register tile loads as vectors along dimension 0 (the filter, or the output
  // gradient of a filter gradient), the dimension it loads them along first; func undefined when
  // none is.
  Staged vector_operand;
  // Conditions on a generic kernel's scalar inputs, each a parameter equal to a constant, under
  // which the reduction simplifies (backprop_input's unit strides drop its predicate): the
  // schedule compiles the reduction once more for when they all hold.
  std::vector<Halide::Expr> common_case;
  // Per var of acc_dims, the constant period with which the reduction's predicate repeats along
  // it (Reduction::period); empty when it has none, or when the period is known only at run time.
  std::vector<int64_t> period;
  // A condition on a generic kernel's scalar inputs, a parameter equal to a constant, under which
  // the predicate repeats every 2 positions of dimension 1 (backprop_input's column stride of 2):
  // the schedule compiles the reduction once more, each register tile in positions of one phase.
  // Undefined when there is none.
  Halide::Expr period_two;
  // A condition on a generic kernel's scalar inputs under which it reads consecutive columns of
  // its padded inputs for consecutive output columns (a unit column stride), and its other
  // input's consecutive columns where it sums over them (a filter gradient's output gradient of
  // one channel); undefined when none is known.
  Halide::Expr unit_columns;
  // When `output` is not the kernel's output but its values in canonical order (channels
  // innermost, `dims` the accumulator's own), and the kernel's output stores them in another
  // (NCHW): that output and its vars, innermost first. The schedule computes `output` whole and
  // transposes it. Undefined otherwise.
  Halide::Func transposed;
  std::vector<Halide::Var> transposed_dims;
  // Whether the stage is a generic kernel's for thin images (NHWC): a kernel of its own. A forward
  // pass's or input gradient's accumulator stores positions first, its tiles vectors of positions
  // over all of 3 channels or one (or, with dense_reduction, all of them by positions, vectors
  // along the reduction); a filter gradient's sums run along the columns, in parts of the rows
  // (schedule_cpu()).
  bool thin = false;
  // Whether the reduction's innermost dimension lies contiguous in both of its operands (an input
  // gradient of a thin image from a deep output gradient, Thin::deep, generic or specialized: its
  // filter read in place along the out-channels, as HWIO stores them, and its padded output
  // gradient stored channels innermost): the kernel then sums along it where it is a vector long
  // or more.
  bool dense_reduction = false;
};

// What a reduction sums over, which decides how it is parallelized.
enum class ReductionKind {
  taps,    // every output pixel sums over filter taps and channels (conv2d, backprop_input)
  pixels,  // every output sums over all output pixels (backprop_filter, the bias gradient)
};

// The rows of a reduction over output pixels (`domain`: columns, rows, batch) split into `parts`
// parts, each summed on its own (rfactor): returns the partial sums, whose last dimension is the
// part, and sets `rows_inner` to the rows of a part. `update` then adds the parts in order, so
// the sum does not depend on how many threads (or thread blocks) computed them. Shared by the
// CPU and CUDA schedules.
Halide::Func split_rows(const Halide::Stage& update, const Halide::RDom& domain, int parts,
                        Halide::RVar& rows_inner);

// The knobs of the CPU schedule, with their ranges and defaults for `target`.
std::vector<Knob> cpu_knobs(const Halide::Target& target);

// Whether schedule_cpu() runs `stage` as register tiles of vectors of dimension 0 (channels):
// a generic stage's ladder of them, or a specialized stage with a vector of channels or more.
bool tiles_channels(const ReductionStage& stage, const Halide::Target& target,
                    const KnobValues& knobs);

// A specialized kernel whose channels fill whole vectors runs a register tile (vectors of channels
// x output positions, accumulators in registers) over an accumulator block in the L1 cache, the
// reduction in chunks: per chunk, the slice of the vector operand it reads is packed and every tile
// of the block runs over it; zero-padded inputs are computed once, so that no read checks bounds;
// blocks run in parallel. A generic kernel runs the same register tile, unblocked, in a ladder of
// specializations on the run-time extents, and fewer channels than a vector's lanes as vectors
// along the reduction (when it is that wide) or the positions. Otherwise the contiguous dimension
// is vectorized (any extent: the tail is guarded, not scalarized per element) with the accumulator
// per output row of vectors, rows in parallel; a specialized kernel whose contiguous dimension is
// narrower than a vector (a 3->1 edge filter) may instead vectorize the reduction itself (per-lane
// partial sums added in a fixed order) when it is long enough, else the next dimension: knob
// narrow_channels. A specialized filter gradient's tile may run over partial sums of parts of the
// output rows (knob split_parts), more blocks to run in parallel, then add them in order. The
// reduction order never depends on the thread count, so results are bitwise reproducible.
void schedule_cpu(const ReductionStage& stage, ReductionKind kind, const Halide::Target& target,
                  const KnobValues& knobs);

}  // namespace convgen::schedules
