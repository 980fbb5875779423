#include "HalideRuntime.h"
#include "convgen/convgen.h"

namespace convgen {

// Halide's thread pool only ever grows once started, so a smaller count needs a fresh pool.
int set_num_threads(int threads) {
  halide_shutdown_thread_pool();
  halide_set_num_threads(threads);
  return halide_set_num_threads(threads);
}

}  // namespace convgen
