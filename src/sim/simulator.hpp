#pragma once
// Deterministic discrete-event model of one GPU executing a Schedule (docs/ARCHITECTURE.md §5.1).
#include <vector>

#include "model/cluster.hpp"
#include "model/executor.hpp"
#include "model/gpu_spec.hpp"
#include "model/ir.hpp"
#include "model/program.hpp"

namespace ob {

// Names the model in every result, so numbers from different model versions are never compared
// silently. sim-v2.4: a step's weight gradients accumulate into main_grad and its optimizer runs
// Megatron-Core's passes (docs/CALIBRATION.md §3.7). sim-v2.5: NCCL's p2p split of an in-node
// all-to-all (§2.11), Blackwell GEMM efficiencies anchored to H100's fit (§2.12), Adam's bytes by
// type, TE 2.14's offload schedule, Megatron-LM 2022's kernels behind `megatron_2022` (§3.7) and
// the MoE layer's host ops (docs/MOE.md §17). sim-v2.6: attention dropout inside fused attention
// (§3.7), the attn and full_iteration CUDA graph scopes (docs/MOE.md §18), each direction's share
// of the host link for offload copies and the memory CUDA reports on B200, GB200, GB300
// (docs/FSDP.md §5.4). sim-v2.7: FlashAttention-2's rates and Transformer Engine's layout copies
// for it, attention backend `flash2` (docs/ARCHITECTURE.md §3.1, docs/CALIBRATION.md §3.7); the
// Blackwell files' fused-attention efficiencies transferred from measured cuDNN rates, GB300's
// (and B300's) above GB200's (docs/CALIBRATION.md §2.13); a step's GEMM, elementwise and
// host-only framework ops cost the host an eager PyTorch op each, measured in public profiles
// (docs/MOE.md §20). sim-v2.8: the sync-free HybridEP dispatch (moe_expert_rank_capacity_factor:
// no token-count host sync), a full-iteration graph of a MoE model with it, Transformer Engine's
// fused grouped MLP (use_transformer_engine_op_fuser) and the flex dispatcher's SM count
// (moe_flex_dispatcher_num_sms), docs/MOE.md §21; PyTorch FSDP's SHARD_GRAD_OP
// (`--fsdp shard_grad_op`), a mode no published scenario runs (docs/FSDP.md §7); context
// parallelism's all_gather, a2a and a2a+p2p communication types (cp_comm_type,
// docs/ARCHITECTURE.md §9.3), the Llama 3 CP 16 row on all_gather; the memory estimate's routed
// copies at the sync-free budget's rows (docs/MEMORY.md §2.3); a MoE layer's biases
// (add_bias_linear: fc2's per-expert loop, fc1's and the router's gradients), docs/MOE.md §14.3.
// sim-v2.9: the interleaved schedule's parameter gathers where Megatron-Core issues them and the
// embedding's gradient added into main_grad (docs/ARCHITECTURE.md §9.3); the routed experts'
// gradients and parameters in buckets of their own over expert DP, and the optimizer's shard of
// them (docs/MOE.md §5); fp8 attention (fp8_dot_product_attention, docs/CALIBRATION.md §2.15);
// the router's GEMMs in bf16 (docs/MOE.md §19.4); the all-gather CP's two query chunks on two
// streams with TE's copies (docs/ARCHITECTURE.md §9.3).
inline constexpr const char* sim_model_version = "sim-v2.9";

struct sim_options {
  int cdmc = cdmc_default;  // CUDA_DEVICE_MAX_CONNECTIONS; <= 0 = the driver's default; 1..32
  bool graphs = false;      // host cost per op = graph_node_us instead of launch costs
  // Nodes and NICs for communication that leaves the NVLink domain; nullptr: default_cluster.
  const cluster_spec* cluster = nullptr;
  // A collective whose peers never join (fault injection, a test hook): its CTAs wait forever,
  // and simulate() throws hang_error naming it once nothing else can move. -1: none.
  int stalled_op = -1;
};

// Every time below is µs from the iteration's origin: the moment the host finished enqueuing the
// first op, the earliest anything can reach the GPU. The first op's own launch cost lies before
// it (origin_us), as in back-to-back iterations or nccl-tests, where the next iteration's first
// launch overlaps the previous one's GPU work; every later host cost is inside the timeline, so
// a host-bound schedule still shows it.
struct sim_op_result {
  int op_id = 0;
  double enqueue_us = 0;   // host finished enqueuing it (0 for op 0)
  double deps_met_us = 0;  // every dependency resolved, cross-queue delay included (0: none)
  double ready_us = 0;     // head of its queue and all dependencies resolved (+ cross-queue delay)
  double start_us = 0;     // first CTA dispatched (or copy engine started)
  double end_us = 0;       // last CTA finished
  int queue = 0;           // hardware queue index
  int ctas = 0;            // CTAs it used (0 for copy-engine p2p)
};

struct sim_result {
  // From the origin to the last completion: the variant's iteration time.
  double total_us = 0;
  std::vector<sim_op_result> ops;  // indexed by op id
  int queues = 0;                  // hardware queues used (CDMC after clamping)
  double host_us = 0;              // host finished enqueuing the last op (from the origin)
  double origin_us = 0;            // host time spent before the origin: the first op's cost
  std::vector<op_interval> intervals() const;  // same origin as total_us
};

sim_result simulate(const schedule& s, const gpu_spec& gpu, const sim_options& opts);

// Every stage of a program on its own device, together: a linked send and receive start moving
// bytes once both are resident (docs/ARCHITECTURE.md §9). One result per stage, all on one clock
// (every stage's origin is the moment its first op can reach its GPU). A link whose partner is
// never posted is a hang: hang_error names each stage's waiting ops.
std::vector<sim_result> simulate_program(const program& p, const gpu_spec& gpu,
                                         const sim_options& opts);

// The sim backend: each variant is simulated once (the model is deterministic, so one
// "iteration" is exact); results are flagged simulated.
class sim_executor final : public executor {
 public:
  explicit sim_executor(gpu_spec gpu) : gpu_(std::move(gpu)), cluster_(default_cluster(gpu_)) {}
  sim_executor(gpu_spec gpu, cluster_spec cluster)
      : gpu_(std::move(gpu)), cluster_(std::move(cluster)) {}
  std::string backend() const override { return "sim"; }
  bool simulated() const override { return true; }
  std::string label() const override { return "sim (model, not a measurement)"; }
  using executor::measure;
  program_measurements measure(const program_variants& variants,
                               const measure_options& opts) override;
  json environment() const override;
  const gpu_spec& gpu() const { return gpu_; }

 private:
  // A layer or pair case: each variant's one schedule (with the skip_collective test hook).
  program_measurements measure_case(const program_variants& variants, const measure_options& opts);
  // A training step: every stage on one clock.
  program_measurements measure_step(const program_variants& variants, const measure_options& opts);

  gpu_spec gpu_;
  cluster_spec cluster_;
};

}  // namespace ob
