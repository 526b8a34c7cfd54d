#include "cuda/cublaslt_gemm.hpp"

#include <algorithm>
#include <cstdint>

#include "base/error.hpp"

namespace ob::cuda {

kernels::elem_type operand_elem(dtype t) {
  switch (t) {
    case dtype::bf16:
      return kernels::elem_type::bf16;
    case dtype::fp16:
      return kernels::elem_type::fp16;
    case dtype::fp8:
    case dtype::mxfp8:
    case dtype::nvfp4:  // filled as fp8 bytes: every pair of nibbles is a finite e2m1 pair
      return kernels::elem_type::fp8_e4m3;
    case dtype::fp32:
      return kernels::elem_type::fp32;  // collective buffers only, never a GEMM operand
  }
  return kernels::elem_type::bf16;
}

kernels::elem_type output_elem(dtype t) { return operand_elem(gemm_output_type(t)); }

namespace {

#if CUBLAS_VERSION >= 120800
constexpr bool headers_block_scaling = true;
#else
constexpr bool headers_block_scaling = false;
#endif

}  // namespace

bool cublaslt_block_scaling() { return headers_block_scaling && cublasLtGetVersion() >= 120800; }

namespace {

cudaDataType_t cuda_type(kernels::elem_type t) {
  switch (t) {
    case kernels::elem_type::bf16:
      return CUDA_R_16BF;
    case kernels::elem_type::fp16:
      return CUDA_R_16F;
    case kernels::elem_type::fp8_e4m3:
      return CUDA_R_8F_E4M3;
    case kernels::elem_type::fp32:
      return CUDA_R_32F;
  }
  return CUDA_R_16BF;
}

template <class T>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& value,
              const char* name, const error_context& ctx) {
  check_cublas(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(T)), name, ctx);
}

// The operands' cuBLASLt type: operand_elem's, except nvfp4's packed e2m1.
cudaDataType_t operand_type(dtype t) {
#if CUBLAS_VERSION >= 120800
  if (t == dtype::nvfp4) return CUDA_R_4F_E2M1;
#endif
  return cuda_type(operand_elem(t));
}

// A column-major rows x cols matrix; with batch > 1, that many of them, each rows x cols after
// the previous one (a grouped GEMM's members).
matrix_layout_handle make_layout(cudaDataType_t t, std::int64_t rows, std::int64_t cols,
                                 std::int64_t ld, int batch, const error_context& ctx) {
  cublasLtMatrixLayout_t l = nullptr;
  OB_CUBLAS_CHECK(ctx, cublasLtMatrixLayoutCreate(&l, t, static_cast<std::uint64_t>(rows),
                                                  static_cast<std::uint64_t>(cols), ld));
  matrix_layout_handle owner(l);
  if (batch > 1) {
    const auto count = static_cast<std::int32_t>(batch);
    const std::int64_t stride = rows * cols;  // elements
    OB_CUBLAS_CHECK(ctx, cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                          &count, sizeof count));
    OB_CUBLAS_CHECK(ctx,
                    cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                     &stride, sizeof stride));
  }
  return owner;
}

