#include "cli/step_driver.hpp"

#include <chrono>
#include <iostream>
#include <optional>

#include "base/error.hpp"
#include "cli/signal_watch.hpp"
#include "cli/sweep_outputs.hpp"
#include "dist/communicator.hpp"
#include "run/step_run.hpp"
#include "run/step_search.hpp"
#include "sim/simulator.hpp"

namespace ob::cli {
namespace {

// Rank 0: the table, --json, --csv and --trace (the trace only when a case ran).
void write_step_outputs(const step_sweep_result& out, const common_flags& flags) {
  if (!flags.quiet) std::cout << format_step_table(out.doc) << std::flush;
  if (!flags.json_path.empty()) write_step_json(flags.json_path, out.doc);
  if (!flags.csv_path.empty()) write_step_csv(flags.csv_path, out.doc);
  if (!flags.trace_path.empty() && !out.trace.is_null())
    write_file_atomic(flags.trace_path, out.trace.dump() + "\n");
}

step_hooks cli_step_hooks(const common_flags& flags, const communicator& comm,
                          signal_watch& signals) {
  step_hooks hooks;
  hooks.trace = !flags.trace_path.empty();
  hooks.should_stop = [&signals] { return signals.received(); };
  // -q: nothing on stdout and no progress on stderr (as run and pair).
  if (comm.is_root() && !flags.quiet)
    hooks.progress = [](std::size_t done, std::size_t total, const std::string& id) {
      if (total > 1) std::cerr << "[" << done << "/" << total << "] " << id << "\n";
    };
  return hooks;
}

// Rank 0 keeps <json>.journal as for run and pair (README: journaled sweeps): the cases it
// holds go to hooks.finished, each new one is appended as it finishes.
journal_keeper step_journal(const common_flags& flags, const step_spec& spec, const executor& exec,
                            step_hooks& hooks) {
  return journal_keeper(
      flags, step_fingerprint(spec, exec.backend()), spec.cases.size(),
      [&hooks](const ordered_json& c, const std::string& file, const std::string& where) {
        hooks.finished.push_back(step_record_from_json(c, file, where));
      });
}

}  // namespace

int drive_step(const step_scenario& sc, const common_flags& flags, const process_args& args,
               const std::vector<path_flag>& inputs) {
  step_spec spec = resolve_step(sc);
  spec.measure = measure_from(flags, spec.measure);
  signal_watch signals;  // before MPI starts its threads
  auto comm = make_communicator(args.argc, args.argv, flags.timeout_s);
  preflight(spec.cases.size(), flags, "step", comm->is_root());
  // Before the first case, as for run and pair (README: journaled sweeps).
  if (comm->is_root()) {
    check_output_paths(flags, inputs);
    signals.announce();
    signals.remove_temporaries_of(output_files(flags));
  }
  auto exec = make_executor(flags, spec.gpu, *comm);
  step_hooks hooks = cli_step_hooks(flags, *comm, signals);
  hooks.inject = injected_fault(flags, *comm, exec->backend(), spec.cases.size(), true);
  std::optional<journal_keeper> journal;
  if (comm->is_root()) journal.emplace(step_journal(flags, spec, *exec, hooks));
  if (journal && !flags.json_path.empty())
    hooks.on_case = [&journal](const step_record& r) { journal->append(to_json(r)); };
  step_sweep_result out;
  try {
    out = run_step_sweep(spec, *exec, *comm, hooks);
  } catch (const error& e) {
    if (journal) journal->after_failure(e);
    throw;
  }
  int answers_rc = 0;  // --gbench-json and --expect (prepared by the caller)
  if (comm->is_root()) {
    write_step_outputs(out, flags);
    journal->finish(out.stopped != 0);
    answers_rc = emit_answers(out.doc, flags.answers);
  }
  // The others wait for rank 0's files: mpirun ends the whole job once a rank exits non-zero.
  comm->barrier();
  if (!out.stopped) return answers_rc;
  return stopped_exit(out.stopped, out.doc.cases.size(), spec.cases.size(), flags, *comm);
}

namespace {

// What a search cannot do: it simulates (the layouts it has not been told), keeps no journal,
// and its answer is no baseline's case list.
void check_search_flags(const common_flags& flags) {
  if (flags.backend != "sim" && flags.backend != "auto")
    throw config_error("--search --backend " + flags.backend +
                       ": the search simulates every candidate; measure the layout it finds "
                       "with `step --backend " +
                       flags.backend + "` and its flags");
  const std::pair<bool, const char*> refused[] = {
      {flags.resume, "--resume (a search keeps no journal)"},
      {!flags.trace_path.empty(), "--trace (trace the layout it finds with `step --trace`)"},
      {!flags.answers.expect_path.empty(), "--expect"},
      {!flags.answers.gbench_path.empty(), "--gbench-json"}};
  for (const auto& [given, what] : refused)
    if (given) throw config_error("--search does not take " + std::string(what));
}

}  // namespace

int drive_search(const step_scenario& sc, const common_flags& flags, const search_flags& search,
                 const process_args& args, const std::vector<path_flag>& inputs) {
  check_search_flags(flags);
  if (search.top < 1) throw config_error("--top " + std::to_string(search.top) + ": at least 1");
  if (search.budget_s < 0) throw config_error("--budget-s: not negative");
  auto comm = make_communicator(args.argc, args.argv, flags.timeout_s);
  if (comm->is_root()) check_output_paths(flags, inputs);
  search_options o;
  o.top = search.top;
  o.budget_s = search.budget_s;
  o.make_executor = [](const gpu_spec& gpu) { return std::make_unique<sim_executor>(gpu); };
  if (comm->is_root() && !flags.quiet)
    o.progress = [last = std::chrono::steady_clock::time_point()](
                     std::size_t done, std::size_t total, const std::string& best) mutable {
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::seconds(5)) return;  // a line every 5 s, not per batch
      last = now;
      std::cerr << "[search] " << done << " of at most " << total
                << " layouts simulated (in bound order); best so far " << best << "\n";
    };
  const step_doc doc = search_step(sc, o, *comm);
  if (comm->is_root()) {
    if (!flags.quiet) std::cout << format_step_table(doc) << std::flush;
    if (!flags.json_path.empty()) write_step_json(flags.json_path, doc);
    if (!flags.csv_path.empty()) write_step_csv(flags.csv_path, doc);
  }
  comm->barrier();
  return 0;
}

}  // namespace ob::cli
