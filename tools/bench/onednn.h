// oneDNN as a peer of `convgen bench`: the same operator, fp32, activations in the layer's layout,
// oneDNN's direct convolution. Optional at build time (CONVGEN_HAVE_ONEDNN); without it every
// function here says so.
#pragma once

#include <memory>
#include <string>

#include "bench/problem.h"

namespace convgen::tools::bench {

// How the filter is laid out for oneDNN.
enum class OnednnWeights {
  any,   // oneDNN's preferred (blocked) format; the reorder from and to HWIO is not timed
  hwio,  // convgen's HWIO, as the user holds it
};

// Whether this build has oneDNN.
bool onednn_built();
// The library and its threading, e.g. "oneDNN 2.6.3 (CPU runtime OpenMP)", or why there is none.
std::string onednn_about();
// Sets the threads oneDNN's CPU runtime uses on the calling thread and returns the count it
// reports back (1 for a sequential runtime; 0 when it cannot be told).
int onednn_set_threads(int threads);

// oneDNN's primitive for `problem` (forward inference, backward data, or backward weights with the
// bias gradient), its memory bound to the problem's inputs and to outputs of its own, the weights
// reordered once when `weights` is any. `name` receives oneDNN's implementation name (e.g.
// "brg:avx512_core"). Throws convgen::Error(unsupported) when oneDNN is not built in or refuses
// the problem.
std::unique_ptr<Implementation> make_onednn(const Problem& problem, OnednnWeights weights,
                                            std::string* name);

}  // namespace convgen::tools::bench
