#pragma once
// What rank 0 writes for a sweep (README: journaled sweeps): every output path checked before the
// first case, the journal kept as cases finish, and the table, JSON, CSV and trace at the end,
// also when a signal stopped the sweep early. The layer, pair and coll sweeps (sweep_outputs) and
// the training step (cli/step_driver) keep their journal the same way (journal_keeper).
#include <optional>

#include "base/error.hpp"
#include "cli/harness.hpp"
#include "cli/output_paths.hpp"
#include "run/journal.hpp"
#include "run/sweep.hpp"

namespace ob::cli {

// config_error (exit 2) naming the flag when --json, --csv, --trace or --gbench-json cannot be
// written there, names a folder, or is the same file as another of them, as --json's journal,
// as --expect or as one of `inputs` (the command's own: --config, --model, ...).
void check_output_paths(const common_flags& f, std::vector<path_flag> inputs = {});
// --json, --csv, --trace and --gbench-json as given ("" for a flag not given).
std::vector<std::string> output_files(const common_flags& f);

// A journal reader that keeps each layer or pair case it reads back, checked strictly, in `out`:
// the parent's --resume, a CDMC child's own resume, and the parent reading a child's journal.
sweep_journal::case_reader collect_cases(std::vector<case_record>& out);

// <json>.journal of a sweep run from the command line (rank 0; nothing without --json): with
// --resume continues it and hands each case it holds to `read`, else starts it afresh. An
// existing journal is never replaced without --resume (config_error): it holds an interrupted
// sweep's cases.
class journal_keeper {
 public:
  journal_keeper(const common_flags& f, const std::string& fingerprint, std::size_t cases,
                 const sweep_journal::case_reader& read);

  void append(const ordered_json& c) {
    if (journal_) journal_->append(c);
  }
  // After the result is written: a complete sweep's journal is deleted, a stopped one's stays
  // for --resume.
  void finish(bool stopped);
  // After a failure: the journal of a sweep that cannot run (a config error) goes unless it was
  // resumed; otherwise it stays, and stderr says how to continue.
  void after_failure(const error& e);

 private:
  std::optional<sweep_journal> journal_;
  bool resumed_ = false;
};

// Says on stderr (rank 0) which signal stopped the sweep after how many of its cases, and that
// --resume measures the rest; returns 128 + the signal, as a shell reports a process it ended.
int stopped_exit(int signal, std::size_t done, std::size_t total, const common_flags& f,
                 const communicator& comm);

class sweep_outputs {
 public:
  // Checks the paths, then keeps the journal (journal_keeper): the cases it holds go to
  // hooks.finished, and hooks.on_case appends to it. Keep the object where it is: the hook
  // points to it.
  sweep_outputs(const common_flags& f, const sweep_request& req, const executor& exec,
                sweep_hooks& hooks, const std::vector<path_flag>& inputs);
  sweep_outputs(const sweep_outputs&) = delete;
  sweep_outputs& operator=(const sweep_outputs&) = delete;

  // The table and the files; then the journal of a complete sweep is deleted.
  int emit(const sweep_result& out, const communicator& comm);  // 1: --expect failed
  void after_failure(const error& e) { journal_->after_failure(e); }

 private:
  const common_flags& flags_;
  std::optional<journal_keeper> journal_;
};

}  // namespace ob::cli
