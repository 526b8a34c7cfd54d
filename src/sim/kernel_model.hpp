#pragma once
// Static cost model of one op (docs/ARCHITECTURE.md §5.1): how many CTAs it asks for, how its
// work is cut into units, and what each unit costs when nothing else runs. The event engine
// turns these numbers into a timeline; nothing here depends on time or on other ops.
#include <cstdint>

#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

namespace ob::sim {

// How an op's work advances once dispatched.
enum class progress_model {
  tiles,        // resident CTAs take work units (GEMM tiles, elementwise blocks) one at a time
  channels,     // each CTA is one NCCL channel: a latency phase, then its share of the bytes
  copy_engine,  // no SM: bytes through the copy engines
  fixed,        // no SM: a fixed duration (a delay kernel with zero CTAs)
  instant,      // nothing to do on the device (group of one, empty GEMM)
};

struct kernel_plan {
  progress_model model = progress_model::instant;
  int ctas = 0;  // SM slots it dispatches, one per CTA; 0 = needs none
  // tiles: units handed out dynamically, each taking tile_us when uncontended.
  std::int64_t tiles = 0;
  double tile_us = 0;
  double setup_us = 0;          // tiles: paid once by each CTA that takes a tile (GEMM prologue)
  bool gemm_contended = false;  // tiles slow while communication shares HBM (engine)
  double hbm_demand = 0;        // GEMM: HBM bytes per µs it draws while running alone
  // Persistent: the grid is exactly `ctas` and every CTA must be scheduled before the kernel
  // ends, even one that arrives to find no tile left. Otherwise CTAs still waiting for an SM
  // when the last tile is handed out are never needed (blocks of an ordinary grid).
  bool persistent = true;
  // Dynamic: a CTA that finishes a tile takes the next free one. Static: each CTA owns exactly
  // one tile (its fixed share of rows) and exits when done.
  bool dynamic_tiles = true;
  // channels / copy_engine: bytes each channel (or the copy engine) moves, after latency_us.
  double channel_bytes = 0;
  double latency_us = 0;
  double bw_factor = 1;  // channels: rate relative to Simple on the ring (protocol, NVLS)
  double fixed_us = 0;   // fixed
  double fixed_hbm = 0;  // fixed: HBM bytes per µs it draws while running (delay_params::hbm_gbps)
  bool is_gemm = false;
  bool is_comm = false;
  // channels: leaves the node (docs/ARCHITECTURE.md §5.4); its channels together move at most
  // cap_gbps, shared with the other inter-node ops running on the device.
  bool inter_node = false;
  double cap_gbps = 0;
  double launch_us = 0;  // eager host cost of the launch call itself (events excluded)
};

kernel_plan plan_kernel(const op& o, const gpu_spec& gpu, const cluster_spec& net);

// Non-persistent elementwise kernels are cut into this many blocks per CTA, so that CTAs that
// get an SM late share the remaining work instead of each carrying a full share.
inline constexpr int elementwise_blocks_per_cta = 4;

}  // namespace ob::sim
