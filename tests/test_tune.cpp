// convgen tune and the schedule database end to end: a tiny budget on a tiny layer produces a
// valid database, which convgen generate consumes; a stale entry (knobs the schedule no longer
// has) and a corrupt database are refused with a message and fall back to the defaults; a seeded
// entry's schedule is checked against the reference.
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cli_helpers.h"
#include "convgen/schedule_db.h"

#ifndef CONVGEN_TUNE_LAYER
#error "CONVGEN_TUNE_LAYER must name tests/configs/tune_layer.json"
#endif

namespace convgen::testing {
namespace {

const std::string kKey = "n1h8w8c8_k16r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc";

CommandResult generate(const TempDir& dir, const std::string& schedules) {
  return run_program(CONVGEN_EXE, {"generate", "--config", CONVGEN_TUNE_LAYER, "--targets",
                                   "host", "--generic", "none", "--out", dir / "out",
                                   "--schedules", schedules});
}

// Runs convgen tune for the host on 2 threads, without the autoschedulers, over `layers` (a
// shape config written to dir/layers.json), `trials` candidates each, into dir/db.json.
CommandResult tune_layers(const TempDir& dir, const std::string& layers,
                          const std::string& trials) {
  write_bytes(dir / "layers.json", layers);
  return run_program(CONVGEN_EXE, {"tune", "--config", dir / "layers.json", "--db",
                                   dir / "db.json", "--trials", trials, "--threads", "2",
                                   "--no-autoschedulers", "--target", "host"});
}

// Tunes every layer operator of `layers` (a shape config) from entries seeded with each of
// `seeds` (knobs, and how tune's log names them) in turn, and checks that every candidate ran,
// each against the reference: the log names the seed and every one of `tuned` ("layer op"), and
// says nothing failed and nothing was WRONG. `entries`: how many layer operators `layers` has.
void check_seeded_candidates(
    const std::string& layers, size_t entries,
    const std::vector<std::pair<std::map<std::string, int>, std::string>>& seeds,
    const std::vector<std::string>& tuned, FilterLayout filter = FilterLayout::hwio) {
  const TempDir dir;
  write_bytes(dir / "layers.json", layers);
  const auto tune = [&](const std::string& db, const std::string& trials) {
    std::vector<std::string> args = {"tune", "--config", dir / "layers.json", "--db", db,
                                     "--trials", trials, "--threads", "2", "--no-autoschedulers",
                                     "--target", "host"};
    if (filter == FilterLayout::blocked) args.push_back("--packed-filter");
    return run_program(CONVGEN_EXE, args);
  };
  const CommandResult probe = tune(dir / "probe.json", "1");
  INFO(probe.out << probe.err);
  REQUIRE(probe.exit_code == 0);
  const ScheduleDatabase probed = ScheduleDatabase::read(dir / "probe.json");
  REQUIRE(probed.entries().size() == entries);
  for (const ScheduleEntry& e : probed.entries()) CHECK(e.filter == filter);
  for (const auto& [knobs, described] : seeds) {
    ScheduleDatabase db = probed;
    for (ScheduleEntry e : db.entries()) {
      e.knobs = knobs;
      db.put(e);
    }
    db.write(dir / "seeded.json");
    const CommandResult seeded = tune(dir / "seeded.json", "2");  // the defaults, then the entry
    INFO(seeded.out << seeded.err);
    REQUIRE(seeded.exit_code == 0);
    const std::string log = seeded.out + seeded.err;
    CHECK_THAT(log, Catch::Contains(described) && !Catch::Contains("failed") &&
                        !Catch::Contains("WRONG"));
    for (const std::string& layer_op : tuned) CHECK_THAT(log, Catch::Contains(layer_op + ": "));
  }
}

// Layers and seeded knobs whose schedules leave the default paths (see the first test below).
constexpr const char* kOffPathLayers = R"({"layers": [
    {"name": "odd_3x3", "N": 2, "H": 5, "W": 9, "C": 32, "K": 64, "R": 3, "S": 3,
     "padding": "SAME", "ops": ["conv2d", "conv2d_backprop_input"]},
    {"name": "s2_dil", "N": 1, "H": 9, "W": 11, "C": 32, "K": 64, "R": 3, "S": 2, "stride": 2,
     "dilation_w": 2, "padding": "SAME", "ops": ["conv2d", "conv2d_backprop_input"]},
    {"name": "k24", "N": 1, "H": 6, "W": 7, "C": 16, "K": 24, "R": 3, "S": 3,
     "padding": "SAME", "ops": ["conv2d_backprop_input"]},
    {"name": "s2_rows", "N": 1, "H": 10, "W": 13, "C": 32, "K": 48, "R": 3, "S": 3,
     "stride": 2, "padding": "SAME", "ops": ["conv2d_backprop_input"]},
    {"name": "wide_rgb", "N": 2, "H": 50, "W": 150, "C": 3, "K": 2, "R": 3, "S": 3,
     "padding": "SAME", "ops": ["conv2d", "conv2d_backprop_input"]}]})";

