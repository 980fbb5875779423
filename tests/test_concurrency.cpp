// Eight threads share one Engine and make 1000 calls between them, mixing the three operators on the
// test layers' shapes (specialized kernels) and on shapes of no layer (generic kernels) in both
// layouts, all at once on convgen's one thread pool: every result must be bitwise the result of the
// same call made alone.
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "convgen/convgen.h"
#include "convgen/shape_config.h"
#include "convgen_test_kernels.h"
#include "kernel_tester.h"

namespace convgen::testing {
namespace {

// One call of the mix, with its operands.
struct Call {
  Op op;
  Geometry g;
  Operands operands;
};

// Every operator of every test layer, then every operator on shapes of no layer in both layouts.
std::vector<Call> mixed_calls() {
  std::vector<Call> calls;
  uint32_t seed = 1;
  for (const Layer& layer : read_shape_config(CONVGEN_TEST_LAYERS).layers) {
    for (Op op : layer.ops) calls.push_back({op, layer.geometry, Operands(layer.geometry, seed++)});
  }
  const Case generic_cases[] = {
      {2, 9, 7, 3, 5, 3, 3},
      {1, 12, 10, 4, 6, 2, 3, 2, 1, 1, 2, Padding::VALID},
      {3, 5, 6, 8, 16, 1, 1, 1, 1, 1, 1, Padding::EXPLICIT, {1, 0, 2, 1}},
  };
  for (DataFormat format : {DataFormat::NHWC, DataFormat::NCHW}) {
    for (const Case& c : generic_cases) {
      const Geometry g = make_geometry(c, format);
      for (Op op : {Op::conv2d, Op::conv2d_backprop_input, Op::conv2d_backprop_filter}) {
        calls.push_back({op, g, Operands(g, seed++)});
      }
    }
  }
  return calls;
}

}  // namespace

TEST_CASE("concurrency: 8 threads sharing one Engine get bitwise the results of serial calls",
          "[kernels]") {
  const std::vector<Call> calls = mixed_calls();
  const Engine engine(convgen_test_kernels());
  size_t specialized = 0;
  for (const Call& call : calls) specialized += !engine.select(call.op, call.g).shape_key.empty();
  INFO(specialized << " of " << calls.size() << " calls run a specialized kernel");
  CHECK(specialized > 0);
  CHECK(specialized < calls.size());

  std::vector<std::vector<float>> serial;
  for (const Call& call : calls) {
    serial.emplace_back(result_size(call.op, call.g), NAN);
    run(engine, call.op, call.g, call.operands, serial.back().data());
  }

  // Call i runs calls[i % calls.size()], so the calls in flight at once differ from each other.
  // Catch2's assertions are not thread-safe: the threads collect failures, checked after joining.
  constexpr int kThreads = 8;
  constexpr int kCalls = 1000;
  std::atomic<int> next{0};
  std::vector<int> made(kThreads, 0);
  std::vector<std::vector<std::string>> failures(kThreads);
  auto work = [&](int thread) {
    std::vector<float> out;
    for (int i = next++; i < kCalls; i = next++) {
      const Call& call = calls[size_t(i) % calls.size()];
      const std::vector<float>& expected = serial[size_t(i) % calls.size()];
      const std::string what = "call " + std::to_string(i) + " (" + to_string(call.op) + " on " +
                               call.g.key() + ")";
      out.assign(expected.size(), NAN);
      try {
        run(engine, call.op, call.g, call.operands, out.data());
      } catch (const std::exception& e) {
        failures[size_t(thread)].push_back(what + " threw: " + e.what());
        continue;
      }
      made[size_t(thread)]++;
      if (std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)) != 0) {
        failures[size_t(thread)].push_back(what + " differs from the serial result");
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) threads.emplace_back(work, t);
  for (std::thread& t : threads) t.join();

  int total = 0;
  for (int t = 0; t < kThreads; t++) {
    total += made[size_t(t)];
    for (const std::string& failure : failures[size_t(t)]) FAIL_CHECK(failure);
  }
  CHECK(total == kCalls);
}

}  // namespace convgen::testing