// The heuristic's constraints: the workspace every stream has, and the operands' alignment.
matmul_pref_handle make_preference(const gemm_key& g, const error_context& ctx) {
  cublasLtMatmulPreference_t pref = nullptr;
  OB_CUBLAS_CHECK(ctx, cublasLtMatmulPreferenceCreate(&pref));
  matmul_pref_handle owner(pref);
  const std::uint64_t ws = cublaslt_gemm::workspace_bytes;
  OB_CUBLAS_CHECK(ctx, cublasLtMatmulPreferenceSetAttribute(
                           pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  if (g.alignment < 256) {
    const auto align = static_cast<std::uint32_t>(g.alignment);
    for (auto attr :
         {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      OB_CUBLAS_CHECK(ctx, cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof align));
  }
  return owner;
}

}  // namespace

struct cublaslt_gemm::plan {
  matmul_desc_handle desc;
  matrix_layout_handle a, b, c;  // c doubles as d: same type and shape
  cublasLtMatmulAlgo_t algo{};
};

cublaslt_gemm::cublaslt_gemm(const error_context& ctx) {
  cublasLtHandle_t h = nullptr;
  OB_CUBLAS_CHECK(ctx, cublasLtCreate(&h));
  handle_ = cublaslt_handle(h);
  scale_ = device_buffer(sizeof(float), ctx);
  const float one = 1.0f;
  OB_CUDA_CHECK(ctx, cudaMemcpy(scale_.get(), &one, sizeof one, cudaMemcpyHostToDevice));
}

cublaslt_gemm::~cublaslt_gemm() = default;

const cublaslt_gemm::plan& cublaslt_gemm::plan_for(const gemm_key& g, const error_context& ctx) {
  if (auto it = plans_.find(g); it != plans_.end()) return *it->second;
  if (g.m <= 0 || g.n <= 0 || g.k <= 0)
    throw config_error(ctx.prefix() + "GEMM " + to_string(g) +
                       ": every dimension must be positive");

  auto p = std::make_unique<plan>();
  cublasLtMatmulDesc_t desc = nullptr;
  OB_CUBLAS_CHECK(ctx, cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  p->desc = matmul_desc_handle(desc);
  // Column-major view: D^T[n,m] = op(W)[n,k] · X^T[k,m] with W stored k x n (ld k), op = T.
  set_desc(desc, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T, "set TRANSA", ctx);
  set_desc(desc, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N, "set TRANSB", ctx);
  if (g.sm_target > 0)
    set_desc(desc, CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, static_cast<std::int32_t>(g.sm_target),
             "set CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET", ctx);
  set_scaling(desc, g, ctx);
  const cudaDataType_t in = operand_type(g.type);
  // D, and C when the GEMM accumulates (beta = 1 reads C = D): fp32 main grads with
  // grad_reduce_in_fp32, as TE's wgrad GEMMs with fuse_wgrad_accumulation write them.
  const cudaDataType_t out = cuda_type(operand_elem(output_type(g)));
  p->a = make_layout(in, g.k, g.n, g.k, g.batch, ctx);
  p->b = make_layout(in, g.k, g.m, g.k, g.batch, ctx);
  p->c = make_layout(out, g.n, g.m, g.n, g.batch, ctx);

  const matmul_pref_handle pref_owner = make_preference(g, ctx);
  cublasLtMatmulPreference_t pref = pref_owner.get();
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  // "No algorithm" comes back either as found == 0 or as CUBLAS_STATUS_NOT_SUPPORTED; both get
  // the message that says what to change.
  const cublasStatus_t hrc =
      cublasLtMatmulAlgoGetHeuristic(handle_.get(), desc, p->a.get(), p->b.get(), p->c.get(),
                                     p->c.get(), pref, 1, &result, &found);
  if (hrc == CUBLAS_STATUS_NOT_SUPPORTED)
    found = 0;
  else
    check_cublas(hrc, "cublasLtMatmulAlgoGetHeuristic(" + to_string(g) + ")", ctx);
  if (found == 0)
    throw runtime_failure(ctx.prefix() + "cuBLASLt has no algorithm for GEMM " + to_string(g) +
                          " with operands aligned to " + std::to_string(g.alignment) +
                          " bytes (dimensions and chunk offsets must be multiples of 16 bytes "
                          "for this dtype)");
  p->algo = result.algo;
  return *plans_.emplace(g, std::move(p)).first->second;
}

void cublaslt_gemm::prepare(const gemm_key& g, const error_context& ctx) { (void)plan_for(g, ctx); }

// fp8: per-tensor scales of 1.0 and fast accumulation, as TE's forward GEMMs. mxfp8 and nvfp4:
// cuBLASLt's block scale modes on A (W) and B (X); their scale pointers come with each run.
void cublaslt_gemm::set_scaling(cublasLtMatmulDesc_t desc, const gemm_key& g,
                                const error_context& ctx) const {
  if (g.type == dtype::fp8) {
    const void* s = scale_.get();
    set_desc(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, s, "set A_SCALE_POINTER", ctx);
    set_desc(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, s, "set B_SCALE_POINTER", ctx);
    set_desc(desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, static_cast<std::int8_t>(1), "set FAST_ACCUM",
             ctx);
    return;
  }
  if (scale_block(g.type) == 0) return;
  if (!cublaslt_block_scaling())
    throw config_error(ctx.prefix() + "GEMM " + to_string(g) +
                       " needs cuBLASLt's block scaling (cuBLAS >= 12.8 in the headers and the "
                       "library loaded)");
#if CUBLAS_VERSION >= 120800
  const auto mode =
      static_cast<std::int32_t>(g.type == dtype::mxfp8 ? CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0
                                                       : CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3);
  set_desc(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, mode, "set A_SCALE_MODE", ctx);
  set_desc(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, mode, "set B_SCALE_MODE", ctx);
  // Non-null while the heuristic is asked, as a launch will have; each run sets its own.
  const void* placeholder = scale_.get();
  set_desc(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, placeholder, "set A_SCALE_POINTER", ctx);
  set_desc(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, placeholder, "set B_SCALE_POINTER", ctx);
#endif
}

void cublaslt_gemm::run(const gemm_key& key, const gemm_operands& ops, void* workspace,
                        cudaStream_t stream, const error_context& ctx) {
  gemm_key g = key;
  g.alignment = std::min(g.alignment, pointer_alignment(ops.x, ops.w, ops.d));
  const plan& p = plan_for(g, ctx);
  if (scale_block(g.type) > 0) {
    if (!ops.x_scale || !ops.w_scale)
      throw runtime_failure(ctx.prefix() + "GEMM " + to_string(g) +
                            " has no block scales (internal error)");
    // Set per run: the plan is shared by every GEMM of this shape, each with its own scales.
    set_desc(p.desc.get(), CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, ops.w_scale, "set A_SCALE_POINTER",
             ctx);
    set_desc(p.desc.get(), CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, ops.x_scale, "set B_SCALE_POINTER",
             ctx);
  }
  // beta = 1 adds the product into D (C is D itself): gradient_accumulation_fusion's wgrad.
  const float alpha = 1.0f, beta = g.accumulate ? 1.0f : 0.0f;
  check_cublas(cublasLtMatmul(handle_.get(), p.desc.get(), &alpha, ops.w, p.a.get(), ops.x,
                              p.b.get(), &beta, ops.d, p.c.get(), ops.d, p.c.get(), &p.algo,
                              workspace, workspace_bytes, stream),
               "cublasLtMatmul(" + to_string(g) + ")", ctx);
}

}  // namespace ob::cuda
