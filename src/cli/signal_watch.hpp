#pragma once
// SIGINT and SIGTERM during a sweep (README: exit codes 130 and 143). Both are blocked for the
// whole process while a watch lives, and polled between cases: the case in flight finishes, no
// new one starts, and the result is written from the journal. Blocking them (rather than a
// handler setting a flag) leaves no global state, and no thread MPI or CUDA starts later can take
// the default action and kill the process half-way.
#include <signal.h>

namespace ob::cli {

class signal_watch {
 public:
  // Construct before MPI_Init or any thread: threads inherit the blocked mask.
  signal_watch();
  ~signal_watch();  // restores the previous mask
  signal_watch(const signal_watch&) = delete;
  signal_watch& operator=(const signal_watch&) = delete;

  // 0 until SIGINT or SIGTERM arrives; from then on that signal's number.
  int received();

 private:
  sigset_t watched_{}, previous_{};
  int received_ = 0;
};

}  // namespace ob::cli
