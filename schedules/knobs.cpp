#include "knobs.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "Halide.h"

namespace convgen::schedules {

namespace {

// The target a kernel is generated for, less the features that only say how it is packaged.
Halide::Target isa_of(const Halide::Target& target) {
  return target.without_feature(Halide::Target::NoRuntime)
      .without_feature(Halide::Target::UserContext);
}

// The knob values of `record` (one object per target) for `target`; null when it has none.
// Every key is checked, not just those before the match.
const nlohmann::json* knobs_for(const nlohmann::json& record, const Halide::Target& target,
                                const std::string& record_path) {
  const nlohmann::json* found = nullptr;
  for (const auto& [name, knobs] : record.items()) {
    if (!Halide::Target::validate_target_string(name)) {
      throw std::runtime_error("schedule_record: " + record_path + ": '" + name +
                               "' is not a Halide target");
    }
    if (!knobs.is_object()) {
      throw std::runtime_error("schedule_record: /" + name + " must be an object of knob values");
    }
    if (isa_of(Halide::Target(name)) == isa_of(target)) found = &knobs;
  }
  return found;
}

}  // namespace

KnobValues::KnobValues(const std::vector<Knob>& space, const std::string& record_path,
                       const Halide::Target& target) {
  for (const Knob& knob : space) {
    values_[knob.name] = knob.default_value;
  }
  if (record_path.empty()) {
    return;
  }
  std::ifstream file(record_path);
  if (!file) {
    throw std::runtime_error("schedule_record: cannot open " + record_path);
  }
  nlohmann::json record;
  try {
    record = nlohmann::json::parse(file);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("schedule_record: " + record_path + ": " + e.what());
  }
  if (!record.is_object()) {
    throw std::runtime_error("schedule_record: " + record_path + ": expected a JSON object");
  }
  const nlohmann::json* knobs = knobs_for(record, target, record_path);
  if (!knobs) return;
  for (const auto& [name, value] : knobs->items()) {
    auto known = values_.find(name);
    if (known == values_.end()) {
      throw std::runtime_error("schedule_record: unknown knob /" + name);
    }
    const Knob& knob = *std::find_if(space.begin(), space.end(),
                                     [&](const Knob& k) { return k.name == name; });
    if (!value.is_number_integer() || value.get<long long>() < knob.min_value ||
        value.get<long long>() > knob.max_value) {
      throw std::runtime_error("schedule_record: /" + name + " must be an integer in [" +
                               std::to_string(knob.min_value) + ", " +
                               std::to_string(knob.max_value) + "]");
    }
    known->second = value.get<int>();
  }
}

int KnobValues::operator[](const std::string& name) const {
  auto known = values_.find(name);
  if (known == values_.end()) {
    throw std::logic_error("schedule reads undeclared knob " + name);
  }
  read_.insert(name);
  return known->second;
}

void write_knob_report(const std::string& path, const std::string& target,
                       const std::vector<Knob>& space, const KnobValues& values) {
  nlohmann::ordered_json report = {{"target", target}, {"knobs", nlohmann::ordered_json::array()}};
  for (const Knob& knob : space) {
    report["knobs"].push_back({{"name", knob.name},
                               {"min", knob.min_value},
                               {"max", knob.max_value},
                               {"default", knob.default_value},
                               {"meaning", knob.meaning}});
  }
  report["values"] = values.values();
  report["read"] = values.read();
  std::ofstream file(path, std::ios::trunc);
  file << report.dump(1) << "\n";
  if (!file) throw std::runtime_error("knob_report: cannot write " + path);
}

}  // namespace convgen::schedules
