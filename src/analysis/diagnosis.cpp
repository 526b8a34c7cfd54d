#include "analysis/diagnosis.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>

#include "analysis/critical_path.hpp"

namespace ob {
namespace {

constexpr double min_exposed_ms = 0.0005;
constexpr double min_exposed_fraction = 0.001;
constexpr double min_cause_fraction = 0.005;  // smaller causes are left out

const std::array<cause_info, 11> causes = {{
    {exposure_cause::queue_blocked, "queue blocked",
     "waited in its hardware queue behind an op that was not ready (CDMC maps streams to queues)",
     "CUDA_DEVICE_MAX_CONNECTIONS > 1 so comm and compute streams get their own queues, or "
     "enqueue the op whose inputs are ready first"},
    {exposure_cause::sm_starved, "sm starved", "ready, but waited for SMs a (persistent) GEMM held",
     "a larger GEMM SM margin, comm_first "
     "order, Transformer Engine's launch ordering (CDMC > 1) or CDMC = 1"},
    {exposure_cause::contention_slowdown, "contention",
     "ops on the critical path ran slower than alone: HBM/L2 interference, and the SMs the "
     "overlapped GEMMs gave up (their SM margin)",
     "a smaller SM margin, fewer comm CTAs (comm_ctas), or less overlap where it does not pay"},
    {exposure_cause::chunking_cost, "chunking",
     "a chunked GEMM waited between its chunks for the chunks' communication",
     "fewer, larger chunks (num_splits) or bulk overlap: each chunk's comm outlasts its GEMM"},
    {exposure_cause::tail_not_overlapped, "tail",
     "communication outlasted the compute beside it (the last chunk, or a longer bulk collective)",
     "more splits so the last chunk is small, or overlap the tail with the next op"},
    {exposure_cause::bubble, "bubble", "waited for another pipeline stage (pp send/recv)",
     "more micro-batches or an interleaved (virtual) pipeline schedule"},
    {exposure_cause::late_bucket, "late bucket",
     "a data-parallel gradient bucket was still reducing after the compute ended",
     "smaller or earlier buckets (overlap_grad_reduce, bucket_size)"},
    {exposure_cause::serialized_same_stream, "serialized",
     "communication on the compute stream: nothing runs beside it",
     "an overlap method (method=preset): the collective goes to its own stream"},
    {exposure_cause::launch_overhead, "launch",
     "waited for the host to enqueue it, or for an event from another queue",
     "CUDA graphs (--graphs), fewer and larger ops"},
    {exposure_cause::hottest_expert, "hottest expert",
     "the other expert-parallel ranks waited at the combine for the busiest rank's experts "
     "(routing imbalance)",
     "balance the routing (aux loss, expert bias), a capacity factor, or more experts per rank"},
    {exposure_cause::other, "other", "the timeline does not say (a late peer rank, a host stall)",
     "look at the timeline (--trace) of this case"},
}};

// A piece of the critical path's excess over compute-only, before hidden compute is taken off.
struct piece {
  exposure_cause cause = exposure_cause::other;
  double us = 0;
  std::string where;
  int rank = 0;             // hidden compute is taken off the lowest rank first
  double margin_us = 0;     // contention from the SM margin
  int comm_op = -1;         // a comm op's own run time: its cause is decided with its consumer
  std::string dimension{};  // training steps: cause_share::dimension
};

// A run of path segments that are not compute executing: the compute waited for them.
struct detour {
  double start_us = 0, end_us = 0;
  std::vector<piece> pieces;
  int consumer = -1;  // the compute op that ran next on the path
  double hidden_us = 0;
};

std::string where_of(const op& o) { return o.slot.empty() ? o.name : o.slot; }

// Durations (µs) of the variant's ops, by the overlapped op id they come from: a variant keeps
// the overlapped ops of its kind in order (derive_variant), so its k-th op is the k-th kept one.
std::vector<double> mapped_durations(const schedule& over, const timed_schedule& v, bool comm) {
  std::vector<double> out(over.ops.size(), -1);
  if (!v.present()) return out;
  std::vector<double> by_variant_id(v.s->ops.size(), -1);
  for (const op_interval& i : *v.intervals)
    if (i.op_id >= 0 && static_cast<std::size_t>(i.op_id) < by_variant_id.size())
      by_variant_id[i.op_id] = i.end_us - i.start_us;
  std::size_t k = 0;
  for (const op& o : over.ops) {
    if (o.is_comm() != comm) continue;
    if (k >= by_variant_id.size()) return std::vector<double>(over.ops.size(), -1);
    out[o.id] = by_variant_id[k++];
  }
  return out;
}

struct baselines {
  std::vector<double> comp, marg, alone;
};

class attribution {
 public:
  attribution(const diagnosis_input& in, std::vector<path_segment> path)
      : in_(in), s_(*in.overlapped.s), path_(std::move(path)) {
    b_.comp = mapped_durations(s_, in.compute_only, false);
    b_.marg = mapped_durations(s_, in.compute_with_margin, false);
    b_.alone = mapped_durations(s_, in.comm_only, true);
    for (const op_interval& i : *in.overlapped.intervals) iv_[i.op_id] = {i.start_us, i.end_us};
  }

