// Tests of the `convgen` command-line tool, run as a separate process: results of `convgen run`
// against convgen::reference in this process, and every bad input of SPEC.md's "Errors" section
// (non-zero exit, one line on stderr naming the argument, no output or temporary file left).
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "cli_helpers.h"
#include "convgen/convgen.h"
#include "convgen/npy.h"

#ifndef CONVGEN_EXE
#error "CONVGEN_EXE must be defined as the path of the built convgen binary"
#endif

namespace {

using convgen::testing::CommandResult;
using convgen::testing::TempDir;
using convgen::testing::write_test_npy;
using Args = std::vector<std::string>;

CommandResult convgen_cli(const Args& args) {
  return convgen::testing::run_program(CONVGEN_EXE, args);
}

// The same with one more environment variable ("NAME=value"), set through env(1).
CommandResult convgen_cli_with_env(const std::string& variable, const Args& args) {
  Args env_args = {variable, CONVGEN_EXE};
  env_args.insert(env_args.end(), args.begin(), args.end());
  return convgen::testing::run_program("env", env_args);
}

// Replaces the value of `name` in `args`, or appends `name value` when absent. An empty `value`
// removes the option.
Args with(Args args, const std::string& name, const std::string& value) {
  for (size_t i = 0; i < args.size(); i++) {
    if (args[i] == name) {
      if (value.empty()) {
        args.erase(args.begin() + long(i), args.begin() + long(i) + 2);
      } else {
        args[i + 1] = value;
      }
      return args;
    }
  }
  if (!value.empty()) {
    args.push_back(name);
    args.push_back(value);
  }
  return args;
}
Args without(Args args, const std::string& name) { return with(std::move(args), name, ""); }

void require_close(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); i++) {
    if (!(std::fabs(got[i] - want[i]) <= 1e-5f * (1.0f + std::fabs(want[i])))) {
      if (bad++ < 5) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(false);
      }
    }
  }
  CHECK(bad == 0);
}

convgen::Geometry geometry(const std::vector<int64_t>& input_dims, convgen::DataFormat format,
                           const std::vector<int64_t>& filter_dims,
                           const std::vector<int64_t>& strides, convgen::Padding padding,
                           const std::vector<int64_t>& explicit_paddings = {},
                           const std::vector<int64_t>& dilations = {}) {
  return convgen::Geometry::make(
      convgen::activation_shape(input_dims, format, "input"),
      convgen::filter_shape(filter_dims, "filter"),
      convgen::Attributes::from_tensorflow(format, strides, padding, explicit_paddings, dilations));
}

std::vector<int64_t> dims(const std::array<int64_t, 4>& d) { return {d.begin(), d.end()}; }

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

// The cells of the row of `convgen verify`'s table for `layer` and `op` (empty when there is none).
std::vector<std::string> verify_row(const std::string& out, const std::string& layer,
                                    const std::string& op) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const std::vector<std::string> cells = words(line);
    if (cells.size() >= 2 && cells[0] == layer && cells[1] == op) return cells;
  }
  return {};
}
// Where the table's columns are.
enum VerifyColumn : size_t {
  kLayer,
  kOp,
  kChosen,
  kSpecRatio,
  kSpecMs,
  kSpecGflops,
  kPackedRatio,
  kGenRatio,
  kGenMs,
  kGenGflops,
  kNaiveMs,
  kSpecOverGen,
  kSpecOverNaive,
  kStatus,
  kColumns
};

// A ratio cell of a kernel within tolerance.
void check_ratio_ok(const std::string& cell) {
  INFO("ratio " << cell);
  CHECK(cell != "-");
  CHECK(std::stod(cell) <= 1.0);
}

