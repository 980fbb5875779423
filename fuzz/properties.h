// What the fuzz targets check beyond "no crash". A parser's only acceptable outcomes are a valid
// result or a thrown convgen::Error; any other exception escapes the target and aborts, and so does
// a failed FUZZ_CHECK, so libFuzzer reports both as crashes and keeps the input.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "convgen/error.h"
#include "convgen/geometry.h"

#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace convgen::fuzz {

// Whether `parse` refuses its input with a convgen::Error (any other exception escapes).
template <typename Parse>
bool refuses(const Parse& parse) {
  try {
    parse();
  } catch (const Error&) {
    return true;
  }
  return false;
}

// One spatial dimension of a valid geometry follows TensorFlow's window arithmetic: the last
// window ends inside the padded input, one more would not, and the padded input stays within the
// 32-bit extents of a compiled kernel.
inline void check_dimension(int64_t in, int64_t pad_before, int64_t pad_after, int64_t effective,
                            int64_t stride, int64_t out) {
  const int64_t padded = in + pad_before + pad_after;
  FUZZ_CHECK(pad_before >= 0 && pad_after >= 0);
  FUZZ_CHECK(padded <= std::numeric_limits<int32_t>::max());
  FUZZ_CHECK(out >= 1);
  FUZZ_CHECK((out - 1) * stride + effective <= padded);
  FUZZ_CHECK(out * stride + effective > padded);
}

// Every property a geometry that Geometry::make accepted has: each dimension's windows, tensors a
// kernel can index, a positive flop count, and a key that names the same geometry.
inline void check_geometry(const Geometry& g) {
  check_dimension(g.input().h, g.pad_top(), g.pad_bottom(), g.effective_filter_h(), g.stride_h(),
                  g.output().h);
  check_dimension(g.input().w, g.pad_left(), g.pad_right(), g.effective_filter_w(), g.stride_w(),
                  g.output().w);
  FUZZ_CHECK(g.output().n == g.input().n && g.output().c == g.filter().k);
  FUZZ_CHECK(g.filter().c == g.input().c);
  // These throw convgen::Error for a tensor a kernel cannot index; none may escape from here.
  checked_element_count(g.input_dims(), "input");
  checked_element_count(g.output_dims(), "output");
  checked_element_count(g.filter_dims(), "filter");
  FUZZ_CHECK(std::isfinite(g.flops()) && g.flops() >= 2);

  const Geometry named = Geometry::from_key(g.key(), "key");
  FUZZ_CHECK(named.key() == g.key());
  FUZZ_CHECK(named.input() == g.input() && named.output() == g.output() &&
             named.filter() == g.filter());
}

}  // namespace convgen::fuzz
