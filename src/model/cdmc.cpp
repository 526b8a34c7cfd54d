#include "model/cdmc.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "base/error.hpp"

extern char** environ;

namespace ob {

int parse_cdmc(const char* value) {
  if (!value || !*value) return cdmc_default;
  const std::string s(value);
  int n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n < 1)
    throw config_error("CUDA_DEVICE_MAX_CONNECTIONS='" + s +
                       "': expected an integer from 1 to 32 (unset means 8)");
  return n > cdmc_max ? cdmc_max : n;
}

int process_cdmc() {
  // The driver saw the variable as it was at context creation; a snapshot taken once (before any
  // context exists) is the only value this process can honestly report.
  static const int value = parse_cdmc(std::getenv("CUDA_DEVICE_MAX_CONNECTIONS"));
  return value;
}

void require_cdmc(int requested, int process) {
  if (requested == process) return;
  throw config_error(
      "this case asks for CUDA_DEVICE_MAX_CONNECTIONS=" + std::to_string(requested) +
      " but the process runs under " + std::to_string(process) +
      " (the CUDA driver reads it once, at context creation). Sweep CDMC with one process per "
      "value: single-process runs re-execute themselves for each value of --set cdmc=...; under "
      "mpirun use scripts/sweep_cdmc.sh --values 1,8,32 -- mpirun ...");
}

std::vector<std::string> self_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> out;
  std::string cur;
  for (char c : raw) {
    if (c == '\0') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

int reexec_with_cdmc(int cdmc, const std::vector<std::string>& argv_in,
                     const std::vector<std::pair<std::string, std::string>>& extra_env) {
  if (cdmc < 1 || cdmc > cdmc_max)
    throw config_error("CDMC " + std::to_string(cdmc) + " is out of range 1..32");
  const std::vector<std::string> args = argv_in.empty() ? self_command_line() : argv_in;
  if (args.empty()) throw runtime_failure("re-exec for CDMC: empty command line");

  // Everything the child needs is built before fork: between fork and exec only
  // async-signal-safe calls are allowed in a multi-threaded process.
  std::vector<std::pair<std::string, std::string>> overrides = extra_env;
  overrides.emplace_back("CUDA_DEVICE_MAX_CONNECTIONS", std::to_string(cdmc));
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& [k, v] : overrides) replaced = replaced || k == name;
    if (!replaced) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : overrides) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv_c, envp_c;
  for (const auto& a : args) argv_c.push_back(const_cast<char*>(a.c_str()));
  argv_c.push_back(nullptr);
  for (const auto& e : env_strings) envp_c.push_back(const_cast<char*>(e.c_str()));
  envp_c.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0)
    throw runtime_failure("re-exec for CDMC=" + std::to_string(cdmc) +
                          ": fork failed: " + std::strerror(errno));
  if (pid == 0) {
    ::execve("/proc/self/exe", argv_c.data(), envp_c.data());
    static const char msg[] = "overlap-bench: execve(/proc/self/exe) failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      throw runtime_failure("re-exec for CDMC=" + std::to_string(cdmc) +
                            ": waitpid failed: " + std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 3;
}

}  // namespace ob
