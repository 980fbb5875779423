#include "convgen/reference.h"

#include <vector>

namespace convgen::reference {
namespace {

// Flat C-order offsets of an activation element (n, y, x, c) in either layout and of a filter tap.
struct Indexer {
  ActivationShape shape;
  DataFormat format;
  int64_t operator()(int64_t n, int64_t y, int64_t x, int64_t c) const {
    if (format == DataFormat::NHWC) return ((n * shape.h + y) * shape.w + x) * shape.c + c;
    return ((n * shape.c + c) * shape.h + y) * shape.w + x;
  }
};
int64_t filter_index(const FilterShape& f, int64_t r, int64_t s, int64_t c, int64_t k) {
  return ((r * f.s + s) * f.c + c) * f.k + k;
}

// Calls visit(n, i, j, k, r, s, c, y, x) for every term of the convolution sum whose input index
// (y, x) lies inside the input: the one loop nest all three operators are read from.
template <typename Visit>
void for_each_term(const Geometry& g, Visit visit) {
  const ActivationShape& in = g.input();
  const ActivationShape& out = g.output();
  const FilterShape& f = g.filter();
  for (int64_t n = 0; n < out.n; n++)
    for (int64_t i = 0; i < out.h; i++)
      for (int64_t j = 0; j < out.w; j++)
        for (int64_t k = 0; k < out.c; k++)
          for (int64_t r = 0; r < f.r; r++) {
            const int64_t y = i * g.stride_h() + r * g.dilation_h() - g.pad_top();
            if (y < 0 || y >= in.h) continue;
            for (int64_t s = 0; s < f.s; s++) {
              const int64_t x = j * g.stride_w() + s * g.dilation_w() - g.pad_left();
              if (x < 0 || x >= in.w) continue;
              for (int64_t c = 0; c < f.c; c++) visit(n, i, j, k, r, s, c, y, x);
            }
          }
}

}  // namespace

void conv2d(const Geometry& g, const float* input, const float* filter, const float* bias,
            float* output) {
  const Indexer in{g.input(), g.format()}, out{g.output(), g.format()};
  const ActivationShape& o = g.output();
  std::vector<double> sum(size_t(o.n * o.h * o.w * o.c), 0.0);
  for_each_term(g, [&](int64_t n, int64_t i, int64_t j, int64_t k, int64_t r, int64_t s, int64_t c,
                       int64_t y, int64_t x) {
    sum[size_t(out(n, i, j, k))] +=
        double(input[in(n, y, x, c)]) * double(filter[filter_index(g.filter(), r, s, c, k)]);
  });
  for (int64_t n = 0; n < o.n; n++)
    for (int64_t i = 0; i < o.h; i++)
      for (int64_t j = 0; j < o.w; j++)
        for (int64_t k = 0; k < o.c; k++) {
          const int64_t at = out(n, i, j, k);
          output[at] = float(sum[size_t(at)] + (bias ? double(bias[k]) : 0.0));
        }
}

void conv2d_backprop_input(const Geometry& g, const float* filter, const float* out_backprop,
                           float* input_grad) {
  const Indexer in{g.input(), g.format()}, out{g.output(), g.format()};
  const ActivationShape& s = g.input();
  std::vector<double> sum(size_t(s.n * s.h * s.w * s.c), 0.0);
  for_each_term(g, [&](int64_t n, int64_t i, int64_t j, int64_t k, int64_t r, int64_t s_, int64_t c,
                       int64_t y, int64_t x) {
    sum[size_t(in(n, y, x, c))] += double(out_backprop[out(n, i, j, k)]) *
                                   double(filter[filter_index(g.filter(), r, s_, c, k)]);
  });
  for (size_t e = 0; e < sum.size(); e++) input_grad[e] = float(sum[e]);
}

void conv2d_backprop_filter(const Geometry& g, const float* input, const float* out_backprop,
                            float* filter_grad, float* bias_grad) {
  const Indexer in{g.input(), g.format()}, out{g.output(), g.format()};
  const FilterShape& f = g.filter();
  std::vector<double> sum(size_t(f.r * f.s * f.c * f.k), 0.0);
  for_each_term(g, [&](int64_t n, int64_t i, int64_t j, int64_t k, int64_t r, int64_t s, int64_t c,
                       int64_t y, int64_t x) {
    sum[size_t(filter_index(f, r, s, c, k))] +=
        double(input[in(n, y, x, c)]) * double(out_backprop[out(n, i, j, k)]);
  });
  for (size_t e = 0; e < sum.size(); e++) filter_grad[e] = float(sum[e]);
  if (!bias_grad) return;
  const ActivationShape& o = g.output();
  std::vector<double> db(size_t(o.c), 0.0);
  for (int64_t n = 0; n < o.n; n++)
    for (int64_t i = 0; i < o.h; i++)
      for (int64_t j = 0; j < o.w; j++)
        for (int64_t k = 0; k < o.c; k++) db[size_t(k)] += double(out_backprop[out(n, i, j, k)]);
  for (int64_t k = 0; k < o.c; k++) bias_grad[k] = float(db[size_t(k)]);
}

}  // namespace convgen::reference
