#include "report/bringup.hpp"

#include <cmath>
#include <cstdio>
#include <map>

#include "base/error.hpp"
#include "base/units.hpp"
#include "report/compare.hpp"

namespace ob {
namespace {

std::string signed_pct(const std::optional<double>& v) {
  if (!v) return "-";
  return std::string(*v >= 0 ? "+" : "") + format_fixed(*v, 1) + "%";
}

std::optional<double> delta_pct(double base, double now) {
  if (!(base > 0)) return std::nullopt;
  return (now - base) / base * 100;
}

// Which variant moved says where to look: the GEMMs alone (clocks, power, cuBLAS), the
// collectives alone (links, NCCL), or only their overlap (scheduling).
std::string hint_for(const expect_row& r, double bar) {
  if (r.verdict == "WRONG") return "wrong data: a broken NCCL build or a failing GPU (see #wrong)";
  const double comp = r.compute_delta_pct.value_or(0), comm = r.comm_delta_pct.value_or(0);
  if (std::abs(comm) > bar && std::abs(comm) >= std::abs(comp))
    return "comm alone " + signed_pct(comm) +
           (comm > 0 ? ": a slow or degraded link (NVLink, NCCL_* settings) or another NCCL build"
                     : ": faster links or another NCCL build than the baseline's");
  if (std::abs(comp) > bar)
    return "compute alone " + signed_pct(comp) +
           (comp > 0 ? ": a throttled or slower GPU (clocks, power cap) or another cuBLAS"
                     : ": a faster GPU (clocks) or another cuBLAS than the baseline's");
  return "only the overlap moved: scheduling (CDMC, stream priorities, launch ordering, CTAs)";
}

}  // namespace

prediction predict_case(executor& sim, const variant_schedules& v, const measure_options& o,
                        const case_metrics& measured) {
  measure_options one = o;
  one.warmup = 0;
  one.iters = 1;
  one.verify = false;
  const case_metrics m = compute_metrics(v, sim.measure(v, one));
  prediction p;
  p.overlapped_ms = m.overlapped_ms.median;
  p.exposed_comm_ms = m.exposed_comm_ms;
  p.compute_ms = m.compute_ms.median;
  p.comm_ms = m.comm_ms.median;
  if (p.overlapped_ms > 0)
    p.deviation_pct = (measured.overlapped_ms.median - p.overlapped_ms) / p.overlapped_ms * 100;
  return p;
}

ordered_json to_json(const prediction& p) {
  return {{"overlapped_ms", p.overlapped_ms},
          {"exposed_comm_ms", p.exposed_comm_ms},
          {"compute_ms", p.compute_ms},
          {"comm_ms", p.comm_ms}};
}

prediction prediction_from_json(const json_object& obj, double deviation_pct) {
  prediction p;
  p.overlapped_ms = obj.get_number("overlapped_ms");
  p.exposed_comm_ms = obj.get_number("exposed_comm_ms");
  p.compute_ms = obj.get_number("compute_ms");
  p.comm_ms = obj.get_number("comm_ms");
  p.deviation_pct = deviation_pct;
  obj.finish();
  return p;
}

expect_outcome expectation_of(const compare_outcome& c, double tolerance_pct,
                              const std::string& baseline_path,
                              const std::function<void(expect_row&, const compare_row&)>& explain) {
  expect_outcome o;
  o.tolerance_pct = tolerance_pct;
  o.warnings = c.warnings;
  for (const compare_row& row : c.rows) {
    if (!row.in_new) ++o.not_run;
    if (!row.in_base) ++o.not_in_baseline;
    if (row.in_base && row.in_new) ++o.matched;
    if (row.verdict != "SLOWER" && row.verdict != "FASTER" && row.verdict != "WRONG") continue;
    if (!row.in_base) continue;  // a new case with wrong data fails the run on its own (exit 3)
    expect_row e{row.id, row.verdict, row.base_ms, row.new_ms, row.delta_pct, {}, {}, {}};
    explain(e, row);
    o.outside.push_back(std::move(e));
  }
  if (o.matched == 0)
    throw config_error("--expect " + baseline_path +
                       ": no case of this run is in the baseline (case ids differ: another "
                       "scenario or sweep?)");
  return o;
}

expect_outcome check_expectation(const result_doc& baseline, const result_doc& run,
                                 double tolerance_pct, const std::string& baseline_path) {
  std::map<std::string, const case_record*> base_by_id, run_by_id;
  for (const case_record& r : baseline.cases) base_by_id[r.id] = &r;
  for (const case_record& r : run.cases) run_by_id[r.id] = &r;
  return expectation_of(
      compare_results(baseline, run, tolerance_pct), tolerance_pct, baseline_path,
      [&](expect_row& e, const compare_row& row) {
        const case_record &b = *base_by_id[row.base_id], &n = *run_by_id[row.new_id];
        e.compute_delta_pct = delta_pct(b.m.compute_ms.median, n.m.compute_ms.median);
        e.comm_delta_pct = delta_pct(b.m.comm_ms.median, n.m.comm_ms.median);
        e.hint = hint_for(e, row.bar_pct);
      });
}

std::string format_expectation(const expect_outcome& o, const std::string& baseline_path) {
  std::string out;
  for (const std::string& w : o.warnings) out += "expect: warning: " + w + "\n";
  const std::string band = "±" + format_fixed(o.tolerance_pct, 1) + " %";
  for (const expect_row& r : o.outside)
    out += "expect: " + r.verdict + " " + r.id + ": " + format_fixed(r.run_ms, 3) + " ms against " +
           format_fixed(r.base_ms, 3) + " (" + signed_pct(r.delta_pct) + "); " + r.hint + "\n";
  std::string tail;
  if (o.not_in_baseline) tail += "; " + std::to_string(o.not_in_baseline) + " not in the baseline";
  if (o.not_run) tail += "; " + std::to_string(o.not_run) + " of the baseline not run";
  if (o.passed())
    out += "expect: PASS: " + std::to_string(o.matched) + " cases within " + band + " of " +
           baseline_path + tail + "\n";
  else
    out += "expect: FAIL: " + std::to_string(o.outside.size()) + " of " +
           std::to_string(o.matched) + " cases outside " + band + " of " + baseline_path + tail +
           "\n";
  return out;
}

}  // namespace ob
