// convgen::BoundCall: a call bound once and run many times computes what the Engine's one-shot
// methods compute, every time; a missing tensor is refused by name; and a kernel that fails
// reports Halide's message as a convgen::Error instead of aborting the process.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "convgen/convgen.h"
#include "convgen_test_kernels.h"
#include "kernel_tester.h"

namespace convgen::testing {
namespace {

Geometry odd_geometry(DataFormat format) {
  return make_geometry({2, 9, 7, 5, 6, 3, 2, 2, 1, 1, 2, Padding::SAME}, format);
}

struct Data {
  std::vector<float> x, w, bias, dy;
  explicit Data(const Geometry& g) {
    std::mt19937 rng(7);
    x = random_tensor(g.input_dims(), rng);
    w = random_tensor(g.filter_dims(), rng);
    bias = random_tensor({1, 1, 1, g.filter().k}, rng);
    dy = random_tensor(g.output_dims(), rng);
  }
};

}  // namespace

TEST_CASE("BoundCall: repeated runs match the Engine's one-shot calls", "[unit][bound_call]") {
  const Engine engine(convgen_test_kernels());
  for (DataFormat format : {DataFormat::NHWC, DataFormat::NCHW}) {
    const Geometry g = odd_geometry(format);
    const Data d(g);
    SECTION(std::string("conv2d ") + to_string(format)) {
      std::vector<float> once(d.dy.size()), bound(d.dy.size(), -1.0f);
      engine.conv2d(g, d.x.data(), d.w.data(), d.bias.data(), once.data());
      BoundCall call(engine, Op::conv2d, g,
                     {d.x.data(), d.w.data(), d.bias.data(), nullptr, bound.data(), nullptr});
      for (int run = 0; run < 3; run++) {
        std::fill(bound.begin(), bound.end(), -1.0f);
        call.run();
        call.copy_results();
        CHECK(bound == once);
      }
    }
    SECTION(std::string("conv2d_backprop_input ") + to_string(format)) {
      std::vector<float> once(d.x.size()), bound(d.x.size());
      engine.conv2d_backprop_input(g, d.w.data(), d.dy.data(), once.data());
      BoundCall call(engine, Op::conv2d_backprop_input, g,
                     {nullptr, d.w.data(), nullptr, d.dy.data(), bound.data(), nullptr});
      call.run();
      call.run();
      call.copy_results();
      CHECK(bound == once);
    }
    SECTION(std::string("conv2d_backprop_filter ") + to_string(format)) {
      const size_t k = size_t(g.filter().k);
      std::vector<float> once(d.w.size()), once_bias(k), bound(d.w.size()), bound_bias(k);
      engine.conv2d_backprop_filter(g, d.x.data(), d.dy.data(), once.data(), once_bias.data());
      BoundCall call(engine, Op::conv2d_backprop_filter, g,
                     {d.x.data(), nullptr, nullptr, d.dy.data(), bound.data(), bound_bias.data()});
      call.run();
      call.run();
      call.copy_results();
      CHECK(bound == once);
      CHECK(bound_bias == once_bias);
    }
  }
}

TEST_CASE("BoundCall: a tensor the operator needs must be given", "[unit][bound_call]") {
  const Engine engine(convgen_test_kernels());
  const Geometry g = odd_geometry(DataFormat::NHWC);
  const Data d(g);
  std::vector<float> out(d.dy.size());
  const auto refused = [&](Op op, const Tensors& t, const std::string& argument) {
    try {
      BoundCall call(engine, op, g, t);
      FAIL("accepted a call without " << argument);
    } catch (const Error& e) {
      CHECK(e.id() == ErrorId::invalid_argument);
      CHECK(e.argument() == argument);
    }
  };
  refused(Op::conv2d, {nullptr, d.w.data(), nullptr, nullptr, out.data(), nullptr}, "input");
  refused(Op::conv2d, {d.x.data(), d.w.data(), nullptr, nullptr, nullptr, nullptr}, "output");
  refused(Op::conv2d_backprop_input, {nullptr, nullptr, nullptr, d.dy.data(), out.data(), nullptr},
          "filter");
  refused(Op::conv2d_backprop_filter, {d.x.data(), nullptr, nullptr, nullptr, out.data(), nullptr},
          "out_backprop");
}

TEST_CASE("BoundCall: a failing kernel throws its Halide error instead of aborting",
          "[unit][bound_call]") {
  // A specialized kernel listed under another shape's key: the Engine hands it buffers of the
  // wrong size, which its own checks refuse.
  const Geometry g = odd_geometry(DataFormat::NHWC);
  const std::string key = g.key();
  const Kernel* specialized = nullptr;
  for (const Kernel& k : convgen_test_kernels()) {
    if (k.op == Op::conv2d && k.format == DataFormat::NHWC && !k.shape_key.empty()) {
      specialized = &k;
      break;
    }
  }
  REQUIRE(specialized);
  Kernel mislabeled = *specialized;
  mislabeled.shape_key = key;
  const KernelList list{mislabeled};
  const Engine engine(list);
  const Data d(g);
  std::vector<float> out(d.dy.size());
  try {
    engine.conv2d(g, d.x.data(), d.w.data(), d.bias.data(), out.data());
    FAIL("the mislabeled kernel ran");
  } catch (const Error& e) {
    CHECK(e.id() == ErrorId::kernel_failed);
    CHECK(e.argument() == std::string(specialized->name));
    // Halide's own message, e.g. "Input buffer input has extent 9 in dimension 2, expected 56".
    CHECK_THAT(e.reason(), Catch::Contains("Halide error") && Catch::Contains("buffer"));
  }
}

}  // namespace convgen::testing
