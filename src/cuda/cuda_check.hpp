#pragma once
// Error checks for CUDA, cuBLASLt and NCCL calls. Every failure becomes a runtime_failure whose
// message names the rank, the op being enqueued (if any) and the failing call, so a report from
// an 8-rank run says which rank and which op broke, not just "illegal address".
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>
#include <string_view>

namespace ob::cuda {

// Who was calling: filled by the executor as it walks a schedule.
struct error_context {
  int rank = -1;    // global rank; -1 = not known yet
  int device = -1;  // CUDA ordinal; -1 = not known yet
  std::string op;   // op name, or a phase such as "setup" / "verify"

  error_context with_op(std::string name) const {
    error_context c = *this;
    c.op = std::move(name);
    return c;
  }
  // "rank 3 (GPU 3), op 'ag_ln1': " (parts that are unknown are left out).
  std::string prefix() const;
};

[[noreturn]] void throw_cuda(cudaError_t rc, std::string_view call, const error_context& ctx);
[[noreturn]] void throw_cublas(cublasStatus_t rc, std::string_view call, const error_context& ctx);
[[noreturn]] void throw_nccl(ncclResult_t rc, std::string_view call, const error_context& ctx,
                             ncclComm_t comm = nullptr);

inline void check_cuda(cudaError_t rc, std::string_view call, const error_context& ctx) {
  if (rc != cudaSuccess) throw_cuda(rc, call, ctx);
}
inline void check_cublas(cublasStatus_t rc, std::string_view call, const error_context& ctx) {
  if (rc != CUBLAS_STATUS_SUCCESS) throw_cublas(rc, call, ctx);
}
// ncclInProgress is not an error for non-blocking communicators; callers that can see it handle
// it before calling this.
inline void check_nccl(ncclResult_t rc, std::string_view call, const error_context& ctx,
                       ncclComm_t comm = nullptr) {
  if (rc != ncclSuccess) throw_nccl(rc, call, ctx, comm);
}

}  // namespace ob::cuda

// The call's source text goes into the message, so it names exactly what failed.
#define OB_CUDA_CHECK(ctx, ...) ::ob::cuda::check_cuda((__VA_ARGS__), #__VA_ARGS__, (ctx))
#define OB_CUBLAS_CHECK(ctx, ...) ::ob::cuda::check_cublas((__VA_ARGS__), #__VA_ARGS__, (ctx))
#define OB_NCCL_CHECK(ctx, comm, ...) \
  ::ob::cuda::check_nccl((__VA_ARGS__), #__VA_ARGS__, (ctx), (comm))
