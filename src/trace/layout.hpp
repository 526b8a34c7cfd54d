#pragma once
// Which parallel dimension a process group is (docs/ANALYZE.md §4): from the group's global ranks
// and the job's layout, in Megatron's rank order (TP fastest, then CP, then DP, then PP; expert
// parallelism splits DP, its ranks the fastest part of DP).
#include <string>
#include <vector>

namespace ob::trace {

struct parallel_layout {
  int tp = 1, cp = 1, pp = 1, ep = 1;
  int dp = 0;  // 0: the world size over tp·cp·pp
};

// "tp=4,pp=2,cp=1,ep=1[,dp=2]": config_error (exit 2) naming --layout and the bad part.
parallel_layout parse_layout(const std::string& text);

// The layout with dp filled in for `world` ranks; config_error when tp·cp·pp does not divide
// `world`, when ep does not divide dp, or when a given dp disagrees.
parallel_layout resolve_layout(parallel_layout l, int world);

// "tp", "cp", "dp", "pp", "ep"; several joined by '+' in that order ("cp+dp") when a group spans
// more than one dimension; "unknown" for a single rank or a rank outside the layout.
std::string dimension_of(const std::vector<int>& group, const parallel_layout& resolved);

}  // namespace ob::trace
