// Whether this process can use a CUDA device. convgen does not link the CUDA driver (a program
// built with CUDA kernels must still start, and run its CPU kernels, on a machine without one), so
// the probe opens libcuda.so.1 at run time, like Halide's own CUDA runtime does.
#pragma once

#include <string>

namespace convgen::detail {

struct CudaDevice {
  std::string refusal;  // why no CUDA kernel can run here; empty when device 0 is usable
  std::string name;     // device 0
  int capability = 0;   // device 0's compute capability, major * 10 + minor (80 = sm_80)
};

// Probed once per process, on first use (thread-safe), and immutable afterwards.
const CudaDevice& cuda_device();

}  // namespace convgen::detail
