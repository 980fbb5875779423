// Filters packed once (Engine::pack_filter): the blocked layout as documented, dispatch to the
// kernels built for packed filters (their results are checked against the reference with every
// other kernel's, in test_kernels.cpp), HWIO kept where no such kernel serves the call, and
// packed filters refused by name where they do not belong.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "convgen/convgen.h"
#include "convgen_test_kernels.h"
#include "geometry_builder.h"
#include "kernel_tester.h"

namespace convgen::testing {
namespace {

// The geometry of the first kernel of the test list for packed filters that computes `op`.
Geometry packed_layer(Op op) {
  for (const Kernel& k : convgen_test_kernels()) {
    if (k.op == op && k.filter == FilterLayout::blocked && k.format == DataFormat::NHWC) {
      return Geometry::from_key(std::string(k.shape_key), "shape_key");
    }
  }
  FAIL("no kernel for packed filters computes " << to_string(op));
  throw;
}

}  // namespace

TEST_CASE("packed filters: the blocked layout holds each block's channels innermost",
          "[unit][packed_filter]") {
  // K = 32 out-channels, C = 3 in-channels, 2 x 3 taps: two blocks along K for conv2d; C = 32,
  // K = 3 for conv2d_backprop_input, blocked along C.
  for (Op op : {Op::conv2d, Op::conv2d_backprop_input}) {
    const bool along_k = op == Op::conv2d;
    const int64_t k = along_k ? 32 : 3, c = along_k ? 3 : 32, r = 2, s = 3;
    Attributes a;
    a.padding = Padding::SAME;
    const Geometry g = Geometry::make({1, 4, 5, c}, {r, s, c, k}, a);
    REQUIRE(takes_blocked_filter(op, g));
    std::vector<float> hwio(size_t(r * s * c * k)), blocked(hwio.size(), -1.0f);
    for (size_t i = 0; i < hwio.size(); i++) hwio[i] = float(i);
    block_filter(op, g, hwio.data(), blocked.data());
    const int64_t other = along_k ? c : k;
    for (int64_t ir = 0; ir < r; ir++)
      for (int64_t is = 0; is < s; is++)
        for (int64_t ic = 0; ic < c; ic++)
          for (int64_t ik = 0; ik < k; ik++) {
            const int64_t channel = along_k ? ik : ic, o = along_k ? ic : ik;
            const int64_t at =
                (((channel / 16) * r + ir) * s + is) * other * 16 + o * 16 + channel % 16;
            INFO(to_string(op) << " r " << ir << " s " << is << " c " << ic << " k " << ik);
            CHECK(blocked[size_t(at)] == hwio[size_t(((ir * s + is) * c + ic) * k + ik)]);
          }
  }
  Attributes a;
  const Geometry odd = Geometry::make({1, 4, 4, 16}, {1, 1, 16, 24}, a);
  CHECK(!takes_blocked_filter(Op::conv2d, odd));  // 24 out-channels: one block and a half
  CHECK(takes_blocked_filter(Op::conv2d_backprop_input, odd));
  CHECK(!takes_blocked_filter(Op::conv2d_backprop_filter, odd));
}

TEST_CASE("packed filters: a call with one runs the kernel for packed filters",
          "[unit][packed_filter]") {
  const Engine engine(convgen_test_kernels());
  for (Op op : {Op::conv2d, Op::conv2d_backprop_input}) {
    const Geometry g = packed_layer(op);
    const Operands o(g, 3);
    const PackedFilter packed = engine.pack_filter(op, g, o.w.data());
    CHECK(packed.layout() == FilterLayout::blocked);
    CHECK(packed.op() == op);
    CHECK(engine.select(op, g, FilterLayout::blocked).filter == FilterLayout::blocked);
    CHECK(engine.select(op, g).filter == FilterLayout::hwio);
    // An HWIO call passes over the kernel for packed filters, and says why.
    const Explanation e = engine.explain(op, g);
    bool said = false;
    for (const auto& c : e.candidates) {
      said = said || (c.kernel->filter == FilterLayout::blocked && c.verdict == "takes a packed filter");
    }
    CHECK(said);
    Tensors t{o.x.data(), nullptr, o.bias.data(), o.dy.data(), nullptr, nullptr};
    std::vector<float> result(result_size(op, g));
    t.result = result.data();
    t.packed_filter = &packed;
    if (op == Op::conv2d_backprop_input) t.input = nullptr, t.bias = nullptr;
    if (op == Op::conv2d) t.out_backprop = nullptr;
    BoundCall call(engine, op, g, t);
    CHECK(call.kernel().filter == FilterLayout::blocked);
  }
}

TEST_CASE("packed filters: without a kernel for them the filter stays HWIO and runs as usual",
          "[unit][packed_filter]") {
  const Engine engine(convgen_test_kernels());
  // 6 out-channels make no block; the generic kernel runs it.
  const Geometry g = make_geometry({2, 9, 7, 5, 6, 3, 2, 2, 1, 1, 2, Padding::SAME}, DataFormat::NHWC);
  const Operands o(g, 5);
  const PackedFilter forward = engine.pack_filter(Op::conv2d, g, o.w.data());
  CHECK(forward.layout() == FilterLayout::hwio);
  std::vector<float> expected(result_size(Op::conv2d, g)), actual(expected.size(), -1.0f);
  engine.conv2d(g, o.x.data(), o.w.data(), o.bias.data(), expected.data());
  engine.conv2d(g, o.x.data(), forward, o.bias.data(), actual.data());
  CHECK(actual == expected);

  const PackedFilter backward = engine.pack_filter(Op::conv2d_backprop_input, g, o.w.data());
  std::vector<float> expected_dx(result_size(Op::conv2d_backprop_input, g)),
      actual_dx(expected_dx.size(), -1.0f);
  engine.conv2d_backprop_input(g, o.w.data(), o.dy.data(), expected_dx.data());
  engine.conv2d_backprop_input(g, backward, o.dy.data(), actual_dx.data());
  CHECK(actual_dx == expected_dx);
}

TEST_CASE("packed filters: refused by name where they do not belong", "[unit][packed_filter]") {
  const Engine engine(convgen_test_kernels());
  const Geometry g = packed_layer(Op::conv2d);
  const Operands o(g, 1);
  check_error([&] { engine.pack_filter(Op::conv2d_backprop_filter, g, o.w.data()); },
              ErrorId::invalid_argument, "op");
  check_error([&] { engine.pack_filter(Op::conv2d, g, nullptr); }, ErrorId::invalid_argument,
              "filter");
  const PackedFilter packed = engine.pack_filter(Op::conv2d, g, o.w.data());
  std::vector<float> dx(result_size(Op::conv2d_backprop_input, g));
  // Packed for conv2d (blocked along the out-channels), not for its input gradient.
  check_error([&] { engine.conv2d_backprop_input(g, packed, o.dy.data(), dx.data()); },
              ErrorId::invalid_argument, "filter");
  // Packed for another geometry.
  Attributes a;
  a.padding = Padding::VALID;
  const Geometry other = Geometry::make({g.input().n, g.input().h, g.input().w, g.input().c},
                                        {g.filter().r, g.filter().s, g.filter().c, g.filter().k}, a);
  std::vector<float> y(result_size(Op::conv2d, other));
  check_error([&] { engine.conv2d(other, o.x.data(), packed, o.bias.data(), y.data()); },
              ErrorId::invalid_argument, "filter");
}

}  // namespace convgen::testing
