#pragma once
// What a sweep is about to do, said before its first case (README: reliability).
#include <cstddef>
#include <string>

#include "cli/harness.hpp"

namespace ob::cli {

// Before the first case, on every rank: refuses a sweep over --max-cases (config_error naming the
// flag); with `announce` (rank 0) and unless -q, says how many cases will run.
void preflight(std::size_t cases, const common_flags& f, const std::string& what, bool announce);

}  // namespace ob::cli
