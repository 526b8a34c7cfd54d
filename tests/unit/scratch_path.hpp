#pragma once
// A path under the system's temporary directory that belongs to this test process. ctest runs
// each test as its own process, several at once (-j), so two tests writing one fixed name race:
// one truncates the file while the other reads it.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace ob::test {

inline std::filesystem::path scratch_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("ob_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace ob::test
