// convgen::npy::parse on any bytes: a float32 array of the shape the header declares, or a
// convgen::Error.
#include <cstddef>
#include <cstdint>

#include "convgen/error.h"
#include "convgen/npy.h"
#include "properties.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  convgen::npy::Array array;
  try {
    array = convgen::npy::parse(bytes, size, "fuzz.npy");
  } catch (const convgen::Error&) {
    return 0;
  }
  for (int64_t dimension : array.shape) FUZZ_CHECK(dimension >= 0);
  FUZZ_CHECK(array.data.size() == static_cast<size_t>(array.size()));
  return 0;
}
