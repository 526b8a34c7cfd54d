#pragma once
// Which configuration to use (docs/ARCHITECTURE.md §7.2): the case with the lowest overlapped
// (end-to-end) time, what it gains over the sweep's default case and over no overlap, and the
// setting that mattered most. A result records it at the top level; the table prints it as one
// line; `report` leads with it.
#include <optional>
#include <string>
#include <vector>

#include "core/json_util.hpp"

namespace ob {

struct result_doc;

// How much one param moves the best overlapped time: for each of its values, the best case
// having it; the spread is worst value's best − best value's best.
struct knob_impact {
  std::string axis;
  ordered_json best, worst;  // the values
  double spread_ms = 0;
  double spread_pct = 0;  // of the best overlapped time
};

struct recommendation {
  std::string best_case;  // lowest overlapped median among cases without wrong data
  double best_ms = 0;
  // The default case is the sweep's first (every axis at its first listed value): list the
  // configuration you run today first.
  std::string default_case;
  double default_ms = 0;
  double gain_vs_default_pct = 0;        // (default − best) / default × 100
  std::optional<std::string> none_case;  // the best case of method `none`, when swept
  std::optional<double> none_ms, gain_vs_none_pct;
  // The sweep axis with the largest spread; none when no axis moves the best time by 0.1 %.
  std::optional<knob_impact> knob;
};

// Every param that takes two or more values, largest spread first (sweep order on ties).
std::vector<knob_impact> param_impacts(const result_doc& d);

// nullopt when no case has valid data.
std::optional<recommendation> recommend(const result_doc& d);

// One line for under the table: "recommendation (SIMULATED): keep the default case, sm_margin=0
// order=comm_first method=preset cdmc=1 — 8.627 ms, 0.3 % faster than no overlap; mattered
// most: sm_margin (0 best, 32 worst: +1.384 ms)", or "from the default case, set comm_ctas=24
// sm_margin=preset — 8.411 ms, 2.4 % faster than the default and 2.8 % faster than no overlap;
// ...": what to change, and what it gains.
std::string recommendation_line(const recommendation& r, const result_doc& d);

// The swept params of `id` that vary across the document, widest impact first, as "k=v k=v"
// (the case's short name).
std::string short_case_name(const result_doc& d, const std::string& id);

ordered_json to_json(const recommendation& r);
recommendation recommendation_from_json(const json_object& obj);

}  // namespace ob
