// The thread pool that kernels' parallel loops run on (threads.cpp).
#pragma once

namespace convgen {

// Makes Halide run every kernel's parallel loops on convgen's thread pool. Idempotent; the first
// Engine made calls it, as does set_num_threads().
void install_thread_pool();

}  // namespace convgen
