#include "cuda/cuda_check.hpp"

#include "base/error.hpp"

namespace ob::cuda {

std::string error_context::prefix() const {
  std::string out;
  if (rank >= 0) out = "rank " + std::to_string(rank);
  if (device >= 0)
    out += out.empty() ? "GPU " + std::to_string(device) : " (GPU " + std::to_string(device) + ")";
  if (!op.empty()) out += (out.empty() ? "op '" : ", op '") + op + "'";
  return out.empty() ? out : out + ": ";
}

void throw_cuda(cudaError_t rc, std::string_view call, const error_context& ctx) {
  throw runtime_failure(ctx.prefix() + std::string(call) + " failed: " + cudaGetErrorString(rc) +
                        " (" + cudaGetErrorName(rc) + ")");
}

void throw_cublas(cublasStatus_t rc, std::string_view call, const error_context& ctx) {
  throw runtime_failure(ctx.prefix() + std::string(call) + " failed: cuBLAS status " +
                        std::to_string(static_cast<int>(rc)) + " (" + cublasLtGetStatusName(rc) +
                        ": " + cublasLtGetStatusString(rc) + ")");
}

void throw_nccl(ncclResult_t rc, std::string_view call, const error_context& ctx, ncclComm_t comm) {
  std::string msg = ctx.prefix() + std::string(call) + " failed: " + ncclGetErrorString(rc);
  // The last-error string carries NCCL's own detail (which peer, which transport).
  if (const char* last = ncclGetLastError(comm); last && *last)
    msg += " (" + std::string(last) + ")";
  throw runtime_failure(msg);
}

}  // namespace ob::cuda
