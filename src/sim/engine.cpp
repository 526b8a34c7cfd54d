#include "sim/engine.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <queue>
#include <string>
#include <utility>

#include "base/error.hpp"
#include "base/rates.hpp"

namespace ob::sim {

namespace {

constexpr double infinity = std::numeric_limits<double>::infinity();

// CTAs of one op that got their SMs at the same instant move in lockstep, so they are advanced
// as one unit: the event count grows with waves and dispatch instants, not with CTAs or tiles.
struct cohort {
  int op = 0;
  int n = 0;                // CTAs (channels) in the group; 0 for copy-engine and fixed work
  double latency_left = 0;  // channels: protocol latency before bytes move (µs)
  double work_left = 0;     // tiles and fixed: µs of uncontended work; channels, copies: bytes
  double rate = 0;          // work per µs during the current interval
  double next_event = 0;    // absolute time of its next state change
  bool dead = false;
  bool held = false;  // a rendezvous op resident but waiting for its partner: no progress
};

struct op_state {
  int to_dispatch = 0;  // CTAs still waiting for an SM
  int resident = 0;     // CTAs on SMs
  std::int64_t tiles_taken = 0;
  bool ready_marked = false;
  bool started = false;
  bool finished = false;
  bool released = false;  // rendezvous: the partner has started too
};

}  // namespace

class device {
 public:
  explicit device(const device_inputs& in)
      : in_(in),
        n_(static_cast<int>(in.sched.ops.size())),
        queues_(in.sched, in.queue_count),
        deps_(in.sched, queues_, in.gpu.cross_queue_event_us),
        state_(in.sched.ops.size()),
        free_slots_(in.gpu.sm_count) {
    result_.ops.resize(in.sched.ops.size());
    for (const op& o : in.sched.ops) {
      auto& r = result_.ops[o.id];
      r.op_id = o.id;
      r.enqueue_us = arrival_[o.id];
      r.queue = queues_.queue_of(o.id);
      r.ctas = in.plans[o.id].ctas;
      state_[o.id].to_dispatch = in.plans[o.id].ctas;
    }
    cohorts_.reserve(64);
  }

  sim_result run() {
    while (finished_ < n_) {
      settle();
      if (finished_ == n_) break;
      const double t = next_event_time();
      if (t == infinity) stalled();
      advance_to(t);
    }
    return result();
  }

  sim_result result() {
    for (const auto& r : result_.ops) result_.total_us = std::max(result_.total_us, r.end_us);
    return std::move(result_);
  }

  bool done() const { return finished_ == n_; }
  double now() const { return now_; }
  std::vector<int> take_started_rendezvous() { return std::exchange(started_rendezvous_, {}); }

  void release(int id) {
    state_[id].released = true;
    for (cohort& c : cohorts_)
      if (c.op == id) c.held = false;
  }

  std::string heads() const {
    std::string out;
    for (int q = 0; q < queues_.count(); ++q) {
      const int h = queues_.head(q);
      if (h >= 0) out += " queue " + std::to_string(q) + ": '" + in_.sched.ops[h].name + "'";
    }
    return out;
  }

  // Everything that happens at `now_` without time passing: due timers, dispatch, and the
  // completions of ops that need no device time.
  void settle() {
    while (next_arrival_ < host_known_ && arrival_[next_arrival_] <= now_) ++next_arrival_;
    while (!timers_.empty() && timers_.top() <= now_) timers_.pop();
    while (dispatch_one()) {
    }
  }

  bool before(int a, int b) const {
    const int pa = in_.sched.streams[in_.sched.ops[a].stream].priority;
    const int pb = in_.sched.streams[in_.sched.ops[b].stream].priority;
    if (pa != pb) return pa < pb;
    if (arrival_[a] != arrival_[b]) return arrival_[a] < arrival_[b];
    return a < b;
  }

