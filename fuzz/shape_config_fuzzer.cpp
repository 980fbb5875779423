// convgen::parse_shape_config on any text: layers with unique names, operators and valid
// geometries, or a convgen::Error.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "convgen/error.h"
#include "convgen/shape_config.h"
#include "properties.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  convgen::ShapeConfig config;
  try {
    config = convgen::parse_shape_config(std::string(reinterpret_cast<const char*>(bytes), size),
                                         "fuzz.json");
  } catch (const convgen::Error&) {
    return 0;
  }
  FUZZ_CHECK(!config.layers.empty());
  std::set<std::string> names;
  for (const convgen::Layer& layer : config.layers) {
    FUZZ_CHECK(names.insert(layer.name).second);
    FUZZ_CHECK(!layer.ops.empty());
    convgen::fuzz::check_geometry(layer.geometry);
  }
  for (const std::string& target : config.targets) FUZZ_CHECK(!target.empty());
  return 0;
}
