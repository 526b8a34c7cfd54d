#include "cuda/nccl_comms.hpp"

#include <chrono>
#include <thread>
#include <utility>

#include "base/error.hpp"
#include "cuda/step_groups.hpp"

namespace ob::cuda {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// Back off from 50 us to 5 ms: fast for the common sub-millisecond case, cheap for long waits.
void backoff(int& step) {
  std::this_thread::sleep_for(std::chrono::microseconds(std::min(5000, 50 << std::min(step, 7))));
  ++step;
}

}  // namespace

int nccl_runtime_version() noexcept {
  int v = 0;
  return ncclGetVersion(&v) == ncclSuccess ? v : 0;
}

std::string nccl_version_string(int code) {
  if (code <= 0) return "unknown";
  // NCCL_VERSION: X*1000+Y*100+Z up to 2.8, X*10000+Y*100+Z after.
  const bool old_encoding = code < 10000;
  const int major = old_encoding ? code / 1000 : code / 10000;
  const int minor = old_encoding ? (code % 1000) / 100 : (code % 10000) / 100;
  const int patch = code % 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

namespace {

// A feature of NCCL `version` (NCCL_VERSION code): both the headers compiled against and the
// loaded library must have it.
bool headers_and_library_have(int runtime_version, int version) {
  return NCCL_VERSION_CODE >= version && runtime_version >= version;
}

}  // namespace

bool nccl_cta_policy_supported(int runtime_version) {
  return headers_and_library_have(runtime_version, NCCL_VERSION(2, 27, 0));
}

bool nccl_coll_config_supported(int runtime_version) {
  return headers_and_library_have(runtime_version, NCCL_VERSION(2, 31, 0));
}

bool nccl_multi_rank_gpu_supported(int runtime_version) {
  return runtime_version >= NCCL_VERSION(2, 30, 0);
}

std::string multi_rank_gpu_refusal(int world_size, int devices, int runtime_version) {
  return "more ranks (" + std::to_string(world_size) + ") than GPUs per node (" +
         std::to_string(devices) +
         "): several ranks on one GPU need NCCL >= 2.30 with NCCL_MULTI_RANK_GPU_ENABLE=1, but "
         "the loaded NCCL is " +
         nccl_version_string(runtime_version) + "; run one rank per GPU, or --backend loopback";
}

int nccl_cta_policy_code(cta_policy p) {
  switch (p) {
    case cta_policy::standard:
      return parse_cta_policy("default");
    case cta_policy::efficiency:
      return parse_cta_policy("efficiency");
    case cta_policy::zero:
      return parse_cta_policy("zero");
  }
  return -1;
}

int parse_cta_policy(const std::string& name) {
  if (name.empty()) return -1;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 27, 0)
  if (name == "default") return NCCL_CTA_POLICY_DEFAULT;
  if (name == "efficiency") return NCCL_CTA_POLICY_EFFICIENCY;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 28, 0)
  if (name == "zero") return NCCL_CTA_POLICY_ZERO;
#endif
#endif
  throw config_error("NCCL CTA policy '" + name +
                     "': expected default, efficiency or zero (NCCL >= 2.27; zero >= 2.28)");
}

void wait_comm_ready(ncclComm_t comm, double timeout_s, const abort_signal* abort,
                     const std::string& what, const error_context& ctx, bool abort_on_timeout) {
  const auto start = clock_type::now();
  int step = 0;
  for (;;) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(comm, &state);
    if (rc != ncclSuccess) throw_nccl(rc, "ncclCommGetAsyncError while " + what, ctx, comm);
    if (state == ncclSuccess) return;
    if (state != ncclInProgress) throw_nccl(state, what, ctx, comm);
    if (abort && abort->raised())
      throw runtime_failure(ctx.prefix() + "stopped " + what +
                            " because another rank failed: " + abort->reason());
    if (seconds_since(start) > timeout_s) {
      if (abort_on_timeout) (void)ncclCommAbort(comm);
      throw hang_error(ctx.prefix() + "timed out after " +
                       std::to_string(static_cast<int>(timeout_s)) + " s " + what +
                       (abort_on_timeout ? "; NCCL communicator aborted" : "") +
                       " (is every rank running? raise --timeout for slow bootstraps)");
    }
    backoff(step);
  }
}

