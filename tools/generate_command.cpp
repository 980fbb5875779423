// convgen generate: a shape config in, a kernel library out (see codegen.h).
#include <algorithm>
#include <iostream>

#include "cli.h"
#include "codegen.h"
#include "command_parsers.h"
#include "commands.h"

namespace convgen::tools {

int generate_command(int argc, char** argv) {
  const cli::Parser parser = generate_parser();
  const cli::Arguments args = parser.parse(argc, argv);
  if (args.help()) {
    std::cout << parser.usage();
    return 0;
  }

  codegen::Options options;
  options.out_dir = args.value("--out");
  options.library = args.value_or("--library", options.library);
  // Targets: --targets, else the config's "targets", else x86-64.
  std::vector<std::string> targets = {"x86-64"};
  if (args.has("--config")) {
    ShapeConfig config = read_shape_config(args.value("--config"));
    options.layers = std::move(config.layers);
    if (!config.targets.empty()) targets = config.targets;
  }
  if (args.has("--targets")) targets = cli::parse_list(args.value("--targets"), "--targets");
  options.targets = codegen::expand_targets(targets, "--targets");
  if (args.has("--generic")) {
    const std::string generic = args.value("--generic");
    if (generic != "none") {
      for (const std::string& f : cli::parse_list(generic, "--generic")) {
        options.generic_formats.push_back(parse_data_format(f, "--generic"));
      }
    }
  } else {
    for (const Layer& layer : options.layers) {
      const DataFormat f = layer.geometry.format();
      if (std::find(options.generic_formats.begin(), options.generic_formats.end(), f) ==
          options.generic_formats.end()) {
        options.generic_formats.push_back(f);
      }
    }
  }
  if (args.has("--emit")) {
    for (const std::string& output : cli::parse_list(args.value("--emit"), "--emit")) {
      if (output != "stmt" && output != "assembly") {
        throw Error(ErrorId::invalid_argument, "--emit",
                    "expected stmt and/or assembly, got " + cli::quote(output));
      }
      options.review_outputs.push_back(output);
    }
  }
  if (args.has("--schedules")) {
    // A database that cannot be read is refused as a whole, and every kernel gets the defaults:
    // a bad database slows kernels down, it does not stop a build.
    try {
      options.schedules = ScheduleDatabase::read(args.value("--schedules"));
    } catch (const Error& e) {
      std::cerr << "convgen generate: warning: --schedules refused, every kernel gets its default "
                   "schedule: "
                << e.what() << std::endl;
    }
  }
  const int64_t jobs = cli::parse_int(args.value_or("--jobs", "2"), "--jobs");
  if (jobs < 1 || jobs > 64) throw Error(ErrorId::invalid_argument, "--jobs", "must be in [1, 64]");
  options.jobs = int(jobs);

  if (args.flag("--list-outputs")) {
    codegen::plan(options);  // validates
    const codegen::Outputs out = codegen::outputs(options);
    std::cout << out.archive << "\n" << out.list_header << "\n" << out.list_source << "\n";
    return 0;
  }
  options.generator = codegen::find_generator(args.value_or("--generator", ""));
  codegen::generate(options, std::cout);
  return 0;
}

}  // namespace convgen::tools
