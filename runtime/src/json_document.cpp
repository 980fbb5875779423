#include "json_document.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "convgen/error.h"

namespace convgen::json_document {

// One reference token of a JSON pointer (RFC 6901: '~' -> "~0", '/' -> "~1").
std::string escape_token(const std::string& token) {
  std::string out;
  for (char ch : token) {
    if (ch == '~') {
      out += "~0";
    } else if (ch == '/') {
      out += "~1";
    } else {
      out += ch;
    }
  }
  return out;
}

// A short, single-line, ASCII rendering of a JSON value for messages.
std::string excerpt(const json& value) {
  std::string text = value.dump(-1, ' ', true, json::error_handler_t::replace);
  if (text.size() > 48) text = text.substr(0, 45) + "...";
  return text;
}

// Parses JSON, rejecting duplicate keys (which nlohmann would silently resolve to the last one)
// with the pointer of the repeated key.
json parse(const std::string& text, const std::string& source, size_t max_nesting) {
  struct Frame {
    Frame(bool is_array, std::string at) : array(is_array), pointer(std::move(at)) {}
    bool array;
    std::string pointer;
    size_t next_index = 0;
    std::string key;
    std::set<std::string> keys;
  };
  std::vector<Frame> frames;
  // The pointer of the value that starts now inside the innermost container.
  auto child_pointer = [&frames]() -> std::string {
    if (frames.empty()) return "";
    Frame& top = frames.back();
    if (top.array) return top.pointer + "/" + std::to_string(top.next_index++);
    return top.pointer + "/" + escape_token(top.key);
  };
  // Opens the frame of the array or object that starts now, if it is not nested too deep.
  auto open = [&](bool is_array) {
    std::string pointer = child_pointer();
    if (frames.size() == max_nesting) {
      throw Error(ErrorId::invalid_argument, source + ":" + pointer,
                  "nested deeper than " + std::to_string(max_nesting) + " arrays and objects");
    }
    frames.emplace_back(is_array, std::move(pointer));
  };
  const json::parser_callback_t callback = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open(false);
        break;
      case json::parse_event_t::array_start:
        open(true);
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames.empty()) frames.pop_back();
        break;
      case json::parse_event_t::key: {
        Frame& top = frames.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second) {
          throw Error(ErrorId::invalid_argument,
                      source + ":" + top.pointer + "/" + escape_token(top.key),
                      "duplicate key " + excerpt(json(top.key)));
        }
        break;
      }
      case json::parse_event_t::value:
        if (!frames.empty() && frames.back().array) frames.back().next_index++;
        break;
    }
    return true;
  };
  try {
    return json::parse(text, callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep its line and column.
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    if (what.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) {
      what = what.substr(bracket + 2);
    }
    // Its "last read" excerpt echoes the input: keep the message ASCII and of bounded length.
    for (char& ch : what) {
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '?';
    }
    if (what.size() > 240) what = what.substr(0, 237) + "...";
    throw Error(ErrorId::bad_file, source, "invalid JSON: " + what);
  }
}

int64_t integer_value(const json& value, const std::string& where, int64_t min, int64_t max) {
  const auto range = [&] {
    return "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
           "], got " + excerpt(value);
  };
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() > uint64_t(max)) throw Error(ErrorId::too_large, where, range());
  } else if (!value.is_number_integer()) {
    throw Error(ErrorId::invalid_argument, where,
                "expected an integer >= " + std::to_string(min) + ", got " + excerpt(value));
  }
  const int64_t result = value.get<int64_t>();
  if (result > max) throw Error(ErrorId::too_large, where, range());
  if (result < min) {
    throw Error(ErrorId::invalid_argument, where,
                "expected an integer >= " + std::to_string(min) + ", got " + excerpt(value));
  }
  return result;
}

std::string read_text_file(const std::string& path, const std::string& what,
                           std::streamoff max_bytes) {
  auto io_error = [&](const std::string& doing, int error) {
    return Error(ErrorId::io_error, path, doing + " " + what + ": " + std::strerror(error));
  };
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) throw io_error("cannot open", errno);
  if (!S_ISREG(info.st_mode)) {
    throw Error(ErrorId::io_error, path, "cannot read " + what + ": not a regular file");
  }
  if (info.st_size > max_bytes) {
    throw Error(ErrorId::too_large, path,
                what + " must be under " + std::to_string(max_bytes >> 20) + " MiB, got " +
                    std::to_string(info.st_size) + " bytes");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) throw io_error("cannot open", errno);
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) throw io_error("cannot read", errno);
  return text.str();
}

}  // namespace convgen::json_document