std::vector<std::pair<std::map<std::string, int>, std::string>> off_path_seeds() {
  return {{{{"reduction_vectors", 1}, {"tile_pixels", 3}}, "reduction_vectors=1 tile_pixels=3: "},
          {{{"restage", 3}}, "restage=3: "},
          {{{"reduction_chunk", 1024}}, "reduction_chunk=1024: "},
          {{{"block_channel_tiles", 3}, {"reduction_chunk", 8}},
           "block_channel_tiles=3 reduction_chunk=8: "}};
}

}  // namespace

TEST_CASE("tune: a tiny search writes a database that generate uses", "[cli][tune]") {
  const TempDir dir;
  const CommandResult tune = run_program(
      CONVGEN_EXE, {"tune", "--config", CONVGEN_TUNE_LAYER, "--db", dir / "db.json", "--trials",
                    "3", "--seed", "7", "--threads", "1", "--no-autoschedulers", "--target",
                    "host", "--report", dir / "report.md", "--plot", dir / "plot.svg"});
  INFO(tune.out << tune.err);
  REQUIRE(tune.exited);
  REQUIRE(tune.exit_code == 0);
  CHECK_THAT(tune.out, Catch::Contains("tiny_3x3 conv2d: default"));
  CHECK_THAT(read_text(dir / "report.md"), Catch::Contains("| tiny_3x3 | conv2d |"));
  CHECK_THAT(read_text(dir / "plot.svg"), Catch::StartsWith("<svg") && Catch::Contains("polyline"));

  const ScheduleDatabase db = ScheduleDatabase::read(dir / "db.json");
  REQUIRE(db.entries().size() == 1);
  const ScheduleEntry& e = db.entries().front();
  CHECK(e.op == Op::conv2d);
  CHECK(e.shape_key == kKey);
  CHECK(e.trials == 3);
  CHECK(e.gflops >= e.default_gflops);  // the defaults are a candidate: never worse
  CHECK(e.default_gflops > 0);
  CHECK_FALSE(e.knobs.empty());  // every knob named

  // The database's target is the host's; generate for the host takes the entry.
  const CommandResult gen = generate(dir, dir / "db.json");
  INFO(gen.out << gen.err);
  CHECK(gen.exit_code == 0);
  CHECK_THAT(gen.out, Catch::Contains("conv2d tiny_3x3 (tuned)"));
}

