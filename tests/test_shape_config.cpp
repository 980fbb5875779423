// Unit tests of the shape-config reader (convgen/shape_config.h).
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "convgen/error.h"
#include "convgen/shape_config.h"

namespace {

using convgen::Error;
using convgen::ErrorId;
using convgen::Op;

// A layer as key -> raw JSON value, so that a test can change or drop one field.
using Fields = std::map<std::string, std::string>;

Fields base_layer(const std::string& name = "l0") {
  return {{"name", "\"" + name + "\""},
          {"N", "1"},
          {"H", "8"},
          {"W", "8"},
          {"C", "3"},
          {"K", "4"},
          {"R", "3"},
          {"S", "3"},
          {"padding", "\"SAME\""}};
}
Fields with(Fields fields, const std::string& key, const std::string& value) {
  fields[key] = value;
  return fields;
}
Fields without(Fields fields, const std::string& key) {
  fields.erase(key);
  return fields;
}

std::string config(const std::vector<Fields>& layers) {
  std::string text = "{\"about\": \"test\", \"layers\": [";
  for (size_t i = 0; i < layers.size(); i++) {
    text += i ? ", {" : "{";
    bool first = true;
    for (const auto& [key, value] : layers[i]) {
      text += (first ? "\"" : ", \"") + key + "\": " + value;
      first = false;
    }
    text += "}";
  }
  return text + "]}";
}

convgen::Layer parse_one(const Fields& fields) {
  const convgen::ShapeConfig c = convgen::parse_shape_config(config({fields}), "t.json");
  REQUIRE(c.layers.size() == 1);
  return c.layers[0];
}

// Parsing `text` must throw an Error with `id` whose argument is `argument`.
void require_error(const std::string& text, const std::string& argument, ErrorId id,
                   const std::string& reason = "") {
  INFO("config: " << text);
  try {
    convgen::parse_shape_config(text, "t.json");
  } catch (const Error& e) {
    INFO("what: " << e.what());
    CHECK(e.argument() == argument);
    CHECK(std::string(convgen::to_string(e.id())) == convgen::to_string(id));
    CHECK_THAT(e.what(), Catch::StartsWith(argument + ": "));
    if (!reason.empty()) CHECK_THAT(e.what(), Catch::Contains(reason));
    return;
  }
  FAIL("no convgen::Error thrown");
}
void require_error(const Fields& layer, const std::string& argument, ErrorId id,
                   const std::string& reason = "") {
  require_error(config({layer}), argument, id, reason);
}

void check_benchmark_layers(const convgen::ShapeConfig& c) {
  REQUIRE(c.layers.size() == 11);
  const convgen::Layer& conv1 = c.layers[0];
  CHECK(conv1.name == "resnet_conv1");
  CHECK(conv1.geometry.key() == "n1h224w224c3_k64r7s7_sh2sw2dh1dw1_pt2pb3pl2pr3_nhwc");
  CHECK(conv1.geometry.output().h == 112);
  CHECK(conv1.bias);
  CHECK(conv1.ops ==
        std::vector<Op>{Op::conv2d, Op::conv2d_backprop_input, Op::conv2d_backprop_filter});
  CHECK(c.layers[2].geometry.attributes().padding == convgen::Padding::VALID);
  CHECK(c.layers[8].name == "deeplab_dil2");
  CHECK(c.layers[8].geometry.dilation_h() == 2);
  CHECK(c.layers[8].geometry.pad_top() == 2);
  CHECK(c.layers[9].geometry.input().n == 8);
  CHECK(c.layers[10].geometry.filter().k == 1);
}

}  // namespace

TEST_CASE("shape config: the shared benchmark layers are accepted unchanged", "[unit]") {
#ifdef CONVGEN_SHARED_LAYERS
  if (!std::filesystem::exists(CONVGEN_SHARED_LAYERS)) {
    WARN("skipped: " << CONVGEN_SHARED_LAYERS << " does not exist");
    return;
  }
  check_benchmark_layers(convgen::read_shape_config(CONVGEN_SHARED_LAYERS));
#else
  WARN("skipped: CONVGEN_SHARED_LAYERS is not defined");
#endif
}

TEST_CASE("shape config: the default config holds the benchmark layers", "[unit]") {
  const std::filesystem::path path = std::filesystem::path(__FILE__).parent_path().parent_path() /
                                     "configs" / "resnet_layers.json";
  if (!std::filesystem::exists(path)) {
    WARN("skipped: " << path.string() << " not found from __FILE__");
    return;
  }
  check_benchmark_layers(convgen::read_shape_config(path.string()));
}

