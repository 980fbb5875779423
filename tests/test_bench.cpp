// Tests of `convgen bench`, run as a separate process: its records and tables for a small config,
// with and without its optional peers (oneDNN, OpenBLAS), and its refusals of bad arguments. No
// timing is asserted: only that every timed implementation has a positive time.
#include <algorithm>
#include <catch2/catch.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "cli_helpers.h"

#ifndef CONVGEN_EXE
#error "CONVGEN_EXE must be defined as the path of the built convgen binary"
#endif

namespace {

using convgen::testing::CommandResult;
using convgen::testing::TempDir;
using Args = std::vector<std::string>;

CommandResult convgen_cli(const Args& args) {
  return convgen::testing::run_program(CONVGEN_EXE, args);
}

// A tiny layer that no kernel of the tool is specialized for, and resnet_res4_1x1 of
// configs/resnet_layers.json under another name, whose conv2d the tool has specialized.
constexpr const char* kConfig = R"({"layers": [
    {"name": "tiny", "N": 2, "H": 9, "W": 7, "C": 3, "K": 5, "R": 3, "S": 3, "stride": 2,
     "padding": "SAME"},
    {"name": "res4_1x1", "N": 1, "H": 14, "W": 14, "C": 256, "K": 1024, "R": 1, "S": 1,
     "stride": 1, "padding": "VALID", "ops": ["conv2d"]}]})";

struct Record {
  std::string layer, op, impl;
  int threads;
  double median_ms, min_ms, gflops;
};

// The records of a --json file, one per line as bench writes them; REQUIREs that every line between
// the brackets is a record with all the fields.
std::vector<Record> read_records(const std::string& path) {
  const std::string text = convgen::testing::read_text(path);
  REQUIRE(text.rfind("[\n", 0) == 0);
  REQUIRE(text.size() >= 3);
  REQUIRE(text.compare(text.size() - 3, 3, "\n]\n") == 0);
  static const std::regex record(
      R"re( \{"layer":"([^"]+)","op":"([^"]+)","impl":"([^"]+)","threads":(\d+),)re"
      R"re("median_ms":([-+.0-9eE]+),"min_ms":([-+.0-9eE]+),"gflops":([-+.0-9eE]+)[,}].*)re");
  std::vector<Record> records;
  std::istringstream lines(text.substr(2, text.size() - 5));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == ',') line.pop_back();
    std::smatch m;
    INFO("line: " << line);
    REQUIRE(std::regex_match(line, m, record));
    records.push_back(
        {m[1], m[2], m[3], std::stoi(m[4]), std::stod(m[5]), std::stod(m[6]), std::stod(m[7])});
  }
  return records;
}

using Key = std::tuple<std::string, std::string, std::string>;  // layer, op, impl

std::set<Key> keys(const std::vector<Record>& records) {
  std::set<Key> out;
  for (const Record& r : records) out.insert({r.layer, r.op, r.impl});
  return out;
}

// Whether the build has each peer, as the bench's header says.
bool has_onednn(const std::string& out) {
  return out.find("oneDNN: not built in") == std::string::npos;
}
bool has_openblas(const std::string& out) {
  return out.find("OpenBLAS: not built in") == std::string::npos;
}

}  // namespace

TEST_CASE("bench times a small config and writes records and markdown", "[cli]") {
  const TempDir dir;
  convgen::testing::write_bytes(dir / "small.json", kConfig);
  const CommandResult r = convgen_cli({"bench", "--config", dir / "small.json", "--repeats", "2",
                                       "--threads", "1", "--json", dir / "out.json", "--markdown",
                                       dir / "out.md", "--reference-max-gflop", "0.01"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("peak FMA throughput ("));
  CHECK_THAT(r.out, Catch::Contains("the highest measured before, during and after"));
  CHECK_THAT(r.out, Catch::Contains("1 thread: convgen (own thread pool) 1"));
  CHECK(dir.entries() == std::set<std::string>{"small.json", "out.json", "out.md"});

  const std::vector<Record> records = read_records(dir / "out.json");
  for (const Record& record : records) {
    INFO(record.layer << " " << record.op << " " << record.impl);
    CHECK(record.threads == 1);
    CHECK(record.median_ms > 0);
    CHECK(record.min_ms > 0);
    CHECK(record.min_ms <= record.median_ms);
    CHECK(record.gflops > 0);
  }

  // What must run: convgen's generic kernel everywhere, its specialized kernel on the layer of the
  // tool's config (with the filter as it is, and packed once), the reference on the layer under --reference-max-gflop; the peers where the
  // build has them, im2col for the forward operator only.
  std::set<Key> want;
  const bool onednn = has_onednn(r.out), openblas = has_openblas(r.out);
  for (const std::string op : {"conv2d", "conv2d_backprop_input", "conv2d_backprop_filter"}) {
    want.insert({"tiny", op, "convgen-generic"});
    want.insert({"tiny", op, "reference"});
    if (onednn) {
      want.insert({"tiny", op, "onednn-any"});
      want.insert({"tiny", op, "onednn-hwio"});
    }
  }
  want.insert({"res4_1x1", "conv2d", "convgen-specialized"});
  want.insert({"res4_1x1", "conv2d", "convgen-packed"});
  want.insert({"res4_1x1", "conv2d", "convgen-generic"});
  if (onednn) {
    want.insert({"res4_1x1", "conv2d", "onednn-any"});
    want.insert({"res4_1x1", "conv2d", "onednn-hwio"});
  }
  if (openblas) {
    want.insert({"tiny", "conv2d", "im2col-openblas"});
    want.insert({"res4_1x1", "conv2d", "im2col-openblas"});
  }
  CHECK(keys(records) == want);
  CHECK(records.size() == want.size());

  // The text table has a row per layer and operator, with a ratio where a peer ran.
  CHECK_THAT(r.out, Catch::Contains("no specialized kernel"));
  std::istringstream lines(r.out);
  int rows = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("tiny ", 0) == 0 || line.rfind("res4_1x1 ", 0) == 0) {
      rows++;
      if (line.rfind("res4_1x1", 0) == 0 && (onednn || openblas)) {
        CHECK_THAT(line, !Catch::EndsWith("-"));  // the ratio
      }
    }
  }
  CHECK(rows == 4);
  CHECK_THAT(r.out, Catch::Contains("geomean"));

  const std::string markdown = convgen::testing::read_text(dir / "out.md");
  CHECK_THAT(markdown, Catch::Contains("## 1 thread"));
  CHECK_THAT(markdown, Catch::Contains("| layer | op | spec ms |"));
  CHECK_THAT(markdown, Catch::Contains("| res4_1x1 | forward |"));
}

