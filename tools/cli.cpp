#include "cli.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <new>
#include <set>
#include <utility>

namespace convgen::cli {
namespace {

// A name for a message: as typed when it is short and printable, quoted otherwise.
std::string printable(const std::string& text) {
  const bool plain =
      text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char ch) {
        return static_cast<unsigned char>(ch) >= 0x20 && static_cast<unsigned char>(ch) < 0x7f;
      });
  return plain ? text : quote(text);
}

}  // namespace

const std::string& Arguments::value(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) throw Error(ErrorId::invalid_argument, name, "is required");
  return it->second;
}

std::string Arguments::value_or(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

Parser::Parser(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

Parser& Parser::option(const std::string& name, const std::string& placeholder,
                       const std::string& help, bool required) {
  options_.push_back({name, placeholder, help, required, false});
  return *this;
}

Parser& Parser::flag(const std::string& name, const std::string& help) {
  options_.push_back({name, "", help, false, true});
  return *this;
}

const OptionSpec* Parser::find(const std::string& name) const {
  for (const OptionSpec& spec : options_) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

Arguments Parser::parse(int argc, char** argv) const {
  std::vector<std::string> args;
  for (int i = 1; i < argc; i++) args.emplace_back(argv[i]);
  return parse(args);
}

Arguments Parser::parse(const std::vector<std::string>& args) const {
  Arguments result;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& token = args[i];
    if (token == "--help" || token == "-h") {
      result.help_ = true;
      continue;
    }
    if (token.size() < 3 || token.compare(0, 2, "--") != 0) {
      throw Error(ErrorId::invalid_argument, printable(token),
                  "unexpected argument; " + program_ + " takes only --options (see --help)");
    }
    const size_t equals = token.find('=');
    const std::string name = token.substr(0, equals);
    const OptionSpec* spec = find(name);
    if (!spec) {
      throw Error(ErrorId::invalid_argument, printable(name),
                  "unknown option of " + program_ + " (see --help)");
    }
    if (result.values_.count(name)) {
      throw Error(ErrorId::invalid_argument, name, "is given more than once");
    }
    std::string value;
    if (spec->flag) {
      if (equals != std::string::npos) {
        throw Error(ErrorId::invalid_argument, name, "is a flag and takes no value");
      }
    } else if (equals != std::string::npos) {
      value = token.substr(equals + 1);
    } else {
      // A following option is not taken as a value: "--output --strides 1,1,1,1" lacks a value.
      if (i + 1 >= args.size() || args[i + 1].compare(0, 2, "--") == 0) {
        throw Error(ErrorId::invalid_argument, name, "needs a value (" + spec->placeholder + ")");
      }
      value = args[++i];
    }
    if (!spec->flag && value.empty()) {
      throw Error(ErrorId::invalid_argument, name,
                  "needs a non-empty value (" + spec->placeholder + ")");
    }
    result.values_.emplace(name, std::move(value));
  }
  if (!result.help_) {
    for (const OptionSpec& spec : options_) {
      if (spec.required && !result.has(spec.name)) {
        throw Error(ErrorId::invalid_argument, spec.name,
                    "is required (" + spec.name + " " + spec.placeholder + ")");
      }
    }
  }
  return result;
}

std::string Parser::usage() const {
  std::string text = "usage: " + program_;
  for (const OptionSpec& spec : options_) {
    if (spec.required) text += " " + spec.name + " " + spec.placeholder;
  }
  text += " [options]\n\n" + summary_ + "\n\noptions:\n";
  std::vector<std::pair<std::string, std::string>> rows;
  for (const OptionSpec& spec : options_) {
    rows.emplace_back(spec.flag ? spec.name : spec.name + " " + spec.placeholder,
                      (spec.required ? "(required) " : "") + spec.help);
  }
  rows.emplace_back("-h, --help", "print this help");
  size_t width = 0;
  for (const auto& row : rows) width = std::max(width, row.first.size());
  for (const auto& row : rows) {
    text += "  " + row.first + std::string(width - row.first.size() + 2, ' ') + row.second + "\n";
  }
  return text;
}

std::string quote(const std::string& text) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; i++) {
    const unsigned char ch = static_cast<unsigned char>(text[i]);
    out += (ch >= 0x20 && ch < 0x7f) ? char(ch) : '?';
  }
  if (text.size() > kMax) out += "...";
  return out + "'";
}

