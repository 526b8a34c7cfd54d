#pragma once
// Journaled sweeps (docs/ARCHITECTURE.md §7): every finished case is appended to
// `<json>.journal` as one JSON line the moment it completes, so an hour-long sweep that is
// interrupted, killed or hung keeps what it measured. The result JSON is streamed from the
// journal at the end; `--resume` reads it back and measures only the cases it lacks.
//
// Format (JSON Lines): the first line is {"journal": "overlap-bench/journal/v1", "fingerprint":
// "<16 hex digits>"}, every later line one case exactly as the result JSON holds it. A journal is
// resumed only by the sweep that wrote it: the fingerprint covers the scenario, the resolved
// config, the case ids, the backend and the measurement settings.
#include <fstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"
#include "core/sweep.hpp"

namespace ob {

inline constexpr const char* journal_schema_v1 = "overlap-bench/journal/v1";

// Where the journal of a result file lives.
inline std::string journal_path_for(const std::string& json_path) { return json_path + ".journal"; }

// Identifies a sweep: equal for the same request on the same backend, different when the config,
// a case id, the backend or a measurement setting (iterations, warm-up, graphs) differs.
std::string sweep_fingerprint(const sweep_request& req, const std::string& backend);

class sweep_journal {
 public:
  // A new journal at `path` for the sweep `fingerprint`, replacing any earlier one.
  // runtime_failure (exit 3) when it cannot be written.
  static sweep_journal start(const std::string& path, const std::string& fingerprint);
  // Continues the journal at `path` (--resume) and puts the cases it holds in `finished`. A last
  // line cut short by a crash is dropped. config_error (exit 2) naming the file when it is not a
  // journal, holds a malformed line, or belongs to another sweep.
  static sweep_journal resume(const std::string& path, const std::string& fingerprint,
                              std::vector<case_record>& finished);

  // One line per finished case, flushed to the operating system at once: it survives a crash or
  // a kill of this process (not a power cut).
  void append(const case_record& c);
  std::size_t size() const { return offsets_.size(); }
  const std::string& path() const { return path_; }

  // Streams the result document to `json_path` (atomically): `doc`'s schema, tool, env and
  // config, then for each of doc.cases, in that order, its line from the journal. Byte for byte
  // what write_result_json(json_path, doc) writes, without holding the document as one JSON
  // value or one string.
  void write_result(const std::string& json_path, const result_doc& doc);
  // Deletes the file: its result is written, or it belongs to a sweep that cannot run.
  void remove();

 private:
  explicit sweep_journal(std::string path) : path_(std::move(path)) {}
  void open_for_append();

  std::string path_;
  std::ofstream out_;
  std::unordered_map<std::string, std::streamoff> offsets_;  // case id -> start of its line
  std::streamoff end_ = 0;
};

}  // namespace ob
