// Which input pixels an output pixel reads, and which output pixels and filter taps read an input
// pixel (SPEC.md, "Receptive fields").
#pragma once

#include <cstdint>
#include <vector>

#include "convgen/geometry.h"

namespace convgen {

// A half-open range [begin, end) of rows or columns.
struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end > begin ? end - begin : 0; }
  bool operator==(const Range& o) const { return begin == o.begin && end == o.end; }
};

struct Window {
  Range rows, cols;
};

struct ReceptiveField {
  Window unclipped;  // the dilated filter's span, which may reach into the padding
  Window clipped;    // its intersection with the input (empty when it lies entirely in padding)
};

// The input window of output pixel (row, col); throws ErrorId::invalid_argument when the pixel is
// outside the output.
ReceptiveField receptive_field(const Geometry& g, int64_t row, int64_t col);

// One (output pixel, filter tap) pair that reads a given input pixel.
struct Reader {
  int64_t out_row, out_col;  // the output pixel
  int64_t r, s;              // the filter tap (row, column)
  bool operator==(const Reader& o) const {
    return out_row == o.out_row && out_col == o.out_col && r == o.r && s == o.s;
  }
};

// Every pair that reads input pixel (row, col), ordered by (r, s); exactly the terms that
// conv2d_backprop_input sums for that pixel. Throws ErrorId::invalid_argument when the pixel is
// outside the input.
std::vector<Reader> readers(const Geometry& g, int64_t row, int64_t col);

}  // namespace convgen
