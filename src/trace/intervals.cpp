#include "trace/intervals.hpp"

#include <algorithm>

namespace ob::trace {

std::vector<interval> merge_intervals(std::vector<interval> v) {
  std::sort(v.begin(), v.end());
  std::vector<interval> out;
  for (const interval& iv : v) {
    if (iv.second <= iv.first) continue;
    if (!out.empty() && iv.first <= out.back().second)
      out.back().second = std::max(out.back().second, iv.second);
    else
      out.push_back(iv);
  }
  return out;
}

std::int64_t covered_length(const std::vector<interval>& merged) {
  std::int64_t sum = 0;
  for (const interval& iv : merged) sum += iv.second - iv.first;
  return sum;
}

// One sweep over both sorted lists: for each interval of `a`, subtract the parts of `b` that
// intersect it. `j` never moves back, since both lists are sorted and disjoint.
std::int64_t uncovered_length(const std::vector<interval>& a, const std::vector<interval>& b) {
  std::int64_t exposed = 0;
  std::size_t j = 0;
  for (const interval& iv : a) {
    while (j < b.size() && b[j].second <= iv.first) ++j;
    std::int64_t covered = 0;
    for (std::size_t k = j; k < b.size() && b[k].first < iv.second; ++k)
      covered += std::min(iv.second, b[k].second) - std::max(iv.first, b[k].first);
    exposed += (iv.second - iv.first) - covered;
  }
  return exposed;
}

std::vector<interval> uncovered_intervals(const std::vector<interval>& a,
                                          const std::vector<interval>& b) {
  std::vector<interval> out;
  std::size_t j = 0;
  for (const interval& iv : a) {
    while (j < b.size() && b[j].second <= iv.first) ++j;
    std::int64_t at = iv.first;
    for (std::size_t k = j; k < b.size() && b[k].first < iv.second; ++k) {
      if (b[k].first > at) out.emplace_back(at, b[k].first);
      at = std::max(at, b[k].second);
    }
    if (at < iv.second) out.emplace_back(at, iv.second);
  }
  return out;
}

}  // namespace ob::trace
