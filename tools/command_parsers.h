// The options of every `convgen` subcommand. They live apart from the commands so that a command
// line can be parsed exactly as the tool parses it without linking any kernels (the CLI fuzz target
// does so).
#pragma once

#include "cli.h"

namespace convgen::tools {

cli::Parser run_parser();       // convgen run
cli::Parser verify_parser();    // convgen verify
cli::Parser generate_parser();  // convgen generate
cli::Parser bench_parser();     // convgen bench
cli::Parser tune_parser();      // convgen tune

}  // namespace convgen::tools
