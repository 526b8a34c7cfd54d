// Data init and verification: random GEMM operands, the exact-integer collective pattern, and
// the counters behind #wrong.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>

#include "kernels/kernels.cuh"

namespace ob::kernels {
namespace {

constexpr int threads = 256;

int grid_for(std::size_t n) {
  // Grid-stride loops: enough CTAs to fill any current GPU, never more than the work.
  const std::size_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(blocks, 8192)));
}

__device__ __forceinline__ std::size_t global_id() {
  return static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::size_t grid_stride() {
  return static_cast<std::size_t>(gridDim.x) * blockDim.x;
}

__device__ __forceinline__ void add_wrong(unsigned long long local, unsigned long long* wrong) {
  // Only threads that saw a mismatch touch the counter: a correct run costs no atomics.
  if (local) atomicAdd(wrong, local);
}

__global__ void fill_random_kernel(void* p, std::size_t n, int type, std::uint64_t seed,
                                   float scale) {
  for (std::size_t i = global_id(); i < n; i += grid_stride()) {
    const std::uint64_t h = mix64(i ^ (seed * 0xD1B54A32D192ED03ull));
    const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    float v = (2.f * u - 1.f) * scale;
    if (v == 0.f) v = 0.5f * scale;
    switch (type) {
      case static_cast<int>(elem_type::bf16):
        static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16(v);
        break;
      case static_cast<int>(elem_type::fp16):
        static_cast<__half*>(p)[i] = __float2half(v);
        break;
      case static_cast<int>(elem_type::fp32):
        static_cast<float*>(p)[i] = v;
        break;
      default:
        static_cast<__nv_fp8_e4m3*>(p)[i] = __nv_fp8_e4m3(v);
        break;
    }
  }
}

// The pattern's element types: one conversion pair each, so the kernels are written once.
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(float v) { return v; }
template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half(v);
}

template <class T>
__global__ void fill_pattern_kernel(T* p, std::size_t n, int rank, std::uint64_t first) {
  for (std::size_t i = global_id(); i < n; i += grid_stride())
    p[i] = from_float<T>(static_cast<float>(pattern_value(rank, first + i)));
}

template <class T>
__global__ void verify_collective_kernel(const T* out, verify_spec spec, std::size_t n,
                                         unsigned long long* wrong) {
  unsigned long long local = 0;
  for (std::size_t j = global_id(); j < n; j += grid_stride())
    if (to_float(out[j]) != static_cast<float>(expected_value(spec, j))) ++local;
  add_wrong(local, wrong);
}

__global__ void compare_bytes_kernel(const unsigned char* a, const unsigned char* b,
                                     std::size_t bytes, unsigned long long* wrong) {
  unsigned long long local = 0;
  const std::size_t n16 = bytes / 16;
  const auto* a16 = reinterpret_cast<const uint4*>(a);
  const auto* b16 = reinterpret_cast<const uint4*>(b);
  for (std::size_t i = global_id(); i < n16; i += grid_stride()) {
    const uint4 x = a16[i], y = b16[i];
    const unsigned d[4] = {x.x ^ y.x, x.y ^ y.y, x.z ^ y.z, x.w ^ y.w};
#pragma unroll
    for (int w = 0; w < 4; ++w)
      for (int k = 0; k < 4; ++k) local += ((d[w] >> (8 * k)) & 0xffu) != 0;
  }
  for (std::size_t i = n16 * 16 + global_id(); i < bytes; i += grid_stride()) local += a[i] != b[i];
  add_wrong(local, wrong);
}

__global__ void compare_close_kernel(const void* out, const void* ref, std::size_t n, int type,
                                     float rtol, float atol, unsigned long long* wrong) {
  unsigned long long local = 0;
  for (std::size_t i = global_id(); i < n; i += grid_stride()) {
    float o, r;
    if (type == static_cast<int>(elem_type::fp16)) {
      o = __half2float(static_cast<const __half*>(out)[i]);
      r = __half2float(static_cast<const __half*>(ref)[i]);
    } else if (type == static_cast<int>(elem_type::fp32)) {
      o = static_cast<const float*>(out)[i];
      r = static_cast<const float*>(ref)[i];
    } else {
      o = __bfloat162float(static_cast<const __nv_bfloat16*>(out)[i]);
      r = __bfloat162float(static_cast<const __nv_bfloat16*>(ref)[i]);
    }
    if (!isfinite(o) || !isfinite(r) || fabsf(o - r) > atol + rtol * fabsf(r)) ++local;
  }
  add_wrong(local, wrong);
}

}  // namespace

cudaError_t launch_fill_random(void* p, std::size_t n, elem_type t, std::uint64_t seed, float scale,
                               cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  fill_random_kernel<<<grid_for(n), threads, 0, stream>>>(p, n, static_cast<int>(t), seed, scale);
  return cudaGetLastError();
}

cudaError_t launch_fill_pattern(void* p, std::size_t n, elem_type t, int rank,
                                std::uint64_t first_index, cudaStream_t stream) {
  if (t == elem_type::fp8_e4m3) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (t == elem_type::fp16)
    fill_pattern_kernel<<<grid_for(n), threads, 0, stream>>>(static_cast<__half*>(p), n, rank,
                                                             first_index);
  else if (t == elem_type::fp32)
    fill_pattern_kernel<<<grid_for(n), threads, 0, stream>>>(static_cast<float*>(p), n, rank,
                                                             first_index);
  else
    fill_pattern_kernel<<<grid_for(n), threads, 0, stream>>>(static_cast<__nv_bfloat16*>(p), n,
                                                             rank, first_index);
  return cudaGetLastError();
}

cudaError_t launch_verify_collective(const void* out, const verify_spec& spec, elem_type t,
                                     unsigned long long* wrong, cudaStream_t stream) {
  if (t == elem_type::fp8_e4m3) return cudaErrorInvalidValue;
  const std::size_t n = output_elements(spec);
  if (n == 0) return cudaSuccess;
  if (t == elem_type::fp16)
    verify_collective_kernel<<<grid_for(n), threads, 0, stream>>>(static_cast<const __half*>(out),
                                                                  spec, n, wrong);
  else if (t == elem_type::fp32)
    verify_collective_kernel<<<grid_for(n), threads, 0, stream>>>(static_cast<const float*>(out),
                                                                  spec, n, wrong);
  else
    verify_collective_kernel<<<grid_for(n), threads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(out), spec, n, wrong);
  return cudaGetLastError();
}

cudaError_t launch_compare_bytes(const void* a, const void* b, std::size_t bytes,
                                 unsigned long long* wrong, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  compare_bytes_kernel<<<grid_for(std::max<std::size_t>(bytes / 16, 1)), threads, 0, stream>>>(
      static_cast<const unsigned char*>(a), static_cast<const unsigned char*>(b), bytes, wrong);
  return cudaGetLastError();
}

cudaError_t launch_compare_close(const void* out, const void* ref, std::size_t n, elem_type t,
                                 float rtol, float atol, unsigned long long* wrong,
                                 cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (t == elem_type::fp8_e4m3) return cudaErrorInvalidValue;  // outputs are bf16, fp16, fp32
  compare_close_kernel<<<grid_for(n), threads, 0, stream>>>(out, ref, n, static_cast<int>(t), rtol,
                                                            atol, wrong);
  return cudaGetLastError();
}

}  // namespace ob::kernels
