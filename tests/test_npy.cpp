// Unit tests for the .npy reader and writer (convgen/npy.h).
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convgen/error.h"
#include "convgen/npy.h"

namespace {

namespace fs = std::filesystem;
using convgen::Error;
using convgen::ErrorId;
using Bytes = std::vector<unsigned char>;

const std::string kArgument = "--input";

bool host_is_little_endian() {
  const uint16_t one = 1;
  unsigned char first_byte = 0;
  std::memcpy(&first_byte, &one, 1);
  return first_byte == 1;
}

// The bytes of `values` in the given byte order. Halves are passed as their uint16_t bit patterns.
template <typename T>
Bytes encode(std::initializer_list<T> values, bool big_endian = false) {
  Bytes out;
  for (T value : values) {
    unsigned char raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    if (big_endian == host_is_little_endian()) std::reverse(std::begin(raw), std::end(raw));
    out.insert(out.end(), std::begin(raw), std::end(raw));
  }
  return out;
}

// A .npy file of the given format version whose header is `dict` followed by some padding.
Bytes npy_file(int major, const std::string& dict, const Bytes& data) {
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(major), 0};
  const std::string header = dict + "    \n";
  const int length_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < length_bytes; ++i)
    out.push_back(static_cast<unsigned char>(header.size() >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::string dict_for(const std::string& descr, const std::string& shape,
                     bool fortran_order = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran_order ? "True" : "False") +
         ", 'shape': " + shape + ", }";
}

convgen::npy::Array parse(const Bytes& bytes) {
  return convgen::npy::parse(bytes.data(), bytes.size(), kArgument);
}

// Runs `function`, requires it to throw convgen::Error with `id` naming `argument`, and returns the
// message.
template <typename Function>
std::string require_error(Function&& function, ErrorId id,
                          const std::string& argument = kArgument) {
  try {
    function();
  } catch (const Error& error) {
    CHECK(std::string(convgen::to_string(error.id())) == convgen::to_string(id));
    CHECK(error.argument() == argument);
    CHECK_THAT(error.what(), Catch::Contains(argument));
    return error.what();
  }
  FAIL("no convgen::Error thrown");
  return "";
}

// Compares floats bit for bit, so that NaN, -0 and infinities are checked too.
bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// A fresh directory under the system temporary directory, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device random;
    path_ = fs::temp_directory_path() /
            ("convgen-test-npy-" + std::to_string(random()) + std::to_string(random()));
    REQUIRE(fs::create_directory(path_));
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

  // Names of the entries in the directory, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<float> iota_floats(size_t count) {
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = static_cast<float>(i) * 0.5f - 3.0f;
  return values;
}

}  // namespace

TEST_CASE("npy write then read round-trips shape and data", "[unit][npy]") {
  TempDir dir;
  const std::vector<std::vector<int64_t>> shapes = {{}, {5}, {2, 3, 4, 5}, {3, 0, 2}, {0}};
  for (const auto& shape : shapes) {
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    std::vector<float> data = iota_floats(static_cast<size_t>(count));
    if (count >= 3) {
      data[0] = -0.0f;
      data[1] = std::numeric_limits<float>::infinity();
      data[2] = std::numeric_limits<float>::quiet_NaN();
    }
    const std::string path = dir.file("array.npy");
    convgen::npy::write(path, shape, data.data(), "--output");
    const convgen::npy::Array array = convgen::npy::read(path, kArgument);
    CAPTURE(shape);
    CHECK(array.shape == shape);
    CHECK(array.size() == count);
    REQUIRE(array.data.size() == data.size());
    for (size_t i = 0; i < data.size(); ++i) CHECK(same_bits(array.data[i], data[i]));

    const Bytes bytes = read_bytes(path);
    CHECK(bytes[6] == 1);
    CHECK((bytes.size() - data.size() * 4) % 64 == 0);  // the data starts 64-byte aligned
    CHECK(dir.entries() == std::vector<std::string>{"array.npy"});
  }
}

