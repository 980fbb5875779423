// The CUDA schedule shared by every operator (Halide targets with the `cuda` feature). Like the CPU
// schedule it only orders the loops of the one algorithm (generators/conv2d_algorithm.h); the
// knobs below are its tunables.
//
// A thread block computes one tile of the output: `lanes` threads across the channel dimension
// (consecutive channels in consecutive lanes, so filter and gradient reads coalesce) times
// `thread_rows` threads across the next dimension (output pixels; in channels for a filter
// gradient). Each thread accumulates a register tile of `lane_regs` x `pixel_regs` outputs over the
// whole reduction. The reduction's innermost dimension runs in chunks of `reduce_chunk`: per chunk,
// the block stages the operand tiles it reads in shared memory, then every thread runs the chunk
// from there, unrolled.
//
// backprop_filter (and the bias gradient) reduce over every output pixel, a long reduction into a
// small output. The rows are split into `split_parts` parts whose partial sums are computed in
// parallel and then added in a fixed order by a second kernel: no atomics, so results are bitwise
// reproducible (cuDNN's fastest backward-filter algorithms are not).
#pragma once

#include <vector>

#include "Halide.h"
#include "cpu_schedule.h"  // ReductionStage, ReductionKind, split_rows
#include "knobs.h"

namespace convgen::schedules {

// The knobs of the CUDA schedule, with their ranges and defaults for `target`.
std::vector<Knob> cuda_knobs(const Halide::Target& target);

// Schedules `stage` for the GPU. Every stage that launches a kernel prints one line
// "convgen-cuda-kernel <func> threads <n>" on stdout (the generator's log): the block size it
// launches, which tools/ptx_report.py checks the kernel's register use against.
void schedule_cuda(const ReductionStage& stage, ReductionKind kind, const Halide::Target& target,
                   const KnobValues& knobs);

}  // namespace convgen::schedules
