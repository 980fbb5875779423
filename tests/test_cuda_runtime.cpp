// CUDA kernels on a machine without a CUDA device (the usual CI machine): the Engine never
// dispatches to one, explain() says why, a dispatch restricted to CUDA is refused with that
// reason, and `convgen run --target cuda` fails with a clear message while the CPU path still
// works. On a machine with a device the device-less expectations are skipped, and say so.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "cli_helpers.h"
#include "convgen/convgen.h"

#ifndef CONVGEN_EXE
#error "CONVGEN_EXE must be defined as the path of the built convgen binary"
#endif

namespace convgen::testing {
namespace {

#if defined(__aarch64__)
constexpr const char* kCudaTarget = "arm-64-linux-cuda-cuda_capability_80";
#else
constexpr const char* kCudaTarget = "x86-64-linux-cuda-cuda_capability_80";
#endif

// Entry points that must never run: the kernel lists below only exercise dispatch.
int cuda_entry_must_not_run(const KernelArgs&) {
  FAIL_CHECK("the Engine ran a CUDA kernel on a machine without a CUDA device");
  return -1;
}
int cpu_entry(const KernelArgs&) { return 0; }

// A generic CUDA kernel and a generic CPU kernel of conv2d NHWC, the CUDA one first.
KernelList mixed_list() {
  return {
      {"fake_conv2d__generic_nhwc__cuda", Op::conv2d, DataFormat::NHWC, "", kCudaTarget,
       &cuda_entry_must_not_run},
      {"fake_conv2d__generic_nhwc", Op::conv2d, DataFormat::NHWC, "", "host", &cpu_entry},
  };
}

Geometry small_geometry() {
  const Attributes a =
      Attributes::from_tensorflow(DataFormat::NHWC, {1, 1, 1, 1}, Padding::SAME, {}, {});
  return Geometry::make({1, 4, 4, 2}, {3, 3, 2, 3}, a);
}

std::string verdict_for(const Explanation& e, std::string_view name) {
  for (const Explanation::Candidate& c : e.candidates) {
    if (c.kernel->name == name) return c.verdict;
  }
  FAIL_CHECK("the explanation lists no kernel " << name);
  return "";
}

bool device_present() {
  if (cuda_refusal().empty()) {
    WARN("a CUDA device is present: the device-less expectations are skipped");
    return true;
  }
  return false;
}

TEST_CASE("cuda: CUDA targets run on the GPU", "[unit][cuda_runtime]") {
  CHECK(runs_on_gpu(kCudaTarget));
  CHECK(runs_on_gpu("x86-64-linux-sse41,x86-64-linux-cuda"));
  CHECK_FALSE(runs_on_gpu("x86-64-linux-avx2-fma-f16c"));
  CHECK_FALSE(runs_on_gpu("host"));
}

TEST_CASE("cuda: without a device the Engine never chooses a CUDA kernel", "[unit][cuda_runtime]") {
  if (device_present()) return;
  CHECK_THAT(cuda_refusal(), Catch::Contains("libcuda.so.1") || Catch::Contains("device"));
  CHECK_THAT(target_refusal(kCudaTarget), Catch::Contains("needs a CUDA device"));
  const KernelList kernels = mixed_list();
  const Geometry g = small_geometry();

  const Engine engine(kernels);
  CHECK(engine.select(Op::conv2d, g).name == "fake_conv2d__generic_nhwc");
  const Explanation e = engine.explain(Op::conv2d, g);
  REQUIRE(e.chosen);
  CHECK(e.chosen->name == "fake_conv2d__generic_nhwc");
  const std::string why = verdict_for(e, "fake_conv2d__generic_nhwc__cuda");
  CHECK_THAT(why, Catch::Contains("needs a CUDA device") && Catch::Contains(cuda_refusal()));
  // The CPU kernel runs (and the CUDA entry point is never called).
  std::vector<float> x(32), w(54), y(48);
  engine.conv2d(g, x.data(), w.data(), nullptr, y.data());
}

TEST_CASE("cuda: a dispatch restricted to CUDA is refused without a device",
          "[unit][cuda_runtime]") {
  if (device_present()) return;
  const KernelList kernels = mixed_list();
  const Geometry g = small_geometry();
  const Engine engine(kernels, Device::cuda);
  const Explanation e = engine.explain(Op::conv2d, g);
  CHECK_FALSE(e.chosen);
  CHECK_THAT(verdict_for(e, "fake_conv2d__generic_nhwc"), Catch::Contains("restricted to CUDA"));
  CHECK_THAT(e.to_string(), Catch::Contains("no kernel can run this call"));
  try {
    engine.select(Op::conv2d, g);
    FAIL("select() chose a kernel");
  } catch (const Error& error) {
    CHECK(error.id() == ErrorId::unsupported);
  }
  std::vector<float> x(32), w(54), y(48);
  CHECK_THROWS_AS(engine.conv2d(g, x.data(), w.data(), nullptr, y.data()), Error);
}

TEST_CASE("cuda: a dispatch restricted to the CPU passes CUDA kernels over",
          "[unit][cuda_runtime]") {
  const KernelList kernels = mixed_list();
  const Engine engine(kernels, Device::cpu);
  const Explanation e = engine.explain(Op::conv2d, small_geometry());
  REQUIRE(e.chosen);
  CHECK(e.chosen->name == "fake_conv2d__generic_nhwc");
  CHECK_THAT(verdict_for(e, "fake_conv2d__generic_nhwc__cuda"),
             Catch::Contains("restricted to the CPU"));
}

// `convgen run` on small .npy files, with each --target.
struct RunFiles {
  TempDir dir;
  std::vector<std::string> args;
  RunFiles() {
    write_test_npy(dir / "x.npy", {1, 6, 5, 3}, 1);
    write_test_npy(dir / "w.npy", {3, 3, 3, 4}, 2);
    args = {"run",      "--op",        "conv2d",     "--input", dir / "x.npy",
            "--filter", dir / "w.npy", "--strides",  "1,1,1,1", "--padding",
            "SAME",     "--output",    dir / "y.npy"};
  }
  CommandResult run(const std::vector<std::string>& extra) const {
    std::vector<std::string> all = args;
    all.insert(all.end(), extra.begin(), extra.end());
    return run_program(CONVGEN_EXE, all);
  }
};

TEST_CASE("cuda: convgen run --target cuda fails cleanly without a device", "[cli][cuda_runtime]") {
  if (device_present()) return;
  const RunFiles files;
  const CommandResult r = files.run({"--target", "cuda"});
  CHECK(r.exited);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("--target") && Catch::Contains("cannot run CUDA kernels") &&
                        Catch::Contains(cuda_refusal()));
  CHECK(files.dir.entries() == std::set<std::string>{"x.npy", "w.npy"});  // no output file
}

TEST_CASE("cuda: convgen run --target cpu and auto run on the CPU", "[cli][cuda_runtime]") {
  const RunFiles files;
  for (const char* target : {"cpu", "auto"}) {
    const CommandResult r = files.run({"--target", target});
    INFO("--target " << target << ": " << r.err);
    CHECK(r.exited);
    CHECK(r.exit_code == 0);
    CHECK(files.dir.entries().count("y.npy") == 1);
  }
  const CommandResult bad = files.run({"--target", "gpu"});
  CHECK(bad.exit_code != 0);
  CHECK_THAT(bad.err, Catch::Contains("--target") && Catch::Contains("auto, cpu or cuda"));
}

TEST_CASE("cuda: convgen run --explain --target cuda gives each kernel's verdict",
          "[cli][cuda_runtime]") {
  if (device_present()) return;
  const RunFiles files;
  const CommandResult r = files.run({"--target", "cuda", "--explain"});
  CHECK(r.exited);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("no kernel can run this call") &&
                        Catch::Contains("restricted to CUDA"));
  // With the CUDA kernels built into the tool, their verdict names the missing device.
  const CommandResult any = files.run({"--explain"});
  CHECK(any.exit_code == 0);
  if (any.out.find("__cuda") != std::string::npos ||
      any.out.find("needs a CUDA device") != std::string::npos) {
    CHECK_THAT(any.out, Catch::Contains("needs a CUDA device"));
  }
}

}  // namespace
}  // namespace convgen::testing
