#include "tool_kernels.h"

#include "convgen_kernels.h"
#if CONVGEN_WITH_CUDA_KERNELS
#include "convgen_cuda_kernels.h"
#endif

const convgen::KernelList& tool_kernels() {
  static const convgen::KernelList kernels = [] {
    convgen::KernelList all = convgen_kernels();
#if CONVGEN_WITH_CUDA_KERNELS
    const convgen::KernelList& cuda = convgen_cuda_kernels();
    all.insert(all.end(), cuda.begin(), cuda.end());
#endif
    return all;
  }();
  return kernels;
}
