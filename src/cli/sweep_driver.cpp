#include "cli/sweep_driver.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "core/cdmc.hpp"
#include "core/error.hpp"
#include "core/json_util.hpp"

namespace ob::cli {
namespace {

// Set in a re-executed child: run only this CDMC and write the result here.
constexpr const char* child_cdmc_var = "OVERLAP_BENCH_CHILD_CDMC";
constexpr const char* child_json_var = "OVERLAP_BENCH_CHILD_JSON";

int child_cdmc() {
  const char* v = std::getenv(child_cdmc_var);
  return v && *v ? std::atoi(v) : 0;
}

// Re-executes this binary with CUDA_DEVICE_MAX_CONNECTIONS=cdmc; returns its result document.
result_doc run_child(int cdmc, const std::string& json_path) {
  const int rc = reexec_with_cdmc(
      cdmc, {}, {{child_cdmc_var, std::to_string(cdmc)}, {child_json_var, json_path}});
  if (rc != 0 && rc != static_cast<int>(exit_code::runtime))
    throw error(rc == 2 || rc == 4 ? static_cast<exit_code>(rc) : exit_code::runtime,
                "the CUDA_DEVICE_MAX_CONNECTIONS=" + std::to_string(cdmc) +
                    " child run failed with exit code " + std::to_string(rc));
  return load_result(json_path);
}

}  // namespace

int drive_sweep(const sweep_request& req, const common_flags& flags, const gpu_spec& gpu,
                const process_args& args) {
  auto comm = make_communicator(args.argc, args.argv);
  auto exec = make_executor(flags, gpu, *comm);
  const bool real = !exec->simulated();
  const int own_cdmc = process_cdmc(gpu);
  const int only_cdmc = child_cdmc();

  std::set<int> other_cdmcs;
  std::vector<const layer_case*> mine;
  for (const auto& c : req.cases) {
    if (only_cdmc && c.cdmc != only_cdmc) continue;
    if (real && c.cdmc != own_cdmc)
      other_cdmcs.insert(c.cdmc);
    else
      mine.push_back(&c);
  }
  if (!other_cdmcs.empty() && comm->size() > 1)
    throw config_error(
        "cases ask for CUDA_DEVICE_MAX_CONNECTIONS=" + std::to_string(*other_cdmcs.begin()) +
        " but this run has " + std::to_string(own_cdmc) +
        "; under mpirun run one launch per value with scripts/sweep_cdmc.sh");

  case_runner runner(*exec, *comm, req.measure);
  if (!flags.trace_path.empty()) runner.enable_trace(16);
  progress prog(mine.size(), comm->is_root() && !only_cdmc);
  std::map<std::string, case_record> by_id;
  if (comm->is_root() && !only_cdmc)
    for (const auto& w : req.warnings) std::cerr << "overlap-bench: warning: " << w << "\n";
  for (const layer_case* c : mine) {
    schedule planned;
    try {
      planned = req.plan(*c);
    } catch (const config_error& e) {
      // Name where the value came from: the scenario file (or flags) and the case.
      throw config_error(req.source + ": case " + c->id + ": " + e.what());
    }
    by_id.emplace(c->id, runner.run(planned, c->id, req.scenario, c->params, c->cdmc));
    prog.step(c->id);
  }
  if (comm->is_root()) {
    for (int cdmc : other_cdmcs) {
      std::cerr << "overlap-bench: CUDA_DEVICE_MAX_CONNECTIONS=" << cdmc
                << ": re-running in a fresh process (the driver reads it at context creation)\n";
      const auto tmp =
          std::filesystem::temp_directory_path() / ("overlap-bench-cdmc" + std::to_string(cdmc) +
                                                    "-" + std::to_string(::getpid()) + ".json");
      result_doc child = run_child(cdmc, tmp.string());
      std::filesystem::remove(tmp);
      for (auto& rec : child.cases) by_id.emplace(rec.id, std::move(rec));
    }
  }
  ordered_json config = req.config;
  config["warnings"] = req.warnings;
  result_doc doc = make_result_doc(*exec, gpu, *comm, config);
  for (const auto& c : req.cases)
    if (auto it = by_id.find(c.id); it != by_id.end()) doc.cases.push_back(it->second);
  int rc = 0;
  for (const auto& rec : doc.cases)
    if (rec.m.wrong > 0) rc = static_cast<int>(exit_code::runtime);

  if (only_cdmc) {
    if (comm->is_root()) write_result_json(std::getenv(child_json_var), doc);
    return rc;
  }
  emit(doc, flags, *comm, &runner);
  if (rc != 0 && comm->is_root())
    std::cerr << "overlap-bench: error: some cases failed verification (see #wrong)\n";
  return rc;
}

}  // namespace ob::cli
