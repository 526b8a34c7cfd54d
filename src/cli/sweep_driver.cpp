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

// Set in a re-executed child: run only this CDMC and write the result here.
constexpr const char* child_cdmc_var = "OVERLAP_BENCH_CHILD_CDMC";
constexpr const char* child_json_var = "OVERLAP_BENCH_CHILD_JSON";

int child_cdmc() {
  const char* v = std::getenv(child_cdmc_var);
  return v && *v ? std::atoi(v) : 0;
}

// Re-executes this binary with CUDA_DEVICE_MAX_CONNECTIONS=cdmc; returns its cases.
std::vector<case_record> run_child(int cdmc) {
  std::cerr << "overlap-bench: CUDA_DEVICE_MAX_CONNECTIONS=" << cdmc
            << ": re-running in a fresh process (the driver reads it at context creation)\n";
  const auto json_path =
      std::filesystem::temp_directory_path() /
      ("overlap-bench-cdmc" + std::to_string(cdmc) + "-" + std::to_string(::getpid()) + ".json");
  const int rc = reexec_with_cdmc(
      cdmc, {}, {{child_cdmc_var, std::to_string(cdmc)}, {child_json_var, json_path.string()}});
  // 130 and 143: the child was interrupted with this process and wrote what it finished.
  if (rc != 0 && rc != static_cast<int>(exit_code::runtime) && rc != 128 + SIGINT &&
      rc != 128 + SIGTERM)
    throw error(rc == 2 || rc == 4 ? static_cast<exit_code>(rc) : exit_code::runtime,
                "the CUDA_DEVICE_MAX_CONNECTIONS=" + std::to_string(cdmc) +
                    " child run failed with exit code " + std::to_string(rc));
  result_doc child = load_result(json_path.string());
  std::filesystem::remove(json_path);
  return std::move(child.cases);
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
sweep_hooks cli_hooks(const common_flags& flags, const communicator& comm, signal_watch& signals) {
  sweep_hooks hooks;
  hooks.only_cdmc = child_cdmc();
  // -q: no table and no progress either.
  if (comm.is_root() && !hooks.only_cdmc && !flags.quiet)
    hooks.progress =
        progress_printer(flags.json_path.empty() ? "" : journal_path_for(flags.json_path));
  if (!flags.trace_path.empty()) hooks.trace_cases = 16;
  hooks.run_at_cdmc = run_child;
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
  preflight(req.cases.size(), flags, req.scenario, comm->is_root() && !child_cdmc());
  sweep_hooks hooks = cli_hooks(flags, *comm, signals);
  hooks.inject = injected_fault(flags, *comm, exec->backend(), req.cases.size());
  if (!exec->simulated()) hooks.predictor = &predictor;
  if (hooks.only_cdmc) {
    const sweep_result out = run_sweep(req, *exec, *comm, gpu, hooks);
    if (comm->is_root()) write_result_json(std::getenv(child_json_var), out.doc);
    return out.stopped ? 128 + out.stopped : out.exit_code;
  }
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
