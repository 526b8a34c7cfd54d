#include "cuda/rank_wait.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/error.hpp"
#include "cuda/rank_engine.hpp"

namespace ob::cuda {

void rank_waiter::check_abort(const std::function<std::string()>& describe) {
  if (!abort_.raised()) return;
  e_.abort_comms();
  throw runtime_failure(e_.context().prefix() + "stopped waiting on " + describe() +
                        " because another rank failed: " + abort_.reason());
}

void rank_waiter::check_timeout(const std::function<std::string()>& describe) {
  if (dog_.fired() || dog_.seconds_since_beat() > timeout_s_) {
    const std::string what = describe();
    e_.abort_comms();
    throw hang_error(e_.context().prefix() + "timed out after " +
                     std::to_string(static_cast<int>(timeout_s_)) + " s waiting on " + what +
                     "; NCCL communicators aborted");
  }
}

void rank_waiter::poll_until(const std::function<cudaError_t()>& query,
                             const std::function<std::string()>& describe) {
  int step = 0;
  auto last_nccl_check = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t rc = query();
    if (rc == cudaSuccess) return;
    if (rc != cudaErrorNotReady) throw_cuda(rc, "waiting on " + describe(), e_.context());
    check_abort(describe);
    const auto now = std::chrono::steady_clock::now();
    if (e_.has_comms() && now - last_nccl_check > std::chrono::milliseconds(20)) {
      last_nccl_check = now;
      e_.comms().check_async_errors(e_.context());
    }
    check_timeout(describe);
    std::this_thread::sleep_for(std::chrono::microseconds(std::min(2000, 20 << std::min(step, 7))));
    ++step;
  }
}

void rank_waiter::wait_for_stream(cudaStream_t s, const std::string& what) {
  poll_until([&] { return cudaStreamQuery(s); }, [&] { return what; });
  dog_.beat();
}

}  // namespace ob::cuda
