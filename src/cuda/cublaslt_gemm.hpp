#pragma once
// cuBLASLt GEMMs as the executor runs them: D[m,n] = X[m,k] · W[n,k]^T, row-major, the layout of
// a Linear layer's forward pass. In cuBLASLt's column-major terms that is the "TN" case, which
// Hopper requires for FP8, so every dtype uses it and only the types change.
#include <cstddef>
#include <map>
#include <memory>

#include "cuda/cuda_check.hpp"
#include "cuda/cuda_raii.hpp"
#include "cuda/gemm_key.hpp"
#include "kernels/kernels.cuh"
#include "model/ir.hpp"

namespace ob::cuda {

// A GEMM's device pointers. x: m*k operands, w: n*k operands, d: m*n outputs, each times the
// key's batch (members one after the other); x_scale and w_scale: the block scales of mxfp8 and
// nvfp4 operands (gemm_key.hpp's scale_bytes per member), null for other types.
struct gemm_operands {
  const void* x = nullptr;
  const void* w = nullptr;
  void* d = nullptr;
  const void* x_scale = nullptr;
  const void* w_scale = nullptr;
};

// Whether this build's cuBLASLt headers and the loaded library both have the block scale modes
// (VEC32_UE8M0 for mxfp8, VEC16_UE4M3 for nvfp4: cuBLAS 12.8 on).
bool cublaslt_block_scaling();

// Element type of the operands (also any buffer's elements: what fills them; nvfp4 is filled as
// bytes) and of a non-accumulating GEMM's output (output_type(key) gives an accumulating one's).
kernels::elem_type operand_elem(dtype t);
kernels::elem_type output_elem(dtype t);

class cublaslt_gemm {
 public:
  // 32 MiB: what cuBLAS recommends on Hopper; one workspace per stream that runs GEMMs.
  static constexpr std::size_t workspace_bytes = std::size_t{32} << 20;

  explicit cublaslt_gemm(const error_context& ctx);
  ~cublaslt_gemm();
  cublaslt_gemm(const cublaslt_gemm&) = delete;
  cublaslt_gemm& operator=(const cublaslt_gemm&) = delete;

  // Enqueues one GEMM (a grouped one: one strided-batched matmul) on `stream`; workspace must
  // hold workspace_bytes and must not be used by a concurrently running GEMM.
  void run(const gemm_key& g, const gemm_operands& ops, void* workspace, cudaStream_t stream,
           const error_context& ctx);

  // Resolves (and caches) the plan without running: lets setup fail before timing starts.
  void prepare(const gemm_key& g, const error_context& ctx);
  std::size_t cached_plans() const { return plans_.size(); }

 private:
  struct plan;
  const plan& plan_for(const gemm_key& g, const error_context& ctx);
  void set_scaling(cublasLtMatmulDesc_t desc, const gemm_key& g, const error_context& ctx) const;

  cublaslt_handle handle_;
  device_buffer scale_;  // one float 1.0: the FP8 A/B scale pointers
  std::map<gemm_key, std::unique_ptr<plan>> plans_;
};

}  // namespace ob::cuda
