#include "sim/kernel_model.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <variant>

#include "core/collective_traits.hpp"
#include "sim/network_model.hpp"

namespace ob::sim {

namespace {

// GB/s and TFLOP/s as the engine's units: bytes per µs and FLOPs per µs.
constexpr double bytes_per_us_per_gbps = 1e3;
constexpr double flops_per_us_per_tflops = 1e6;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

kernel_plan plan_gemm(const gemm_params& g, const gpu_spec& gpu) {
  kernel_plan p;
  p.is_gemm = true;
  p.launch_us = gpu.launch_us;
  if (g.m <= 0 || g.n <= 0 || g.k <= 0) return p;  // nothing to compute
  const int sms = gpu.sm_count;
  p.model = progress_model::tiles;
  p.gemm_contended = true;
  const int target = g.sm_target > 0 ? std::min(g.sm_target, sms) : sms;
  const double per_sm_flops_per_us =
      gpu.peak_tflops(g.type) * flops_per_us_per_tflops / sms * gpu.gemm_efficiency(g.type);
  // cuBLAS's heuristics pick a kernel per shape; a fixed tile would make skinny chunks (pipeline
  // and ring-exchange splits) quantize far worse than they do. Choose, among the GPU's tile, its
  // transpose and a half-width tile (slower per FLOP), the one with the fewest estimated µs.
  struct candidate {
    int tm, tn;
    double efficiency;
  };
  const candidate candidates[] = {
      {gpu.gemm_tile_m, gpu.gemm_tile_n, 1.0},
      {gpu.gemm_tile_n, gpu.gemm_tile_m, 1.0},
      {gpu.gemm_tile_m, std::max(1, gpu.gemm_tile_n / 2), gpu.small_tile_efficiency}};
  double best_us = 0;
  for (const candidate& c : candidates) {
    const std::int64_t tiles = ceil_div(g.m, c.tm) * ceil_div(g.n, c.tn);
    const int ctas = static_cast<int>(std::min<std::int64_t>(tiles, target));
    // Edge tiles cost a full tile: the hardware computes the padded tile anyway, which is what
    // makes small or ragged GEMMs quantize.
    const double tile_us =
        2.0 * c.tm * c.tn * static_cast<double>(g.k) / (per_sm_flops_per_us * c.efficiency);
    const double est = static_cast<double>(ceil_div(tiles, ctas)) * tile_us;
    if (best_us == 0 || est < best_us) {
      best_us = est;
      p.tiles = tiles;
      p.ctas = ctas;
      p.tile_us = tile_us;
    }
  }
  return p;
}

// A channelised transfer: `ctas` channels share `bytes`, each paying `latency_us` first.
void set_channels(kernel_plan& p, int ctas, double bytes, double latency_us, int sms) {
  p.model = progress_model::channels;
  p.ctas = std::clamp(ctas, 1, sms);
  p.channel_bytes = bytes / p.ctas;
  p.latency_us = latency_us;
}

kernel_plan plan_collective(const collective_params& c, const gpu_spec& gpu,
                            const cluster_spec& net) {
  kernel_plan p;
  p.is_comm = true;
  p.launch_us = gpu.nccl_launch_us;
  // A group of one has no peer: NCCL returns after the launch without moving anything.
  if (c.group_size <= 1) return p;
  const int ctas = c.ctas > 0 ? c.ctas : gpu.default_ctas(c.op);
  const double bytes = traits_of(c.op).bytes_moved(static_cast<double>(c.bytes), c.group_size);
  if (c.nodes <= 1) {
    set_channels(p, ctas, bytes, collective_latency_us(c, gpu), gpu.sm_count);
    return p;
  }
  const network_cost cost = inter_node_collective(c, gpu, net);
  set_channels(p, ctas, bytes, cost.latency_us, gpu.sm_count);
  p.inter_node = true;
  p.cap_gbps = cost.cap_gbps;
  return p;
}

kernel_plan plan_p2p(const p2p_params& x, const gpu_spec& gpu, const cluster_spec& net) {
  kernel_plan p;
  p.is_comm = true;
  if (x.ctas > 0) {
    p.launch_us = gpu.nccl_launch_us;
    if (x.group_size <= 1) return p;
    if (x.nodes > 1) {
      const network_cost cost = inter_node_p2p(x, gpu, net);
      set_channels(p, x.ctas, static_cast<double>(x.bytes), cost.latency_us, gpu.sm_count);
      p.inter_node = true;
      p.cap_gbps = cost.cap_gbps;
      return p;
    }
    // One send/recv step: the peer exchange pays one protocol step of latency.
    set_channels(p, x.ctas, static_cast<double>(x.bytes), gpu.nccl_step_us_simple, gpu.sm_count);
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
  // Elementwise FLOPs (attention core) run on tensor cores at the GEMM's bf16 efficiency.
  const double flop_us = e.flops / (gpu.peak_tflops(dtype::bf16) * flops_per_us_per_tflops *
                                    gpu.gemm_efficiency(dtype::bf16));
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

}  // namespace

double collective_latency_us(const collective_params& c, const gpu_spec& gpu) {
  const int steps = traits_of(c.op).ring_steps(c.group_size);
  if (steps == 0) return 0;
  // NCCL's tuning tables give a per-protocol base latency for the whole ring plus a small
  // per-hop cost; charging the base on every step would make an 8-rank all-reduce cost 165 µs
  // where NCCL measures 6-13 µs. Small messages run LL, large ones Simple.
  const double per_rank = static_cast<double>(c.bytes) / c.group_size;
  const double base =
      per_rank <= gpu.nccl_ll_max_bytes_per_rank ? gpu.nccl_step_us_ll : gpu.nccl_step_us_simple;
  return base + (steps - 1) * gpu.nccl_hop_us;
}

kernel_plan plan_kernel(const op& o, const gpu_spec& gpu, const cluster_spec& net) {
  return std::visit(
      [&gpu, &net](const auto& x) -> kernel_plan {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, gemm_params>) return plan_gemm(x, gpu);
        if constexpr (std::is_same_v<T, collective_params>) return plan_collective(x, gpu, net);
        if constexpr (std::is_same_v<T, p2p_params>) return plan_p2p(x, gpu, net);
        if constexpr (std::is_same_v<T, elementwise_params>) return plan_elementwise(x, gpu);
        if constexpr (std::is_same_v<T, delay_params>) return plan_delay(x, gpu);
      },
      o.params);
}

}  // namespace ob::sim
