#pragma once
// The schedule IR (docs/ARCHITECTURE.md §3): what one rank enqueues, in host enqueue order. Both
// executors (sim and cuda) consume exactly this; nothing executor-specific lives here.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/enum_names.hpp"
#include "model/nccl_config.hpp"

namespace ob {

// fp32 appears only on the wire (gradients reduced in fp32); no GEMM runs in it. mxfp8 and
// nvfp4 are Blackwell's block-scaled formats (an 8-bit scale per 32, resp. 16, elements): GEMM
// operands the simulator models; a collective moves them as bytes (docs/ARCHITECTURE.md §5.1).
enum class dtype { bf16, fp16, fp8, fp32, mxfp8, nvfp4 };
enum class stream_role { compute, comm, p2p };
// host_sync: the host blocks until the op has run on its stream (a device-to-host copy it then
// reads, as `.cpu()` or `.tolist()` do): nothing later in enqueue order is enqueued before it
// ends (docs/ARCHITECTURE.md §5.1, item 12).
enum class op_kind { gemm, collective, p2p, elementwise, delay, host_sync };
enum class coll_op { all_gather, reduce_scatter, all_reduce, all_to_all };
// ep: the expert-parallel group of a MoE layer's dispatch and combine (docs/MOE.md); edp: the
// expert-data-parallel group that reduces and gathers the routed experts' buckets (docs/MOE.md §5).
enum class comm_group { tp, dp, cp, pp, ep, edp };

template <>
struct enum_names<dtype> {
  static constexpr std::string_view noun = "dtype";
  static constexpr std::array names = {
      enum_entry{dtype::bf16, "bf16"},   enum_entry{dtype::fp16, "fp16"},
      enum_entry{dtype::fp8, "fp8"},     enum_entry{dtype::fp32, "fp32"},
      enum_entry{dtype::mxfp8, "mxfp8"}, enum_entry{dtype::nvfp4, "nvfp4"}};
  static constexpr std::array aliases = {enum_entry{dtype::fp8, "fp8_e4m3"}};
};
template <>
struct enum_names<stream_role> {
  static constexpr std::string_view noun = "stream role";
  static constexpr std::array names = {enum_entry{stream_role::compute, "compute"},
                                       enum_entry{stream_role::comm, "comm"},
                                       enum_entry{stream_role::p2p, "p2p"}};
};
template <>
struct enum_names<op_kind> {
  static constexpr std::string_view noun = "op kind";
  static constexpr std::array names = {
      enum_entry{op_kind::gemm, "gemm"},   enum_entry{op_kind::collective, "collective"},
      enum_entry{op_kind::p2p, "p2p"},     enum_entry{op_kind::elementwise, "elementwise"},
      enum_entry{op_kind::delay, "delay"}, enum_entry{op_kind::host_sync, "host_sync"}};
};
template <>
struct enum_names<coll_op> {
  static constexpr std::string_view noun = "collective";
  static constexpr std::array names = {enum_entry{coll_op::all_gather, "all_gather"},
                                       enum_entry{coll_op::reduce_scatter, "reduce_scatter"},
                                       enum_entry{coll_op::all_reduce, "all_reduce"},
                                       enum_entry{coll_op::all_to_all, "all_to_all"}};
  // nccl-tests' and common short spellings.
  static constexpr std::array aliases = {enum_entry{coll_op::all_gather, "ag"},
                                         enum_entry{coll_op::all_gather, "allgather"},
                                         enum_entry{coll_op::reduce_scatter, "rs"},
                                         enum_entry{coll_op::reduce_scatter, "reducescatter"},
                                         enum_entry{coll_op::all_reduce, "ar"},
                                         enum_entry{coll_op::all_reduce, "allreduce"},
                                         enum_entry{coll_op::all_to_all, "a2a"},
                                         enum_entry{coll_op::all_to_all, "alltoall"}};
};
template <>
struct enum_names<comm_group> {
  static constexpr std::string_view noun = "communication group";
  static constexpr std::array names = {
      enum_entry{comm_group::tp, "tp"}, enum_entry{comm_group::dp, "dp"},
      enum_entry{comm_group::cp, "cp"}, enum_entry{comm_group::pp, "pp"},
      enum_entry{comm_group::ep, "ep"}, enum_entry{comm_group::edp, "edp"}};
};

// Bytes of one element on the wire: bf16/fp16 2, fp8 and mxfp8 1, fp32 4; nvfp4 1 (a byte
// holds two values and is what NCCL counts; the scales are not counted).
std::size_t dtype_bytes(dtype v);
// Bytes a GEMM reads per operand element, scales included: mxfp8 1 + 1/32, nvfp4 1/2 + 1/16.
double dtype_operand_bytes(dtype v);
// fp8, mxfp8 and nvfp4: the low-precision GEMM formats that keep a bf16 copy of the weights.
bool is_low_precision(dtype v);

struct stream {
  int id = 0;  // index in schedule::streams; creation order = index order
  std::string name;
  stream_role role = stream_role::compute;
  int priority = 0;  // CUDA convention: lower number = higher priority
};

struct gemm_params {
  std::int64_t m = 0, n = 0, k = 0;
  dtype type = dtype::bf16;
  // SMs kept free of the GEMM for the communication beside it (TE's num_sm, --sm-margin); 0: all
  // SMs. A margin, not a count: each executor takes it from its own device's SMs.
  int sm_margin = 0;
  // Members of a grouped GEMM (MoE experts, docs/MOE.md §4): this many [m, k] x [k, n] GEMMs in
  // one persistent kernel; 1 is a plain GEMM.
  int group = 1;
  // The output D's element type, and C's when the GEMM accumulates. bf16 for every GEMM (fp8 GEMMs
  // write bf16, as Transformer Engine's do) except a weight-gradient GEMM that adds into
  // Megatron's main_grad buffer (gradient_accumulation_fusion, docs/ARCHITECTURE.md §9.3): D and C
  // are then that buffer, fp32 with grad_reduce_in_fp32.
  dtype out = dtype::bf16;
  // beta = 1: D = A x B + C with C the output buffer itself, so the GEMM reads its output once
  // before it writes it.
  bool accumulate = false;
  double flops() const { return 2.0 * static_cast<double>(m) * n * k * group; }
};

// Who moves a MoE layer's tokens to their experts and back (docs/MOE.md §7): NCCL's
// all-to-all, or one of DeepEP's protocols (normal: NVLink inside the NVLink domain, RDMA once
// per target domain and then forwarded on NVLink; low latency: pure RDMA, one copy per expert)
// or HybridEP (TMA copies from few SMs). The sim costs each as its own protocol (sim/ep_dispatch).
enum class ep_backend { nccl, deepep, deepep_low_latency, hybridep };

template <>
struct enum_names<ep_backend> {
  static constexpr std::string_view noun = "EP dispatcher";
  static constexpr std::array names = {enum_entry{ep_backend::nccl, "nccl"},
                                       enum_entry{ep_backend::deepep, "deepep"},
                                       enum_entry{ep_backend::deepep_low_latency, "deepep_ll"},
                                       enum_entry{ep_backend::hybridep, "hybridep"}};
};

// The token exchange an EP dispatch or combine carries; backend nccl: none (c.bytes alone).
struct ep_exchange {
  ep_backend backend = ep_backend::nccl;
  bool combine = false;     // the combine (bf16, reduces each token's copies) vs the dispatch
  std::int64_t tokens = 0;  // tokens this rank routes (before top-k)
  std::int64_t hidden = 0;
  int topk = 1, experts = 1;
  // Hottest rank's received load relative to the mean (--moe-imbalance).
  double imbalance = 1;
};

struct collective_params {
  coll_op op = coll_op::all_gather;
  // nccl-tests `size`: AG = total gathered bytes, RS = total input bytes, AR = buffer bytes,
  // A2A = one rank's send buffer (every peer's shard).
  std::uint64_t bytes = 0;
  dtype type = dtype::bf16;  // element type on the wire
  comm_group group = comm_group::tp;
  int group_size = 1;     // ranks in the group
  int ctas = 0;           // 0 = library default for this op
  std::string algorithm;  // hint ("ring", ...); empty = library choice
  // NVLink domains the group's members spread over, evenly (docs/ARCHITECTURE.md §5.4): a node,
  // or a whole NVL72 rack; more than one is costed on the fabric, not on NVLink.
  int nodes = 1;
  // The communicator's NCCL settings (docs/ARCHITECTURE.md §5.5).
  nccl_comm_config nccl;
  // An EP token exchange (all_to_all only): the protocol that moves it, when not NCCL's.
  ep_exchange ep;
  // A level of a hierarchical group (cp_comm_type a2a+p2p, docs/ARCHITECTURE.md §9.3):
  // group_size members `level_stride` apart along the group's coordinate. 0: the whole group.
  int level_stride = 0;
};

// A ring exchange step sends and receives (TP, CP); a pipeline transfer does one of the two,
// paired with the opposite op on the peer stage (model/program.hpp).
enum class p2p_direction { exchange, send, recv };

struct p2p_params {
  int send_peer = 0;  // rank offset within the group (+1 = next in ring)
  int recv_peer = 0;
  std::uint64_t bytes = 0;  // bytes sent (nccl-tests send-recv size)
  dtype type = dtype::bf16;
  comm_group group = comm_group::tp;
  int group_size = 1;
  int ctas = 0;   // 0 = copy engine (no SM), as TE's userbuffers use_ce default
  int nodes = 1;  // 2: the peers sit on different nodes (costed on the fabric)
  p2p_direction direction = p2p_direction::exchange;
  int level_stride = 0;  // as collective_params::level_stride
};

// What runs an elementwise op's FLOPs. Batched GEMMs (unfused attention's scores and context)
// reach the GEMM efficiency; a fused flash-attention kernel interleaves softmax with its two
// matmuls and reaches less, its backward less again (docs/ARCHITECTURE.md §5.1, item 5).
// flash2_*: FlashAttention-2's kernels (attention_backend flash2), at the GPU file's
// `flash_attention_efficiency.flash2` rates. fp8_* and mxfp8_*: cuDNN's fused attention on fp8
// inputs (Transformer Engine's fp8_dpa), per-tensor or MXFP8 block scales, at the file's
// `flash_attention_efficiency.fp8` and `.mxfp8` rates (docs/CALIBRATION.md §2.15).
enum class elementwise_math {
  gemm,
  flash_attention_fwd,
  flash_attention_bwd,
  flash2_attention_fwd,
  flash2_attention_bwd,
  fp8_attention_fwd,
  fp8_attention_bwd,
  mxfp8_attention_fwd,
  mxfp8_attention_bwd
};

template <>
struct enum_names<elementwise_math> {
  static constexpr std::string_view noun = "elementwise math";
  static constexpr std::array names = {
      enum_entry{elementwise_math::gemm, "gemm"},
      enum_entry{elementwise_math::flash_attention_fwd, "flash_attention_fwd"},
      enum_entry{elementwise_math::flash_attention_bwd, "flash_attention_bwd"},
      enum_entry{elementwise_math::flash2_attention_fwd, "flash2_attention_fwd"},
      enum_entry{elementwise_math::flash2_attention_bwd, "flash2_attention_bwd"},
      enum_entry{elementwise_math::fp8_attention_fwd, "fp8_attention_fwd"},
      enum_entry{elementwise_math::fp8_attention_bwd, "fp8_attention_bwd"},
      enum_entry{elementwise_math::mxfp8_attention_fwd, "mxfp8_attention_fwd"},
      enum_entry{elementwise_math::mxfp8_attention_bwd, "mxfp8_attention_bwd"}};
};

struct elementwise_params {
  std::uint64_t bytes = 0;  // read + written
  double flops = 0;
  int sm_margin = 0;        // SMs left free (NVTE_*_LAYERNORM_SM_MARGIN)
  bool persistent = false;  // TE LayerNorm: one CTA per usable SM, spin-waiting
  elementwise_math math = elementwise_math::gemm;
  // A fused flash-attention kernel that also draws and applies an attention-dropout mask (its
  // Philox numbers per score, in the forward and again in the backward): it runs at the GPU
  // file's `flash_attention_efficiency.dropout` share of its rate (docs/ARCHITECTURE.md §5.1).
  bool dropout = false;
};

struct delay_params {
  double us = 0;
  int ctas = 1;
  // HBM the op draws while it runs, GB/s: a host copy (activation offloading) reads or writes
  // each byte it moves once; 0 for a plain delay (docs/ARCHITECTURE.md §5.1, item 8).
  double hbm_gbps = 0;
};

// A device-to-host copy of `bytes` (per-expert token counts, split sizes) on the op's stream
// after its waits, which the host waits for before it enqueues anything else. `device`: a
// device-wide synchronize instead (torch.cuda.synchronize()); its waits are every stream's last
// op, and the host records no event for them.
struct host_sync_params {
  std::uint64_t bytes = 0;
  bool device = false;
};

using op_params = std::variant<gemm_params, collective_params, p2p_params, elementwise_params,
                               delay_params, host_sync_params>;

struct op {
  int id = 0;  // index in schedule::ops (= host enqueue order)
  std::string name;
  int stream = 0;
  std::vector<int> waits;  // op ids on other streams this op waits on (events)
  // Op ids on other streams that must have *started* (their kernel resident) before this op may
  // dispatch: Transformer Engine's launch-ordering event on Hopper with CDMC > 1, which keeps a
  // persistent GEMM from taking every SM before its comm kernel (docs/BRIDGE_RULES.md §6.3).
  std::vector<int> waits_started;
  op_params params;
  // Which layer slot produced it ("proj_fprop", "ln1_fwd", ...) and which pass; metrics group by
  // it.
  std::string slot;
  // Host-only work issued just before this op: eager framework ops (PyTorch's small tensor ops
  // around a MoE layer) that the plan does not carry as GPU ops; each costs the host one eager
  // op, gpu_spec::eager_op_us (docs/MOE.md §17, §20). Their GPU time is left out.
  int host_ops = 0;
  // Captured in a per-layer CUDA graph (Megatron's cuda_graph_modules): the op and its host ops
  // cost graph_node_us each, with no events.
  bool graphed = false;
  op_kind kind() const { return static_cast<op_kind>(params.index()); }
  bool is_comm() const { return kind() == op_kind::collective || kind() == op_kind::p2p; }
  template <class T>
  const T& as() const {
    return std::get<T>(params);
  }
  template <class T>
  T& as() {
    return std::get<T>(params);
  }
};

struct schedule {
  std::string name;
  std::vector<stream> streams;
  std::vector<op> ops;
  // Issued by an eager framework (PyTorch), as a training step is: each GEMM and elementwise
  // kernel costs the host an eager op (gpu_spec::eager_op_us), not a bare launch. A benchmark
  // harness (pair, layer) launches its kernels directly.
  bool eager_framework = false;