TEST_CASE("npy write produces the header numpy writes", "[unit][npy]") {
  TempDir dir;
  const float data[] = {1.0f, 2.0f};
  convgen::npy::write(dir.file("a.npy"), {2}, data, "--output");
  const Bytes bytes = read_bytes(dir.file("a.npy"));
  const std::string expected_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  REQUIRE(bytes.size() == 128 + 8);
  CHECK(std::string(bytes.begin(), bytes.begin() + 8) == std::string("\x93NUMPY\x01\x00", 8));
  CHECK(bytes[8] == 118);
  CHECK(bytes[9] == 0);
  CHECK(std::string(bytes.begin() + 10,
                    bytes.begin() + 10 + static_cast<long>(expected_dict.size())) == expected_dict);
  CHECK(bytes[127] == '\n');
  CHECK(Bytes(bytes.begin() + 128, bytes.end()) == encode<float>({1.0f, 2.0f}));
}

TEST_CASE("npy write switches to version 2.0 for a header over 65535 bytes", "[unit][npy]") {
  TempDir dir;
  const std::vector<int64_t> shape(30000, 1);
  const float value = 42.0f;
  convgen::npy::write(dir.file("wide.npy"), shape, &value, "--output");
  const Bytes bytes = read_bytes(dir.file("wide.npy"));
  CHECK(bytes[6] == 2);
  CHECK((bytes.size() - 4) % 64 == 0);
  const convgen::npy::Array array = convgen::npy::read(dir.file("wide.npy"), kArgument);
  CHECK(array.shape == shape);
  CHECK(array.data == std::vector<float>{42.0f});
}

TEST_CASE("npy parse accepts format versions 1.0, 2.0 and 3.0", "[unit][npy]") {
  for (int major : {1, 2, 3}) {
    CAPTURE(major);
    const convgen::npy::Array array =
        parse(npy_file(major, dict_for("<f4", "(2, 3)"), encode<float>({1, 2, 3, 4, 5, 6})));
    CHECK(array.shape == std::vector<int64_t>{2, 3});
    CHECK(array.data == std::vector<float>{1, 2, 3, 4, 5, 6});
  }
}

TEST_CASE("npy parse accepts the header spellings Python allows", "[unit][npy]") {
  const Bytes data = encode<float>({1, 2, 3, 4, 5, 6});
  const std::vector<std::string> dicts = {
      "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
      "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,3)}",
      "  { 'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
      "{'descr': 'f4', 'fortran_order': False, 'shape': (+2, 3), }",
  };
  for (const std::string& dict : dicts) {
    CAPTURE(dict);
    const convgen::npy::Array array = parse(npy_file(1, dict, data));
    CHECK(array.shape == std::vector<int64_t>{2, 3});
    CHECK(array.data == std::vector<float>{1, 2, 3, 4, 5, 6});
  }
  const convgen::npy::Array scalar = parse(npy_file(1, dict_for("<f4", "()"), encode<float>({7})));
  CHECK(scalar.shape.empty());
  CHECK(scalar.size() == 1);
  CHECK(scalar.data == std::vector<float>{7});
  const convgen::npy::Array vector = parse(npy_file(1, dict_for("<f4", "(6,)"), data));
  CHECK(vector.shape == std::vector<int64_t>{6});
  const convgen::npy::Array empty =
      parse(npy_file(1, dict_for("<f8", "(1, 0, 9223372036854775807)"), {}));
  CHECK(empty.size() == 0);
  CHECK(empty.data.empty());
}

TEST_CASE("npy parse converts float32 in either byte order", "[unit][npy]") {
  const float values[] = {1.5f, -0.0f, std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::infinity()};
  for (bool big_endian : {false, true}) {
    const convgen::npy::Array array =
        parse(npy_file(1, dict_for(big_endian ? ">f4" : "<f4", "(4,)"),
                       encode<float>({values[0], values[1], values[2], values[3]}, big_endian)));
    REQUIRE(array.data.size() == 4);
    for (size_t i = 0; i < 4; ++i) CHECK(same_bits(array.data[i], values[i]));
  }
}

TEST_CASE("npy parse converts float64 with static_cast rounding", "[unit][npy]") {
  const double float_max = std::numeric_limits<float>::max();
  const std::initializer_list<double> values = {
      0.1,
      -2.5,
      1e300,
      -1e300,
      std::nextafter(float_max, 1e300),  // above FLT_MAX but below the halfway point: rounds down
      float_max + 0x1p103,               // exactly halfway to 2^128: rounds to infinity
      1e-40,                             // a float subnormal
      1e-50,                             // underflows to zero
      std::numeric_limits<double>::quiet_NaN(),
  };
  const std::vector<float> expected = {
      static_cast<float>(0.1),
      -2.5f,
      std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(),
      std::numeric_limits<float>::max(),
      std::numeric_limits<float>::infinity(),
      static_cast<float>(1e-40),
      0.0f,
  };
  for (bool big_endian : {false, true}) {
    const convgen::npy::Array array = parse(npy_file(
        1, dict_for(big_endian ? ">f8" : "<f8", "(9,)"), encode<double>(values, big_endian)));
    REQUIRE(array.data.size() == 9);
    for (size_t i = 0; i < expected.size(); ++i) CHECK(same_bits(array.data[i], expected[i]));
    CHECK(std::isnan(array.data[8]));
  }
}