  std::vector<piece> run() {
    build();
    classify_comm();
    take_off_hidden_compute();
    std::vector<piece> all = compute_pieces_;
    for (const detour& d : detours_) all.insert(all.end(), d.pieces.begin(), d.pieces.end());
    return all;
  }

 private:
  double base(const std::vector<double>& v, int id, double fallback) const {
    return v[id] >= 0 ? v[id] : fallback;
  }

  void build() {
    on_path_.assign(s_.ops.size(), false);
    bool open = false;
    for (const path_segment& g : path_) {
      const op& o = s_.ops[g.op];
      const double len = g.end_us - g.start_us;
      if (g.exec && !o.is_comm()) {
        const double comp = base(b_.comp, o.id, len), marg = base(b_.marg, o.id, comp);
        on_path_[o.id] = true;
        on_path_compute_us_ += comp;
        compute_pieces_.push_back(
            {exposure_cause::contention_slowdown, len - comp, where_of(o), 0, marg - comp});
        if (open) detours_.back().consumer = o.id;
        open = false;
        continue;
      }
      if (!open) detours_.push_back({g.start_us, g.end_us, {}, -1, 0});
      open = true;
      detour& d = detours_.back();
      d.end_us = g.end_us;
      if (g.exec) {
        const double own = std::min(base(b_.alone, o.id, len), len);
        d.pieces.push_back({exposure_cause::tail_not_overlapped, own, where_of(o), 0, 0, o.id});
        d.pieces.push_back({exposure_cause::contention_slowdown, len - own, where_of(o), 1});
      } else {
        d.pieces.push_back({exposure_cause::launch_overhead, g.launch_us, where_of(o), 2});
        d.pieces.push_back({exposure_cause::queue_blocked, g.queue_us, where_of(o), 3});
        d.pieces.push_back({exposure_cause::sm_starved, g.sm_us, where_of(o), 4});
        d.pieces.push_back({exposure_cause::other, g.unexplained_us, where_of(o), 5});
      }
    }
  }

  // A comm op's own time left on the path: which cause depends on where it ran and who waited.
  exposure_cause comm_cause(const op& o, int consumer) const {
    const bool shares_compute_stream = std::any_of(s_.ops.begin(), s_.ops.end(), [&](const op& a) {
      return a.stream == o.stream && !a.is_comm();
    });
    if (shares_compute_stream) return exposure_cause::serialized_same_stream;
    const comm_group g = o.kind() == op_kind::collective ? o.as<collective_params>().group
                                                         : o.as<p2p_params>().group;
    if (g == comm_group::pp) return exposure_cause::bubble;
    if (g == comm_group::dp || g == comm_group::edp) return exposure_cause::late_bucket;
    if (consumer >= 0 && !o.slot.empty() && s_.ops[consumer].slot == o.slot)
      return exposure_cause::chunking_cost;
    return exposure_cause::tail_not_overlapped;
  }

  void classify_comm() {
    for (detour& d : detours_)
      for (piece& p : d.pieces)
        if (p.comm_op >= 0) p.cause = comm_cause(s_.ops[p.comm_op], d.consumer);
  }

  // Compute-only time the path does not run as compute: in the overlapped timeline it ran beside
  // the detours (hidden under their communication), so it is taken off them.
  double hidden_total_us() const {
    if (in_.compute_only.present()) {
      double t = 0;
      for (const op_interval& i : *in_.compute_only.intervals) t = std::max(t, i.end_us);
      return std::max(0.0, t - on_path_compute_us_);
    }
    double t = 0;
    for (const op& o : s_.ops)
      if (!o.is_comm() && !on_path_[o.id]) t += iv_.at(o.id).second - iv_.at(o.id).first;
    return t;
  }

