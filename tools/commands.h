// The subcommands of `convgen`. Each takes its own name as argv[0] and its options after it, prints
// its results on stdout, and returns the exit status; errors are thrown as convgen::Error and
// reported by main().
#pragma once

namespace convgen::tools {

// convgen run: one operator on .npy files, with TensorFlow's argument names (SPEC.md).
int run_command(int argc, char** argv);

// convgen verify: every layer and operator of a shape config, compiled kernel against the
// reference.
int verify_command(int argc, char** argv);

// convgen generate: a shape config in, a static library of specialized and generic kernels out.
int generate_command(int argc, char** argv);

// convgen bench: every layer and operator of a shape config, convgen's kernels against oneDNN,
// im2col + OpenBLAS and the reference, timed side by side.
int bench_command(int argc, char** argv);

// convgen tune: searches the schedules of a shape config's layers and records the best in a
// schedule database that convgen generate reads.
int tune_command(int argc, char** argv);

}  // namespace convgen::tools
