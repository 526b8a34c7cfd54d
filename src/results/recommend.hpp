#pragma once
// Which configuration to use (docs/ARCHITECTURE.md §7.2): the case with the lowest end-to-end
// time (a layer's overlapped median, a training step's step median), what it gains over the
// sweep's default case and over no overlap, and the setting that mattered most. A result or step
// document records it at the top level; the table prints it as one line; `report` leads with it.
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/json_util.hpp"

namespace ob {

struct result_doc;
struct step_doc;

// What a sweep is ranked by. Time (the lowest wins) compares like with like only while every
// case does the same work on the same GPUs; a step sweep over gbs, seq or gpus is ranked by
// throughput (tokens/s per GPU, the highest wins): a smaller batch or a larger job finishes its
// step sooner without being faster (docs/ARCHITECTURE.md §7.2).
enum class rank_measure { time, throughput };

// What the recommendation reads of a sweep, whichever document holds it: per case its id, its
// swept params, its time, its throughput (steps only) and whether its data are valid (no wrong
// data, measured); what it is ranked by; whether the numbers are simulated; and which params
// are sweep axes (the knob and the short case names use only those). The pointers point into
// the document.
struct ranked_sweep {
  struct entry {
    const std::string* id;
    const ordered_json* params;
    double ms;
    bool valid;
    double tokens_per_s_per_gpu = 0;
  };
  std::vector<entry> cases;
  bool simulated = false;
  bool (*is_axis)(std::string_view) = nullptr;  // nullptr: every param is one
  rank_measure measure = rank_measure::time;
  // Steps only: what the recommendation line says it ranked by and why ("step time", or
  // "tokens/s/GPU (gbs differs between cases)"); empty for layer and pair sweeps, whose line
  // needs no such note (they always rank by overlapped time).
  std::string ranked_by;
};
ranked_sweep ranked(const result_doc& d);  // overlapped medians; the layer/pair sweep axes
// Step medians, or tokens/s per GPU when the cases' gpus, gbs or seq differ; every param (all of
// them are swept).
ranked_sweep ranked(const step_doc& d);

// How much one param moves the best figure: for each of its values, the best case having it;
// the spread is how far the worst value's best lies from the best value's best.
struct knob_impact {
  std::string axis;
  ordered_json best, worst;  // the values
  double spread = 0;         // in the ranked measure's unit: ms, or tokens/s per GPU
  double spread_pct = 0;     // of the best figure
};

struct recommendation {
  rank_measure measure = rank_measure::time;
  std::string best_case;  // lowest time (highest throughput) among cases with valid data
  double best_ms = 0;     // its time, whatever ranked it
  // The default case is the sweep's first (every axis at its first listed value): list the
  // configuration you run today first.
  std::string default_case;
  double default_ms = 0;
  // Throughput ranking only: the two cases' tokens/s per GPU.
  std::optional<double> best_tokens_per_s_per_gpu, default_tokens_per_s_per_gpu;
  // Time: (default − best) / default × 100; throughput: (best − default) / default × 100.
  double gain_vs_default_pct = 0;
  std::optional<std::string> none_case;  // the best case of method `none`, when swept
  std::optional<double> none_ms, gain_vs_none_pct;
  // The sweep axis with the largest spread; none when no axis moves the best time by 0.1 %.
  std::optional<knob_impact> knob;
};

// Every param that takes two or more values, largest spread first (sweep order on ties).
std::vector<knob_impact> param_impacts(const ranked_sweep& s);
std::vector<knob_impact> param_impacts(const result_doc& d);

// nullopt when no case has valid data.
std::optional<recommendation> recommend(const ranked_sweep& s);
std::optional<recommendation> recommend(const result_doc& d);
std::optional<recommendation> recommend(const step_doc& d);

// One line for under the table: "recommendation (SIMULATED): keep the default case, sm_margin=0
// order=comm_first method=preset cdmc=1 — 8.627 ms, 0.3 % faster than no overlap; mattered
// most: sm_margin (0 best, 32 worst: +1.384 ms)", or "from the default case, set comm_ctas=24
// sm_margin=preset — 8.411 ms, 2.4 % faster than the default and 2.8 % faster than no overlap;
// ...": what to change, and what it gains.
std::string recommendation_line(const recommendation& r, const ranked_sweep& s);
std::string recommendation_line(const recommendation& r, const result_doc& d);
std::string recommendation_line(const recommendation& r, const step_doc& d);

// The swept params of `id` that vary across the sweep, widest impact first, as "k=v k=v" (the
// case's short name).
std::string short_case_name(const ranked_sweep& s, const std::string& id);
std::string short_case_name(const result_doc& d, const std::string& id);
std::string short_case_name(const step_doc& d, const std::string& id);

// short_case_name for many cases of one document: the params' impacts and an index by id are
// built once. Naming every row with short_case_name alone recomputes both per row, quadratic in
// the cases (a 10,000-case report took 23 s). The document must outlive the namer.
class case_namer {
 public:
  explicit case_namer(const result_doc& d);
  explicit case_namer(const step_doc& d);
  std::string operator()(const std::string& id) const;

 private:
  explicit case_namer(ranked_sweep s);
  ranked_sweep s_;
  std::vector<knob_impact> impacts_;
  std::unordered_map<std::string_view, const ranked_sweep::entry*> by_id_;
};

// A result document's recommendation: its times are `best_overlapped_ms` ..., with the `none`
// fields. A step document's names them `best_step_ms`, `default_step_ms`, has no `none` fields
// (a step sweeps no `method`) and says what ranked it: `ranked_by` is `step_ms` or
// `tokens_per_s_per_gpu`, the latter with `best_tokens_per_s_per_gpu`,
// `default_tokens_per_s_per_gpu` and the knob's spread as `spread_tokens_per_s_per_gpu` (else
// `spread_ms`). A document without `ranked_by` was ranked by step time.
ordered_json to_json(const recommendation& r);
recommendation recommendation_from_json(const json_object& obj);
ordered_json step_recommendation_json(const recommendation& r);
recommendation step_recommendation_from_json(const json_object& obj);

}  // namespace ob
