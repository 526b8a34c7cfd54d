#include "cli/signal_watch.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "base/atomic_file.hpp"

namespace ob::cli {

signal_watch::signal_watch() {
  sigemptyset(&watched_);
  sigaddset(&watched_, SIGINT);
  sigaddset(&watched_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &watched_, &previous_);
  watcher_ = std::jthread([this](std::stop_token stop) { watch(stop); });
}

signal_watch::~signal_watch() {
  watcher_.request_stop();
  watcher_.join();
  // Taking a pending copy now would kill the process before main() reports how the sweep ended.
  const timespec no_wait{};
  while (sigtimedwait(&watched_, nullptr, &no_wait) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

void signal_watch::remove_temporaries_of(const std::vector<std::string>& outputs) {
  const std::lock_guard lock(mutex_);
  for (const std::string& o : outputs)
    if (!o.empty()) temporaries_.push_back(temporary_path_for(o));
}

void signal_watch::watch(std::stop_token stop) {
  const timespec tick{0, 100'000'000};  // how soon the destructor's stop request is seen
  while (!stop.stop_requested()) {
    const int sig = sigtimedwait(&watched_, nullptr, &tick);
    if (sig <= 0) continue;
    int none = 0;
    if (received_.compare_exchange_strong(none, sig)) {
      if (announce_) {
        const char* note = sig == SIGINT ? "overlap-bench: SIGINT: stopping after the case in "
                                           "flight (send it again to stop at once)\n"
                                         : "overlap-bench: SIGTERM: stopping after the case in "
                                           "flight (send it again to stop at once)\n";
        [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, note, std::strlen(note));
      }
      continue;
    }
    // The second signal: end as the signal does, here and now, leaving no half-written file.
    {
      const std::lock_guard lock(mutex_);
      for (const std::string& t : temporaries_) ::unlink(t.c_str());
    }
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    signal(sig, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    raise(sig);
  }
}

}  // namespace ob::cli