TEST_CASE("npy parse converts float16 exactly", "[unit][npy]") {
  const std::initializer_list<uint16_t> halves = {
      0x3c00,  // 1
      0xc000,  // -2
      0x0001,  // smallest subnormal, 2^-24
      0x03ff,  // largest subnormal, 1023 * 2^-24
      0x0400,  // smallest normal, 2^-14
      0x7bff,  // largest finite, 65504
      0x7c00,  // infinity
      0xfc00,  // -infinity
      0x8000,  // -0
      0x7e00,  // NaN
  };
  const std::vector<float> expected = {
      1.0f,
      -2.0f,
      std::ldexp(1.0f, -24),
      std::ldexp(1023.0f, -24),
      std::ldexp(1.0f, -14),
      65504.0f,
      std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(),
      -0.0f,
  };
  for (bool big_endian : {false, true}) {
    const convgen::npy::Array array = parse(npy_file(
        1, dict_for(big_endian ? ">f2" : "<f2", "(10,)"), encode<uint16_t>(halves, big_endian)));
    REQUIRE(array.data.size() == 10);
    for (size_t i = 0; i < expected.size(); ++i) CHECK(same_bits(array.data[i], expected[i]));
    CHECK(std::isnan(array.data[9]));
  }
}

TEST_CASE("npy parse converts integers of every width and byte order", "[unit][npy]") {
  struct Case {
    std::string descr;
    Bytes data;
    std::vector<float> expected;
  };
  const std::vector<Case> cases = {
      {"|i1", encode<int8_t>({-128, 0, 127}), {-128, 0, 127}},
      {"|u1", encode<uint8_t>({0, 200, 255}), {0, 200, 255}},
      {"<i2", encode<int16_t>({-32768, -1, 32767}), {-32768, -1, 32767}},
      {">i2", encode<int16_t>({-32768, -1, 32767}, true), {-32768, -1, 32767}},
      {"<u2", encode<uint16_t>({0, 1, 65535}), {0, 1, 65535}},
      {">u2", encode<uint16_t>({0, 1, 65535}, true), {0, 1, 65535}},
      {"<i4", encode<int32_t>({INT32_MIN, -7, 16777217}), {-2147483648.0f, -7, 16777216}},
      {">i4", encode<int32_t>({INT32_MIN, -7, 16777217}, true), {-2147483648.0f, -7, 16777216}},
      {"<u4", encode<uint32_t>({0, 3, UINT32_MAX}), {0, 3, 4294967296.0f}},
      {">u4", encode<uint32_t>({0, 3, UINT32_MAX}, true), {0, 3, 4294967296.0f}},
      {"<i8",
       encode<int64_t>({INT64_MIN, -5, INT64_MAX}),
       {-9223372036854775808.0f, -5, 9223372036854775808.0f}},
      {">i8",
       encode<int64_t>({INT64_MIN, -5, INT64_MAX}, true),
       {-9223372036854775808.0f, -5, 9223372036854775808.0f}},
      {"<u8", encode<uint64_t>({0, 9, UINT64_MAX}), {0, 9, 18446744073709551616.0f}},
      {">u8", encode<uint64_t>({0, 9, UINT64_MAX}, true), {0, 9, 18446744073709551616.0f}},
  };
  for (const Case& test : cases) {
    CAPTURE(test.descr);
    const convgen::npy::Array array = parse(npy_file(1, dict_for(test.descr, "(3,)"), test.data));
    CHECK(array.data == test.expected);
  }
}

