#pragma once
// Journaled sweeps (docs/ARCHITECTURE.md §7.5): every finished case is appended to
// `<json>.journal` as one JSON line the moment it completes, so an hour-long sweep that is
// interrupted, killed or hung keeps what it measured. `--resume` reads it back and measures only
// the cases it lacks.
//
// Format (JSON Lines): the first line is {"journal": "overlap-bench/journal/v1", "fingerprint":
// "<16 hex digits>"}, every later line one case exactly as the result JSON holds it: a layer,
// pair or coll case (result/v1) or a training-step case (step/v1). The journal only needs each
// case's string "id"; the sweep that owns it reads the rest back. A journal is resumed only by
// the sweep that wrote it: the fingerprint (sweep_fingerprint, step_fingerprint) covers the
// scenario, the resolved config, the case ids, the backend and the measurement settings.
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "base/json_util.hpp"

namespace ob {

inline constexpr const char* journal_schema_v1 = "overlap-bench/journal/v1";

// Where the journal of a result file lives.
inline std::string journal_path_for(const std::string& json_path) { return json_path + ".journal"; }

// 16 hex digits of FNV-1a over `parts`, each followed by a newline: stable across builds and
// machines, which std::hash is not. Each kind of sweep decides what goes in.
std::string fingerprint_of(const std::vector<std::string>& parts);

class sweep_journal {
 public:
  // Takes one finished case back on --resume: checks and keeps `c` (its "id" is a string the
  // journal has not seen before). Throws config_error naming `file` and `where` ("line 3").
  using case_reader =
      std::function<void(const ordered_json& c, const std::string& file, const std::string& where)>;

  // A new journal at `path` for the sweep `fingerprint`, replacing any earlier one.
  // runtime_failure (exit 3) when it cannot be written.
  static sweep_journal start(const std::string& path, const std::string& fingerprint);
  // Continues the journal at `path` (--resume), handing each case it holds to `read` once (a
  // case journaled twice counts once). A last line cut short by a crash is dropped. config_error
  // (exit 2) naming the file when it is not a journal, holds a malformed line, or belongs to
  // another sweep.
  static sweep_journal resume(const std::string& path, const std::string& fingerprint,
                              const case_reader& read);

  // One line per finished case (an object with a string "id"), flushed to the operating system
  // at once: it survives a crash or a kill of this process (not a power cut).
  void append(const ordered_json& c);
  // The distinct cases it holds.
  std::size_t size() const { return ids_.size(); }
  const std::string& path() const { return path_; }
  // Deletes the file: its result is written, or it belongs to a sweep that cannot run.
  void remove();

 private:
  explicit sweep_journal(std::string path) : path_(std::move(path)) {}
  void open_for_append();

  std::string path_;
  std::ofstream out_;
  std::set<std::string> ids_;
};

}  // namespace ob
