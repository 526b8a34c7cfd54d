#pragma once
// SIGINT and SIGTERM during a sweep (README: journaled sweeps, exit codes 130 and 143). The first
// one asks the sweep to stop: the case in flight finishes, no new one starts, and the result is
// written from the journal. A second one ends the process at once, as the signal would (the
// journal still holds every finished case). Both signals are blocked in every thread and taken
// by one watcher thread, so no global flag is needed and no thread MPI or CUDA starts later can
// take the default action half-way through writing a file.
#include <signal.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ob::cli {

class signal_watch {
 public:
  // Construct before MPI_Init or any other thread: threads inherit the blocked mask.
  signal_watch();
  ~signal_watch();  // stops the watcher, drops signals the sweep already answered, restores
  signal_watch(const signal_watch&) = delete;
  signal_watch& operator=(const signal_watch&) = delete;

  // 0 until SIGINT or SIGTERM arrives; from then on that signal's number.
  int received() const { return received_.load(); }
  // Say on stderr when the first signal arrives (rank 0 does, once it knows it is rank 0).
  void announce() { announce_ = true; }
  // The files rank 0 will write: a second signal, which ends the process at once, first removes
  // their temporaries (base/atomic_file.hpp), so no FILE.tmp.<pid> is left half written.
  void remove_temporaries_of(const std::vector<std::string>& outputs);

 private:
  void watch(std::stop_token stop);

  std::mutex mutex_;                      // guards temporaries_
  std::vector<std::string> temporaries_;  // removed on the second signal
  sigset_t watched_{}, previous_{};
  std::atomic<bool> announce_{false};
  std::atomic<int> received_{0};
  std::jthread watcher_;  // last: started once the members it reads exist
};

}  // namespace ob::cli
