// Reading and writing NumPy .npy files.
//
// Arrays are always float32 in C (row-major) order in memory. Reading accepts format
// versions 1.0, 2.0 and 3.0 and converts float and integer dtypes of either byte order, and Fortran
// order, to that form; writing produces '<f4' C-order files. Every failure throws convgen::Error
// naming the caller's argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace convgen::npy {

struct Array {
  std::vector<int64_t> shape;  // C order, as in the file
  std::vector<float> data;     // C order, float32
  // Product of the shape: 1 for a 0-d array, 0 when any dimension is 0.
  int64_t size() const;
};

// Reads a .npy file. float32 little-endian C order is read directly; '<f2' '>f2' '<f4' '>f4' '<f8'
// '>f8' and signed and unsigned integers of 1, 2, 4 and 8 bytes in either byte order are converted
// (exactly where float32 can hold the value; float64 and wide integers round as static_cast does).
// Fortran-order arrays are reordered to C order. Other dtypes (bool, complex, object, strings,
// structured) throw ErrorId::unsupported. `argument` names the file in errors (e.g. "--input").
Array read(const std::string& path, const std::string& argument);

// The shape the header of a .npy file declares, checked as read() checks it (the data must be as
// long as the shape and dtype say), without reading or allocating the data: a caller can refuse a
// shape before it takes any memory.
std::vector<int64_t> read_shape(const std::string& path, const std::string& argument);

// Parses a whole .npy file held in memory, with the same rules as read(). Any bytes are safe to
// pass.
Array parse(const unsigned char* bytes, size_t size, const std::string& argument);

// Writes a '<f4' C-order file (format version 1.0, or 2.0 when the header does not fit in 65535
// bytes) holding the product of `shape` elements from `data`. The file is written to a temporary
// file beside `path` and renamed over it, so `path` is either replaced whole or left untouched.
// Throws ErrorId::io_error on failure, ErrorId::invalid_argument for a negative dimension and
// ErrorId::too_large for a shape whose size overflows.
void write(const std::string& path, const std::vector<int64_t>& shape, const float* data,
           const std::string& argument);

}  // namespace convgen::npy
