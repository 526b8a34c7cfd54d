#pragma once
// What every overlap-bench JSON document shares when it is read back (results/README.md): the
// file read whole with its key order kept, the schema string that says which document it is,
// and the strict checks of the top level. result.cpp and step_result.cpp read their own fields.
#include <optional>
#include <string>
#include <vector>

#include "base/json_util.hpp"
#include "results/recommend.hpp"

namespace ob {

// The header every result document carries (results/README.md, docs/ARCHITECTURE.md §7): what
// ran it, on what, with which configuration, whether it is whole, and which case to use. Each
// kind adds its payload: the layer and pair cases (result_doc), the training-step cases
// (step_doc), the collective rows (coll_doc). Writers and readers of every kind go through
// header_to_json and read_header, so the common fields are written and checked in one place.
struct doc_header {
  ordered_json tool = ordered_json::object();  // {"name", "version", "git_sha"}
  // {"backend", "simulated", "label", "gpu": {...}, ..., "variables": {...}}; free-form except
  // that "simulated" (when present) must be a bool and match the top level.
  ordered_json env = ordered_json::object();
  ordered_json config = ordered_json::object();  // the resolved configuration
  std::optional<recommendation> rec;             // which case to use (results/recommend.hpp)
  // The sweep's case count when it stopped before its last case ("complete": false); nullopt
  // for a complete document.
  std::optional<std::size_t> planned_cases;

  // env.simulated; false when absent. Simulated results must never pass for measurements.
  bool simulated() const;
  // env.backend ("sim" | "cuda" | "loopback"); "" when absent.
  std::string backend() const;
};

// The top of every document, in the order every kind keeps: schema, simulated, the partial
// marker, tool, env, config. The kind appends its recommendation and payload after it.
void header_to_json(const doc_header& h, const char* schema, ordered_json& j);

// The strict checks of the top every reader makes: the schema, env/tool/config objects (config
// optional when `config_optional`), "simulated" against env, and the payload array `payload`
// ("cases", "rows"), returned. Fills tool, env and config (key order from `ordered` when given)
// and the partial marker checked against the payload's size. The kind reads the rest and calls
// top.finish().
const json& read_header(const json_object& top, const ordered_json* ordered,
                        const std::string& schema, const std::string& payload, doc_header& h,
                        bool config_optional = false);

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