// Runs a command that must succeed and returns the array in `output`.
convgen::npy::Array run_ok(const Args& args, const std::string& output) {
  const CommandResult r = convgen_cli(args);
  INFO("stderr: " << r.err);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  return convgen::npy::read(output, "output");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Results against the reference.

TEST_CASE("run: conv2d NHWC SAME with bias and stride matches the reference", "[cli]") {
  const TempDir dir;
  const std::vector<int64_t> x_dims = {2, 7, 6, 3}, w_dims = {3, 3, 3, 4};
  const auto x = write_test_npy(dir / "x.npy", x_dims, 1);
  const auto w = write_test_npy(dir / "w.npy", w_dims, 2);
  const auto b = write_test_npy(dir / "b.npy", {4}, 3);
  const convgen::Geometry g =
      geometry(x_dims, convgen::DataFormat::NHWC, w_dims, {1, 2, 2, 1}, convgen::Padding::SAME);
  std::vector<float> want(size_t(convgen::checked_element_count(g.output_dims(), "y")));
  convgen::reference::conv2d(g, x.data(), w.data(), b.data(), want.data());

  const Args args = {"run",      "--op",        "conv2d", "--input",     dir / "x.npy",
                     "--filter", dir / "w.npy", "--bias", dir / "b.npy", "--strides",
                     "1,2,2,1",  "--padding",   "SAME",   "--output",    dir / "y.npy"};
  SECTION("compiled kernel") {
    const convgen::npy::Array y = run_ok(args, dir / "y.npy");
    CHECK(y.shape == dims(g.output_dims()));
    require_close(y.data, want);
  }
  SECTION("--reference gives the reference's exact result") {
    Args ref_args = args;
    ref_args.push_back("--reference");
    const convgen::npy::Array y = run_ok(ref_args, dir / "y.npy");
    CHECK(y.shape == dims(g.output_dims()));
    CHECK(y.data == want);
  }
  SECTION("--name=value spelling") {
    const Args eq_args = {"run",
                          "--op=conv2d",
                          "--input=" + (dir / "x.npy"),
                          "--filter=" + (dir / "w.npy"),
                          "--bias=" + (dir / "b.npy"),
                          "--strides=1,2,2,1",
                          "--padding=SAME",
                          "--data-format=NHWC",
                          "--output=" + (dir / "y.npy")};
    require_close(run_ok(eq_args, dir / "y.npy").data, want);
  }
  CHECK(dir.entries() == std::set<std::string>{"x.npy", "w.npy", "b.npy", "y.npy"});
}

TEST_CASE("run: conv2d NCHW EXPLICIT with dilation matches the reference", "[cli]") {
  const TempDir dir;
  const std::vector<int64_t> x_dims = {1, 3, 8, 7}, w_dims = {2, 3, 3, 5};
  const auto x = write_test_npy(dir / "x.npy", x_dims, 4);
  const auto w = write_test_npy(dir / "w.npy", w_dims, 5);
  const std::vector<int64_t> pads = {0, 0, 0, 0, 1, 2, 2, 0};
  const convgen::Geometry g = geometry(x_dims, convgen::DataFormat::NCHW, w_dims, {1, 1, 2, 1},
                                       convgen::Padding::EXPLICIT, pads, {1, 1, 1, 2});
  std::vector<float> want(size_t(convgen::checked_element_count(g.output_dims(), "y")));
  convgen::reference::conv2d(g, x.data(), w.data(), nullptr, want.data());

  Args args = {"run",
               "--op",
               "conv2d",
               "--input",
               dir / "x.npy",
               "--filter",
               dir / "w.npy",
               "--strides",
               "1,1,2,1",
               "--padding",
               "EXPLICIT",
               "--explicit-paddings",
               "0,0,0,0,1,2,2,0",
               "--dilations",
               "1,1,1,2",
               "--data-format",
               "NCHW",
               "--output",
               dir / "y.npy"};
  SECTION("compiled kernel") {
    const convgen::npy::Array y = run_ok(args, dir / "y.npy");
    CHECK(y.shape == dims(g.output_dims()));
    require_close(y.data, want);
  }
  SECTION("reference") {
    args.push_back("--reference");
    CHECK(run_ok(args, dir / "y.npy").data == want);
  }
}

TEST_CASE("run: conv2d_backprop_input matches the reference", "[cli]") {
  const TempDir dir;
  SECTION("NHWC VALID, stride 2, rows no window reads") {
    // (8 - 3) and (9 - 3) are not multiples of 2: the last input row gets 0.
    const std::vector<int64_t> x_dims = {1, 8, 9, 3}, w_dims = {3, 3, 3, 2};
    const convgen::Geometry g =
        geometry(x_dims, convgen::DataFormat::NHWC, w_dims, {1, 2, 2, 1}, convgen::Padding::VALID);
    const auto w = write_test_npy(dir / "w.npy", w_dims, 6);
    const auto dy = write_test_npy(dir / "dy.npy", dims(g.output_dims()), 7);
    std::vector<float> want(size_t(convgen::checked_element_count(g.input_dims(), "dx")));
    convgen::reference::conv2d_backprop_input(g, w.data(), dy.data(), want.data());
    Args args = {"run",           "--op",           "conv2d_backprop_input",
                 "--input-sizes", "1,8,9,3",        "--filter",
                 dir / "w.npy",   "--out-backprop", dir / "dy.npy",
                 "--strides",     "1,2,2,1",        "--padding",
                 "VALID",         "--output",       dir / "dx.npy"};
    const convgen::npy::Array dx = run_ok(args, dir / "dx.npy");
    CHECK(dx.shape == x_dims);
    require_close(dx.data, want);
    args.push_back("--reference");
    CHECK(run_ok(args, dir / "dx.npy").data == want);
  }
  SECTION("NCHW SAME") {
    const std::vector<int64_t> x_dims = {2, 4, 5, 6}, w_dims = {3, 2, 4, 3};
    const convgen::Geometry g =
        geometry(x_dims, convgen::DataFormat::NCHW, w_dims, {1, 1, 2, 1}, convgen::Padding::SAME);
    const auto w = write_test_npy(dir / "w.npy", w_dims, 8);
    const auto dy = write_test_npy(dir / "dy.npy", dims(g.output_dims()), 9);
    std::vector<float> want(size_t(convgen::checked_element_count(g.input_dims(), "dx")));
    convgen::reference::conv2d_backprop_input(g, w.data(), dy.data(), want.data());
    const Args args = {"run",           "--op",           "conv2d_backprop_input",
                       "--input-sizes", "2,4,5,6",        "--filter",
                       dir / "w.npy",   "--out-backprop", dir / "dy.npy",
                       "--strides",     "1,1,2,1",        "--padding",
                       "SAME",          "--data-format",  "NCHW",
                       "--output",      dir / "dx.npy"};
    const convgen::npy::Array dx = run_ok(args, dir / "dx.npy");
    CHECK(dx.shape == x_dims);
    require_close(dx.data, want);
  }
}

TEST_CASE("run: conv2d_backprop_filter matches the reference", "[cli]") {
  const TempDir dir;
  SECTION("NHWC SAME with dilation, and the bias gradient") {
    const std::vector<int64_t> x_dims = {2, 7, 7, 3}, w_dims = {3, 3, 3, 4};
    const convgen::Geometry g = geometry(x_dims, convgen::DataFormat::NHWC, w_dims, {1, 1, 1, 1},
                                         convgen::Padding::SAME, {}, {1, 2, 2, 1});
    const auto x = write_test_npy(dir / "x.npy", x_dims, 10);
    const auto dy = write_test_npy(dir / "dy.npy", dims(g.output_dims()), 11);
    std::vector<float> want(size_t(convgen::checked_element_count(g.filter_dims(), "dw")));
    std::vector<float> want_db(4);
    convgen::reference::conv2d_backprop_filter(g, x.data(), dy.data(), want.data(), want_db.data());
    const Args args = {"run",         "--op",           "conv2d_backprop_filter",
                       "--input",     dir / "x.npy",    "--filter-sizes",
                       "3,3,3,4",     "--out-backprop", dir / "dy.npy",
                       "--strides",   "1,1,1,1",        "--dilations",
                       "1,2,2,1",     "--padding",      "SAME",
                       "--output",    dir / "dw.npy",   "--bias-grad-output",
                       dir / "db.npy"};
    const convgen::npy::Array dw = run_ok(args, dir / "dw.npy");
    CHECK(dw.shape == w_dims);
    require_close(dw.data, want);
    const convgen::npy::Array db = convgen::npy::read(dir / "db.npy", "db");
    CHECK(db.shape == std::vector<int64_t>{4});
    require_close(db.data, want_db);
  }
  SECTION("NCHW EXPLICIT, stride 2") {
    const std::vector<int64_t> x_dims = {1, 2, 9, 8}, w_dims = {3, 3, 2, 3};
    const std::vector<int64_t> pads = {0, 0, 0, 0, 2, 0, 1, 1};
    const convgen::Geometry g = geometry(x_dims, convgen::DataFormat::NCHW, w_dims, {1, 1, 2, 2},
                                         convgen::Padding::EXPLICIT, pads);
    const auto x = write_test_npy(dir / "x.npy", x_dims, 12);
    const auto dy = write_test_npy(dir / "dy.npy", dims(g.output_dims()), 13);
    std::vector<float> want(size_t(convgen::checked_element_count(g.filter_dims(), "dw")));
    convgen::reference::conv2d_backprop_filter(g, x.data(), dy.data(), want.data(), nullptr);
    Args args = {"run",
                 "--op",
                 "conv2d_backprop_filter",
                 "--input",
                 dir / "x.npy",
                 "--filter-sizes",
                 "3,3,2,3",
                 "--out-backprop",
                 dir / "dy.npy",
                 "--strides",
                 "1,1,2,2",
                 "--padding",
                 "EXPLICIT",
                 "--explicit-paddings",
                 "0,0,0,0,2,0,1,1",
                 "--data-format",
                 "NCHW",
                 "--output",
                 dir / "dw.npy"};
    require_close(run_ok(args, dir / "dw.npy").data, want);
    args.push_back("--reference");
    CHECK(run_ok(args, dir / "dw.npy").data == want);
    CHECK(dir.entries() == std::set<std::string>{"x.npy", "dy.npy", "dw.npy"});
  }
}

TEST_CASE("convgen --version and help and unknown commands", "[cli]") {
  CommandResult r = convgen_cli({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "convgen 0.1.0\n");
  r = convgen_cli({"help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("verify"));
  r = convgen_cli({"run", "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("--explicit-paddings"));
  r = convgen_cli({});
  CHECK(r.exited);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("usage"));
  r = convgen_cli({"frobnicate"});
  CHECK(r.exited);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("usage"));
}

// ---------------------------------------------------------------------------------------------
// Bad input: SPEC.md's "Errors" section.

namespace {

// A directory with valid inputs for every operator: X [1,6,6,3], W [3,3,3,4], b [4] and
// dY [1,6,6,4] (SAME, stride 1), and command lines that succeed with them.
class BadInput {
 protected:
  BadInput() {
    write_test_npy(dir / "x.npy", {1, 6, 6, 3}, 1);
    write_test_npy(dir / "w.npy", {3, 3, 3, 4}, 2);
    write_test_npy(dir / "b.npy", {4}, 3);
    write_test_npy(dir / "dy.npy", {1, 6, 6, 4}, 4);
  }

  Args conv2d() const {
    return {"run",      "--op",        "conv2d", "--input",     dir / "x.npy",
            "--filter", dir / "w.npy", "--bias", dir / "b.npy", "--strides",
            "1,1,1,1",  "--padding",   "SAME",   "--output",    out()};
  }
  Args backprop_input() const {
    return {"run",           "--op",           "conv2d_backprop_input",
            "--input-sizes", "1,6,6,3",        "--filter",
            dir / "w.npy",   "--out-backprop", dir / "dy.npy",
            "--strides",     "1,1,1,1",        "--padding",
            "SAME",          "--output",       out()};
  }
  Args backprop_filter() const {
    return {"run",       "--op",           "conv2d_backprop_filter",
            "--input",   dir / "x.npy",    "--filter-sizes",
            "3,3,3,4",   "--out-backprop", dir / "dy.npy",
            "--strides", "1,1,1,1",        "--padding",
            "SAME",      "--output",       out()};
  }
  std::string out() const { return dir / "out.npy"; }

  // Runs a command that must fail: exit 1 (not a crash), nothing on stdout, one line on stderr that
  // names `argument`, and the directory exactly as before (no output, no temporary file).
  std::string refuse(const Args& args, const std::string& argument) const {
    const std::set<std::string> before = dir.entries();
    const CommandResult r = convgen_cli(args);
    INFO("stderr: " << r.err);
    CHECK(r.exited);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("convgen: error: ", 0) == 0);
    REQUIRE(!r.err.empty());
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.back() == '\n');
    CHECK_THAT(r.err, Catch::Contains(argument));
    CHECK(dir.entries() == before);
    return r.err;
  }

  TempDir dir;
};

}  // namespace

TEST_CASE_METHOD(BadInput, "run: the baseline command lines succeed", "[cli]") {
  for (const Args& args : {conv2d(), backprop_input(), backprop_filter()}) {
    const CommandResult r = convgen_cli(args);
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(convgen::npy::read(out(), "out").size() > 0);
  }
}

TEST_CASE_METHOD(BadInput, "run refuses: stride 0", "[cli]") {
  CHECK_THAT(refuse(with(conv2d(), "--strides", "1,0,1,1"), "--strides"),
             Catch::Contains("invalid_stride"));
  refuse(with(backprop_input(), "--strides", "1,1,0,1"), "--strides");
  refuse(with(backprop_filter(), "--strides", "1,0,0,1"), "--strides");
}

TEST_CASE_METHOD(BadInput, "run refuses: batch or channel stride != 1", "[cli]") {
  refuse(with(conv2d(), "--strides", "2,1,1,1"), "--strides");
  refuse(with(conv2d(), "--strides", "1,1,1,2"), "--strides");
  // In NCHW the channel entry is the second.
  refuse(with(with(conv2d(), "--data-format", "NCHW"), "--strides", "1,2,1,1"), "--strides");
  refuse(with(conv2d(), "--strides", "1,1,1"), "--strides");
}

TEST_CASE_METHOD(BadInput, "run refuses: dilation 0 or negative", "[cli]") {
  CHECK_THAT(refuse(with(conv2d(), "--dilations", "1,0,1,1"), "--dilations"),
             Catch::Contains("invalid_dilation"));
  refuse(with(backprop_filter(), "--dilations", "1,1,-1,1"), "--dilations");
  refuse(with(conv2d(), "--dilations", "2,1,1,1"), "--dilations");
}

TEST_CASE_METHOD(BadInput, "run refuses: negative explicit pad", "[cli]") {
  const Args args = with(conv2d(), "--padding", "EXPLICIT");
  CHECK_THAT(refuse(with(args, "--explicit-paddings", "0,0,-1,1,1,1,0,0"), "--explicit-paddings"),
             Catch::Contains("invalid_padding"));
}

TEST_CASE_METHOD(BadInput, "run refuses: non-zero batch or channel pad", "[cli]") {
  const Args args = with(backprop_input(), "--padding", "EXPLICIT");
  refuse(with(args, "--explicit-paddings", "1,0,1,1,1,1,0,0"), "--explicit-paddings");
  refuse(with(args, "--explicit-paddings", "0,0,1,1,1,1,0,1"), "--explicit-paddings");
}

TEST_CASE_METHOD(BadInput, "run refuses: explicit pads without EXPLICIT padding", "[cli]") {
  refuse(with(conv2d(), "--explicit-paddings", "0,0,1,1,1,1,0,0"), "--explicit-paddings");
}

TEST_CASE_METHOD(BadInput, "run refuses: EXPLICIT padding without pads or with a wrong count",
                 "[cli]") {
  refuse(with(conv2d(), "--padding", "EXPLICIT"), "--explicit-paddings");
  refuse(with(with(conv2d(), "--padding", "EXPLICIT"), "--explicit-paddings", "0,0,1,1,1,1"),
         "--explicit-paddings");
}

TEST_CASE_METHOD(BadInput, "run refuses: input of the wrong rank", "[cli]") {
  write_test_npy(dir / "x3.npy", {6, 6, 3}, 5);
  CHECK_THAT(refuse(with(conv2d(), "--input", dir / "x3.npy"), "--input"),
             Catch::Contains("shape_mismatch"));
  refuse(with(backprop_filter(), "--input", dir / "x3.npy"), "--input");
  write_test_npy(dir / "w5.npy", {3, 3, 3, 4, 1}, 6);
  refuse(with(conv2d(), "--filter", dir / "w5.npy"), "--filter");
}

TEST_CASE_METHOD(BadInput, "run refuses: filter in_channels differ from the input's channels",
                 "[cli]") {
  write_test_npy(dir / "w2.npy", {3, 3, 2, 4}, 7);
  refuse(with(conv2d(), "--filter", dir / "w2.npy"), "--filter");
  refuse(with(backprop_input(), "--filter", dir / "w2.npy"), "--filter");
  refuse(with(backprop_filter(), "--filter-sizes", "3,3,2,4"), "--filter-sizes");
}

TEST_CASE_METHOD(BadInput, "run refuses: bias of the wrong size", "[cli]") {
  write_test_npy(dir / "b5.npy", {5}, 8);
  write_test_npy(dir / "b14.npy", {1, 4}, 9);
  CHECK_THAT(refuse(with(conv2d(), "--bias", dir / "b5.npy"), "--bias"),
             Catch::Contains("shape_mismatch"));
  refuse(with(conv2d(), "--bias", dir / "b14.npy"), "--bias");
}

TEST_CASE_METHOD(BadInput, "run refuses: out_backprop of the wrong shape", "[cli]") {
  write_test_npy(dir / "dy5.npy", {1, 5, 6, 4}, 10);
  write_test_npy(dir / "dyk.npy", {1, 6, 6, 3}, 11);
  const std::string message =
      refuse(with(backprop_input(), "--out-backprop", dir / "dy5.npy"), "--out-backprop");
  CHECK_THAT(message, Catch::Contains("(1, 6, 6, 4)") && Catch::Contains("(1, 5, 6, 4)"));
  refuse(with(backprop_filter(), "--out-backprop", dir / "dy5.npy"), "--out-backprop");
  refuse(with(backprop_filter(), "--out-backprop", dir / "dyk.npy"), "--out-backprop");
  // Stride 2 gives a [1,3,3,4] output, so the [1,6,6,4] dY no longer fits.
  refuse(with(backprop_input(), "--strides", "1,2,2,1"), "--out-backprop");
}

TEST_CASE_METHOD(BadInput, "run refuses: input_sizes inconsistent or malformed", "[cli]") {
  // 9x9 gives a 9x9 output under SAME; dY is 6x6.
  refuse(with(backprop_input(), "--input-sizes", "1,9,9,3"), "--out-backprop");
  refuse(with(backprop_input(), "--input-sizes", "1,6,6"), "--input-sizes");
  refuse(with(backprop_input(), "--input-sizes", "1,0,6,3"), "--input-sizes");
  refuse(with(backprop_input(), "--input-sizes", "1,-6,6,3"), "--input-sizes");
  refuse(with(backprop_input(), "--input-sizes", "1,6,6,3,1"), "--input-sizes");
  // Channels are the filter's in_channels.
  refuse(with(backprop_input(), "--input-sizes", "1,6,6,2"), "--filter");
  refuse(with(backprop_filter(), "--filter-sizes", "3,3,3"), "--filter-sizes");
}

TEST_CASE_METHOD(BadInput, "run refuses: missing file", "[cli]") {
  CHECK_THAT(refuse(with(conv2d(), "--input", dir / "absent.npy"), "--input"),
             Catch::Contains("io_error"));
  refuse(with(conv2d(), "--filter", dir / "absent.npy"), "--filter");
  refuse(with(conv2d(), "--bias", dir / "absent.npy"), "--bias");
  refuse(with(backprop_input(), "--out-backprop", dir / "absent.npy"), "--out-backprop");
  refuse(with(conv2d(), "--input", dir.path()), "--input");  // a directory
}

TEST_CASE_METHOD(BadInput, "run refuses: truncated file", "[cli]") {
  const std::string bytes = convgen::testing::read_text(dir / "x.npy");
  convgen::testing::write_bytes(dir / "short.npy", bytes.substr(0, bytes.size() - 4));
  convgen::testing::write_bytes(dir / "header.npy", bytes.substr(0, 20));
  convgen::testing::write_bytes(dir / "empty.npy", "");
  CHECK_THAT(refuse(with(conv2d(), "--input", dir / "short.npy"), "--input"),
             Catch::Contains("bad_file"));
  refuse(with(conv2d(), "--input", dir / "header.npy"), "--input");
  refuse(with(conv2d(), "--filter", dir / "empty.npy"), "--filter");
}

TEST_CASE_METHOD(BadInput, "run refuses: unsupported dtype", "[cli]") {
  // A complex64 file, written by hand as numpy would.
  convgen::testing::write_bytes(dir / "c8.npy", convgen::testing::npy_header("<c8", {1, 6, 6, 3}) +
                                                    std::string(6 * 6 * 3 * 8, '\0'));
  CHECK_THAT(refuse(with(conv2d(), "--input", dir / "c8.npy"), "--input"),
             Catch::Contains("unsupported"));
}

TEST_CASE_METHOD(BadInput, "run refuses: sizes too large to allocate", "[cli]") {
  CHECK_THAT(refuse(with(backprop_input(), "--input-sizes", "1,100000,100000,3"), "--input-sizes"),
             Catch::Contains("too_large"));
  // SPEC's example: 40 G elements, with a filter whose in_channels fit, so that only the size is
  // wrong.
  write_test_npy(dir / "w1000.npy", {1, 1, 1000, 1}, 13);
  CHECK_THAT(refuse(with(with(backprop_input(), "--filter", dir / "w1000.npy"), "--input-sizes",
                         "1,100000,100000,1000"),
                    "--input-sizes"),
             Catch::Contains("too_large"));
  CHECK_THAT(
      refuse(with(backprop_filter(), "--filter-sizes", "100000,100000,3,1000"), "--filter-sizes"),
      Catch::Contains("too_large"));
  refuse(with(backprop_input(), "--input-sizes", "1,3000000000,6,3"), "--input-sizes");
}

TEST_CASE_METHOD(BadInput, "run refuses a file declaring a huge shape before reading its data",
                 "[cli]") {
  // Sparse files exactly as long as their headers say: 16 GiB and more that hold no data, and that
  // would take that much memory if they were read.
  using convgen::testing::write_sparse_npy;
  write_sparse_npy(dir / "x_huge.npy", {1, 65536, 65536, 3});  // 2^32 * 3 elements
  write_sparse_npy(dir / "x_huge_nchw.npy", {1, 3, 65536, 65536});
  write_sparse_npy(dir / "w_huge.npy", {100, 100, 3, 20000});  // 6e8 elements, over 2 GiB
  write_sparse_npy(dir / "b_huge.npy", {2147483648});
  write_sparse_npy(dir / "dy_huge.npy", {1, 65536, 65536, 4});
  const std::string limit = "a kernel can take [too_large]";
  CHECK_THAT(refuse(with(conv2d(), "--input", dir / "x_huge.npy"), "--input"),
             Catch::Contains(limit));
  CHECK_THAT(refuse(with(with(conv2d(), "--data-format", "NCHW"), "--input",
                         dir / "x_huge_nchw.npy"),
                    "--input"),
             Catch::Contains(limit));
  CHECK_THAT(refuse(with(backprop_filter(), "--input", dir / "x_huge.npy"), "--input"),
             Catch::Contains(limit));
  CHECK_THAT(refuse(with(conv2d(), "--filter", dir / "w_huge.npy"), "--filter"),
             Catch::Contains(limit));
  CHECK_THAT(refuse(with(backprop_input(), "--filter", dir / "w_huge.npy"), "--filter"),
             Catch::Contains(limit));
  // Tensors whose shape the geometry fixes: any other shape is refused as it is.
  CHECK_THAT(refuse(with(conv2d(), "--bias", dir / "b_huge.npy"), "--bias"),
             Catch::Contains("shape_mismatch"));
  CHECK_THAT(refuse(with(backprop_input(), "--out-backprop", dir / "dy_huge.npy"), "--out-backprop"),
             Catch::Contains("shape_mismatch"));
  CHECK_THAT(refuse(with(backprop_filter(), "--out-backprop", dir / "dy_huge.npy"), "--out-backprop"),
             Catch::Contains("shape_mismatch"));
}

TEST_CASE_METHOD(BadInput, "run refuses: unknown or repeated options and missing values", "[cli]") {
  Args args = conv2d();
  args.push_back("--frobnicate");
  args.push_back("1");
  refuse(args, "--frobnicate");
  args = conv2d();
  args.push_back("--strides");
  args.push_back("1,1,1,1");
  refuse(args, "--strides");
  args = conv2d();
  args.push_back("--dilations");
  refuse(args, "--dilations");
  args = conv2d();
  args.push_back("stray");
  refuse(args, "stray");
  args = conv2d();
  args.push_back("--reference=yes");
  refuse(args, "--reference");
  refuse(with(conv2d(), "--strides", "--padding"), "--strides");
}

TEST_CASE_METHOD(BadInput, "run refuses: missing required option", "[cli]") {
  refuse(without(conv2d(), "--output"), "--output");
  refuse(without(conv2d(), "--strides"), "--strides");
  refuse(without(conv2d(), "--padding"), "--padding");
  refuse(without(conv2d(), "--op"), "--op");
  refuse(without(conv2d(), "--filter"), "--filter");
  refuse(without(conv2d(), "--input"), "--input");
  refuse(without(backprop_input(), "--input-sizes"), "--input-sizes");
  refuse(without(backprop_input(), "--out-backprop"), "--out-backprop");
  refuse(without(backprop_filter(), "--filter-sizes"), "--filter-sizes");
}

TEST_CASE_METHOD(BadInput, "run refuses: options of another operator", "[cli]") {
  refuse(with(conv2d(), "--input-sizes", "1,6,6,3"), "--input-sizes");
  refuse(with(conv2d(), "--out-backprop", dir / "dy.npy"), "--out-backprop");
  refuse(with(backprop_input(), "--bias", dir / "b.npy"), "--bias");
  refuse(with(backprop_input(), "--input", dir / "x.npy"), "--input");
  refuse(with(backprop_filter(), "--filter", dir / "w.npy"), "--filter");
  refuse(with(backprop_filter(), "--bias", dir / "b.npy"), "--bias");
}

TEST_CASE_METHOD(BadInput, "run refuses: an unknown op or padding or data format", "[cli]") {
  refuse(with(conv2d(), "--op", "conv3d"), "--op");
  refuse(with(conv2d(), "--padding", "same"), "--padding");
  refuse(with(conv2d(), "--data-format", "NWHC"), "--data-format");
}

TEST_CASE_METHOD(BadInput, "run refuses: VALID with an input smaller than the filter", "[cli]") {
  write_test_npy(dir / "x2.npy", {1, 2, 6, 3}, 12);
  CHECK_THAT(
      refuse(with(with(conv2d(), "--input", dir / "x2.npy"), "--padding", "VALID"), "--input"),
      Catch::Contains("empty_output"));
  // Dilation 3 makes the 3x3 filter 7x7, more than the 6x6 input.
  refuse(with(with(conv2d(), "--dilations", "1,3,1,1"), "--padding", "VALID"), "--input");
}

TEST_CASE_METHOD(BadInput, "run refuses: garbage in integer lists", "[cli]") {
  for (const char* strides : {"1,a,1,1", "1,1,1,1x", "1,1,1,", ",1,1,1", "1,,1,1", "1, 1,1,1",
                              "1,99999999999999999999,1,1", "1.0,1,1,1", "0x1,1,1,1"}) {
    INFO("--strides " << strides);
    refuse(with(conv2d(), "--strides", strides), "--strides");
  }
  refuse(with(with(conv2d(), "--padding", "EXPLICIT"), "--explicit-paddings", "0,0,1,1,1,b,0,0"),
         "--explicit-paddings");
  refuse(with(backprop_input(), "--input-sizes", "1,6,6,3e0"), "--input-sizes");
}

TEST_CASE_METHOD(BadInput, "run refuses: an output that cannot be written", "[cli]") {
  refuse(with(conv2d(), "--output", dir / "no/such/dir/y.npy"), "--output");
  refuse(with(conv2d(), "--output", dir.path()), "--output");
}

TEST_CASE_METHOD(BadInput, "run refuses: a failed run leaves an existing output untouched",
                 "[cli]") {
  convgen::testing::write_bytes(out(), "previous contents");
  refuse(with(conv2d(), "--strides", "1,0,1,1"), "--strides");
  CHECK(convgen::testing::read_text(out()) == "previous contents");
}

// ---------------------------------------------------------------------------------------------
// convgen verify

TEST_CASE("verify checks a small config and reports each kernel", "[cli]") {
  const TempDir dir;
  convgen::testing::write_bytes(dir / "small.json",
                                R"({"layers": [
        {"name": "tiny", "N": 2, "H": 9, "W": 7, "C": 3, "K": 5, "R": 3, "S": 3, "stride": 2,
         "dilation": 1, "padding": "SAME"},
        {"name": "tiny_nchw", "N": 1, "H": 8, "W": 8, "C": 4, "K": 2, "R": 3, "S": 2,
         "dilation_h": 2, "padding": "EXPLICIT", "pads": [1, 0, 2, 1], "data_format": "NCHW",
         "bias": false, "ops": ["conv2d_backprop_filter"]}]})");
  const CommandResult r =
      convgen_cli({"verify", "--config", dir / "small.json", "--repeats", "1", "--seed", "7"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  // Shapes no kernel of the tool is specialized for: the generic kernels, checked and timed, and
  // "-" where the specialized kernel would be.
  for (const auto& [layer, op] :
       std::vector<std::pair<std::string, std::string>>{{"tiny", "conv2d"},
                                                        {"tiny", "conv2d_backprop_input"},
                                                        {"tiny", "conv2d_backprop_filter"},
                                                        {"tiny_nchw", "conv2d_backprop_filter"}}) {
    const std::vector<std::string> row = verify_row(r.out, layer, op);
    INFO(layer << " " << op);
    REQUIRE(row.size() == kColumns);
    CHECK(row[kChosen] == "generic");
    for (size_t column :
         {kSpecRatio, kSpecMs, kSpecGflops, kPackedRatio, kSpecOverGen, kSpecOverNaive}) {
      CHECK(row[column] == "-");
    }
    check_ratio_ok(row[kGenRatio]);
    CHECK(std::stod(row[kGenMs]) >= 0);
    CHECK(std::stod(row[kNaiveMs]) >= 0);
    CHECK(row[kStatus] == "ok");
  }
  CHECK(verify_row(r.out, "tiny_nchw", "conv2d").empty());  // not among its ops
  // Shape keys are in the legend below the table, one line per layer.
  const size_t legend = r.out.find("shape keys");
  REQUIRE(legend != std::string::npos);
  CHECK(r.out.find("  tiny       n2h9w7c3_k5r3s3_sh2sw2dh1dw1_pt1pb1pl1pr1_nhwc\n", legend) !=
        std::string::npos);
  CHECK(r.out.find("  tiny_nchw  n1h8w8c4_k2r3s2_sh1sw1dh2dw1_pt1pb0pl2pr1_nchw\n", legend) !=
        std::string::npos);
  CHECK_THAT(r.out, Catch::Contains("tolerance per element"));
  CHECK_THAT(r.out, Catch::EndsWith("\nverified 4 kernels, 0 over tolerance\n"));

  const CommandResult only =
      convgen_cli({"verify", "--config", dir / "small.json", "--repeats", "1", "--ops", "conv2d"});
  CHECK(only.exit_code == 0);
  CHECK_THAT(only.out, Catch::Contains("verified 1 kernels, 0 over tolerance"));
}

TEST_CASE("verify compares a layer's specialized kernel with the generic one", "[cli]") {
  const TempDir dir;
  // resnet_res4_1x1 of configs/resnet_layers.json, whose kernels the tool has specialized, under
  // another name; and a shape that is in no config of the tool's.
  convgen::testing::write_bytes(dir / "mixed.json",
                                R"({"layers": [
        {"name": "res4_1x1", "N": 1, "H": 14, "W": 14, "C": 256, "K": 1024, "R": 1, "S": 1,
         "stride": 1, "dilation": 1, "padding": "VALID"},
        {"name": "odd_one", "N": 1, "H": 10, "W": 9, "C": 3, "K": 4, "R": 3, "S": 3,
         "padding": "SAME"}]})");
  const CommandResult r =
      convgen_cli({"verify", "--config", dir / "mixed.json", "--repeats", "1", "--ops", "conv2d"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());

  const std::vector<std::string> res4 = verify_row(r.out, "res4_1x1", "conv2d");
  REQUIRE(res4.size() == kColumns);
  CHECK(res4[kChosen] == "specialized");
  check_ratio_ok(res4[kSpecRatio]);
  check_ratio_ok(res4[kPackedRatio]);  // the tool's config builds one for the shape
  check_ratio_ok(res4[kGenRatio]);
  CHECK(std::stod(res4[kSpecMs]) > 0);
  CHECK(std::stod(res4[kGenMs]) > 0);
  CHECK(std::stod(res4[kSpecGflops]) > 0);
  CHECK_THAT(res4[kSpecOverGen], Catch::EndsWith("x"));
  CHECK_THAT(res4[kSpecOverNaive], Catch::EndsWith("x"));
  CHECK(res4[kStatus] == "ok");

  const std::vector<std::string> odd = verify_row(r.out, "odd_one", "conv2d");
  REQUIRE(odd.size() == kColumns);
  CHECK(odd[kChosen] == "generic");
  CHECK(odd[kSpecRatio] == "-");
  CHECK(odd[kPackedRatio] == "-");
  check_ratio_ok(odd[kGenRatio]);
  CHECK(odd[kStatus] == "ok");

  CHECK_THAT(r.out,
             Catch::Contains("res4_1x1  n1h14w14c256_k1024r1s1_sh1sw1dh1dw1_pt0pb0pl0pr0_nhwc"));
  // Three kernels for the specialized layer (its filter as it is and packed), one for the other.
  CHECK_THAT(r.out, Catch::EndsWith("\nverified 4 kernels, 0 over tolerance\n"));
  // The table fits a wide terminal.
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("res4_1x1", 0) == 0 || line.rfind("layer", 0) == 0) CHECK(line.size() <= 170);
  }
}

