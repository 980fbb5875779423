// The naive reference: plain loops straight from SPEC.md's formula, 64-bit indices and double
// accumulation. Slow on purpose; every compiled kernel is tested against it.
//
// Tensors are dense, C order, in the geometry's layout (activations) or HWIO (filters); their sizes
// are those of the geometry (Geometry::input_dims(), output_dims(), filter_dims()).
#pragma once

#include "convgen/geometry.h"

namespace convgen::reference {

// `bias` may be null (no bias).
void conv2d(const Geometry& g, const float* input, const float* filter, const float* bias,
            float* output);
void conv2d_backprop_input(const Geometry& g, const float* filter, const float* out_backprop,
                           float* input_grad);
// `bias_grad` may be null (not wanted).
void conv2d_backprop_filter(const Geometry& g, const float* input, const float* out_backprop,
                            float* filter_grad, float* bias_grad);

}  // namespace convgen::reference
