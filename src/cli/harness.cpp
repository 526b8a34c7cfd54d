#include "cli/harness.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "base/error.hpp"
#include "cli/cuda_loader.hpp"
#include "cli/flag_checks.hpp"
#include "results/report_table.hpp"
#include "sim/simulator.hpp"
#include "spec/nccl_axes.hpp"

namespace ob::cli {

void add_common_flags(CLI::App& app, common_flags& f, bool with_gpu, bool with_threads) {
  app.add_option("--backend", f.backend, "auto | sim | cuda | loopback")
      ->check(CLI::IsMember({"auto", "sim", "cuda", "loopback"}))
      ->capture_default_str();
  if (with_gpu)
    app.add_option("--gpu", f.gpu, "GPU model for the simulator (configs/gpus/NAME.json)")
        ->capture_default_str();
  // The same bounds as a scenario's measure section and --set iters/warmup.
  app.add_option("--iters", f.iters, "timed iterations per variant (real backends)")
      ->check(int_in(1, 1 << 20));
  app.add_option("--warmup", f.warmup, "warm-up iterations per variant (real backends)")
      ->check(int_in(0, 1 << 20));
  app.add_flag("--graphs", f.graphs, "capture one iteration in a CUDA graph and replay it");
  if (with_threads)
    app.add_option("--gpus", f.gpus, "single-process mode: one thread per GPU (cuda backend)")
        ->check(int_in(0, 1024));
  app.add_option("--timeout", f.timeout_s,
                 "seconds before a hung NCCL op or MPI reduction aborts the run (exit 4)")
      ->check(number_in(0, 1e6, true))
      ->capture_default_str();
  app.add_option("--json", f.json_path,
                 "write the result JSON (overlap-bench/result/v1; step/v1 for steps)")
      ->check(not_empty());
  app.add_option("--csv", f.csv_path, "write one CSV row per case")->check(not_empty());
  app.add_option("--trace", f.trace_path, "write a Chrome/Perfetto trace (one track per stream)")
      ->check(not_empty());
  app.add_flag("-q,--quiet", f.quiet, "no table on stdout, no progress on stderr");
  // A test hook (README: fault injection), kept out of --help.
  app.add_option("--inject", f.inject, "test hook: skip_collective|die:rank=R:case=C")->group("");
}

void add_sweep_flags(CLI::App& app, common_flags& f) {
  app.add_flag("--resume", f.resume,
               "continue an interrupted sweep: measure only the cases <json>.journal lacks");
  app.add_option("--max-cases", f.max_cases,
                 "refuse a sweep of more cases than this before the first runs (a typo in a "
                 "comma list can ask for millions)")
      ->check(CLI::Range(1LL, 1LL << 40))
      ->capture_default_str();
  // The parent of a CDMC child run adds it to the child's command line; kept out of --help.
  app.add_option("--cdmc-child-journal", f.cdmc_child_journal, "internal")->group("");
}

fault_injection injected_fault(const common_flags& f, const communicator& comm,
                               const std::string& backend, std::size_t cases, bool step) {
  const char* env = std::getenv("OVERLAP_BENCH_INJECT");
  const std::string source = f.inject.empty() ? "OVERLAP_BENCH_INJECT" : "--inject";
  const fault_injection fault =
      parse_fault_injection(f.inject.empty() && env ? env : f.inject, source);
  if (!fault.active()) return fault;
  const std::string where = source + " " + fault.describe() + ": ";
  if (fault.kind == fault_kind::reexec_cdmc) {
    if (step || comm.size() > 1 || backend != "sim")
      throw config_error(where + "for run and pair with --backend sim in one process");
    return fault;
  }
  // The step's simulator runs one device per pipeline stage, not one per rank, so there is no
  // rank R to hold back. Under mpirun a rank could skip the per-case reduction, but that hang is
  // the layer sweeps' (tests/e2e/test_mpi.py) and would test nothing new.
  if (step && fault.kind == fault_kind::skip_collective)
    throw config_error(where +
                       "a training step takes only die:rank=R:case=C (its simulator models one "
                       "device per pipeline stage, not each rank, so no rank can be kept out of "
                       "a collective)");
  if (fault.case_index >= cases)
    throw config_error(where + "case " + std::to_string(fault.case_index) + " does not exist (" +
                       std::to_string(cases) + " cases, counted from 0)");
  // One process has simulated ranks only for skip_collective; everything else needs the rank.
  const bool simulated_ranks = comm.size() == 1 && fault.kind == fault_kind::skip_collective;
  if (simulated_ranks && backend != "sim")
    throw config_error(where + "without mpirun, skip_collective needs --backend sim");
  if (!simulated_ranks && fault.rank >= comm.size())
    throw config_error(where + "rank " + std::to_string(fault.rank) + " does not exist (" +
                       std::to_string(comm.size()) + " rank(s))");
  return fault;
}

gpu_spec gpu_from(const common_flags& f, bool gpu_given) {
  if (f.cluster.empty()) return load_gpu_spec(f.gpu, "--gpu");
  const cluster_spec c = load_cluster(f.cluster, "--cluster");
  if (!gpu_given) return load_gpu_spec(c.gpu, "--cluster " + f.cluster + ": gpu");
  gpu_spec g = load_gpu_spec(f.gpu, "--gpu");
  if (g.name != c.gpu)
    throw config_error("--gpu " + f.gpu + " and --cluster " + f.cluster +
                       " disagree: the cluster file's nodes hold " + c.gpu +
                       " (leave out --gpu to use the cluster's GPU)");
  return g;
}

measure_options measure_from(const common_flags& f, measure_options defaults) {
  measure_options m = defaults;
  if (f.warmup >= 0) m.warmup = f.warmup;
  if (f.iters > 0) m.iters = f.iters;
  m.graphs = f.graphs || defaults.graphs;
  m.timeout_s = f.timeout_s;
  return m;
}

std::unique_ptr<executor> make_executor(const common_flags& f, const gpu_spec& gpu,
                                        communicator& comm) {
  return make_executor(f, gpu, cluster_from(f, gpu), comm);
}

std::unique_ptr<executor> make_executor(const common_flags& f, const gpu_spec& gpu,
                                        const cluster_spec& cluster, communicator& comm) {
  std::string backend = f.backend;
  if (backend == "auto") {
    const int n = probe_cuda_devices();
    backend = n >= 2 ? "cuda" : n == 1 ? "loopback" : "sim";
    if (comm.is_root())
      std::cerr << "overlap-bench: --backend auto chose " << backend << " ("
                << (n == 0 ? std::string("no CUDA device found") : std::to_string(n) + " GPU(s)")
                << ")\n";
  }
  if (backend == "sim") {
    if (f.gpus > 0 && f.backend == "sim")
      throw config_error("--gpus " + std::to_string(f.gpus) +
                         ": one thread per GPU is for --backend cuda; the sim needs none");
    return std::make_unique<sim_executor>(gpu, cluster);
  }
  const cuda_backend_plugin& plugin = load_cuda_backend(backend);
  cuda_backend_options o;
  o.backend = backend;
  o.gpus = f.gpus;
  o.default_ctas = [gpu](coll_op op) { return gpu.default_ctas(op); };
  o.sm_count_hint = gpu.sm_count;
  return plugin.make_executor(o, comm);
}

int emit(const result_doc& doc, const common_flags& f, const communicator& comm,
         const trace_writer& trace) {
  if (!comm.is_root()) return 0;
  if (!f.quiet) std::cout << format_case_table(doc) << std::flush;
  if (!f.json_path.empty()) write_result_json(f.json_path, doc);
  if (!f.csv_path.empty()) write_result_csv(f.csv_path, doc);
  if (!f.trace_path.empty()) trace.write(f.trace_path);
  return emit_answers(doc, f.answers);
}

}  // namespace ob::cli
