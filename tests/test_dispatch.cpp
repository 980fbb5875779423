// How the Engine dispatches: for every layer of tests/configs/test_layers.json the kernel
// specialized for it is chosen, a geometry that differs in any one field falls back to the generic
// kernel of its layout, a kernel this CPU cannot run is passed over, and explain() says why for
// each kernel. Also which Halide target strings this machine can run, and that the specialized and
// the generic kernel of each test layer both agree with the reference on it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "convgen/convgen.h"
#include "convgen/shape_config.h"
#include "convgen_test_kernels.h"
#include "kernel_tester.h"

#ifndef CONVGEN_TEST_LAYERS
#error "CONVGEN_TEST_LAYERS must be defined as the path of tests/configs/test_layers.json"
#endif

namespace convgen::testing {
namespace {

// A target string for another architecture than this machine's.
#if defined(__aarch64__)
constexpr const char* kForeignTarget = "x86-64-linux";
constexpr const char* kForeignArch = "x86-64";
#else
constexpr const char* kForeignTarget = "arm-64-linux";
constexpr const char* kForeignArch = "arm-64";
#endif

const ShapeConfig& test_layers() {
  static const ShapeConfig config = read_shape_config(CONVGEN_TEST_LAYERS);
  return config;
}

// The kernel of `list` for `op` in `format` whose shape key is `key` ("" for the generic one), or
// null.
// (A KernelList that the test may change gives a Kernel it may change.)
template <typename List>
auto find_kernel(List& list, Op op, DataFormat format, std::string_view key) -> decltype(&list[0]) {
  for (auto& kernel : list) {
    if (kernel.op == op && kernel.format == format && kernel.shape_key == key) return &kernel;
  }
  return nullptr;
}

// The generic kernel of `list` that the Engine prefers for `op` on `g`: the one for thin images
// where the images are thin (thin_images()), else the one for any shape; or null.
template <typename List>
auto generic_kernel(List& list, Op op, const Geometry& g) -> decltype(&list[0]) {
  for (auto& kernel : list) {
    if (kernel.op == op && kernel.format == g.format() && kernel.shape_key.empty() &&
        kernel.thin == thin_images(op, g)) {
      return &kernel;
    }
  }
  return nullptr;
}

// The verdict explain() gives for the kernel named `name`; fails the test when it lists none.
std::string verdict_for(const Explanation& e, std::string_view name) {
  for (const Explanation::Candidate& c : e.candidates) {
    if (c.kernel->name == name) return c.verdict;
  }
  FAIL_CHECK("the explanation lists no kernel " << name);
  return "";
}

Geometry with(const Geometry& g, ActivationShape input, Attributes attributes) {
  return Geometry::make(input, g.filter(), attributes);
}

// `g` with its resolved pads written out as EXPLICIT padding: the same computation.
Attributes explicit_attributes(const Geometry& g) {
  Attributes a = g.attributes();
  a.padding = Padding::EXPLICIT;
  a.pad_top = g.pad_top();
  a.pad_bottom = g.pad_bottom();
  a.pad_left = g.pad_left();
  a.pad_right = g.pad_right();
  return a;
}

// Geometries that differ from `g` in one field each, named.
std::vector<std::pair<std::string, Geometry>> neighbours(const Geometry& g) {
  std::vector<std::pair<std::string, Geometry>> out;
  ActivationShape input = g.input();
  input.n += 1;
  out.emplace_back("batch + 1", with(g, input, g.attributes()));
  Attributes a = explicit_attributes(g);
  a.pad_right += 1;
  out.emplace_back("pad_right + 1", with(g, g.input(), a));
  a = explicit_attributes(g);
  a.pad_top += 1;
  out.emplace_back("pad_top + 1", with(g, g.input(), a));
  a = g.attributes();
  a.stride_w += 1;
  out.emplace_back("stride_w + 1", with(g, g.input(), a));
  a = g.attributes();
  a.stride_h += 1;
  out.emplace_back("stride_h + 1", with(g, g.input(), a));
  return out;
}

DataFormat other(DataFormat format) {
  return format == DataFormat::NHWC ? DataFormat::NCHW : DataFormat::NHWC;
}

int stub_calls = 0;
int stub_status = 0;
// Stands in for a compiled kernel: counts its calls, computes nothing, and fails as a kernel does
// when stub_status is not 0: Halide's message first, then the error code.
int stub_kernel(const KernelArgs&) {
  stub_calls++;
  if (stub_status != 0) halide_error(nullptr, "the stub's reason\n");
  return stub_status;
}

}  // namespace

TEST_CASE("dispatch: each test layer's own specialized kernel is chosen for its shape",
          "[unit][dispatch]") {
  const KernelList& kernels = convgen_test_kernels();
  const Engine engine(kernels);
  size_t checked = 0;
  for (const Layer& layer : test_layers().layers) {
    for (Op op : layer.ops) {
      const Geometry& g = layer.geometry;
      INFO(layer.name << " " << to_string(op) << " " << g.key());
      const Kernel& chosen = engine.select(op, g);
      CHECK(chosen.shape_key == g.key());
      CHECK(chosen.op == op);
      CHECK(chosen.format == g.format());
      CHECK(chosen.name == "convgen_" + std::string(to_string(op)) + "__" + g.key());

      const Explanation e = engine.explain(op, g);
      CHECK(e.chosen == &chosen);
      REQUIRE(e.candidates.size() == kernels.size());
      CHECK(e.candidates.front().kernel == &chosen);
      CHECK(e.candidates.front().verdict == "chosen");
      const Kernel* generic = find_kernel(kernels, op, g.format(), "");
      REQUIRE(generic);
      CHECK(verdict_for(e, generic->name) == "a kernel specialized for this shape is preferred");
      // The generic kernels of the other operators and layout are passed over for what they are.
      CHECK_THAT(verdict_for(e, find_kernel(kernels, op, other(g.format()), "")->name),
                 Catch::StartsWith("takes "));
      const std::string text = e.to_string();
      CHECK_THAT(text, Catch::StartsWith("* " + std::string(chosen.name) + ": chosen\n"));
      CHECK(std::count(text.begin(), text.end(), '\n') == long(kernels.size()));

      // The same computation spelled with EXPLICIT pads, or rebuilt from its key, is the same
      // shape.
      CHECK(&engine.select(op, with(g, g.input(), explicit_attributes(g))) == &chosen);
      CHECK(&engine.select(op, Geometry::from_key(g.key(), "key")) == &chosen);
      checked++;
    }
  }
  CHECK(checked == 34);  // 14 layers x 3 operators, less the four with two and two with one
}

TEST_CASE("dispatch: a geometry differing in one field falls back to the generic kernel",
          "[unit][dispatch]") {
  const KernelList& kernels = convgen_test_kernels();
  const Engine engine(kernels);
  for (const Layer& layer : test_layers().layers) {
    for (Op op : layer.ops) {
      const Geometry& g = layer.geometry;
      const Kernel* specialized = find_kernel(kernels, op, g.format(), g.key());
      REQUIRE(specialized);
      for (const auto& [what, v] : neighbours(g)) {
        INFO(layer.name << " " << to_string(op) << " with " << what << ": " << v.key());
        REQUIRE(v.key() != g.key());
        const Kernel& chosen = engine.select(op, v);
        CHECK(&chosen == generic_kernel(kernels, op, v));
        const Explanation e = engine.explain(op, v);
        CHECK(e.chosen == &chosen);
        CHECK_THAT(verdict_for(e, specialized->name),
                   Catch::Contains("another shape") && Catch::Contains(g.key()));
      }
      // The same shapes in the other layout: the generic kernel of that layout, and the specialized
      // one is passed over for its layout (the first difference the Engine finds).
      Attributes a = g.attributes();
      a.format = other(g.format());
      const Geometry v = with(g, g.input(), a);
      INFO(layer.name << " " << to_string(op) << " in " << to_string(a.format));
      const Kernel& chosen = engine.select(op, v);
      CHECK(&chosen == generic_kernel(kernels, op, v));
      CHECK(verdict_for(engine.explain(op, v), specialized->name) ==
            std::string("takes ") + to_string(g.format()));
    }
  }
}

TEST_CASE("dispatch: thin images go to the generic kernels for thin images", "[unit][dispatch]") {
  const KernelList& kernels = convgen_test_kernels();
  const Engine engine(kernels);
  // An RGB image filtered to one channel, and other shapes of it in turn.
  Attributes same;
  same.padding = Padding::SAME;
  const Geometry edge = Geometry::make({1, 20, 30, 3}, {3, 3, 3, 1}, same);
  Attributes strided = same;
  strided.stride_w = 2;
  struct Expect {
    Op op;
    Geometry g;
    Thin thin;
  };
  const Geometry stem = Geometry::make({1, 20, 30, 3}, {7, 7, 3, 64}, strided);
  const Expect cases[] = {
      {Op::conv2d, edge, Thin::images},                      // one output channel
      {Op::conv2d_backprop_input, edge, Thin::images},       // an input gradient of 3 channels
      {Op::conv2d_backprop_filter, edge, Thin::images},      // an RGB input, one output channel
      // A filter gradient: its input thin, its output gradient of one channel.
      {Op::conv2d_backprop_filter, Geometry::make({2, 9, 40, 1}, {5, 5, 1, 1}, same),
       Thin::images},
      {Op::conv2d_backprop_filter, Geometry::make({1, 20, 30, 3}, {3, 3, 3, 3}, same), Thin::none},
      {Op::conv2d_backprop_filter, Geometry::make({1, 20, 30, 4}, {3, 3, 4, 1}, same), Thin::none},
      {Op::conv2d_backprop_filter, Geometry::make({1, 20, 30, 3}, {3, 3, 3, 1}, strided),
       Thin::none},
      {Op::conv2d, Geometry::make({1, 20, 30, 3}, {3, 3, 3, 2}, same), Thin::none},  // 2 channels
      {Op::conv2d, Geometry::make({1, 20, 30, 3}, {3, 3, 3, 1}, strided), Thin::none},
      {Op::conv2d_backprop_input, Geometry::make({1, 20, 30, 1}, {3, 3, 1, 8}, same),
       Thin::images},
      // Input gradients of thin images from kThinSummedChannels out-channels or more, at any
      // column stride; from fewer, with a unit column stride only.
      {Op::conv2d_backprop_input, stem, Thin::deep},
      {Op::conv2d_backprop_input, Geometry::make({1, 20, 30, 1}, {3, 3, 1, 16}, same), Thin::deep},
      {Op::conv2d_backprop_input, Geometry::make({1, 20, 30, 3}, {3, 3, 3, 15}, strided),
       Thin::none},
      {Op::conv2d_backprop_input, Geometry::make({1, 20, 30, 2}, {7, 7, 2, 64}, strided),
       Thin::none},
      {Op::conv2d, stem, Thin::none},  // 64 output channels
  };
  const std::string suffix[] = {"", "_thin", "_thin_deep"};  // by Thin
  const std::string verdict[] = {
      "for thin images, which these are not: the generic kernel for any shape is preferred",
      "the images are thin: the generic kernel for thin images is preferred",
      "the input gradient is a thin image from a deep output gradient: the generic kernel for "
      "those is preferred"};
  for (const Expect& c : cases) {
    INFO(to_string(c.op) << " " << c.g.key());
    CHECK(thin_images(c.op, c.g) == c.thin);
    const Kernel& chosen = engine.select(c.op, c.g);
    CHECK(chosen.shape_key.empty());
    CHECK(chosen.thin == c.thin);
    const Explanation e = engine.explain(c.op, c.g);
    const std::string name = "convgen_" + std::string(to_string(c.op)) + "__generic_nhwc";
    CHECK(e.chosen->name == name + suffix[size_t(c.thin)]);
    for (Thin other : {Thin::none, Thin::images, Thin::deep}) {
      if (other == c.thin || (other == Thin::deep && c.op != Op::conv2d_backprop_input)) continue;
      CHECK(verdict_for(e, name + suffix[size_t(other)]) == verdict[size_t(c.thin)]);
    }
  }
  // Either generic kernel computes any shape, so each runs where it is the only one (the
  // kernel tests check both on every geometry).
  for (const Expect& c : cases) {
    KernelList generic;
    for (const Kernel& k : kernels) {
      if (k.op == c.op && k.shape_key.empty() && k.format == DataFormat::NHWC && k.thin != c.thin) {
        generic.push_back(k);
      }
    }
    if (generic.empty()) continue;
    CHECK(Engine(generic).select(c.op, c.g).thin != c.thin);
  }
}

TEST_CASE("dispatch: a kernel this CPU cannot run is passed over", "[unit][dispatch]") {
  const Layer& layer = test_layers().layers.front();
  const Geometry& g = layer.geometry;
  for (Op op : layer.ops) {
    INFO(to_string(op) << " " << g.key());
    KernelList kernels = convgen_test_kernels();
    Kernel* specialized = find_kernel(kernels, op, g.format(), g.key());
    REQUIRE(specialized);
    specialized->targets = kForeignTarget;
    const Engine engine(kernels);
    const Kernel& chosen = engine.select(op, g);
    CHECK(&chosen == generic_kernel(kernels, op, g));
    const std::string verdict = verdict_for(engine.explain(op, g), specialized->name);
    CHECK_THAT(verdict, Catch::Contains(kForeignArch));
    CHECK(verdict == target_refusal(kForeignTarget));

    // With the generic kernels refused too, nothing can run the call.
    for (Kernel& k : kernels) {
      if (k.op == op && k.shape_key.empty()) k.targets = kForeignTarget;
    }
    const Engine none(kernels);
    CHECK(none.explain(op, g).chosen == nullptr);
    CHECK_THAT(none.explain(op, g).to_string(), Catch::EndsWith("no kernel can run this call\n"));
    try {
      none.select(op, g);
      FAIL_CHECK("select chose a kernel");
    } catch (const Error& e) {
      CHECK(e.id() == ErrorId::unsupported);
    }
  }
}

TEST_CASE("dispatch: an empty kernel list runs nothing", "[unit][dispatch]") {
  const KernelList empty;
  const Engine engine(empty);
  const Geometry& g = test_layers().layers.front().geometry;
  const Explanation e = engine.explain(Op::conv2d, g);
  CHECK(e.chosen == nullptr);
  CHECK(e.candidates.empty());
  CHECK(e.to_string() == "no kernel can run this call\n");
  try {
    engine.select(Op::conv2d, g);
    FAIL_CHECK("select chose a kernel");
  } catch (const Error& error) {
    CHECK(error.id() == ErrorId::unsupported);
    CHECK(error.argument() == "op");
    CHECK_THAT(error.reason(), Catch::Contains(g.key()));
  }
  std::vector<float> x(size_t(checked_element_count(g.input_dims(), "x")));
  std::vector<float> w(size_t(checked_element_count(g.filter_dims(), "w")));
  std::vector<float> y(size_t(checked_element_count(g.output_dims(), "y")));
  CHECK_THROWS_AS(engine.conv2d(g, x.data(), w.data(), nullptr, y.data()), Error);
}

TEST_CASE("dispatch: the Engine runs the kernel it selects", "[unit][dispatch]") {
  const Layer& layer = test_layers().layers.front();
  const Geometry& g = layer.geometry;
  KernelList kernels = convgen_test_kernels();
  Kernel* specialized = find_kernel(kernels, Op::conv2d, g.format(), g.key());
  REQUIRE(specialized);
  specialized->entry = &stub_kernel;
  const Engine engine(kernels);
  std::vector<float> x(size_t(checked_element_count(g.input_dims(), "x")));
  std::vector<float> w(size_t(checked_element_count(g.filter_dims(), "w")));
  std::vector<float> y(size_t(checked_element_count(g.output_dims(), "y")));
  stub_calls = 0;
  stub_status = 0;
  engine.conv2d(g, x.data(), w.data(), nullptr, y.data());
  CHECK(stub_calls == 1);
  // Another shape goes to the generic kernel, not the stub.
  ActivationShape input = g.input();
  input.n += 1;
  const Geometry bigger = with(g, input, g.attributes());
  std::vector<float> x2(size_t(checked_element_count(bigger.input_dims(), "x")));
  std::vector<float> y2(size_t(checked_element_count(bigger.output_dims(), "y")));
  engine.conv2d(bigger, x2.data(), w.data(), nullptr, y2.data());
  CHECK(stub_calls == 1);
  // A kernel's error becomes kernel_failed naming the kernel, with Halide's message (Halide's
  // default error handler would abort the process).
  stub_status = -1;
  try {
    engine.conv2d(g, x.data(), w.data(), nullptr, y.data());
    FAIL_CHECK("a failing kernel was not reported");
  } catch (const Error& e) {
    CHECK(e.id() == ErrorId::kernel_failed);
    CHECK(e.argument() == specialized->name);
    CHECK(e.reason() == "Halide error -1: the stub's reason");
  }
  CHECK(stub_calls == 2);
}

TEST_CASE("dispatch: which Halide targets this machine can run", "[unit][dispatch]") {
  CHECK(target_refusal("host").empty());
  CHECK_FALSE(target_refusal(kForeignTarget).empty());
  // A multitarget list none of whose entries runs here gives every entry's reason.
  CHECK_THAT(target_refusal(std::string(kForeignTarget) + ",x86-64"), Catch::Contains("; "));
  CHECK_FALSE(target_refusal("x86-64").empty());  // malformed: no operating system
  // A CUDA target runs exactly when this machine has a usable CUDA device.
  CHECK(target_refusal("x86-64-linux-cuda").empty() == cuda_refusal().empty());
#if defined(__x86_64__)
  CHECK_THAT(target_refusal("arm-64-linux"), Catch::Contains("arm-64"));
  CHECK(target_refusal("x86-64-linux").empty());
  CHECK(target_refusal("x86-64-linux-sse41").empty());
  // A multitarget runs when any entry does: SSE4.1 is enough whatever the AVX-512 support.
  CHECK(target_refusal("x86-64-linux-avx512_skylake,x86-64-linux-sse41").empty());
  if (!cuda_refusal().empty()) {
    CHECK_THAT(target_refusal("x86-64-linux-cuda"), Catch::Contains("cuda"));
  }
  // Every kernel the tests link was compiled for targets this machine runs.
  for (const Kernel& kernel : convgen_test_kernels()) {
    INFO(kernel.name << " targets " << kernel.targets);
    CHECK(target_refusal(kernel.targets).empty());
  }
#endif
}

TEST_CASE("dispatch: specialized and generic kernels agree with the reference on the test layers",
          "[unit][dispatch]") {
  const KernelList& kernels = convgen_test_kernels();
  uint32_t seed = 1;
  for (const Layer& layer : test_layers().layers) {
    for (Op op : layer.ops) {
      const Geometry& g = layer.geometry;
      INFO(layer.name << " " << to_string(op) << " " << g.key());
      const Kernel* specialized = find_kernel(kernels, op, g.format(), g.key());
      const Kernel* generic = generic_kernel(kernels, op, g);
      REQUIRE(specialized);
      REQUIRE(generic);
      CHECK(KernelTester(*specialized).test(g, seed).max_ratio <= 1.0);
      CHECK(KernelTester(*generic).test(g, seed).max_ratio <= 1.0);
      seed++;
    }
  }
}

}  // namespace convgen::testing