TEST_CASE("shape config: defaults", "[unit]") {
  const convgen::Layer layer = parse_one(base_layer());
  const convgen::Geometry& g = layer.geometry;
  CHECK(layer.name == "l0");
  CHECK(layer.bias);
  CHECK(layer.ops.size() == 3);
  CHECK(g.stride_h() == 1);
  CHECK(g.stride_w() == 1);
  CHECK(g.dilation_h() == 1);
  CHECK(g.dilation_w() == 1);
  CHECK(g.format() == convgen::DataFormat::NHWC);
  CHECK(g.input() == convgen::ActivationShape{1, 8, 8, 3});
  CHECK(g.filter() == convgen::FilterShape{3, 3, 3, 4});
}

TEST_CASE("shape config: optional fields", "[unit]") {
  Fields f = base_layer();
  f = with(f, "stride", "2");
  f = with(f, "stride_w", "3");
  f = with(f, "dilation", "1");
  f = with(f, "dilation_h", "2");
  f = with(f, "padding", "\"EXPLICIT\"");
  f = with(f, "pads", "[1, 2, 0, 3]");
  f = with(f, "data_format", "\"NCHW\"");
  f = with(f, "bias", "false");
  f = with(f, "ops", "[\"conv2d_backprop_filter\", \"conv2d\"]");
  CHECK(!parse_one(f).packed_filter);
  f = with(f, "packed_filter", "true");
  const convgen::Layer layer = parse_one(f);
  const convgen::Geometry& g = layer.geometry;
  CHECK(g.stride_h() == 2);
  CHECK(g.stride_w() == 3);
  CHECK(g.dilation_h() == 2);
  CHECK(g.dilation_w() == 1);
  CHECK(g.pad_top() == 1);
  CHECK(g.pad_bottom() == 2);
  CHECK(g.pad_left() == 0);
  CHECK(g.pad_right() == 3);
  CHECK(g.format() == convgen::DataFormat::NCHW);
  CHECK(!layer.bias);
  CHECK(layer.packed_filter);
  CHECK(layer.ops == std::vector<Op>{Op::conv2d_backprop_filter, Op::conv2d});
}

TEST_CASE("shape config: several layers keep their order", "[unit]") {
  const convgen::ShapeConfig c = convgen::parse_shape_config(
      config({base_layer("b"), with(base_layer("a"), "K", "7")}), "t.json");
  REQUIRE(c.layers.size() == 2);
  CHECK(c.layers[0].name == "b");
  CHECK(c.layers[1].name == "a");
  CHECK(c.layers[1].geometry.filter().k == 7);
}

TEST_CASE("shape config: bad integers name their JSON pointer", "[unit]") {
  const Fields f = base_layer();
  require_error(with(f, "stride", "-2"), "t.json:/layers/0/stride", ErrorId::invalid_argument,
                "expected an integer >= 1, got -2");
  require_error(with(f, "stride", "0"), "t.json:/layers/0/stride", ErrorId::invalid_argument);
  require_error(with(f, "stride", "3.5"), "t.json:/layers/0/stride", ErrorId::invalid_argument);
  require_error(with(f, "stride", "3.0"), "t.json:/layers/0/stride", ErrorId::invalid_argument);
  require_error(with(f, "stride", "\"3\""), "t.json:/layers/0/stride", ErrorId::invalid_argument);
  require_error(with(f, "stride_h", "0"), "t.json:/layers/0/stride_h", ErrorId::invalid_argument);
  require_error(with(f, "dilation_w", "true"), "t.json:/layers/0/dilation_w",
                ErrorId::invalid_argument);
  require_error(with(f, "H", "0"), "t.json:/layers/0/H", ErrorId::invalid_argument);
  require_error(with(f, "K", "null"), "t.json:/layers/0/K", ErrorId::invalid_argument);
  require_error(with(f, "N", "3000000000"), "t.json:/layers/0/N", ErrorId::too_large);
  require_error(with(f, "C", "18446744073709551616"), "t.json:/layers/0/C",
                ErrorId::invalid_argument);  // beyond 64 bits: nlohmann reads it as a float
  require_error(config({base_layer("a"), with(base_layer("b"), "R", "-1")}), "t.json:/layers/1/R",
                ErrorId::invalid_argument);
}