nccl_comm::~nccl_comm() {
  if (!comm_) return;
  // Finalize flushes outstanding work; on a non-blocking communicator it may take a while, but a
  // destructor must not hang, so a slow or failing finalize falls back to abort.
  const ncclResult_t rc = ncclCommFinalize(comm_);
  if (rc == ncclSuccess || rc == ncclInProgress) {
    const auto start = clock_type::now();
    int step = 0;
    for (;;) {
      ncclResult_t state = ncclSuccess;
      if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) break;
      if (state == ncclSuccess) {
        (void)ncclCommDestroy(comm_);
        return;
      }
      if (state != ncclInProgress || seconds_since(start) > 30.0) break;
      backoff(step);
    }
  }
  (void)ncclCommAbort(comm_);
}

void nccl_comm::abort() noexcept {
  if (comm_) (void)ncclCommAbort(comm_);
  comm_ = nullptr;
}

nccl_comm_cache::nccl_comm_cache(int global_rank, int world_size, int cta_policy)
    : global_rank_(global_rank), world_size_(world_size), cta_policy_(cta_policy) {}

nccl_comm_cache::~nccl_comm_cache() {
  // Children before the parent they were split from.
  comms_.clear();
  world_.reset();
}

ncclConfig_t nccl_comm_cache::make_config(const comm_key* key) const {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  if (key) {
    if (key->max_ctas > 0) config.maxCTAs = key->max_ctas;
    if (key->min_ctas > 0) config.minCTAs = key->min_ctas;
    if (key->cga_cluster_size > 0) config.cgaClusterSize = key->cga_cluster_size;
  }
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 27, 0)
  // An older library would not know the field; only set it where it exists on both sides (a
  // communicator's own policy was checked against the loaded NCCL by require_nccl_features).
  const int policy =
      key && key->policy != cta_policy::standard ? nccl_cta_policy_code(key->policy) : cta_policy_;
  if (policy >= 0 && nccl_cta_policy_supported(nccl_runtime_version())) config.CTAPolicy = policy;
#endif
  return config;
}

bool nccl_comm_cache::has_world() const {
  std::lock_guard lock(mu_);
  return world_ != nullptr;
}

void nccl_comm_cache::init_world(const ncclUniqueId& id, double timeout_s,
                                 const abort_signal* abort, const error_context& ctx) {
  ncclConfig_t config = make_config(nullptr);
  ncclComm_t comm = nullptr;
  const ncclResult_t rc = ncclCommInitRankConfig(&comm, world_size_, id, global_rank_, &config);
  if (rc != ncclSuccess && rc != ncclInProgress) {
    if (comm) (void)ncclCommAbort(comm);
    throw_nccl(rc, "ncclCommInitRankConfig(world of " + std::to_string(world_size_) + " ranks)",
               ctx);
  }
  try {
    wait_comm_ready(comm, timeout_s, abort,
                    "creating the world communicator (" + std::to_string(world_size_) + " ranks)",
                    ctx);
  } catch (const hang_error&) {
    throw;  // already aborted
  } catch (...) {
    (void)ncclCommAbort(comm);
    throw;
  }
  std::lock_guard lock(mu_);
  world_ = std::make_unique<nccl_comm>(comm);
}

void nccl_comm_cache::use_grid(const std::optional<rank_grid>& grid) {
  std::map<comm_key, std::unique_ptr<nccl_comm>> stale;
  {
    std::lock_guard lock(mu_);
    if (grid == grid_) return;
    grid_ = grid;
    stale.swap(comms_);
  }
  // Finalized outside the lock: finalizing waits for the other ranks, which do the same.
  stale.clear();
}

group_membership nccl_comm_cache::membership(const comm_key& key,
                                             const std::string& op_name) const {
  std::optional<rank_grid> grid;
  {
    std::lock_guard lock(mu_);
    grid = grid_;
  }
  if (grid) return step_membership(key, *grid, global_rank_, op_name);
  return comm_membership(key.group, key.group_size, global_rank_, world_size_, op_name);
}

ncclComm_t nccl_comm_cache::get(const comm_key& key, const std::string& op_name, double timeout_s,
                                const abort_signal* abort, const error_context& ctx) {
  ncclComm_t parent = nullptr;
  {
    std::lock_guard lock(mu_);
    if (aborted_) throw runtime_failure(ctx.prefix() + "NCCL communicators were aborted earlier");
    if (auto it = comms_.find(key); it != comms_.end()) return it->second->get();
    if (!world_) throw runtime_failure(ctx.prefix() + "no world communicator (internal error)");
    parent = world_->get();
  }
  ncclComm_t comm = split(parent, key, op_name, timeout_s, abort, ctx);
  std::lock_guard lock(mu_);
  return comms_.emplace(key, std::make_unique<nccl_comm>(comm)).first->second->get();
}