  // Dispatches the best dispatchable head (or starts a head that needs no SM). Returns false
  // when nothing can move at this instant.
  bool dispatch_one() {
    int best = -1;
    for (int q = 0; q < queues_.count(); ++q) {
      const int h = queues_.head(q);
      if (h < 0 || h >= host_known_ || arrival_[h] > now_ || !deps_.met(h, now_)) continue;
      op_state& st = state_[h];
      if (!st.ready_marked) {
        st.ready_marked = true;
        result_.ops[h].ready_us = now_;
      }
      if (in_.plans[h].ctas == 0) {
        queues_.pop(q);
        start_without_sms(h);
        return true;
      }
      if (free_slots_ == 0) continue;
      if (best < 0 || before(h, best)) best = h;
    }
    if (best < 0) return false;
    op_state& st = state_[best];
    const kernel_plan& p = in_.plans[best];
    int k = std::min(free_slots_, st.to_dispatch);
    if (!p.persistent) k = static_cast<int>(std::min<std::int64_t>(k, p.tiles - st.tiles_taken));
    st.to_dispatch -= k;
    mark_started(best);
    place_ctas(best, k);
    drop_unneeded_ctas(best);
    if (st.to_dispatch == 0) pop_head(best);
    return true;
  }

  // Only a head dispatches, so an op with CTAs left to dispatch is always its queue's head.
  void pop_head(int id) {
    const int q = queues_.queue_of(id);
    if (queues_.head(q) != id)
      throw runtime_failure("simulator: internal error: op " + std::to_string(id) + " left queue " +
                            std::to_string(q) + " without being its head");
    queues_.pop(q);
  }

  // A non-persistent grid is done dispatching once every tile has a CTA; its head place in the
  // queue goes to the op behind it.
  void drop_unneeded_ctas(int id) {
    op_state& st = state_[id];
    const kernel_plan& p = in_.plans[id];
    if (p.persistent || p.model != progress_model::tiles || st.to_dispatch == 0 ||
        st.tiles_taken < p.tiles)
      return;
    st.to_dispatch = 0;
  }

  bool waits_for_partner(int id) const {
    return in_.rendezvous && !in_.rendezvous->empty() && (*in_.rendezvous)[id] &&
           !state_[id].released;
  }

  void mark_started(int id) {
    op_state& st = state_[id];
    if (st.started) return;
    st.started = true;
    if (in_.rendezvous && !in_.rendezvous->empty() && (*in_.rendezvous)[id])
      started_rendezvous_.push_back(id);
    result_.ops[id].start_us = now_;
    if (in_.plans[id].is_comm) ++comm_running_;
    if (in_.plans[id].is_gemm) {
      ++gemm_running_;
      gemm_demand_ += in_.plans[id].hbm_demand;
    }
    // Launch-ordering dependents (op::waits_started) may become ready.
    deps_.start(id, now_,
                [this](int dependent, double ready_at) { on_deps_met(dependent, ready_at); });
  }

  void start_without_sms(int id) {
    mark_started(id);
    const kernel_plan& p = in_.plans[id];
    cohort c;
    c.op = id;
    c.held = waits_for_partner(id);
    switch (p.model) {
      case progress_model::copy_engine:
        c.work_left = p.channel_bytes;
        cohorts_.push_back(c);
        ++copies_running_;
        return;
      case progress_model::fixed:
        c.work_left = p.fixed_us;
        cohorts_.push_back(c);
        if (p.fixed_hbm > 0) {
          ++host_copies_;
          fixed_demand_ += p.fixed_hbm;
        }
        return;
      default:
        finish(id);  // nothing runs on the device
        return;
    }
  }

  // k CTAs of `id` just got SMs.
  void place_ctas(int id, int k) {
    const kernel_plan& p = in_.plans[id];
    op_state& st = state_[id];
    free_slots_ -= k;
    st.resident += k;
    cohort c;
    c.op = id;
    if (p.model == progress_model::channels) {
      c.n = k;
      c.held = waits_for_partner(id);
      // A collective whose peers never arrive spins on its SMs, as an NCCL kernel does.
      c.latency_left = id == in_.stalled_op ? infinity : p.latency_us;
      c.work_left = p.channel_bytes;
      cohorts_.push_back(c);
      return;
    }
    // Tiles: each arriving CTA takes the next tile; one that finds none exits at once (a late
    // CTA of a persistent kernel still has to be scheduled before the kernel can end).
    const auto take = static_cast<int>(std::min<std::int64_t>(k, p.tiles - st.tiles_taken));
    st.tiles_taken += take;
    release(id, k - take);
    if (take > 0) {
      c.n = take;
      c.work_left = p.tile_us + p.setup_us;  // a CTA's first unit carries its prologue
      cohorts_.push_back(c);
    }
    maybe_finish(id);
  }

  void release(int id, int ctas) {
    state_[id].resident -= ctas;
    free_slots_ += ctas;
  }