  void take_off_hidden_compute() {
    const double total = hidden_total_us();
    double weights = 0;
    for (const op& o : s_.ops) {
      if (o.is_comm() || on_path_[o.id]) continue;
      const auto [s, e] = iv_.at(o.id);
      if (!(e > s)) continue;
      const double dc = base(b_.comp, o.id, e - s);
      for (detour& d : detours_) {
        const double ov = std::min(e, d.end_us) - std::max(s, d.start_us);
        if (ov > 0) d.hidden_us += dc * ov / (e - s);
      }
    }
    for (const detour& d : detours_) weights += d.hidden_us;
    const double scale = weights > 0 ? std::min(1.0, total / weights) : 0;
    double left = total - weights * scale;
    double lengths = 0;
    for (detour& d : detours_) {
      d.hidden_us *= scale;
      lengths += d.end_us - d.start_us;
    }
    // Compute-only's own gaps (host launches) have no op to point at: spread them by length.
    for (detour& d : detours_)
      if (lengths > 0) d.hidden_us += left * (d.end_us - d.start_us) / lengths;
    if (lengths > 0) left = 0;
    for (detour& d : detours_) left += take_off(d.pieces, d.hidden_us);
    take_off(compute_pieces_, left);
  }

  // Takes `us` off the pieces, lowest rank first, none below zero; returns what did not fit.
  static double take_off(std::vector<piece>& pieces, double us) {
    std::stable_sort(pieces.begin(), pieces.end(),
                     [](const piece& a, const piece& b) { return a.rank < b.rank; });
    for (piece& p : pieces) {
      if (us <= 0) break;
      if (p.us <= 0) continue;
      const double t = std::min(p.us, us);
      if (p.margin_us > 0) p.margin_us = std::max(0.0, p.margin_us - t);
      p.us -= t;
      us -= t;
    }
    return std::max(0.0, us);
  }

