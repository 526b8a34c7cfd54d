// What a sweep is about to do, said before its first case (README: reliability).
#include <iostream>

#include "base/error.hpp"
#include "cli/harness.hpp"

namespace ob::cli {

void preflight(std::size_t cases, const common_flags& f, const std::string& what, bool announce) {
  if (cases > static_cast<std::size_t>(f.max_cases))
    throw config_error("--max-cases: the sweep has " + std::to_string(cases) + " " + what +
                       " cases, over the limit of " + std::to_string(f.max_cases) +
                       "; narrow the axes, or raise --max-cases to run them all");
  if (!announce || f.quiet || cases < 2) return;
  std::cerr << "overlap-bench: " << cases << " " << what << " cases";
  if (!f.json_path.empty())
    std::cerr << "; " << f.json_path << " and its journal grow as they finish (progress says by "
              << "how much)";
  std::cerr << "\n";
}

}  // namespace ob::cli
