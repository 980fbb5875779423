#include "bench/peak_fma.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace convgen::tools::bench {
namespace {

// Each loop updates `kAccumulators` independent accumulators per iteration, acc = acc * a + b with
// a just below 1 (the values stay bounded and normal), so that consecutive FMAs of one accumulator
// are `kAccumulators` instructions apart: more than latency (4) times ports (2) on current x86 and
// Arm cores. The sum of the accumulators is returned so that the loop cannot be optimized away.
struct Loop {
  const char* isa;
  int accumulators;
  int lanes;  // floats per vector
  float (*run)(int64_t iterations);
};

#if defined(__x86_64__) || defined(__i386__)

// 16 of the 32 zmm registers: as many as the FMA latency needs, with room for the constants.
constexpr int kAvx512Accumulators = 16;

__attribute__((target("avx512f"))) float fma_avx512(int64_t iterations) {
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  __m512 acc[kAvx512Accumulators];
  for (int k = 0; k < kAvx512Accumulators; k++) acc[k] = _mm512_set1_ps(float(k));
  for (int64_t i = 0; i < iterations; i++) {
#pragma GCC unroll 16
    for (int k = 0; k < kAvx512Accumulators; k++) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  }
  __m512 sum = acc[0];
  for (int k = 1; k < kAvx512Accumulators; k++) sum = _mm512_add_ps(sum, acc[k]);
  float lanes[16];  // (_mm512_reduce_add_ps trips a false warning in GCC 12)
  _mm512_storeu_ps(lanes, sum);
  float total = 0;
  for (float lane : lanes) total += lane;
  return total;
}

// 12 of the 16 ymm registers.
constexpr int kAvx2Accumulators = 12;

__attribute__((target("avx2,fma"))) float fma_avx2(int64_t iterations) {
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  __m256 acc[kAvx2Accumulators];
  for (int k = 0; k < kAvx2Accumulators; k++) acc[k] = _mm256_set1_ps(float(k));
  for (int64_t i = 0; i < iterations; i++) {
#pragma GCC unroll 12
    for (int k = 0; k < kAvx2Accumulators; k++) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  }
  __m256 sum = acc[0];
  for (int k = 1; k < kAvx2Accumulators; k++) sum = _mm256_add_ps(sum, acc[k]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  float total = 0;
  for (float lane : lanes) total += lane;
  return total;
}

#elif defined(__aarch64__)

// 24 of the 32 NEON registers.
constexpr int kNeonAccumulators = 24;

float fma_neon(int64_t iterations) {
  const float32x4_t a = vdupq_n_f32(0.999999f), b = vdupq_n_f32(1e-6f);
  float32x4_t acc[kNeonAccumulators];
  for (int k = 0; k < kNeonAccumulators; k++) acc[k] = vdupq_n_f32(float(k));
  for (int64_t i = 0; i < iterations; i++) {
#pragma GCC unroll 24
    for (int k = 0; k < kNeonAccumulators; k++) acc[k] = vfmaq_f32(b, acc[k], a);
  }
  float32x4_t sum = acc[0];
  for (int k = 1; k < kNeonAccumulators; k++) sum = vaddq_f32(sum, acc[k]);
  return vaddvq_f32(sum);
}

#endif

constexpr int kScalarAccumulators = 8;

// A multiply and an add (not fused) per update: what any CPU can do.
float fma_scalar(int64_t iterations) {
  const float a = 0.999999f, b = 1e-6f;
  float acc[kScalarAccumulators];
  for (int k = 0; k < kScalarAccumulators; k++) acc[k] = float(k);
  for (int64_t i = 0; i < iterations; i++) {
    for (int k = 0; k < kScalarAccumulators; k++) acc[k] = acc[k] * a + b;
  }
  float total = 0;
  for (float value : acc) total += value;
  return total;
}

Loop best_loop() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    return {"AVX-512", kAvx512Accumulators, 16, fma_avx512};
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return {"AVX2+FMA", kAvx2Accumulators, 8, fma_avx2};
  }
#elif defined(__aarch64__)
  return {"NEON", kNeonAccumulators, 4, fma_neon};
#endif
  return {"scalar", kScalarAccumulators, 1, fma_scalar};
}

// Seconds for `threads` threads to each run `iterations` of the loop, started together.
double run_threads(const Loop& loop, int threads, int64_t iterations) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<float> sinks(size_t(threads), 0.0f);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) {
    pool.emplace_back([&, t] {
      ready++;
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      sinks[size_t(t)] = loop.run(iterations);
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  for (std::thread& thread : pool) thread.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  volatile float sink = 0;
  for (float value : sinks) sink = sink + value;
  return seconds;
}

// Iterations of the loop that take about `seconds` on one thread (calibrated once).
int64_t iterations_for(const Loop& loop, double seconds) {
  static const double per_second = [&] {
    int64_t iterations = 1 << 12;
    double elapsed = run_threads(loop, 1, iterations);
    while (elapsed < 0.005) {
      iterations *= 4;
      elapsed = run_threads(loop, 1, iterations);
    }
    return double(iterations) / elapsed;
  }();
  return std::max<int64_t>(1, int64_t(per_second * seconds));
}

}  // namespace

PeakFma measure_peak_fma(int threads, int trials, double trial_seconds) {
  const Loop loop = best_loop();
  const int64_t iterations = iterations_for(loop, trial_seconds);
  double best = 0;
  for (int trial = 0; trial < trials; trial++) {
    const double s = run_threads(loop, threads, iterations);
    const double flops =
        2.0 * double(threads) * double(iterations) * loop.accumulators * loop.lanes;
    best = std::max(best, flops / s * 1e-9);
  }
  return {loop.isa, loop.accumulators, best};
}

}  // namespace convgen::tools::bench
