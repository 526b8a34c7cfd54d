#include "cli/output_paths.hpp"

#include <filesystem>

#include "base/atomic_file.hpp"
#include "base/error.hpp"
#include "run/journal.hpp"

namespace ob::cli {
namespace {
namespace fs = std::filesystem;

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  // Absolute first: weakly_canonical leaves a relative path that does not exist as given.
  return fs::weakly_canonical(fs::absolute(a, ec), ec) ==
         fs::weakly_canonical(fs::absolute(b, ec), ec);
}

// `newdir/`, `.` or `..` name a folder even when it does not exist yet: the file written there
// would be renamed onto a folder after the last case.
bool names_a_folder(const std::string& path) {
  const fs::path p(path);
  return !p.has_filename() || p.filename() == "." || p.filename() == "..";
}

void check_writable(const path_flag& o) {
  const std::string where = o.flag + " " + o.path + ": ";
  if (names_a_folder(o.path))
    throw config_error(where + "names a folder; give a file name (e.g. " +
                       (fs::path(o.path) / "result.json").string() + ")");
  if (const std::string why = why_not_writable(o.path); !why.empty())
    throw config_error(where + "cannot write there: " + why);
}

// Two outputs naming one file would have the second write over the first.
void check_distinct(const std::vector<const path_flag*>& outputs, const std::string& journaled) {
  for (std::size_t i = 0; i < outputs.size(); ++i)
    for (std::size_t j = i + 1; j < outputs.size(); ++j)
      if (same_file(outputs[i]->path, outputs[j]->path))
        throw config_error(outputs[j]->flag + " " + outputs[j]->path + ": the same file as " +
                           outputs[i]->flag + " " + outputs[i]->path +
                           "; the second would write over the first");
  if (journaled.empty()) return;
  for (const path_flag* o : outputs)
    if (o->path != journaled && same_file(o->path, journal_path_for(journaled)))
      throw config_error(o->flag + " " + o->path + ": the journal of --json " + journaled + " (" +
                         journal_path_for(journaled) + ")");
}

}  // namespace

void check_output_paths(const std::vector<path_flag>& outputs, const std::vector<path_flag>& inputs,
                        const std::string& journaled) {
  std::vector<const path_flag*> given;
  for (const path_flag& o : outputs)
    if (!o.path.empty()) given.push_back(&o);
  for (const path_flag* o : given)
    for (const path_flag& in : inputs) {
      std::error_code ec;
      if (!in.path.empty() && fs::is_regular_file(in.path, ec) && same_file(o->path, in.path))
        throw config_error(o->flag + " " + o->path + ": the same file as the input " + in.flag +
                           " " + in.path + "; an output never overwrites an input");
    }
  check_distinct(given, journaled);
  for (const path_flag* o : given) check_writable(*o);
}

}  // namespace ob::cli
