#include "convgen/shape_config.h"

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "convgen/error.h"
#include "json_document.h"

namespace convgen {
namespace {

using nlohmann::json;
using json_document::escape_token;
using json_document::excerpt;
using json_document::integer_value;
using json_document::read_text_file;

// Every size a compiled kernel indexes must fit in Halide's 32-bit extents (as in Geometry::make).
constexpr int64_t kMaxValue = kMaxTensorElements;
// Configs are a few kilobytes; anything this big is not one.
constexpr std::streamoff kMaxFileSize = 16 << 20;
// A config nests 4 deep (the document, "layers", a layer, "pads"); deeper is refused while parsing
// (json_document::parse), which also bounds the recursion of the messages' excerpts.
constexpr size_t kMaxNesting = 16;

const char* const kKnownKeys[] = {"name",     "N",           "H",          "W",          "C",
                                  "K",        "R",           "S",          "stride",     "stride_h",
                                  "stride_w", "dilation",    "dilation_h", "dilation_w", "padding",
                                  "pads",     "data_format", "bias",       "ops",
                                  "packed_filter"};

// Reads the fields of one layer object, remembering where it is for messages.
class LayerReader {
 public:
  LayerReader(const json& layer, std::string where) : layer_(layer), where_(std::move(where)) {}

  const std::string& where() const { return where_; }
  std::string at(const std::string& key) const { return where_ + "/" + escape_token(key); }
  bool has(const char* key) const { return layer_.contains(key); }

  const json& required(const char* key) const {
    if (!has(key)) throw Error(ErrorId::invalid_argument, at(key), "required key is missing");
    return layer_.at(key);
  }

  int64_t integer(const char* key, int64_t min) const {
    return integer_value(required(key), at(key), min, kMaxValue);
  }
  int64_t integer_or(const char* key, int64_t min, int64_t fallback) const {
    return has(key) ? integer(key, min) : fallback;
  }

  std::string string(const char* key, const std::string& expected) const {
    const json& value = required(key);
    if (!value.is_string()) {
      throw Error(ErrorId::invalid_argument, at(key),
                  "expected " + expected + ", got " + excerpt(value));
    }
    return value.get<std::string>();
  }


 private:
  const json& layer_;
  std::string where_;
};

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (unsigned char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
    if (!ok) return false;
  }
  return true;
}

// Where in the layer a Geometry::make error belongs: its attribute's key, or the layer itself for
// errors about the input, filter or output sizes (which several keys define together).
std::string geometry_error_location(const LayerReader& reader, const std::string& argument) {
  if (argument == "strides") return reader.at(reader.has("stride") ? "stride" : "stride_h");
  if (argument == "dilations") return reader.at(reader.has("dilation") ? "dilation" : "dilation_h");
  if (argument == "explicit_paddings" && reader.has("pads")) return reader.at("pads");
  return reader.where();
}

Layer parse_layer(const json& value, const std::string& where) {
  if (!value.is_object()) {
    throw Error(ErrorId::invalid_argument, where, "expected a layer object, got " + excerpt(value));
  }
  const LayerReader reader(value, where);
  for (const auto& item : value.items()) {
    bool known = false;
    for (const char* key : kKnownKeys) known = known || item.key() == key;
    if (!known) {
      throw Error(ErrorId::invalid_argument, reader.at(item.key()),
                  "unknown key " + excerpt(json(item.key())) +
                      " (a layer has name, N, H, W, C, K, R, S, stride, stride_h, stride_w, "
                      "dilation, dilation_h, dilation_w, padding, pads, data_format, bias, ops, "
                      "packed_filter)");
    }
  }

  Layer layer;
  layer.name = reader.string("name", "a string");
  if (!valid_name(layer.name)) {
    throw Error(
        ErrorId::invalid_argument, reader.at("name"),
        "expected 1 to 128 letters, digits, '_', '-' or '.', got " + excerpt(json(layer.name)));
  }
  const ActivationShape input{reader.integer("N", 1), reader.integer("H", 1),
                              reader.integer("W", 1), reader.integer("C", 1)};
  const FilterShape filter{reader.integer("R", 1), reader.integer("S", 1), input.c,
                           reader.integer("K", 1)};

  Attributes a;
  const int64_t stride = reader.integer_or("stride", 1, 1);
  a.stride_h = reader.integer_or("stride_h", 1, stride);
  a.stride_w = reader.integer_or("stride_w", 1, stride);
  const int64_t dilation = reader.integer_or("dilation", 1, 1);
  a.dilation_h = reader.integer_or("dilation_h", 1, dilation);
  a.dilation_w = reader.integer_or("dilation_w", 1, dilation);
  a.padding = parse_padding(reader.string("padding", "\"SAME\", \"VALID\" or \"EXPLICIT\""),
                            reader.at("padding"));
  if (a.padding == Padding::EXPLICIT) {
    const json& pads = reader.required("pads");
    if (!pads.is_array() || pads.size() != 4) {
      throw Error(ErrorId::invalid_padding, reader.at("pads"),
                  "expected [top, bottom, left, right] (4 integers >= 0), got " + excerpt(pads));
    }
    int64_t* targets[] = {&a.pad_top, &a.pad_bottom, &a.pad_left, &a.pad_right};
    for (size_t i = 0; i < 4; i++) {
      *targets[i] =
          integer_value(pads[i], reader.at("pads") + "/" + std::to_string(i), 0, kMaxValue);
    }
  } else if (reader.has("pads")) {
    throw Error(ErrorId::invalid_padding, reader.at("pads"),
                std::string("only allowed with EXPLICIT padding, not ") + to_string(a.padding));
  }
  if (reader.has("data_format")) {
    a.format = parse_data_format(reader.string("data_format", "\"NHWC\" or \"NCHW\""),
                                 reader.at("data_format"));
  }
  for (auto [key, flag] : {std::pair<const char*, bool*>{"bias", &layer.bias},
                           std::pair<const char*, bool*>{"packed_filter", &layer.packed_filter}}) {
    if (!reader.has(key)) continue;
    const json& value = reader.required(key);
    if (!value.is_boolean()) {
      throw Error(ErrorId::invalid_argument, reader.at(key),
                  "expected true or false, got " + excerpt(value));
    }
    *flag = value.get<bool>();
  }
  if (reader.has("ops")) {
    const json& ops = reader.required("ops");
    if (!ops.is_array() || ops.empty()) {
      throw Error(ErrorId::invalid_argument, reader.at("ops"),
                  "expected a non-empty list of operator names, got " + excerpt(ops));
    }
    for (size_t i = 0; i < ops.size(); i++) {
      const std::string where_op = reader.at("ops") + "/" + std::to_string(i);
      if (!ops[i].is_string()) {
        throw Error(ErrorId::invalid_argument, where_op,
                    "expected an operator name, got " + excerpt(ops[i]));
      }
      const Op op = parse_op(ops[i].get<std::string>(), where_op);
      for (Op seen : layer.ops) {
        if (seen == op) {
          throw Error(ErrorId::invalid_argument, where_op,
                      std::string("operator ") + to_string(op) + " is listed twice");
        }
      }
      layer.ops.push_back(op);
    }
  } else {
    layer.ops = {Op::conv2d, Op::conv2d_backprop_input, Op::conv2d_backprop_filter};
  }

  try {
    layer.geometry = Geometry::make(input, filter, a);
  } catch (const Error& e) {
    // An error about the layer as a whole says which of its tensors it is about.
    const std::string location = geometry_error_location(reader, e.argument());
    throw Error(e.id(), location,
                location == reader.where() ? e.argument() + ": " + e.reason() : e.reason());
  }
  return layer;
}

}  // namespace