TEST_CASE("npy parse reorders Fortran-order arrays to C order", "[unit][npy]") {
  // A 2x3 array stored column by column: element (i, j) is at file position i + 2 * j.
  const convgen::npy::Array matrix =
      parse(npy_file(1, dict_for("<f4", "(2, 3)", true), encode<float>({0, 1, 2, 3, 4, 5})));
  CHECK(matrix.shape == std::vector<int64_t>{2, 3});
  CHECK(matrix.data == std::vector<float>{0, 2, 4, 1, 3, 5});

  // A 2x3x4 array of big-endian int16 whose values are their Fortran positions i + 2j + 6k.
  Bytes data;
  for (int16_t position = 0; position < 24; ++position) {
    const Bytes element = encode<int16_t>({position}, true);
    data.insert(data.end(), element.begin(), element.end());
  }
  const convgen::npy::Array cube = parse(npy_file(2, dict_for(">i2", "(2, 3, 4)", true), data));
  REQUIRE(cube.data.size() == 24);
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) {
      for (int k = 0; k < 4; ++k)
        CHECK(cube.data[static_cast<size_t>(i * 12 + j * 4 + k)] ==
              static_cast<float>(i + 2 * j + 6 * k));
    }
  }

  const convgen::npy::Array vector =
      parse(npy_file(1, dict_for("<f4", "(3,)", true), encode<float>({7, 8, 9})));
  CHECK(vector.data == std::vector<float>{7, 8, 9});
  const convgen::npy::Array empty = parse(npy_file(1, dict_for("<f4", "(2, 0, 3)", true), {}));
  CHECK(empty.data.empty());

  // Dimensions of extent 1 move no element: (1, 2, 1, 3) is the 2x3 matrix above, and 100000 of
  // them before 10000 elements cost no more than the elements (reordering once took time
  // proportional to the elements times the dimensions).
  const convgen::npy::Array padded =
      parse(npy_file(1, dict_for("<f4", "(1, 2, 1, 3)", true), encode<float>({0, 1, 2, 3, 4, 5})));
  CHECK(padded.data == std::vector<float>{0, 2, 4, 1, 3, 5});
  std::string shape = "(";
  for (int i = 0; i < 100000; ++i) shape += "1, ";
  Bytes bytes(10000);
  std::vector<float> values(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<unsigned char>(i % 251);
    values[i] = static_cast<float>(bytes[i]);
  }
  CHECK(parse(npy_file(2, dict_for("|u1", shape + "10000)", true), bytes)).data == values);
}

TEST_CASE("npy parse rejects malformed preambles", "[unit][npy]") {
  const Bytes valid = npy_file(1, dict_for("<f4", "(1,)"), encode<float>({1}));
  CHECK_THAT(require_error([] { parse({}); }, ErrorId::bad_file), Catch::Contains("magic"));
  CHECK_THAT(
      require_error([&] { parse(Bytes(valid.begin(), valid.begin() + 4)); }, ErrorId::bad_file),
      Catch::Contains("magic"));
  Bytes bad_magic = valid;
  bad_magic[1] = 'n';
  CHECK_THAT(require_error([&] { parse(bad_magic); }, ErrorId::bad_file), Catch::Contains("magic"));
  for (size_t size : {6, 7, 9}) {
    CAPTURE(size);
    CHECK_THAT(
        require_error([&] { parse(Bytes(valid.begin(), valid.begin() + static_cast<long>(size))); },
                      ErrorId::bad_file),
        Catch::Contains("truncated header"));
  }
  // The header length claims more bytes than follow it.
  CHECK_THAT(
      require_error([&] { parse(Bytes(valid.begin(), valid.begin() + 30)); }, ErrorId::bad_file),
      Catch::Contains("truncated header"));
  Bytes version4 = valid;
  version4[6] = 4;
  CHECK_THAT(require_error([&] { parse(version4); }, ErrorId::unsupported),
             Catch::Contains("version 4.0"));
  Bytes version1_1 = valid;
  version1_1[7] = 1;
  require_error([&] { parse(version1_1); }, ErrorId::unsupported);
}

TEST_CASE("npy parse rejects data of the wrong size", "[unit][npy]") {
  const Bytes data = encode<float>({1, 2, 3, 4, 5, 6});
  const std::string message = require_error(
      [&] { parse(npy_file(1, dict_for("<f4", "(2, 3)"), Bytes(data.begin(), data.end() - 1))); },
      ErrorId::bad_file);
  CHECK_THAT(message, Catch::Contains("truncated file: expected 24 bytes of data, found 23"));
  Bytes trailing = data;
  trailing.push_back(0);
  CHECK_THAT(require_error([&] { parse(npy_file(1, dict_for("<f4", "(2, 3)"), trailing)); },
                           ErrorId::bad_file),
             Catch::Contains("trailing bytes"));
  // A huge but representable shape in a small file fails before anything is allocated.
  CHECK_THAT(
      require_error([&] { parse(npy_file(1, dict_for("<f8", "(1048576, 1048576, 1024)"), data)); },
                    ErrorId::bad_file),
      Catch::Contains("truncated file"));
}

