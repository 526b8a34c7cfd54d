#include "analysis/critical_path.hpp"

#include <algorithm>

#include "model/cdmc.hpp"

namespace ob {
namespace {

// The dependency that released an op last: its end (waits, stream order) or its start (a
// launch-ordering wait, op::waits_started).
struct release {
  int op = -1;
  bool on_start = false;
  double at_us = 0;
};

bool needs_sms(const op& o) {
  if (o.kind() == op_kind::p2p) return o.as<p2p_params>().ctas > 0;
  if (o.kind() == op_kind::delay) return o.as<delay_params>().ctas > 0;
  return o.kind() != op_kind::host_sync;
}

double clamp_to(double v, double lo, double hi) { return std::min(std::max(v, lo), hi); }

class path_walker {
 public:
  path_walker(const schedule& s, std::vector<const op_interval*> iv, int cdmc)
      : s_(s), iv_(std::move(iv)), prev_(s.ops.size(), -1) {
    queues_ = hardware_queue_count(cdmc);
    std::vector<int> last(s.streams.size(), -1);
    for (const op& o : s.ops) {
      prev_[o.id] = last[o.stream];
      last[o.stream] = o.id;
    }
  }

  std::vector<path_segment> walk() const {
    std::vector<path_segment> out;
    int id = last_to_end();
    bool at_end = true;
    while (id >= 0) {
      const op_interval& x = *iv_[id];
      if (at_end) out.push_back({id, true, x.start_us, x.end_us});
      const release r = released_by(id);
      if (x.start_us > r.at_us) out.push_back(wait(id, r.at_us));
      id = r.op;
      at_end = !r.on_start;
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

 private:
  int last_to_end() const {
    int best = -1;
    for (const op& o : s_.ops)
      if (best < 0 || iv_[o.id]->end_us >= iv_[best]->end_us) best = o.id;
    return best;
  }

  // Dependencies point to earlier ops (schedule::validate), so the walk always ends.
  release released_by(int id) const {
    release r;
    auto consider = [&](int dep, bool on_start) {
      const double at = on_start ? iv_[dep]->start_us : iv_[dep]->end_us;
      if (r.op < 0 || at > r.at_us) r = {dep, on_start, at};
    };
    const op& o = s_.ops[id];
    if (prev_[id] >= 0) consider(prev_[id], false);
    for (int w : o.waits) consider(w, false);
    for (int w : o.waits_started) consider(w, true);
    return r;
  }

  path_segment wait(int id, double from_us) const {
    const op_interval& x = *iv_[id];
    path_segment g{id, false, from_us, x.start_us};
    if (x.deps_met_us && x.enqueue_us && x.ready_us)
      split_recorded(g, x);
    else
      split_inferred(g);
    return g;
  }

  // The executor recorded when the dependencies were met, when the host had enqueued the op and
  // when it was ready at its queue's head: the wait splits exactly.
  static void split_recorded(path_segment& g, const op_interval& x) {
    const double met = clamp_to(*x.deps_met_us, g.start_us, g.end_us);
    const double enqueued = clamp_to(std::max(met, *x.enqueue_us), met, g.end_us);
    const double ready = clamp_to(*x.ready_us, enqueued, g.end_us);
    g.launch_us = enqueued - g.start_us;
    g.queue_us = ready - enqueued;
    g.sm_us = g.end_us - ready;
  }

  // Only start and end are known: the op waited in its queue while an op enqueued before it in
  // the same hardware queue had not started; then for SMs while compute on other streams held
  // them; a short rest is launch overhead, a long one unexplained.
  void split_inferred(path_segment& g) const {
    const op& o = s_.ops[g.op];
    double t = g.start_us;
    for (const op& a : s_.ops) {
      if (a.id >= o.id) break;
      if (hardware_queue_of(a.stream, queues_) != hardware_queue_of(o.stream, queues_) ||
          a.stream == o.stream)
        continue;
      const double st = iv_[a.id]->start_us;
      if (st > g.start_us && st <= g.end_us) t = std::max(t, st);
    }
    g.queue_us = t - g.start_us;
    if (needs_sms(o)) g.sm_us = busy_elsewhere(o, t, g.end_us);
    const double rest = g.end_us - t - g.sm_us;
    (rest <= launch_gap_us ? g.launch_us : g.unexplained_us) = rest;
  }

  // Length of [from, to] during which a compute op on another stream ran.
  double busy_elsewhere(const op& o, double from, double to) const {
    std::vector<std::pair<double, double>> spans;
    for (const op& a : s_.ops) {
      if (a.stream == o.stream || a.is_comm() || !needs_sms(a)) continue;
      const double lo = std::max(from, iv_[a.id]->start_us), hi = std::min(to, iv_[a.id]->end_us);
      if (hi > lo) spans.emplace_back(lo, hi);
    }
    std::sort(spans.begin(), spans.end());
    double total = 0, reach = from;
    for (const auto& [lo, hi] : spans) {
      if (hi <= reach) continue;
      total += hi - std::max(lo, reach);
      reach = hi;
    }
    return total;
  }

  const schedule& s_;
  std::vector<const op_interval*> iv_;  // by op id
  std::vector<int> prev_;               // stream predecessor by op id, -1 for none
  int queues_ = cdmc_default;
};

}  // namespace

std::vector<path_segment> critical_path(const schedule& s,
                                        const std::vector<op_interval>& intervals, int cdmc) {
  std::vector<const op_interval*> by_id(s.ops.size(), nullptr);
  for (const op_interval& i : intervals) {
    if (i.op_id < 0 || static_cast<std::size_t>(i.op_id) >= s.ops.size()) return {};
    by_id[i.op_id] = &i;
  }
  if (s.ops.empty() || std::count(by_id.begin(), by_id.end(), nullptr) > 0) return {};
  return path_walker(s, std::move(by_id), cdmc).walk();
}

}  // namespace ob