TEST_CASE("verify refuses bad configs and options", "[cli]") {
  const TempDir dir;
  convgen::testing::write_bytes(
      dir / "bad.json",
      R"({"layers": [{"name": "a", "N": 1, "H": 8, "W": 8, "C": 3, "K": 4, "R": 3, "S": 3,
                      "stride": -2, "padding": "SAME"}]})");
  convgen::testing::write_bytes(
      dir / "good.json",
      R"({"layers": [{"name": "a", "N": 1, "H": 8, "W": 8, "C": 3, "K": 4, "R": 3, "S": 3,
                      "padding": "SAME"}]})");
  const std::vector<std::pair<Args, std::string>> cases = {
      {{"verify", "--config", dir / "bad.json"}, dir / "bad.json:/layers/0/stride"},
      {{"verify", "--config", dir / "absent.json"}, dir / "absent.json"},
      {{"verify"}, "--config"},
      {{"verify", "--config", dir / "good.json", "--ops", "conv3d"}, "--ops"},
      {{"verify", "--config", dir / "good.json", "--layers", "b"}, "--layers"},
      {{"verify", "--config", dir / "good.json", "--seed", "x"}, "--seed"},
      {{"verify", "--config", dir / "good.json", "--repeats", "0"}, "--repeats"},
  };
  for (const auto& [args, argument] : cases) {
    const CommandResult r = convgen_cli(args);
    INFO("stderr: " << r.err);
    CHECK(r.exited);
    CHECK(r.exit_code == 1);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_THAT(r.err, Catch::StartsWith("convgen: error: " + argument));
  }
}

