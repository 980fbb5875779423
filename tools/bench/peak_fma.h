// The measured peak fp32 FMA throughput of this machine, the 100% of `convgen bench`'s "% of
// peak": each thread runs a loop of independent vector FMAs (enough accumulators to cover the FMA
// latency on every FMA port) with the widest vectors the CPU has.
#pragma once

#include <string>

namespace convgen::tools::bench {

struct PeakFma {
  std::string isa;   // "AVX-512", "AVX2+FMA", "NEON" or "scalar"
  int accumulators;  // independent vector accumulators per thread
  double gflops;     // fp32 GFLOP/s of all threads together, an FMA counted as 2 FLOPs
};

// The best of `trials` trials of `threads` threads (std::thread) running the loop at once, each
// about `trial_seconds` long. Short trials, many of them, find the quiet moments of a busy machine,
// as the short samples of the kernels do.
PeakFma measure_peak_fma(int threads, int trials = 10, double trial_seconds = 0.02);

}  // namespace convgen::tools::bench