  void maybe_finish(int id) {
    const op_state& st = state_[id];
    if (!st.finished && st.to_dispatch == 0 && st.resident == 0) finish(id);
  }

  // The host enqueues op i only once op i - D has completed (D = max_pending_launches) and,
  // right after a host sync, once that sync has (docs/ARCHITECTURE.md §5.1, item 12): when an op
  // completes, the ops it was holding back get their enqueue times.
  void release_host() {
    double after = 0;
    while (host_known_ < n_ && host_may_enqueue(host_known_, after)) {
      const int i = host_known_;
      const double cost = in_.enqueue_us[i] - in_.enqueue_us[i - 1];
      arrival_[i] = std::max(in_.enqueue_us[i] + host_shift_, after + cost);
      host_shift_ = arrival_[i] - in_.enqueue_us[i];
      result_.ops[i].enqueue_us = arrival_[i];
      if (arrival_[i] > now_) timers_.push(arrival_[i]);
      ++host_known_;
    }
  }

  // Whether the host may enqueue op i yet; `after`: the latest completion it had to wait for.
  bool host_may_enqueue(int i, double& after) const {
    after = 0;
    const int held_by = i - std::max(in_.gpu.max_pending_launches, 1);
    if (held_by >= 0) {
      if (!state_[held_by].finished) return false;
      after = result_.ops[held_by].end_us;
    }
    if (in_.sched.ops[i - 1].kind() == op_kind::host_sync) {
      if (!state_[i - 1].finished) return false;
      after = std::max(after, result_.ops[i - 1].end_us);
    }
    return true;
  }

  // The host's first ops: up to the launch queue's depth, and not past the first host sync.
  static int first_host_known(const schedule& s, int depth) {
    const int n = static_cast<int>(s.ops.size());
    const int limit = std::min(n, std::max(depth, 1));
    for (int i = 0; i < limit; ++i)
      if (s.ops[i].kind() == op_kind::host_sync) return i + 1;
    return limit;
  }

  void finish(int id) {
    op_state& st = state_[id];
    st.finished = true;
    ++finished_;
    result_.ops[id].end_us = now_;
    if (host_known_ < n_) release_host();
    if (in_.plans[id].is_comm) --comm_running_;
    if (in_.plans[id].is_gemm) {
      --gemm_running_;
      gemm_demand_ -= in_.plans[id].hbm_demand;
    }
    deps_.complete(id, now_,
                   [this](int dependent, double ready_at) { on_deps_met(dependent, ready_at); });
  }

  // The dependent's last dependency resolved; it is visible at ready_at (cross-queue delay).
  void on_deps_met(int dependent, double ready_at) {
    result_.ops[dependent].deps_met_us = ready_at;
    if (ready_at > now_) timers_.push(ready_at);
  }

  // Inter-node ops whose bytes are moving now: they share the node's NICs.
  int moving_inter_node_ops() {
    ++stamp_epoch_;
    int n = 0;
    for (const cohort& c : cohorts_) {
      const kernel_plan& p = in_.plans[c.op];
      if (!p.inter_node || c.held || c.latency_left > 0 || c.n == 0) continue;
      if (stamp_[c.op] != stamp_epoch_) {
        stamp_[c.op] = stamp_epoch_;
        ++n;
      }
    }
    return n;
  }

  // One channel of an inter-node op: the op's bandwidth cap over its channels, split evenly
  // with the other inter-node ops moving at the same time.
  static double inter_node_rate(const kernel_plan& p, int net_ops, double comm_slow) {
    return p.cap_gbps * bytes_per_us_per_gbps / comm_slow / p.ctas / std::max(net_ops, 1);
  }

  bool moving_channel(const cohort& c) const {
    return c.n > 0 && !c.held && c.latency_left <= 0 &&
           in_.plans[c.op].model == progress_model::channels;
  }

