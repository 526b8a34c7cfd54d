#include "cuda/case_run.hpp"

namespace ob::cuda {

case_run::case_run(rank_engine& engine, const case_lowering& low, const measure_options& m,
                   const std::string* world_id, abort_signal& abort, std::function<void()> sync)
    : e_(engine),
      low_(low),
      m_(m),
      world_id_(world_id),
      abort_(abort),
      sync_(std::move(sync)),
      dog_(m.timeout_s, "rank " + std::to_string(engine.identity().global_rank),
           [this] { e_.abort_comms(); }),
      wait_(engine, dog_, abort, m.timeout_s),
      launcher_(engine, m.timeout_s, abort),
      res_(low, m.warmup + m.iters, engine.facts().priority_least, engine.context("setup")) {}

void case_run::register_windows() {
  for (std::size_t i = 0; i < low_.buffers.size(); ++i) {
    const buffer_request& b = low_.buffers[i];
    if (!b.symmetric) continue;
    dog_.beat("registering symmetric window " + b.key);
    const error_context c = ctx("window " + b.key);
    ncclComm_t comm = e_.comms().get(b.window, b.key, m_.timeout_s, &abort_, c);
    if (!comm) continue;  // this rank is not in that communicator
    windows_.emplace_back(comm, res_.buffer_start(i), std::max<std::size_t>(b.bytes, 16),
                          m_.timeout_s, &abort_, c);
  }
}

void case_run::bind() {
  for (const lowered_variant& lv : low_.variants) {
    if (!lv.measured) continue;
    bound_variant p;
    p.low = &lv;
    p.set = &res_.streams(lv.stream_set);
    p.ev = &res_.events(static_cast<std::size_t>(lv.v));
    for (const lowered_action& a : lv.actions) p.actions.push_back(launcher_.bind(a, res_));
    plans_.push_back(std::move(p));
  }
}

void case_run::run(rank_result& out) {
  require_nccl_types(low_, ctx());
  e_.setup_comms(low_.comms, low_.grid, world_id_, m_.timeout_s, abort_, dog_);
  register_windows();
  bind();
  dog_.beat("initialising buffers");
  res_.initialise(low_, e_.gemm(), e_.workspace(0), ctx());
  wait_.wait_for_stream(res_.join(), "initialising buffers");
  if (m_.graphs) capture_graphs();
  timed_rounds(out);
  instrumented_pass(out);
}

}  // namespace ob::cuda
