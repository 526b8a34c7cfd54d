#pragma once
// Host-callable launchers for the project's own kernels. Each returns the launch's cudaError_t
// (cudaGetLastError after the launch) so the caller can attach rank and op context.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/pattern.hpp"

namespace ob::kernels {

// fp32 is never a GEMM operand: it types fp32 collective buffers (grad_reduce_in_fp32).
enum class elem_type : int { bf16 = 0, fp16 = 1, fp8_e4m3 = 2, fp32 = 3 };

// Threads per copy-proxy CTA: NCCL's Simple protocol runs 512 threads per channel, so one proxy
// CTA occupies an SM about as much as one NCCL channel does.
inline constexpr int copy_proxy_threads = 512;

// Copies `bytes` from src to dst with exactly `ctas` CTAs (16-byte vectors, grid-stride), standing
// in for a collective that moves the same bytes with the same CTA count (loopback backend).
// Pointers must be 16-byte aligned (cudaMalloc gives 256).
cudaError_t launch_copy_proxy(void* dst, const void* src, std::size_t bytes, int ctas,
                              cudaStream_t stream);

// A LayerNorm-like pass over `elems` bf16 values in rows of `row_elems`: persistent, with
// `ctas` CTAs (the executor passes SMs - sm_margin), one row at a time per CTA.
cudaError_t launch_layernorm(void* out, const void* in, std::size_t elems, int row_elems, int ctas,
                             cudaStream_t stream);

// Spins each of `ctas` CTAs for `us` microseconds of %globaltimer.
cudaError_t launch_delay(double us, int ctas, cudaStream_t stream);

// Fills `n` elements with pseudo-random values in [-scale, scale], never zero, from a hash of
// (index, seed): GEMM operands must never be zeros (zeros run faster and hide unwritten output).
cudaError_t launch_fill_random(void* p, std::size_t n, elem_type t, std::uint64_t seed, float scale,
                               cudaStream_t stream);

// Fills `n` elements (bf16, fp16 or fp32) with pattern_value(rank, first_index + i). fp8 holds the
// pattern's sums for too few ranks to be worth a third path: cudaErrorInvalidValue.
cudaError_t launch_fill_pattern(void* p, std::size_t n, elem_type t, int rank,
                                std::uint64_t first_index, cudaStream_t stream);

// Adds to *wrong the number of output elements (bf16, fp16 or fp32) that differ from
// expected_value(spec, j). fp8: cudaErrorInvalidValue, as for the fill.
cudaError_t launch_verify_collective(const void* out, const verify_spec& spec, elem_type t,
                                     unsigned long long* wrong, cudaStream_t stream);

// Adds to *wrong the number of bytes where a and b differ (copy proxy and copy-engine p2p).
cudaError_t launch_compare_bytes(const void* a, const void* b, std::size_t bytes,
                                 unsigned long long* wrong, cudaStream_t stream);

// Adds to *wrong the number of elements (bf16, fp16 or fp32) where |out - ref| > atol + rtol *
// |ref|, or either is not finite (a poisoned element left unwritten is NaN).
cudaError_t launch_compare_close(const void* out, const void* ref, std::size_t n, elem_type t,
                                 float rtol, float atol, unsigned long long* wrong,
                                 cudaStream_t stream);

}  // namespace ob::kernels
