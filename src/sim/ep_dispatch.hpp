#pragma once
// The EP dispatchers' own protocols (docs/MOE.md §7): DeepEP's normal kernels (NVLink inside the
// NVLink domain; across domains each token crosses RDMA once per target domain, then NVLink
// forwards it to its ranks), DeepEP's low-latency kernels (pure RDMA, one copy per expert) and
// HybridEP (TMA copies from few SMs, the normal kernels' routes). Each holds its SMs for the
// whole call; the dispatch moves fp8 (with its 1-in-128 fp32 scales) or bf16, the combine bf16.
#include <cstdint>

#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

namespace ob::sim {

struct ep_cost {
  int sms = 1;
  double token_copies = 0;  // copies this rank sends to other ranks
  double nvlink_bytes = 0;  // of them, on NVLink (the hottest rank's share when imbalanced)
  double rdma_bytes = 0;    // on the NICs
  double recv_bytes = 0;    // what a rank receives, its own copies included (DeepEP's measure)
  double fixed_us = 0;
  double move_us = 0;  // the SMs' work, NVLink's and the NICs', whichever is longest
  double est_us() const { return fixed_us + move_us; }
};

// Expected distinct targets (ranks, or NVLink domains) among `targets` a token reaches when its
// top-k experts of `experts` are drawn uniformly without replacement, each target holding
// experts / targets of them.
double distinct_targets(int experts, int topk, int targets);
// Bytes of one token row on the wire: bf16, or fp8 with one fp32 scale per 128 values.
double ep_row_bytes(dtype type, std::int64_t hidden);
// The constants of c.ep.backend on `gpu`; nullptr where its GPU file has none.
const ep_dispatch_constants* ep_constants(const collective_params& c, const gpu_spec& gpu);
// One dispatch or combine alone on the GPU (c.ep set; c.ctas = SMs, 0 = the backend's default).
// A config_error where the constants are missing or the exchange cannot be run as asked.
ep_cost plan_ep_exchange(const collective_params& c, const gpu_spec& gpu, const cluster_spec& net);

}  // namespace ob::sim
