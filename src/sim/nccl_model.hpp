#pragma once
// Collective model v2 (docs/ARCHITECTURE.md §5.1, items 6-7): what NCCL would run for one
// collective or send/recv and its fixed costs. NCCL's tuner predicts, for each algorithm (ring,
// NVLS for an all-reduce inside an NVLink-SHARP node, tree for an all-reduce across nodes) and
// protocol (LL, LL128, Simple), latency + bytes / bandwidth, and runs the fastest; it drops
// channels for small messages (fewer CTAs, less bandwidth). The model does the same with the GPU
// file's constants, then the engine moves the bytes over the chosen channels.
#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

namespace ob::sim {

enum class nccl_algorithm { ring, nvls, tree, nvls_tree };
const char* to_string(nccl_algorithm a);

struct comm_plan {
  nccl_algorithm algorithm = nccl_algorithm::ring;
  nccl_protocol protocol = nccl_protocol::simple;
  int channels = 1;       // CTAs, one channel each
  double latency_us = 0;  // protocol latency over the steps, plus the chunk pipeline's fill
  double bw_factor = 1;   // each channel's rate relative to Simple on the ring
  bool inter_node = false;
  double cap_gbps = 0;  // inter-node: bus bandwidth the op cannot exceed (with its protocol)
  double est_us = 0;    // alone on the GPU: what NCCL's tuner ranks by
};

// NCCL's channel rule (docs/CALIBRATION.md §2.6): while bytes < channels x threads x threshold,
// drop a channel, so small messages run on few CTAs. Only the LL ring multiplies its per-thread
// threshold by the communicator's ranks; LL128, Simple and the tree keep the bare threshold.
// LL128 counts 640 threads, the others the GPU file's nccl_threads. `bytes`: nccl-tests' size;
// the result lies in 1 .. max_channels.
int nccl_channels_for(double bytes, int ranks, int max_channels, nccl_protocol p, bool ring,
                      const gpu_spec& gpu);

// NCCL's split of a grouped send/recv inside one NVLink domain (docs/CALIBRATION.md §2.11):
// every peer's bytes go over `per_peer` channels of the communicator's `p2p_channels`; an
// all-to-all over `ranks` runs ranks x per_peer parts (its own, the copy to itself, included)
// on at most p2p_channels CTAs, with LL when a peer's bytes fit per_peer x the LL threshold.
struct p2p_split {
  int per_peer = 1;
  int channels = 1;
  nccl_protocol protocol = nccl_protocol::simple;
};
p2p_split nccl_p2p_split(double peer_bytes, int ranks, int p2p_channels);

// A collective over c.group_size ranks on c.nodes NVLink domains. c.algorithm: "" or "auto"
// (NCCL's choice), "ring", "nvls", "tree" or "nvls_tree" (NVLS inside each domain, the tree
// across them; only when asked for); another name, or one the GPU/group cannot run, is a
// config_error naming it. c.nccl: min/max CTAs bound the channels, the policy efficiency takes
// the fewest channels that fill NVLink, symmetric windows cut the NVLink latency by the GPU
// file's factor (docs/ARCHITECTURE.md §5.5).
comm_plan plan_nccl_collective(const collective_params& c, const gpu_spec& gpu,
                               const cluster_spec& net);
// An NCCL send/recv with x.ctas > 0 channels.
comm_plan plan_nccl_p2p(const p2p_params& x, const gpu_spec& gpu, const cluster_spec& net);

}  // namespace ob::sim
