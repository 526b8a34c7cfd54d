#pragma once
// One MoE layer's routed work on the busiest expert-parallel rank (docs/MOE.md §4): how many
// token copies its experts compute, how many bytes its dispatch all-to-all moves, and the
// grouped GEMMs of its local experts. The hottest rank sets the pace: every EP rank waits for it
// at the combine.
#include <cstdint>
#include <string>
#include <vector>

#include "model/ir.hpp"
#include "model/model_spec.hpp"

namespace ob {

struct moe_rank_load {
  int local_experts = 0;             // experts / ep
  std::int64_t tokens_routed = 0;    // token copies a rank sends to the experts: tokens x topk
  std::int64_t tokens_received = 0;  // token copies the busiest rank computes: imbalance x mean
  std::vector<std::int64_t> tokens_per_expert;  // the busiest rank's local experts
  // The dispatch all-to-all in nccl-tests' size convention (one rank's buffer, hidden wide in
  // `type`), sized by the busiest receiver: under imbalance NCCL's alltoallv ends when it has.
  std::uint64_t dispatch_bytes = 0;
};

// `tokens`: the tokens one rank routes (its sequence share); `imbalance`: the busiest rank's
// load relative to the mean, 1.0 force-balanced (Megatron-Bridge's performance runs) up to ep
// (every token on one rank); outside that range a config_error naming `field` (exit 2).
// `capacity`: Megatron's moe_expert_capacity_factor, 0 dropless (kept_load).
moe_rank_load busiest_rank_load(const model_spec& m, std::int64_t tokens, int ep, double imbalance,
                                dtype type, const std::string& field, double capacity = 0);

// moe_expert_capacity_factor F: each expert keeps at most F times its balanced share of every
// source rank's copies and drops the rest (token drop), so the busiest rank computes and receives
// min(imbalance, F) times the mean; F = 0 is dropless (docs/MOE.md §9).
double kept_load(double imbalance, double capacity);
// The share of the busiest rank's routed copies the capacity drops: 1 - kept / imbalance.
double dropped_fraction(double imbalance, double capacity);

// The dtype of the router's gating GEMM: Megatron-Core computes it with a plain matmul in the
// layer input's dtype (moe_router_dtype unset), outside Transformer Engine's fp8 autocast, so a
// low-precision recipe's router runs in bf16 (docs/MOE.md §19.4). moe_router_dtype fp32 is not
// modelled.
dtype router_gemm_type(dtype model_type);

// The expert GEMMs of one pass on the busiest rank, one member per local expert with its tokens
// as m (fc1: [tokens, hidden] x [hidden, fc1 width / etp]; fc2: [tokens, ffn / etp] x
// [ffn / etp, hidden]; gated experts' fc1 is twice the FFN wide).
enum class expert_gemm { fc1_fprop, fc2_fprop, fc2_dgrad, fc1_dgrad, fc2_wgrad, fc1_wgrad };
std::vector<gemm_params> expert_gemms(const model_spec& m, const moe_rank_load& load, int etp,
                                      expert_gemm which, dtype type);

}  // namespace ob
