#pragma once
// Stage 3 for a training step (docs/ARCHITECTURE.md §9): one representative rank per pipeline
// stage, each with its whole step in host enqueue order, and the p2p transfers between stages.
// Inside: the layer plan with its TP overlap methods for every layer of every micro-batch,
// ring attention for CP, the pipeline schedule with its p2p calls, DP gradient buckets and the
// parameter all-gather, the embedding, the output layer and the loss, recomputation, and the
// optimizer step.
#include <vector>

#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "model/model_spec.hpp"
#include "model/overlap_cfg.hpp"
#include "model/program.hpp"
#include "plan/plan.hpp"
#include "spec/step_config.hpp"

namespace ob {

struct step_inputs {
  const model_spec& model;  // with the step's seq, dtype and layers applied
  const gpu_spec& gpu;
  const cluster_spec& cluster;
  const step_config& cfg;              // checked (check_step)
  const slot_overlap_map& tp_methods;  // per GEMM slot; empty without TP overlap
  const plan_knobs& knobs;             // the layer knobs (order, margins, CTAs, priority)
};

// Where each stage's work sits, for the breakdown of the step time.
struct step_stage_info {
  int first_op = 0;  // the first op of the backward of the last micro-batch (for DP tails)
};

struct step_plan {
  program prog;
  // DP bucket sizes of stage 0 chunk 0 (elements), for the result's config.
  std::vector<std::int64_t> buckets;
  std::int64_t params_per_rank_stage0 = 0;
};

// The type of Megatron's main_grad buffers, where the weight-gradient GEMMs accumulate (Megatron-
// Core's DDP: fp32 with grad_reduce_in_fp32, else the parameters' type: fp16 for an fp16 model,
// bf16 otherwise, fp8 GEMMs included).
dtype main_grad_type(const step_inputs& in);

// The step's program. Throws config_error for layouts the planner cannot build (the caller
// should have run check_step).
step_plan plan_step(const step_inputs& in);

// The transformer layers of each of `stage`'s chunks: the pipeline layout's t's when one is given
// (docs/MOE.md §14.2), else pp x vp even chunks, or, when the layers do not divide, the embedding
// and the loss counted as a layer each in the first and the last virtual stage (Megatron's
// account_for_embedding/loss_in_pipeline_split).
std::vector<int> stage_chunk_layers(const step_config& cfg, int stage);

// Gradient bucket sizes (elements) for a chunk's parameters taken in reverse registration order
// (the order backprop finishes them): a bucket closes once it reaches `bucket_size`; 0 means one
// bucket for everything (docs/BRIDGE_RULES.md §10).
std::vector<int> bucket_layers(const std::vector<std::int64_t>& layer_params,
                               std::int64_t bucket_size);

}  // namespace ob
