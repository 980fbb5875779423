#include "bench/im2col_openblas.h"

#include <climits>
#include <cstring>
#include <string>

#include "convgen/error.h"

#ifdef CONVGEN_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace convgen::tools::bench {

#ifndef CONVGEN_HAVE_OPENBLAS

bool openblas_built() { return false; }

std::string openblas_about() {
  return "not built in (install libopenblas-dev, e.g. with scripts/setup, and configure again)";
}

int openblas_set_threads(int) { return 0; }

std::unique_ptr<Implementation> make_im2col_openblas(const Problem&) {
  throw Error(ErrorId::unsupported, "OpenBLAS", "not built in");
}

#else

namespace {

class Im2colOpenblas : public Implementation {
 public:
  explicit Im2colOpenblas(const Problem& problem) : problem_(problem) {
    const Geometry& g = problem.geometry;
    rows_ = g.output().n * g.output().h * g.output().w;
    depth_ = g.filter().r * g.filter().s * g.filter().c;
    if (rows_ > INT_MAX || depth_ > INT_MAX || g.filter().k > INT_MAX) {
      throw Error(ErrorId::unsupported, "OpenBLAS", "the matrices are too large for its indices");
    }
    // The input is the matrix itself when every output pixel reads exactly its own input pixel.
    copy_ = !(g.filter().r == 1 && g.filter().s == 1 && g.stride_h() == 1 && g.stride_w() == 1 &&
              g.pad_top() == 0 && g.pad_bottom() == 0 && g.pad_left() == 0 && g.pad_right() == 0);
    if (copy_) columns_.resize(size_t(rows_) * size_t(depth_));
    outputs_ = problem.poisoned_outputs();
  }

  // OpenBLAS's idle threads spin for 2^28 cycles (its THREAD_TIMEOUT), about 0.1 s.
  int spin_ms() const override { return 150; }

  void run() override {
    const Geometry& g = problem_.geometry;
    const int64_t k = g.filter().k;
    const float* matrix = problem_.input.data();
    if (copy_) {
      im2col();
      matrix = columns_.data();
    }
    float* y = outputs_[0].data();
    float beta = 0.0f;
    if (problem_.has_bias) {  // y = bias, then y += columns * W
      for (int64_t row = 0; row < rows_; row++) {
        std::memcpy(y + row * k, problem_.bias.data(), size_t(k) * sizeof(float));
      }
      beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(rows_), blasint(k),
                blasint(depth_), 1.0f, matrix, blasint(depth_), problem_.filter.data(), blasint(k),
                beta, y, blasint(k));
  }

  const Problem::Outputs& results() override { return outputs_; }

 private:
  // Row (n, i, j) of the matrix holds the window of output pixel (i, j) in (r, s, c) order, zeros
  // where it reads padding; each tap is a run of C contiguous floats in NHWC.
  void im2col() {
    const Geometry& g = problem_.geometry;
    const int64_t h = g.input().h, w = g.input().w, c = g.input().c;
    const size_t run = size_t(c) * sizeof(float);
    float* out = columns_.data();
    for (int64_t n = 0; n < g.output().n; n++) {
      const float* image = problem_.input.data() + n * h * w * c;
      for (int64_t i = 0; i < g.output().h; i++) {
        for (int64_t j = 0; j < g.output().w; j++) {
          for (int64_t r = 0; r < g.filter().r; r++) {
            const int64_t row = i * g.stride_h() + r * g.dilation_h() - g.pad_top();
            for (int64_t s = 0; s < g.filter().s; s++) {
              const int64_t col = j * g.stride_w() + s * g.dilation_w() - g.pad_left();
              if (row >= 0 && row < h && col >= 0 && col < w) {
                std::memcpy(out, image + (row * w + col) * c, run);
              } else {
                std::memset(out, 0, run);
              }
              out += c;
            }
          }
        }
      }
    }
  }

  const Problem& problem_;
  int64_t rows_ = 0, depth_ = 0;
  bool copy_ = true;
  std::vector<float> columns_;
  Problem::Outputs outputs_;
};

}  // namespace

bool openblas_built() { return true; }

std::string openblas_about() {
  std::string config = openblas_get_config();
  while (!config.empty() && config.back() == ' ') config.pop_back();
  return config.rfind("OpenBLAS", 0) == 0 ? config : "OpenBLAS " + config;
}

int openblas_set_threads(int threads) {
  openblas_set_num_threads(threads);
  return openblas_get_num_threads();
}

std::unique_ptr<Implementation> make_im2col_openblas(const Problem& problem) {
  if (problem.op != Op::conv2d) {
    throw Error(ErrorId::unsupported, "im2col", "forward only");
  }
  if (problem.geometry.format() != DataFormat::NHWC) {
    throw Error(ErrorId::unsupported, "im2col", "NHWC only");
  }
  return std::make_unique<Im2colOpenblas>(problem);
}

#endif

}  // namespace convgen::tools::bench
