#include "bench/problem.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

namespace convgen::tools {
namespace {

std::vector<float> random_tensor(size_t count, Random& random) {
  std::vector<float> values(count);
  for (float& v : values) v = random.uniform();
  return values;
}

std::vector<float> absolute(const std::vector<float>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); i++) out[i] = std::fabs(values[i]);
  return out;
}

size_t element_count(const std::array<int64_t, 4>& dims) {
  return size_t(checked_element_count(dims, "--config"));
}

}  // namespace

void Comparison::add(const std::vector<float>& kernel, const std::vector<float>& reference,
                     const std::vector<float>& absdot, double terms) {
  const double unit = std::ldexp(1.0, -24);
  for (size_t i = 0; i < kernel.size(); i++) {
    const double error = std::fabs(double(kernel[i]) - double(reference[i]));
    const double tolerance = unit * (terms + 1) * double(absdot[i]) + 1e-30;
    if (!std::isfinite(error)) {  // NaN or infinity from the kernel
      max_error = std::numeric_limits<double>::infinity();
      max_ratio = std::numeric_limits<double>::infinity();
      continue;
    }
    max_error = std::max(max_error, error);
    max_ratio = std::max(max_ratio, error / tolerance);
  }
}

Problem::Outputs Problem::poisoned_outputs() const {
  Outputs outputs;
  for (size_t size : sizes) {
    outputs.emplace_back(size, std::numeric_limits<float>::quiet_NaN());
  }
  return outputs;
}

Comparison Problem::compare(const Outputs& outputs) const {
  Comparison comparison;
  for (size_t i = 0; i < outputs.size(); i++) {
    comparison.add(outputs[i], expected[i], bound[i], terms);
  }
  return comparison;
}

Tensors Problem::tensors(Outputs& out, const PackedFilter* packed) const {
  return {input.empty() ? nullptr : input.data(),
          filter.empty() || packed ? nullptr : filter.data(),
          has_bias ? bias.data() : nullptr,
          out_backprop.empty() ? nullptr : out_backprop.data(),
          out[0].data(),
          op == Op::conv2d_backprop_filter && has_bias ? out[1].data() : nullptr,
          packed};
}

void Problem::run(const Engine& engine, Outputs& out) const {
  BoundCall call(engine, op, geometry, tensors(out));
  call.run();
  call.copy_results();
}

void Problem::run_reference(Outputs& out) const {
  const Geometry& g = geometry;
  switch (op) {
    case Op::conv2d:
      reference::conv2d(g, input.data(), filter.data(), has_bias ? bias.data() : nullptr,
                        out[0].data());
      break;
    case Op::conv2d_backprop_input:
      reference::conv2d_backprop_input(g, filter.data(), out_backprop.data(), out[0].data());
      break;
    case Op::conv2d_backprop_filter:
      reference::conv2d_backprop_filter(g, input.data(), out_backprop.data(), out[0].data(),
                                        has_bias ? out[1].data() : nullptr);
      break;
  }
}

Problem make_problem(const Layer& layer, Op op, uint64_t seed) {
  const Geometry& g = layer.geometry;
  Random random(seed);
  const size_t input_count = element_count(g.input_dims());
  const size_t filter_count = element_count(g.filter_dims());
  const size_t output_count = element_count(g.output_dims());
  const size_t k = size_t(g.filter().k);
  Problem p;
  p.geometry = g;
  p.op = op;
  p.has_bias = layer.bias;

  // The inputs are drawn in the operator's argument order, so that a case's data depends only on
  // its seed.
  switch (op) {
    case Op::conv2d: {
      p.input = random_tensor(input_count, random);
      p.filter = random_tensor(filter_count, random);
      if (p.has_bias) p.bias = random_tensor(k, random);
      p.sizes = {output_count};
      p.terms =
          double(g.filter().r) * double(g.filter().s) * double(g.filter().c) + (p.has_bias ? 1 : 0);
      break;
    }
    case Op::conv2d_backprop_input: {
      p.filter = random_tensor(filter_count, random);
      p.out_backprop = random_tensor(output_count, random);
      p.sizes = {input_count};
      p.terms = double(g.filter().r) * double(g.filter().s) * double(g.filter().k);
      break;
    }
    case Op::conv2d_backprop_filter: {
      p.input = random_tensor(input_count, random);
      p.out_backprop = random_tensor(output_count, random);
      p.sizes = {filter_count};
      if (p.has_bias) p.sizes.push_back(k);
      p.terms = double(g.output().n) * double(g.output().h) * double(g.output().w);
      break;
    }
  }
  for (size_t size : p.sizes) {
    p.expected.emplace_back(size);
    p.bound.emplace_back(size);
  }
  p.reference_ms = milliseconds([&] { p.run_reference(p.expected); });

  // The bound: the reference run on absolute values.
  Problem absolute_problem;
  absolute_problem.geometry = g;
  absolute_problem.op = op;
  absolute_problem.has_bias = p.has_bias;
  absolute_problem.input = absolute(p.input);
  absolute_problem.filter = absolute(p.filter);
  absolute_problem.bias = absolute(p.bias);
  absolute_problem.out_backprop = absolute(p.out_backprop);
  absolute_problem.run_reference(p.bound);
  return p;
}

double milliseconds(const std::function<void()>& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

std::vector<std::vector<double>> interleaved_milliseconds(int64_t warmups, int64_t repeats,
                                                          const std::vector<TimedRun>& runs) {
  for (int64_t r = 0; r < warmups; r++) {
    for (const TimedRun& t : runs) {
      t.enter();
      t.run();
      t.leave();
    }
  }
  std::vector<std::vector<double>> times(runs.size());
  int settle_ms = 0;
  for (int64_t r = 0; r < repeats; r++) {
    for (size_t i = 0; i < runs.size(); i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
      runs[i].enter();
      runs[i].run();
      times[i].push_back(milliseconds(runs[i].run));
      runs[i].leave();
      settle_ms = runs[i].spin_ms;
    }
  }
  return times;
}

}  // namespace convgen::tools
