#include "model/moe_layer.hpp"

#include <algorithm>
#include <utility>

#include "base/error.hpp"

namespace ob {

double kept_load(double imbalance, double capacity) {
  return capacity > 0 ? std::min(imbalance, capacity) : imbalance;
}

double dropped_fraction(double imbalance, double capacity) {
  return 1 - kept_load(imbalance, capacity) / imbalance;
}

dtype router_gemm_type(dtype model_type) {
  const bool quantized =
      model_type == dtype::fp8 || model_type == dtype::mxfp8 || model_type == dtype::nvfp4;
  return quantized ? dtype::bf16 : model_type;
}

moe_rank_load busiest_rank_load(const model_spec& m, std::int64_t tokens, int ep, double imbalance,
                                dtype type, const std::string& field, double capacity) {
  if (!(imbalance >= 1.0) || imbalance > ep)
    throw config_error(field + ": expected the busiest rank's load relative to the mean, from 1 " +
                       "(balanced) to ep = " + std::to_string(ep) + ", got " +
                       std::to_string(imbalance));
  moe_rank_load l;
  l.local_experts = static_cast<int>(m.moe.experts / ep);
  l.tokens_routed = tokens * m.moe.topk;
  // Dropless, every copy is computed (the mean rank receives as many as it sends); with a
  // capacity factor the copies beyond it are dropped before the dispatch.
  l.tokens_received = static_cast<std::int64_t>(static_cast<double>(l.tokens_routed) *
                                                kept_load(imbalance, capacity));
  const std::int64_t per = l.tokens_received / l.local_experts;
  const std::int64_t extra = l.tokens_received % l.local_experts;
  for (int e = 0; e < l.local_experts; ++e)
    l.tokens_per_expert.push_back(per + (e < extra ? 1 : 0));
  l.dispatch_bytes = static_cast<std::uint64_t>(l.tokens_received * m.hidden) * dtype_bytes(type);
  return l;
}

namespace {

// {n, k} of a forward or data-gradient GEMM (m: the tokens); for a weight gradient {m, n}, the
// weight's shape (k: the tokens).
std::pair<std::int64_t, std::int64_t> expert_dims(expert_gemm which, std::int64_t h, std::int64_t f,
                                                  std::int64_t f1) {
  switch (which) {
    case expert_gemm::fc1_fprop:
    case expert_gemm::fc1_wgrad:
      return {f1, h};
    case expert_gemm::fc2_fprop:
      return {h, f};
    case expert_gemm::fc2_dgrad:
    case expert_gemm::fc2_wgrad:
      return {f, h};
    case expert_gemm::fc1_dgrad:
      return {h, f1};
  }
  return {0, 0};
}

}  // namespace

std::vector<gemm_params> expert_gemms(const model_spec& m, const moe_rank_load& load, int etp,
                                      expert_gemm which, dtype type) {
  const std::int64_t f = m.moe.ffn_hidden / etp;
  const auto [a, b] = expert_dims(which, m.hidden, f, m.gated_mlp ? 2 * f : f);
  const bool wgrad = which == expert_gemm::fc1_wgrad || which == expert_gemm::fc2_wgrad;
  std::vector<gemm_params> out;
  for (std::int64_t t : load.tokens_per_expert)
    out.push_back(wgrad ? gemm_params{a, b, t, type, 0} : gemm_params{t, a, b, type, 0});
  return out;
}

}  // namespace ob
