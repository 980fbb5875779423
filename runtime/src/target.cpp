// Which Halide targets this machine can run. Halide's multitarget wrapper picks among the x86
// variants itself; the runtime only has to refuse kernels that cannot run here at all (another
// architecture, a GPU target without a device, an ISA extension this CPU lacks).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "convgen/convgen.h"
#include "cuda_probe.h"

namespace convgen {
namespace {

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(separator, start), text.size());
    parts.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

#if defined(__x86_64__)
constexpr const char* kHostArch = "x86-64";

// Whether this CPU has what an x86 Halide target feature needs. Features that do not constrain the
// CPU (no_runtime, ...) are always met. (__builtin_cpu_supports only takes literal names.)
bool cpu_has(const std::string& feature) {
  if (feature == "sse41") return __builtin_cpu_supports("sse4.1");
  if (feature == "avx" || feature == "f16c") return __builtin_cpu_supports("avx");
  if (feature == "avx2") return __builtin_cpu_supports("avx2");
  if (feature == "fma") return __builtin_cpu_supports("fma");
  if (feature == "avx512") {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd");
  }
  if (feature == "avx512_skylake" || feature == "avx512_cannonlake") {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
  }
  return true;
}
#elif defined(__aarch64__)
constexpr const char* kHostArch = "arm-64";
#else
constexpr const char* kHostArch = "unknown";
#endif

// Why this machine cannot run one (non-multi) target, or "" when it can.
std::string refusal(const std::string& target) {
  if (target == "host" || target.rfind("host-", 0) == 0) return "";  // built for this machine
  const std::vector<std::string> parts = split(target, '-');
  if (parts.size() < 3) return "malformed target " + target;
  const std::string arch = parts[0] + "-" + parts[1];
  if (arch != kHostArch) return "target " + target + " is for " + arch + ", this CPU is " + kHostArch;
  for (size_t i = 3; i < parts.size(); i++) {
    const std::string& feature = parts[i];
    if (feature == "cuda") {
      const detail::CudaDevice& device = detail::cuda_device();
      if (!device.refusal.empty()) {
        return "target " + target + " needs a CUDA device: " + device.refusal;
      }
      continue;
    }
    if (feature.rfind("cuda_capability_", 0) == 0) {
      const int needed = std::atoi(feature.c_str() + 16);
      const int has = detail::cuda_device().capability;
      if (has < needed) {
        return "target " + target + " needs compute capability " + std::to_string(needed / 10) +
               "." + std::to_string(needed % 10) + ", CUDA device 0 (" +
               detail::cuda_device().name + ") has " + std::to_string(has / 10) + "." +
               std::to_string(has % 10);
      }
      continue;
    }
    if (feature == "opencl" || feature == "metal" || feature == "vulkan" ||
        feature == "d3d12compute" || feature == "openglcompute") {
      return "target " + target + " needs a " + feature + " device, which this runtime cannot use";
    }
#if defined(__x86_64__)
    if (!cpu_has(feature)) return "target " + target + " needs " + feature + ", which this CPU lacks";
#endif
  }
  return "";
}

}  // namespace

std::string cuda_refusal() { return detail::cuda_device().refusal; }

bool runs_on_gpu(std::string_view targets) {
  for (const std::string& target : split(targets, ',')) {
    for (const std::string& feature : split(target, '-')) {
      if (feature == "cuda") return true;
    }
  }
  return false;
}

std::string target_refusal(std::string_view targets) {
  std::string reasons;
  for (const std::string& target : split(targets, ',')) {
    const std::string why = refusal(target);
    if (why.empty()) return "";
    reasons += (reasons.empty() ? "" : "; ") + why;
  }
  return reasons;
}

}  // namespace convgen
