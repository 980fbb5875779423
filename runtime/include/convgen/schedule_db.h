// The schedule database: tuned schedules keyed by operator, shape and target, which `convgen tune`
// writes and `convgen generate` (and convgen_add_kernels) read. A kernel with an entry is generated
// with that schedule; any other kernel gets the schedule's declared defaults.
//
//   {"convgen_schedules": 1,
//    "entries": [{"op": "conv2d", "shape_key": "n1h56w56c64_k64r3s3_...", "target":
//                 "x86-64-linux-avx512_skylake", "knobs": {"tile_vectors": 4, ...},
//                 "gflops": 101.2, "default_gflops": 92.0, "autoscheduler_gflops": 40.3,
//                 "trials": 24, "seconds": 118.5}, ...]}
//
// An entry's schedule is either "knobs" (values of the schedule's knobs, schedules/knobs.h; those
// not named keep their defaults) or "autoscheduler": "Adams2019" (Halide's autoscheduler won the
// search). The measurements are what the tuner saw, for the report; generation ignores them.
// `target` is the Halide target the entry was tuned on. A kernel built for several targets
// (x86-64 = AVX-512, AVX2, SSE4.1) takes each target's own entry, since knob values fit one ISA
// (a register tile sized for AVX-512's 32 registers spills on AVX2's 16); a target without one
// gets the defaults. When the first of its entries, in the targets' order (most preferred first),
// names an autoscheduler, every target is autoscheduled (it schedules each for itself).
// `"filter": "blocked"` marks an entry for the kernel of that operator and shape that takes a
// packed filter (FilterLayout::blocked); without it, the entry is for the one that takes HWIO.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "convgen/geometry.h"

namespace convgen {

struct ScheduleEntry {
  Op op = Op::conv2d;
  std::string shape_key;
  std::string target;
  FilterLayout filter = FilterLayout::hwio;
  std::map<std::string, int> knobs;
  std::string autoscheduler;  // non-empty: the kernel is scheduled by this Halide autoscheduler
  double gflops = 0, default_gflops = 0, autoscheduler_gflops = 0, seconds = 0;
  int64_t trials = 0;
};

// The schedule_record file the generator reads (schedules/knobs.h): the knobs of each entry's
// target, {"<target>": {"tile_vectors": 4, ...}, ...}.
std::string schedule_record(const std::vector<const ScheduleEntry*>& entries);

class ScheduleDatabase {
 public:
  // Reads the database at `path`; a missing file is an empty database when `missing_ok`. Every
  // error is a convgen::Error naming the JSON pointer of the bad value, e.g.
  // "schedules.json:/entries/2/knobs/tile_vectors".
  static ScheduleDatabase read(const std::string& path, bool missing_ok = false);
  static ScheduleDatabase parse(const std::string& text, const std::string& source);

  // The entry for (op, shape_key, target, filter), or null.
  const ScheduleEntry* find(Op op, const std::string& shape_key, const std::string& target,
                            FilterLayout filter = FilterLayout::hwio) const;
  // Adds `entry`, replacing the one with the same key.
  void put(const ScheduleEntry& entry);
  const std::vector<ScheduleEntry>& entries() const { return entries_; }

  std::string to_json() const;
  // Writes to_json() to `path` atomically (a temporary file renamed over it).
  void write(const std::string& path) const;

 private:
  std::vector<ScheduleEntry> entries_;
};

}  // namespace convgen
