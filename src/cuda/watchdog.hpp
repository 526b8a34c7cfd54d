#pragma once
// A per-rank watchdog for hangs that the polling wait loops cannot see: the host blocked inside a
// CUDA call (a full launch queue behind a collective whose peer never arrived). When no progress
// is reported for `timeout_s` (+ a short margin, so the wait loop's own, more precise diagnosis
// wins when it can run), it calls `on_fire` (which aborts the NCCL communicators, releasing the
// GPU and so the blocked call) and records why. If the owner still has not stopped it after
// `exit_grace_s`, the process cannot recover: it prints the message and exits with code 4.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace ob::cuda {

class watchdog {
 public:
  watchdog(double timeout_s, std::string who, std::function<void()> on_fire,
           double exit_grace_s = 30.0);
  ~watchdog();
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  // Progress was made; `phase` (when not empty) says what the rank is doing now, for messages.
  void beat(const std::string& phase = {});
  double seconds_since_beat() const;
  bool fired() const { return fired_.load(); }
  std::string message() const;

 private:
  void loop();

  const double timeout_s_, exit_grace_s_;
  const std::string who_;
  std::function<void()> on_fire_;
  std::atomic<std::int64_t> last_beat_ns_;
  std::atomic<bool> fired_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::string phase_;
  std::string message_;
  std::thread thread_;
};

}  // namespace ob::cuda
