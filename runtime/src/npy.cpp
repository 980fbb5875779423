// Reading and writing NumPy .npy files.
//
// Format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html): the magic string
// "\x93NUMPY", major and minor version bytes, the header length (2 bytes little-endian in
// version 1.0, 4 bytes in 2.0 and 3.0), the header (a Python dict literal padded with spaces and
// ending in a newline), then the raw array data. Files are untrusted: every size is checked against
// the bytes actually present before anything is allocated.
#include "convgen/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "convgen/error.h"

namespace convgen::npy {
namespace {

constexpr unsigned char kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kMagicSize = sizeof(kMagic);
// Magic, version bytes and header length: 10 bytes in version 1.0, 12 in 2.0 and 3.0.
constexpr size_t kVersion1PreambleSize = kMagicSize + 2 + 2;
constexpr size_t kVersion2PreambleSize = kMagicSize + 2 + 4;
constexpr uint64_t kMaxVersion1HeaderSize = 0xffff;
// numpy pads the header so that the data starts at a multiple of this.
constexpr size_t kHeaderAlignment = 64;
// Deepest nesting of tuples and lists accepted in a header; bounds the parser's recursion.
constexpr size_t kMaxNesting = 16;
constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

// ---- Small helpers ----

// Quotes untrusted header text in an error message: bounded in length, non-printable bytes
// replaced.
std::string excerpt(std::string_view text) {
  constexpr size_t kMaxLength = 64;
  std::string out;
  for (char c : text.substr(0, kMaxLength)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > kMaxLength) out += "...";
  return out;
}

// Spells a shape as Python's repr of a tuple, which is also how the .npy header writes it.
std::string format_shape(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

// Throws io_error with the system's description of `error_number`, lowercased to match other
// reasons.
[[noreturn]] void throw_io_error(const std::string& argument, const std::string& what,
                                 int error_number) {
  std::string detail = std::generic_category().message(error_number);
  if (!detail.empty() && detail[0] >= 'A' && detail[0] <= 'Z')
    detail[0] = static_cast<char>(detail[0] - 'A' + 'a');
  throw Error(ErrorId::io_error, argument, what + ": " + detail);
}

bool host_is_little_endian() {
  const uint16_t one = 1;
  unsigned char first_byte = 0;
  std::memcpy(&first_byte, &one, 1);
  return first_byte == 1;
}

// ---- Element decoding ----

// Assembles an unsigned integer from bytes in the given order, independently of the host's order.
template <typename Bits, bool kBigEndian>
Bits load_bits(const unsigned char* bytes) {
  Bits bits = 0;
  for (size_t i = 0; i < sizeof(Bits); ++i) {
    const size_t shift = 8 * (kBigEndian ? sizeof(Bits) - 1 - i : i);
    bits = static_cast<Bits>(bits | static_cast<Bits>(static_cast<Bits>(bytes[i]) << shift));
  }
  return bits;
}

// Widens an IEEE binary16 value. Every half value (subnormals, infinities and NaN payloads
// included) is exactly representable as a float, so this never rounds.
float half_to_float(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half >> 15) << 31;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  const uint32_t float_exponent = exponent == 0x1f ? 0xffu : exponent - 15 + 127;
  const uint32_t bits = sign | (float_exponent << 23) | (mantissa << 13);
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// Rounds a double to float as static_cast does on IEEE hardware. C++ leaves the cast undefined for
// finite values beyond the float range, so those are rounded here: to ±FLT_MAX below the halfway
// point to 2^128, to ±infinity from it on (the tie goes to infinity, whose mantissa is even).
float narrow_to_float(double value) {
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  constexpr double kHalfwayToOverflow = kFloatMax + 0x1p103;
  if (std::isfinite(value) && std::fabs(value) > kFloatMax) {
    const float magnitude = std::fabs(value) >= kHalfwayToOverflow
                                ? std::numeric_limits<float>::infinity()
                                : std::numeric_limits<float>::max();
    return std::signbit(value) ? -magnitude : magnitude;
  }
  return static_cast<float>(value);
}

template <bool kBigEndian>
float decode_half(const unsigned char* bytes) {
  return half_to_float(load_bits<uint16_t, kBigEndian>(bytes));
}

template <bool kBigEndian>
float decode_float(const unsigned char* bytes) {
  const uint32_t bits = load_bits<uint32_t, kBigEndian>(bytes);
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

template <bool kBigEndian>
float decode_double(const unsigned char* bytes) {
  const uint64_t bits = load_bits<uint64_t, kBigEndian>(bytes);
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return narrow_to_float(value);
}

template <typename Integer, bool kBigEndian>
float decode_integer(const unsigned char* bytes) {
  const auto bits = load_bits<std::make_unsigned_t<Integer>, kBigEndian>(bytes);
  Integer value;
  std::memcpy(&value, &bits, sizeof value);
  return static_cast<float>(value);
}

using Decoder = float (*)(const unsigned char*);

// A dtype code (kind and size, without byte order) the reader can convert to float32.
struct ElementType {
  std::string_view code;
  size_t size;
  Decoder little_endian;
  Decoder big_endian;
};

constexpr ElementType kElementTypes[] = {
    {"f2", 2, decode_half<false>, decode_half<true>},
    {"f4", 4, decode_float<false>, decode_float<true>},
    {"f8", 8, decode_double<false>, decode_double<true>},
    {"i1", 1, decode_integer<int8_t, false>, decode_integer<int8_t, true>},
    {"i2", 2, decode_integer<int16_t, false>, decode_integer<int16_t, true>},
    {"i4", 4, decode_integer<int32_t, false>, decode_integer<int32_t, true>},
    {"i8", 8, decode_integer<int64_t, false>, decode_integer<int64_t, true>},
    {"u1", 1, decode_integer<uint8_t, false>, decode_integer<uint8_t, true>},
    {"u2", 2, decode_integer<uint16_t, false>, decode_integer<uint16_t, true>},
    {"u4", 4, decode_integer<uint32_t, false>, decode_integer<uint32_t, true>},
    {"u8", 8, decode_integer<uint64_t, false>, decode_integer<uint64_t, true>},
};

// A file's dtype, resolved to a way of decoding its elements.
struct Dtype {
  size_t item_size = 0;
  Decoder decode = nullptr;
  bool host_float32 = false;  // the elements are float32 in the host's byte order and can be copied
};

// Resolves a descr such as '<f4' or '|u1'. Byte order '|' ("not applicable") and '=' mean native.
Dtype resolve_dtype(std::string_view descr, const std::string& argument) {
  const bool host_big_endian = !host_is_little_endian();
  bool big_endian = host_big_endian;
  std::string_view code = descr;
  if (!code.empty() && std::string_view("<>|=").find(code.front()) != std::string_view::npos) {
    if (code.front() != '|' && code.front() != '=') big_endian = code.front() == '>';
    code.remove_prefix(1);
  }
  for (const ElementType& type : kElementTypes) {
    if (type.code == code) {
      return {type.size, big_endian ? type.big_endian : type.little_endian,
              code == "f4" && big_endian == host_big_endian};
    }
  }
  throw Error(
      ErrorId::unsupported, argument,
      "unsupported dtype '" + excerpt(descr) + "': only float and integer dtypes can be read");
}

// ---- Header parsing ----

// A Python literal from the header. Only the forms numpy writes are understood; lists and nested
// tuples are kept so that structured dtypes can be told apart from garbage.
struct Literal {
  enum class Kind { string, integer, boolean, none, sequence };
  Kind kind = Kind::none;
  bool is_tuple = false;       // sequence: a tuple rather than a list
  std::string text;            // string: its contents; integer: its sign and digits
  bool truth = false;          // boolean: its value
  std::vector<Literal> items;  // sequence: its items
};

using Entries = std::vector<std::pair<std::string, Literal>>;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// A recursive-descent parser for the header's dict literal. Every read of the text is checked
// against its end, and nesting is bounded, so no input can make it overrun or exhaust the stack.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& argument)
      : text_(text), argument_(argument) {}

  // The dict's entries in file order; only whitespace may follow the closing brace.
  Entries parse_dict() {
    skip_space();
    expect('{');
    Entries entries;
    skip_space();
    while (!consume('}')) {
      if (peek() != '\'' && peek() != '"') fail("expected a string key");
      std::string key = parse_string().text;
      skip_space();
      expect(':');
      entries.emplace_back(std::move(key), parse_value(0));
      skip_space();
      if (!consume(',')) {
        expect('}');
        break;
      }
      skip_space();
    }
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the dictionary");
    return entries;
  }

 private:
  Literal parse_value(size_t depth) {
    skip_space();
    const char c = peek();
    if (c == '\'' || c == '"') return parse_string();
    if (c == '(' || c == '[') return parse_sequence(depth);
    if (c == '-' || c == '+' || is_digit(c)) return parse_integer();
    if (is_name_start(c)) return parse_name();
    fail("expected a value");
  }

  // A string in either quote style. A backslash keeps the next character, so an escaped quote does
  // not end the string; escapes are not otherwise decoded since no accepted dtype contains one.
  Literal parse_string() {
    Literal literal;
    literal.kind = Literal::Kind::string;
    const char quote = peek();
    ++pos_;
    while (pos_ < text_.size() && text_[pos_] != quote && text_[pos_] != '\n') {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      literal.text += text_[pos_++];
    }
    if (!consume(quote)) fail("unterminated string");
    return literal;
  }

  // An integer; its digits are kept as text so that the caller can check the range.
  Literal parse_integer() {
    Literal literal;
    literal.kind = Literal::Kind::integer;
    if (peek() == '-' || peek() == '+') literal.text += text_[pos_++];
    if (!is_digit(peek())) fail("expected a digit");
    while (is_digit(peek())) literal.text += text_[pos_++];
    if (peek() == 'L' || peek() == 'l') ++pos_;  // Python 2's long suffix, written by old numpy
    return literal;
  }

  Literal parse_name() {
    const size_t start = pos_;
    while (is_name_char(peek())) ++pos_;
    const std::string_view name = text_.substr(start, pos_ - start);
    Literal literal;
    if (name == "True" || name == "False") {
      literal.kind = Literal::Kind::boolean;
      literal.truth = name == "True";
    } else if (name != "None") {
      fail("unknown name '" + excerpt(name) + "'");
    }
    return literal;
  }

  // A tuple or a list. As in Python, "(x)" without a comma is just x in parentheses.
  Literal parse_sequence(size_t depth) {
    if (depth >= kMaxNesting) fail("too deeply nested");
    Literal sequence;
    sequence.kind = Literal::Kind::sequence;
    sequence.is_tuple = peek() == '(';
    const char close = sequence.is_tuple ? ')' : ']';
    ++pos_;
    bool saw_comma = false;
    skip_space();
    while (!consume(close)) {
      sequence.items.push_back(parse_value(depth + 1));
      skip_space();
      if (!consume(',')) {
        expect(close);
        break;
      }
      saw_comma = true;
      skip_space();
    }
    if (sequence.is_tuple && sequence.items.size() == 1 && !saw_comma)
      return std::move(sequence.items[0]);
    return sequence;
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  bool consume(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }

  void skip_space() {
    while (pos_ < text_.size() &&
           std::string_view(" \t\r\n").find(text_[pos_]) != std::string_view::npos)
      ++pos_;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorId::bad_file, argument_,
                "invalid header: " + what + " at offset " + std::to_string(pos_));
  }

  std::string_view text_;
  const std::string& argument_;
  size_t pos_ = 0;
};

// What the header says about the data that follows it.
struct Header {
  Dtype dtype;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  int64_t count = 0;       // number of elements
  uint64_t data_size = 0;  // bytes of data that must follow the header
};

Dtype read_descr(const Literal& descr, const std::string& argument) {
  if (descr.kind == Literal::Kind::string) return resolve_dtype(descr.text, argument);
  if (descr.kind == Literal::Kind::sequence && !descr.is_tuple) {
    throw Error(ErrorId::unsupported, argument,
                "unsupported structured dtype: only float and integer dtypes can be read");
  }
  throw Error(ErrorId::bad_file, argument, "invalid header: 'descr' is not a dtype string");
}

bool read_fortran_order(const Literal& fortran_order, const std::string& argument) {
  if (fortran_order.kind != Literal::Kind::boolean) {
    throw Error(ErrorId::bad_file, argument,
                "invalid header: 'fortran_order' is not True or False");
  }
  return fortran_order.truth;
}

// A dimension from its sign and digits: negative ones are malformed, ones beyond int64 too large.
int64_t read_dimension(const Literal& item, const std::string& argument) {
  if (item.kind != Literal::Kind::integer) {
    throw Error(ErrorId::bad_file, argument, "invalid header: 'shape' is not a tuple of integers");
  }
  std::string_view digits = item.text;
  const char sign = digits.front();
  if (sign == '-' || sign == '+') digits.remove_prefix(1);
  if (sign == '-' && digits.find_first_not_of('0') != std::string_view::npos) {
    throw Error(ErrorId::bad_file, argument,
                "invalid header: negative dimension " + excerpt(item.text) + " in 'shape'");
  }
  int64_t value = 0;
  for (char digit : digits) {
    const int digit_value = digit - '0';
    if (value > (kMaxInt64 - digit_value) / 10) {
      throw Error(ErrorId::too_large, argument,
                  "dimension " + excerpt(item.text) + " does not fit in 64 bits");
    }
    value = value * 10 + digit_value;
  }
  return value;
}

std::vector<int64_t> read_shape(const Literal& shape, const std::string& argument) {
  if (shape.kind != Literal::Kind::sequence || !shape.is_tuple) {
    throw Error(ErrorId::bad_file, argument, "invalid header: 'shape' is not a tuple of integers");
  }
  std::vector<int64_t> dims;
  for (const Literal& item : shape.items) dims.push_back(read_dimension(item, argument));
  return dims;
}

// The number of elements of a shape with no negative dimension. The product of the non-zero
// dimensions must fit in int64 even when some dimension is 0, so that Array::size() can multiply in
// any order.
int64_t element_count(const std::vector<int64_t>& shape, const std::string& argument) {
  int64_t nonzero_product = 1;
  bool empty = false;
  for (int64_t dim : shape) {
    if (dim == 0) {
      empty = true;
    } else if (nonzero_product > kMaxInt64 / dim) {
      throw Error(
          ErrorId::too_large, argument,
          "shape " + excerpt(format_shape(shape)) + " has more elements than fit in 64 bits");
    } else {
      nonzero_product *= dim;
    }
  }
  return empty ? 0 : nonzero_product;
}

// Bytes taken by `count` elements of `item_size` bytes, checked to be addressable both as those
// bytes and as the float32 array they become.
uint64_t data_size(int64_t count, size_t item_size, const std::string& argument) {
  const uint64_t max_bytes = std::min<uint64_t>(kMaxInt64, std::numeric_limits<size_t>::max());
  if (static_cast<uint64_t>(count) > max_bytes / item_size ||
      static_cast<uint64_t>(count) > std::vector<float>().max_size()) {
    throw Error(ErrorId::too_large, argument,
                std::to_string(count) + " elements of " + std::to_string(item_size) +
                    " bytes are more than can be held in memory");
  }
  return static_cast<uint64_t>(count) * item_size;
}

// Checks that the header has exactly the keys numpy writes, then interprets them.
Header interpret(const Entries& entries, const std::string& argument) {
  const Literal* descr = nullptr;
  const Literal* fortran_order = nullptr;
  const Literal* shape = nullptr;
  for (const auto& [key, value] : entries) {
    const Literal** slot = key == "descr"           ? &descr
                           : key == "fortran_order" ? &fortran_order
                           : key == "shape"         ? &shape
                                                    : nullptr;
    if (slot == nullptr)
      throw Error(ErrorId::bad_file, argument,
                  "invalid header: unexpected key '" + excerpt(key) + "'");
    if (*slot != nullptr)
      throw Error(ErrorId::bad_file, argument, "invalid header: duplicate key '" + key + "'");
    *slot = &value;
  }
  const auto require = [&](const Literal* value, const char* name) -> const Literal& {
    if (value == nullptr)
      throw Error(ErrorId::bad_file, argument,
                  std::string("invalid header: no '") + name + "' key");
    return *value;
  };
  Header header;
  header.dtype = read_descr(require(descr, "descr"), argument);
  header.fortran_order = read_fortran_order(require(fortran_order, "fortran_order"), argument);
  header.shape = read_shape(require(shape, "shape"), argument);
  header.count = element_count(header.shape, argument);
  header.data_size = data_size(header.count, header.dtype.item_size, argument);
  return header;
}

Header parse_header(std::string_view text, const std::string& argument) {
  return interpret(HeaderParser(text, argument).parse_dict(), argument);
}

// The fixed-size start of a file.
struct Preamble {
  size_t size = 0;         // bytes before the header
  size_t header_size = 0;  // bytes of header, padding included
};

// Reads the preamble from the first `start_size` bytes of a file of `file_size` bytes (start_size
// is the smaller of file_size and kVersion2PreambleSize) and checks that the header fits in the
// file.
Preamble parse_preamble(const unsigned char* start, size_t start_size, uint64_t file_size,
                        const std::string& argument) {
  if (start_size < kMagicSize || std::memcmp(start, kMagic, kMagicSize) != 0) {
    throw Error(ErrorId::bad_file, argument, "not a .npy file: bad magic string");
  }
  if (start_size < kMagicSize + 2)
    throw Error(ErrorId::bad_file, argument, "truncated header: no version");
  const unsigned major = start[kMagicSize];
  const unsigned minor = start[kMagicSize + 1];
  if (major < 1 || major > 3 || minor != 0) {
    throw Error(
        ErrorId::unsupported, argument,
        "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor));
  }
  Preamble preamble;
  preamble.size = major == 1 ? kVersion1PreambleSize : kVersion2PreambleSize;
  if (start_size < preamble.size)
    throw Error(ErrorId::bad_file, argument, "truncated header: no header length");
  for (size_t i = kMagicSize + 2; i < preamble.size; ++i) {
    preamble.header_size |= static_cast<size_t>(start[i]) << (8 * (i - kMagicSize - 2));
  }
  if (preamble.header_size > file_size - preamble.size) {
    throw Error(ErrorId::bad_file, argument,
                "truncated header: expected " + std::to_string(preamble.header_size) +
                    " bytes of header, found " + std::to_string(file_size - preamble.size));
  }
  return preamble;
}

// Checks the data size the header implies against the bytes the file has left after the header.
void check_data_size(const Header& header, uint64_t available, const std::string& argument) {
  if (available == header.data_size) return;
  throw Error(ErrorId::bad_file, argument,
              std::string(available < header.data_size ? "truncated file"
                                                       : "trailing bytes after the data") +
                  ": expected " + std::to_string(header.data_size) + " bytes of data, found " +
                  std::to_string(available));
}

// Whether the data bytes are already the C-order float32 array, so that they can be copied as they
// are.
bool is_host_float32_c_order(const Header& header) {
  return header.dtype.host_float32 && !(header.fortran_order && header.shape.size() > 1);
}

// Reads Fortran-ordered elements in file order and scatters them to their C-order positions,
// keeping the C offset of the current multi-index up to date rather than recomputing it. Needs
// count > 0.
void decode_fortran(const Header& header, const unsigned char* raw, float* out) {
  // The extents and C strides of the dimensions, the first (the fastest-varying) first. Dimensions
  // of extent 1 never move an element and are left out, which keeps the carry below amortized
  // constant per element however many of them a header lists.
  std::vector<int64_t> extent, c_stride;
  int64_t stride = 1;
  for (size_t k = header.shape.size(); k-- > 0;) {
    if (header.shape[k] > 1) {
      extent.push_back(header.shape[k]);
      c_stride.push_back(stride);
    }
    stride *= header.shape[k];
  }
  std::reverse(extent.begin(), extent.end());
  std::reverse(c_stride.begin(), c_stride.end());
  std::vector<int64_t> index(extent.size(), 0);
  int64_t c_offset = 0;
  for (int64_t i = 0; i < header.count; ++i) {
    out[c_offset] = header.dtype.decode(raw + static_cast<size_t>(i) * header.dtype.item_size);
    for (size_t k = 0; k < extent.size(); ++k) {
      c_offset += c_stride[k];
      if (++index[k] < extent[k]) break;
      c_offset -= c_stride[k] * extent[k];
      index[k] = 0;
    }
  }
}

// Converts the header's data_size bytes at `raw` to header.count floats in C order at `out`.
void decode_data(const Header& header, const unsigned char* raw, float* out) {
  if (header.count == 0) return;
  if (is_host_float32_c_order(header)) {
    std::memcpy(out, raw, header.data_size);
  } else if (header.fortran_order && header.shape.size() > 1) {
    decode_fortran(header, raw, out);
  } else {
    for (int64_t i = 0; i < header.count; ++i) {
      out[i] = header.dtype.decode(raw + static_cast<size_t>(i) * header.dtype.item_size);
    }
  }
}

// ---- Files ----

// A file opened for reading, closed when it goes out of scope.
class InputFile {
 public:
  InputFile(const std::string& path, const std::string& argument)
      : path_(path), argument_(argument) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw_io_error(argument_, "cannot open " + path_, errno);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // The size in bytes. Only regular files are accepted, since the size must be known before
  // reading.
  uint64_t size() const {
    struct stat info {};
    if (::fstat(fd_, &info) != 0) throw_io_error(argument_, "cannot read " + path_, errno);
    if (!S_ISREG(info.st_mode))
      throw Error(ErrorId::io_error, argument_, "cannot read " + path_ + ": not a regular file");
    return static_cast<uint64_t>(info.st_size);
  }

  // Reads exactly `size` bytes starting at `offset`.
  void read_at(uint64_t offset, void* out, size_t size) const {
    constexpr size_t kMaxChunk = size_t{1}
                                 << 30;  // read() may not take more than SSIZE_MAX at once
    auto* cursor = static_cast<unsigned char*>(out);
    while (size > 0) {
      const ssize_t got =
          ::pread(fd_, cursor, std::min(size, kMaxChunk), static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw_io_error(argument_, "cannot read " + path_, errno);
      if (got == 0)
        throw Error(ErrorId::io_error, argument_,
                    "cannot read " + path_ + ": the file shrank while being read");
      cursor += got;
      offset += static_cast<uint64_t>(got);
      size -= static_cast<size_t>(got);
    }
  }

 private:
  std::string path_;
  std::string argument_;
  int fd_ = -1;
};

// Reads the preamble and the header of `file` in stages, so that each size is checked against the
// file size before its bytes are read, and checks the data size the header implies. Returns the
// header and the offset of the data.
std::pair<Header, uint64_t> read_header(const InputFile& file, const std::string& argument) {
  const uint64_t file_size = file.size();
  unsigned char start[kVersion2PreambleSize];
  const size_t start_size = static_cast<size_t>(std::min<uint64_t>(file_size, sizeof start));
  file.read_at(0, start, start_size);
  const Preamble preamble = parse_preamble(start, start_size, file_size, argument);

  std::string header_text(preamble.header_size, '\0');
  file.read_at(preamble.size, header_text.data(), header_text.size());
  const Header header = parse_header(header_text, argument);
  const uint64_t data_offset = preamble.size + preamble.header_size;
  check_data_size(header, file_size - data_offset, argument);
  return {header, data_offset};
}

// A temporary file beside the destination, renamed over it by commit() and removed if never
// committed, so that the destination is either left as it was or replaced whole.
class TempFile {
 public:
  TempFile(const std::string& destination, const std::string& argument)
      : destination_(destination), argument_(argument) {
    // Like mkstemp, but created with mode 0666 so the umask applies as to any new file, without
    // touching the process-wide umask.
    std::random_device random;
    for (int attempt = 0; attempt < 100 && fd_ < 0; attempt++) {
      name_ = destination + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(random());
      fd_ = ::open(name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && errno != EEXIST) break;
    }
    if (fd_ < 0)
      throw_io_error(argument_, "cannot create a temporary file for " + destination_, errno);
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(name_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* bytes, size_t size) {
    const auto* cursor = static_cast<const unsigned char*>(bytes);
    while (size > 0) {
      const ssize_t written = ::write(fd_, cursor, size);
      if (written < 0 && errno == EINTR) continue;
      if (written < 0) throw_io_error(argument_, "cannot write " + destination_, errno);
      cursor += written;
      size -= static_cast<size_t>(written);
    }
  }

  void commit() {
    // close() can report a failed write-back (e.g. on NFS), so its result matters.
    if (::close(std::exchange(fd_, -1)) != 0)
      throw_io_error(argument_, "cannot write " + destination_, errno);
    if (::rename(name_.c_str(), destination_.c_str()) != 0) {
      throw_io_error(argument_, "cannot replace " + destination_, errno);
    }
    committed_ = true;
  }

 private:
  std::string destination_;
  std::string argument_;
  std::string name_;
  int fd_ = -1;
  bool committed_ = false;
};

// The preamble and header numpy itself writes for a float32 C-order array: the dict, space padding
// that aligns the data to 64 bytes, and a newline. Version 2.0 is used only when version 1.0's
// 16-bit header length cannot hold the header.
std::string encode_preamble_and_header(const std::vector<int64_t>& shape) {
  const std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + format_shape(shape) + ", }";
  const auto padded_header_size = [&](size_t preamble_size) {
    const size_t unpadded = preamble_size + dict.size() + 1;
    return dict.size() + 1 + (kHeaderAlignment - unpadded % kHeaderAlignment) % kHeaderAlignment;
  };
  const bool version1 = padded_header_size(kVersion1PreambleSize) <= kMaxVersion1HeaderSize;
  const size_t preamble_size = version1 ? kVersion1PreambleSize : kVersion2PreambleSize;
  const size_t header_size = padded_header_size(preamble_size);

  std::string out(reinterpret_cast<const char*>(kMagic), kMagicSize);
  out += static_cast<char>(version1 ? 1 : 2);
  out += '\0';
  for (size_t i = 0; i < preamble_size - kMagicSize - 2; ++i)
    out += static_cast<char>((header_size >> (8 * i)) & 0xff);
  out += dict;
  out.append(header_size - dict.size() - 1, ' ');
  out += '\n';
  return out;
}

// Streams the elements as little-endian float32 through a small buffer, whatever the host's byte
// order.
void write_elements(TempFile& file, const float* data, int64_t count) {
  constexpr int64_t kChunkElements = 16384;
  std::vector<unsigned char> buffer(static_cast<size_t>(kChunkElements) * 4);
  for (int64_t begin = 0; begin < count; begin += kChunkElements) {
    const size_t chunk = static_cast<size_t>(std::min(kChunkElements, count - begin));
    for (size_t i = 0; i < chunk; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &data[begin + static_cast<int64_t>(i)], sizeof bits);
      for (size_t byte = 0; byte < 4; ++byte)
        buffer[4 * i + byte] = static_cast<unsigned char>(bits >> (8 * byte));
    }
    file.write(buffer.data(), 4 * chunk);
  }
}

}  // namespace

int64_t Array::size() const {
  int64_t product = 1;
  for (int64_t dim : shape) product *= dim;
  return product;
}

Array parse(const unsigned char* bytes, size_t size, const std::string& argument) {
  const Preamble preamble =
      parse_preamble(bytes, std::min(size, kVersion2PreambleSize), size, argument);
  const std::string_view header_text(reinterpret_cast<const char*>(bytes) + preamble.size,
                                     preamble.header_size);
  const Header header = parse_header(header_text, argument);
  const size_t data_offset = preamble.size + preamble.header_size;
  check_data_size(header, size - data_offset, argument);
  Array array;
  array.shape = header.shape;
  array.data.resize(static_cast<size_t>(header.count));
  decode_data(header, bytes + data_offset, array.data.data());
  return array;
}

std::vector<int64_t> read_shape(const std::string& path, const std::string& argument) {
  return read_header(InputFile(path, argument), argument).first.shape;
}

Array read(const std::string& path, const std::string& argument) {
  const InputFile file(path, argument);
  const auto [header, data_offset] = read_header(file, argument);
  Array array;
  array.shape = header.shape;
  array.data.resize(static_cast<size_t>(header.count));
  if (is_host_float32_c_order(header)) {
    file.read_at(data_offset, array.data.data(), static_cast<size_t>(header.data_size));
  } else {
    std::vector<unsigned char> raw(static_cast<size_t>(header.data_size));
    file.read_at(data_offset, raw.data(), raw.size());
    decode_data(header, raw.data(), array.data.data());
  }
  return array;
}

void write(const std::string& path, const std::vector<int64_t>& shape, const float* data,
           const std::string& argument) {
  for (int64_t dim : shape) {
    if (dim < 0) {
      throw Error(ErrorId::invalid_argument, argument,
                  "cannot write an array of shape " + excerpt(format_shape(shape)) +
                      ": negative dimension");
    }
  }
  const int64_t count = element_count(shape, argument);
  data_size(count, sizeof(float), argument);  // throws if the data could not be held in memory
  const std::string header = encode_preamble_and_header(shape);

  TempFile file(path, argument);
  file.write(header.data(), header.size());
  write_elements(file, data, count);
  file.commit();
}

}  // namespace convgen::npy
