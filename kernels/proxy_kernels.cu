// Stand-ins for work the executor cannot (or should not) run for real on one GPU: the copy proxy
// for collectives in loopback mode, a LayerNorm-like persistent kernel that honours an SM margin,
// and a fixed-duration spin kernel for producers and tests.
#include <cuda_bf16.h>

#include <algorithm>

#include "kernels/kernels.cuh"

namespace ob::kernels {
namespace {

__global__ void __launch_bounds__(copy_proxy_threads)
    copy_proxy_kernel(uint4* __restrict__ dst, const uint4* __restrict__ src, std::size_t n16,
                      std::size_t tail_bytes) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  // Four independent 16-byte loads in flight before the first store keep HBM busy with few CTAs,
  // as NCCL's Simple protocol does with its unrolled loads.
  for (; i + 3 * stride < n16; i += 4 * stride) {
    const uint4 a = src[i];
    const uint4 b = src[i + stride];
    const uint4 c = src[i + 2 * stride];
    const uint4 d = src[i + 3 * stride];
    dst[i] = a;
    dst[i + stride] = b;
    dst[i + 2 * stride] = c;
    dst[i + 3 * stride] = d;
  }
  for (; i < n16; i += stride) dst[i] = src[i];
  if (blockIdx.x == 0 && threadIdx.x < tail_bytes) {
    reinterpret_cast<unsigned char*>(dst + n16)[threadIdx.x] =
        reinterpret_cast<const unsigned char*>(src + n16)[threadIdx.x];
  }
}

constexpr int layernorm_threads = 256;

__device__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < blockDim.x / 32 ? scratch[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();  // scratch is reused by the next reduction
  return v;
}

// Rows are staged in shared memory so each element is read from HBM once: the kernel moves the
// bytes the IR op says (read + written), like TE's LayerNorm.
__global__ void __launch_bounds__(layernorm_threads)
    layernorm_kernel(uint4* __restrict__ out, const uint4* __restrict__ in, std::size_t elems,
                     int row_elems) {
  extern __shared__ uint4 row[];
  __shared__ float scratch[32];
  const std::size_t rows = (elems + row_elems - 1) / row_elems;
  for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const std::size_t first = r * static_cast<std::size_t>(row_elems);
    const int n = static_cast<int>(min(static_cast<std::size_t>(row_elems), elems - first));
    const int n8 = n / 8;
    const uint4* src = in + first / 8;
    uint4* dst = out + first / 8;
    float sum = 0.f, sq = 0.f;
    for (int v = threadIdx.x; v < n8; v += blockDim.x) {
      const uint4 x = src[v];
      row[v] = x;
      const auto* h = reinterpret_cast<const __nv_bfloat162*>(&x);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = __bfloat1622float2(h[k]);
        sum += f.x + f.y;
        sq += f.x * f.x + f.y * f.y;
      }
    }
    sum = block_sum(sum, scratch);
    sq = block_sum(sq, scratch);
    const float mean = sum / n;
    const float rstd = rsqrtf(fmaxf(sq / n - mean * mean, 0.f) + 1e-5f);
    for (int v = threadIdx.x; v < n8; v += blockDim.x) {
      uint4 x = row[v];
      auto* h = reinterpret_cast<__nv_bfloat162*>(&x);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = __bfloat1622float2(h[k]);
        h[k] = __floats2bfloat162_rn((f.x - mean) * rstd, (f.y - mean) * rstd);
      }
      dst[v] = x;
    }
    __syncthreads();  // the row buffer is refilled by the next row
  }
}

__device__ __forceinline__ unsigned long long globaltimer_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// One warp per CTA; lane 0 spins, so the CTA stays resident for the whole delay.
__global__ void delay_kernel(unsigned long long ns) {
  if (threadIdx.x == 0) {
    const unsigned long long start = globaltimer_ns();
    while (globaltimer_ns() - start < ns) __nanosleep(256);
  }
  __syncwarp();
}

}  // namespace

cudaError_t launch_copy_proxy(void* dst, const void* src, std::size_t bytes, int ctas,
                              cudaStream_t stream) {
  if (ctas <= 0) return cudaErrorInvalidValue;
  if (bytes == 0) return cudaSuccess;
  copy_proxy_kernel<<<ctas, copy_proxy_threads, 0, stream>>>(
      static_cast<uint4*>(dst), static_cast<const uint4*>(src), bytes / 16, bytes % 16);
  return cudaGetLastError();
}

cudaError_t launch_layernorm(void* out, const void* in, std::size_t elems, int row_elems, int ctas,
                             cudaStream_t stream) {
  if (ctas <= 0 || row_elems <= 0 || row_elems % 8 != 0) return cudaErrorInvalidValue;
  elems -= elems % 8;  // whole 16-byte vectors only
  if (elems == 0) return cudaSuccess;
  const std::size_t smem = static_cast<std::size_t>(row_elems) * sizeof(__nv_bfloat16);
  if (smem > 48 * 1024) {
    const cudaError_t rc = cudaFuncSetAttribute(
        layernorm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (rc != cudaSuccess) return rc;
  }
  layernorm_kernel<<<ctas, layernorm_threads, smem, stream>>>(
      static_cast<uint4*>(out), static_cast<const uint4*>(in), elems, row_elems);
  return cudaGetLastError();
}

cudaError_t launch_delay(double us, int ctas, cudaStream_t stream) {
  if (ctas <= 0 || us < 0) return cudaErrorInvalidValue;
  delay_kernel<<<ctas, 32, 0, stream>>>(static_cast<unsigned long long>(us * 1000.0));
  return cudaGetLastError();
}

}  // namespace ob::kernels
