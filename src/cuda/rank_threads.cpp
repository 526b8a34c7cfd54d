#include "cuda/rank_threads.hpp"

#include <chrono>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace ob::cuda {

void run_on_rank_threads(int n, const std::function<void(int)>& body, abort_signal& abort) {
  struct failure {
    std::exception_ptr error;
    std::chrono::steady_clock::time_point when;
    bool secondary = false;  // raised only because another rank had already failed
  };
  std::vector<failure> failures(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      try {
        body(i);
      } catch (const std::exception& e) {
        failure& f = failures[static_cast<std::size_t>(i)];
        f.secondary = abort.raised();
        f.error = std::current_exception();
        f.when = std::chrono::steady_clock::now();
        abort.raise(e.what());
      } catch (...) {
        failure& f = failures[static_cast<std::size_t>(i)];
        f.secondary = abort.raised();
        f.error = std::current_exception();
        f.when = std::chrono::steady_clock::now();
        abort.raise("rank thread " + std::to_string(i) + " failed with a non-standard exception");
      }
    });
  }
  for (auto& t : threads) t.join();
  const failure* first = nullptr;
  for (const failure& f : failures) {
    if (!f.error) continue;
    const bool better = !first || (first->secondary && !f.secondary) ||
                        (first->secondary == f.secondary && f.when < first->when);
    if (better) first = &f;
  }
  if (first) std::rethrow_exception(first->error);
}

}  // namespace ob::cuda
