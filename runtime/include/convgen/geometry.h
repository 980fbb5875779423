// The geometry of a 2-D convolution: the one place that validates shapes and attributes and computes
// output sizes and paddings exactly as TensorFlow does (see SPEC.md). The reference, the compiled
// kernels' callers and the tools all start from a Geometry.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace convgen {

enum class DataFormat { NHWC, NCHW };
enum class Padding { SAME, VALID, EXPLICIT };
enum class Op { conv2d, conv2d_backprop_input, conv2d_backprop_filter };

const char* to_string(DataFormat format);
const char* to_string(Padding padding);
const char* to_string(Op op);
// Parse the spellings above; throw ErrorId::invalid_argument naming `argument` otherwise.
DataFormat parse_data_format(const std::string& text, const std::string& argument);
Padding parse_padding(const std::string& text, const std::string& argument);
Op parse_op(const std::string& text, const std::string& argument);

// The logical size of an activation tensor, independent of its layout.
struct ActivationShape {
  int64_t n = 0, h = 0, w = 0, c = 0;
  bool operator==(const ActivationShape& o) const {
    return n == o.n && h == o.h && w == o.w && c == o.c;
  }
  bool operator!=(const ActivationShape& o) const { return !(*this == o); }
};

// A filter is always HWIO: [r (height), s (width), c (in channels), k (out channels)].
struct FilterShape {
  int64_t r = 0, s = 0, c = 0, k = 0;
  bool operator==(const FilterShape& o) const {
    return r == o.r && s == o.s && c == o.c && k == o.k;
  }
  bool operator!=(const FilterShape& o) const { return !(*this == o); }
};

// The operator attributes, per spatial dimension (TensorFlow's 4-entry forms are parsed by
// Attributes::from_tensorflow).
struct Attributes {
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  Padding padding = Padding::VALID;
  // Only for EXPLICIT: before/after pads of height and width.
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  DataFormat format = DataFormat::NHWC;

  // From TensorFlow's attribute lists, in data-format order: strides and dilations have 4 entries
  // whose batch and channel entries must be 1; explicit_paddings has 8 (a before/after pair per
  // dimension) and is required exactly when padding is EXPLICIT. Empty dilations mean all 1.
  static Attributes from_tensorflow(DataFormat format, const std::vector<int64_t>& strides,
                                    Padding padding,
                                    const std::vector<int64_t>& explicit_paddings,
                                    const std::vector<int64_t>& dilations);
};

// The largest tensors a Geometry admits, so that every geometry it admits runs on every kernel.
// Halide buffers index with 32-bit extents and strides: a tensor a kernel is given has at most
// 2^31 - 1 elements. A buffer a kernel allocates for itself has at most 2^31 - 1 bytes, and
// conv2d_backprop_input kernels keep a copy of the filter: a filter has at most (2^31 - 1) / 4
// float32 elements (2 GiB). Every size, pad and index then fits in 32 bits as well.
constexpr int64_t kMaxTensorElements = 2147483647;
constexpr int64_t kMaxFilterElements = kMaxTensorElements / 4;

// How a kernel takes its filter. HWIO as the user stores it, or packed once ahead of the calls
// (Engine::pack_filter) into blocks of kFilterBlock channels, those that a register tile loads as
// vectors (out-channels for conv2d, in-channels for conv2d_backprop_input): block b holds those
// channels' taps, in-channel (out-channel) and tap column and row order,
//   blocked[b][r][s][other][i] = hwio[r][s][..][..] at channel b * kFilterBlock + i,
// so that a tile reads its filter as contiguous streams instead of 64-byte pieces a row apart.
enum class FilterLayout { hwio, blocked };
constexpr int64_t kFilterBlock = 16;  // one 64-byte cache line of float32

// A fully resolved, validated convolution problem: every size and pad is known.
class Geometry {
 public:
  // Validates `input`, `filter` and `attributes` together; throws convgen::Error naming the offending
  // argument ("input", "filter", "output", "strides", "dilations", "explicit_paddings") otherwise:
  // ErrorId::too_large when a size, or the element count of the input, the output or the filter,
  // exceeds the limits above.
  static Geometry make(const ActivationShape& input, const FilterShape& filter,
                       const Attributes& attributes);

  const ActivationShape& input() const { return input_; }
  const ActivationShape& output() const { return output_; }
  const FilterShape& filter() const { return filter_; }
  const Attributes& attributes() const { return attributes_; }
  DataFormat format() const { return attributes_.format; }