TEST_CASE("generate refuses a layer too large for a kernel, naming the layer", "[cli]") {
  const TempDir dir;
  // The second layer's input (and output): 1 x 65536 x 65536 x 1 = 2^32 elements, in either layout.
  for (const std::string format : {"NHWC", "NCHW"}) {
    INFO(format);
    convgen::testing::write_bytes(
        dir / "huge.json",
        R"({"layers": [{"name": "small", "N": 1, "H": 8, "W": 8, "C": 3, "K": 4, "R": 3, "S": 3,
                        "padding": "SAME"},
                       {"name": "huge", "N": 1, "H": 65536, "W": 65536, "C": 1, "K": 1, "R": 1,
                        "S": 1, "padding": "VALID", "data_format": ")" +
            format + R"("}]})");
    const CommandResult r =
        convgen_cli({"generate", "--config", dir / "huge.json", "--out", dir / "out"});
    INFO("stderr: " << r.err);
    CHECK(r.exited);
    CHECK(r.exit_code == 1);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_THAT(r.err, Catch::StartsWith("convgen: error: " + dir / "huge.json:/layers/1: input: ") &&
                          Catch::Contains("[too_large]"));
    CHECK(dir.entries() == std::set<std::string>{"huge.json"});
  }
}

TEST_CASE("generate: a specialized kernel reads an input its windows stay inside in place", "[cli]") {
  // A VALID 1x1 layer reads only inside its input, so its conv2d and filter gradient read the
  // input as stored (clamped where a tile computes past the output's edge); a SAME 3x3 layer
  // reads its border, so it computes the input once, zero-padded.
  const TempDir dir;
  convgen::testing::write_bytes(
      dir / "layers.json",
      R"({"layers": [{"name": "pointwise", "N": 1, "H": 5, "W": 13, "C": 16, "K": 32, "R": 1,
                      "S": 1, "padding": "VALID", "ops": ["conv2d", "conv2d_backprop_filter"]},
                     {"name": "same", "N": 1, "H": 5, "W": 13, "C": 16, "K": 32, "R": 3, "S": 3,
                      "padding": "SAME", "ops": ["conv2d", "conv2d_backprop_filter"]}]})");
  const CommandResult r =
      convgen_cli({"generate", "--config", dir / "layers.json", "--targets", "host", "--generic",
                   "none", "--out", dir / "out", "--emit", "stmt"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const auto stmt = [&](const std::string& op, const std::string& key) {
    const std::string kernel = "convgen_" + op + "__" + key;
    return convgen::testing::read_text(dir / ("out/kernels/" + kernel + "/" + kernel + ".stmt"));
  };
  const std::string padded = "allocate constant_exterior";
  for (const std::string op : {"conv2d", "conv2d_backprop_filter"}) {
    INFO(op);
    CHECK_THAT(stmt(op, "n1h5w13c16_k32r1s1_sh1sw1dh1dw1_pt0pb0pl0pr0_nhwc"),
               !Catch::Contains(padded));
    CHECK_THAT(stmt(op, "n1h5w13c16_k32r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc"),
               Catch::Contains(padded));
  }
}

// ---------------------------------------------------------------------------------------------
// convgen run --explain, and the dispatch log

namespace {

constexpr const char* kRes4Key = "n1h14w14c256_k1024r1s1_sh1sw1dh1dw1_pt0pb0pl0pr0_nhwc";

// The explanation's line for `kernel`, without its newline ("" when there is none).
std::string line_of(const std::string& out, const std::string& kernel) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > 2 && line.compare(2, kernel.size() + 1, kernel + ":") == 0) return line;
  }
  return "";
}

}  // namespace

