#pragma once
// What every overlap-bench JSON document shares when it is read back (results/README.md): the
// file read whole with its key order kept, the schema string that says which document it is,
// and the strict checks of the top level. result.cpp and step_result.cpp read their own fields.
#include <optional>
#include <string>
#include <vector>

#include "base/json_util.hpp"

namespace ob {

// Reads and parses `path`, keeping key order. A folder, a file that cannot be opened or invalid
// JSON is a config_error naming it (exit 2).
ordered_json read_document(const std::string& path);

// The "schema" string of a parsed document; "" when it has none.
std::string schema_of(const ordered_json& doc);
// For messages: "a layer/pair result (overlap-bench/result/v1)", "a step document
// (overlap-bench/step/v1)", or "not an overlap-bench document" for anything else.
std::string describe_schema(const std::string& schema);

// config_error naming the field when "schema" is not `expected`.
void check_schema(const json_object& top, const std::string& expected);
// The top-level "simulated" flag is the one a reader sees first; it must agree with env's so
// that no tool can pick one and miss the other. Returns it.
bool check_simulated(const json_object& top, const json& env);
// env.simulated; false when absent or not a bool.
bool env_simulated(const ordered_json& env);

// A sweep stopped before its last case (a signal) writes `"complete": false` and
// `"planned_cases": N` after "simulated"; a complete document has neither, so it reads as it did
// before the marker existed. `planned`: N for a partial document, nullopt for a complete one.
void partial_marker_to_json(const std::optional<std::size_t>& planned, ordered_json& j);
// Reads the marker: config_error when `complete` is not a bool, when it is false without a
// `planned_cases` of at least `cases`, or when `planned_cases` comes without `"complete": false`.
std::optional<std::size_t> partial_marker_from_json(const json_object& top, std::size_t cases);
// "PARTIAL: 3 of 12 cases (the sweep was stopped; --resume measures the rest)", or "".
std::string partial_text(const std::optional<std::size_t>& planned, std::size_t cases);

}  // namespace ob
