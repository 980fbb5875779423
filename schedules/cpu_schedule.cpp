#include "cpu_schedule.h"

namespace convgen::schedules {

using Halide::TailStrategy;
using Halide::Var;
using Halide::VarOrRVar;

const std::vector<Knob>& cpu_knobs() {
  static const std::vector<Knob> knobs = {
      {"vector_multiple", 1, 4, 1,
       "vector width as a multiple of the target's natural float vector (8 on AVX2, 16 on AVX-512)"},
  };
  return knobs;
}

void schedule_cpu(const ReductionStage& stage, const Halide::Target& target, const KnobValues& knobs) {
  const int lanes = target.natural_vector_size<float>() * knobs["vector_multiple"];
  Halide::Func output = stage.output;
  Halide::Func acc = stage.accumulator;
  const Var& inner = stage.dims[0];
  const Var& acc_inner = stage.acc_dims[0];

  Var inner_o("inner_o"), inner_i("inner_i");
  output.split(inner, inner_o, inner_i, lanes, TailStrategy::GuardWithIf).vectorize(inner_i);
  if (stage.dims.size() == 4) {
    // Rows of the two outermost dimensions (height and batch, or filter rows and columns) are the
    // independent units of parallel work.
    Var rows("rows");
    output.fuse(stage.dims[2], stage.dims[3], rows).parallel(rows);
    acc.compute_at(output, stage.dims[1]);
  } else {
    acc.compute_at(output, inner_o);
  }

  acc.vectorize(acc_inner, lanes, TailStrategy::GuardWithIf);
  Var acc_o("acc_o"), acc_i("acc_i");
  std::vector<VarOrRVar> order = {acc_i};
  for (int d = 0; d < stage.domain.dimensions(); d++) {
    order.emplace_back(stage.domain[d]);
  }
  order.emplace_back(acc_o);
  acc.update()
      .split(acc_inner, acc_o, acc_i, lanes, TailStrategy::GuardWithIf)
      .vectorize(acc_i)
      .reorder(order);
}

}  // namespace convgen::schedules