TEST_CASE("shape config: missing or unknown or duplicate keys", "[unit]") {
  const Fields f = base_layer();
  require_error(without(f, "K"), "t.json:/layers/0/K", ErrorId::invalid_argument, "missing");
  require_error(without(f, "name"), "t.json:/layers/0/name", ErrorId::invalid_argument);
  require_error(without(f, "padding"), "t.json:/layers/0/padding", ErrorId::invalid_argument);
  require_error(with(f, "strides", "1"), "t.json:/layers/0/strides", ErrorId::invalid_argument,
                "unknown key \"strides\"");
  require_error(with(f, "a/b~", "1"), "t.json:/layers/0/a~1b~0", ErrorId::invalid_argument);
  // A repeated key would otherwise silently take the last value.
  require_error(R"({"layers": [{"name": "l0", "N": 1, "H": 8, "W": 8, "C": 3, "K": 4, "R": 3,
                "S": 3, "stride": 2, "padding": "SAME", "stride": 1}]})",
                "t.json:/layers/0/stride", ErrorId::invalid_argument, "duplicate key");
}

TEST_CASE("shape config: padding and pads", "[unit]") {
  const Fields f = base_layer();
  require_error(with(f, "padding", "\"same\""), "t.json:/layers/0/padding",
                ErrorId::invalid_argument);
  require_error(with(f, "padding", "1"), "t.json:/layers/0/padding", ErrorId::invalid_argument);
  const Fields e = with(f, "padding", "\"EXPLICIT\"");
  require_error(e, "t.json:/layers/0/pads", ErrorId::invalid_argument, "missing");
  require_error(with(e, "pads", "[1, 1, 1]"), "t.json:/layers/0/pads", ErrorId::invalid_padding);
  require_error(with(e, "pads", "{\"top\": 1}"), "t.json:/layers/0/pads", ErrorId::invalid_padding);
  require_error(with(e, "pads", "[0, -1, 0, 0]"), "t.json:/layers/0/pads/1",
                ErrorId::invalid_argument, "expected an integer >= 0, got -1");
  require_error(with(f, "pads", "[1, 1, 1, 1]"), "t.json:/layers/0/pads", ErrorId::invalid_padding,
                "only allowed with EXPLICIT");
}

TEST_CASE("shape config: data_format and bias and ops and name", "[unit]") {
  const Fields f = base_layer();
  require_error(with(f, "data_format", "\"NWHC\""), "t.json:/layers/0/data_format",
                ErrorId::invalid_argument);
  require_error(with(f, "bias", "1"), "t.json:/layers/0/bias", ErrorId::invalid_argument);
  require_error(with(f, "packed_filter", "\"yes\""), "t.json:/layers/0/packed_filter",
                ErrorId::invalid_argument);
  require_error(with(f, "ops", "[]"), "t.json:/layers/0/ops", ErrorId::invalid_argument);
  require_error(with(f, "ops", "\"conv2d\""), "t.json:/layers/0/ops", ErrorId::invalid_argument);
  require_error(with(f, "ops", "[\"conv2d\", \"conv3d\"]"), "t.json:/layers/0/ops/1",
                ErrorId::invalid_argument);
  require_error(with(f, "ops", "[\"conv2d\", 2]"), "t.json:/layers/0/ops/1",
                ErrorId::invalid_argument);
  require_error(with(f, "ops", "[\"conv2d\", \"conv2d\"]"), "t.json:/layers/0/ops/1",
                ErrorId::invalid_argument, "twice");
  require_error(with(f, "name", "\"\""), "t.json:/layers/0/name", ErrorId::invalid_argument);
  require_error(with(f, "name", "\"a b\""), "t.json:/layers/0/name", ErrorId::invalid_argument);
  require_error(with(f, "name", "7"), "t.json:/layers/0/name", ErrorId::invalid_argument);
  require_error(config({base_layer("x"), base_layer("y"), base_layer("x")}),
                "t.json:/layers/2/name", ErrorId::invalid_argument, "duplicate layer name");
}

