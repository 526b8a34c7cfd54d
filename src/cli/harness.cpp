#include "cli/harness.hpp"

#include <iostream>

#include "cli/cuda_loader.hpp"
#include "core/report_table.hpp"
#include "sim/simulator.hpp"

namespace ob::cli {

void add_common_flags(CLI::App& app, common_flags& f, bool with_gpu, bool with_threads) {
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
  if (with_threads)
    app.add_option("--gpus", f.gpus, "single-process mode: one thread per GPU (cuda backend)")
        ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout", f.timeout_s, "seconds before a hung NCCL op aborts (exit 4)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--json", f.json_path, "write the result JSON (overlap-bench/result/v1; step/v1 for steps)");
  app.add_option("--csv", f.csv_path, "write one CSV row per case");
  app.add_option("--trace", f.trace_path, "write a Chrome/Perfetto trace (one track per stream)");
  app.add_flag("-q,--quiet", f.quiet, "no table on stdout");
}

void add_network_flags(CLI::App& app, common_flags& f) {
  app.add_option("--cluster", f.cluster, "nodes and NICs: a name in configs/clusters/ or a file");
  app.add_option("--gpus-per-node", f.gpus_per_node,
                 "GPUs per node (one NVLink domain); more ranks than this span nodes")
      ->check(CLI::Range(1, 1024));
  app.add_option("--nic-gbps", f.nic_gbps, "GB/s per NIC per direction")
      ->check(CLI::Range(0.001, 1e5));
}

cluster_spec cluster_from(const common_flags& f, const gpu_spec& gpu) {
  cluster_spec c = f.cluster.empty() ? default_cluster(gpu) : load_cluster(f.cluster, "--cluster");
  if (f.gpus_per_node > 0) c.gpus_per_node = c.nics_per_node = f.gpus_per_node;
  if (f.nic_gbps > 0) c.nic_gbps = f.nic_gbps;
  return c;
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
  if (backend == "sim") return std::make_unique<sim_executor>(gpu, cluster);
  const cuda_backend_plugin& plugin = load_cuda_backend(backend);
  cuda_backend_options o;
  o.backend = backend;
  o.gpus = f.gpus;
  o.default_ctas = [gpu](coll_op op) { return gpu.default_ctas(op); };
  o.sm_count_hint = gpu.sm_count;
  return plugin.make_executor(o, comm);
}

void emit(const result_doc& doc, const common_flags& f, const communicator& comm,
          const trace_writer& trace) {
  if (!comm.is_root()) return;
  if (!f.quiet) std::cout << format_case_table(doc) << std::flush;
  if (!f.json_path.empty()) write_result_json(f.json_path, doc);
  if (!f.csv_path.empty()) write_result_csv(f.csv_path, doc);
  if (!f.trace_path.empty()) trace.write(f.trace_path);
}

}  // namespace ob::cli
