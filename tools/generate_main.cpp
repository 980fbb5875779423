// convgen-generate: `convgen generate` on its own. It links no kernels, so a build can run it to
// make the kernel libraries that the other tools and the user's application link.
#include "cli.h"
#include "commands.h"

int main(int argc, char** argv) {
  return convgen::cli::guarded_main(argc, argv, convgen::tools::generate_command);
}
