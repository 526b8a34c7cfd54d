#include "sim/ep_dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.hpp"
#include "base/rates.hpp"

namespace ob::sim {

namespace {

// DeepEP and HybridEP send fp8 with one fp32 scale per 128 values (their tests count
// (1 + 4 / 128) / 2 of the bf16 bytes).
constexpr double fp8_scale_block = 128;
constexpr double fp8_scale_bytes = 4;

bool is_fp8(dtype t) { return t == dtype::fp8 || t == dtype::mxfp8; }

// NIC bandwidth one GPU has, per direction, as the cluster file gives it.
double nic_gbps_per_gpu(const cluster_spec& net) {
  return net.node_egress_gbps() / std::max(1, net.gpus_per_node);
}

// Token copies and bytes one rank sends; the hottest receiver scales the links' share.
void route(ep_cost& e, const collective_params& c, double row) {
  const ep_exchange& x = c.ep;
  const int ranks = c.group_size, domains = std::max(1, c.nodes);
  const auto tokens = static_cast<double>(x.tokens);
  if (x.backend == ep_backend::deepep_low_latency) {
    // One copy per selected expert, all of them over RDMA (docs/MOE.md §7).
    e.token_copies = tokens * x.topk * (ranks - 1) / ranks;
    e.rdma_bytes = e.token_copies * row * x.imbalance;
    e.recv_bytes = tokens * x.topk * row;
    return;
  }
  const double per_rank = distinct_targets(x.experts, x.topk, ranks);
  e.recv_bytes = tokens * per_rank * row;
  const int domain_ranks = std::max(1, ranks / domains);
  e.token_copies = tokens * per_rank * (ranks - 1) / ranks;
  if (domains == 1) {
    e.nvlink_bytes = e.token_copies * row * x.imbalance;
    return;
  }
  // Once per target domain over RDMA, then NVLink fans it out to that domain's ranks.
  const double per_domain = distinct_targets(x.experts, x.topk, domains);
  e.rdma_bytes = tokens * per_domain * (domains - 1) / domains * row * x.imbalance;
  e.nvlink_bytes = tokens * per_rank * (domain_ranks - 1) / domain_ranks * row * x.imbalance;
}

}  // namespace

double distinct_targets(int experts, int topk, int targets) {
  if (targets <= 1) return 1;
  const int others = experts - experts / targets;
  // P(no expert on a given target) = C(others, k) / C(experts, k).
  double miss = 1;
  for (int i = 0; i < topk; ++i)
    miss *= std::max(0.0, static_cast<double>(others - i)) / static_cast<double>(experts - i);
  return targets * (1 - miss);
}

double ep_row_bytes(dtype type, std::int64_t hidden) {
  const auto h = static_cast<double>(hidden);
  if (is_fp8(type)) return h * (1 + fp8_scale_bytes / fp8_scale_block);
  return h * static_cast<double>(dtype_bytes(dtype::bf16));
}

const ep_dispatch_constants* ep_constants(const collective_params& c, const gpu_spec& gpu) {
  const ep_dispatch_constants* k = nullptr;
  switch (c.ep.backend) {
    case ep_backend::deepep:
      k = &gpu.deepep;
      break;
    case ep_backend::deepep_low_latency:
      k = &gpu.deepep_low_latency;
      break;
    case ep_backend::hybridep:
      k = &gpu.hybridep;
      break;
    case ep_backend::nccl:
      return nullptr;
  }
  return k->known() ? k : nullptr;
}

ep_cost plan_ep_exchange(const collective_params& c, const gpu_spec& gpu, const cluster_spec& net) {
  const ep_dispatch_constants* k = ep_constants(c, gpu);
  if (k == nullptr)
    throw config_error("configs/gpus/" + gpu.name +
                       ".json: no sim.ep_dispatch constants for this dispatcher");
  const ep_exchange& x = c.ep;
  if (x.tokens <= 0 || x.hidden <= 0 || x.topk < 1 || x.experts < x.topk ||
      x.experts % std::max(1, c.group_size) != 0)
    throw config_error(
        "EP exchange: tokens and hidden must be positive, topk at most experts, "
        "and experts a multiple of the EP group (" +
        std::to_string(x.experts) + " experts, " + std::to_string(c.group_size) + " ranks)");
  ep_cost e;
  e.sms = std::clamp(c.ctas > 0 ? c.ctas : k->default_sms, 1, gpu.sm_count);
  const double row = ep_row_bytes(x.combine ? dtype::bf16 : c.type, x.hidden);
  route(e, c, row);
  e.fixed_us = x.combine ? k->combine_us : k->dispatch_us;
  const double token_us = x.combine ? k->combine_token_sm_us : k->token_sm_us;
  const double sent = e.nvlink_bytes + e.rdma_bytes;
  const double sm_us =
      (e.token_copies * x.imbalance * token_us + sent / (k->sm_gbps * bytes_per_us_per_gbps)) /
      e.sms;
  const double nvlink_us = e.nvlink_bytes / (gpu.nvlink_effective_gbps() * bytes_per_us_per_gbps);
  double rdma_us = 0;
  if (e.rdma_bytes > 0) {
    const double nic = nic_gbps_per_gpu(net);
    if (nic <= 0)
      throw config_error("cluster " + net.name + ": no NIC bandwidth for an exchange over RDMA");
    rdma_us = e.rdma_bytes / (nic * bytes_per_us_per_gbps);
  }
  e.move_us = std::max({sm_us, nvlink_us, rdma_us});
  return e;
}

}  // namespace ob::sim
