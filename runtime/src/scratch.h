// The allocator of kernels' scratch buffers (scratch.cpp).
#pragma once

namespace convgen {

// Makes Halide allocate every kernel's scratch buffers from convgen's cache of freed blocks.
// Idempotent; done before main() runs. Every BoundCall calls it too, which also links the cache
// into any program that runs a kernel.
void install_scratch_cache();

}  // namespace convgen
