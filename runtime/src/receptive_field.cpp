#include "convgen/receptive_field.h"

#include <algorithm>

#include "convgen/error.h"

namespace convgen {
namespace {

void check_pixel(int64_t row, int64_t col, const ActivationShape& shape, const char* which) {
  if (row < 0 || row >= shape.h || col < 0 || col >= shape.w) {
    throw Error(ErrorId::invalid_argument, which,
                "pixel (" + std::to_string(row) + ", " + std::to_string(col) + ") is outside the " +
                    which + " of " + std::to_string(shape.h) + "x" + std::to_string(shape.w));
  }
}

Range clip(const Range& r, int64_t size) {
  Range c{std::max<int64_t>(r.begin, 0), std::min(r.end, size)};
  return c.size() ? c : Range{};
}

// The output positions o in [0, out) and taps t in [0, taps) with o*stride + t*dilation - pad == at.
template <typename Visit>
void inverse(int64_t at, int64_t out, int64_t taps, int64_t stride, int64_t dilation, int64_t pad,
             Visit visit) {
  for (int64_t t = 0; t < taps; t++) {
    const int64_t numerator = at + pad - t * dilation;
    if (numerator < 0 || numerator % stride != 0) continue;
    const int64_t o = numerator / stride;
    if (o < out) visit(o, t);
  }
}

}  // namespace

ReceptiveField receptive_field(const Geometry& g, int64_t row, int64_t col) {
  check_pixel(row, col, g.output(), "output");
  const int64_t top = row * g.stride_h() - g.pad_top();
  const int64_t left = col * g.stride_w() - g.pad_left();
  ReceptiveField f;
  f.unclipped = {{top, top + g.effective_filter_h()}, {left, left + g.effective_filter_w()}};
  f.clipped = {clip(f.unclipped.rows, g.input().h), clip(f.unclipped.cols, g.input().w)};
  if (!f.clipped.rows.size() || !f.clipped.cols.size()) f.clipped = {};
  return f;
}

std::vector<Reader> readers(const Geometry& g, int64_t row, int64_t col) {
  check_pixel(row, col, g.input(), "input");
  std::vector<Reader> result;
  inverse(row, g.output().h, g.filter().r, g.stride_h(), g.dilation_h(), g.pad_top(),
          [&](int64_t i, int64_t r) {
            inverse(col, g.output().w, g.filter().s, g.stride_w(), g.dilation_w(), g.pad_left(),
                    [&](int64_t j, int64_t s) { result.push_back({i, j, r, s}); });
          });
  return result;
}

}  // namespace convgen
