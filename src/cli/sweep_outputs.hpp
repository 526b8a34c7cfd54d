#pragma once
// What rank 0 writes for a sweep (README: journaled sweeps): every output path checked before the
// first case, the journal kept as cases finish, and the table, JSON, CSV and trace at the end,
// also when a signal stopped the sweep early.
#include <optional>

#include "cli/harness.hpp"
#include "core/error.hpp"
#include "core/journal.hpp"
#include "core/sweep.hpp"

namespace ob::cli {

// config_error (exit 2) naming the flag when --json, --csv or --trace cannot be written there, or
// when two of them name the same file.
void check_output_paths(const common_flags& f);

class sweep_outputs {
 public:
  // Checks the paths. With --json, starts <json>.journal, or with --resume continues it and
  // hands the cases it holds to hooks.finished; then plugs it into hooks.on_case. Keep the object
  // where it is: the hook points to it.
  sweep_outputs(const common_flags& f, const sweep_request& req, const executor& exec,
                sweep_hooks& hooks);
  sweep_outputs(const sweep_outputs&) = delete;
  sweep_outputs& operator=(const sweep_outputs&) = delete;

  // The table and the files. The journal is deleted once the JSON of a complete sweep is
  // written; a stopped sweep keeps it for --resume.
  int emit(const sweep_result& out, const communicator& comm);  // 1: --expect failed
  // After a failure: the journal of a sweep that cannot run (a config error) goes unless it was
  // resumed; otherwise it stays, and stderr says how to continue.
  void after_failure(const error& e);

 private:
  const common_flags& flags_;
  std::optional<sweep_journal> journal_;
  bool resumed_ = false;
};

}  // namespace ob::cli