TEST_CASE("run --explain names the specialized kernel for a layer of the tool's config", "[cli]") {
  const TempDir dir;
  // resnet_res4_1x1 of configs/resnet_layers.json.
  write_test_npy(dir / "x.npy", {1, 14, 14, 256}, 1);
  write_test_npy(dir / "w.npy", {1, 1, 256, 1024}, 2);
  write_test_npy(dir / "b.npy", {1024}, 3);
  Args args = {"run",      "--op",        "conv2d", "--input",     dir / "x.npy",
               "--filter", dir / "w.npy", "--bias", dir / "b.npy", "--strides",
               "1,1,1,1",  "--padding",   "VALID",  "--explain"};
  const std::set<std::string> before = dir.entries();
  SECTION("without --output") {}
  SECTION("with --output, which is not written") { args = with(args, "--output", dir / "y.npy"); }
  const CommandResult r = convgen_cli(args);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  const std::string specialized = std::string("convgen_conv2d__") + kRes4Key;
  CHECK_THAT(r.out, Catch::StartsWith(std::string("conv2d ") + kRes4Key + "\n* " + specialized +
                                      ": chosen\n"));
  CHECK(line_of(r.out, "convgen_conv2d__generic_nhwc") ==
        "  convgen_conv2d__generic_nhwc: a kernel specialized for this shape is preferred");
  CHECK(line_of(r.out, "convgen_conv2d__generic_nchw") ==
        "  convgen_conv2d__generic_nchw: takes NCHW");
  CHECK(line_of(r.out, std::string("convgen_conv2d_backprop_input__") + kRes4Key) ==
        "  convgen_conv2d_backprop_input__" + std::string(kRes4Key) +
            ": computes conv2d_backprop_input");
  CHECK_THAT(line_of(r.out, "convgen_conv2d__n1h7w7c512_k512r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc"),
             Catch::EndsWith("specialized for another shape "
                             "(n1h7w7c512_k512r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc)"));
  // Exactly one kernel is chosen.
  CHECK(std::count(r.out.begin(), r.out.end(), '*') == 1);
  CHECK(dir.entries() == before);
}

