// im2col + sgemm with OpenBLAS as a peer of `convgen bench`: the textbook fast convolution
// (forward only, NHWC). The input patches are copied into a matrix of N*Ho*Wo rows and R*S*C
// columns -- inside the timing: it is part of the method -- which one cblas_sgemm multiplies by the
// HWIO filter, an (R*S*C) x K matrix as it lies in memory. Optional at build time
// (CONVGEN_HAVE_OPENBLAS); without it every function here says so.
#pragma once

#include <memory>
#include <string>

#include "bench/problem.h"

namespace convgen::tools::bench {

// Whether this build has OpenBLAS.
bool openblas_built();
// The library and its build, e.g. "OpenBLAS 0.3.21 (... SkylakeX MAX_THREADS=64)", or why there is
// none.
std::string openblas_about();
// Sets OpenBLAS's thread count and returns the count it reports back (0 without OpenBLAS).
int openblas_set_threads(int threads);

// The method for a conv2d problem in NHWC. Throws convgen::Error(unsupported) for another operator
// or layout, or without OpenBLAS. A 1x1 filter with stride 1 and no padding skips the copy: the
// input already is the matrix.
std::unique_ptr<Implementation> make_im2col_openblas(const Problem& problem);

}  // namespace convgen::tools::bench