  int64_t stride_h() const { return attributes_.stride_h; }
  int64_t stride_w() const { return attributes_.stride_w; }
  int64_t dilation_h() const { return attributes_.dilation_h; }
  int64_t dilation_w() const { return attributes_.dilation_w; }
  // Resolved pads (for SAME computed from the sizes; for VALID zero).
  int64_t pad_top() const { return pad_top_; }
  int64_t pad_bottom() const { return pad_bottom_; }
  int64_t pad_left() const { return pad_left_; }
  int64_t pad_right() const { return pad_right_; }
  // Effective (dilated) filter extents.
  int64_t effective_filter_h() const { return (filter_.r - 1) * dilation_h() + 1; }
  int64_t effective_filter_w() const { return (filter_.s - 1) * dilation_w() + 1; }

  // Tensor dimensions in the user's layout (data-format order for activations, HWIO for filters).
  std::array<int64_t, 4> input_dims() const { return dims_of(input_); }
  std::array<int64_t, 4> output_dims() const { return dims_of(output_); }
  std::array<int64_t, 4> filter_dims() const { return {filter_.r, filter_.s, filter_.c, filter_.k}; }
  std::array<int64_t, 4> dims_of(const ActivationShape& shape) const;

  // 2 * N * Ho * Wo * K * R * S * C: the multiply-adds of any of the three operators, doubled.
  double flops() const;

  // A compact, readable, unique name of the problem in the style of benchdnn's problem strings,
  // e.g. "n1h56w56c64_k64r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc". Two geometries have the same key
  // exactly when they describe the same computation.
  std::string key() const;
  // The geometry a key() names (padding becomes EXPLICIT with the resolved pads: the same
  // computation). Throws ErrorId::invalid_argument naming `argument` for a malformed key.
  static Geometry from_key(const std::string& key, const std::string& argument);

 private:
  ActivationShape input_, output_;
  FilterShape filter_;
  Attributes attributes_;
  int64_t pad_top_ = 0, pad_bottom_ = 0, pad_left_ = 0, pad_right_ = 0;
};

// The logical shape of an activation tensor given in the user's layout.
ActivationShape activation_shape(const std::vector<int64_t>& dims, DataFormat format,
                                 const std::string& argument);
FilterShape filter_shape(const std::vector<int64_t>& dims, const std::string& argument);

// Element count of a tensor of `dims`: throws ErrorId::too_large (naming `argument`) when it exceeds
// `limit` (at most kMaxTensorElements: what a kernel can index), ErrorId::shape_mismatch for a
// negative dimension.
int64_t checked_element_count(const std::array<int64_t, 4>& dims, const std::string& argument,
                              int64_t limit = kMaxTensorElements);

// Whether `op` on `g` can take a blocked filter (FilterLayout): conv2d and conv2d_backprop_input,
// when the channels blocked (out-channels, in-channels) make whole blocks.
bool takes_blocked_filter(Op op, const Geometry& g);

// The channel counts of a thin image (RGB, grey), which generic kernels compile as constants.
inline constexpr int64_t kThinChannels[] = {3, 1};

// The out-channels from which an input gradient of a thin image sums along them
// (Thin::deep): a vector of floats or more on every CPU target (AVX-512's 16 lanes).
inline constexpr int64_t kThinSummedChannels = 16;

// The generic kernels of their own for thin images (NHWC, on CPUs), which compute those fastest;
// each computes any other shape too, slower than the generic kernel for any shape.
enum class Thin : uint8_t {
  none,    // not thin: the generic kernel for any shape
  // A unit column stride and an output image of one of kThinChannels channels (the output of
  // conv2d; the input gradient of conv2d_backprop_input, from fewer than kThinSummedChannels
  // out-channels), or for conv2d_backprop_filter, the input such an image and the output
  // gradient of one channel (an edge filter's): register tiles of vectors of positions.
  images,
  // The input gradient of such an image from kThinSummedChannels out-channels or more (the
  // layer above a stem's), at any column stride: vectors along the out-channels it sums.
  deep,
};

// Which generic kernel for thin images (Kernel::thin) computes `op` on `g` fastest, or
// Thin::none.
Thin thin_images(Op op, const Geometry& g);
const char* to_string(Thin thin);  // its enumerator's name

// The dims, in C order, of the blocked filter of `op` on `g`: {blocks, R, S, kFilterBlock x the
// other channels}; `g` must take one (takes_blocked_filter).
std::array<int64_t, 4> blocked_filter_dims(Op op, const Geometry& g);

// The filter `hwio` of `op` on `g` in the blocked layout, into `blocked` (as many elements); `g`
// must take one (takes_blocked_filter).
void block_filter(Op op, const Geometry& g, const float* hwio, float* blocked);

}  // namespace convgen