  // HBM shared by GEMMs and communication (docs/ARCHITECTURE.md §5.1, item 8): each side slows by
  // its sensitivity times the other's share of HBM, both by the oversubscription beyond it.
  struct slowdowns {
    double gemm = 1, comm = 1;
  };
  slowdowns hbm_slowdowns(int moving_channels, double channel_bps, int net_ops) const {
    const bool host_copies = host_copies_ > 0;
    if (gemm_running_ == 0 || (moving_channels == 0 && copies_running_ == 0 && !host_copies))
      return {};
    const gpu_spec& g = in_.gpu;
    const double hbm = g.hbm_bytes_per_us();
    double wire = copies_running_ > 0 ? g.copy_engine_gbps * bytes_per_us_per_gbps : 0;
    for (const cohort& c : cohorts_) {
      if (!moving_channel(c)) continue;
      const kernel_plan& p = in_.plans[c.op];
      double r = channel_bps * p.bw_factor;
      if (p.inter_node) r = std::min(r, inter_node_rate(p, net_ops, 1.0));
      wire += c.n * r;
    }
    // Host copies read or write each byte once, beside what the collectives draw.
    const double d_comm = wire * g.comm_hbm_traffic + (host_copies ? fixed_demand_ : 0);
    const double d_gemm = gemm_running_ > 0 ? std::min(std::max(gemm_demand_, 0.0), hbm) : 0;
    const double over = std::max(1.0, (d_gemm + d_comm) / hbm);
    slowdowns s;
    if (d_comm > 0 && gemm_running_ > 0)
      s.gemm = (1 + g.gemm_hbm_sensitivity * d_comm / hbm) * over;
    if (gemm_running_ > 0 && (d_comm > 0 || copies_running_ > 0))
      s.comm = (1 + g.comm_hbm_sensitivity * d_gemm / hbm) * over;
    return s;
  }

  // Sets every cohort's rate for the interval starting now and returns the next event time.
  double next_event_time() {
    double t = infinity;
    if (next_arrival_ < host_known_) t = arrival_[next_arrival_];
    if (!timers_.empty()) t = std::min(t, timers_.top());

    const gpu_spec& g = in_.gpu;
    int moving_channels = 0;
    const int net_ops = moving_inter_node_ops();
    for (const cohort& c : cohorts_)
      if (moving_channel(c)) moving_channels += c.n;
    // Channels share the GPU's NVLink; each is also capped by what one CTA can push.
    const double channel_bps =
        moving_channels > 0
            ? std::min(g.nccl_channel_gbps, g.nvlink_effective_gbps() / moving_channels) *
                  bytes_per_us_per_gbps
            : 0;
    const slowdowns slow = hbm_slowdowns(moving_channels, channel_bps, net_ops);
    const double gemm_rate = 1.0 / slow.gemm;
    const double comm_slow = slow.comm;
    const double channel_rate = channel_bps / comm_slow;
    const double copy_rate = copies_running_ > 0 ? g.copy_engine_gbps * bytes_per_us_per_gbps /
                                                       copies_running_ / comm_slow
                                                 : 0;
    for (cohort& c : cohorts_) {
      const kernel_plan& p = in_.plans[c.op];
      if (c.held) {
        c.rate = 0;
        c.next_event = infinity;
        continue;
      }
      double dt;
      switch (p.model) {
        case progress_model::tiles:
          c.rate = p.gemm_contended ? gemm_rate : 1.0;
          dt = c.work_left / c.rate;
          break;
        case progress_model::channels:
          if (c.latency_left > 0) {
            c.rate = 1.0;
            dt = c.latency_left;
          } else {
            c.rate = channel_rate * p.bw_factor;
            if (p.inter_node) c.rate = std::min(c.rate, inter_node_rate(p, net_ops, comm_slow));
            dt = c.work_left / c.rate;
          }
          break;
        case progress_model::copy_engine:
          c.rate = copy_rate;
          dt = c.work_left / c.rate;
          break;
        default:
          c.rate = 1.0;
          dt = c.work_left;
          break;
      }
      c.next_event = now_ + dt;
      t = std::min(t, c.next_event);
    }
    return t;
  }

  void advance_to(double t) {
    const double dt = t - now_;
    // Progress first, at the rates of the interval that ends now; only then let events change
    // the counters that set the next interval's rates.
    for (cohort& c : cohorts_) {
      if (c.next_event <= t || c.held) continue;
      if (c.latency_left > 0)
        c.latency_left = std::max(0.0, c.latency_left - dt);
      else
        c.work_left = std::max(0.0, c.work_left - c.rate * dt);
    }
    now_ = t;
    const std::size_t count = cohorts_.size();  // events never add cohorts
    for (std::size_t i = 0; i < count; ++i)
      if (cohorts_[i].next_event <= t) on_event(cohorts_[i]);
    std::erase_if(cohorts_, [](const cohort& c) { return c.dead; });
  }

