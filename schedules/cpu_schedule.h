// The CPU schedule shared by every operator and every CPU target. The ISA only changes the vector
// width (Halide's natural vector size for the target) and the knobs' values, never the schedule body.
#pragma once

#include <vector>

#include "Halide.h"
#include "knobs.h"

namespace convgen::schedules {

// One reduction stage and the kernel output it feeds.
struct ReductionStage {
  Halide::Func output;                 // the kernel's output, in the user's layout
  std::vector<Halide::Var> dims;       // its vars, innermost (contiguous in memory) first
  Halide::Func accumulator;            // the reduction, computed per output tile
  std::vector<Halide::Var> acc_dims;   // the accumulator's vars matching `dims`, in the same order
  Halide::RDom domain;                 // the accumulator's reduction domain
};

// The knobs of the CPU schedule, with their ranges and defaults.
const std::vector<Knob>& cpu_knobs();

// Vectorizes the contiguous dimension (any extent: the tail is guarded, not scalarized per element),
// computes the accumulator per output row of vectors so it stays in registers, and runs rows in
// parallel. The reduction runs in a fixed order inside one thread, so results do not depend on the
// thread count.
void schedule_cpu(const ReductionStage& stage, const Halide::Target& target, const KnobValues& knobs);

}  // namespace convgen::schedules
