#pragma once
// Workload + per-slot overlap method -> Schedule IR (docs/ARCHITECTURE.md §3). The knobs
// (model/knobs.hpp) are the sweep axes that change what is enqueued (CDMC changes only how the
// executor maps streams to queues).
#include <memory>
#include <optional>
#include <string>

#include "model/gpu_spec.hpp"
#include "model/ir.hpp"
#include "model/knobs.hpp"
#include "model/overlap_cfg.hpp"
#include "model/workload.hpp"

namespace ob {

// One transformer layer. Slots absent from `methods` run with method none.
schedule plan_layer(const layer_workload& w, const slot_overlap_map& methods, const gpu_spec& gpu,
                    const plan_knobs& knobs);

// Where an appended layer's ops go inside a larger schedule (a training step's stage).
struct layer_target {
  schedule* s = nullptr;
  int compute = 0, comm = 0, p2p = 0;  // stream ids: compute, TP collectives, TP ring exchange
  int cp = -1;                         // context-parallel KV exchange (cp > 1)
  int tp_nodes = 1, cp_nodes = 1;      // how many nodes the TP and CP groups span
  int cp_ctas = 0;                     // CTAs of a KV exchange step (NCCL send/recv)
  cp_comm cp_type = cp_comm::p2p;      // how CP exchanges the attention's inputs
  // a2a+p2p: the all-to-all level's size (consecutive CP ranks) and the nodes each level spans.
  int cp_a2a = 1, cp_a2a_nodes = 1, cp_p2p_nodes = 1;
};

// Appends layers, pass by pass, into one schedule, keeping the links between them: a LayerNorm
// waits for the reduce-scatter of the layer before it, a side-stream op issued "now" waits for the
// last compute op. Forward and backward passes of any layers may follow in any order (a pipeline
// schedule interleaves them).
class layer_appender {
 public:
  layer_appender(const layer_workload& w, const slot_overlap_map& methods, const gpu_spec& gpu,
                 const plan_knobs& knobs, const layer_target& t);
  ~layer_appender();
  layer_appender(layer_appender&&) noexcept;
  // Without `with_mlp` the dense MLP (fc1, activation, fc2 and their TP communication) is left
  // out: a MoE layer's planner lays out its experts there instead (plan/step_stage_moe.cpp).
  // `variant`: a workload of the same model and layout whose ops this pass lays out instead of
  // the appender's own (a sliding-window layer's, make_layer_workload(..., true)); null: its own.
  void forward(const std::string& name_prefix, bool with_mlp = true,
               const layer_workload* variant = nullptr);
  void backward(const std::string& name_prefix, bool with_mlp = true,
                const layer_workload* variant = nullptr);
  // The last op on the compute stream (-1 before the first); a pipeline's other compute ops go
  // through set_last_compute so TP ops issued next wait on the right one.
  int last_compute() const;
  void set_last_compute(int op);
  // The next compute op also waits on these (a received activation, a gathered bucket).
  void wait_before_next_compute(std::vector<int> ops);
  // Side-stream ops whose output the layer's successor consumes (the last reduce-scatter).
  std::vector<int> take_pending_outputs();

 private:
  std::unique_ptr<class layer_planner> impl_;
};

struct pair_spec {
  gemm_params gemm;
  collective_params coll;
  double producer_us = 0;  // > 0: the collective waits on a producer kernel of this length
};

// A planned collective with the case's NCCL settings (knobs.nccl, knobs.nccl_algorithm;
// docs/ARCHITECTURE.md §5.5). The CTA policy zero stays only where copy engines can run it (an
// all-gather inside one NVLink domain); elsewhere NCCL's SM kernels keep the default policy.
collective_params with_nccl_knobs(collective_params c, const plan_knobs& knobs);

// One GEMM (compute stream) and one collective (comm stream), independent, in knobs.order.
schedule plan_pair(const pair_spec& p, const gpu_spec& gpu, const plan_knobs& knobs);

// The collective alone on the comm stream (coll subcommand).
schedule plan_collective(const collective_params& c);

}  // namespace ob
