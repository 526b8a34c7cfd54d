#pragma once
// CUDA_DEVICE_MAX_CONNECTIONS (CDMC): the driver reads it once, when the CUDA context is created,
// so a process can only measure the CDMC it was started with (docs/ARCHITECTURE.md §6). These
// helpers read it, refuse cases that ask for another value, and re-execute the binary under
// another value for single-process sweeps. Plain POSIX, no CUDA: the CLI, the simulator and the
// CUDA backend share this one default.
#include <string>
#include <utility>
#include <vector>

namespace ob {

inline constexpr int cdmc_default = 8;  // the driver's value when the variable is unset
inline constexpr int cdmc_max = 32;     // the driver's documented maximum

// A CUDA_DEVICE_MAX_CONNECTIONS value: null or empty -> 8; an integer >= 1 (values above 32
// clamp to 32, as the driver does). Anything else is a config_error naming the variable.
int parse_cdmc(const char* value);

// How CDMC maps streams to hardware queues, written once for the simulator and the diagnosis
// (docs/ARCHITECTURE.md §5.1): a process gets clamp(cdmc, 1, 32) queues (unset: 8), and streams
// take them round robin in creation order, so stream s and stream s + queues share one.
inline int hardware_queue_count(int cdmc) {
  const int v = cdmc > 0 ? cdmc : cdmc_default;
  return v < 1 ? 1 : (v > cdmc_max ? cdmc_max : v);
}
inline int hardware_queue_of(int stream, int queue_count) { return stream % queue_count; }

// The CDMC this process runs under, read from the environment the first time it is called and
// never again (call it early in main, before anything could change the variable).
int process_cdmc();

// Throws config_error when a case asks for a CDMC other than the process's own, telling the user
// how to sweep CDMC instead.
void require_cdmc(int requested, int process);

// Runs this binary again (/proc/self/exe) with `argv` and the current environment plus
// CUDA_DEVICE_MAX_CONNECTIONS=cdmc and `extra_env`, waits for it and returns its exit code
// (128 + signal number if it was killed). An empty argv re-uses this process's own command line.
// Throws runtime_failure when the child cannot be started.
int reexec_with_cdmc(int cdmc, const std::vector<std::string>& argv = {},
                     const std::vector<std::pair<std::string, std::string>>& extra_env = {});

// This process's command line (/proc/self/cmdline).
std::vector<std::string> self_command_line();

}  // namespace ob
