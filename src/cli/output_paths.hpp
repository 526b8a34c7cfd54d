#pragma once
// Every file a subcommand will write, checked before it does any work (README: output paths are
// checked before the first case): each must be writable there and name a file, no two may name
// the same file (the second would write over the first), and none may be one of the command's
// inputs (a result never overwrites what it was made from).
#include <string>
#include <vector>

namespace ob::cli {

struct path_flag {
  std::string flag;  // "--json"
  std::string path;  // "" when the flag was not given
};

// config_error (exit 2) naming the flag and the path, and for a clash both flags. An input counts
// only when it names an existing file (a name such as `h100_sxm` is looked up elsewhere).
// `journaled`: the output whose FILE.journal the sweep keeps beside it, which must not be
// another output either.
void check_output_paths(const std::vector<path_flag>& outputs, const std::vector<path_flag>& inputs,
                        const std::string& journaled = "");

}  // namespace ob::cli
