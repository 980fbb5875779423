// The schedule database reader: what it accepts, the round trip through its writer, and that every
// malformed, corrupt or inconsistent database is refused naming the JSON pointer of the bad value.
#include <catch2/catch.hpp>
#include <string>

#include "convgen/schedule_db.h"
#include "geometry_builder.h"

namespace convgen::testing {
namespace {

const std::string kKey = "n1h8w8c8_k16r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc";

std::string database(const std::string& entries) {
  return "{\"convgen_schedules\": 1, \"entries\": [" + entries + "]}";
}

std::string entry(const std::string& extra = "", const std::string& knobs = "{\"tile_vectors\": 3}") {
  return "{\"op\": \"conv2d\", \"shape_key\": \"" + kKey +
         "\", \"target\": \"x86-64-linux-avx2-fma\", \"knobs\": " + knobs + extra + "}";
}

void refused(const std::string& text, ErrorId id, const std::string& argument) {
  check_error([&] { ScheduleDatabase::parse(text, "db.json"); }, id, argument);
}

}  // namespace

TEST_CASE("schedule db: entries are found by operator, shape and target", "[unit][schedule_db]") {
  const ScheduleDatabase db = ScheduleDatabase::parse(
      database(entry(", \"gflops\": 12.5, \"trials\": 7") + "," +
               "{\"op\": \"conv2d_backprop_input\", \"shape_key\": \"" + kKey +
               "\", \"target\": \"x86-64-linux-avx2-fma\", \"knobs\": {}, \"autoscheduler\": "
               "\"Adams2019\"}"),
      "db.json");
  REQUIRE(db.entries().size() == 2);
  const ScheduleEntry* e = db.find(Op::conv2d, kKey, "x86-64-linux-avx2-fma");
  REQUIRE(e);
  CHECK(e->knobs.at("tile_vectors") == 3);
  CHECK(e->gflops == 12.5);
  CHECK(e->trials == 7);
  ScheduleEntry sse = *e;
  sse.target = "x86-64-linux-sse41";
  sse.knobs = {{"tile_pixels", 2}};
  CHECK(schedule_record({e, &sse}) ==
        "{\n \"x86-64-linux-avx2-fma\": {\n  \"tile_vectors\": 3\n },\n"
        " \"x86-64-linux-sse41\": {\n  \"tile_pixels\": 2\n }\n}\n");
  CHECK(db.find(Op::conv2d, kKey, "x86-64-linux-sse41") == nullptr);
  CHECK(db.find(Op::conv2d_backprop_filter, kKey, "x86-64-linux-avx2-fma") == nullptr);
  CHECK(db.find(Op::conv2d_backprop_input, kKey, "x86-64-linux-avx2-fma")->autoscheduler ==
        "Adams2019");
}

TEST_CASE("schedule db: what it writes it reads back, and put replaces", "[unit][schedule_db]") {
  ScheduleDatabase db = ScheduleDatabase::parse(database(entry()), "db.json");
  ScheduleEntry e = db.entries().front();
  e.knobs["tile_pixels"] = 5;
  e.gflops = 99;
  db.put(e);
  e.target = "x86-64-linux-sse41";
  db.put(e);
  const ScheduleDatabase again = ScheduleDatabase::parse(db.to_json(), "again.json");
  REQUIRE(again.entries().size() == 2);
  const ScheduleEntry* back = again.find(Op::conv2d, kKey, "x86-64-linux-avx2-fma");
  REQUIRE(back);
  CHECK(back->knobs == std::map<std::string, int>{{"tile_pixels", 5}, {"tile_vectors", 3}});
  CHECK(back->gflops == 99);
}

TEST_CASE("schedule db: a kernel for packed filters has entries of its own", "[unit][schedule_db]") {
  const ScheduleDatabase db = ScheduleDatabase::parse(
      database(entry() + "," + entry(", \"filter\": \"blocked\"", "{\"reduction_chunk\": 72}")),
      "db.json");
  const std::string target = "x86-64-linux-avx2-fma";
  const ScheduleEntry* hwio = db.find(Op::conv2d, kKey, target);
  const ScheduleEntry* blocked = db.find(Op::conv2d, kKey, target, FilterLayout::blocked);
  REQUIRE(hwio);
  REQUIRE(blocked);
  CHECK(hwio->knobs.count("tile_vectors"));
  CHECK(blocked->knobs.at("reduction_chunk") == 72);
  const ScheduleDatabase again = ScheduleDatabase::parse(db.to_json(), "again.json");
  REQUIRE(again.find(Op::conv2d, kKey, target, FilterLayout::blocked));
  CHECK(again.find(Op::conv2d, kKey, target, FilterLayout::blocked)->knobs == blocked->knobs);
  CHECK(again.find(Op::conv2d, kKey, target)->knobs == hwio->knobs);
}

TEST_CASE("schedule db: corrupt or inconsistent databases are refused", "[unit][schedule_db]") {
  refused("{\"convgen_schedules\": 1, \"entries\": [", ErrorId::bad_file, "db.json");
  refused("[]", ErrorId::invalid_argument, "db.json");
  refused("{\"entries\": []}", ErrorId::invalid_argument, "db.json:/convgen_schedules");
  refused("{\"convgen_schedules\": 2, \"entries\": []}", ErrorId::unsupported,
          "db.json:/convgen_schedules");
  refused("{\"convgen_schedules\": 1, \"entries\": {}}", ErrorId::invalid_argument,
          "db.json:/entries");
  refused("{\"convgen_schedules\": 1, \"entries\": [], \"entries\": []}", ErrorId::invalid_argument,
          "db.json:/entries");
  refused(database("3"), ErrorId::invalid_argument, "db.json:/entries/0");
  refused(database(entry(", \"colour\": 1")), ErrorId::invalid_argument,
          "db.json:/entries/0/colour");
  refused(database(entry() + "," + entry()), ErrorId::invalid_argument, "db.json:/entries/1");
  refused(database(entry(", \"filter\": \"blocked\"") + "," + entry(", \"filter\": \"blocked\"")),
          ErrorId::invalid_argument, "db.json:/entries/1");
  refused(database(entry(", \"filter\": \"hwio\"")), ErrorId::invalid_argument,
          "db.json:/entries/0/filter");
  refused(database("{\"op\": \"conv2d_backprop_filter\", \"shape_key\": \"" + kKey +
                   "\", \"target\": \"t\", \"filter\": \"blocked\", \"knobs\": {}}"),
          ErrorId::invalid_argument, "db.json:/entries/0/filter");
  refused(database("{\"shape_key\": \"" + kKey + "\", \"target\": \"t\", \"knobs\": {}}"),
          ErrorId::invalid_argument, "db.json:/entries/0/op");
  refused(database(entry(", \"op\": \"conv3d\"")), ErrorId::invalid_argument,
          "db.json:/entries/0/op");
  refused(database("{\"op\": \"conv2d\", \"shape_key\": \"n1h8\", \"target\": \"t\", \"knobs\": {}}"),
          ErrorId::invalid_argument, "db.json:/entries/0/shape_key");
  refused(database("{\"op\": \"conv2d\", \"shape_key\": \"" + kKey +
                   "\", \"target\": \"a,b\", \"knobs\": {}}"),
          ErrorId::invalid_argument, "db.json:/entries/0/target");
  refused(database(entry("", "[1]")), ErrorId::invalid_argument, "db.json:/entries/0/knobs");
  refused(database(entry("", "{\"tile_vectors\": 2.5}")), ErrorId::invalid_argument,
          "db.json:/entries/0/knobs/tile_vectors");
  refused(database(entry("", "{\"tile_vectors\": 4294967296}")), ErrorId::too_large,
          "db.json:/entries/0/knobs/tile_vectors");
  refused(database(entry(", \"gflops\": -1")), ErrorId::invalid_argument,
          "db.json:/entries/0/gflops");
  refused(database(entry(", \"autoscheduler\": \"Li2018\"", "{}")), ErrorId::invalid_argument,
          "db.json:/entries/0/autoscheduler");
  refused(database(entry(", \"autoscheduler\": \"Adams2019\"")), ErrorId::invalid_argument,
          "db.json:/entries/0/knobs");
}

TEST_CASE("schedule db: files", "[unit][schedule_db]") {
  CHECK(ScheduleDatabase::read("/nonexistent/schedules.json", /*missing_ok=*/true).entries().empty());
  check_error([] { ScheduleDatabase::read("/nonexistent/schedules.json"); }, ErrorId::io_error,
              "/nonexistent/schedules.json");
  check_error([] { ScheduleDatabase::read("/"); }, ErrorId::io_error, "/");
}

}  // namespace convgen::testing
