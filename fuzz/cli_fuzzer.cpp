// The command line of every convgen subcommand, parsed as the tool parses it. The bytes are the
// arguments, each ended by a NUL or a newline; the first names the subcommand (run, verify,
// generate, bench) as it follows `convgen`.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli.h"
#include "command_parsers.h"
#include "properties.h"

namespace {

namespace cli = convgen::cli;
using convgen::fuzz::refuses;

std::vector<std::string> split_arguments(const uint8_t* bytes, size_t size) {
  std::vector<std::string> args;
  std::string arg;
  for (size_t i = 0; i < size; i++) {
    const char ch = static_cast<char>(bytes[i]);
    if (ch == '\0' || ch == '\n') {
      args.push_back(std::move(arg));
      arg.clear();
    } else {
      arg += ch;
    }
  }
  if (!arg.empty()) args.push_back(std::move(arg));
  return args;
}

struct Command {
  const char* name;
  cli::Parser parser;
};

const std::vector<Command>& commands() {
  static const std::vector<Command> all = {{"run", convgen::tools::run_parser()},
                                           {"verify", convgen::tools::verify_parser()},
                                           {"generate", convgen::tools::generate_parser()},
                                           {"bench", convgen::tools::bench_parser()},
                                           {"tune", convgen::tools::tune_parser()}};
  return all;
}

// A command line the parser accepts has every option it names: each "--name" token is an option
// (a value never starts with "--"), and "--name=value" gives that value.
void check_command_line(const cli::Parser& parser, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  cli::Arguments arguments;
  if (refuses([&] { arguments = parser.parse(static_cast<int>(args.size()), argv.data()); })) {
    return;
  }
  if (arguments.help()) FUZZ_CHECK(!parser.usage().empty());
  for (size_t i = 1; i < args.size(); i++) {
    const std::string& token = args[i];
    if (token.compare(0, 2, "--") != 0 || token == "--help") continue;
    const size_t equals = token.find('=');
    const std::string name = token.substr(0, equals);
    FUZZ_CHECK(arguments.has(name));
    if (equals != std::string::npos) FUZZ_CHECK(arguments.value(name) == token.substr(equals + 1));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::vector<std::string> args = split_arguments(bytes, size);
  if (args.empty()) return 0;
  for (const Command& command : commands()) {
    if (args[0] == command.name) check_command_line(command.parser, args);
  }
  return 0;
}