TEST_CASE("tune: a stale entry and a corrupt database fall back to the defaults", "[cli][tune]") {
  const TempDir dir;
  const std::string target_probe = dir / "probe.json";
  // The host's target string, as tune writes it: from a one-trial run.
  const CommandResult tune = run_program(
      CONVGEN_EXE, {"tune", "--config", CONVGEN_TUNE_LAYER, "--db", target_probe, "--trials", "1",
                    "--threads", "1", "--no-autoschedulers", "--target", "host"});
  REQUIRE(tune.exit_code == 0);
  ScheduleDatabase db = ScheduleDatabase::read(target_probe);
  REQUIRE(db.entries().size() == 1);
  ScheduleEntry stale = db.entries().front();
  stale.knobs = {{"no_such_knob", 3}};
  db.put(stale);
  db.write(dir / "stale.json");

  const CommandResult gen = generate(dir, dir / "stale.json");
  INFO(gen.out << gen.err);
  CHECK(gen.exit_code == 0);
  CHECK_THAT(gen.out, Catch::Contains("schedule database entry was refused") &&
                          Catch::Contains("no_such_knob") &&
                          Catch::Contains("built with the default schedule"));
  CHECK_THAT(gen.out, !Catch::Contains("(tuned)"));

  write_bytes(dir / "corrupt.json", "{\"convgen_schedules\": 1, \"entries\": [");
  const CommandResult corrupt = generate(dir, dir / "corrupt.json");
  INFO(corrupt.out << corrupt.err);
  CHECK(corrupt.exit_code == 0);
  CHECK_THAT(corrupt.err, Catch::Contains("--schedules refused") &&
                              Catch::Contains("corrupt.json") && Catch::Contains("invalid JSON"));
}

#if defined(__x86_64__)
TEST_CASE("generate: each target of a multitarget kernel takes its own entry", "[cli][tune]") {
  // Knob values fit one ISA (a tile sized for AVX-512's 32 registers spills on AVX2's 16): the
  // AVX2 variant takes the AVX2 entry, which gives it 16-lane vectors, and the SSE4.1 variant,
  // which has none, keeps its default 4 lanes.
  const TempDir dir;
  const std::string avx2 = "x86-64-linux-avx2-fma-f16c", sse41 = "x86-64-linux-sse41";
  ScheduleEntry entry;
  entry.shape_key = kKey;
  entry.target = avx2;
  entry.knobs = {{"vector_multiple", 2}};
  ScheduleDatabase db;
  db.put(entry);
  db.write(dir / "db.json");
  const CommandResult gen = run_program(
      CONVGEN_EXE, {"generate", "--config", CONVGEN_TUNE_LAYER, "--targets", avx2 + "," + sse41,
                    "--generic", "none", "--out", dir / "out", "--schedules", dir / "db.json",
                    "--emit", "stmt"});
  INFO(gen.out << gen.err);
  REQUIRE(gen.exit_code == 0);
  CHECK_THAT(gen.out, Catch::Contains("conv2d tiny_3x3 (tuned)"));
  const std::string kernel = "convgen_conv2d__" + kKey;
  const auto stmt = [&](const std::string& target) {
    return read_text(dir / ("out/kernels/" + kernel + "/" + kernel + "-" + target +
                            "-no_runtime.stmt"));
  };
  CHECK_THAT(stmt(avx2), Catch::Contains("x16("));
  CHECK_THAT(stmt(sse41), Catch::Contains("x4(") && !Catch::Contains("x16("));
}
#endif

