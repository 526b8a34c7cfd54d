#pragma once
// The step result document, schema "overlap-bench/step/v1" (results/README.md,
// results/schema/step_v1.schema.json): writer, strict reader and table.
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "analysis/diagnosis.hpp"
#include "analysis/step_metrics.hpp"
#include "base/json_util.hpp"
#include "base/stats.hpp"
#include "model/memory.hpp"
#include "results/document.hpp"
#include "results/recommend.hpp"

namespace ob {

inline constexpr const char* step_schema_v1 = "overlap-bench/step/v1";

struct step_record {
  std::string id;
  ordered_json params = ordered_json::object();  // the swept values
  ordered_json config = ordered_json::object();  // the resolved layout and overlap settings
  stats step_ms;                                 // the step (slowest stage)
  step_breakdown breakdown_ms;                   // adds up to step_ms.median
  double exposed_ms = 0;  // the breakdown less compute and optimizer: what the diagnosis splits
  std::optional<ob::diagnosis> diagnosis;  // nullopt when nothing is exposed
  std::optional<stats> compute_only_ms;    // the same step with every comm op dropped
  int critical_stage = 0;
  double tokens_per_s_per_gpu = 0;
  double model_tflops_per_gpu = 0;  // Megatron's formula, recomputation not counted
  double mfu = 0;                   // model TFLOP/s over the GPU's dense peak for the dtype
  std::vector<std::string> warnings;
  std::optional<memory_estimate> memory;  // absent in documents written before the memory model
};

// A case the memory model says does not fit: listed in the document's "oom", never run.
struct oom_record {
  std::string id;
  ordered_json params = ordered_json::object();
  ordered_json config = ordered_json::object();
  memory_estimate memory;
};

// The training-step payload (doc_header, results/document.hpp): the cases run, the cases that do
// not fit, and a search's counts. The recommendation is the lowest step median (or the highest
// throughput) of the cases that fit, set at the end of the sweep.
struct step_doc : doc_header {
  std::vector<step_record> cases;
  std::vector<oom_record> oom;  // not run: over the GPU's memory (docs/MEMORY.md)
  // step --search's counts (run/step_search.hpp); null for a sweep.
  ordered_json search = nullptr;
};

// The breakdown's parts in document order: JSON key, the tables' heading, the field.
struct breakdown_part {
  const char* key;
  const char* heading;
  double step_breakdown::*value;
};
const std::array<breakdown_part, 9>& breakdown_parts();

ordered_json to_json(const step_breakdown& b);
ordered_json to_json(const step_record& r);
ordered_json to_json(const oom_record& r);
ordered_json to_json(const step_doc& d);
// Strict reader, as result_from_json (results/result.hpp): unknown or missing fields, wrong types,
// a wrong schema string, duplicate case ids and a top-level "simulated" that disagrees with
// env.simulated are config_errors (exit 2) naming `file` and the JSON path. `recommendation` may
// be absent (documents written before it existed).
step_doc step_from_json(const ordered_json& j, const std::string& file);
// read_document (results/document.hpp), then step_from_json.
step_doc load_step(const std::string& path);
// One case object (of a document, or a journal line) read back strictly: a missing, unknown or
// mistyped field is a config_error (exit 2) naming `file` and `where` ("x.journal: line 3.mfu:
// ..."). Params and config keep their key order, so to_json gives back the same text.
step_record step_record_from_json(const ordered_json& j, const std::string& file,
                                  const std::string& where);
// An entry of the document's "oom" list, read as strictly; "fits" must be false.
oom_record oom_record_from_json(const ordered_json& j, const std::string& file,
                                const std::string& where);
// "memory_gib", "memory_stage" and "fits" of a case or an oom entry.
memory_estimate memory_from_json(const json_object& o);
// Streamed case by case through a temporary file and a rename (write_json_streamed): a crash
// never leaves half a result (exit 3 on I/O).
void write_step_json(const std::string& path, const step_doc& d);

// One CSV row per case (RFC 4180, as the result CSV): id, backend, simulated, params.*, the step
// median's stats, breakdown_ms.*, exposed_ms, critical_stage, tokens_per_s_per_gpu,
// model_tflops_per_gpu, mfu, compute_only_ms.median, main_cause, why (as the table prints
// it), warnings. Written to a temporary file and renamed (exit 3 on I/O).
std::string step_csv(const step_doc& d);
void write_step_csv(const std::string& path, const step_doc& d);

// The banner, then one row per case: step time, its breakdown, tokens/s/GPU, TFLOP/s/GPU, MFU,
// and why (the diagnosis's main cause); then the recommendation line.
std::string format_step_table(const step_doc& d);

}  // namespace ob
