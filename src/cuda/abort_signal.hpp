#pragma once
// Shared by the ranks of one process (single-process multi-GPU mode) and their watchdogs: once any
// rank fails or times out, the others stop waiting on collectives that can no longer complete.
#include <atomic>
#include <mutex>
#include <string>

namespace ob::cuda {

class abort_signal {
 public:
  // The first reason wins: it names the rank that failed first, the one worth reporting.
  void raise(const std::string& reason) {
    std::lock_guard lock(mu_);
    if (!raised_.load()) reason_ = reason;
    raised_.store(true);
  }
  bool raised() const { return raised_.load(std::memory_order_relaxed); }
  std::string reason() const {
    std::lock_guard lock(mu_);
    return reason_;
  }

 private:
  std::atomic<bool> raised_{false};
  mutable std::mutex mu_;
  std::string reason_;
};

}  // namespace ob::cuda
