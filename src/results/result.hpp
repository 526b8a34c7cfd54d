#pragma once
// The result document (docs/ARCHITECTURE.md §7), schema "overlap-bench/result/v1": writer, strict
// reader, CSV. results/README.md lists every field with its unit;
// results/schema/result_v1.schema.json is the machine-readable form. The `coll` subcommand's rows
// document ("overlap-bench/coll/v1") lives here too.
#include <string>
#include <vector>

#include "analysis/diagnosis.hpp"
#include "analysis/metrics.hpp"
#include "analysis/timeline.hpp"
#include "base/json_util.hpp"
#include "results/document.hpp"
#include "results/prediction.hpp"
#include "results/recommend.hpp"

namespace ob {

inline constexpr const char* result_schema_v1 = "overlap-bench/result/v1";
inline constexpr const char* coll_schema_v1 = "overlap-bench/coll/v1";

struct case_record {
  std::string id;        // unique within a document; compare matches cases by it
  std::string scenario;  // scenario name ("pair", "layer", ...)
  ordered_json params = ordered_json::object();  // free-form swept values, e.g. {"cdmc": 8}
  case_metrics m;
  std::vector<std::string> warnings;
  // Answers (results/answers.hpp): why communication was exposed; the simulator's prediction for
  // a measured case; the overlapped timeline, kept for the best and the worst case only.
  std::optional<diagnosis> diag;
  std::optional<prediction> predicted;
  std::optional<case_timeline> timeline;
};

// The layer and pair payload: one record per case.
struct result_doc : doc_header {
  std::vector<case_record> cases;
};

// Field order is fixed so files diff well: schema, simulated, tool, env, config, cases,
// recommendation.
ordered_json to_json(const case_record& c);
ordered_json to_json(const result_doc& d);

// Strict reader: unknown or missing fields, wrong types, a wrong schema string, duplicate case
// ids and a top-level "simulated" that disagrees with env.simulated are config_errors (exit 2)
// naming `file` and the JSON path ("r.json: cases[3].overlapped_ms.p10: ...").
result_doc result_from_json(const json& j, const std::string& file);
// Same, keeping the key order of params, tool, env and config as in `j` (the json overload sorts
// them), so write -> read -> write reproduces the file byte for byte.
result_doc result_from_json(const ordered_json& j, const std::string& file);
// One case object (of a document, or a journal line) as the strict reader checks it; `where`
// names it in messages ("line 3" gives "x.journal: line 3.params: ...").
case_record case_record_from_json(const ordered_json& j, const std::string& file,
                                  const std::string& where);
// Reads and parses `path` keeping key order, then result_from_json. Exit 2 on any error.
result_doc load_result(const std::string& path);

// Streamed case by case through a temporary file and a rename (write_json_streamed): a crash
// never leaves half a result, and a long sweep's document is never held as one string. I/O
// errors throw runtime_failure (exit 3).
void write_result_json(const std::string& path, const result_doc& d);

// What every CSV writer here shares (results/README.md, CSV): a JSON value as a cell (null empty,
// strings bare, numbers in shortest round-trip form), one row appended with RFC 4180 quoting and
// its CRLF, and the stats' columns in order.
std::string csv_value(const ordered_json& v);
void append_csv_row(std::string& out, const std::vector<std::string>& cells);
inline constexpr const char* csv_stat_names[] = {"median", "p10",   "p90", "min", "max",
                                                 "mean",   "stdev", "cv",  "n"};

// One header row and one row per case (RFC 4180 quoting). Columns: id, scenario, backend,
// simulated, then params.<key> for the union of params keys in first-seen order (nested objects
// flattened with dots), then <stat>.{median,p10,p90,min,max,mean,stdev,cv,n} for the five stats,
// then the scalar metrics, wrong, and warnings joined by "; ". Null metrics are empty cells.
std::string result_csv(const result_doc& d);
void write_result_csv(const std::string& path, const result_doc& d);

// `coll --json`: {"schema": "overlap-bench/coll/v1", "simulated", "tool", "env", "config",
// "op", "ranks", "rows": [...]}. "op" and "ranks" repeat the rows' (absent when there is no row);
// the reader accepts documents without "config".
// The collective payload: one row per size (no recommendation, never partial).
struct coll_doc : doc_header {
  std::vector<coll_row> rows;
};
ordered_json to_json(const coll_doc& d);
coll_doc coll_from_json(const ordered_json& j, const std::string& file);
void write_coll_json(const std::string& path, const coll_doc& d);
// `coll --csv`: one header row and one row per size, the JSON row's fields in its order (time_ms
// flattened to time_ms.median, ...), then backend and simulated. Written through a temporary file.
std::string coll_csv(const coll_doc& d);
void write_coll_csv(const std::string& path, const coll_doc& d);

}  // namespace ob
