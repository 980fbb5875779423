// convgen's C++ API: run the three operators on tensors in the user's layout, with the best compiled
// kernel of a kernel list, or with the naive reference.
//
//   convgen::Geometry g = convgen::Geometry::make(input_shape, filter_shape, attributes);
//   convgen::Engine engine(my_kernels());
//   engine.conv2d(g, x, w, bias, y);
#pragma once

#include "convgen/error.h"
#include "convgen/geometry.h"
#include "convgen/kernel.h"
#include "convgen/receptive_field.h"
#include "convgen/reference.h"

namespace convgen {

// Dispatches each call to a kernel of `kernels`: one specialized for exactly the call's geometry if
// the list has it, else a generic one for the layout. Holds no mutable state: one Engine may serve
// any number of threads.
class Engine {
 public:
  explicit Engine(const KernelList& kernels) : kernels_(&kernels) {}

  // The kernel that runs `op` on `g`; throws ErrorId::unsupported when the list has none.
  const Kernel& select(Op op, const Geometry& g) const;

  // Tensors are dense and C-ordered with the geometry's sizes, as in convgen::reference. `bias` and
  // `bias_grad` may be null.
  void conv2d(const Geometry& g, const float* input, const float* filter, const float* bias,
              float* output) const;
  void conv2d_backprop_input(const Geometry& g, const float* filter, const float* out_backprop,
                             float* input_grad) const;
  void conv2d_backprop_filter(const Geometry& g, const float* input, const float* out_backprop,
                              float* filter_grad, float* bias_grad) const;

 private:
  const KernelList* kernels_;
};

}  // namespace convgen
