#include "cuda/rank_engine.hpp"

#include <cstring>

#include "base/error.hpp"
#include "cuda/case_run.hpp"
#include "cuda/watchdog.hpp"

namespace ob::cuda {

rank_engine::rank_engine(engine_identity id, const cuda_backend_options& options,
                         std::shared_ptr<nvml_telemetry> nvml)
    : id_(id), options_(options), nvml_(std::move(nvml)) {
  scoped_device dev(id_.device);
  const error_context c = context("setup");
  OB_CUDA_CHECK(c, cudaSetDevice(id_.device));
  cudaDeviceProp prop{};
  OB_CUDA_CHECK(c, cudaGetDeviceProperties(&prop, id_.device));
  facts_.name = prop.name;
  facts_.sm_count = prop.multiProcessorCount;
  facts_.cc_major = prop.major;
  facts_.cc_minor = prop.minor;
  facts_.l2_bytes = static_cast<std::size_t>(prop.l2CacheSize);
  facts_.memory_bytes = prop.totalGlobalMem;
  char pci[64] = {0};
  if (cudaDeviceGetPCIBusId(pci, sizeof pci, id_.device) == cudaSuccess) facts_.pci_bus_id = pci;
  OB_CUDA_CHECK(
      c, cudaDeviceGetStreamPriorityRange(&facts_.priority_least, &facts_.priority_greatest));
  gemm_ = std::make_unique<cublaslt_gemm>(c);
}

rank_engine::~rank_engine() {
  scoped_device dev(id_.device);
  comms_.reset();
  gemm_.reset();
  workspaces_.clear();
}

error_context rank_engine::context(std::string op) const {
  return {id_.global_rank, id_.device, std::move(op)};
}

void* rank_engine::workspace(std::size_t slot) {
  while (workspaces_.size() <= slot)
    workspaces_.emplace_back(cublaslt_gemm::workspace_bytes, context("workspace"));
  return workspaces_[slot].get();
}

void rank_engine::abort_comms() noexcept {
  if (comms_) comms_->abort_all();
}

nccl_comm_cache& rank_engine::comms() {
  if (!comms_) throw runtime_failure(context().prefix() + "no NCCL communicators (internal error)");
  return *comms_;
}

void rank_engine::setup_comms(const std::vector<comm_key>& keys,
                              const std::optional<rank_grid>& grid, const std::string* world_id,
                              double timeout_s, abort_signal& abort, watchdog& dog) {
  if (keys.empty()) return;
  require_nccl_features(keys, nccl_runtime_version(), NCCL_VERSION_CODE);
  if (!comms_)
    comms_ = std::make_unique<nccl_comm_cache>(id_.global_rank, id_.world_size,
                                               parse_cta_policy(options_.nccl_cta_policy));
  comms_->use_grid(grid);
  if (!comms_->has_world()) {
    if (!world_id || world_id->size() != sizeof(ncclUniqueId))
      throw runtime_failure(context().prefix() + "no NCCL unique id for the world communicator");
    ncclUniqueId id;
    std::memcpy(&id, world_id->data(), sizeof id);
    dog.beat("creating the world NCCL communicator");
    comms_->init_world(id, timeout_s, &abort, context("setup"));
  }
  for (const comm_key& k : keys) {
    dog.beat("creating NCCL communicator " + to_string(k));
    (void)comms_->get(k, "setup", timeout_s, &abort, context("setup"));
  }
}

lowering_target rank_engine::target() const {
  lowering_target t;
  t.global_rank = id_.global_rank;
  t.world_size = id_.world_size;
  t.sm_count = facts_.sm_count;
  t.priority_least = facts_.priority_least;
  t.priority_greatest = facts_.priority_greatest;
  t.device_name = facts_.name;
  t.cc_major = facts_.cc_major;
  t.cc_minor = facts_.cc_minor;
  t.block_scaled_gemms = cublaslt_block_scaling();
  return t;
}

void rank_engine::engine_warnings(const variant_schedules& variants, const measure_options& opts,
                                  std::vector<std::string>& out) {
  const int hint = options_.sm_count_hint, sms = facts_.sm_count;
  if (hint > 0 && hint != sms && !warned_sm_hint_) {
    out.push_back(context().prefix() + "the plan assumed " + std::to_string(hint) +
                  " SMs but this GPU has " + std::to_string(sms) +
                  "; GEMMs keep their SM margin on the real count");
    warned_sm_hint_ = true;
  }
  // TE's launch-ordering event (op::waits_started) needs a launch-completion event on the comm
  // kernel; NCCL's kernels cannot carry one and the copy proxy does not yet, so the GPU runs
  // without it while the simulator models it. Said, so a sim-vs-GPU gap is not misread.
  if (uses_launch_ordering(variants, opts) && !warned_launch_order_) {
    out.push_back(context().prefix() +
                  "launch-ordering dependencies (te_launch_ordering) are not enforced on the GPU: "
                  "a GEMM may take SMs before its comm kernel is resident, which the simulator "
                  "does not allow");
    warned_launch_order_ = true;
  }
}

void rank_engine::check_memory(const case_lowering& low) const {
  std::size_t free = 0, total = 0;
  OB_CUDA_CHECK(context("setup"), cudaMemGetInfo(&free, &total));
  const std::size_t need = lowered_bytes(low);
  // Workspaces, NCCL's buffers and events take some of what is free; keep a tenth for them.
  if (need <= free / 10 * 9) return;
  const auto gib = [](std::size_t b) {
    return std::to_string(static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0)).substr(0, 6);
  };
  throw config_error(context().prefix() + "the case's buffers need " + gib(need) +
                     " GiB but the GPU has " + gib(free) + " GiB free; scale it down (step: " +
                     "--layers, --mbs, --seq, or more --tp/--pp)");
}

rank_result rank_engine::run(const variant_schedules& variants, const measure_options& opts,
                             const std::string* world_id, abort_signal& abort,
                             const stage_run* stage) {
  OB_CUDA_CHECK(context("setup"), cudaSetDevice(id_.device));
  if (opts.iters < 1) throw config_error("iterations must be at least 1");
  if (opts.warmup < 0) throw config_error("warm-up iterations must not be negative");
  if (opts.timeout_s <= 0) throw config_error("--timeout must be positive");
  lowering_target t = target();
  if (stage) t.grid = stage->grid;
  const case_lowering low = stage ? lower_stage(*stage->program, opts, options_, t)
                                  : lower_case(variants, opts, options_, t);
  check_memory(low);
  rank_result out;
  engine_warnings(variants, opts, out.warnings);
  out.warnings.insert(out.warnings.end(), low.warnings.begin(), low.warnings.end());
  case_run(*this, low, opts, world_id, abort, stage ? stage->sync : std::function<void()>{})
      .run(out);
  return out;
}

}  // namespace ob::cuda
