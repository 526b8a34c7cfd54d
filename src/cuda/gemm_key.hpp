#pragma once
// What identifies one cuBLASLt GEMM, and the byte sizes of its operands and output. Pure C++ (no
// CUDA headers): the lowering decides the keys on the host and cublaslt_gemm runs them.
#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/ir.hpp"

namespace ob::cuda {

// What a cached plan depends on: the heuristic is asked with the SM target set, so each
// (shape, dtype, sm_target) gets its own algorithm.
struct gemm_key {
  std::int64_t m = 0, n = 0, k = 0;
  dtype type = dtype::bf16;
  int sm_target = 0;  // 0 = all SMs
  // Guaranteed alignment (bytes) of the operand pointers. The heuristic assumes 256 unless told
  // otherwise, and an M-chunk of a GEMM can start at a less aligned row.
  int alignment = 256;
  // Members of a grouped GEMM (MoE experts, docs/MOE.md §15): `batch` GEMMs of this shape, each
  // with its own X, W and D, packed one after the other; run as one strided-batched cuBLASLt
  // matmul, one kernel over every member's tiles. 1: a plain GEMM.
  int batch = 1;
  // beta = 1 with C = D in `accumulate_type` (gemm_params::accumulate: a weight-gradient GEMM
  // adding into Megatron's main_grad), else beta = 0 into gemm_output_type(type).
  bool accumulate = false;
  dtype accumulate_type = dtype::fp32;
  auto operator<=>(const gemm_key&) const = default;
};

// Largest power of two <= 256 dividing every value (256 when all are 0). Allocations start
// 256-aligned (cudaMalloc), so for byte offsets into them this is the pointers' alignment too.
inline int offset_alignment(std::uintptr_t a, std::uintptr_t b, std::uintptr_t c) {
  const std::uintptr_t bits = a | b | c | std::uintptr_t{256};
  return static_cast<int>(bits & (~bits + 1));  // lowest set bit
}

// Largest power of two <= 256 dividing every address (256 for null pointers).
inline int pointer_alignment(const void* a, const void* b, const void* c) {
  return offset_alignment(reinterpret_cast<std::uintptr_t>(a), reinterpret_cast<std::uintptr_t>(b),
                          reinterpret_cast<std::uintptr_t>(c));
}

// Block-scaled operands (Blackwell): mxfp8 scales every 32 elements along K with a UE8M0 byte,
// nvfp4 every 16 with a UE4M3 byte; 0 for every other type.
inline int scale_block(dtype t) { return t == dtype::mxfp8 ? 32 : t == dtype::nvfp4 ? 16 : 0; }
// Bytes of `elems` operand elements: nvfp4 packs two in a byte, the rest as dtype_bytes.
inline std::size_t operand_bytes(dtype t, std::int64_t elems) {
  const auto e = static_cast<std::size_t>(elems);
  return t == dtype::nvfp4 ? (e + 1) / 2 : e * dtype_bytes(t);
}
// Bytes of one operand's block scales, `rows` rows of `k` elements (K innermost), in cuBLASLt's
// tiled layout: rows padded to 128, scales per row padded to 4 (docs/MOE.md §15).
inline std::size_t scale_bytes(dtype t, std::int64_t rows, std::int64_t k) {
  const int block = scale_block(t);
  if (block == 0) return 0;
  const auto up = [](std::int64_t v, std::int64_t to) { return (v + to - 1) / to * to; };
  return static_cast<std::size_t>(up(rows, 128) * up((k + block - 1) / block, 4));
}

// The output type: fp8 GEMMs write bf16, as TE's fprop does; bf16 and fp16 write their own type.
inline dtype gemm_output_type(dtype t) { return t == dtype::fp16 ? dtype::fp16 : dtype::bf16; }
inline std::size_t output_bytes_per_elem(dtype t) { return dtype_bytes(gemm_output_type(t)); }
// The type of a GEMM's D (and C when it accumulates).
inline dtype output_type(const gemm_key& g) {
  return g.accumulate ? g.accumulate_type : gemm_output_type(g.type);
}

// "8192x8192x8192 bf16 sm_target 116" ("... bf16 x16 ..." for 16 members), for messages.
inline std::string to_string(const gemm_key& g) {
  return std::to_string(g.m) + "x" + std::to_string(g.n) + "x" + std::to_string(g.k) + " " +
         std::string(to_string(g.type)) + (g.batch > 1 ? " x" + std::to_string(g.batch) : "") +
         (g.sm_target ? " sm_target " + std::to_string(g.sm_target) : std::string()) +
         (g.accumulate ? " += " + std::string(to_string(g.accumulate_type)) : std::string());
}

}  // namespace ob::cuda
