#include "sim/kernel_model.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "base/error.hpp"
#include "base/rates.hpp"
#include "model/collective_traits.hpp"
#include "model/nccl_config.hpp"
#include "sim/ep_dispatch.hpp"
#include "sim/gemm_model.hpp"
#include "sim/nccl_model.hpp"

namespace ob::sim {

namespace {

// TFLOP/s as the engine's unit, FLOPs per µs (GB/s: base/rates.hpp).
constexpr double flops_per_us_per_tflops = 1e6;

kernel_plan plan_gemm(const gemm_params& g, const gpu_spec& gpu) {
  kernel_plan p;
  p.is_gemm = true;
  p.launch_us = gpu.launch_us;
  if (g.m <= 0 || g.n <= 0 || g.k <= 0) return p;  // nothing to compute
  p.model = progress_model::tiles;
  p.gemm_contended = true;
  const int target = g.sm_margin > 0 ? std::max(1, gpu.sm_count - g.sm_margin) : gpu.sm_count;
  // The kernel is persistent over `ctas` CTAs (the SM margin caps them), so losing SMs still
  // costs whole waves of units.
  // A grouped GEMM (MoE experts) is one persistent kernel over every member's tiles.
  const gemm_choice c =
      g.group > 1 ? choose_grouped_gemm(
                        std::vector<gemm_params>(static_cast<std::size_t>(g.group), g), gpu, target)
                  : choose_gemm(g, gpu, target);
  p.tiles = c.units;
  p.ctas = c.ctas;
  p.tile_us = c.unit_us;
  p.setup_us = c.setup_us;
  p.hbm_demand = std::min(gpu.hbm_bytes_per_us(), c.hbm_bytes * gpu.gemm_hbm_traffic / c.est_us);
  return p;
}

// A channelised transfer as NCCL would run it (sim/nccl_model.hpp).
void set_channels(kernel_plan& p, const comm_plan& c, double bytes, int sms) {
  p.model = progress_model::channels;
  p.ctas = std::clamp(c.channels, 1, sms);
  p.channel_bytes = bytes / p.ctas;
  p.latency_us = c.latency_us;
  p.bw_factor = c.bw_factor;
  p.inter_node = c.inter_node;
  p.cap_gbps = c.cap_gbps;
}

// A DeepEP or HybridEP exchange (sim/ep_dispatch.hpp): its SMs as channels that move the bytes
// it sends after its fixed cost, at the rate its protocol reaches alone, scaled with NVLink's
// share when other channels move beside it.
void set_ep_exchange(kernel_plan& p, const collective_params& c, const gpu_spec& gpu,
                     const cluster_spec& net) {
  const ep_cost e = plan_ep_exchange(c, gpu, net);
  p.model = progress_model::channels;
  p.ctas = e.sms;
  const double sent = e.nvlink_bytes + e.rdma_bytes;
  p.channel_bytes = sent / p.ctas;
  p.latency_us = e.fixed_us;
  const double alone = std::min(p.ctas * gpu.nccl_channel_gbps, gpu.nvlink_effective_gbps());
  p.bw_factor = e.move_us > 0 ? sent / (e.move_us * bytes_per_us_per_gbps) / alone : 1;
}

// NCCL 2.30's hierarchical zero-SM collectives across NVLink domains (docs/ARCHITECTURE.md
// §5.5): the bytes that leave the domain go through the CPU proxy's RDMA (no SM), the rest
// through the copy engines. The two stages pipeline, so the slower sets the time: returned as
// copy-engine bytes (the NIC part scaled by the copy engines' rate over the GPU's NIC share),
// plus the proxy's post as one network hop of latency at that rate (the engine's copies have no
// latency phase).
double zero_sm_pipelined(double ce_bytes, double nic_bytes, const collective_params& c,
                         const gpu_spec& gpu, const cluster_spec& net) {
  const double nic_gbps = net.node_egress_gbps() / std::max(1, net.gpus_per_node);
  if (nic_gbps <= 0)
    throw config_error("cluster " + net.name + ": no NIC bandwidth for a zero-SM " +
                       std::string(to_string(c.op)));
  return std::max(ce_bytes, nic_bytes * gpu.copy_engine_gbps / nic_gbps) +
         net.net_ring_hop_us_simple * gpu.copy_engine_gbps * bytes_per_us_per_gbps;
}

// The all-gather: each rank's shard crosses to its rail peer in every other domain, then the
// copy engines spread every domain's shards inside the domain. The all-to-all: each rank's
// shards for peers in other domains go over RDMA, those for its own domain through the copy
// engines (nothing is forwarded).
double zero_sm_across_nodes(const collective_params& c, const gpu_spec& gpu,
                            const cluster_spec& net) {
  const double shard = static_cast<double>(c.bytes) / c.group_size;
  const int domains = c.nodes, per_domain = std::max(1, c.group_size / c.nodes);
  if (c.op == coll_op::all_to_all)
    return zero_sm_pipelined(shard * (per_domain - 1), shard * (c.group_size - per_domain), c, gpu,
                             net);
  return zero_sm_pipelined(shard * domains * (per_domain - 1), shard * (domains - 1), c, gpu, net);
}

// NCCL 2.31's per-call cap (ncclCollConfig_t.maxCTAs) bounds the channels like the
// communicator's maxCTAs, for this collective only: costed as the tighter of the two.
collective_params with_call_cap(collective_params c) {
  const int cap = coll_max_ctas_of(c);
  if (cap > 0) c.nccl.max_ctas = c.nccl.max_ctas > 0 ? std::min(c.nccl.max_ctas, cap) : cap;
  return c;
}

kernel_plan plan_collective(const collective_params& c, const gpu_spec& gpu,
                            const cluster_spec& net) {
  kernel_plan p;
  p.is_comm = true;
  p.launch_us = gpu.nccl_launch_us;
  check_collective_nccl(c, &gpu, "collective " + std::string(to_string(c.op)));
  // A group of one has no peer: NCCL returns after the launch without moving anything.
  if (c.group_size <= 1) return p;
  const double bytes = traits_of(c.op).bytes_moved(static_cast<double>(c.bytes), c.group_size);
  if (c.op == coll_op::all_to_all && ep_constants(c, gpu) != nullptr) {
    set_ep_exchange(p, c, gpu, net);
    return p;
  }
  if (c.nccl.policy == cta_policy::zero) {
    // NCCL 2.28's copy-engine AllGather and AlltoAll: no CTA, so no SM taken from a GEMM; the
    // bytes still cross HBM and share the copy engines (the engine's copy_engine model).
    p.model = progress_model::copy_engine;
    p.channel_bytes = c.nodes > 1 ? zero_sm_across_nodes(c, gpu, net) : bytes;
    return p;
  }
  set_channels(p, plan_nccl_collective(with_call_cap(c), gpu, net), bytes, gpu.sm_count);
  return p;
}

kernel_plan plan_p2p(const p2p_params& x, const gpu_spec& gpu, const cluster_spec& net) {
  kernel_plan p;
  p.is_comm = true;
  if (x.ctas > 0) {
    p.launch_us = gpu.nccl_launch_us;
    if (x.group_size <= 1) return p;
    set_channels(p, plan_nccl_p2p(x, gpu, net), static_cast<double>(x.bytes), gpu.sm_count);
    return p;
  }
  // Copy-engine path (TE userbuffers use_ce): a memcpy call, not an NCCL call.
  p.launch_us = gpu.launch_us;
  if (x.group_size <= 1 || x.bytes == 0) return p;
  p.model = progress_model::copy_engine;
  p.channel_bytes = static_cast<double>(x.bytes);
  return p;
}

kernel_plan plan_elementwise(const elementwise_params& e, const gpu_spec& gpu) {
  kernel_plan p;
  p.launch_us = gpu.launch_us;
  p.model = progress_model::tiles;
  const int ctas = std::max(1, gpu.sm_count - std::max(0, e.sm_margin));
  const double mem_us = static_cast<double>(e.bytes) /
                        (gpu.hbm_gbps * gpu.elementwise_hbm_efficiency * bytes_per_us_per_gbps);
  // Elementwise FLOPs (the attention core) run on tensor cores: batched GEMMs at the GEMM's
  // bf16 efficiency, a fused flash-attention kernel at its own (less with attention dropout).
  const double flop_us = e.flops / (gpu.peak_tflops(dtype::bf16) * flops_per_us_per_tflops *
                                    gpu.math_efficiency(e.math, e.dropout));
  const double full_us = std::max(mem_us, flop_us);  // with every one of its CTAs resident
  p.ctas = ctas;
  if (e.persistent) {
    // Rows are assigned statically: each CTA owns 1/ctas of the work, so a CTA that gets its
    // SM late finishes late and the kernel with it.
    p.tiles = ctas;
    p.tile_us = full_us;
    p.dynamic_tiles = false;
  } else {
    p.persistent = false;
    p.tiles = static_cast<std::int64_t>(ctas) * elementwise_blocks_per_cta;
    p.tile_us = full_us / elementwise_blocks_per_cta;
  }
  return p;
}

kernel_plan plan_delay(const delay_params& d, const gpu_spec& gpu) {
  kernel_plan p;
  p.launch_us = gpu.launch_us;
  const double us = std::max(0.0, d.us);
  if (d.ctas <= 0) {
    p.model = progress_model::fixed;
    p.fixed_us = us;
    p.fixed_hbm = std::max(0.0, d.hbm_gbps) * bytes_per_us_per_gbps;
    return p;
  }
  // More CTAs than SMs run in waves: resident CTAs pick up the remaining ones.
  p.model = progress_model::tiles;
  p.persistent = false;
  p.tiles = d.ctas;
  p.ctas = std::min(d.ctas, gpu.sm_count);
  p.tile_us = us;
  return p;
}

// The copy and the host's return from its wait (docs/ARCHITECTURE.md §5.1, item 12): no SM, a
// fixed time; a few bytes of counts never make the copy engine's rate matter.
kernel_plan plan_host_sync(const host_sync_params& h, const gpu_spec& gpu) {
  kernel_plan p;
  p.launch_us = gpu.launch_us;
  p.model = progress_model::fixed;
  p.fixed_us = gpu.host_sync_us;
  if (gpu.copy_engine_gbps > 0)
    p.fixed_us += static_cast<double>(h.bytes) / (gpu.copy_engine_gbps * bytes_per_us_per_gbps);
  return p;
}

}  // namespace

kernel_plan plan_kernel(const op& o, const gpu_spec& gpu, const cluster_spec& net) {
  return std::visit(
      [&gpu, &net](const auto& x) -> kernel_plan {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, gemm_params>) return plan_gemm(x, gpu);
        if constexpr (std::is_same_v<T, collective_params>) return plan_collective(x, gpu, net);
        if constexpr (std::is_same_v<T, p2p_params>) return plan_p2p(x, gpu, net);
        if constexpr (std::is_same_v<T, elementwise_params>) return plan_elementwise(x, gpu);
        if constexpr (std::is_same_v<T, delay_params>) return plan_delay(x, gpu);
        if constexpr (std::is_same_v<T, host_sync_params>) return plan_host_sync(x, gpu);
      },
      o.params);
}

}  // namespace ob::sim