ShapeConfig parse_shape_config(const std::string& text, const std::string& source) {
  const json root = json_document::parse(text, source, kMaxNesting);
  if (!root.is_object()) {
    throw Error(ErrorId::invalid_argument, source,
                "expected a JSON object with a \"layers\" list, got " + excerpt(root));
  }
  const std::string layers_at = source + ":/layers";
  if (!root.contains("layers")) {
    throw Error(ErrorId::invalid_argument, layers_at, "required key is missing");
  }
  const json& layers = root.at("layers");
  if (!layers.is_array()) {
    throw Error(ErrorId::invalid_argument, layers_at,
                "expected a list of layers, got " + excerpt(layers));
  }
  if (layers.empty())
    throw Error(ErrorId::invalid_argument, layers_at, "the list of layers is empty");

  ShapeConfig config;
  std::map<std::string, size_t> index_of_name;
  for (size_t i = 0; i < layers.size(); i++) {
    const std::string where = layers_at + "/" + std::to_string(i);
    Layer layer = parse_layer(layers[i], where);
    const auto [it, inserted] = index_of_name.emplace(layer.name, i);
    if (!inserted) {
      throw Error(ErrorId::invalid_argument, where + "/name",
                  "duplicate layer name " + excerpt(json(layer.name)) + " (also /layers/" +
                      std::to_string(it->second) + "/name)");
    }
    config.layers.push_back(std::move(layer));
  }
  if (root.contains("targets")) {
    const json& targets = root.at("targets");
    const std::string targets_at = source + ":/targets";
    if (!targets.is_array() || targets.empty()) {
      throw Error(ErrorId::invalid_argument, targets_at,
                  "expected a non-empty list of Halide target strings, got " + excerpt(targets));
    }
    for (size_t i = 0; i < targets.size(); i++) {
      if (!targets[i].is_string() || targets[i].get<std::string>().empty()) {
        throw Error(ErrorId::invalid_argument, targets_at + "/" + std::to_string(i),
                    "expected a Halide target string, got " + excerpt(targets[i]));
      }
      config.targets.push_back(targets[i].get<std::string>());
    }
  }
  return config;
}

ShapeConfig read_shape_config(const std::string& path) {
  return parse_shape_config(read_text_file(path, "the shape config", kMaxFileSize), path);
}

}  // namespace convgen
