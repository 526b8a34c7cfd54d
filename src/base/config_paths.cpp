#include "base/config_paths.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "base/build_info.hpp"
#include "base/error.hpp"

namespace ob {
namespace fs = std::filesystem;

std::string config_root() {
  if (const char* env = std::getenv("OVERLAP_BENCH_CONFIGS"); env && *env) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path dir = exe.parent_path();
    for (const fs::path& cand : {dir / ".." / "configs", dir / ".." / ".." / "configs",
                                 dir / ".." / "share" / "overlap-bench" / "configs"})
      if (fs::is_directory(cand / "gpus", ec)) return fs::weakly_canonical(cand, ec).string();
  }
  return (fs::path(OB_SOURCE_DIR) / "configs").string();
}

std::vector<std::string> list_configs(const std::string& kind) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(config_root()) / kind, ec))
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string find_config(const std::string& kind, const std::string& name,
                        const std::string& field) {
  std::error_code ec;
  if (name.find('/') != std::string::npos || name.ends_with(".json")) {
    if (fs::is_regular_file(name, ec)) return name;
    if (fs::exists(name, ec)) throw config_error(field + ": '" + name + "' is not a regular file");
    throw config_error(field + ": file '" + name + "' not found");
  }
  const fs::path p = fs::path(config_root()) / kind / (name + ".json");
  if (fs::is_regular_file(p, ec)) return p.string();
  std::string known;
  for (const auto& n : list_configs(kind)) known += (known.empty() ? "" : ", ") + n;
  std::string label = kind.substr(0, kind.find('/'));
  if (label.ends_with('s')) label.pop_back();
  throw config_error(field + ": unknown " + label + " '" + name + "' (known: " +
                     (known.empty() ? "none found in " + config_root() : known) + ")");
}

}  // namespace ob
