// The parsers of option values, convgen::cli::parse_int, parse_list and parse_int_list, on any
// text: each either refuses it with a convgen::Error or returns values that spell the text back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli.h"
#include "properties.h"

namespace {

namespace cli = convgen::cli;
using convgen::fuzz::refuses;

// parse_int: a value it accepts is read back from its decimal spelling.
void check_parse_int(const std::string& text) {
  int64_t value = 0;
  if (refuses([&] { value = cli::parse_int(text, "--n"); })) return;
  FUZZ_CHECK(cli::parse_int(std::to_string(value), "--n") == value);
}

// parse_list splits at every comma and nothing else; parse_int_list reads the same items as
// integers, and its count check holds.
void check_parse_lists(const std::string& text) {
  std::vector<std::string> items;
  if (refuses([&] { items = cli::parse_list(text, "--list"); })) {
    FUZZ_CHECK(refuses([&] { cli::parse_int_list(text, "--ints"); }));
    return;
  }
  std::string joined;
  for (size_t i = 0; i < items.size(); i++) {
    FUZZ_CHECK(!items[i].empty());
    joined += (i ? "," : "") + items[i];
  }
  FUZZ_CHECK(joined == text);

  std::vector<int64_t> values;
  if (refuses([&] { values = cli::parse_int_list(text, "--ints"); })) return;
  FUZZ_CHECK(values.size() == items.size());
  for (size_t i = 0; i < items.size(); i++)
    FUZZ_CHECK(values[i] == cli::parse_int(items[i], "--n"));
  const bool four = !refuses([&] { cli::parse_int_list(text, "--strides", 4, "1,sh,sw,1"); });
  FUZZ_CHECK(four == (values.size() == 4));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string text(reinterpret_cast<const char*>(bytes), size);
  check_parse_int(text);
  check_parse_lists(text);
  return 0;
}
