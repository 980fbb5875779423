// The CUDA kernel suite's entry: it needs a CUDA device, so without one it says why and exits 77,
// which CTest reports as skipped (SKIP_RETURN_CODE), not passed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <iostream>

#include "convgen/convgen.h"

int main(int argc, char** argv) {
  const std::string why = convgen::cuda_refusal();
  if (!why.empty()) {
    std::cout << "skipped: the CUDA kernels need a CUDA device: " << why << "\n";
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