TEST_CASE("shape config: geometry errors keep their id and reason", "[unit]") {
  const Fields valid = with(with(base_layer(), "H", "2"), "padding", "\"VALID\"");
  require_error(valid, "t.json:/layers/0", ErrorId::empty_output, "VALID padding");
  const Fields explicit_pads =
      with(with(with(base_layer(), "H", "1"), "padding", "\"EXPLICIT\""), "pads", "[0, 0, 0, 0]");
  require_error(explicit_pads, "t.json:/layers/0/pads", ErrorId::empty_output);
  require_error(with(with(base_layer(), "dilation", "2000000000"), "R", "3"),
                "t.json:/layers/0/dilation", ErrorId::too_large);
  require_error(with(with(with(base_layer(), "H", "100000"), "W", "100000"), "C", "1000"),
                "t.json:/layers/0", ErrorId::too_large);
}

TEST_CASE("shape config: each tensor at its size limit is accepted, one element more is refused",
          "[unit]") {
  // The limits of Geometry::make: 2^31 - 1 elements for the input and the output, 2^29 - 1 for the
  // filter. The layer's pointer names the layer; the reason names the tensor.
  Fields one = base_layer();
  for (const char* key : {"N", "H", "W", "C", "K", "R", "S"}) one[key] = "1";
  one["padding"] = "\"VALID\"";
  struct Limit {
    const char* tensor;
    Fields largest, too_large;
  };
  const Limit limits[] = {
      {"input", with(one, "W", "2147483647"), with(with(one, "N", "2"), "W", "1073741824")},
      // Two out channels double the output: 2^31 - 2 elements, then 2^31.
      {"output", with(with(one, "W", "1073741823"), "K", "2"),
       with(with(one, "W", "1073741824"), "K", "2")},
      {"filter", with(one, "K", "536870911"), with(with(one, "C", "2"), "K", "268435456")},
  };
  for (const char* format : {"\"NHWC\"", "\"NCHW\""}) {
    for (const Limit& limit : limits) {
      INFO(limit.tensor << " in " << format);
      CHECK_NOTHROW(parse_one(with(limit.largest, "data_format", format)));
      require_error(with(limit.too_large, "data_format", format), "t.json:/layers/0",
                    ErrorId::too_large, std::string(limit.tensor) + ": ");
    }
  }
}

TEST_CASE("shape config: the document's structure", "[unit]") {
  require_error("[]", "t.json", ErrorId::invalid_argument);
  require_error("{}", "t.json:/layers", ErrorId::invalid_argument, "missing");
  require_error("{\"layers\": []}", "t.json:/layers", ErrorId::invalid_argument, "empty");
  require_error("{\"layers\": {}}", "t.json:/layers", ErrorId::invalid_argument);
  require_error("{\"layers\": [1]}", "t.json:/layers/0", ErrorId::invalid_argument);
  require_error("{\"layers\": [", "t.json", ErrorId::bad_file, "invalid JSON");
  require_error("", "t.json", ErrorId::bad_file);
  require_error("{\"layers\": [{\"name\": \"a\"}], \"layers\": []}", "t.json:/layers",
                ErrorId::invalid_argument, "duplicate key");
  // Nesting deeper than 16 arrays and objects is refused where it starts, before a deep document
  // takes memory that grows with the square of its depth: an ignored key may hold 15 nested arrays
  // (16 levels with the document), not 16.
  const std::string rest = config({base_layer()}).substr(1);
  const auto nested_arrays = [](size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  const auto slash_zeros = [](size_t count) {
    std::string pointer;
    for (size_t i = 0; i < count; i++) pointer += "/0";
    return pointer;
  };
  CHECK(convgen::parse_shape_config("{\"deep\": " + nested_arrays(15) + ", " + rest, "t.json")
            .layers.size() == 1);
  require_error("{\"deep\": " + nested_arrays(16) + ", " + rest, "t.json:/deep" + slash_zeros(15),
                ErrorId::invalid_argument, "nested deeper than 16 arrays and objects");
  require_error(nested_arrays(100000), "t.json:" + slash_zeros(16), ErrorId::invalid_argument);
  // Keys other than "layers" are ignored at the top level.
  CHECK(convgen::parse_shape_config(
            "{\"about\": 1, \"targets\": [\"host\"], \"layers\": [" +
                config({base_layer()}).substr(config({base_layer()}).find('[') + 1),
            "t.json")
            .layers.size() == 1);
}

TEST_CASE("shape config: unreadable files are io errors naming the path", "[unit]") {
  for (const std::string path : {"/nonexistent/convgen/shapes.json", "/"}) {
    try {
      convgen::read_shape_config(path);
      FAIL("no error for " << path);
    } catch (const Error& e) {
      CHECK(e.id() == ErrorId::io_error);
      CHECK(e.argument() == path);
    }
  }
}
