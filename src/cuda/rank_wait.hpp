#pragma once
// Waiting on one rank's GPU work without blocking the host: a poll with back-off, so a hang
// becomes hang_error (exit 4) and an NCCL asynchronous error a runtime_failure, both naming what
// was waited on, and another rank's failure stops the wait.
#include <cuda_runtime.h>

#include <functional>
#include <string>

#include "cuda/abort_signal.hpp"
#include "cuda/watchdog.hpp"

namespace ob::cuda {

class rank_engine;

class rank_waiter {
 public:
  rank_waiter(rank_engine& engine, watchdog& dog, abort_signal& abort, double timeout_s)
      : e_(engine), dog_(dog), abort_(abort), timeout_s_(timeout_s) {}

  // Polls `query` (cudaStreamQuery, cudaEventQuery) until it returns cudaSuccess. `describe` is
  // called only for a message: it may query the GPU to say what is stuck.
  void poll_until(const std::function<cudaError_t()>& query,
                  const std::function<std::string()>& describe);
  void wait_for_stream(cudaStream_t s, const std::string& what);

 private:
  void check_abort(const std::function<std::string()>& describe);
  void check_timeout(const std::function<std::string()>& describe);

  rank_engine& e_;
  watchdog& dog_;
  abort_signal& abort_;
  const double timeout_s_;
};

}  // namespace ob::cuda