int64_t parse_int(const std::string& text, const std::string& argument) {
  auto fail = [&](const std::string& why) {
    return Error(ErrorId::invalid_argument, argument,
                 "expected an integer, got " + quote(text) + why);
  };
  size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) i = 1;
  if (i == text.size()) throw fail("");
  // Accumulate negatively so that INT64_MIN is representable.
  int64_t value = 0;
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  for (; i < text.size(); i++) {
    const char ch = text[i];
    if (ch < '0' || ch > '9') throw fail("");
    const int digit = ch - '0';
    if (value < (kMin + digit) / 10) throw fail(" (out of the 64-bit range)");
    value = value * 10 - digit;
  }
  if (!negative) {
    if (value == kMin) throw fail(" (out of the 64-bit range)");
    value = -value;
  }
  return value;
}

std::vector<std::string> parse_list(const std::string& text, const std::string& argument) {
  std::vector<std::string> items;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) {
      throw Error(ErrorId::invalid_argument, argument,
                  "expected a comma-separated list without empty entries, got " + quote(text));
    }
    items.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& argument,
                                    size_t expected_count, const std::string& what) {
  std::vector<int64_t> values;
  for (const std::string& item : parse_list(text, argument)) {
    try {
      values.push_back(parse_int(item, argument));
    } catch (const Error& e) {
      throw Error(
          ErrorId::invalid_argument, argument,
          "expected comma-separated integers, got " + quote(text) + ": entry " +
              std::to_string(values.size() + 1) + " " + quote(item) + " is not an integer" +
              (e.reason().find("64-bit") != std::string::npos ? " in the 64-bit range" : ""));
    }
  }
  if (expected_count && values.size() != expected_count) {
    throw Error(ErrorId::invalid_argument, argument,
                "expected " + std::to_string(expected_count) + " integers" +
                    (what.empty() ? "" : " (" + what + ")") + ", got " +
                    std::to_string(values.size()) + " in " + quote(text));
  }
  return values;
}

Error with_argument(const Error& error, const std::string& argument) {
  return Error(error.id(), argument, error.reason());
}

void report_error(const std::string& message) {
  std::string line = "convgen: error: ";
  for (char ch : message) {
    const unsigned char byte = static_cast<unsigned char>(ch);
    line += (byte < 0x20 || byte == 0x7f) ? ' ' : ch;
  }
  line += '\n';
  std::fputs(line.c_str(), stderr);
}

int guarded_main(int argc, char** argv, int (*body)(int, char**)) {
  try {
    const int status = body(argc, argv);
    if (std::fflush(stdout) != 0) {
      report_error("cannot write the standard output");
      return 1;
    }
    return status;
  } catch (const std::bad_alloc&) {
    report_error("out of memory");
  } catch (const std::exception& e) {
    report_error(e.what());
  } catch (...) {
    report_error("unexpected internal error");
  }
  return 1;
}

std::vector<LayerOp> select_layer_ops(const Arguments& args, const ShapeConfig& config,
                                      const std::string& config_path) {
  std::set<Op> ops;
  std::set<std::string> layers;
  if (args.has("--ops")) {
    for (const std::string& name : parse_list(args.value("--ops"), "--ops")) {
      ops.insert(parse_op(name, "--ops"));
    }
  }
  if (args.has("--layers")) {
    for (const std::string& name : parse_list(args.value("--layers"), "--layers")) {
      if (std::none_of(config.layers.begin(), config.layers.end(),
                       [&](const Layer& layer) { return layer.name == name; })) {
        throw Error(ErrorId::invalid_argument, "--layers",
                    "no layer named " + quote(name) + " in " + config_path);
      }
      layers.insert(name);
    }
  }
  std::vector<LayerOp> selected;
  for (size_t i = 0; i < config.layers.size(); i++) {
    const Layer& layer = config.layers[i];
    if (!layers.empty() && !layers.count(layer.name)) continue;
    for (Op op : layer.ops) {
      if (ops.empty() || ops.count(op)) selected.push_back({i, op});
    }
  }
  if (selected.empty()) {
    throw Error(ErrorId::invalid_argument, args.has("--ops") ? "--ops" : "--layers",
                "selects no operator of any layer in " + config_path);
  }
  return selected;
}

OutputFile::OutputFile(const std::string& path, const std::string& option)
    : path_(path), temporary_(path + ".tmp"), option_(option) {
  file_.open(temporary_, std::ios::binary | std::ios::trunc);
  if (!file_) throw Error(ErrorId::io_error, option, "cannot write " + quote(path));
}

OutputFile::~OutputFile() {
  if (!committed_) {
    file_.close();
    std::error_code ignored;
    std::filesystem::remove(temporary_, ignored);
  }
}

void OutputFile::commit(const std::string& content) {
  file_ << content;
  file_.close();
  if (!file_) throw Error(ErrorId::io_error, option_, "cannot write " + quote(path_));
  std::error_code error;
  std::filesystem::rename(temporary_, path_, error);
  if (error) {
    throw Error(ErrorId::io_error, option_,
                "cannot write " + quote(path_) + ": " + error.message());
  }
  committed_ = true;
}

}  // namespace convgen::cli
