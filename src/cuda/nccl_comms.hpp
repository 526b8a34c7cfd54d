#pragma once
// NCCL communicators: one world communicator per rank, and one communicator per distinct
// (group, size, level, maxCTAs, cgaClusterSize) split from it and cached, so that TE's num_sm
// (which becomes maxCTAs) is honoured per op without a communicator per op. All are non-blocking
// (config.blocking = 0) so that no NCCL call can hang the host: every wait is a poll of
// ncclCommGetAsyncError with a deadline, and on expiry the communicator is aborted and a hang_error
// names the rank and what it waited for.
#include <nccl.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cuda/abort_signal.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/schedule_prep.hpp"
#include "model/cluster.hpp"

namespace ob::cuda {

// ncclGetVersion of the library actually loaded (not the header's); 0 when it cannot be read.
int nccl_runtime_version() noexcept;
// "2.28.9" from a version code in either of NCCL's encodings.
std::string nccl_version_string(int code);
// ncclConfig_t.CTAPolicy exists from 2.27: both the headers compiled against and the loaded
// library must have it.
bool nccl_cta_policy_supported(int runtime_version);
// ncclCollConfig_t and the nccl*Config calls exist from 2.31 (per-collective minCTAs, maxCTAs
// and CTAPolicy): both the headers compiled against and the loaded library must have them.
bool nccl_coll_config_supported(int runtime_version);
// Several ranks on one GPU: an error up to 2.29, allowed from 2.30 with
// NCCL_MULTI_RANK_GPU_ENABLE=1.
bool nccl_multi_rank_gpu_supported(int runtime_version);
// Why a run with more ranks than GPUs stops on an older NCCL. scripts/device_validate.sh expects
// this failure on such libraries and matches its text (tests/cuda/test_device_checks.cpp).
std::string multi_rank_gpu_refusal(int world_size, int devices, int runtime_version);
// "default" | "efficiency" | "zero" -> NCCL_CTA_POLICY_*; empty -> -1 (leave unset). Throws
// config_error for anything else.
int parse_cta_policy(const std::string& name);
// The NCCL_CTA_POLICY_* value of a collective's policy (config_error where the headers lack it).
int nccl_cta_policy_code(cta_policy p);

// Polls `comm` until it leaves ncclInProgress. An NCCL error throws runtime_failure; `abort`
// raised by another rank throws runtime_failure; no completion within timeout_s throws
// hang_error naming `what`, after aborting the communicator when `abort_on_timeout` (callers
// whose communicator is owned by a cache pass false and abort through the cache).
void wait_comm_ready(ncclComm_t comm, double timeout_s, const abort_signal* abort,
                     const std::string& what, const error_context& ctx,
                     bool abort_on_timeout = true);

// Owns one communicator. Destruction finalizes it (bounded wait) and destroys it, or aborts it
// when finalizing does not finish: a destructor must never hang.
class nccl_comm {
 public:
  nccl_comm() = default;
  explicit nccl_comm(ncclComm_t c) : comm_(c) {}
  ~nccl_comm();
  nccl_comm(const nccl_comm&) = delete;
  nccl_comm& operator=(const nccl_comm&) = delete;
  ncclComm_t get() const { return comm_; }
  // Aborts now (safe from another thread while the owner is blocked elsewhere).
  void abort() noexcept;

 private:
  ncclComm_t comm_ = nullptr;
};

// Device memory from ncclMemAlloc, which a symmetric window needs (cudaMalloc memory cannot be
// registered as one); ncclMemFree on destruction.
class nccl_mem_buffer {
 public:
  nccl_mem_buffer(std::size_t bytes, const error_context& ctx);
  ~nccl_mem_buffer();
  nccl_mem_buffer(const nccl_mem_buffer&) = delete;
  nccl_mem_buffer& operator=(const nccl_mem_buffer&) = delete;
  nccl_mem_buffer(nccl_mem_buffer&& o) noexcept;
  nccl_mem_buffer& operator=(nccl_mem_buffer&&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

// One buffer registered in a communicator's symmetric window (ncclCommWindowRegister with
// NCCL_WIN_COLL_SYMMETRIC, NCCL 2.27); deregistered on destruction, which must come before the
// buffer is freed and the communicator destroyed. Registration is collective over the
// communicator: every rank registers its buffers in the same order.
class nccl_window {
 public:
  nccl_window(ncclComm_t comm, void* buffer, std::size_t bytes, double timeout_s,
              const abort_signal* abort, const error_context& ctx);
  ~nccl_window();
  nccl_window(const nccl_window&) = delete;
  nccl_window& operator=(const nccl_window&) = delete;
  nccl_window(nccl_window&& o) noexcept;
  nccl_window& operator=(nccl_window&&) = delete;

 private:
  ncclComm_t comm_ = nullptr;
  void* win_ = nullptr;  // ncclWindow_t where the headers have it
};

class nccl_comm_cache {
 public:
  nccl_comm_cache(int global_rank, int world_size, int cta_policy);
  ~nccl_comm_cache();
  nccl_comm_cache(const nccl_comm_cache&) = delete;
  nccl_comm_cache& operator=(const nccl_comm_cache&) = delete;

  bool has_world() const;
  // Collective over all world_size ranks (every rank calls it with the same id).
  void init_world(const ncclUniqueId& id, double timeout_s, const abort_signal* abort,
                  const error_context& ctx);
  // Who is in each communicator: a training step's layout (cuda/step_groups.hpp), or none for
  // the single-layer rule (comm_membership). Another layout than the cached communicators were
  // split for drops them (collective: every rank of a case passes the same layout).
  void use_grid(const std::optional<rank_grid>& grid);
  // The communicator for `key`, split from the world on first use (collective: every rank must
  // ask for the same keys in the same order; comm_keys_needed sorts them). nullptr when this
  // rank is not in it (a step's link or embedding group of other stages): it still takes part
  // in the split, with NCCL_SPLIT_NOCOLOR.
  ncclComm_t get(const comm_key& key, const std::string& op_name, double timeout_s,
                 const abort_signal* abort, const error_context& ctx);
  group_membership membership(const comm_key& key, const std::string& op_name) const;
  // Throws runtime_failure when any communicator reports an asynchronous error.
  void check_async_errors(const error_context& ctx) const;
  // Aborts every communicator (watchdog, or another rank failed). Later get() calls fail.
  void abort_all() noexcept;
  bool aborted() const;
  std::size_t size() const;

 private:
  ncclConfig_t make_config(const comm_key* key) const;
  ncclComm_t split(ncclComm_t parent, const comm_key& key, const std::string& op_name,
                   double timeout_s, const abort_signal* abort, const error_context& ctx);

  const int global_rank_, world_size_, cta_policy_;
  mutable std::mutex mu_;
  bool aborted_ = false;
  std::unique_ptr<nccl_comm> world_;
  std::optional<rank_grid> grid_;
  std::map<comm_key, std::unique_ptr<nccl_comm>> comms_;
};

}  // namespace ob::cuda
