#pragma once
// Error types carry the process exit code they map to, so every layer can throw with context and
// only main() decides how to exit. Codes follow docs/ARCHITECTURE.md §1.
#include <stdexcept>
#include <string>

namespace ob {

enum class exit_code : int { ok = 0, regression = 1, usage = 2, runtime = 3, hang = 4 };

class error : public std::runtime_error {
 public:
  error(exit_code code, const std::string& what) : std::runtime_error(what), code_(code) {}
  exit_code code() const noexcept { return code_; }

 private:
  exit_code code_;
};

// Bad input: a config file, a CLI flag, a value out of range. Exit 2.
class config_error : public error {
 public:
  explicit config_error(const std::string& what) : error(exit_code::usage, what) {}
};

// A failure while running: CUDA, NCCL, MPI, I/O. Exit 3.
class runtime_failure : public error {
 public:
  explicit runtime_failure(const std::string& what) : error(exit_code::runtime, what) {}
};

// A watchdog expired: the message names the rank and the op it waited on. Exit 4.
class hang_error : public error {
 public:
  explicit hang_error(const std::string& what) : error(exit_code::hang, what) {}
};

}  // namespace ob