TEST_CASE("npy parse rejects shapes that are negative or too large", "[unit][npy]") {
  const Bytes data = encode<float>({1, 2, 3, 4});
  CHECK_THAT(require_error([&] { parse(npy_file(1, dict_for("<f4", "(-1, 4)"), data)); },
                           ErrorId::bad_file),
             Catch::Contains("negative dimension -1"));
  CHECK_THAT(
      require_error([&] { parse(npy_file(1, dict_for("<f4", "(9223372036854775807, 4)"), data)); },
                    ErrorId::too_large),
      Catch::Contains("64 bits"));
  CHECK_THAT(
      require_error([&] { parse(npy_file(1, dict_for("<f4", "(99999999999999999999,)"), data)); },
                    ErrorId::too_large),
      Catch::Contains("does not fit"));
  // 2^61 elements fit in int64 but their bytes do not.
  require_error([&] { parse(npy_file(1, dict_for("<f8", "(2305843009213693952,)"), data)); },
                ErrorId::too_large);
  // A zero dimension does not excuse the others from overflowing.
  require_error([&] { parse(npy_file(1, dict_for("<f4", "(9223372036854775807, 2, 0)"), {})); },
                ErrorId::too_large);
}

TEST_CASE("npy parse rejects dtypes it cannot convert, naming them", "[unit][npy]") {
  const Bytes data = encode<float>({1, 2, 3, 4});
  for (const std::string descr :
       {"<c8", "|b1", "|O", "<U1", "|S4", "<M8[ns]", "<f16", "float32", ""}) {
    CAPTURE(descr);
    CHECK_THAT(require_error([&] { parse(npy_file(1, dict_for(descr, "(1,)"), data)); },
                             ErrorId::unsupported),
               Catch::Contains("'" + descr + "'"));
  }
  const std::string structured =
      "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }";
  CHECK_THAT(require_error([&] { parse(npy_file(1, structured, Bytes(8))); }, ErrorId::unsupported),
             Catch::Contains("structured"));
}

TEST_CASE("npy parse rejects garbage headers", "[unit][npy]") {
  const Bytes data = encode<float>({1, 2, 3, 4, 5, 6});
  const std::vector<std::string> dicts = {
      "",
      "[1, 2]",
      "{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } junk",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), ",
      "{'descr: '<f4', 'fortran_order': False, 'shape': (6,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': [6], }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': ('6',), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (6,,), }",
      "{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }",
      "{'descr': '<f4', 'fortran_order': false, 'shape': (6,), }",
      "{'descr': 4, 'fortran_order': False, 'shape': (6,), }",
      "{'descr': '<f4', 'shape': (6,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'shape': (6,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1, }",
      "{6: '<f4'}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\x01",
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + std::string(100000, '(') + "6" +
          std::string(100000, ')') + "}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + std::string(100000, '[') + "}",
  };
  for (const std::string& dict : dicts) {
    CAPTURE(dict.substr(0, 100));
    CHECK_THAT(require_error([&] { parse(npy_file(1, dict, data)); }, ErrorId::bad_file),
               Catch::Contains("header"));
  }
}

TEST_CASE("npy parse never fails other than with convgen::Error on corrupted files",
          "[unit][npy]") {
  const Bytes data = encode<double>({1, 2, 3, 4, 5, 6});
  const Bytes valid = npy_file(1, dict_for("<f8", "(2, 3)", true), data);
  std::mt19937 random(12345);
  int parsed = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    Bytes bytes = valid;
    const int mutations = 1 + static_cast<int>(random() % 4);
    for (int m = 0; m < mutations; ++m) {
      const size_t position = random() % bytes.size();
      switch (random() % 4) {
        case 0:
          bytes[position] = static_cast<unsigned char>(random());
          break;
        case 1:
          bytes[position] = "0123456789(),-' L"[random() % 17];
          break;
        case 2:
          bytes.resize(position);
          break;
        default:
          bytes.insert(bytes.begin() + static_cast<long>(position),
                       static_cast<unsigned char>(random()));
          break;
      }
      if (bytes.empty()) break;
    }
    try {
      const convgen::npy::Array array = convgen::npy::parse(bytes.data(), bytes.size(), kArgument);
      if (static_cast<size_t>(array.size()) != array.data.size()) FAIL("size mismatch");
      ++parsed;
    } catch (const Error&) {
    } catch (const std::exception& error) {
      FAIL("unexpected exception: " << error.what());
    }
  }
  CHECK(parsed > 0);
}