TEST_CASE("bench runs only the implementations of --impls", "[cli]") {
  const TempDir dir;
  convgen::testing::write_bytes(dir / "small.json", kConfig);
  const CommandResult r =
      convgen_cli({"bench", "--config", dir / "small.json", "--layers", "tiny", "--ops",
                   "conv2d,conv2d_backprop_filter", "--repeats", "1", "--threads", "1,2", "--impls",
                   "convgen-generic,reference", "--json", dir / "out.json"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const std::vector<Record> records = read_records(dir / "out.json");
  std::set<std::tuple<std::string, std::string, int>> got;
  for (const Record& record : records) got.insert({record.op, record.impl, record.threads});
  std::set<std::tuple<std::string, std::string, int>> want;
  for (const std::string op : {"conv2d", "conv2d_backprop_filter"}) {
    for (const std::string impl : {"convgen-generic", "reference"}) {
      for (int threads : {1, 2}) want.insert({op, impl, threads});
    }
  }
  CHECK(got == want);
  CHECK(records.size() == want.size());
  CHECK_THAT(r.out, Catch::Contains("2 threads: convgen (own thread pool) 2"));
  CHECK_THAT(r.out, !Catch::Contains("no specialized kernel"));  // not asked for
}

TEST_CASE("bench is listed in the help", "[cli]") {
  CommandResult r = convgen_cli({"help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("bench"));
  r = convgen_cli({"help", "bench"});
  CHECK(r.exit_code == 0);
  for (const char* option : {"--config", "--threads", "--repeats", "--json", "--markdown",
                             "--reference-max-gflop", "--impls", "--ops", "--layers"}) {
    CHECK_THAT(r.out, Catch::Contains(option));
  }
}

TEST_CASE("bench refuses bad arguments", "[cli]") {
  const TempDir dir;
  convgen::testing::write_bytes(dir / "small.json", kConfig);
  const std::string config = dir / "small.json";
  const Args base = {"bench", "--config", config, "--repeats", "1"};
  const auto plus = [&](Args more) {
    Args args = base;
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  const std::vector<std::pair<Args, std::string>> cases = {
      {{"bench"}, "--config"},
      {{"bench", "--config", dir / "absent.json"}, dir / "absent.json"},
      {plus({"--threads", "0"}), "--threads"},
      {plus({"--threads", "1,x"}), "--threads"},
      {plus({"--threads", "2,2"}), "--threads"},
      {plus({"--threads", "100000"}), "--threads"},
      {{"bench", "--config", config, "--repeats", "0"}, "--repeats"},
      {plus({"--impls", "tensorflow"}), "--impls"},
      {plus({"--reference-max-gflop", "-1"}), "--reference-max-gflop"},
      {plus({"--reference-max-gflop", "lots"}), "--reference-max-gflop"},
      {plus({"--ops", "conv3d"}), "--ops"},
      {plus({"--layers", "res9"}), "--layers"},
      {plus({"--json", dir / "no/such/dir/out.json"}), "--json"},
      {plus({"--markdown", dir / "no/such/dir/out.md"}), "--markdown"},
      {plus({"--frobnicate", "1"}), "--frobnicate"},
  };
  for (const auto& [args, argument] : cases) {
    const CommandResult r = convgen_cli(args);
    INFO("args: " << args.back() << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exited);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());  // refused before anything runs
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_THAT(r.err, Catch::StartsWith("convgen: error: " + argument));
    CHECK(dir.entries() == std::set<std::string>{"small.json"});
  }
}
