#pragma once
// cuBLASLt GEMMs as the executor runs them: D[m,n] = X[m,k] · W[n,k]^T, row-major, the layout of
// a Linear layer's forward pass. In cuBLASLt's column-major terms that is the "TN" case, which
// Hopper requires for FP8, so every dtype uses it and only the types change.
#include <cstddef>
#include <map>
#include <memory>

#include "core/ir.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/cuda_raii.hpp"
#include "kernels/kernels.cuh"

namespace ob::cuda {

// What a cached plan depends on: the heuristic is asked with the SM target set, so each
// (shape, dtype, sm_target) gets its own algorithm.
struct gemm_key {
  std::int64_t m = 0, n = 0, k = 0;
  dtype type = dtype::bf16;
  int sm_target = 0;  // 0 = all SMs
  // Guaranteed alignment (bytes) of the operand pointers. The heuristic assumes 256 unless told
  // otherwise, and an M-chunk of a GEMM can start at a less aligned row; run() fills it in.
  int alignment = 256;
  auto operator<=>(const gemm_key&) const = default;
};

// Largest power of two <= 256 dividing every address (256 for null pointers).
int pointer_alignment(const void* a, const void* b, const void* c);

// Element type of the operands and of the output (fp8 GEMMs write bf16, as TE's fprop does).
kernels::elem_type operand_elem(dtype t);
kernels::elem_type output_elem(dtype t);
inline std::size_t output_bytes_per_elem(dtype) { return 2; }

class cublaslt_gemm {
 public:
  // 32 MiB: what cuBLAS recommends on Hopper; one workspace per stream that runs GEMMs.
  static constexpr std::size_t workspace_bytes = std::size_t{32} << 20;

  explicit cublaslt_gemm(const error_context& ctx);
  ~cublaslt_gemm();
  cublaslt_gemm(const cublaslt_gemm&) = delete;
  cublaslt_gemm& operator=(const cublaslt_gemm&) = delete;

  // Enqueues one GEMM on `stream`. x: m*k operands, w: n*k operands, d: m*n outputs; workspace
  // must hold workspace_bytes and must not be used by a concurrently running GEMM.
  void run(const gemm_key& g, const void* x, const void* w, void* d, void* workspace,
           cudaStream_t stream, const error_context& ctx);

  // Resolves (and caches) the plan without running: lets setup fail before timing starts.
  void prepare(const gemm_key& g, const error_context& ctx);
  std::size_t cached_plans() const { return plans_.size(); }

 private:
  struct plan;
  const plan& plan_for(const gemm_key& g, const error_context& ctx);

  cublaslt_handle handle_;
  device_buffer scale_;  // one float 1.0: the FP8 A/B scale pointers
  std::map<gemm_key, std::unique_ptr<plan>> plans_;
};

}  // namespace ob::cuda
