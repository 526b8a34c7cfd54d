#pragma once
// Interval union arithmetic, the core of exposure (docs/ANALYZE.md §3): a set of busy intervals
// is merged into disjoint sorted ones, and exposed communication is the length of the
// communication union minus the part the compute union covers.
#include <cstdint>
#include <utility>
#include <vector>

namespace ob::trace {

using interval = std::pair<std::int64_t, std::int64_t>;  // [start, end) in ns

// Sorted, disjoint, non-empty intervals covering exactly what `v` covers.
std::vector<interval> merge_intervals(std::vector<interval> v);
// Total length of merged intervals.
std::int64_t covered_length(const std::vector<interval>& merged);
// Length of `a` not covered by `b`; both merged.
std::int64_t uncovered_length(const std::vector<interval>& a, const std::vector<interval>& b);
// The parts of `a` not covered by `b`, as sorted disjoint intervals; both merged.
std::vector<interval> uncovered_intervals(const std::vector<interval>& a,
                                          const std::vector<interval>& b);

}  // namespace ob::trace
