// convgen::ScheduleDatabase::parse on any text: entries with unique keys, valid shape keys and a
// knob record or an autoscheduler, which the writer writes and the reader reads back unchanged; or
// a convgen::Error.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>

#include "convgen/error.h"
#include "convgen/schedule_db.h"
#include "properties.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  convgen::ScheduleDatabase db;
  try {
    db = convgen::ScheduleDatabase::parse(
        std::string(reinterpret_cast<const char*>(bytes), size), "fuzz.json");
  } catch (const convgen::Error&) {
    return 0;
  }
  std::set<std::tuple<convgen::Op, std::string, std::string>> keys;
  for (const convgen::ScheduleEntry& e : db.entries()) {
    FUZZ_CHECK(keys.emplace(e.op, e.shape_key, e.target).second);
    FUZZ_CHECK(db.find(e.op, e.shape_key, e.target) == &e);
    FUZZ_CHECK(e.autoscheduler.empty() || e.knobs.empty());
    convgen::fuzz::check_geometry(convgen::Geometry::from_key(e.shape_key, "shape_key"));
  }
  const std::string written = db.to_json();
  const convgen::ScheduleDatabase again = convgen::ScheduleDatabase::parse(written, "again.json");
  FUZZ_CHECK(again.to_json() == written);
  return 0;
}