#if defined(__x86_64__)
TEST_CASE("tune: the defaults of layers over 1024 channels take their own paths and match",
          "[cli][tune]") {
  // A forward pass over 1024 in-channels runs chunks of 64 with packed filter slices (not one
  // chunk of all 1024); an input gradient over 1024 out-channels packs its filter slices by
  // in-register transposes (in blocks on the stack), not gathers. The defaults' kernels, checked
  // against the reference by tune, on odd sizes.
  const TempDir dir;
  const CommandResult tuned = tune_layers(dir, R"({"layers": [
    {"name": "deep_in", "N": 1, "H": 5, "W": 7, "C": 1024, "K": 32, "R": 3, "S": 3,
     "padding": "SAME", "ops": ["conv2d"]},
    {"name": "deep_out", "N": 1, "H": 3, "W": 5, "C": 16, "K": 1024, "R": 1, "S": 1,
     "padding": "VALID", "ops": ["conv2d_backprop_input"]}]})", "1");
  const std::string log = tuned.out + tuned.err;
  INFO(log);
  REQUIRE(tuned.exit_code == 0);
  CHECK_THAT(log, Catch::Contains("deep_in conv2d: ") &&
                      Catch::Contains("deep_out conv2d_backprop_input: ") &&
                      !Catch::Contains("failed") && !Catch::Contains("WRONG"));
  const CommandResult gen = run_program(
      CONVGEN_EXE, {"generate", "--config", dir / "layers.json", "--targets",
                    "x86-64-linux-avx512_skylake", "--generic", "none", "--out", dir / "out",
                    "--emit", "stmt"});
  INFO(gen.out << gen.err);
  REQUIRE(gen.exit_code == 0);
  const auto stmt = [&](const std::string& op, const std::string& key) {
    const std::string kernel = "convgen_" + op + "__" + key;
    return read_text(dir / ("out/kernels/" + kernel + "/" + kernel + ".stmt"));
  };
  const std::string deep_in = stmt("conv2d", "n1h5w7c1024_k32r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc");
  CHECK_THAT(deep_in, Catch::Contains("chunk_o") && Catch::Contains("filter_im_in_conv2d_acc"));
  const std::string deep_out =
      stmt("conv2d_backprop_input", "n1h3w5c16_k1024r1s1_sh1sw1dh1dw1_pt0pb0pl0pr0_nhwc");
  CHECK_THAT(deep_out, Catch::Contains("in Stack"));
}
#endif

TEST_CASE("tune: knob schedules off the default paths match the reference", "[cli][tune]") {
  // Tune checks every candidate against the reference. Seeded here:
  // - reduction_vectors: channels x positions, each sum a vector along the reduction (input
  //   channels of conv2d, output channels of backprop_input), on odd widths (the last tile
  //   shifted inwards) and with a stride's predicate;
  // - restage=3: backprop_input's filter packed per chunk by in-register transposes of
  //   lanes x lanes blocks, also where the chunk (24 output channels) is not a whole block;
  // - reduction_chunk=1024: one chunk for the whole reduction, each tile's sums straight from
  //   registers to the output;
  // - block_channel_tiles=3: blocks of two register tiles along the channels (the largest divisor
  //   of odd_3x3's four up to 3) sharing each chunk's packed slice, in chunks of 8 steps.
  // backprop_input with stride 2 tiles positions of one phase, across blocks of rows in phases
  // where the height is even (s2_rows) and of single rows where it is odd (s2_dil). Narrow
  // channels (wide_rgb) take tiles of vectors along the positions, one or two to a row, the
  // last past the edge, and of 2 or 3 rows in tasks of 3, the last moved back.
  check_seeded_candidates(kOffPathLayers, 8, off_path_seeds(),
                          {"odd_3x3 conv2d_backprop_input", "s2_dil conv2d",
                           "k24 conv2d_backprop_input", "s2_rows conv2d_backprop_input",
                           "wide_rgb conv2d_backprop_input"});
}

TEST_CASE("tune: filter gradients over parts of the rows match the reference", "[cli][tune]") {
  // split_parts: a filter gradient's register tile over partial sums of parts of the output
  // rows, added in order after. Seeded here: 3 parts of 5 rows (the last part one row short)
  // in a batch of 2, a stride and a dilation, NCHW; 2 parts with reduction_vectors (rows of 32
  // positions: sums as vectors along them), where the tile is channels x positions.
  check_seeded_candidates(R"({"layers": [
    {"name": "odd_rows", "N": 2, "H": 5, "W": 9, "C": 32, "K": 64, "R": 3, "S": 3,
     "padding": "SAME", "ops": ["conv2d_backprop_filter"]},
    {"name": "s2_dil", "N": 1, "H": 9, "W": 11, "C": 32, "K": 64, "R": 3, "S": 2, "stride": 2,
     "dilation_w": 2, "padding": "SAME", "ops": ["conv2d_backprop_filter"]},
    {"name": "nchw", "N": 1, "H": 7, "W": 6, "C": 16, "K": 32, "R": 3, "S": 3,
     "padding": "VALID", "data_format": "NCHW", "ops": ["conv2d_backprop_filter"]},
    {"name": "wide", "N": 1, "H": 6, "W": 32, "C": 16, "K": 32, "R": 3, "S": 3,
     "padding": "SAME", "ops": ["conv2d_backprop_filter"]}]})",
                          4,
                          {{{{"split_parts", 3}}, "split_parts=3: "},
                           {{{"split_parts", 2}, {"reduction_vectors", 1}, {"tile_pixels", 3}},
                            "reduction_vectors=1 split_parts=2 tile_pixels=3: "}},
                          {"odd_rows conv2d_backprop_filter", "s2_dil conv2d_backprop_filter",
                           "nchw conv2d_backprop_filter", "wide conv2d_backprop_filter"});
}

