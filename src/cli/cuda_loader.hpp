#pragma once
// Finds CUDA devices and loads the CUDA backend plugin on demand (see cuda/backend_plugin.hpp).
#include "cuda/backend_plugin.hpp"

namespace ob::cli {

// Devices the CUDA driver reports, asked through libcuda.so.1 directly so that a machine
// without a GPU never loads the backend. 0 when there is no driver or no device.
int probe_cuda_devices() noexcept;

// The plugin next to the binary (or $OVERLAP_BENCH_CUDA_PLUGIN). Throws runtime_failure (exit 3)
// naming the reason and pointing to --backend sim when it is absent or cannot load.
const cuda_backend_plugin& load_cuda_backend(const std::string& backend);

}  // namespace ob::cli
