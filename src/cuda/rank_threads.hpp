#pragma once
// Single-process multi-GPU glue: one thread per local rank, each driving its own GPU, as NCCL
// wants when one process owns several devices. Independent of MPI; knows nothing about CUDA.
#include <functional>

#include "cuda/abort_signal.hpp"

namespace ob::cuda {

// Runs body(i) for i in [0, n) on n threads (the calling thread waits). When a body throws, the
// abort signal is raised with its message so the other ranks stop waiting on it; after all have
// returned, the first failure is rethrown with its own type (hang_error stays exit 4). Failures
// that only report "another rank failed" never hide the rank that failed first.
void run_on_rank_threads(int n, const std::function<void(int)>& body, abort_signal& abort);

}  // namespace ob::cuda