  void on_event(cohort& c) {
    const kernel_plan& p = in_.plans[c.op];
    switch (p.model) {
      case progress_model::tiles: {
        op_state& st = state_[c.op];
        const auto take =
            p.dynamic_tiles
                ? static_cast<int>(std::min<std::int64_t>(c.n, p.tiles - st.tiles_taken))
                : 0;
        st.tiles_taken += take;
        const int exiting = c.n - take;
        if (take > 0) {
          c.n = take;
          c.work_left = p.tile_us;
        } else {
          c.dead = true;
        }
        if (!p.persistent && st.to_dispatch > 0 && st.tiles_taken == p.tiles) {
          // Its undispatched CTAs are not needed any more; it was the head of its queue.
          st.to_dispatch = 0;
          pop_head(c.op);
        }
        if (exiting > 0) {
          release(c.op, exiting);
          maybe_finish(c.op);
        }
        return;
      }
      case progress_model::channels:
        if (c.latency_left > 0) {
          c.latency_left = 0;
          if (c.work_left > 0) return;  // now the bytes start to move
        }
        c.dead = true;
        release(c.op, c.n);
        maybe_finish(c.op);
        return;
      case progress_model::copy_engine:
        --copies_running_;
        c.dead = true;
        finish(c.op);
        return;
      default:
        if (in_.plans[c.op].fixed_hbm > 0)  // the last one leaves no rounding behind
          fixed_demand_ = --host_copies_ > 0 ? fixed_demand_ - in_.plans[c.op].fixed_hbm : 0;
        c.dead = true;
        finish(c.op);
        return;
    }
  }

  [[noreturn]] void stalled() const {
    if (in_.stalled_op >= 0 && !state_[in_.stalled_op].finished) {
      char at[32];
      std::snprintf(at, sizeof at, "%.1f", now_);
      throw hang_error("nothing could move after " + std::string(at) + " us");
    }
    throw runtime_failure("simulator: schedule '" + in_.sched.name + "' stalled at " +
                          std::to_string(now_) + " us;" + heads());
  }

 public:
  const device_inputs& in_;
  int n_;
  hw_queues queues_;
  dependency_tracker deps_;
  std::vector<op_state> state_;
  std::vector<cohort> cohorts_;
  // Times at which a cross-queue dependency becomes visible; only the time matters, the scan of
  // queue heads finds who became ready.
  std::priority_queue<double, std::vector<double>, std::greater<>> timers_;
  sim_result result_;
  double now_ = 0;
  int next_arrival_ = 0;  // first op the host has not enqueued by now_
  // Host enqueue times: the precomputed ones, delayed where the host had to wait for the launch
  // queue to drain (the op max_pending_launches earlier must have completed first) or for a
  // host sync.
  std::vector<double> arrival_ = in_.enqueue_us;
  int host_known_ = first_host_known(in_.sched, in_.gpu.max_pending_launches);
  double host_shift_ = 0;
  int finished_ = 0;
  int free_slots_;
  int comm_running_ = 0;
  int gemm_running_ = 0;
  int copies_running_ = 0;
  double gemm_demand_ = 0;  // HBM bytes per µs the running GEMMs draw
  // HBM bytes per µs the running fixed ops draw (host copies, delay_params::hbm_gbps).
  double fixed_demand_ = 0;
  int host_copies_ = 0;
  std::vector<int> started_rendezvous_;
  std::vector<unsigned> stamp_ = std::vector<unsigned>(in_.sched.ops.size(), 0);
  unsigned stamp_epoch_ = 0;
};

device_sim::device_sim(const device_inputs& in) : impl_(std::make_unique<device>(in)) {}
device_sim::~device_sim() = default;
void device_sim::settle() { impl_->settle(); }
double device_sim::next_event_time() { return impl_->next_event_time(); }
void device_sim::advance_to(double t) { impl_->advance_to(t); }
bool device_sim::done() const { return impl_->done(); }
double device_sim::now() const { return impl_->now(); }
std::vector<int> device_sim::take_started_rendezvous() { return impl_->take_started_rendezvous(); }
void device_sim::release(int op) { impl_->release(op); }
std::string device_sim::heads() const { return impl_->heads(); }
sim_result device_sim::result() { return impl_->result(); }

sim_result run_device(const device_inputs& in) { return device(in).run(); }

}  // namespace ob::sim
