#pragma once
// The environment variables a result records: every one that changes how kernels overlap. One
// snapshot for every backend, so results from the sim and from GPUs list the same names.
#include "base/json_util.hpp"

namespace ob {

// Every environment variable that changes how kernels overlap, sorted by name:
// CUDA_DEVICE_MAX_CONNECTIONS, CUDA_LAUNCH_BLOCKING, CUDA_VISIBLE_DEVICES, CUDA_MODULE_LOADING,
// NCCL_* and NVTE_*. The overload reads a NULL-terminated "NAME=value" array (tests).
ordered_json env_variables_snapshot();
ordered_json env_variables_snapshot(const char* const* envp);

}  // namespace ob
