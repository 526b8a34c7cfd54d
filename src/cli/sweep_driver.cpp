#include "cli/sweep_driver.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include "base/error.hpp"
#include "base/units.hpp"
#include "cli/signal_watch.hpp"
#include "cli/sweep_outputs.hpp"
#include "dist/communicator.hpp"
#include "model/cdmc.hpp"
#include "run/journal.hpp"
#include "sim/simulator.hpp"

namespace ob::cli {
namespace {

// ---- CDMC child runs (docs/ARCHITECTURE.md §6) -------------------------------------------
// The CUDA driver reads CUDA_DEVICE_MAX_CONNECTIONS once per process, so a sweep over it runs
// each other value in a child: this binary re-executed with the variable set and
// --cdmc-child-journal PATH. The child measures the cases at its own value and journals each one
// to PATH (the sweep's own journal format and fingerprint); the parent reads PATH back. A child
// stopped by a signal keeps what it finished there, and a parent run with --resume hands the
// same journal to its next child, which measures only the rest.

// Next to the result's journal with --json (kept for --resume), else in the temporary folder.
std::string child_journal_path(const common_flags& flags, int cdmc) {
  const std::string tail = ".cdmc" + std::to_string(cdmc);
  if (!flags.json_path.empty()) return journal_path_for(flags.json_path) + tail;
  return (std::filesystem::temp_directory_path() /
          ("overlap-bench-" + std::to_string(::getpid()) + tail + ".journal"))
      .string();
}

// Parent: re-executes this binary at `cdmc` and returns the cases its journal holds.
std::vector<case_record> run_child(const common_flags& flags, const std::string& fingerprint,
                                   int cdmc) {
  std::cerr << "overlap-bench: CUDA_DEVICE_MAX_CONNECTIONS=" << cdmc
            << ": re-running in a fresh process (the driver reads it at context creation)\n";
  const std::string path = child_journal_path(flags, cdmc);
  std::vector<std::string> argv = self_command_line();
  argv.insert(argv.end(), {"--cdmc-child-journal", path});
  const int rc = reexec_with_cdmc(cdmc, argv);
  // 130 and 143: the child was interrupted with this process and journaled what it finished.
  if (rc != 0 && rc != static_cast<int>(exit_code::runtime) && rc != 128 + SIGINT &&
      rc != 128 + SIGTERM)
    throw error(rc == 2 || rc == 4 ? static_cast<exit_code>(rc) : exit_code::runtime,
                "the CUDA_DEVICE_MAX_CONNECTIONS=" + std::to_string(cdmc) +
                    " child run failed with exit code " + std::to_string(rc));
  std::vector<case_record> cases;
  sweep_journal journal = sweep_journal::resume(path, fingerprint, collect_cases(cases));
  // The parent's own journal takes the cases over (on_case), so this one has done its work.
  journal.remove();
  return cases;
}

// Child: measures the cases at this process's CDMC, each journaled the moment it finishes; no
// table and no result file (the parent writes them).
int run_as_child(const sweep_request& req, const common_flags& flags, executor& exec,
                 communicator& comm, const gpu_spec& gpu, sweep_hooks hooks) {
  hooks.only_cdmc = process_cdmc();
  hooks.progress = nullptr;
  const std::string& path = flags.cdmc_child_journal;
  const std::string fingerprint = sweep_fingerprint(req, exec.backend());
  std::optional<sweep_journal> journal;
  if (flags.resume && std::filesystem::exists(path)) {
    journal.emplace(sweep_journal::resume(path, fingerprint, collect_cases(hooks.finished)));
    std::cerr << "overlap-bench: CUDA_DEVICE_MAX_CONNECTIONS=" << hooks.only_cdmc << ": resuming "
              << path << ": " << journal->size() << " case(s) already finished\n";
  } else {
    journal.emplace(sweep_journal::start(path, fingerprint));
  }
  hooks.on_case = [&journal](const case_record& rec) { journal->append(to_json(rec)); };
  const sweep_result out = run_sweep(req, exec, comm, gpu, hooks);
  return out.stopped ? 128 + out.stopped : out.exit_code;
}

// "[k/n] case" on stderr at every tenth of a long sweep, with the time left and, with --json,
// the journal's size projected to the whole sweep: both measured on this run so far.
std::function<void(std::size_t, std::size_t, const std::string&)> progress_printer(
    const std::string& journal) {
  const auto start = std::chrono::steady_clock::now();
  return [start, journal, last_decile = -1](std::size_t done, std::size_t total,
                                            const std::string& id) mutable {
    if (total < 20 || done == 0) return;
    const int decile = static_cast<int>(done * 10 / total);
    if (decile == last_decile && done != total) return;
    last_decile = decile;
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << "[" << done << "/" << total << "] " << id;
    if (done < total)
      std::cerr << " (about "
                << format_fixed(s / done * (total - done), s / done * (total - done) < 10 ? 1 : 0)
                << " s left";
    std::error_code ec;
    const auto bytes = journal.empty() ? 0 : std::filesystem::file_size(journal, ec);
    if (done < total && !journal.empty() && !ec)
      std::cerr << "; journal heading for "
                << format_size(static_cast<std::uint64_t>(bytes / done * total));
    std::cerr << (done < total ? ")\n" : "\n");
  };
}

// The hooks every sweep from the command line gets.
sweep_hooks cli_hooks(const common_flags& flags, const communicator& comm, signal_watch& signals,
                      const std::string& fingerprint) {
  sweep_hooks hooks;
  // -q: no table and no progress either.
  if (comm.is_root() && !flags.quiet)
    hooks.progress =
        progress_printer(flags.json_path.empty() ? "" : journal_path_for(flags.json_path));
  if (!flags.trace_path.empty()) hooks.trace_cases = 16;
  hooks.run_at_cdmc = [&flags, fingerprint](int cdmc) {
    return run_child(flags, fingerprint, cdmc);
  };
  hooks.should_stop = [&signals] { return signals.received(); };
  return hooks;
}

}  // namespace

int drive_sweep(sweep_request req, const common_flags& flags, const gpu_spec& gpu,
                const process_args& args, const std::vector<path_flag>& inputs) {
  signal_watch signals;  // before MPI starts its threads
  auto comm = make_communicator(args.argc, args.argv, flags.timeout_s);
  if (comm->is_root()) signals.announce();
  auto exec = make_executor(flags, gpu, *comm);
  sim_executor predictor(gpu);  // the simulator's view of each measured case (bring-up)
  req.measure = measure_from(flags, req.measure);
  const bool child = !flags.cdmc_child_journal.empty();
  preflight(req.cases.size(), flags, req.scenario, comm->is_root() && !child);
  sweep_hooks hooks = cli_hooks(flags, *comm, signals, sweep_fingerprint(req, exec->backend()));
  hooks.inject = injected_fault(flags, *comm, exec->backend(), req.cases.size());
  if (!exec->simulated()) hooks.predictor = &predictor;
  if (child) return run_as_child(req, flags, *exec, *comm, gpu, hooks);
  std::optional<sweep_outputs> outputs;
  if (comm->is_root()) {
    outputs.emplace(flags, req, *exec, hooks, inputs);
    signals.remove_temporaries_of(output_files(flags));
  }
  if (comm->is_root())
    for (const auto& w : req.warnings) std::cerr << "overlap-bench: warning: " << w << "\n";

  sweep_result out;
  try {
    out = run_sweep(req, *exec, *comm, gpu, hooks);
  } catch (const error& e) {
    if (outputs) outputs->after_failure(e);
    throw;
  }
  const int answers_rc = outputs ? outputs->emit(out, *comm) : 0;
  // The others wait for rank 0's files: mpirun ends the whole job once any rank has left.
  comm->barrier();
  if (out.stopped)
    return stopped_exit(out.stopped, out.doc.cases.size(), req.cases.size(), flags, *comm);
  if (out.exit_code != 0 && comm->is_root())
    std::cerr << "overlap-bench: error: some cases failed verification (see #wrong)\n";
  return out.exit_code != 0 ? out.exit_code : answers_rc;
}

}  // namespace ob::cli
