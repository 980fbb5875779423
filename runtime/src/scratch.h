// The allocator of kernels' scratch buffers (scratch.cpp).
#pragma once

namespace convgen {

// Makes Halide allocate every kernel's scratch buffers from convgen's cache of freed blocks.
// Idempotent; done before main() runs, and again by the first Engine made.
void install_scratch_cache();

}  // namespace convgen
