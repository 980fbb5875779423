// Schedule knobs: the tunable integers a schedule reads, each declared beside the schedule with its
// legal range and heuristic default. Values come from a JSON schedule record, never from code edits,
// so a tuner changes data only.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace Halide {
struct Target;
}

namespace convgen::schedules {

struct Knob {
  std::string name;
  int min_value;
  int max_value;
  int default_value;
  std::string meaning;
};

// The values of a declared knob space. Unknown names and out-of-range values in a record are errors
// (a stale record must not silently configure a different schedule).
class KnobValues {
 public:
  // `record_path` is a JSON object of knob values per Halide target, {"<target>": {"knob":
  // integer, ...}, ...} (schedule_record() in convgen/schedule_db.h), read for `target`: the
  // object of the key that names it (features the build adds, such as no_runtime, aside). A
  // target without one, and an empty path, take every default.
  KnobValues(const std::vector<Knob>& space, const std::string& record_path,
             const Halide::Target& target);

  int operator[](const std::string& name) const;
  const std::map<std::string, int>& values() const { return values_; }
  // The knobs read so far: those the schedule's path consults. The others change nothing in the
  // kernel, so a tuner leaves them alone.
  const std::set<std::string>& read() const { return read_; }

 private:
  std::map<std::string, int> values_;
  mutable std::set<std::string> read_;
};

// Writes the knob space, the values in force and the knobs the schedule read as JSON to `path`,
// for the tuner and for review, once the schedule is done:
//   {"target": "...", "knobs": [{"name", "min", "max", "default", "meaning"}...],
//    "values": {"name": value, ...}, "read": ["name", ...]}
void write_knob_report(const std::string& path, const std::string& target,
                       const std::vector<Knob>& space, const KnobValues& values);

}  // namespace convgen::schedules
