#pragma once
// Host-side decisions the CUDA executor makes about a schedule before touching the GPU: stream
// priorities, which communicator an op needs, buffer sizes and sharing, GEMM chunk layout, and
// what stands in for an op in loopback mode. Pure C++ (no CUDA headers) so it is unit-tested on
// machines without a GPU.
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/ir.hpp"

namespace ob::cuda {

// IR priorities (lower = higher, any integers) to CUDA stream priorities in [greatest, least]
// (CUDA: least is the numerically larger, e.g. 0, greatest e.g. -5). The lowest IR priority
// maps to `least`; each higher distinct IR level one step higher, saturating at `greatest`. So
// {compute 0, comm -1} becomes {0, -1} and relative order survives any IR numbering.
std::vector<int> map_stream_priorities(const schedule& s, int least, int greatest);

// Where a rank sits in a communication group of `group_size` out of `world_size` ranks. tp
// groups are contiguous blocks (Megatron's order puts tp fastest); the other groups are strided
// (rank mod world/group_size), which is exact when only two dimensions exist. Throws
// config_error naming the op when the group does not fit the world.
struct group_membership {
  int color = 0;     // ncclCommSplit color: which group
  int position = 0;  // rank within the group (ncclCommSplit key)
  int group_size = 1;
  auto operator<=>(const group_membership&) const = default;
};
group_membership comm_membership(comm_group g, int group_size, int global_rank, int world_size,
                                 const std::string& op_name);

// One NCCL communicator per distinct (group, size, maxCTAs, cgaClusterSize); 0 in ctas or
// cga_cluster_size means "library default" (left undefined in ncclConfig_t). A pipeline
// transfer of a training step travels on the communicator of its link: the stage that sends
// (link_from) and the direction (+1 towards the next stage, -1 towards the previous one), so
// that each communicator carries the ops of one stream on either side (cuda/step_groups.hpp).
// A level of a hierarchical CP group (a2a+p2p) is its own communicator: group_size ranks
// level_stride apart along the group (0 for a whole group).
struct comm_key {
  comm_group group = comm_group::tp;
  int group_size = 1;
  int level_stride = 0;
  int max_ctas = 0;
  int cga_cluster_size = 0;
  int link_from = -1;  // pipeline link: the sending stage; -1 for every other communicator
  int link_step = 0;   // pipeline link: +1 or -1
  // The collective's NCCL settings (docs/ARCHITECTURE.md §5.5): ncclConfig_t.minCTAs and
  // CTAPolicy (standard = the process's --nccl-cta-policy), and whether its buffers go into a
  // symmetric window (ncclCommWindowRegister).
  int min_ctas = 0;
  cta_policy policy = cta_policy::standard;
  bool symmetric = false;
  // NCCL 2.31's per-call cap (ncclCollConfig_t.maxCTAs on each nccl*Config call), not a
  // communicator setting; kept in the key so the version check sees it. 0 = none.
  int call_max_ctas = 0;
  auto operator<=>(const comm_key&) const = default;
};
std::string to_string(const comm_key& k);
// What the communicators of `keys` need of the loaded NCCL (`runtime_version`, as
// ncclGetVersion gives it) and of the headers built against (`header_version`): a config_error
// naming the setting, the communicator and both versions when one is missing (exit 2), so a
// run never silently measures NCCL's defaults instead of what was asked.
void require_nccl_features(const std::vector<comm_key>& keys, int runtime_version,
                           int header_version);
// The key an op (collective or p2p) needs; throws for other kinds.
comm_key comm_key_for(const op& o);
// Every distinct key the schedules need, sorted, so all ranks create communicators in the same
// order (creation is collective).
std::vector<comm_key> comm_keys_needed(const std::vector<const schedule*>& schedules);

// Ring neighbour: position + offset modulo the group, for any sign of offset.
int ring_peer(int position, int offset, int group_size);

// CTAs for the copy proxy standing in for a comm op in loopback mode: the op's own count, or the
// default for its collective (`default_ctas`, else 16). A p2p op with ctas 0 asks for the copy
// engine (TE's userbuffers default): returns 0, and the executor uses cudaMemcpyAsync.
int proxy_ctas(const op& o, const std::function<int(coll_op)>& default_ctas);

// Stable identity of an op across the five variants of a case, for sharing buffers: the op's
// name and how many ops of that name came before it in its schedule. In a training step the
// passes of one layer slot share buffers: the pass prefix of the name (pass_prefix_length) is
// left out of the key, and a pipeline send or receive (one stream per direction, so one in flight
// at a time) keeps one buffer per name. A step thus needs one layer's buffers, not one per layer
// and micro-batch. The optimizer's memory-bound passes (slot "optimizer") share one buffer.
std::vector<std::string> buffer_keys(const schedule& s);

// The length of the step planner's pass prefix of an op name: leading components "c<chunk>.",
// "mb<micro-batch>.", "b<bucket>.", "L<layer>." and "re." (recomputation). 0 for a layer's ops.
std::size_t pass_prefix_length(const std::string& name);

// GEMMs of one slot with the same (n, k, dtype) are chunks of one logical GEMM split along M
// (pipeline, ring_exchange): they share one weight and one output, each chunk at its row offset,
// so the chunked output can be checked against the unchunked GEMM. A grouped GEMM (group > 1)
// is a group of its own, one chunk.
struct gemm_group {
  std::string key;  // "slot:proj_fprop|n=..|k=..|bf16" or "op:<buffer key>|..."
  // The key of its buffers: `key` without the pass (a step's passes of one slot share them).
  std::string buffer_key;
  std::int64_t total_m = 0;  // sum of the chunks' m
  std::int64_t n = 0, k = 0;
  dtype type = dtype::bf16;
  int chunks = 0;
  // A grouped GEMM's members (gemm_params::group): X, W and D hold one block per member. Such a
  // GEMM is keyed by its op, never by its slot: the MoE planner gives every expert GEMM of a
  // layer one slot, and they are not chunks of one GEMM.
  int members = 1;
  // gemm_params::accumulate and the output type: beta = 1 into D in the IR's `out` type (a
  // weight-gradient GEMM into Megatron's main_grad, fp32 with grad_reduce_in_fp32), else
  // gemm_output_type(type) with beta = 0.
  bool accumulate = false;
  dtype out = dtype::bf16;
};
struct gemm_slice {
  int group = -1;               // index into gemm_layout::groups
  std::int64_t row_offset = 0;  // first row of this chunk in the group's X and D
};
struct gemm_layout {
  std::vector<gemm_group> groups;
  std::map<int, gemm_slice> slices;  // op id -> slice (gemm ops and GEMM stand-ins)
};
// `gemm_of(op)` returns the GEMM an op runs, or nullptr when it runs none.
gemm_layout plan_gemm_groups(const schedule& s,
                             const std::function<const gemm_params*(const op&)>& gemm_of);

// How an elementwise op runs. Memory-bound ops (LayerNorm, activations) become the LayerNorm-like
// kernel on SMs - margin CTAs, moving the op's bytes. Compute-bound ones (the attention core:
// more than `compute_bound_flops_per_byte`) become a cuBLASLt GEMM with the same FLOPs and
// the op's SM margin, so they occupy tensor cores and SMs like flash attention does.
inline constexpr double compute_bound_flops_per_byte = 64.0;
// The element type of both stand-ins: the IR gives an elementwise op bytes and FLOPs, not a type,
// and TE runs LayerNorm and attention in bf16 (the LayerNorm-like kernel handles only bf16).
inline constexpr dtype elementwise_type = dtype::bf16;
// A memory-bound op larger than this per side (a step's optimizer sweeps its whole shard) runs as
// several launches over one buffer of at most this size: the same HBM traffic (far beyond L2),
// bounded memory.
inline constexpr std::uint64_t elementwise_max_buffer_bytes = 1ull << 30;
struct elementwise_plan {
  bool as_gemm = false;
  gemm_params gemm;         // when as_gemm
  std::uint64_t elems = 0;  // elementwise_type elements read (= written) per launch when !as_gemm
  int repeat = 1;           // launches over the same buffers
  int row_elems = 8192;     // LayerNorm row (hidden size stand-in)
  int ctas = 1;             // SMs - margin, at least 1
};
elementwise_plan plan_elementwise(const elementwise_params& p, int sm_count);

// cuBLASLt's SM count target for a GEMM whose plan keeps `sm_margin` SMs free: 0 (all SMs) without
// a margin, else this device's SMs less the margin, at least 1. The margin, not a count, crosses
// from the plan: a GPU file with another SM count than the device still keeps TE's margin.
int sm_target_for(int sm_margin, int sm_count);

}  // namespace ob::cuda