  const diagnosis_input& in_;
  const schedule& s_;
  std::vector<path_segment> path_;
  baselines b_;
  std::map<int, std::pair<double, double>> iv_;
  std::vector<bool> on_path_;
  double on_path_compute_us_ = 0;
  std::vector<piece> compute_pieces_;
  std::vector<detour> detours_;
};

struct cause_total {
  double us = 0, margin_us = 0;
  std::map<std::string, double> by_where;
};

// The step breakdown's part a cause belongs to: its dimension's exposed time, the bubble, or
// other (docs/ARCHITECTURE.md §9.4).
std::string part_of(const cause_share& c) {
  if (c.cause == exposure_cause::bubble) return "bubble";
  return c.dimension.empty() ? "other" : c.dimension;
}

// A step's causes, the largest breakdown part first and within it the largest cause first, so
// the main cause lies where the breakdown says most time went. Layer causes have no dimension
// and keep their order (largest first).
void order_by_part(std::vector<cause_share>& causes) {
  const bool step = std::any_of(causes.begin(), causes.end(),
                                [](const cause_share& c) { return !c.dimension.empty(); });
  if (!step) return;
  std::map<std::string, double> part_ms;
  for (const cause_share& c : causes) part_ms[part_of(c)] += c.ms;
  std::stable_sort(causes.begin(), causes.end(), [&](const cause_share& a, const cause_share& b) {
    return part_ms[part_of(a)] > part_ms[part_of(b)];
  });
}

// Sums the pieces per cause (and dimension), drops what is not positive, and scales the rest to
// the exposed time: for the simulator they already add up to it; measured intervals come from
// one iteration while exposed_ms is a median.
diagnosis summarize(const std::vector<piece>& pieces, double exposed_ms) {
  std::map<std::pair<exposure_cause, std::string>, cause_total> totals;
  for (const piece& p : pieces) {
    cause_total& t = totals[{p.cause, p.dimension}];
    t.us += p.us;
    t.margin_us += p.margin_us;
    t.by_where[p.where] += p.us;
  }
  double sum = 0, kept = 0;
  for (const auto& [c, t] : totals) sum += t.us;
  for (const auto& [c, t] : totals)
    if (t.us > min_cause_fraction * sum) kept += t.us;
  diagnosis d;
  d.attributed_ms = sum / 1000;
  if (!(kept > 0)) {
    d.causes.push_back({exposure_cause::other, exposed_ms, "", std::nullopt, ""});
    return d;
  }
  const double k = exposed_ms / kept;
  for (const auto& [key, t] : totals) {
    if (!(t.us > min_cause_fraction * sum)) continue;
    const exposure_cause c = key.first;
    cause_share s{c, t.us * k, "", std::nullopt, key.second};
    s.where = std::max_element(t.by_where.begin(), t.by_where.end(), [](auto& a, auto& b) {
                return a.second < b.second;
              })->first;
    if (c == exposure_cause::contention_slowdown)
      s.sm_margin_ms = std::clamp(t.margin_us * k, 0.0, s.ms);
    d.causes.push_back(std::move(s));
  }
  std::stable_sort(d.causes.begin(), d.causes.end(),
                   [](const cause_share& a, const cause_share& b) { return a.ms > b.ms; });
  order_by_part(d.causes);
  d.main_cause = d.causes.front().cause;
  return d;
}

std::string percent(double part, double whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", whole > 0 ? 100.0 * part / whole : 0.0);
  return buf;
}

}  // namespace

const std::array<cause_info, 11>& cause_table() { return causes; }

const cause_info& info_of(exposure_cause c) {
  for (const cause_info& i : causes)
    if (i.cause == c) return i;
  return causes.back();
}

std::optional<diagnosis> diagnose(const diagnosis_input& in) {
  if (!in.overlapped.present()) return std::nullopt;
  if (!(in.exposed_ms >= min_exposed_ms) ||
      !(in.exposed_ms >= min_exposed_fraction * in.overlapped_ms))
    return std::nullopt;
  std::vector<path_segment> path =
      critical_path(*in.overlapped.s, *in.overlapped.intervals, in.cdmc);
  if (path.empty()) return std::nullopt;
  return summarize(attribution(in, std::move(path)).run(), in.exposed_ms);
}

std::optional<diagnosis> diagnose_case(const variant_schedules& v, const variant_measurements& m,
                                       double exposed_ms, double overlapped_ms, int cdmc) {
  auto timed = [&](variant x) {
    const auto i = static_cast<int>(x);
    return timed_schedule{&v[i], &m[i].ops};
  };
  diagnosis_input in;
  in.overlapped = timed(variant::overlapped);
  in.compute_only = timed(variant::compute_only);
  in.compute_with_margin = timed(variant::compute_with_margin);
  in.comm_only = timed(variant::comm_only);
  in.exposed_ms = exposed_ms;
  in.overlapped_ms = overlapped_ms;
  in.cdmc = cdmc;
  return diagnose(in);
}

std::optional<diagnosis> diagnosis_of(const std::vector<cause_share>& shares, double exposed_ms,
                                      double total_ms) {
  if (!(exposed_ms >= min_exposed_ms) || !(exposed_ms >= min_exposed_fraction * total_ms))
    return std::nullopt;
  std::vector<piece> pieces;
  for (const cause_share& c : shares)
    if (c.ms > 0) pieces.push_back({c.cause, 1000 * c.ms, c.where, 0, 0, -1, c.dimension});
  if (pieces.empty()) return std::nullopt;
  return summarize(pieces, exposed_ms);
}

std::string dimension_text(const std::string& dimension) {
  std::string out = dimension;
  for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

std::string why_text(const diagnosis& d) {
  double total = 0;
  for (const cause_share& c : d.causes) total += c.ms;
  auto one = [&](const cause_share& c, bool with_where) {
    std::string where = c.where;
    if (c.sm_margin_ms && *c.sm_margin_ms >= 0.5 * c.ms) where = "sm margin";
    if (where == c.dimension) where.clear();  // "tp" says nothing "TP" does not
    return std::string(info_of(c.cause).short_name) + " " + percent(c.ms, total) +
           (c.dimension.empty() ? "" : " " + dimension_text(c.dimension)) +
           (with_where && !where.empty() ? " " + where : "");
  };
  if (d.causes.empty()) return "-";
  std::string out = one(d.causes.front(), true);
  if (d.causes.size() > 1 && d.causes[1].ms >= 0.25 * total) out += ", " + one(d.causes[1], false);
  return out;
}

ordered_json to_json(const diagnosis& d) {
  ordered_json j;
  j["main_cause"] = to_string(d.main_cause);
  j["causes"] = ordered_json::array();
  for (const cause_share& c : d.causes) {
    ordered_json e;
    e["cause"] = to_string(c.cause);
    e["ms"] = c.ms;
    e["where"] = c.where;
    if (c.sm_margin_ms) e["sm_margin_ms"] = *c.sm_margin_ms;
    if (!c.dimension.empty()) e["dimension"] = c.dimension;
    j["causes"].push_back(std::move(e));
  }
  return j;
}

diagnosis diagnosis_from_json(const json_object& obj) {
  diagnosis d;
  const auto cause_of = [](const json_object& o, const std::string& key) {
    return parse_enum<exposure_cause>(o.get_string(key), o.where(key));
  };
  d.main_cause = cause_of(obj, "main_cause");
  const json& list = obj.get_raw("causes");
  if (!list.is_array()) obj.fail("causes", "expected an array, got " + describe_json(list));
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string at =
        (obj.path().empty() ? "" : obj.path() + ".") + "causes[" + std::to_string(i) + "]";
    const json_object e(list[i], obj.file(), at);
    cause_share c;
    c.cause = cause_of(e, "cause");
    c.ms = e.get_number("ms");
    c.where = e.get_string("where", "");
    if (e.has("sm_margin_ms")) c.sm_margin_ms = e.get_number("sm_margin_ms");
    if (e.has("dimension")) c.dimension = e.get_enum("dimension", {"tp", "cp", "dp", "pp"});
    e.finish();
    d.causes.push_back(std::move(c));
  }
  obj.finish();
  return d;
}

}  // namespace ob
