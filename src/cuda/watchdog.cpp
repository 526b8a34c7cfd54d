#include "cuda/watchdog.hpp"

#include <cstdio>
#include <cstdlib>

namespace ob::cuda {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

watchdog::watchdog(double timeout_s, std::string who, std::function<void()> on_fire,
                   double exit_grace_s)
    : timeout_s_(timeout_s),
      exit_grace_s_(exit_grace_s),
      who_(std::move(who)),
      on_fire_(std::move(on_fire)),
      last_beat_ns_(now_ns()) {
  thread_ = std::thread([this] { loop(); });
}

watchdog::~watchdog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void watchdog::beat(const std::string& phase) {
  last_beat_ns_.store(now_ns());
  if (!phase.empty()) {
    std::lock_guard lock(mu_);
    phase_ = phase;
  }
}

double watchdog::seconds_since_beat() const {
  return static_cast<double>(now_ns() - last_beat_ns_.load()) * 1e-9;
}

std::string watchdog::message() const {
  std::lock_guard lock(mu_);
  return message_;
}

void watchdog::loop() {
  // A short margin past the timeout lets the owner's wait loop, which knows which op it waited
  // on, report first whenever it is the one waiting.
  const double fire_after = timeout_s_ + 2.0;
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(200));
    if (stop_ || fired_.load()) continue;
    if (seconds_since_beat() < fire_after) continue;
    message_ = who_ + ": timed out after " + std::to_string(static_cast<int>(timeout_s_)) +
               " s without progress while " + (phase_.empty() ? "running" : phase_) +
               "; NCCL communicators aborted";
    fired_.store(true);
    lock.unlock();
    if (on_fire_) on_fire_();
    lock.lock();
    // The owner normally notices within milliseconds and unwinds; if it stays blocked the
    // process is wedged and only exiting reports the hang.
    const bool stopped =
        cv_.wait_for(lock, std::chrono::duration<double>(exit_grace_s_), [this] { return stop_; });
    if (!stopped) {
      std::fprintf(stderr, "overlap-bench: error: %s (process stuck; exiting)\n", message_.c_str());
      std::fflush(stderr);
      std::_Exit(4);
    }
  }
}

}  // namespace ob::cuda