TEST_CASE_METHOD(BadInput, "run --explain picks the generic kernel for a shape of no config",
                 "[cli]") {
  const std::set<std::string> before = dir.entries();
  const std::pair<Args, std::string> cases[] = {{conv2d(), "conv2d"},
                                                {backprop_input(), "conv2d_backprop_input"},
                                                {backprop_filter(), "conv2d_backprop_filter"}};
  for (const auto& [command, op] : cases) {
    INFO(op);
    Args args = without(command, "--output");
    args.push_back("--explain");
    const CommandResult r = convgen_cli(args);
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    // The input gradient of 3 channels is a thin output, with a generic kernel of its own.
    const bool thin = op == "conv2d_backprop_input";
    const std::string generic = "convgen_" + op + "__generic_nhwc" + (thin ? "_thin" : "");
    CHECK_THAT(r.out, Catch::StartsWith(op + " n1h6w6c3_k4r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc\n* " +
                                        generic + ": chosen\n"));
    if (thin) {
      CHECK(line_of(r.out, "convgen_" + op + "__generic_nhwc") ==
            "  convgen_" + op +
                "__generic_nhwc: the images are thin: the generic kernel for thin images is "
                "preferred");
    } else if (op == "conv2d") {
      CHECK(line_of(r.out, "convgen_conv2d__generic_nhwc_thin") ==
            "  convgen_conv2d__generic_nhwc_thin: for thin images, which these are not: the "
            "generic kernel for any shape is preferred");
    }
    const std::string other = "convgen_" + op + "__" + kRes4Key;
    CHECK(line_of(r.out, other) ==
          "  " + other + ": specialized for another shape (" + kRes4Key + ")");
    CHECK(line_of(r.out, "convgen_" + op + "__generic_nchw") ==
          "  convgen_" + op + "__generic_nchw: takes NCHW");
  }
  CHECK(dir.entries() == before);  // nothing written
  // The same for NCHW data, whose generic kernel is another.
  write_test_npy(dir / "x_nchw.npy", {1, 3, 6, 6}, 5);
  Args args = without(with(with(conv2d(), "--data-format", "NCHW"), "--input", dir / "x_nchw.npy"),
                      "--bias");
  args = without(args, "--output");
  args.push_back("--explain");
  const CommandResult r = convgen_cli(args);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("\n* convgen_conv2d__generic_nchw: chosen\n"));
  CHECK(line_of(r.out, "convgen_conv2d__generic_nhwc") ==
        "  convgen_conv2d__generic_nhwc: takes NHWC");
  CHECK(dir.entries().count("out.npy") == 0);
}

