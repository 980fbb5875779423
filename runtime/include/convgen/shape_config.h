// Shape configs: the JSON files that list the convolution layers a job compiles, verifies or
// benchmarks (configs/resnet_layers.json is the default one).
//
//   {"layers": [{"name": "resnet_res2_3x3", "N": 1, "H": 56, "W": 56, "C": 64, "K": 64,
//                "R": 3, "S": 3, "stride": 1, "dilation": 1, "padding": "SAME"}, ...]}
//
// Each layer is an object with:
//   required  name (letters, digits, '_', '-', '.'; unique), N, H, W, C, K, R, S (integers >= 1),
//             padding ("SAME", "VALID" or "EXPLICIT")
//   optional  stride, dilation (integers >= 1, default 1), stride_h, stride_w, dilation_h,
//   dilation_w
//             (override stride / dilation for one dimension), pads ([top, bottom, left, right],
//             integers >= 0, required exactly for EXPLICIT), data_format ("NHWC" default, or
//             "NCHW"), bias (boolean, default true), ops (non-empty list of distinct operator
//             names, default all three), packed_filter (boolean, default false: also build the
//             layer's conv2d and conv2d_backprop_input kernels that take a filter packed once,
//             Engine::pack_filter, where its channels make whole blocks).
// The optional top-level "targets" lists the targets to build for (Halide target strings, or the
// names `convgen generate --targets` knows, e.g. "x86-64", "host"). Other top-level keys (e.g.
// "about") are ignored; unknown keys inside a layer are
// errors, so that a typo cannot silently fall back to a default. Arrays and objects may nest 16
// deep (a config needs 4).
//
// Every error is a convgen::Error whose argument is the source followed by the JSON pointer of the
// bad value, e.g. "shapes.json:/layers/3/stride", and whose id is invalid_argument (or the id the
// geometry check raised: too_large, empty_output, ...).
#pragma once

#include <string>
#include <vector>

#include "convgen/geometry.h"

namespace convgen {

struct Layer {
  std::string name;
  Geometry geometry;
  bool bias = true;
  bool packed_filter = false;  // also build kernels that take a packed filter
  std::vector<Op> ops;         // in the config's order
};

struct ShapeConfig {
  std::vector<Layer> layers;         // in the config's order; never empty
  std::vector<std::string> targets;  // Halide targets to build for; empty: the tool's default
};

// Reads and parses the file at `path` (errors name `path` as their source; an unreadable file is an
// ErrorId::io_error naming `path`).
ShapeConfig read_shape_config(const std::string& path);

// Parses JSON text; `source` prefixes the JSON pointer in errors (usually the file name).
ShapeConfig parse_shape_config(const std::string& text, const std::string& source);

}  // namespace convgen
