#include "cuda/cuda_executor.hpp"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <set>
#include <thread>

#include "base/env_snapshot.hpp"
#include "base/error.hpp"
#include "cuda/nccl_comms.hpp"
#include "cuda/rank_threads.hpp"
#include "model/cdmc.hpp"

namespace ob::cuda {
namespace {

std::string cuda_version_string(int v) {
  if (v <= 0) return "unknown";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

}  // namespace

rank_layout plan_rank_layout(int gpus_option, int process_rank, int process_count, int local_rank,
                             int device_count, int max_local_slots) {
  if (device_count < 1) throw runtime_failure("no CUDA device found; use --backend sim");
  rank_layout l;
  l.local_ranks = gpus_option > 0 ? gpus_option : 1;
  l.world_size = std::max(process_count, 1) * l.local_ranks;
  l.first_global_rank = process_rank * l.local_ranks;
  for (int t = 0; t < l.local_ranks; ++t)
    l.devices.push_back((local_rank * l.local_ranks + t) % device_count);
  l.shares_gpus =
      std::max(max_local_slots, local_rank * l.local_ranks + l.local_ranks) > device_count;
  return l;
}

cuda_executor::cuda_executor(const cuda_backend_options& options, communicator& comm)
    : options_(options), comm_(comm), loopback_(options.loopback()) {
  const int devices = cuda_device_count();
  if (devices == 0)
    throw runtime_failure("--backend " + options.backend +
                          ": no CUDA device found; use --backend sim");
  const int local = options.gpus > 0 ? options.gpus : 1;
  // Every process learns whether any node places more ranks than it has GPUs: NCCL must be told
  // on all ranks of such a world, not only on the ones that share.
  std::vector<double> slots{static_cast<double>(comm.local_rank() * local + local)};
  comm.max_reduce(slots);
  layout_ = plan_rank_layout(options.gpus, comm.rank(), comm.size(), comm.local_rank(), devices,
                             static_cast<int>(slots[0]));
  if (layout_.shares_gpus) {
    if (loopback_) {
      setup_warnings_.push_back(std::to_string(layout_.world_size) + " loopback ranks on " +
                                std::to_string(devices) + " GPU(s): ranks sharing a GPU contend");
    } else {
      const int v = nccl_runtime_version();
      if (!nccl_multi_rank_gpu_supported(v))
        throw runtime_failure(multi_rank_gpu_refusal(layout_.world_size, devices, v));
      // NCCL reads it at communicator creation; a user's explicit value wins.
      ::setenv("NCCL_MULTI_RANK_GPU_ENABLE", "1", 0);
      setup_warnings_.push_back(std::to_string(layout_.world_size) + " ranks on " +
                                std::to_string(devices) +
                                " GPU(s) (NCCL_MULTI_RANK_GPU_ENABLE, experimental): ranks sharing "
                                "a GPU contend for its SMs and HBM, and NVLS is off");
    }
  }
  if (parse_cta_policy(options.nccl_cta_policy) >= 0 &&
      !nccl_cta_policy_supported(nccl_runtime_version()))
    setup_warnings_.push_back("NCCL CTA policy '" + options.nccl_cta_policy +
                              "' ignored: the loaded NCCL " +
                              nccl_version_string(nccl_runtime_version()) + " predates 2.27");
  nvml_ = nvml_telemetry::open();
  for (int t = 0; t < layout_.local_ranks; ++t) {
    engine_identity id;
    id.local_index = t;
    id.device = layout_.devices[static_cast<std::size_t>(t)];
    id.global_rank = layout_.first_global_rank + t;
    id.world_size = layout_.world_size;
    engines_.push_back(std::make_unique<rank_engine>(id, options_, nvml_));
  }
  env_ = build_environment();
  if (comm_.is_root())
    for (const auto& w : setup_warnings_) std::cerr << "overlap-bench: warning: " << w << "\n";
}

cuda_executor::~cuda_executor() {
  // Finalizing a communicator waits until every rank of it is quiescent: the local ranks must
  // tear down concurrently, one thread each, or rank 0 would wait on rank 1 that has not started.
  if (engines_.size() > 1) {
    std::vector<std::thread> teardown;
    for (auto& e : engines_) teardown.emplace_back([&e] { e.reset(); });
    for (auto& t : teardown) t.join();
  }
  engines_.clear();  // before NVML goes
}

std::string cuda_executor::label() const {
  return loopback_ ? "loopback (no NVLink)"
                   : "cuda (NCCL, " + std::to_string(layout_.world_size) + " ranks)";
}

json cuda_executor::environment() const { return env_; }

json cuda_executor::build_environment() const {
  const device_facts& f = engines_.front()->facts();
  json env;
  env["backend"] = backend();
  env["simulated"] = false;
  env["label"] = label();
  json dev;
  dev["name"] = f.name;
  dev["sm_count"] = f.sm_count;
  dev["compute_capability"] = std::to_string(f.cc_major) + "." + std::to_string(f.cc_minor);
  dev["memory_gib"] = static_cast<double>(f.memory_bytes) / (1024.0 * 1024.0 * 1024.0);
  dev["l2_mib"] = static_cast<double>(f.l2_bytes) / (1024.0 * 1024.0);
  dev["pci_bus_id"] = f.pci_bus_id;
  if (nvml_) {
    json clocks = json::object();
    if (auto v = nvml_->sm_clock_mhz(f.pci_bus_id)) clocks["current"] = *v;
    if (auto v = nvml_->default_sm_clock_mhz(f.pci_bus_id)) clocks["default"] = *v;
    if (auto v = nvml_->max_sm_clock_mhz(f.pci_bus_id)) clocks["max"] = *v;
    dev["sm_clock_mhz"] = clocks;
  }
  env["device"] = dev;
  std::vector<int> devs = layout_.devices;
  env["devices"] = devs;
  env["gpus_per_process"] = layout_.local_ranks;
  env["world_size"] = layout_.world_size;
  env["ranks_share_gpus"] = layout_.shares_gpus;
  int driver = 0, runtime = 0;
  (void)cudaDriverGetVersion(&driver);
  (void)cudaRuntimeGetVersion(&runtime);
  env["driver_version"] = nvml_ ? nvml_->driver_version() : std::string();
  env["cuda_driver"] = cuda_version_string(driver);
  env["cuda_runtime"] = cuda_version_string(runtime);
  const std::size_t lt = cublasLtGetVersion();
  env["cublaslt"] = std::to_string(lt / 10000) + "." + std::to_string((lt % 10000) / 100) + "." +
                    std::to_string(lt % 100);
  env["nccl_runtime"] = nccl_version_string(nccl_runtime_version());
  env["nccl_headers"] = nccl_version_string(NCCL_VERSION_CODE);
  env["nccl_cta_policy"] = options_.nccl_cta_policy.empty() ? "unset" : options_.nccl_cta_policy;
  env["mpi"] = comm_.flavour();
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  env["hostname"] = host;
  env["cdmc"] = process_cdmc();
  env["stream_priority_range"] = {f.priority_least, f.priority_greatest};
  env["nvml"] = nvml_ != nullptr;
  // The constructor may have set NCCL_MULTI_RANK_GPU_ENABLE: the snapshot is taken after it.
  env["variables"] = env_variables_snapshot();
  env["setup_warnings"] = setup_warnings_;
  return env;
}

const std::string* cuda_executor::world_id(bool needs_comm) {
  if (needs_comm && !loopback_ && !world_id_) {
    std::string bytes;
    if (comm_.rank() == 0) {
      ncclUniqueId id;
      check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", engines_.front()->context("setup"));
      bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
    }
    comm_.broadcast(bytes, 0);
    world_id_ = bytes;
  }
  return world_id_ ? &*world_id_ : nullptr;
}

std::vector<rank_result> cuda_executor::run_engines(const variant_schedules& variants,
                                                    const measure_options& opts,
                                                    const std::string* id) {
  abort_signal abort;
  std::vector<rank_result> results(engines_.size());
  if (engines_.size() == 1) {
    results[0] = engines_[0]->run(variants, opts, id, abort);
    return results;
  }
  run_on_rank_threads(
      static_cast<int>(engines_.size()),
      [&](int i) {
        const auto r = static_cast<std::size_t>(i);
        results[r] = engines_[r]->run(variants, opts, id, abort);
      },
      abort);
  return results;
}

namespace {

// The local ranks' measurements as one: the slowest rank sets each iteration, #wrong adds up.
variant_measurements merge_ranks(const std::vector<rank_result>& results) {
  variant_measurements out;
  for (std::size_t v = 0; v < out.size(); ++v) {
    variant_measurement& m = out[v];
    m.iter_ms = results[0].variants[v].iter_ms;
    m.ops = results[0].variants[v].ops;
    for (const rank_result& r : results) {
      const auto& it = r.variants[v].iter_ms;
      for (std::size_t i = 0; i < m.iter_ms.size() && i < it.size(); ++i)
        m.iter_ms[i] = std::max(m.iter_ms[i], it[i]);
      m.wrong += r.variants[v].wrong;
    }
  }
  return out;
}

// Telemetry and verification notes: said once each on stderr and kept with the case, on the
// overlapped variant or, when that is not measured, the first one that is.
void add_notes(const std::vector<rank_result>& results, const measure_options& opts,
               variant_measurements& out) {
  variant at = variant::overlapped;
  if (!opts.measures(at))
    for (variant v : all_variants)
      if (opts.measures(v)) {
        at = v;
        break;
      }
  std::set<std::string> seen;
  auto& notes = out[static_cast<int>(at)].warnings;
  for (const rank_result& r : results)
    for (const std::string& w : r.warnings)
      if (seen.insert(w).second) {
        std::cerr << "overlap-bench: warning: " << w << "\n";
        notes.push_back(w);
      }
}

}  // namespace

program_measurements cuda_executor::measure(const program_variants& pv,
                                            const measure_options& opts) {
  if (!is_one_stage_case(pv, opts)) return measure_step(pv, opts);
  variant_schedules variants;
  for (std::size_t i = 0; i < pv.size(); ++i)
    if (opts.variants[i]) variants[i] = pv[i].stages.front();
  variant_measurements m = measure_case(variants, opts);
  program_measurements out;
  for (std::size_t i = 0; i < m.size(); ++i)
    if (opts.variants[i]) out[i].push_back(std::move(m[i]));
  return out;
}

variant_measurements cuda_executor::measure_case(const variant_schedules& variants,
                                                 const measure_options& opts) {
  require_cdmc(opts.cdmc, process_cdmc());
  for (const schedule& s : variants) s.validate();
  bool needs_comm = false;
  for (variant v : all_variants)
    if (opts.measures(v))
      for (const op& o : variants[static_cast<int>(v)].ops) needs_comm = needs_comm || o.is_comm();
  const std::vector<rank_result> results = run_engines(variants, opts, world_id(needs_comm));
  // Across processes the caller reduces (the CLI's case_runner): max of iteration times, sum of
  // #wrong. Here only the local ranks: doing both would count #wrong twice.
  variant_measurements out = merge_ranks(results);
  add_notes(results, opts, out);
  return out;
}

}  // namespace ob::cuda
