#include "cli/harness.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "cli/cuda_loader.hpp"
#include "core/build_info.hpp"
#include "core/cdmc.hpp"
#include "core/env_snapshot.hpp"
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/report_table.hpp"
#include "sim/simulator.hpp"

namespace ob::cli {

void add_common_flags(CLI::App& app, common_flags& f, bool with_gpu) {
  app.add_option("--backend", f.backend, "auto | sim | cuda | loopback")
      ->check(CLI::IsMember({"auto", "sim", "cuda", "loopback"}))
      ->capture_default_str();
  if (with_gpu)
    app.add_option("--gpu", f.gpu, "GPU model for the simulator (configs/gpus/NAME.json)")
        ->capture_default_str();
  app.add_option("--iters", f.iters, "timed iterations per variant (real backends)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", f.warmup, "warm-up iterations per variant (real backends)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--graphs", f.graphs, "capture one iteration in a CUDA graph and replay it");
  app.add_option("--gpus", f.gpus, "single-process mode: one thread per GPU (cuda backend)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout", f.timeout_s, "seconds before a hung NCCL op aborts (exit 4)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--json", f.json_path, "write the result JSON (overlap-bench/result/v1)");
  app.add_option("--csv", f.csv_path, "write one CSV row per case");
  app.add_option("--trace", f.trace_path, "write a Chrome/Perfetto trace (one track per stream)");
  app.add_flag("-q,--quiet", f.quiet, "no table on stdout");
}

std::unique_ptr<executor> make_executor(const common_flags& f, const gpu_spec& gpu,
                                        communicator& comm) {
  std::string backend = f.backend;
  if (backend == "auto") {
    const int n = probe_cuda_devices();
    backend = n >= 2 ? "cuda" : n == 1 ? "loopback" : "sim";
    if (comm.is_root())
      std::cerr << "overlap-bench: --backend auto chose " << backend << " ("
                << (n == 0 ? std::string("no CUDA device found") : std::to_string(n) + " GPU(s)")
                << ")\n";
  }
  if (backend == "sim") return std::make_unique<sim_executor>(gpu);
  const cuda_backend_plugin& plugin = load_cuda_backend(backend);
  cuda_backend_options o;
  o.backend = backend;
  o.gpus = f.gpus;
  o.default_ctas = [gpu](coll_op op) { return gpu.default_ctas(op); };
  o.sm_count_hint = gpu.sm_count;
  return plugin.make_executor(o, comm);
}

int process_cdmc(const gpu_spec& gpu) {
  // The CUDA executor refuses cases by this same reading, so plan with it too; unset means the
  // driver's default, which the GPU file records.
  (void)gpu;
  return ob::process_cdmc();
}

case_runner::case_runner(executor& exec, communicator& comm, measure_options opts)
    : exec_(exec), comm_(comm), opts_(opts) {
  trace_.set_metadata(
      {{"backend", exec.backend()}, {"simulated", exec.simulated()}, {"label", exec.label()}});
}

case_record case_runner::run(const schedule& planned, std::string id, std::string scenario,
                             ordered_json params, int cdmc) {
  const variant_schedules variants = make_variant_schedules(planned);
  measure_options o = opts_;
  o.cdmc = cdmc;
  variant_measurements m = exec_.measure(variants, o);
  // The slowest rank sets each iteration (DESIGN §7); every rank calls this the same number of
  // times because every rank runs the same case list.
  std::vector<long long> wrong;
  for (auto& v : m) {
    comm_.max_reduce(v.iter_ms);
    wrong.push_back(v.wrong);
  }
  comm_.sum_reduce(wrong);
  for (std::size_t i = 0; i < m.size(); ++i) m[i].wrong = wrong[i];

  case_record rec;
  rec.id = std::move(id);
  rec.scenario = std::move(scenario);
  rec.params = std::move(params);
  rec.m = compute_metrics(variants, m);
  for (const auto& v : m)
    for (const auto& w : v.warnings)
      if (std::find(rec.warnings.begin(), rec.warnings.end(), w) == rec.warnings.end())
        rec.warnings.push_back(w);
  if (rec.m.wrong > 0)
    rec.warnings.push_back("verification failed: " + std::to_string(rec.m.wrong) +
                           " wrong elements");
  if (traced_ < trace_cases_) {
    const int pid = static_cast<int>(traced_) * 10;
    const auto ov = static_cast<int>(variant::overlapped);
    const std::string tag = exec_.simulated() ? " (sim)" : "";
    trace_.add(variants[ov], m[ov].ops, pid, rec.id + " [overlapped]" + tag);
    if (traced_ == 0) {
      for (variant v : {variant::compute_only, variant::comm_only, variant::serial}) {
        const auto i = static_cast<int>(v);
        trace_.add(variants[i], m[i].ops, pid + 1 + i,
                   rec.id + " [" + std::string(to_string(v)) + "]" + tag);
      }
    }
    ++traced_;
  }
  return rec;
}

result_doc make_result_doc(const executor& exec, const gpu_spec& gpu, const communicator& comm,
                           ordered_json config) {
  result_doc doc;
  doc.tool = {{"name", "overlap-bench"}, {"version", OB_VERSION}, {"git_sha", OB_GIT_SHA}};
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  ordered_json env;
  env["backend"] = exec.backend();
  env["simulated"] = exec.simulated();
  env["label"] = exec.label();
  env["gpu"] = {{"name", gpu.display_name}, {"config", gpu.name}, {"sm_count", gpu.sm_count}};
  env["ranks"] = comm.size();
  env["mpi"] = comm.flavour();
  env["hostname"] = host;
  env["variables"] = env_variables_snapshot();
  const json backend_env = exec.environment();
  for (auto it = backend_env.begin(); it != backend_env.end(); ++it) env[it.key()] = it.value();
  doc.env = std::move(env);
  doc.config = std::move(config);
  return doc;
}

void emit(const result_doc& doc, const common_flags& f, const communicator& comm,
          const case_runner* runner) {
  if (!comm.is_root()) return;
  if (!f.quiet) std::cout << format_case_table(doc) << std::flush;
  if (!f.json_path.empty()) write_result_json(f.json_path, doc);
  if (!f.csv_path.empty()) write_result_csv(f.csv_path, doc);
  if (!f.trace_path.empty() && runner) runner->trace().write(f.trace_path);
}

void progress::step(const std::string& what) {
  ++done_;
  if (!enabled_) return;
  const int decile = static_cast<int>(done_ * 10 / total_);
  if (decile == last_decile_ && done_ != total_) return;
  last_decile_ = decile;
  std::cerr << "[" << done_ << "/" << total_ << "] " << what << "\n";
}

}  // namespace ob::cli
