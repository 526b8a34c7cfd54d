#pragma once
// Owning wrappers for every CUDA and cuBLASLt handle the executor creates. Each one is move-only
// and releases its handle in the destructor, ignoring errors there (a destructor that throws
// while another error unwinds would terminate the process and lose the first message).
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "cuda/cuda_check.hpp"

namespace ob::cuda {

template <class T, auto Release>
class unique_handle {
 public:
  unique_handle() = default;
  explicit unique_handle(T h) : h_(h) {}
  ~unique_handle() { reset(); }
  unique_handle(const unique_handle&) = delete;
  unique_handle& operator=(const unique_handle&) = delete;
  unique_handle(unique_handle&& o) noexcept : h_(std::exchange(o.h_, T{})) {}
  unique_handle& operator=(unique_handle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, T{});
    }
    return *this;
  }
  T get() const { return h_; }
  explicit operator bool() const { return h_ != T{}; }
  void reset() noexcept {
    if (h_ != T{}) (void)Release(h_);
    h_ = T{};
  }

 private:
  T h_{};
};

using stream_handle = unique_handle<cudaStream_t, cudaStreamDestroy>;
using event_handle = unique_handle<cudaEvent_t, cudaEventDestroy>;
using graph_handle = unique_handle<cudaGraph_t, cudaGraphDestroy>;
using graph_exec_handle = unique_handle<cudaGraphExec_t, cudaGraphExecDestroy>;
using cublaslt_handle = unique_handle<cublasLtHandle_t, cublasLtDestroy>;
using matmul_desc_handle = unique_handle<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using matrix_layout_handle = unique_handle<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
using matmul_pref_handle =
    unique_handle<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

// A non-blocking stream (no implicit sync with the legacy default stream) at `priority`.
inline stream_handle make_stream(int priority, const error_context& ctx) {
  cudaStream_t s = nullptr;
  OB_CUDA_CHECK(ctx, cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority));
  return stream_handle(s);
}

// Timing events for the iteration brackets and per-op intervals; sync-only events (cheaper to
// record) for cross-stream dependencies.
inline event_handle make_event(bool timing, const error_context& ctx) {
  cudaEvent_t e = nullptr;
  OB_CUDA_CHECK(ctx,
                cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return event_handle(e);
}

// Device memory owned by one allocation.
class device_buffer {
 public:
  device_buffer() = default;
  device_buffer(std::size_t bytes, const error_context& ctx) : bytes_(bytes) {
    if (bytes > 0) OB_CUDA_CHECK(ctx, cudaMalloc(&ptr_, bytes));
  }
  ~device_buffer() {
    if (ptr_) (void)cudaFree(ptr_);
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      if (ptr_) (void)cudaFree(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// Makes `device` current for a scope and restores the previous one: destructors of per-GPU
// resources run on the main thread in single-process multi-GPU mode.
class scoped_device {
 public:
  explicit scoped_device(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (device >= 0 && device != previous_) (void)cudaSetDevice(device);
  }
  ~scoped_device() {
    if (previous_ >= 0) (void)cudaSetDevice(previous_);
  }
  scoped_device(const scoped_device&) = delete;
  scoped_device& operator=(const scoped_device&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace ob::cuda