  int add_stream(std::string name, stream_role role, int priority);
  // Appends an op in enqueue order and returns its id.
  int add_op(std::string name, int stream, op_params params, std::vector<int> waits = {},
             std::string slot = {});
  // Throws config_error when ids, streams or waits are inconsistent (waits must point backwards).
  void validate() const;
  double gemm_flops() const;
};

// The five measured variants of a case (docs/ARCHITECTURE.md §3).
enum class variant { compute_only, compute_with_margin, comm_only, serial, overlapped };
template <>
struct enum_names<variant> {
  static constexpr std::string_view noun = "variant";
  static constexpr std::array names = {
      enum_entry{variant::compute_only, "compute_only"},
      enum_entry{variant::compute_with_margin, "compute_with_margin"},
      enum_entry{variant::comm_only, "comm_only"}, enum_entry{variant::serial, "serial"},
      enum_entry{variant::overlapped, "overlapped"}};
};
inline constexpr variant all_variants[] = {variant::compute_only, variant::compute_with_margin,
                                           variant::comm_only, variant::serial,
                                           variant::overlapped};

// Derives a variant from the planned (overlapped) schedule:
//  compute_only: comm ops dropped, GEMMs at full SMs, elementwise SM margins 0;
//  compute_with_margin: comm ops dropped, the GEMMs' SM margins kept;
//  comm_only: only collective and p2p ops;
//  serial: every op on one stream, same enqueue order;
//  overlapped: unchanged.
// Waits on dropped ops are rewired to their nearest kept ancestors so dependencies survive.
schedule derive_variant(const schedule& planned, variant v);

}  // namespace ob
