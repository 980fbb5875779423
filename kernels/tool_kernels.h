// The kernels the convgen tool dispatches from.
#pragma once

#include "convgen/kernel.h"

// The CPU kernels of convgen_kernels (the default shape config and the generic fallbacks), then,
// when convgen is built with CONVGEN_CUDA, the generic CUDA kernels of convgen_cuda_kernels.
const convgen::KernelList& tool_kernels();
