// Ahead-of-time kernel generation: from a shape config to one static library of kernels, each with
// its layer's geometry baked in, plus generic fallbacks, and the generated kernel list that the
// runtime dispatches from. `convgen generate` and the CMake function convgen_add_kernels() both run
// this code.
//
// In the output folder:
//   lib<library>.a          every kernel (each a Halide multitarget object when several targets are
//                           given) and one Halide runtime
//   <library>.h, .cpp       the kernel list: `const convgen::KernelList& <library>();`
//   kernels/<kernel>/       each kernel's Halide header, objects, generator log and build stamp
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "convgen/schedule_db.h"
#include "convgen/shape_config.h"

namespace convgen::codegen {

// Target names understood besides plain Halide target strings:
//   "x86-64"  one multitarget library: AVX-512 (Skylake), AVX2+FMA, SSE4.1 baseline
//   "host"    the machine that runs the generator
//   "cuda"    NVIDIA GPUs from sm_80 (A100; the PTX also assembles for sm_86 and sm_90) driven
//             from an x86-64 Linux host: x86-64-linux-cuda-cuda_capability_80
std::vector<std::string> expand_targets(const std::vector<std::string>& names,
                                        const std::string& argument);

struct Options {
  std::string library = "convgen_kernels";  // names the archive and the kernel-list function
  std::vector<Layer> layers;                // from the shape config; may be empty
  std::vector<DataFormat> generic_formats;  // layouts that get generic kernels
  std::vector<std::string> targets;         // expanded Halide target strings
  std::string out_dir;
  std::string generator;  // the convgen_generators executable
  std::vector<std::string> review_outputs;  // extra Halide outputs for review: "stmt", "assembly"
  int jobs = 1;
  // Tuned schedules: a specialized kernel is generated, for each of its targets, with that
  // target's entry for its operator and shape, if any (see schedule_db.h); a schedule the
  // generator refuses (e.g. an entry older than the schedule's knobs) falls back to the defaults
  // with a warning.
  ScheduleDatabase schedules;
};

// One kernel to build.
struct KernelPlan {
  std::string name;  // also its C function name
  Op op;
  DataFormat format;
  std::string shape_key;  // empty for a generic kernel
  std::string layer;      // the first layer that asked for it; empty for generic kernels
  // Its tuned schedules (in Options::schedules), those of its targets that have one, in the
  // targets' order.
  std::vector<const ScheduleEntry*> schedules = {};
  FilterLayout filter = FilterLayout::hwio;  // blocked: the kernel for packed filters
  Thin thin = Thin::none;  // a generic kernel for thin images (Kernel::thin)
};

// The kernels a generation builds: every (layer, op) once per distinct geometry, and for a layer
// with `packed_filter` a second kernel for packed filters (CPU targets, when the geometry takes
// one: takes_blocked_filter), then the generic kernels (on CPUs, with NHWC, also those for thin
// outputs: Kernel::thin). Validates the library name (a C identifier) and the layers' operators.
std::vector<KernelPlan> plan(const Options& options);

struct Outputs {
  std::string archive, list_header, list_source;
};
Outputs outputs(const Options& options);

struct KernelReport {
  KernelPlan kernel;
  double seconds = 0;  // generator time; 0 when up to date
  bool rebuilt = false;
  bool tuned = false;  // built with its schedule database entry
  int64_t bytes = 0;   // size of the kernel's objects
};

// The generator's arguments that select a kernel's tuned schedules: Halide's autoscheduler when
// the first entry names one, else the schedule_record (each target's knob values, written to
// `record_path`).
std::vector<std::string> schedule_arguments(const std::vector<const ScheduleEntry*>& entries,
                                            const std::string& record_path);

// The convgen_generators executable: `explicit_path` when not empty, else $CONVGEN_GENERATOR, else
// beside the running program (a build tree), else in the installed libexec folder. Throws
// ErrorId::unsupported naming --generator when there is none.
std::string find_generator(const std::string& explicit_path);

// Where the tuned knob values of the kernel built into `dir` are written for its generator
// (beside the folder, which a build empties).
std::string record_path(const std::string& dir);

// The generator command that builds `kernel` into `dir`, with its tuned schedule when `tuned`
// (whose knob values the caller writes to record_path(dir)).
std::vector<std::string> generator_command(const Options& options, const KernelPlan& kernel,
                                           const std::string& dir, bool tuned);

// Runs `argv` with stdout and stderr going to the file `log`; returns the exit status (-1: not
// started; kTimedOut: killed after `timeout_s` seconds, when positive). And the last lines of such
// a log, on one line, for an error message.
constexpr int kTimedOut = -2;
int run_logged(const std::vector<std::string>& argv, const std::string& log,
               double timeout_s = 0);
std::string log_tail(const std::string& log);

// Builds what changed (a kernel whose generator command and generator executable are unchanged is
// not rebuilt), writes the archive and the kernel list, and prints progress to `progress`.
std::vector<KernelReport> generate(const Options& options, std::ostream& progress);

}  // namespace convgen::codegen
