#include "cuda/cuda_backend.hpp"

#include <cuda_runtime.h>

#include "base/error.hpp"
#include "cuda/cuda_executor.hpp"

namespace ob {

int cuda_device_count() noexcept {
  int n = 0;
  // Without a driver this returns cudaErrorInsufficientDriver or cudaErrorNoDevice: both mean
  // "no GPU here", which is a normal answer, not an error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  return n;
}

std::unique_ptr<executor> make_cuda_executor(const cuda_backend_options& options,
                                             communicator& comm) {
  if (options.backend != "cuda" && options.backend != "loopback")
    throw config_error("--backend " + options.backend +
                       ": the CUDA executor runs 'cuda' or 'loopback'");
  if (options.gpus < 0) throw config_error("--gpus must not be negative");
  if (cuda_device_count() == 0)
    throw runtime_failure("--backend " + options.backend +
                          ": no CUDA device found; use --backend sim");
  return std::make_unique<cuda::cuda_executor>(options, comm);
}

}  // namespace ob
