#include "analysis/metrics.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "model/collective_traits.hpp"

namespace ob {

namespace {

const variant_measurement& at(const variant_measurements& m, variant v) {
  return m[static_cast<int>(v)];
}
const schedule& at(const variant_schedules& s, variant v) { return s[static_cast<int>(v)]; }

bool is_gemm(const op& o) { return o.kind() == op_kind::gemm; }
bool is_comm(const op& o) { return o.is_comm(); }
bool is_compute(const op& o) { return !o.is_comm(); }

const op& op_of(const schedule& s, int id) {
  if (id < 0 || static_cast<std::size_t>(id) >= s.ops.size())
    throw runtime_failure("schedule '" + s.name + "': executor reported an interval for op " +
                          std::to_string(id) + ", which the schedule does not have");
  return s.ops[id];
}

std::vector<interval> intervals_of(const schedule& s, const std::vector<op_interval>& ops,
                                   bool (*pred)(const op&)) {
  std::vector<interval> out;
  for (const op_interval& i : ops)
    if (pred(op_of(s, i.op_id))) out.push_back({i.start_us, i.end_us});
  return out;
}

// Ratio of Σ durations of matching ops in `slow` over `base`; nullopt when either side has no
// matching intervals (not instrumented, or the case has no such op).
std::optional<double> duration_ratio(const schedule& slow_s, const variant_measurement& slow_m,
                                     const schedule& base_s, const variant_measurement& base_m,
                                     bool (*pred)(const op&)) {
  if (slow_m.ops.empty() || base_m.ops.empty()) return std::nullopt;
  const double base = sum_durations_us(base_s, base_m.ops, pred);
  const double slow = sum_durations_us(slow_s, slow_m.ops, pred);
  if (!(base > 0) || !(slow > 0)) return std::nullopt;
  return slow / base;
}

// Sorted, merged copy of `v` (empty and inverted intervals dropped).
std::vector<interval> merged(std::vector<interval> v) {
  std::erase_if(v, [](const interval& i) { return !(i.end > i.start); });
  std::sort(v.begin(), v.end(),
            [](const interval& a, const interval& b) { return a.start < b.start; });
  std::vector<interval> out;
  for (const interval& i : v) {
    if (!out.empty() && i.start <= out.back().end)
      out.back().end = std::max(out.back().end, i.end);
    else
      out.push_back(i);
  }
  return out;
}

}  // namespace

double bus_bytes(const schedule& s) {
  double total = 0;
  for (const op& o : s.ops) {
    if (o.kind() == op_kind::collective) {
      const auto& c = o.as<collective_params>();
      total += static_cast<double>(c.bytes) * traits_of(c.op).bus_factor(c.group_size);
    } else if (o.kind() == op_kind::p2p) {
      total += static_cast<double>(o.as<p2p_params>().bytes) * p2p_bus_factor;
    }
  }
  return total;
}

double union_length(std::vector<interval> intervals) {
  double total = 0;
  for (const interval& i : merged(std::move(intervals))) total += i.end - i.start;
  return total;
}

double intersection_length(std::vector<interval> a, std::vector<interval> b) {
  const auto ma = merged(std::move(a));
  const auto mb = merged(std::move(b));
  double total = 0;
  std::size_t i = 0, j = 0;
  while (i < ma.size() && j < mb.size()) {
    const double lo = std::max(ma[i].start, mb[j].start);
    const double hi = std::min(ma[i].end, mb[j].end);
    if (hi > lo) total += hi - lo;
    if (ma[i].end < mb[j].end)
      ++i;
    else
      ++j;
  }
  return total;
}

double sum_durations_us(const schedule& s, const std::vector<op_interval>& ops,
                        bool (*pred)(const op&)) {
  double total = 0;
  for (const op_interval& i : ops)
    if (pred(op_of(s, i.op_id))) total += std::max(0.0, i.end_us - i.start_us);
  return total;
}

case_metrics compute_metrics(const variant_schedules& schedules,
                             const variant_measurements& measurements) {
  case_metrics m;
  m.compute_ms = compute_stats(at(measurements, variant::compute_only).iter_ms);
  m.compute_with_margin_ms = compute_stats(at(measurements, variant::compute_with_margin).iter_ms);
  m.comm_ms = compute_stats(at(measurements, variant::comm_only).iter_ms);
  m.serial_ms = compute_stats(at(measurements, variant::serial).iter_ms);
  m.overlapped_ms = compute_stats(at(measurements, variant::overlapped).iter_ms);

  const double compute = m.compute_ms.median;
  const double comm = m.comm_ms.median;
  const double overlapped = m.overlapped_ms.median;
  m.exposed_comm_ms = overlapped - compute;
  if (comm > 0) m.overlap_efficiency = 1.0 - m.exposed_comm_ms / comm;
  if (overlapped > 0) m.speedup_vs_serial = m.serial_ms.median / overlapped;
  m.ideal_ms = std::max(compute, comm);
  m.headroom_ms = overlapped - m.ideal_ms;

  const schedule& s_compute = at(schedules, variant::compute_only);
  const schedule& s_comm = at(schedules, variant::comm_only);
  const schedule& s_over = at(schedules, variant::overlapped);
  const variant_measurement& m_compute = at(measurements, variant::compute_only);
  const variant_measurement& m_comm = at(measurements, variant::comm_only);
  const variant_measurement& m_over = at(measurements, variant::overlapped);

  m.gemm_slowdown = duration_ratio(s_over, m_over, s_compute, m_compute, is_gemm);
  m.comm_slowdown = duration_ratio(s_over, m_over, s_comm, m_comm, is_comm);

  if (!m_over.ops.empty()) {
    const auto comm_iv = intervals_of(s_over, m_over.ops, is_comm);
    const double comm_len = union_length(comm_iv);
    if (comm_len > 0)
      m.timeline_overlap_pct =
          100.0 * intersection_length(comm_iv, intervals_of(s_over, m_over.ops, is_compute)) /
          comm_len;
  }

  // From the planned schedule: compute_only keeps every GEMM, comm_only every comm op, so the
  // work is the same whichever variant is asked.
  const double flops = s_over.gemm_flops();
  // GEMM rate over the GEMMs' own time where per-op intervals exist (a producer kernel,
  // LayerNorm or attention core must not dilute it); over the whole compute-only time otherwise.
  double gemm_ms = compute;
  if (!m_compute.ops.empty()) {
    const double us = union_length(intervals_of(s_compute, m_compute.ops, is_gemm));
    if (us > 0) gemm_ms = us * 1e-3;
  }
  if (flops > 0 && gemm_ms > 0) {
    m.gemm_tflops = flops / (gemm_ms * 1e-3) / 1e12;
    if (m.gemm_slowdown) m.gemm_tflops_overlapped = *m.gemm_tflops / *m.gemm_slowdown;
  }
  const bool has_comm = std::any_of(s_over.ops.begin(), s_over.ops.end(), is_comm);
  if (has_comm && comm > 0) {
    m.comm_busbw_gbps = bus_bytes(s_over) / (comm * 1e-3) / 1e9;
    if (m.comm_slowdown) m.comm_busbw_gbps_overlapped = *m.comm_busbw_gbps / *m.comm_slowdown;
  }

  for (const variant_measurement& vm : measurements) m.wrong += vm.wrong;
  return m;
}

coll_row make_coll_row(const collective_params& p, const stats& time_ms, std::int64_t wrong) {
  coll_row r;
  r.size = p.bytes;
  r.count = p.bytes / dtype_bytes(p.type);
  r.type = std::string(to_string(p.type));
  r.redop = std::string(traits_of(p.op).redop);
  r.op = std::string(to_string(p.op));
  r.ranks = p.group_size;
  r.time_ms = time_ms;
  r.time_us = time_ms.median * 1e3;
  if (r.time_us > 0) r.algbw_gbps = static_cast<double>(p.bytes) / (r.time_us * 1e-6) / 1e9;
  r.busbw_gbps = r.algbw_gbps * traits_of(p.op).bus_factor(p.group_size);
  r.wrong = wrong;
  return r;
}

ordered_json to_json(const coll_row& r) {
  ordered_json j;
  j["op"] = r.op;
  j["ranks"] = r.ranks;
  j["size"] = r.size;
  j["count"] = r.count;
  j["type"] = r.type;
  j["redop"] = r.redop;
  j["time_us"] = r.time_us;
  j["algbw_gbps"] = r.algbw_gbps;
  j["busbw_gbps"] = r.busbw_gbps;
  j["wrong"] = r.wrong;
  j["time_ms"] = to_json(r.time_ms);
  return j;
}

coll_row coll_row_from_json(const json_object& obj) {
  coll_row r;
  r.op = obj.get_enum("op", collective_names());
  r.ranks = static_cast<int>(obj.get_positive_int("ranks"));
  const auto non_negative = [&obj](const std::string& key) {
    const std::int64_t v = obj.get_int(key);
    if (v < 0) obj.fail(key, "expected an integer >= 0, got " + std::to_string(v));
    return v;
  };
  r.size = static_cast<std::uint64_t>(non_negative("size"));
  r.count = static_cast<std::uint64_t>(non_negative("count"));
  r.type = obj.get_enum("type", {"bf16", "fp16", "fp8"});
  r.redop = obj.get_enum("redop", {"sum", "none"});
  r.time_us = obj.get_number("time_us");
  r.algbw_gbps = obj.get_number("algbw_gbps");
  r.busbw_gbps = obj.get_number("busbw_gbps");
  r.wrong = non_negative("wrong");
  r.time_ms = stats_from_json(obj.get_object("time_ms"));
  obj.finish();
  return r;
}

}  // namespace ob
