#pragma once
// Where the data files (configs/) live: a build tree, an install, or an explicit override.
#include <string>
#include <vector>

namespace ob {

// First match of: $OVERLAP_BENCH_CONFIGS, <exe>/../configs, <exe>/../../configs,
// <exe>/../share/overlap-bench/configs, and the source tree the binary was built from.
std::string config_root();

// Resolves a config reference: a path to an existing file is used as is; otherwise a bare name
// is looked up as configs/<kind>/<name>.json. Throws config_error naming `field` and listing the
// known names when nothing matches.
std::string find_config(const std::string& kind, const std::string& name, const std::string& field);

// Names (file stems) of configs/<kind>/*.json, sorted.
std::vector<std::string> list_configs(const std::string& kind);

}  // namespace ob
