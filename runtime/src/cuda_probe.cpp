#include "cuda_probe.h"

#include <dlfcn.h>

namespace convgen::detail {
namespace {

// The few driver API entry points the probe needs (CUresult is an int; 0 is CUDA_SUCCESS).
using CuInit = int (*)(unsigned);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetAttribute = int (*)(int*, int, int);
using CuDeviceGetName = int (*)(char*, int, int);
constexpr int kComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kComputeCapabilityMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

CudaDevice probe() {
  CudaDevice d;
  // Kept open: Halide's CUDA runtime opens the same library when a kernel first runs.
  void* driver = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!driver) {
    d.refusal = "libcuda.so.1 not found (no NVIDIA driver)";
    return d;
  }
  auto init = reinterpret_cast<CuInit>(::dlsym(driver, "cuInit"));
  auto count = reinterpret_cast<CuDeviceGetCount>(::dlsym(driver, "cuDeviceGetCount"));
  auto get = reinterpret_cast<CuDeviceGet>(::dlsym(driver, "cuDeviceGet"));
  auto attribute = reinterpret_cast<CuDeviceGetAttribute>(::dlsym(driver, "cuDeviceGetAttribute"));
  auto name = reinterpret_cast<CuDeviceGetName>(::dlsym(driver, "cuDeviceGetName"));
  if (!init || !count || !get || !attribute || !name) {
    d.refusal = "libcuda.so.1 lacks the CUDA driver API";
    return d;
  }
  if (const int status = init(0); status != 0) {
    d.refusal = "cuInit failed with CUDA error " + std::to_string(status) +
                (status == 100 ? " (no CUDA-capable device)" : "");
    return d;
  }
  int devices = 0;
  if (count(&devices) != 0 || devices < 1) {
    d.refusal = "the driver reports no CUDA device";
    return d;
  }
  int device = 0, major = 0, minor = 0;
  char text[256] = {};
  if (get(&device, 0) != 0 || attribute(&major, kComputeCapabilityMajor, device) != 0 ||
      attribute(&minor, kComputeCapabilityMinor, device) != 0) {
    d.refusal = "cannot query CUDA device 0";
    return d;
  }
  if (name(text, int(sizeof text) - 1, device) == 0) d.name = text;
  d.capability = major * 10 + minor;
  return d;
}

}  // namespace

const CudaDevice& cuda_device() {
  static const CudaDevice device = probe();
  return device;
}

}  // namespace convgen::detail
