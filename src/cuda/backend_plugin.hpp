#pragma once
// The CUDA backend ships as a plugin (libob_cuda_backend.so) that the CLI loads only when a
// real backend is asked for. Linking cuBLASLt and NCCL into the binary itself would map them at
// every start: about 200 MB of resident memory for a `--backend sim` run, and a binary that does
// not start where the CUDA libraries are missing. No CUDA headers here.
#include <memory>

#include "cuda/cuda_backend.hpp"

namespace ob {

// Bumped whenever cuda_backend_options, measure_options or the executor interface change layout.
// 4: program carries its rank_grid; the executor runs a training step (measure_program).
// 5: one executor entry, measure(program_variants); a layer or pair case is a one-stage program.
// 6: rank_grid carries the expert layout (etp, ep); gemm_params::group reaches the GEMMs.
inline constexpr int cuda_backend_plugin_abi = 6;

struct cuda_backend_plugin {
  int abi = cuda_backend_plugin_abi;
  int (*device_count)() noexcept = nullptr;
  std::unique_ptr<executor> (*make_executor)(const cuda_backend_options&, communicator&) = nullptr;
};

}  // namespace ob

// The one symbol the plugin exports. The binary and the plugin come from the same build (same
// compiler, same headers), so C++ types may cross; the ABI number guards against a stale file.
extern "C" const ob::cuda_backend_plugin* ob_cuda_backend_plugin();
