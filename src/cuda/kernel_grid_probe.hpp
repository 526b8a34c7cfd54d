#pragma once
// Which kernels a call really launched, and with how many CTAs: cuBLASLt's SM-count target is a
// hint to its heuristics, not a cap, so an SM margin is only real when the chosen kernel's grid
// fits in the SMs left to it (docs/ARCHITECTURE.md §6.3). Read from CUPTI's activity records.
// CUPTI is loaded with dlopen: where it is missing, open() says why and the caller goes on
// without the check.
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ob::cuda {

struct launched_kernel {
  std::string name;
  std::int64_t grid_ctas = 0;  // gridX * gridY * gridZ
  int block_threads = 0;
  std::int64_t cluster_ctas = 0;  // 0 when launched without clusters
};

// What the check concludes for one GEMM launched with an SM-count target.
struct sm_target_check {
  int sm_count = 0;   // the device's SMs
  int sm_target = 0;  // what the heuristic was told (0 = all SMs)
  std::int64_t largest_grid = 0;
  // The widest kernel's grid fits in the target: a persistent kernel then leaves the margin free.
  bool respected = false;
  std::string verdict;  // one line for a person
};

// Judges the kernels one GEMM launched against its SM target (pure host code, tested).
sm_target_check check_sm_target(const std::vector<launched_kernel>& kernels, int sm_count,
                                int sm_target);

class kernel_grid_probe {
 public:
  // nullptr when libcupti cannot be loaded or refuses activity tracing; `why` says which.
  static std::unique_ptr<kernel_grid_probe> open(std::string* why);
  ~kernel_grid_probe();
  kernel_grid_probe(const kernel_grid_probe&) = delete;
  kernel_grid_probe& operator=(const kernel_grid_probe&) = delete;

  // Runs `launch` (which enqueues work on `stream`), waits for it, and returns the kernels it
  // launched in launch order. Not re-entrant: one probe records at a time.
  std::vector<launched_kernel> record(const std::function<void()>& launch, cudaStream_t stream);

 private:
  struct api;
  explicit kernel_grid_probe(std::unique_ptr<api> a);
  std::unique_ptr<api> api_;
};

}  // namespace ob::cuda
