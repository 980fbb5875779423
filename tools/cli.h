// The one argument parser of every `convgen` subcommand, and strict parsers for option values.
//
//   convgen::cli::Parser parser("convgen run", "Runs one operator on .npy files.");
//   parser.option("--strides", "1,sh,sw,1", "strides in data-format order", /*required=*/true);
//   parser.flag("--reference", "use the naive reference");
//   const convgen::cli::Arguments args = parser.parse(argc, argv);
//
// Options are written `--name value` or `--name=value`; flags take no value. Every mistake (an
// unknown or repeated option, a missing value, a missing required option) throws
// convgen::Error(ErrorId::invalid_argument) naming the option, e.g. "--strides".
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "convgen/error.h"
#include "convgen/shape_config.h"

namespace convgen::cli {

struct OptionSpec {
  std::string name;         // "--strides"
  std::string placeholder;  // "1,sh,sw,1"; empty for a flag
  std::string help;
  bool required = false;
  bool flag = false;
};

// The options given on one command line.
class Arguments {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  // The value of an option that was given; throws invalid_argument naming it otherwise.
  const std::string& value(const std::string& name) const;
  std::string value_or(const std::string& name, const std::string& fallback) const;
  bool flag(const std::string& name) const { return has(name); }
  // True when --help or -h was given (required options are then not checked).
  bool help() const { return help_; }

 private:
  friend class Parser;
  std::map<std::string, std::string> values_;
  bool help_ = false;
};

class Parser {
 public:
  // `program` is how usage names the command ("convgen run"); `summary` is one sentence.
  Parser(std::string program, std::string summary);

  Parser& option(const std::string& name, const std::string& placeholder, const std::string& help,
                 bool required = false);
  Parser& flag(const std::string& name, const std::string& help);

  // Parses argv[1..argc) (argv[0] is the command's own name).
  Arguments parse(int argc, char** argv) const;
  Arguments parse(const std::vector<std::string>& args) const;

  // Usage text generated from the declarations, ending with a newline.
  std::string usage() const;

 private:
  const OptionSpec* find(const std::string& name) const;

  std::string program_;
  std::string summary_;
  std::vector<OptionSpec> options_;
};

// A value quoted for a message: at most 64 characters, non-printable bytes shown as '?'.
std::string quote(const std::string& text);

// A decimal integer with an optional sign and nothing else (no spaces, no trailing junk, no
// overflow of int64).
int64_t parse_int(const std::string& text, const std::string& argument);

// Comma-separated integers, e.g. "1,2,2,1". `expected_count` > 0 requires exactly that many;
// `what` names them in that message (e.g. "N,H,W,C").
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& argument,
                                    size_t expected_count = 0, const std::string& what = "");

// Comma-separated non-empty items, e.g. "conv2d,conv2d_backprop_input".
std::vector<std::string> parse_list(const std::string& text, const std::string& argument);

// Reports `message` on stderr as one line "convgen: error: ...", control characters blanked.
void report_error(const std::string& message);

// Runs `body`, turning every exception into report_error() and exit status 1: the main() of every
// convgen program.
int guarded_main(int argc, char** argv, int (*body)(int, char**));

// The same error about another argument (e.g. the runtime's "strides" becomes "--strides").
Error with_argument(const Error& error, const std::string& argument);

// One operator of one layer of a shape config.
struct LayerOp {
  size_t layer;  // index into ShapeConfig::layers
  Op op;
};

// The operators of the layers that --layers and --ops select (each absent: all, each layer's
// own), in config order. Throws naming --ops or --layers for an unknown name, and when nothing
// is selected (`config_path` names the config in that message).
std::vector<LayerOp> select_layer_ops(const Arguments& args, const ShapeConfig& config,
                                      const std::string& config_path);

// A file written at the end through a temporary file and a rename, opened at the start so that a
// bad path fails before the command does its work, not after it; removed unless committed.
class OutputFile {
 public:
  // Throws ErrorId::io_error naming `option` when `path` cannot be written.
  OutputFile(const std::string& path, const std::string& option);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  // Writes `content` and renames the file into place.
  void commit(const std::string& content);

 private:
  std::string path_, temporary_, option_;
  std::ofstream file_;
  bool committed_ = false;
};

}  // namespace convgen::cli