ncclComm_t nccl_comm_cache::split(ncclComm_t parent, const comm_key& key,
                                  const std::string& op_name, double timeout_s,
                                  const abort_signal* abort, const error_context& ctx) {
  const group_membership m = membership(key, op_name);
  const bool member = m.color >= 0;
  ncclConfig_t config = make_config(&key);
  ncclComm_t comm = nullptr;
  const std::string what = "creating the " + to_string(key) + " communicator for op '" + op_name +
                           "' (ncclCommSplit color " +
                           (member ? std::to_string(m.color) : std::string("none")) + ")";
  const ncclResult_t rc =
      ncclCommSplit(parent, member ? m.color : NCCL_SPLIT_NOCOLOR, m.position, &comm, &config);
  if (rc != ncclSuccess && rc != ncclInProgress) {
    if (comm) (void)ncclCommAbort(comm);
    throw_nccl(rc, "ncclCommSplit while " + what, ctx, parent);
  }
  try {
    if (comm) wait_comm_ready(comm, timeout_s, abort, what, ctx);
    // The split runs as a job of the parent: a rank outside the new group (no communicator
    // back) learns it finished from the parent, and no rank splits the parent again before.
    wait_comm_ready(parent, timeout_s, abort, what, ctx, /*abort_on_timeout=*/false);
  } catch (const hang_error&) {
    throw;
  } catch (...) {
    if (comm) (void)ncclCommAbort(comm);
    throw;
  }
  return comm;
}

void nccl_comm_cache::check_async_errors(const error_context& ctx) const {
  std::lock_guard lock(mu_);
  auto check = [&](const nccl_comm& c, const std::string& which) {
    ncclResult_t state = ncclSuccess;
    if (ncclCommGetAsyncError(c.get(), &state) != ncclSuccess) return;
    if (state != ncclSuccess && state != ncclInProgress)
      throw_nccl(state, "asynchronous NCCL error on the " + which + " communicator", ctx, c.get());
  };
  if (aborted_) return;
  if (world_) check(*world_, "world");
  for (const auto& [key, c] : comms_)
    if (c->get()) check(*c, to_string(key));
}

void nccl_comm_cache::abort_all() noexcept {
  std::lock_guard lock(mu_);
  if (aborted_) return;
  aborted_ = true;
  for (auto& [key, c] : comms_) c->abort();
  if (world_) world_->abort();
}

bool nccl_comm_cache::aborted() const {
  std::lock_guard lock(mu_);
  return aborted_;
}

std::size_t nccl_comm_cache::size() const {
  std::lock_guard lock(mu_);
  return comms_.size() + (world_ ? 1 : 0);
}

nccl_mem_buffer::nccl_mem_buffer(std::size_t bytes, const error_context& ctx) {
  check_nccl(ncclMemAlloc(&ptr_, bytes), "ncclMemAlloc(" + std::to_string(bytes) + " bytes)", ctx);
}

nccl_mem_buffer::~nccl_mem_buffer() {
  if (ptr_) (void)ncclMemFree(ptr_);
}

nccl_mem_buffer::nccl_mem_buffer(nccl_mem_buffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)) {}

nccl_window::nccl_window(ncclComm_t comm, void* buffer, std::size_t bytes, double timeout_s,
                         const abort_signal* abort, const error_context& ctx)
    : comm_(comm) {
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 27, 0)
  ncclWindow_t win = nullptr;
  const ncclResult_t rc =
      ncclCommWindowRegister(comm, buffer, bytes, &win, NCCL_WIN_COLL_SYMMETRIC);
  if (rc != ncclSuccess && rc != ncclInProgress)
    throw_nccl(rc, "ncclCommWindowRegister(" + std::to_string(bytes) + " bytes, symmetric)", ctx,
               comm);
  wait_comm_ready(comm, timeout_s, abort, "ncclCommWindowRegister", ctx, false);
  win_ = win;
#else
  (void)buffer, (void)bytes, (void)timeout_s, (void)abort;
  throw config_error(ctx.prefix() + "symmetric windows need NCCL >= 2.27 headers; built against " +
                     nccl_version_string(NCCL_VERSION_CODE));
#endif
}

nccl_window::~nccl_window() {
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 27, 0)
  if (win_) (void)ncclCommWindowDeregister(comm_, static_cast<ncclWindow_t>(win_));
#endif
}

nccl_window::nccl_window(nccl_window&& o) noexcept
    : comm_(std::exchange(o.comm_, nullptr)), win_(std::exchange(o.win_, nullptr)) {}

}  // namespace ob::cuda