TEST_CASE_METHOD(BadInput, "run --explain checks everything a run checks", "[cli]") {
  auto explain = [](Args args) {
    args.push_back("--explain");
    return without(args, "--output");
  };
  CHECK_THAT(refuse(with(explain(conv2d()), "--strides", "1,0,1,1"), "--strides"),
             Catch::Contains("invalid_stride"));
  refuse(with(explain(conv2d()), "--input", dir / "absent.npy"), "--input");
  write_test_npy(dir / "b5.npy", {5}, 8);
  refuse(with(explain(conv2d()), "--bias", dir / "b5.npy"), "--bias");
  write_test_npy(dir / "dy5.npy", {1, 5, 6, 4}, 10);
  refuse(with(explain(backprop_input()), "--out-backprop", dir / "dy5.npy"), "--out-backprop");
  refuse(with(explain(backprop_filter()), "--out-backprop", dir / "dy5.npy"), "--out-backprop");
  refuse(with(explain(backprop_input()), "--bias", dir / "b.npy"), "--bias");
  // --explain chooses a compiled kernel; the reference is not one.
  Args both = explain(conv2d());
  both.push_back("--reference");
  CHECK_THAT(refuse(both, "--explain"), Catch::Contains("--reference"));
  // Without --explain, --output stays required.
  CHECK_THAT(refuse(without(conv2d(), "--output"), "--output"), Catch::Contains("--explain"));
}