TEST_CASE("npy read reads files and checks their size", "[unit][npy]") {
  TempDir dir;
  write_bytes(dir.file("big_endian.npy"),
              npy_file(3, dict_for(">f4", "(2, 2)", true), encode<float>({1, 2, 3, 4}, true)));
  const convgen::npy::Array array = convgen::npy::read(dir.file("big_endian.npy"), kArgument);
  CHECK(array.shape == std::vector<int64_t>{2, 2});
  CHECK(array.data == std::vector<float>{1, 3, 2, 4});

  write_bytes(dir.file("truncated.npy"),
              npy_file(1, dict_for("<f4", "(2, 2)"), encode<float>({1, 2, 3})));
  CHECK_THAT(require_error([&] { convgen::npy::read(dir.file("truncated.npy"), kArgument); },
                           ErrorId::bad_file),
             Catch::Contains("truncated file: expected 16 bytes of data, found 12"));
  write_bytes(dir.file("huge.npy"),
              npy_file(1, dict_for("<f4", "(1099511627776, 1024)"), encode<float>({1})));
  CHECK_THAT(require_error([&] { convgen::npy::read(dir.file("huge.npy"), kArgument); },
                           ErrorId::bad_file),
             Catch::Contains("truncated file"));
  write_bytes(dir.file("short.npy"), Bytes{0x93, 'N', 'U'});
  require_error([&] { convgen::npy::read(dir.file("short.npy"), kArgument); }, ErrorId::bad_file);
  write_bytes(dir.file("long_header.npy"),
              Bytes{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff, '{'});
  CHECK_THAT(require_error([&] { convgen::npy::read(dir.file("long_header.npy"), kArgument); },
                           ErrorId::bad_file),
             Catch::Contains("truncated header"));

  CHECK_THAT(require_error([&] { convgen::npy::read(dir.file("missing.npy"), kArgument); },
                           ErrorId::io_error),
             Catch::Contains("missing.npy"));
  require_error([&] { convgen::npy::read(dir.file(""), kArgument); }, ErrorId::io_error);
}

TEST_CASE("npy write fails cleanly and leaves no partial files", "[unit][npy]") {
  TempDir dir;
  const float data[] = {1, 2, 3};

  SECTION("into a directory that does not exist") {
    CHECK_THAT(require_error(
                   [&] { convgen::npy::write(dir.file("missing/out.npy"), {3}, data, "--output"); },
                   ErrorId::io_error, "--output"),
               Catch::Contains("missing/out.npy"));
    CHECK(dir.entries().empty());
  }

  SECTION("over a directory, which rename() cannot replace") {
    fs::create_directory(dir.file("target"));
    require_error([&] { convgen::npy::write(dir.file("target"), {3}, data, "--output"); },
                  ErrorId::io_error, "--output");
    CHECK(dir.entries() == std::vector<std::string>{"target"});
    CHECK(fs::is_directory(dir.file("target")));
  }

  SECTION("with an invalid shape") {
    require_error(
        [&] {
          convgen::npy::write(dir.file("out.npy"), {3, -1}, data, "--output");
        },
        ErrorId::invalid_argument, "--output");
    require_error(
        [&] {
          convgen::npy::write(dir.file("out.npy"), {INT64_MAX, 2}, data, "--output");
        },
        ErrorId::too_large, "--output");
    CHECK(dir.entries().empty());
  }

  SECTION("replacing an existing file whole") {
    convgen::npy::write(dir.file("out.npy"), {2}, data, "--output");
    convgen::npy::write(dir.file("out.npy"), {3}, data, "--output");
    CHECK(dir.entries() == std::vector<std::string>{"out.npy"});
    CHECK(convgen::npy::read(dir.file("out.npy"), kArgument).data == std::vector<float>{1, 2, 3});
    // The file gets the mode a plain open() would give it, not mkstemp's owner-only 0600.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    struct stat info {};
    REQUIRE(::stat(dir.file("out.npy").c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == (0666 & ~mask));
  }
}
