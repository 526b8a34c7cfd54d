#include "cli/step_driver.hpp"

#include <signal.h>

#include <iostream>

#include "cli/signal_watch.hpp"
#include "cli/sweep_outputs.hpp"
#include "core/error.hpp"
#include "core/step_run.hpp"
#include "dist/communicator.hpp"

namespace ob::cli {
namespace {

// Rank 0: the table, --json and --trace (the trace only when a case ran).
void write_step_outputs(const step_sweep_result& out, const common_flags& flags) {
  if (!flags.quiet) std::cout << format_step_table(out.doc) << std::flush;
  if (!flags.json_path.empty()) write_step_json(flags.json_path, out.doc);
  if (!flags.trace_path.empty() && !out.trace.is_null())
    write_file_atomic(flags.trace_path, out.trace.dump() + "\n");
}

}  // namespace

int drive_step(const step_scenario& sc, const common_flags& flags, const process_args& args) {
  step_spec spec = resolve_step(sc);
  spec.measure = measure_from(flags, spec.measure);
  signal_watch signals;  // before MPI starts its threads
  auto comm = make_communicator(args.argc, args.argv, flags.timeout_s);
  // Before the first case, as for run and pair (README: journaled sweeps).
  if (comm->is_root()) {
    check_output_paths(flags);
    signals.announce();
  }
  auto exec = make_executor(flags, spec.gpu, *comm);
  step_hooks hooks;
  hooks.trace = !flags.trace_path.empty();
  hooks.should_stop = [&signals] { return signals.received(); };
  if (comm->is_root())
    hooks.progress = [](std::size_t done, std::size_t total, const std::string& id) {
      if (total > 1) std::cerr << "[" << done << "/" << total << "] " << id << "\n";
    };
  const step_sweep_result out = run_step_sweep(spec, *exec, *comm, hooks);
  int answers_rc = 0;  // --gbench-json and --expect (prepared by the caller)
  if (comm->is_root()) {
    write_step_outputs(out, flags);
    answers_rc = emit_answers(out.doc, flags.answers);
  }
  // The others wait for rank 0's files: mpirun ends the whole job once a rank exits non-zero.
  comm->barrier();
  if (!out.stopped) return answers_rc;
  // The finished cases are written; a step sweep keeps no journal, so there is nothing to resume.
  if (comm->is_root())
    std::cerr << "overlap-bench: stopped by " << (out.stopped == SIGINT ? "SIGINT" : "SIGTERM")
              << " after " << out.doc.cases.size() << " of " << spec.cases.size() << " cases\n";
  return 128 + out.stopped;
}

}  // namespace ob::cli
