#pragma once
// Where ranks sit and what connects them (docs/ARCHITECTURE.md §5.4): a cluster file
// (configs/clusters/*.json) or flags give the NVLink domain size and the NICs; Megatron's rank
// order (tp fastest, then cp, dp, pp) gives each communication group's span over nodes.
#include <string>

#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

namespace ob {

struct cluster_spec {
  std::string name;  // file stem, or "flags"
  std::string display_name;
  std::string gpu;        // the GPU file its nodes hold
  int gpus_per_node = 8;  // one host: 8 in a DGX, 4 in a GB200/GB300 tray
  // GPUs that share NVLink: gpus_per_node, or a multiple of it with multi-node NVLink (72 in
  // an NVL72 rack). Groups inside it are costed on NVLink (NVLS too), beyond it on the NICs.
  int nvlink_domain = 8;
  int nics_per_node = 8;  // compute-fabric NICs
  double nic_gbps = 0;    // per NIC, per direction
  double nic_efficiency = 1;
  bool rail_optimized = true;
  // The CPU-GPU link one GPU can use for host copies, GB/s per direction, when every GPU of the
  // host copies at once (NVLink-C2C shared by a superchip's two GPUs, or PCIe); 0: unknown.
  double host_link_gbps = 0;
  // The share of host_link_gbps a copy-engine copy reaches, GPU to host (an activation offload)
  // and host to GPU (its reload); 1 where the cluster file gives none (docs/FSDP.md §5.4).
  double host_link_d2h_efficiency = 1, host_link_h2d_efficiency = 1;
  // NCCL's per-step network latency by protocol: ring hops and tree hops (µs).
  double net_ring_hop_us_ll = 0, net_ring_hop_us_ll128 = 0, net_ring_hop_us_simple = 0;
  double net_tree_hop_us_ll = 0, net_tree_hop_us_ll128 = 0, net_tree_hop_us_simple = 0;
  // NCCL's tuning model across nodes (docs/CALIBRATION.md §2.6): the proxy thread's post cost
  // that bounds every step of a ring that crosses nodes (LL, LL128, Simple); LL's bus-bandwidth
  // ceiling over the network on 2 nodes and on more; the ring Simple all-reduce's plateau
  // latency factor; the tree all-reduce's bandwidth factor; the latency of each NVLink hop of
  // the tree's chain inside a node (LL, LL128, Simple: NCCL's tree row, not the ring's); the
  // bandwidth factor of the simple tree pattern NCCL's search settles on from Hopper on.
  double proxy_post_us_ll = 0, proxy_post_us_ll128 = 0, proxy_post_us_simple = 0;
  double ll_max_busbw_gbps_2_nodes = 0, ll_max_busbw_gbps_more = 0;
  double ring_simple_plateau = 1, tree_bw_factor = 1;
  double tree_nvlink_hop_us_ll = 0, tree_nvlink_hop_us_ll128 = 0, tree_nvlink_hop_us_simple = 0;
  double tree_pattern_factor = 1;

  // What one node can send into the fabric, GB/s per direction.
  double node_egress_gbps() const { return nics_per_node * nic_gbps * nic_efficiency; }
};

// A name in configs/clusters/ or a path. Errors name `field` and the JSON path (exit 2).
cluster_spec load_cluster(const std::string& ref, const std::string& field = "--cluster");

// Sets the NVLink domain (--nvlink-domain): a positive multiple of gpus_per_node, else exit 2
// naming `field`.
void set_nvlink_domain(cluster_spec& c, int domain, const std::string& field);

// The cluster a GPU file implies without a cluster file: `gpus_per_node` GPUs per node (one
// NVLink domain), one NIC per GPU at `nic_gbps` (<= 0: the GPU file's nic_gbps), NCCL's network
// latencies.
cluster_spec default_cluster(const gpu_spec& gpu, int gpus_per_node = 8, double nic_gbps = 0);

// The parallel layout's sizes, in Megatron's rank order (tp fastest, then cp, dp, pp). A MoE
// layout adds its expert layers' order (expert_grid below, Megatron-Core's "tp-ep-dp-pp" with ETP
// as its tp): the EP group's members are `etp` ranks apart and `ep` many, so a rank's EP
// coordinate is rank / etp mod ep; the expert data parallel group's (edp) are etp x ep apart and
// tp x cp x dp / (etp x ep) many; the pipeline stays the slowest coordinate of both orders.
struct rank_grid {
  int tp = 1, cp = 1, dp = 1, pp = 1;
  int etp = 1, ep = 1;
  int world() const { return tp * cp * dp * pp; }
  // Distance in global ranks between neighbours of a group.
  int stride(comm_group g) const;
  int size(comm_group g) const;
  bool operator==(const rank_grid&) const = default;
};

// How a group of a layout spreads over NVLink domains: its members per domain and the domains it
// touches (callers pass the cluster's nvlink_domain; a node where the domain is the node).
struct group_span {
  int size = 1;
  int ranks_per_node = 1;
  int nodes = 1;
};
group_span span_of(comm_group g, const rank_grid& grid, int domain);

// The expert layers' layout (docs/MOE.md §2): Megatron-Core's second rank generator, in the order
// "tp-ep-dp-pp" with the expert tensor parallel size as its tp. Expert tensor parallel ranks are
// neighbours, EP groups are etp ranks apart, expert data parallel (edp) groups etp x ep apart,
// and the pipeline is slowest, as in the dense layout, so a rank keeps its stage.
struct expert_grid {
  int etp = 1, ep = 1, edp = 1, pp = 1;
  int world() const { return etp * ep * edp * pp; }
  struct coords {
    int etp = 0, ep = 0, edp = 0, pp = 0;
    bool operator==(const coords&) const = default;
  };
  coords of(int rank) const;
};
// The EP group's spread over NVLink domains of `domain` consecutive ranks.
group_span ep_span(const expert_grid& g, int domain);

// NVLink domains a group of `ranks` consecutive ranks spans (pair and coll): ranks / domain size,
// rounded up.
int nodes_for(int ranks, const cluster_spec& cluster);

}  // namespace ob