TEST_CASE("tune: kernels for packed filters are searched and checked", "[cli][tune]") {
  // The same schedules off the default paths, for the kernels that read a blocked filter: the
  // reduction's vectors along the in-channels read a block 16 apart, and there is no slice to pack
  // or filter to restage. wide_rgb's 2 out-channels and 3 in-channels make no block: left out.
  check_seeded_candidates(kOffPathLayers, 6, off_path_seeds(),
                          {"odd_3x3 conv2d", "odd_3x3 conv2d_backprop_input", "s2_dil conv2d",
                           "s2_dil conv2d_backprop_input", "k24 conv2d_backprop_input",
                           "s2_rows conv2d_backprop_input"},
                          FilterLayout::blocked);
}

TEST_CASE("tune: the search varies only the knobs the schedule reads", "[cli][tune]") {
  // A 3->1 filter's forward pass runs tiles of vectors along the positions, which read none of
  // the knobs of a register tile's blocks, chunks, restaging and packing: no candidate sets one.
  const TempDir dir;
  const CommandResult r = tune_layers(dir, R"({"layers": [
    {"name": "edge", "N": 1, "H": 40, "W": 40, "C": 3, "K": 1, "R": 3, "S": 3,
     "padding": "SAME", "ops": ["conv2d"]}]})", "10");
  const std::string log = r.out + r.err;
  INFO(log);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(log, Catch::Contains("edge conv2d: trial 10/10"));
  for (const char* knob : {"block_channel_tiles=", "block_tiles=", "block_rows=",
                           "reduction_chunk=", "restage=", "pack_slices=", "split_parts="}) {
    CHECK_THAT(log, !Catch::Contains(knob));
  }
}

TEST_CASE("tune refuses bad options", "[cli][tune]") {
  const TempDir dir;
  const auto refused = [&](std::vector<std::string> args, const std::string& argument) {
    args.insert(args.begin(), "tune");
    const CommandResult r = run_program(CONVGEN_EXE, args);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::StartsWith("convgen: error: ") && Catch::Contains(argument));
    CHECK(dir.entries().empty());
  };
  refused({"--config", CONVGEN_TUNE_LAYER}, "--db");
  refused({"--config", CONVGEN_TUNE_LAYER, "--db", dir / "db.json", "--budget", "soon"},
          "--budget");
  refused({"--config", CONVGEN_TUNE_LAYER, "--db", dir / "db.json", "--trials", "0"}, "--trials");
  // The 3->1 edge layer's channels make no block of 16.
  refused({"--config", CONVGEN_TEST_LAYERS, "--db", dir / "db.json", "--layers", "edge_no_bias",
           "--packed-filter"},
          "--packed-filter");
  refused({"--config", CONVGEN_TUNE_LAYER, "--db", dir / "db.json", "--layers", "nope"},
          "--layers");
  refused({"--config", CONVGEN_TUNE_LAYER, "--db", dir / "db.json", "--ops",
           "conv2d_backprop_input"},
          "--ops");
  refused({"--config", CONVGEN_TUNE_LAYER, "--db", dir / "db.json", "--target", "arm-64-linux"},
          "--target");
}

}  // namespace convgen::testing
