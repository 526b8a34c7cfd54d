#pragma once
// A case lowered for one rank, before any GPU call: per variant, the actions to launch (what each
// runs, on which stream, after which ops), the device buffers they use (keyed so that variants
// share them) and how those start, the unchunked reference GEMMs, and the checks after the
// instrumented iteration. Pure C++ (no CUDA or NCCL headers, no device pointers) so it is
// unit-tested without a GPU; the engine only allocates what it asks for, binds pointers and
// launches (docs/ARCHITECTURE.md §5).
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuda/cuda_backend.hpp"
#include "cuda/gemm_key.hpp"
#include "cuda/schedule_prep.hpp"
#include "kernels/pattern.hpp"
#include "model/executor.hpp"
#include "model/ir.hpp"

namespace ob::cuda {

// The rank and device a case is lowered for.
struct lowering_target {
  int global_rank = 0;
  int world_size = 1;
  int sm_count = 132;
  int priority_least = 0, priority_greatest = 0;  // cudaDeviceGetStreamPriorityRange
  // A training step's layout: groups follow the rank's coordinates (cuda/step_groups.hpp)
  // instead of the single-layer rule (comm_membership).
  std::optional<rank_grid> grid;
  // The device, for the block-scaled GEMMs (mxfp8, nvfp4) only a compute capability 10.x GPU
  // runs, and whether cuBLASLt (headers built against and library loaded) has their scale modes.
  std::string device_name;
  int cc_major = 0, cc_minor = 0;
  bool block_scaled_gemms = false;
};

// How a buffer starts. Every buffer that starts with data is zeroed first, so bytes past the last
// whole element are defined too.
enum class buffer_init {
  none,      // written by the ops before anything reads it (outputs, receive buffers)
  random,    // non-zero values in [-1, 1] of `type` from `seed` (GEMM operands, copy sources)
  pattern,   // pattern_value(pattern_rank, i) in `type` (collective and p2p send buffers)
  constant,  // every byte `fill_byte` (block scales: 1.0 in their format)
};

struct buffer_request {
  std::string key;  // stable across the variants of a case: "proj_fprop|n=..|x", "ag#0|send"
  std::size_t bytes = 0;
  buffer_init init = buffer_init::none;
  dtype type = dtype::bf16;    // element type of random or pattern contents
  std::uint64_t seed = 0;      // random
  int pattern_rank = 0;        // pattern: the rank position whose data it holds
  std::uint8_t fill_byte = 0;  // constant
  // In a symmetric window of the communicator `window` (NCCL 2.27): allocated with ncclMemAlloc
  // and registered with ncclCommWindowRegister once the communicators exist.
  bool symmetric = false;
  comm_key window;
  bool operator==(const buffer_request&) const = default;
};

// A place in a requested buffer.
struct buffer_ref {
  int buffer = -1;  // index into case_lowering::buffers; -1 = none
  std::size_t offset = 0;
  explicit operator bool() const { return buffer >= 0; }
};

// host_sync: the host waits for the stream (op_kind::host_sync), outside a graph capture.
enum class action_kind {
  gemm,
  nccl_collective,
  nccl_p2p,
  proxy_copy,
  ce_copy,
  layernorm,
  delay,
  host_sync
};

// One op as the GPU runs it. Only the fields of its kind are set.
struct lowered_action {
  action_kind kind = action_kind::delay;
  int op_id = 0;
  std::string name;
  std::string what;  // "all_gather over tp (4 ranks)", "gemm 8192x8192x8192 bf16", for messages
  int stream = 0;
  std::vector<int> waits;
  bool signals = false;  // a later op waits on it: it records a completion event
  bool is_comm = false;
  // gemm: dst = x · w^T, x and dst at this chunk's first row (the whole group shares w); a
  // grouped GEMM's members follow each other in x, w and dst (gemm_key::batch). Block-scaled
  // types: the scales of x and w (cuBLASLt's B and A scale pointers).
  gemm_key gemm;
  buffer_ref x, w, x_scale, w_scale;
  // communication, copies, layernorm: src -> dst; gemm: dst only.
  buffer_ref src, dst;
  comm_key comm;            // nccl_*: the communicator
  group_membership member;  // nccl_*: this rank in it
  coll_op coll = coll_op::all_gather;
  dtype type = dtype::bf16;          // nccl_*: element type on the wire
  std::uint64_t count = 0;           // nccl_*: elements per call; layernorm: elements
  int send_peer = 0, recv_peer = 0;  // nccl_p2p: positions in the group
  // nccl_p2p: a ring step sends and receives; a pipeline transfer does one of the two.
  p2p_direction direction = p2p_direction::exchange;
  std::size_t bytes = 0;  // proxy_copy, ce_copy, host_sync
  int ctas = 0;           // proxy_copy, layernorm, delay
  int row_elems = 0;      // layernorm
  int repeat = 1;         // layernorm: launches over the same buffers
  double us = 0;          // delay
};

// Tolerances for a chunked GEMM output against the unchunked one (bf16/fp16 outputs of the same
// operands through different algorithms): a couple of output ulps, scaled by the typical
// magnitude sqrt(k)/3 of a dot product of k uniform [-1, 1] pairs.
struct gemm_tolerance {
  float rtol = 0, atol = 0;
};
gemm_tolerance chunked_gemm_tolerance(std::int64_t k, dtype t);

enum class check_kind {
  pattern,     // out holds expected_value(spec, j) in `type` (NCCL collectives and p2p)
  same_bytes,  // out equals ref byte for byte (loopback copies)
  close,       // out is within `tol` of ref, `type` elements (chunked GEMM vs unchunked)
};

// One check after the instrumented iteration. `out` is poisoned (0xFF: NaN in every float type)
// before that iteration, so an element nobody wrote cannot pass.
struct verify_job {
  check_kind kind = check_kind::same_bytes;
  std::string op;  // for messages
  buffer_ref out;
  std::size_t out_bytes = 0;
  buffer_ref ref;             // same_bytes: the source; close: the unchunked output
  std::size_t n = 0;          // same_bytes: bytes; close: elements
  dtype type = dtype::bf16;   // pattern and close: element type of out
  kernels::verify_spec spec;  // pattern
  gemm_tolerance tol;         // close
};

// The unchunked GEMM of a chunked group, run once at full SMs before timing, into `d`.
struct reference_gemm {
  std::string key;
  gemm_key gemm;
  buffer_ref x, w, d, x_scale, w_scale;
};

// The IR streams of a variant, created once per distinct signature and shared by variants.
struct stream_set_request {
  std::string signature;
  std::vector<std::string> names;
  std::vector<int> priorities;  // CUDA priorities, map_stream_priorities
};

struct lowered_variant {
  variant v = variant::overlapped;
  bool measured = false;
  int stream_set = -1;
  std::size_t op_count = 0;  // ops in the schedule: op ids index per-op events
  std::vector<lowered_action> actions;
  std::vector<verify_job> verifies;
};

struct case_lowering {
  std::array<lowered_variant, 5> variants;  // unmeasured ones have no actions
  std::vector<stream_set_request> stream_sets;
  std::vector<buffer_request> buffers;
  std::vector<reference_gemm> references;
  std::vector<comm_key> comms;        // sorted: creation is collective over the ranks
  std::optional<rank_grid> grid;      // a step's layout: who is in each communicator
  std::vector<std::string> warnings;  // for the case's result (unverified ops)
  const buffer_request& buffer(buffer_ref r) const { return buffers.at(r.buffer); }
};

// Lowers the variants that `m.variants` asks for. Throws config_error for a group that does not
// fit the world or p2p peers that do not form a ring (before any rank calls NCCL), and
// runtime_failure when variants disagree about a shared buffer.
case_lowering lower_case(const variant_schedules& variants, const measure_options& m,
                         const cuda_backend_options& backend, const lowering_target& target);

// One pipeline stage of a training step, for the rank `target.global_rank` of the layout
// `target.grid` (its stage is its pp coordinate): that stage's measured variants, lowered as a
// case, with the communicators of every stage (all ranks create them all, in one order).
case_lowering lower_stage(const program_variants& program, const measure_options& m,
                          const cuda_backend_options& backend, const lowering_target& target);

// UE8M0 and UE4M3 bytes of 1.0: the block scales every block-scaled operand starts with.
inline constexpr std::uint8_t ue8m0_one = 0x7F, ue4m3_one = 0x38;

// Device memory the lowered buffers take (each at least 16 bytes, as they are allocated).
std::size_t lowered_bytes(const case_lowering& low);

// True when an output of `kind` in `type` is checked exactly by the pattern kernels; otherwise
// `why` says why not (the element type, or too many ranks for its exact integers).
bool pattern_verifiable(verify_kind kind, dtype type, int group_size, std::string* why);

// One peer's share of an all-to-all run as grouped ncclSend/ncclRecv (nccl-tests' alltoall):
// `count` elements at byte `send_offset` of the send buffer go to `peer`, and what `peer` sends
// this rank lands at byte `recv_offset` of the receive buffer. Every position, this rank's own
// included, in group order.
struct a2a_transfer {
  int peer = 0;
  std::size_t send_offset = 0, recv_offset = 0;
};
std::vector<a2a_transfer> all_to_all_transfers(const lowered_action& a);

// Whether any measured op carries a launch-ordering dependency (op::waits_started), which the GPU
// does not enforce.
bool uses_launch_ordering(const variant_schedules& variants, const measure_options& m);

}  // namespace ob::cuda