TEST_CASE_METHOD(BadInput, "CONVGEN_VERBOSE=dispatch logs each kernel choice on stderr", "[cli]") {
  const std::string key = "n1h6w6c3_k4r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc";
  SECTION("a run") {
    const CommandResult r = convgen_cli_with_env("CONVGEN_VERBOSE=dispatch", conv2d());
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::StartsWith("convgen dispatch: conv2d " + key + "\n"));
    CHECK_THAT(r.err, Catch::Contains("\n* convgen_conv2d__generic_nhwc: chosen\n"));
    CHECK(std::count(r.err.begin(), r.err.end(), '*') == 1);
    CHECK(convgen::npy::read(out(), "out").shape == std::vector<int64_t>{1, 6, 6, 4});
  }
  SECTION("an --explain run logs the choice too") {
    Args args = without(backprop_filter(), "--output");
    args.push_back("--explain");
    const CommandResult r = convgen_cli_with_env("CONVGEN_VERBOSE=dispatch", args);
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::StartsWith("convgen dispatch: conv2d_backprop_filter " + key + "\n"));
    CHECK_THAT(r.err,
               Catch::Contains("\n* convgen_conv2d_backprop_filter__generic_nhwc: chosen\n"));
    // The log is the explanation that stdout shows, after its heading.
    CHECK(r.err.substr(r.err.find('\n')) == r.out.substr(r.out.find('\n')));
  }
  SECTION("other values log nothing") {
    const CommandResult r = convgen_cli_with_env("CONVGEN_VERBOSE=", conv2d());
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
  }
}
