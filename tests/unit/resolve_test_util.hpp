#pragma once
// What the resolver's unit tests share: the base config most of them edit, resolving it as
// "in.json", and finding a diagnostic by code.
#include <algorithm>
#include <vector>

#include "bridge/resolve.hpp"

namespace ob::test {

// TP4 + SP on 8 H100s, TP overlap requested, nothing else.
inline json resolve_base() {
  return json::parse(R"({
    "model": {"tensor_model_parallel_size": 4, "sequence_parallel": true},
    "comm_overlap": {"tp_comm_overlap": true},
    "platform": {"gpu": "h100", "num_gpus": 8}
  })");
}

inline bridge_resolution resolve_json(const json& in) { return resolve_bridge(in, "in.json"); }

// The first diagnostic with `code`; nullptr when there is none.
inline const diagnostic* find_diag(const std::vector<diagnostic>& list, diag_code code) {
  const auto it =
      std::find_if(list.begin(), list.end(), [&](const diagnostic& d) { return d.code == code; });
  return it == list.end() ? nullptr : &*it;
}

}  // namespace ob::test
