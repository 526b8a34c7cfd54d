#include "plan/pp_schedule.hpp"

#include <algorithm>

namespace ob {
namespace {

// Collects actions; a call that moves nothing is dropped.
struct action_list {
  std::vector<pp_action> out;
  void pass(pp_action::kind k, int chunk, int mb) { out.push_back({k, chunk, mb, {}}); }
  void merged(int chunk, int mb, int b_chunk, int b_mb) {
    out.push_back({pp_action::kind::forward_backward, chunk, mb, {}, b_chunk, b_mb});
  }
  void call(pp_call c) {
    if (c.any()) out.push_back({pp_action::kind::comm, 0, 0, c});
  }
};

// Non-interleaved 1F1B (Megatron's forward_backward_pipelining_without_interleaving): warm-up
// forwards, then one forward and one backward at a time, then the remaining backwards.
std::vector<pp_action> one_f_one_b(const pp_layout& l, int s) {
  const bool first = s == 0, last = s == l.pp - 1;
  const int w = pp_warmup(l, s), r = l.microbatches - w;
  action_list a;
  using k = pp_action::kind;
  for (int i = 0; i < w; ++i) {
    a.call({.recv_prev = !first});
    a.pass(k::forward, 0, i);
    a.call({.send_next = !last});
  }
  if (r > 0) a.call({.recv_prev = !first});
  for (int i = 0; i < r; ++i) {
    a.pass(k::forward, 0, w + i);
    a.call({.send_next = !last, .recv_next = !last});
    a.pass(k::backward, 0, i);
    a.call({.send_prev = !first, .recv_prev = !first && i + 1 < r});
  }
  for (int i = 0; i < w; ++i) {
    a.call({.recv_next = !last});
    a.pass(k::backward, 0, r + i);
    a.call({.send_prev = !first});
  }
  return a.out;
}

// Megatron's combined_1f1b_schedule_for_no_pipelining: forward 0 alone, then backward i merged
// with forward i + 1, then the last backward alone.
std::vector<pp_action> combined_no_pipelining(const pp_layout& l) {
  action_list a;
  a.pass(pp_action::kind::forward, 0, 0);
  for (int i = 1; i < l.microbatches; ++i) a.merged(0, i, 0, i - 1);
  a.pass(pp_action::kind::backward, 0, l.microbatches - 1);
  return a.out;
}

// Interleaved 1F1B (Megatron's forward_backward_pipelining_with_interleaving): virtual
// micro-batches walk the vp chunks in groups of pp.
class interleaved {
 public:
  interleaved(const pp_layout& l, int s, bool split) : l_(l), s_(s), split_(split) {}

  std::vector<pp_action> build() {
    const int total = l_.microbatches * l_.vp;
    const int warm = pp_warmup(l_, s_), rem = total - warm;
    a_.call({.recv_prev = s_ != 0});
    for (int k = 0; k < warm; ++k) warmup_step(k, total, warm == total, k == warm - 1);
    for (int k = 0; k < rem; ++k) steady_step(k, warm, rem);
    if (warm == total && !last_stage()) a_.call({.recv_next = true});
    for (int k = rem; k < total; ++k) cooldown_step(k, total);
    return a_.out;
  }

 private:
  int chunk(int k, bool forward) const {
    const int c = (k % (l_.pp * l_.vp)) / l_.pp;
    return forward ? c : l_.vp - 1 - c;
  }
  int microbatch(int k) const { return (k / (l_.pp * l_.vp)) * l_.pp + k % l_.pp; }
  bool last_stage() const { return s_ == l_.pp - 1; }
  // Whether this stage sends the forward output of virtual k (the last virtual stage does not).
  bool sends_output(int k) const { return !last_virtual_stage(l_, s_, chunk(k, true)); }
  bool sends_input_grad(int k) const { return !first_virtual_stage(s_, chunk(k, false)); }
  // Whether the forward after virtual k needs an input from the previous stage.
  bool recv_prev_for(int next) const { return !(s_ == 0 && chunk(next, true) == 0); }
  bool recv_next_for(int next) const { return !(last_stage() && chunk(next, false) == l_.vp - 1); }

  void warmup_step(int k, int total, bool all_warmup, bool last_warmup) {
    a_.pass(pp_action::kind::forward, chunk(k, true), microbatch(k));
    const bool rp = k != total - 1 && recv_prev_for(k + 1);
    if (last_warmup && !all_warmup) {
      const bool rn = !last_stage();
      if (split_) {
        a_.call({.send_next = sends_output(k), .recv_prev = rp});
        a_.call({.recv_next = rn});
      } else {
        a_.call({.send_next = sends_output(k), .recv_next = rn, .recv_prev = rp});
      }
      return;
    }
    a_.call({.send_next = sends_output(k), .recv_prev = rp});
  }

  void steady_step(int k, int warm, int rem) {
    const int fk = k + warm;
    const bool rp = k != rem - 1 && recv_prev_for(fk + 1);
    const bool rn = recv_next_for(k + 1);
    if (l_.a2a_overlap) {
      // The combined step runs both passes at once; their transfers follow it.
      a_.merged(chunk(fk, true), microbatch(fk), chunk(k, false), microbatch(k));
      if (split_) a_.call({.send_next = sends_output(fk), .recv_prev = rp});
    } else {
      a_.pass(pp_action::kind::forward, chunk(fk, true), microbatch(fk));
      if (split_) a_.call({.send_next = sends_output(fk), .recv_prev = rp});
      a_.pass(pp_action::kind::backward, chunk(k, false), microbatch(k));
    }
    if (split_)
      a_.call({.recv_next = rn, .send_prev = sends_input_grad(k)});
    else
      a_.call({.send_next = sends_output(fk),
               .recv_next = rn,
               .send_prev = sends_input_grad(k),
               .recv_prev = rp});
  }

  void cooldown_step(int k, int total) {
    a_.pass(pp_action::kind::backward, chunk(k, false), microbatch(k));
    const bool rn = k != total - 1 && recv_next_for(k + 1);
    a_.call({.recv_next = rn, .send_prev = sends_input_grad(k)});
  }

  const pp_layout& l_;
  const int s_;
  const bool split_;
  action_list a_;
};

}  // namespace

// Megatron's get_pp_rank_microbatches; with overlap_moe_expert_parallel_comm one more warm-up
// forward, so that each combined step pairs two independent micro-batches.
int pp_warmup(const pp_layout& l, int stage) {
  if (l.vp <= 1) return std::min(l.pp - stage - 1, l.microbatches);
  const int extra = l.a2a_overlap ? 1 : 0;
  return std::min((l.pp - stage - 1) * 2 + (l.vp - 1) * l.pp + extra, l.microbatches * l.vp);
}

std::vector<pp_action> pp_actions(const pp_layout& l, int stage, bool split_fwd_bwd) {
  if (l.a2a_overlap && l.pp == 1 && l.vp <= 1) return combined_no_pipelining(l);
  if (l.vp <= 1) return one_f_one_b(l, stage);
  return interleaved(l, stage, split_fwd_bwd).build();
}

}  // namespace ob
