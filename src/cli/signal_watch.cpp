#include "cli/signal_watch.hpp"

#include <pthread.h>

#include <ctime>

namespace ob::cli {

signal_watch::signal_watch() {
  sigemptyset(&watched_);
  sigaddset(&watched_, SIGINT);
  sigaddset(&watched_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &watched_, &previous_);
}

signal_watch::~signal_watch() {
  // The sweep has answered the signal (or another rank's): taking it again now would kill the
  // process before main() reports, so pending copies are dropped.
  const timespec no_wait{};
  while (sigtimedwait(&watched_, nullptr, &no_wait) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

int signal_watch::received() {
  if (received_ != 0) return received_;
  const timespec no_wait{};
  const int sig = sigtimedwait(&watched_, nullptr, &no_wait);
  if (sig > 0) received_ = sig;
  return received_;
}

}  // namespace ob::cli
