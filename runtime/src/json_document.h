// What the runtime's JSON readers (shape configs, schedule databases) share: strict parsing that
// refuses duplicate keys, JSON pointers and value excerpts for messages, bounded integers, and
// reading a whole file of bounded size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ios>
#include <nlohmann/json.hpp>
#include <string>

namespace convgen::json_document {

using nlohmann::json;

// One reference token of a JSON pointer (RFC 6901: '~' -> "~0", '/' -> "~1").
std::string escape_token(const std::string& token);

// A short, single-line, ASCII rendering of a JSON value for messages.
std::string excerpt(const json& value);

// Parses JSON, rejecting duplicate keys (which nlohmann would silently resolve to the last one)
// with the pointer of the repeated key, and arrays and objects nested deeper than `max_nesting`
// (which bounds the memory of the pointers kept while parsing: it grows with the square of the
// depth); a syntax error is ErrorId::bad_file naming `source`.
json parse(const std::string& text, const std::string& source, size_t max_nesting);

// An integer in [min, max]: only JSON integers count (not 3.5, not "3", not 3.0). Errors name
// `where`; a value over `max` is ErrorId::too_large.
int64_t integer_value(const json& value, const std::string& where, int64_t min, int64_t max);

// The whole regular file at `path` (`what` names it in errors: "the shape config"), refused
// without reading when it is over `max_bytes`.
std::string read_text_file(const std::string& path, const std::string& what,
                           std::streamoff max_bytes);

}  // namespace convgen::json_document
