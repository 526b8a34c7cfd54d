#pragma once
// Summary statistics of per-iteration times (docs/ARCHITECTURE.md §6): median, p10, p90, min, max,
// mean, stdev, cv, n. Metrics and compare use the median and the p10..p90 spread, which resist the
// outliers (a preempted iteration, a clock dip) that move the mean.
#include <string>
#include <vector>

#include "base/json_util.hpp"

namespace ob {

struct stats {
  double median = 0, p10 = 0, p90 = 0, min = 0, max = 0, mean = 0;
  double stdev = 0;  // sample standard deviation (n − 1); 0 when n < 2
  double cv = 0;     // stdev / mean; 0 when mean is 0
  int n = 0;         // samples; 0 means "not measured" and every other field is 0
};

// Percentiles interpolate linearly between order statistics (numpy's default): the p-th
// percentile sits at rank p/100 · (n − 1). An empty vector gives n = 0 and all zeros.
stats compute_stats(std::vector<double> samples);

// Linear-interpolated percentile of already sorted samples; p in [0, 100].
double percentile_sorted(const std::vector<double>& sorted, double p);

// {"median", "p10", "p90", "min", "max", "mean", "stdev", "cv", "n"} in that order.
ordered_json to_json(const stats& s);

// Strict reader: every field required, no unknown keys, n >= 0, stdev >= 0, and
// min <= p10 <= median <= p90 <= max. Errors name the file and JSON path (config_error, exit 2).
stats stats_from_json(const json_object& obj);

}  // namespace ob
