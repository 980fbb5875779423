// edge_detection [output-prefix [input.pgm]]
//
// Finds edges in a grey image with a Sobel filter pair run by convgen kernels: once densely and
// once with stride 2. Without an input it draws its own 256x256 test picture (written as
// <prefix>_input.pgm), so it runs anywhere; the kernels are specialized for that size, and other
// sizes run on the generic kernels. Writes <prefix>.pgm and <prefix>_s2.pgm (edge magnitude),
// checks both against the naive reference, and exits non-zero if they differ beyond rounding.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "convgen/convgen.h"
#include "edge_kernels.h"

namespace {

struct Image {
  int width = 0, height = 0;
  std::vector<float> pixels;  // row-major, in [0, 1]
};

// A picture with edges in every direction: a disc, a tilted square and a soft horizontal ramp.
Image draw_test_picture(int size) {
  Image image{size, size, std::vector<float>(size_t(size) * size)};
  const float c = size / 2.0f, radius = size / 4.0f;
  for (int y = 0; y < size; y++) {
    for (int x = 0; x < size; x++) {
      const float dx = x - c, dy = y - c;
      const bool disc = dx * dx + dy * dy < radius * radius;
      const float u = (dx + dy) / std::sqrt(2.0f), v = (dx - dy) / std::sqrt(2.0f);
      const bool square = std::fabs(u - size / 4.0f) < size / 10.0f && std::fabs(v) < size / 10.0f;
      const float ramp = float(y) / float(size) * 0.3f;
      image.pixels[size_t(y) * size + x] = disc != square ? 0.9f : ramp;
    }
  }
  return image;
}

// Binary PGM ("P5"), 8 bits per pixel.
Image read_pgm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  int maxval = 0;
  Image image;
  in >> magic >> image.width >> image.height >> maxval;
  in.get();
  if (!in || magic != "P5" || image.width < 1 || image.height < 1 || maxval != 255 ||
      image.width > 16384 || image.height > 16384) {
    throw std::runtime_error(path + ": not an 8-bit binary PGM (P5) image");
  }
  std::vector<unsigned char> bytes(size_t(image.width) * image.height);
  in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!in) throw std::runtime_error(path + ": truncated image");
  for (unsigned char b : bytes) image.pixels.push_back(b / 255.0f);
  return image;
}

void write_pgm(const std::string& path, int width, int height, const std::vector<float>& values) {
  const float top = std::max(1e-6f, *std::max_element(values.begin(), values.end()));
  std::ofstream out(path, std::ios::binary);
  out << "P5\n" << width << " " << height << "\n255\n";
  for (float v : values) out.put(char(std::lround(255.0f * std::clamp(v / top, 0.0f, 1.0f))));
  if (!out) throw std::runtime_error(path + ": cannot write");
}

// Runs the Sobel pair with `stride` through the kernels, checks it against the reference, and
// writes the edge magnitude. Returns whether the kernel matched.
bool detect_edges(const Image& image, int stride, const std::string& path) {
  using namespace convgen;
  const Attributes attributes = Attributes::from_tensorflow(
      DataFormat::NHWC, {1, stride, stride, 1}, Padding::SAME, {}, {1, 1, 1, 1});
  const Geometry g = Geometry::make({1, image.height, image.width, 1}, {3, 3, 1, 2}, attributes);
  // HWIO: filter[r][s][0][k], k = 0 the horizontal and k = 1 the vertical gradient.
  const std::vector<float> sobel = {-1, -1, 0, -2, 1, -1,  //
                                    -2, 0,  0, 0,  2, 0,   //
                                    -1, 1,  0, 2,  1, 1};
  const Engine engine(edge_kernels());
  const Explanation why = engine.explain(Op::conv2d, g);
  std::cout << "stride " << stride << ": " << g.key() << " -> " << why.chosen->name << "\n";

  const size_t count = size_t(g.output().h) * g.output().w * 2;
  std::vector<float> gradient(count), expected(count);
  engine.conv2d(g, image.pixels.data(), sobel.data(), nullptr, gradient.data());
  reference::conv2d(g, image.pixels.data(), sobel.data(), nullptr, expected.data());
  float max_error = 0;
  for (size_t i = 0; i < count; i++) max_error = std::max(max_error, std::fabs(gradient[i] - expected[i]));
  // 9 products of values <= 2 in magnitude: float32 rounding stays far below 1e-5.
  const bool matches = max_error <= 1e-5f;
  std::cout << "  max |kernel - reference| = " << max_error << (matches ? " (ok)" : " (MISMATCH)")
            << "\n";

  std::vector<float> magnitude(count / 2);
  for (size_t p = 0; p < magnitude.size(); p++) {
    magnitude[p] = std::hypot(gradient[2 * p], gradient[2 * p + 1]);
  }
  write_pgm(path, int(g.output().w), int(g.output().h), magnitude);
  std::cout << "  wrote " << path << " (" << g.output().w << "x" << g.output().h << ")\n";
  return matches;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string prefix = argc > 1 ? argv[1] : "edges";
    const Image image = argc > 2 ? read_pgm(argv[2]) : draw_test_picture(256);
    if (argc <= 2) write_pgm(prefix + "_input.pgm", image.width, image.height, image.pixels);
    const bool dense = detect_edges(image, 1, prefix + ".pgm");
    const bool strided = detect_edges(image, 2, prefix + "_s2.pgm");
    return dense && strided ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "edge_detection: " << e.what() << "\n";
    return 1;
  }
}
