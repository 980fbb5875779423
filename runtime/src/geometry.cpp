#include "convgen/geometry.h"

#include <algorithm>
#include <iterator>
#include <tuple>
#include <utility>

#include "convgen/error.h"

namespace convgen {
namespace {

std::string join(const std::vector<int64_t>& values) {
  std::string text;
  for (size_t i = 0; i < values.size(); i++) {
    text += (i ? "," : "") + std::to_string(values[i]);
  }
  return text;
}

// Positions of height, width and channel in data-format order (batch is always first).
struct Positions {
  int h, w, c;
};
Positions positions(DataFormat format) {
  return format == DataFormat::NHWC ? Positions{1, 2, 3} : Positions{2, 3, 1};
}

// Checks a TensorFlow 4-entry stride or dilation list and returns its (h, w) entries.
std::pair<int64_t, int64_t> spatial_pair(const std::vector<int64_t>& values, DataFormat format,
                                         const std::string& argument, ErrorId id) {
  if (values.size() != 4) {
    throw Error(ErrorId::invalid_argument, argument,
                "expected 4 values in " + std::string(to_string(format)) + " order, got " +
                    std::to_string(values.size()) + " (" + join(values) + ")");
  }
  const Positions p = positions(format);
  if (values[0] != 1 || values[p.c] != 1) {
    throw Error(id, argument, "batch and channel entries must be 1, got " + join(values));
  }
  if (values[p.h] < 1 || values[p.w] < 1) {
    throw Error(id, argument, "height and width entries must be >= 1, got " + join(values));
  }
  return {values[p.h], values[p.w]};
}

// Output size and leading pad of one spatial dimension (SPEC.md, "Geometry").
struct Dimension {
  int64_t out, pad_before, pad_after;
};
Dimension resolve(int64_t in, int64_t filter, int64_t stride, int64_t dilation, Padding padding,
                  int64_t before, int64_t after, const char* dimension) {
  const int64_t effective = (filter - 1) * dilation + 1;
  switch (padding) {
    case Padding::SAME: {
      const int64_t out = (in + stride - 1) / stride;
      const int64_t total = std::max<int64_t>((out - 1) * stride + effective - in, 0);
      return {out, total / 2, total - total / 2};
    }
    case Padding::VALID:
      if (in < effective) {
        throw Error(ErrorId::empty_output, "input",
                    std::string("VALID padding needs an input ") + dimension + " of at least " +
                        std::to_string(effective) + " (the dilated filter " + dimension +
                        "), got " + std::to_string(in));
      }
      return {(in - effective) / stride + 1, 0, 0};
    case Padding::EXPLICIT:
      if (in + before + after < effective) {
        throw Error(ErrorId::empty_output, "explicit_paddings",
                    std::string("padded input ") + dimension + " " +
                        std::to_string(in + before + after) +
                        " is smaller than the dilated filter " + dimension + " " +
                        std::to_string(effective));
      }
      return {(in + before + after - effective) / stride + 1, before, after};
  }
  return {};
}

}  // namespace

const char* to_string(DataFormat format) { return format == DataFormat::NHWC ? "NHWC" : "NCHW"; }

const char* to_string(Padding padding) {
  switch (padding) {
    case Padding::SAME: return "SAME";
    case Padding::VALID: return "VALID";
    case Padding::EXPLICIT: return "EXPLICIT";
  }
  return "?";
}

const char* to_string(Op op) {
  switch (op) {
    case Op::conv2d: return "conv2d";
    case Op::conv2d_backprop_input: return "conv2d_backprop_input";
    case Op::conv2d_backprop_filter: return "conv2d_backprop_filter";
  }
  return "?";
}

DataFormat parse_data_format(const std::string& text, const std::string& argument) {
  for (DataFormat f : {DataFormat::NHWC, DataFormat::NCHW}) {
    if (text == to_string(f)) return f;
  }
  throw Error(ErrorId::invalid_argument, argument, "expected NHWC or NCHW, got '" + text + "'");
}

Padding parse_padding(const std::string& text, const std::string& argument) {
  for (Padding p : {Padding::SAME, Padding::VALID, Padding::EXPLICIT}) {
    if (text == to_string(p)) return p;
  }
  throw Error(ErrorId::invalid_argument, argument,
              "expected SAME, VALID or EXPLICIT, got '" + text + "'");
}

Op parse_op(const std::string& text, const std::string& argument) {
  for (Op op : {Op::conv2d, Op::conv2d_backprop_input, Op::conv2d_backprop_filter}) {
    if (text == to_string(op)) return op;
  }
  throw Error(ErrorId::invalid_argument, argument,
              "expected conv2d, conv2d_backprop_input or conv2d_backprop_filter, got '" + text +
                  "'");
}

Attributes Attributes::from_tensorflow(DataFormat format, const std::vector<int64_t>& strides,
                                       Padding padding,
                                       const std::vector<int64_t>& explicit_paddings,
                                       const std::vector<int64_t>& dilations) {
  Attributes a;
  a.format = format;
  a.padding = padding;
  std::tie(a.stride_h, a.stride_w) =
      spatial_pair(strides, format, "strides", ErrorId::invalid_stride);
  if (!dilations.empty()) {
    std::tie(a.dilation_h, a.dilation_w) =
        spatial_pair(dilations, format, "dilations", ErrorId::invalid_dilation);
  }
  if (padding != Padding::EXPLICIT) {
    if (!explicit_paddings.empty()) {
      throw Error(ErrorId::invalid_padding, "explicit_paddings",
                  std::string("only allowed with EXPLICIT padding, not ") + to_string(padding));
    }
    return a;
  }
  if (explicit_paddings.size() != 8) {
    throw Error(ErrorId::invalid_padding, "explicit_paddings",
                "EXPLICIT padding needs 8 values (a before,after pair per dimension), got " +
                    std::to_string(explicit_paddings.size()));
  }
  for (int64_t pad : explicit_paddings) {
    if (pad < 0) {
      throw Error(ErrorId::invalid_padding, "explicit_paddings",
                  "pads must be >= 0, got " + join(explicit_paddings));
    }
  }
  const Positions p = positions(format);
  const auto& e = explicit_paddings;
  if (e[0] || e[1] || e[2 * p.c] || e[2 * p.c + 1]) {
    throw Error(ErrorId::invalid_padding, "explicit_paddings",
                "batch and channel pads must be 0, got " + join(e));
  }
  a.pad_top = e[2 * p.h];
  a.pad_bottom = e[2 * p.h + 1];
  a.pad_left = e[2 * p.w];
  a.pad_right = e[2 * p.w + 1];
  return a;
}

Geometry Geometry::make(const ActivationShape& input, const FilterShape& filter,
                        const Attributes& attributes) {
  // Every size a compiled kernel indexes must fit in Halide's 32-bit extents.
  constexpr int64_t limit = kMaxTensorElements;
  // A value below its minimum gets the id error.h documents for its argument (a stride < 1 is
  // invalid_stride, ...); a value above the limit is too_large.
  auto below_min = [](const std::string& argument) {
    if (argument == "strides") return ErrorId::invalid_stride;
    if (argument == "dilations") return ErrorId::invalid_dilation;
    if (argument == "explicit_paddings") return ErrorId::invalid_padding;
    return ErrorId::shape_mismatch;
  };
  auto check_size = [&](int64_t value, const char* argument, const char* what, int64_t min) {
    if (value < min || value > limit) {
      throw Error(value > limit ? ErrorId::too_large : below_min(argument), argument,
                  std::string(what) + " must be in [" + std::to_string(min) + ", " +
                      std::to_string(limit) + "], got " + std::to_string(value));
    }
  };
  check_size(input.n, "input", "batch", 1);
  check_size(input.h, "input", "height", 1);
  check_size(input.w, "input", "width", 1);
  check_size(input.c, "input", "channels", 1);
  check_size(filter.r, "filter", "filter height", 1);
  check_size(filter.s, "filter", "filter width", 1);
  check_size(filter.c, "filter", "filter in_channels", 1);
  check_size(filter.k, "filter", "filter out_channels", 1);
  if (filter.c != input.c) {
    throw Error(ErrorId::shape_mismatch, "filter",
                "in_channels " + std::to_string(filter.c) + " differ from the input's channels " +
                    std::to_string(input.c));
  }
  const Attributes& a = attributes;
  check_size(a.stride_h, "strides", "stride", 1);
  check_size(a.stride_w, "strides", "stride", 1);
  check_size(a.dilation_h, "dilations", "dilation", 1);
  check_size(a.dilation_w, "dilations", "dilation", 1);
  for (int64_t pad : {a.pad_top, a.pad_bottom, a.pad_left, a.pad_right}) {
    check_size(pad, "explicit_paddings", "pad", 0);
  }
  // The dilated filter must also stay indexable.
  check_size((filter.r - 1) * a.dilation_h + 1, "dilations", "dilated filter height", 1);
  check_size((filter.s - 1) * a.dilation_w + 1, "dilations", "dilated filter width", 1);

  Geometry g;
  g.input_ = input;
  g.filter_ = filter;
  g.attributes_ = a;
  const Dimension h = resolve(input.h, filter.r, a.stride_h, a.dilation_h, a.padding, a.pad_top,
                              a.pad_bottom, "height");
  const Dimension w = resolve(input.w, filter.s, a.stride_w, a.dilation_w, a.padding, a.pad_left,
                              a.pad_right, "width");
  g.output_ = {input.n, h.out, w.out, filter.k};
  g.pad_top_ = h.pad_before;
  g.pad_bottom_ = h.pad_after;
  g.pad_left_ = w.pad_before;
  g.pad_right_ = w.pad_after;
  // So must the padded input. Only EXPLICIT pads are the caller's; SAME pads grow with the dilated
  // filter, and the error then names the input (as VALID's too small input does).
  const char* padded = a.padding == Padding::EXPLICIT ? "explicit_paddings" : "input";
  check_size(input.h + g.pad_top_ + g.pad_bottom_, padded, "padded height", 1);
  check_size(input.w + g.pad_left_ + g.pad_right_, padded, "padded width", 1);
  checked_element_count(g.input_dims(), "input");
  checked_element_count(g.output_dims(), "output");
  checked_element_count(g.filter_dims(), "filter", kMaxFilterElements);
  return g;
}

std::array<int64_t, 4> Geometry::dims_of(const ActivationShape& s) const {
  if (format() == DataFormat::NHWC) return {s.n, s.h, s.w, s.c};
  return {s.n, s.c, s.h, s.w};
}

double Geometry::flops() const {
  return 2.0 * double(output_.n) * double(output_.h) * double(output_.w) * double(filter_.k) *
         double(filter_.r) * double(filter_.s) * double(filter_.c);
}

std::string Geometry::key() const {
  auto s = [](int64_t v) { return std::to_string(v); };
  std::string key = "n" + s(input_.n) + "h" + s(input_.h) + "w" + s(input_.w) + "c" + s(input_.c) +
                    "_k" + s(filter_.k) + "r" + s(filter_.r) + "s" + s(filter_.s) + "_sh" +
                    s(stride_h()) + "sw" + s(stride_w()) + "dh" + s(dilation_h()) + "dw" +
                    s(dilation_w()) + "_pt" + s(pad_top_) + "pb" + s(pad_bottom_) + "pl" +
                    s(pad_left_) + "pr" + s(pad_right_) + "_";
  return key + (format() == DataFormat::NHWC ? "nhwc" : "nchw");
}

Geometry Geometry::from_key(const std::string& key, const std::string& argument) {
  // Reads "<label><digits>" pairs in the order key() writes them, then the layout suffix.
  static const char* const labels[] = {"n",   "h",   "w",   "c",   "_k",  "r",   "s",  "_sh",
                                       "sw",  "dh",  "dw",  "_pt", "pb",  "pl",  "pr"};
  int64_t v[15];
  size_t at = 0;
  auto bad = [&](const std::string& why) {
    return Error(ErrorId::invalid_argument, argument, "malformed shape key '" + key + "': " + why);
  };
  for (size_t i = 0; i < 15; i++) {
    const std::string label = labels[i];
    if (key.compare(at, label.size(), label) != 0) throw bad("expected '" + label + "'");
    at += label.size();
    const size_t digits = key.find_first_not_of("0123456789", at);
    const size_t end = digits == std::string::npos ? key.size() : digits;
    if (end == at || end - at > 10) throw bad("expected a number after '" + label + "'");
    v[i] = std::stoll(key.substr(at, end - at));
    at = end;
  }
  const std::string suffix = key.substr(at);
  if (suffix != "_nhwc" && suffix != "_nchw") throw bad("expected '_nhwc' or '_nchw' at the end");
  Attributes a;
  a.format = suffix == "_nhwc" ? DataFormat::NHWC : DataFormat::NCHW;
  a.padding = Padding::EXPLICIT;
  a.stride_h = v[7], a.stride_w = v[8], a.dilation_h = v[9], a.dilation_w = v[10];
  a.pad_top = v[11], a.pad_bottom = v[12], a.pad_left = v[13], a.pad_right = v[14];
  const Geometry g = make({v[0], v[1], v[2], v[3]}, {v[5], v[6], v[3], v[4]}, a);
  // Leading zeros or numbers out of range make a key that key() would not write.
  if (g.key() != key) throw bad("not in canonical form (expected '" + g.key() + "')");
  return g;
}

ActivationShape activation_shape(const std::vector<int64_t>& dims, DataFormat format,
                                 const std::string& argument) {
  if (dims.size() != 4) {
    throw Error(ErrorId::shape_mismatch, argument,
                std::string("expected a 4-d tensor in ") + to_string(format) + " order, got " +
                    std::to_string(dims.size()) + " dimensions (" + join(dims) + ")");
  }
  const Positions p = positions(format);
  return {dims[0], dims[p.h], dims[p.w], dims[p.c]};
}

FilterShape filter_shape(const std::vector<int64_t>& dims, const std::string& argument) {
  if (dims.size() != 4) {
    throw Error(ErrorId::shape_mismatch, argument,
                "expected a 4-d HWIO filter, got " + std::to_string(dims.size()) +
                    " dimensions (" + join(dims) + ")");
  }
  return {dims[0], dims[1], dims[2], dims[3]};
}

int64_t checked_element_count(const std::array<int64_t, 4>& dims, const std::string& argument,
                              int64_t limit) {
  int64_t count = 1;
  for (int64_t d : dims) {
    if (d < 0) {
      throw Error(ErrorId::shape_mismatch, argument, "negative dimension " + std::to_string(d));
    }
    if (d != 0 && count > limit / d) {
      std::string shape;
      for (int64_t e : dims) shape += (shape.empty() ? "" : "x") + std::to_string(e);
      throw Error(ErrorId::too_large, argument,
                  shape + " has more elements than the " + std::to_string(limit) +
                      " a kernel can take");
    }
    count *= d;
  }
  return count;
}

bool takes_blocked_filter(Op op, const Geometry& g) {
  switch (op) {
    case Op::conv2d: return g.filter().k % kFilterBlock == 0;
    case Op::conv2d_backprop_input: return g.filter().c % kFilterBlock == 0;
    case Op::conv2d_backprop_filter: return false;
  }
  return false;
}

Thin thin_images(Op op, const Geometry& g) {
  if (g.format() != DataFormat::NHWC) return Thin::none;
  auto thin = [](int64_t channels) {
    return std::find(std::begin(kThinChannels), std::end(kThinChannels), channels) !=
           std::end(kThinChannels);
  };
  const bool unit_columns = g.stride_w() == 1;
  const FilterShape& f = g.filter();
  bool images = false;
  switch (op) {
    case Op::conv2d: images = unit_columns && thin(f.k); break;
    case Op::conv2d_backprop_input:
      if (thin(f.c) && f.k >= kThinSummedChannels) return Thin::deep;
      images = unit_columns && thin(f.c);
      break;
    case Op::conv2d_backprop_filter: images = unit_columns && thin(f.c) && f.k == 1; break;
  }
  return images ? Thin::images : Thin::none;
}

const char* to_string(Thin thin) {
  switch (thin) {
    case Thin::none: return "none";
    case Thin::images: return "images";
    case Thin::deep: return "deep";
  }
  return "?";
}

std::array<int64_t, 4> blocked_filter_dims(Op op, const Geometry& g) {
  // Blocks along the out-channels (the innermost HWIO dimension) or the in-channels.
  const FilterShape& f = g.filter();
  const bool along_k = op == Op::conv2d;
  return {(along_k ? f.k : f.c) / kFilterBlock, f.r, f.s, (along_k ? f.c : f.k) * kFilterBlock};
}

void block_filter(Op op, const Geometry& g, const float* hwio, float* blocked) {
  const FilterShape& f = g.filter();
  const bool along_k = op == Op::conv2d;
  const auto [blocks, r, s, row] = blocked_filter_dims(op, g);
  const int64_t other = row / kFilterBlock;  // the channel dimension inside a block's rows
  const int64_t taps = r * s;
  for (int64_t b = 0; b < blocks; b++) {
    for (int64_t tap = 0; tap < taps; tap++) {
      for (int64_t o = 0; o < other; o++) {
        float* row = blocked + ((b * taps + tap) * other + o) * kFilterBlock;
        for (int64_t i = 0; i < kFilterBlock; i++) {
          const int64_t ch = b * kFilterBlock + i;
          const int64_t k = along_k ? ch : o, c = along_k ? o : ch;
          row[i] = hwio[(tap * f.c + c) * f.k + k];
        }
      }
    }
  }
}

}  // namespace convgen
