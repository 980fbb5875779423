#include "command_parsers.h"

namespace convgen::tools {

cli::Parser run_parser() {
  cli::Parser parser("convgen run",
                     "Runs one operator on float32 .npy files with TensorFlow's argument names "
                     "(see SPEC.md). Activations are in the data format, filters HWIO.");
  parser.option("--op", "OP", "conv2d, conv2d_backprop_input or conv2d_backprop_filter", true)
      .option("--input", "X.npy", "input activations (conv2d, conv2d_backprop_filter)")
      .option("--filter", "W.npy", "HWIO filter (conv2d, conv2d_backprop_input)")
      .option("--bias", "B.npy", "bias of shape [K] (conv2d only; optional)")
      .option("--input-sizes", "N,H,W,C",
              "input shape in data-format order (conv2d_backprop_input)")
      .option("--filter-sizes", "R,S,C,K", "filter shape (conv2d_backprop_filter)")
      .option("--out-backprop", "DY.npy",
              "gradient of the output, of exactly the output's shape (backprop ops)")
      .option("--strides", "1,sh,sw,1", "strides in data-format order", true)
      .option("--padding", "SAME|VALID|EXPLICIT", "padding scheme", true)
      .option("--explicit-paddings", "0,0,pt,pb,pl,pr,0,0",
              "before,after pairs in data-format order (EXPLICIT only)")
      .option("--dilations", "1,dh,dw,1", "dilations in data-format order (default all 1)")
      .option("--data-format", "NHWC|NCHW", "layout of the activations (default NHWC)")
      .option("--output", "OUT.npy",
              "where the result goes: Y, DX or DW (required unless --explain is given)")
      .option("--bias-grad-output", "DB.npy",
              "also write the bias gradient (conv2d_backprop_filter only; optional)")
      .option("--target", "auto|cpu|cuda",
              "which compiled kernels may run the call: auto (the default: CPU kernels first, a "
              "CUDA kernel only where none serves the call and a CUDA device is present), cpu, or "
              "cuda (an error without a CUDA device)")
      .flag("--reference", "compute with the naive reference instead of a compiled kernel")
      .flag("--explain",
            "check everything, then print which compiled kernel would run the call and why the "
            "others would not; compute and write nothing");
  return parser;
}

cli::Parser verify_parser() {
  cli::Parser parser(
      "convgen verify",
      "Runs every layer and operator of a shape config with the specialized kernel (when the "
      "tool has one for the layer), the generic kernel and the naive reference on random data "
      "(uniform in [-1, 1)), and reports each kernel's error against a rounding bound, the times "
      "and the speedups. Exits 1 if any kernel is over the bound.");
  parser.option("--config", "FILE", "shape config, e.g. configs/resnet_layers.json", true)
      .option("--ops", "OP,...", "operators to verify (default: each layer's ops)")
      .option("--layers", "NAME,...", "layers to verify (default: all)")
      .option("--seed", "S", "random seed (default 1); the same seed gives the same data")
      .option("--repeats", "N",
              "timed runs of each kernel after one warm-up, the two kernels alternating; the "
              "median is shown (default 5)");
  return parser;
}

cli::Parser generate_parser() {
  cli::Parser parser("convgen generate",
                     "Compiles kernels specialized for the layers of a shape config, plus generic "
                     "fallbacks, into one static library with its kernel list.");
  parser.option("--config", "FILE", "shape config (JSON); without it only generic kernels")
      .option("--out", "DIR", "output folder", /*required=*/true)
      .option("--library", "NAME", "library and kernel-list name (default convgen_kernels)")
      .option("--targets", "T,...",
              "Halide targets (default: the config's \"targets\", else x86-64 = AVX-512, "
              "AVX2+FMA and SSE4.1; 'host' = this machine)")
      .option("--generic", "NHWC,NCHW|none",
              "layouts that get generic kernels (default: those the config uses)")
      .option("--jobs", "N", "generator processes at once (default 2)")
      .option("--emit", "stmt,assembly",
              "also write each kernel's Halide statement file and assembly, for review")
      .option("--schedules", "FILE",
              "schedule database (convgen tune): tuned kernels use its schedules")
      .option("--generator", "PATH", "the convgen_generators executable")
      .flag("--list-outputs", "print the files a generation writes, and nothing else");
  return parser;
}

cli::Parser bench_parser() {
  cli::Parser parser(
      "convgen bench",
      "Times every layer and operator of a shape config with convgen's specialized and generic "
      "kernels and with oneDNN (its preferred weight format and HWIO), im2col + OpenBLAS sgemm "
      "(forward) and the naive reference (small layers), per thread count, after checking every "
      "output against the reference; prints median times, GFLOP/s, % of the measured peak FMA "
      "throughput and the ratio best peer time / convgen time. Exits 1 if a convgen kernel is "
      "over the rounding bound.");
  parser.option("--config", "FILE", "shape config, e.g. configs/resnet_layers.json", true)
      .option("--ops", "OP,...", "operators to time (default: each layer's ops)")
      .option("--layers", "NAME,...", "layers to time (default: all)")
      .option("--impls", "IMPL,...",
              "implementations to run: convgen-specialized, convgen-generic, convgen-cuda, "
              "onednn-any, onednn-hwio, im2col-openblas, reference (default: all)")
      .option("--threads", "N,...",
              "thread counts, one table each (default: 1 and the number of CPUs)")
      .option("--repeats", "N",
              "timed rounds after the warm-up, each running every implementation once in turn; "
              "median and minimum are reported (default 10)")
      .option("--reference-max-gflop", "G",
              "time the naive reference only on layers of fewer GFLOP (default 0.5); every layer "
              "is checked against it regardless")
      .option("--seed", "S", "random seed (default 1); the same seed gives the same data")
      .option("--json", "OUT",
              "write the results as a list of records {layer, op, impl, threads, median_ms, "
              "min_ms, gflops}")
      .option("--markdown", "OUT", "write the tables as markdown");
  return parser;
}

cli::Parser tune_parser() {
  cli::Parser parser("convgen tune",
                     "Searches each layer's schedule (the schedule's knobs, and Halide's "
                     "autoschedulers), checking every candidate against the reference, and "
                     "records the best in a schedule database for convgen generate.");
  parser.option("--config", "FILE", "shape config (JSON)", /*required=*/true)
      .option("--db", "FILE",
              "schedule database to update (created if missing; its entries are starting points)",
              /*required=*/true)
      .option("--ops", "OP,...", "operators to tune (default: each layer's)")
      .option("--layers", "NAME,...", "layers to tune (default: all)")
      .option("--target", "T",
              "what to tune for, as convgen generate's --targets names it: x86-64 (default; its "
              "first target this CPU runs), host, cuda, or a Halide target string")
      .option("--budget", "TIME",
              "search time per layer and operator, e.g. 120s or 3m (default 120s without --trials)")
      .option("--trials", "N", "candidates per layer and operator at most")
      .option("--seed", "S", "random seed of the search (default 1)")
      .option("--threads", "N", "threads the kernels run on (default: every core)")
      .option("--report", "FILE", "also write the result table here (markdown)")
      .option("--plot", "FILE", "write the convergence plot here (SVG)")
      .flag("--no-autoschedulers", "do not try Halide's autoschedulers")
      .flag("--packed-filter",
            "tune the kernels for filters packed once (conv2d and conv2d_backprop_input of layers "
            "whose channels make whole blocks), timed with a filter from Engine::pack_filter");
  return parser;
}

}  // namespace convgen::tools
