#pragma once
// A path under the system's temporary directory that belongs to this test process. ctest runs
// each test as its own process, several at once (-j), so two tests writing one fixed name race:
// one truncates the file while the other reads it.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace ob::test {

inline std::filesystem::path scratch_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("ob_" + std::to_string(::getpid()) + "_" + name);
}

// Writes `text` to this process's scratch file `name`; returns its path.
inline std::string write_scratch(const std::string& name, const std::string& text) {
  const std::filesystem::path p = scratch_path(name);
  std::ofstream(p) << text;
  return p.string();
}

// A model whose output layer and embedding are negligible, so pipeline stages are balanced.
inline std::string balanced_model() {
  return write_scratch("balanced_model.json", R"({"hidden_size": 4096, "ffn_hidden_size": 16384,
    "num_attention_heads": 32, "seq_length": 2048, "num_layers": 16, "vocab_size": 256})");
}

}  // namespace ob::test
