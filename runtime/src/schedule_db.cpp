#include "convgen/schedule_db.h"

#include <cstdio>
#include <fstream>
#include <limits>
#include <set>

#include "convgen/error.h"
#include "json_document.h"

namespace convgen {
namespace {

using json_document::escape_token;
using json_document::excerpt;
using nlohmann::json;

constexpr int kVersion = 1;
constexpr std::streamoff kMaxFileSize = 64 << 20;
// A database nests 4 deep (the document, "entries", an entry, "knobs").
constexpr size_t kMaxNesting = 8;
const std::set<std::string> kEntryKeys = {
    "op",     "shape_key",      "target",   "filter", "knobs", "autoscheduler",
    "gflops", "trials", "default_gflops", "seconds",  "autoscheduler_gflops"};

bool same_kernel(const ScheduleEntry& e, Op op, const std::string& shape_key,
                 const std::string& target, FilterLayout filter) {
  return e.op == op && e.shape_key == shape_key && e.target == target && e.filter == filter;
}

std::string key_of(const ScheduleEntry& e) {
  return std::string(to_string(e.op)) + " " + e.shape_key + " " + e.target +
         (e.filter == FilterLayout::blocked ? " (blocked filter)" : "");
}

const json& member(const json& object, const char* key, const std::string& where) {
  if (!object.contains(key)) {
    throw Error(ErrorId::invalid_argument, where + "/" + key, "required key is missing");
  }
  return object.at(key);
}

std::string string_member(const json& object, const char* key, const std::string& where) {
  const json& value = member(object, key, where);
  if (!value.is_string() || value.get<std::string>().empty()) {
    throw Error(ErrorId::invalid_argument, where + "/" + key,
                "expected a non-empty string, got " + excerpt(value));
  }
  return value.get<std::string>();
}

// A measurement: a finite number >= 0, or absent (0).
double measurement(const json& object, const char* key, const std::string& where) {
  if (!object.contains(key)) return 0;
  const json& value = object.at(key);
  if (!value.is_number() || !(value.get<double>() >= 0) ||
      value.get<double>() > std::numeric_limits<double>::max()) {
    throw Error(ErrorId::invalid_argument, where + "/" + key,
                "expected a number >= 0, got " + excerpt(value));
  }
  return value.get<double>();
}

ScheduleEntry read_entry(const json& value, const std::string& where) {
  if (!value.is_object()) {
    throw Error(ErrorId::invalid_argument, where, "expected an entry object, got " + excerpt(value));
  }
  for (const auto& item : value.items()) {
    if (!kEntryKeys.count(item.key())) {
      throw Error(ErrorId::invalid_argument, where + "/" + escape_token(item.key()),
                  "unknown key " + excerpt(json(item.key())));
    }
  }
  ScheduleEntry e;
  e.op = parse_op(string_member(value, "op", where), where + "/op");
  e.shape_key = string_member(value, "shape_key", where);
  Geometry::from_key(e.shape_key, where + "/shape_key");  // a key convgen could have made
  e.target = string_member(value, "target", where);
  if (e.target.find_first_of(", \t\n") != std::string::npos) {
    throw Error(ErrorId::invalid_argument, where + "/target",
                "expected one Halide target string, got " + excerpt(json(e.target)));
  }
  if (value.contains("filter")) {
    if (value.at("filter") != json("blocked") ||
        (e.op != Op::conv2d && e.op != Op::conv2d_backprop_input)) {
      throw Error(ErrorId::invalid_argument, where + "/filter",
                  "expected \"blocked\" (conv2d and conv2d_backprop_input only), got " +
                      excerpt(value.at("filter")));
    }
    e.filter = FilterLayout::blocked;
  }
  if (value.contains("autoscheduler")) {
    e.autoscheduler = string_member(value, "autoscheduler", where);
    if (e.autoscheduler != "Adams2019" && e.autoscheduler != "Mullapudi2016") {
      throw Error(ErrorId::invalid_argument, where + "/autoscheduler",
                  "expected \"Adams2019\" or \"Mullapudi2016\", got " + excerpt(json(e.autoscheduler)));
    }
  }
  const json& knobs = member(value, "knobs", where);
  if (!knobs.is_object()) {
    throw Error(ErrorId::invalid_argument, where + "/knobs",
                "expected an object of knob values, got " + excerpt(knobs));
  }
  if (!e.autoscheduler.empty() && !knobs.empty()) {
    throw Error(ErrorId::invalid_argument, where + "/knobs",
                "an autoscheduled entry has no knob values");
  }
  for (const auto& item : knobs.items()) {
    const std::string at = where + "/knobs/" + escape_token(item.key());
    e.knobs[item.key()] = int(json_document::integer_value(
        item.value(), at, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
  }
  e.gflops = measurement(value, "gflops", where);
  e.default_gflops = measurement(value, "default_gflops", where);
  e.autoscheduler_gflops = measurement(value, "autoscheduler_gflops", where);
  e.seconds = measurement(value, "seconds", where);
  if (value.contains("trials")) {
    e.trials = json_document::integer_value(value.at("trials"), where + "/trials", 0,
                                            std::numeric_limits<int32_t>::max());
  }
  return e;
}

}  // namespace

std::string schedule_record(const std::vector<const ScheduleEntry*>& entries) {
  json record = json::object();
  for (const ScheduleEntry* e : entries) record[e->target] = e->knobs;
  return record.dump(1) + "\n";
}

ScheduleDatabase ScheduleDatabase::read(const std::string& path, bool missing_ok) {
  if (missing_ok && !std::ifstream(path)) return {};
  return parse(json_document::read_text_file(path, "the schedule database", kMaxFileSize), path);
}

ScheduleDatabase ScheduleDatabase::parse(const std::string& text, const std::string& source) {
  const json root = json_document::parse(text, source, kMaxNesting);
  if (!root.is_object()) {
    throw Error(ErrorId::invalid_argument, source,
                "expected a schedule database object, got " + excerpt(root));
  }
  const std::string version_at = source + ":/convgen_schedules";
  if (!root.contains("convgen_schedules")) {
    throw Error(ErrorId::invalid_argument, version_at,
                "required key is missing (not a convgen schedule database)");
  }
  if (root.at("convgen_schedules") != json(kVersion)) {
    throw Error(ErrorId::unsupported, version_at,
                "this convgen reads version " + std::to_string(kVersion) + ", got " +
                    excerpt(root.at("convgen_schedules")));
  }
  const json& entries = member(root, "entries", source + ":");
  if (!entries.is_array()) {
    throw Error(ErrorId::invalid_argument, source + ":/entries",
                "expected a list of entries, got " + excerpt(entries));
  }
  ScheduleDatabase db;
  std::set<std::string> seen;
  for (size_t i = 0; i < entries.size(); i++) {
    const std::string where = source + ":/entries/" + std::to_string(i);
    ScheduleEntry e = read_entry(entries[i], where);
    if (!seen.insert(key_of(e)).second) {
      throw Error(ErrorId::invalid_argument, where, "a second entry for " + key_of(e));
    }
    db.entries_.push_back(std::move(e));
  }
  return db;
}

const ScheduleEntry* ScheduleDatabase::find(Op op, const std::string& shape_key,
                                            const std::string& target, FilterLayout filter) const {
  for (const ScheduleEntry& e : entries_) {
    if (same_kernel(e, op, shape_key, target, filter)) return &e;
  }
  return nullptr;
}

void ScheduleDatabase::put(const ScheduleEntry& entry) {
  for (ScheduleEntry& e : entries_) {
    if (same_kernel(e, entry.op, entry.shape_key, entry.target, entry.filter)) {
      e = entry;
      return;
    }
  }
  entries_.push_back(entry);
}

std::string ScheduleDatabase::to_json() const {
  nlohmann::ordered_json root = {{"convgen_schedules", kVersion},
                                 {"entries", nlohmann::ordered_json::array()}};
  for (const ScheduleEntry& e : entries_) {
    nlohmann::ordered_json entry = {{"op", to_string(e.op)},
                                    {"shape_key", e.shape_key},
                                    {"target", e.target}};
    if (e.filter == FilterLayout::blocked) entry["filter"] = "blocked";
    entry["knobs"] = e.knobs;
    if (!e.autoscheduler.empty()) entry["autoscheduler"] = e.autoscheduler;
    entry["gflops"] = e.gflops;
    entry["default_gflops"] = e.default_gflops;
    entry["autoscheduler_gflops"] = e.autoscheduler_gflops;
    entry["trials"] = e.trials;
    entry["seconds"] = e.seconds;
    root["entries"].push_back(std::move(entry));
  }
  return root.dump(1) + "\n";
}

void ScheduleDatabase::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << to_json();
    if (!out) throw Error(ErrorId::io_error, path, "cannot write the schedule database");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw Error(ErrorId::io_error, path, "cannot replace the schedule database");
  }
}

}  // namespace convgen
