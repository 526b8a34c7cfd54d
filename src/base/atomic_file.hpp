#pragma once
// Result files written piece by piece, still all or nothing (docs/ARCHITECTURE.md §7): the text
// goes to a temporary file beside the target and is renamed over it only by commit(), so a crash,
// an exception or a signal never leaves half a file. write_file_atomic (json_util.hpp) is the
// one-string form.
#include <fstream>
#include <string>
#include <string_view>

namespace ob {

class atomic_file {
 public:
  // Creates the parent folders and opens the temporary file; runtime_failure (exit 3) naming
  // `path` when either fails.
  explicit atomic_file(std::string path);
  // Removes the temporary file unless commit() renamed it.
  ~atomic_file();
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;

  void write(std::string_view text);
  // Flushes, closes and renames the temporary over the target.
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

// The temporary file atomic_file writes `path` through: `path`.tmp.<pid>.
std::string temporary_path_for(const std::string& path);

// Why a result file could not be written at `path` ("" when it can): tries what writing does
// (the parent folders, a temporary file beside it) and removes what it made. Lets a sweep refuse
// an unwritable --json before its first case instead of after its last.
std::string why_not_writable(const std::string& path);

}  // namespace ob
