#pragma once
// A compact copy of one case's overlapped timeline, kept in the result for the best and the
// worst case so a report can draw them without re-running anything (docs/ARCHITECTURE.md §7).
#include <optional>
#include <string>
#include <vector>

#include "base/json_util.hpp"
#include "model/executor.hpp"

namespace ob {

struct timeline_op {
  std::string name;
  int stream = 0;
  std::string kind;  // gemm, collective, p2p, elementwise, delay
  double start_us = 0, end_us = 0;
  bool critical = false;  // it ran on the critical path (docs/ARCHITECTURE.md §7.1)
};

struct case_timeline {
  std::vector<std::string> streams;  // names, by stream id
  std::vector<timeline_op> ops;      // in enqueue order
};

// From the overlapped variant as measured; nullopt without intervals.
std::optional<case_timeline> make_timeline(const schedule& s, const std::vector<op_interval>& ops,
                                           int cdmc);

ordered_json to_json(const case_timeline& t);
case_timeline timeline_from_json(const json_object& obj);

}  // namespace ob
