#include "sim/nccl_model.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.hpp"
#include "base/rates.hpp"
#include "model/collective_traits.hpp"
#include "sim/network_model.hpp"

namespace ob::sim {

namespace {

constexpr nccl_protocol protocols[] = {nccl_protocol::ll, nccl_protocol::ll128,
                                       nccl_protocol::simple};

// NCCL's LL128 channel runs 640 threads where LL and Simple run the GPU file's nccl_threads (512);
// the channel rule counts them (docs/CALIBRATION.md §2.6).
constexpr int ll128_threads = 640;

// NCCL's p2p schedule inside one NVLink domain (docs/CALIBRATION.md §2.11): Simple's step is
// NCCL_P2P_NVL_CHUNKSIZE; a peer's part is at least an eighth of it and grows to 32 of it before
// NCCL doubles the peer's channels; LL runs a peer whose bytes fit its channels x
// NCCL_P2P_LL_THRESHOLD.
constexpr double p2p_nvl_chunk_bytes = 512.0 * 1024;
constexpr double p2p_min_part_bytes = p2p_nvl_chunk_bytes / 8;
constexpr double p2p_max_part_bytes = p2p_nvl_chunk_bytes * 32;
constexpr double p2p_ll_threshold_bytes = 16384;

// Bus rate of `channels` channels on NVLink, before a protocol's or algorithm's factor.
double nvlink_rate_gbps(int channels, const gpu_spec& gpu) {
  return std::min(channels * gpu.nccl_channel_gbps, gpu.nvlink_effective_gbps());
}

// Fills in the pipeline fill and the estimate once channels, latency and rates are known: each
// channel runs at 1 / (1 + fill) of its rate for its first nccl_fill_bytes.
void finish_estimate(comm_plan& p, double bus_bytes, const gpu_spec& gpu) {
  double rate = nvlink_rate_gbps(p.channels, gpu) * p.bw_factor;
  if (p.inter_node) rate = std::min(rate, p.cap_gbps);
  const double per_channel = bus_bytes / p.channels;
  p.latency_us += gpu.nccl_fill_fraction * std::min(per_channel, gpu.nccl_fill_bytes) * p.channels /
                  (rate * bytes_per_us_per_gbps);
  p.est_us = p.latency_us + bus_bytes / (rate * bytes_per_us_per_gbps);
}

// A plan inside one NVLink domain: `proto` on `channels` channels, with the ring's per-step
// latency over `ranks` ranks.
comm_plan intra_domain(const collective_params& c, nccl_protocol proto, int channels, int ranks,
                       const gpu_spec& gpu) {
  const nccl_protocol_constants& k = gpu.proto(proto);
  comm_plan p;
  p.protocol = proto;
  p.channels = channels;
  p.latency_us = k.base_us + (traits_of(c.op).ring_steps(ranks) - 1) * k.hop_us;
  p.bw_factor = k.bw_fraction;
  return p;
}

comm_plan ring_intra(const collective_params& c, nccl_protocol proto, int max_ch,
                     const gpu_spec& gpu) {
  const int channels =
      nccl_channels_for(static_cast<double>(c.bytes), c.group_size, max_ch, proto, true, gpu);
  return intra_domain(c, proto, channels, c.group_size, gpu);
}

// NCCL's all-to-all inside one NVLink domain: grouped send/recv to every peer at once, each
// peer's shard split over its channels (nccl_p2p_split), all parts over the p2p channels; the
// ring's per-step latency stands for the peers' rounds.
comm_plan all_to_all_intra(const collective_params& c, int max_ch, const gpu_spec& gpu) {
  const int n = std::max(c.group_size, 1);
  const p2p_split split = nccl_p2p_split(static_cast<double>(c.bytes) / n, n, max_ch);
  return intra_domain(c, split.protocol, split.channels, n, gpu);
}

comm_plan nvls(int max_ch, const gpu_spec& gpu) {
  comm_plan p;
  p.algorithm = nccl_algorithm::nvls;
  p.channels = std::max(1, max_ch);
  p.latency_us = gpu.nvls_latency_us;
  p.bw_factor = gpu.nvls_bw_factor;
  return p;
}

comm_plan across_nodes(const collective_params& c, nccl_protocol proto, bool tree, int max_ch,
                       const gpu_spec& gpu, const cluster_spec& net) {
  const network_cost cost = inter_node_collective(c, proto, tree, gpu, net);
  comm_plan p;
  p.algorithm = tree ? nccl_algorithm::tree : nccl_algorithm::ring;
  p.protocol = proto;
  p.channels =
      nccl_channels_for(static_cast<double>(c.bytes), c.group_size, max_ch, proto, !tree, gpu);
  p.latency_us = cost.latency_us;
  p.bw_factor = gpu.proto(proto).bw_fraction;
  p.inter_node = true;
  p.cap_gbps = cost.cap_gbps;
  return p;
}

// NVLS-tree: NVLink SHARP reduces inside each domain, NCCL's tree crosses the domains; the tree's
// network cost, the NVLS fixed latency in place of the NVLink protocol base.
comm_plan nvls_tree(const collective_params& c, int max_ch, const gpu_spec& gpu,
                    const cluster_spec& net) {
  comm_plan p = across_nodes(c, nccl_protocol::simple, true, max_ch, gpu, net);
  p.algorithm = nccl_algorithm::nvls_tree;
  p.latency_us += gpu.nvls_latency_us - gpu.proto(nccl_protocol::simple).base_us;
  return p;
}

[[noreturn]] void bad_algorithm(const collective_params& c, const gpu_spec& gpu,
                                const std::string& why) {
  throw config_error("algorithm '" + c.algorithm + "' for " +
                     std::string(traits_of(c.op).nccl_call) + " on " + gpu.display_name + ": " +
                     why);
}

// Which algorithms the hint allows; validates it.
struct allowed {
  bool ring = true, nvls = true, tree = true, nvls_tree = false;
};
// NVLS needs NVLink SHARP (an NVSwitch with it: not A100's) and an all-reduce.
void require_nvls(const collective_params& c, const gpu_spec& gpu) {
  if (!gpu.has_nvls())
    bad_algorithm(
        c, gpu, "no NVLink SHARP on this GPU (configs/gpus/" + gpu.name + ".json has no sim.nvls)");
  if (c.op != coll_op::all_reduce) bad_algorithm(c, gpu, "NVLS runs all-reduces only");
}
allowed allowed_by(const collective_params& c, const gpu_spec& gpu) {
  const std::string& a = c.algorithm;
  const collective_sim_hooks& hooks = traits_of(c.op).sim;
  const bool can_nvls = hooks.nvls && gpu.has_nvls() && c.nodes <= 1;
  const bool can_tree = hooks.tree && c.nodes > 1;
  if (a.empty() || a == "auto") return {true, can_nvls, can_tree};
  if (a == "ring") return {true, false, false};
  if (a == "nvls") {
    require_nvls(c, gpu);
    if (!can_nvls)
      bad_algorithm(c, gpu, "NVLS runs inside one NVLink domain (nvls_tree crosses domains)");
    return {false, true, false};
  }
  if (a == "nvls_tree") {
    require_nvls(c, gpu);
    if (c.nodes <= 1) bad_algorithm(c, gpu, "NVLS-tree crosses NVLink domains (nvls inside one)");
    return {false, false, false, true};
  }
  if (a == "tree") {
    if (!can_tree) bad_algorithm(c, gpu, "the model's tree runs all-reduces across nodes only");
    return {false, false, true};
  }
  bad_algorithm(c, gpu, "expected auto, ring, nvls, tree or nvls_tree");
}

// The channels NCCL may use: the op's CTAs (or the GPU's default), within the communicator's
// minCTAs/maxCTAs; the policy efficiency takes the fewest that still fill NVLink (an assumption
// on what NCCL's CTA policy trades, docs/ARCHITECTURE.md §5.5).
int max_channels(const collective_params& c, const gpu_spec& gpu) {
  int ch = c.ctas > 0 ? c.ctas : gpu.default_ctas(c.op);
  // Across NVLink domains an all-to-all keeps the send/recv default: NCCL's p2p rule over the
  // network (channels per NIC, peers per round) is not modelled (docs/CALIBRATION.md §2.11).
  if (c.ctas <= 0 && c.op == coll_op::all_to_all && c.nodes > 1) ch = gpu.nccl_ctas_p2p;
  if (c.nccl.policy == cta_policy::efficiency)
    ch = std::min(ch,
                  static_cast<int>(std::ceil(gpu.nvlink_effective_gbps() / gpu.nccl_channel_gbps)));
  if (c.nccl.max_ctas > 0) ch = std::min(ch, c.nccl.max_ctas);
  if (c.nccl.min_ctas > 0) ch = std::max(ch, c.nccl.min_ctas);
  return std::max(ch, 1);
}

// Symmetric windows (NCCL 2.27) cut the latency of the NVLink kernels, not of the network.
void apply_symmetric(comm_plan& p, const collective_params& c, const gpu_spec& gpu) {
  if (!c.nccl.symmetric || p.inter_node) return;
  p.latency_us *= gpu.nccl_symmetric_latency_factor;
}

}  // namespace

int nccl_channels_for(double bytes, int ranks, int max_channels, nccl_protocol p, bool ring,
                      const gpu_spec& gpu) {
  const int threads = p == nccl_protocol::ll128 ? ll128_threads : gpu.nccl_threads;
  const int per_rank = ring && p == nccl_protocol::ll ? ranks : 1;
  const double per_channel = static_cast<double>(threads) * gpu.proto(p).thread_bytes * per_rank;
  const double fit = std::floor(bytes / per_channel);
  return static_cast<int>(std::clamp(fit, 1.0, static_cast<double>(std::max(1, max_channels))));
}

p2p_split nccl_p2p_split(double peer_bytes, int ranks, int p2p_channels) {
  const int total = std::max(1, p2p_channels);
  const int parts = std::max(1, ranks);
  // On an NVSwitch a peer may use min(p2p channels, 2 x NVLinks rounded up to a power of two):
  // every GPU file's 18 or 12 links give at least the p2p channels.
  const int per_peer_max = total;
  // NCCL's aim: every peer on its own channels, one part per channel.
  int per_op = per_peer_max;
  while (per_op * parts > total && per_op > 1) per_op /= 2;
  p2p_split s;
  if (peer_bytes <= 0) return s;
  s.per_peer = std::max(
      1, static_cast<int>(std::min<double>(per_op, std::ceil(peer_bytes / p2p_min_part_bytes))));
  double part = std::max(p2p_min_part_bytes, std::ceil(peer_bytes / s.per_peer));
  while (part > p2p_max_part_bytes && s.per_peer <= per_peer_max / 2) {
    s.per_peer *= 2;
    part = std::ceil(peer_bytes / s.per_peer);
  }
  s.channels = std::min(total, parts * s.per_peer);
  if (peer_bytes <= s.per_peer * p2p_ll_threshold_bytes) s.protocol = nccl_protocol::ll;
  return s;
}

const char* to_string(nccl_algorithm a) {
  switch (a) {
    case nccl_algorithm::ring:
      return "ring";
    case nccl_algorithm::nvls:
      return "nvls";
    case nccl_algorithm::tree:
      return "tree";
    case nccl_algorithm::nvls_tree:
      return "nvls_tree";
  }
  return "ring";
}

comm_plan plan_nccl_collective(const collective_params& c, const gpu_spec& gpu,
                               const cluster_spec& net) {
  const allowed ok = allowed_by(c, gpu);
  const int max_ch = max_channels(c, gpu);
  const double bus = traits_of(c.op).bytes_moved(static_cast<double>(c.bytes), c.group_size);
  comm_plan best;
  auto consider = [&](comm_plan p) {
    if (c.nccl.min_ctas > 0) p.channels = std::max(p.channels, std::min(c.nccl.min_ctas, max_ch));
    apply_symmetric(p, c, gpu);
    finish_estimate(p, bus, gpu);
    if (best.est_us == 0 || p.est_us < best.est_us) best = p;
  };
  // A flex dispatcher without its own protocol constants (DeepEP on Hopper) stays an exchange on
  // the SMs it holds, not NCCL's p2p split.
  if (c.op == coll_op::all_to_all && c.nodes <= 1 && c.ep.backend == ep_backend::nccl) {
    consider(all_to_all_intra(c, max_ch, gpu));
    return best;
  }
  if (ok.nvls) consider(nvls(max_ch, gpu));
  if (ok.nvls_tree) consider(nvls_tree(c, max_ch, gpu, net));
  for (nccl_protocol proto : protocols) {
    if (c.nodes <= 1) {
      if (ok.ring) consider(ring_intra(c, proto, max_ch, gpu));
      continue;
    }
    if (ok.ring) consider(across_nodes(c, proto, false, max_ch, gpu, net));
    if (ok.tree) consider(across_nodes(c, proto, true, max_ch, gpu, net));
  }
  return best;
}

comm_plan plan_nccl_p2p(const p2p_params& x, const gpu_spec& gpu, const cluster_spec& net) {
  const auto bytes = static_cast<double>(x.bytes);
  comm_plan best;
  for (nccl_protocol proto : protocols) {
    comm_plan p;
    p.protocol = proto;
    // One peer exchange: one step of latency; NCCL's p2p channels are what the op asks for.
    p.channels = std::max(1, x.ctas);
    p.bw_factor = gpu.proto(proto).bw_fraction;
    if (x.nodes > 1) {
      const network_cost cost = inter_node_p2p(x, proto, gpu, net);
      p.latency_us = cost.latency_us;
      p.inter_node = true;
      p.cap_gbps = cost.cap_gbps;
    } else {
      p.latency_us = gpu.proto(proto).base_us;
    }
    finish_estimate(p, bytes, gpu);
    if (best.est_us == 0 || p.est_us < best.est_us) best = p;
  }
  return best;
}

}  // namespace ob::sim
