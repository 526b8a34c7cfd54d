#pragma once
// The simulator's prediction for a measured case (docs/ARCHITECTURE.md §7.3); computed by
// predict_case (report/bringup.hpp).
#include "base/json_util.hpp"

namespace ob {

struct prediction {
  double overlapped_ms = 0, exposed_comm_ms = 0, compute_ms = 0, comm_ms = 0;
  double deviation_pct = 0;  // (measured overlapped − predicted) / predicted × 100
};

ordered_json to_json(const prediction& p);  // without deviation_pct (a case-level field)
prediction prediction_from_json(const json_object& obj, double deviation_pct);

}  // namespace ob
