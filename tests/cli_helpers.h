// Helpers for the tests that run the built `convgen` binary: temporary directories, running a
// command line with its output captured, and writing test files.
#pragma once

#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "convgen/npy.h"

namespace convgen::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/convgen-test-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

  // The names of the entries in the directory, sorted.
  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

 private:
  std::string path_;
};

struct CommandResult {
  bool exited = false;  // false when the process died from a signal (a crash)
  int exit_code = -1;
  std::string out, err;
};

inline std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char ch : text) {
    if (ch == '\'') {
      quoted += "'\\''";
    } else {
      quoted += ch;
    }
  }
  return quoted + "'";
}

inline std::string read_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

// Runs `program args...` through the shell, capturing stdout and stderr in a directory of its own
// (so that the directories a test inspects see only what the program wrote).
inline CommandResult run_program(const std::string& program, const std::vector<std::string>& args) {
  const TempDir capture;
  std::string command = shell_quote(program);
  for (const std::string& arg : args) command += " " + shell_quote(arg);
  command +=
      " >" + shell_quote(capture / "out") + " 2>" + shell_quote(capture / "err") + " </dev/null";
  const int status = std::system(command.c_str());
  CommandResult result;
  if (status != -1 && WIFEXITED(status)) {
    result.exited = true;
    result.exit_code = WEXITSTATUS(status);
  }
  result.out = read_text(capture / "out");
  result.err = read_text(capture / "err");
  return result;
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), std::streamsize(bytes.size()));
  if (!file) throw std::runtime_error("cannot write " + path);
}

// A version 1.0 .npy preamble and header as numpy writes them, for `descr` (e.g. "<c8") and `shape`.
inline std::string npy_header(const std::string& descr, const std::vector<int64_t>& shape) {
  std::string tuple;
  for (int64_t d : shape) tuple += (tuple.empty() ? "" : ", ") + std::to_string(d);
  if (shape.size() == 1) tuple += ",";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + tuple + "), }";
  header += std::string(63 - (10 + header.size()) % 64, ' ') + "\n";  // the data starts at 64k
  return std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 0xff) +
         char(header.size() >> 8) + header;
}

// A float32 .npy file whose header declares `shape` and whose data is a hole as long as that shape
// takes (a sparse file): it looks as large as a real one without its bytes being written.
inline void write_sparse_npy(const std::string& path, const std::vector<int64_t>& shape) {
  uintmax_t bytes = 4;
  for (int64_t d : shape) bytes *= uintmax_t(d);
  const std::string header = npy_header("<f4", shape);
  write_bytes(path, header);
  std::filesystem::resize_file(path, header.size() + bytes);
}

// Deterministic values in [-1, 1).
inline std::vector<float> test_values(size_t count, uint64_t seed) {
  std::vector<float> values(count);
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& v : values) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    v = float(int64_t(state >> 40)) / float(1 << 23) - 1.0f;
  }
  return values;
}

// Writes a float32 .npy file of `shape` filled with test_values(seed) and returns the values.
inline std::vector<float> write_test_npy(const std::string& path, const std::vector<int64_t>& shape,
                                         uint64_t seed) {
  size_t count = 1;
  for (int64_t d : shape) count *= size_t(d);
  std::vector<float> values = test_values(count, seed);
  npy::write(path, shape, values.data(), "test");
  return values;
}

}  // namespace convgen::testing
