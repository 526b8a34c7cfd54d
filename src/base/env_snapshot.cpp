#include "base/env_snapshot.hpp"

#include <map>
#include <set>
#include <string>

extern char** environ;

namespace ob {
namespace {

bool is_wanted_variable(const std::string& name) {
  static const std::set<std::string> exact = {"CUDA_DEVICE_MAX_CONNECTIONS", "CUDA_LAUNCH_BLOCKING",
                                              "CUDA_VISIBLE_DEVICES", "CUDA_MODULE_LOADING"};
  return exact.count(name) || name.rfind("NCCL_", 0) == 0 || name.rfind("NVTE_", 0) == 0;
}

}  // namespace

ordered_json env_variables_snapshot(const char* const* envp) {
  std::map<std::string, std::string> vars;  // sorted by name
  for (const char* const* e = envp; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    std::string name = entry.substr(0, eq);
    if (is_wanted_variable(name)) vars[name] = entry.substr(eq + 1);
  }
  ordered_json out = ordered_json::object();
  for (const auto& [k, v] : vars) out[k] = v;
  return out;
}

ordered_json env_variables_snapshot() { return env_variables_snapshot(environ); }

}  // namespace ob
