// convgen::Geometry::make on shapes and attributes decoded from the bytes, the attributes either
// from TensorFlow's lists (Attributes::from_tensorflow) or set field by field as an API caller may:
// a geometry with every property of fuzz::check_geometry, or a convgen::Error.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "convgen/error.h"
#include "convgen/geometry.h"
#include "properties.h"

namespace {

using convgen::Attributes;
using convgen::DataFormat;
using convgen::Padding;

// A size, stride, dilation or pad: an ordinary one (or a little below the minimum), one about the
// 32-bit limit every size must stay under, or any 64-bit value.
int64_t value(FuzzedDataProvider& data) {
  constexpr int64_t kLimit = std::numeric_limits<int32_t>::max();
  switch (data.ConsumeIntegralInRange(0, 2)) {
    case 0:
      return data.ConsumeIntegralInRange<int64_t>(-2, 64);
    case 1:
      return kLimit + data.ConsumeIntegralInRange<int64_t>(-64, 2);
    default:
      return data.ConsumeIntegral<int64_t>();
  }
}

// A TensorFlow attribute list or tensor shape: mostly of the right length (4, or 8 for pads).
std::vector<int64_t> values(FuzzedDataProvider& data) {
  std::vector<int64_t> list(data.ConsumeIntegralInRange<size_t>(0, 9));
  for (int64_t& entry : list) entry = value(data);
  return list;
}

Attributes attributes(FuzzedDataProvider& data, DataFormat format) {
  const Padding padding = data.PickValueInArray({Padding::SAME, Padding::VALID, Padding::EXPLICIT});
  if (data.ConsumeBool()) {
    const std::vector<int64_t> strides = values(data);
    const std::vector<int64_t> explicit_paddings = values(data);
    const std::vector<int64_t> dilations = values(data);
    return Attributes::from_tensorflow(format, strides, padding, explicit_paddings, dilations);
  }
  Attributes a;
  a.format = format;
  a.padding = padding;
  for (int64_t* field : {&a.stride_h, &a.stride_w, &a.dilation_h, &a.dilation_w, &a.pad_top,
                         &a.pad_bottom, &a.pad_left, &a.pad_right}) {
    *field = value(data);
  }
  return a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  FuzzedDataProvider data(bytes, size);
  const DataFormat format = data.PickValueInArray({DataFormat::NHWC, DataFormat::NCHW});
  convgen::Geometry geometry;
  try {
    const std::vector<int64_t> input = values(data);
    const std::vector<int64_t> filter = values(data);
    geometry =
        convgen::Geometry::make(convgen::activation_shape(input, format, "input"),
                                convgen::filter_shape(filter, "filter"), attributes(data, format));
  } catch (const convgen::Error&) {
    return 0;
  }
  convgen::fuzz::check_geometry(geometry);
  return 0;
}
