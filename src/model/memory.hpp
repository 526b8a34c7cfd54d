#pragma once
// What one GPU holds during a training step, as the memory model estimates it (docs/MEMORY.md;
// plan/memory_model.hpp computes it): a step case's "memory_gib" and "fits".
#include <optional>

namespace ob {

// GiB per part; total() adds them.
struct memory_parts {
  double weights = 0, gradients = 0, optimizer = 0, activations = 0, buffers = 0, reserve = 0;
  double total() const { return weights + gradients + optimizer + activations + buffers + reserve; }
};

struct memory_estimate {
  memory_parts gib;
  int stage = 0;  // the pipeline stage the parts describe: the most loaded one
  // The total within the GPU file's hbm_gib; nullopt when the file gives no capacity.
  std::optional<bool> fits;
  bool over() const { return fits && !*fits; }
};

}  // namespace ob
