#pragma once
// Shared by the libFuzzer targets (README: fuzzing). A loader may refuse any input, but only
// with ob::error (exit 2/3 and a message naming the file and field): any other exception (a raw
// library one) escapes and libFuzzer reports it as a crash, as it does for sanitizer findings.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "base/error.hpp"

namespace ob::fuzz {

// The loaders read files, as the CLI does: the input goes to one file per process, rewritten for
// each run. `name` keeps the extension a loader may look at.
class input_file {
 public:
  explicit input_file(const std::string& name)
      : path_((std::filesystem::temp_directory_path() /
               ("ob_fuzz_" + std::to_string(::getpid()) + "_" + name))
                  .string()) {}
  ~input_file() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;

  const std::string& write(const std::uint8_t* data, std::size_t size) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    return path_;
  }

 private:
  std::string path_;
};

// Runs `load`; a refusal by ob::error is the expected answer to bad input.
template <typename F>
void expect_clean(F&& load) {
  try {
    load();
  } catch (const ob::error&) {
  }
}

// Configs referred to by name (models, GPUs, presets) come from the source tree.
inline void use_source_configs() {
  if (std::getenv("OVERLAP_BENCH_CONFIGS") == nullptr)
    ::setenv("OVERLAP_BENCH_CONFIGS", OB_FUZZ_CONFIGS, 0);
}

}  // namespace ob::fuzz
