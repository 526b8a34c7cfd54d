// Compiled into the plugin only (CMake keeps it out of the static ob_cuda library).
#include "cuda/backend_plugin.hpp"

extern "C" __attribute__((visibility("default"))) const ob::cuda_backend_plugin*
ob_cuda_backend_plugin() {
  static const ob::cuda_backend_plugin table{ob::cuda_backend_plugin_abi, &ob::cuda_device_count,
                                             &ob::make_cuda_executor};
  return &table;
}
