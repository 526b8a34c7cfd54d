#include "base/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "base/error.hpp"

namespace ob {

double percentile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  const double v = sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
  // Rounding could push v an ulp past its neighbours and break min <= p10 <= ... <= max, which
  // the reader checks; clamping keeps the order exact.
  return std::clamp(v, sorted[lo], sorted[hi]);
}

stats compute_stats(std::vector<double> samples) {
  stats s;
  if (samples.empty()) return s;
  for (double x : samples)
    if (!std::isfinite(x)) throw runtime_failure("non-finite time sample; the timer is broken");
  std::sort(samples.begin(), samples.end());
  s.n = static_cast<int>(samples.size());
  s.min = samples.front();
  s.max = samples.back();
  s.median = percentile_sorted(samples, 50);
  s.p10 = percentile_sorted(samples, 10);
  s.p90 = percentile_sorted(samples, 90);
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / s.n;
  if (s.n > 1) {
    double ss = 0;
    for (double x : samples) ss += (x - s.mean) * (x - s.mean);
    s.stdev = std::sqrt(ss / (s.n - 1));
  }
  s.cv = s.mean != 0 ? s.stdev / s.mean : 0;
  return s;
}

ordered_json to_json(const stats& s) {
  ordered_json j;
  j["median"] = s.median;
  j["p10"] = s.p10;
  j["p90"] = s.p90;
  j["min"] = s.min;
  j["max"] = s.max;
  j["mean"] = s.mean;
  j["stdev"] = s.stdev;
  j["cv"] = s.cv;
  j["n"] = s.n;
  return j;
}

stats stats_from_json(const json_object& obj) {
  stats s;
  s.median = obj.get_number("median");
  s.p10 = obj.get_number("p10");
  s.p90 = obj.get_number("p90");
  s.min = obj.get_number("min");
  s.max = obj.get_number("max");
  s.mean = obj.get_number("mean");
  s.stdev = obj.get_number("stdev");
  s.cv = obj.get_number("cv");
  const std::int64_t n = obj.get_int("n");
  obj.finish();
  if (n < 0 || n > std::numeric_limits<int>::max())
    obj.fail("n", "expected a sample count >= 0, got " + std::to_string(n));
  s.n = static_cast<int>(n);
  if (s.stdev < 0) obj.fail("stdev", "expected a number >= 0, got " + describe_json(s.stdev));
  // A hand-edited or truncated file shows up as percentiles out of order.
  if (!(s.min <= s.p10 && s.p10 <= s.median && s.median <= s.p90 && s.p90 <= s.max))
    obj.fail("median", "expected min <= p10 <= median <= p90 <= max");
  return s;
}

}  // namespace ob
