#include "run/sweep.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <unordered_map>

#include "analysis/metrics.hpp"
#include "base/build_info.hpp"
#include "base/env_snapshot.hpp"
#include "base/error.hpp"
#include "model/cdmc.hpp"
#include "report/bringup.hpp"
#include "results/answers.hpp"
#include "run/journal.hpp"

namespace ob {
namespace {

// The first cases' timelines: each case's overlapped variant, and for the first case its
// compute-only, comm-only and serial variants too, each as its own Perfetto process.
void add_to_trace(trace_writer& trace, std::size_t traced, const executor& exec,
                  const variant_schedules& variants, const variant_measurements& m,
                  const std::string& id) {
  const int pid = static_cast<int>(traced) * 10;
  const auto ov = static_cast<int>(variant::overlapped);
  const std::string tag = exec.simulated() ? " (sim)" : "";
  trace.add(variants[ov], m[ov].ops, pid, id + " [overlapped]" + tag);
  if (traced != 0) return;
  for (variant v : {variant::compute_only, variant::comm_only, variant::serial}) {
    const auto i = static_cast<int>(v);
    trace.add(variants[i], m[i].ops, pid + 1 + i,
              id + " [" + std::string(to_string(v)) + "]" + tag);
  }
}

case_record make_record(const sweep_case& c, const std::string& scenario,
                        const variant_schedules& variants, const variant_measurements& m,
                        executor* predictor, const measure_options& o) {
  case_record rec;
  rec.id = c.id;
  rec.scenario = scenario;
  rec.params = c.params;
  rec.m = compute_metrics(variants, m);
  for (const auto& v : m)
    for (const auto& w : v.warnings)
      if (std::find(rec.warnings.begin(), rec.warnings.end(), w) == rec.warnings.end())
        rec.warnings.push_back(w);
  if (rec.m.wrong > 0)
    rec.warnings.push_back("verification failed: " + std::to_string(rec.m.wrong) +
                           " wrong elements");
  annotate_case(rec, variants, m, c.cdmc);
  if (predictor) rec.predicted = predict_case(*predictor, variants, o, rec.m);
  return rec;
}

// Real backends measure only the CDMC the process started with; the reexec_cdmc test hook makes
// the simulator do the same, so the child path runs without a GPU.
bool per_process_cdmc(const executor& exec, const sweep_hooks& hooks) {
  return !exec.simulated() || hooks.inject.kind == fault_kind::reexec_cdmc;
}

// Which cases this process measures (indices into the request), and which CDMC values must run
// elsewhere.
struct cdmc_partition {
  std::vector<std::size_t> here;
  std::set<int> elsewhere;
};

cdmc_partition partition_by_cdmc(const sweep_request& req, bool real, int own_cdmc, int only_cdmc,
                                 const std::set<std::string>& finished) {
  cdmc_partition p;
  for (std::size_t i = 0; i < req.cases.size(); ++i) {
    const sweep_case& c = req.cases[i];
    if ((only_cdmc && c.cdmc != only_cdmc) || finished.count(c.id)) continue;
    if (real && c.cdmc != own_cdmc)
      p.elsewhere.insert(c.cdmc);
    else
      p.here.push_back(i);
  }
  return p;
}

void check_cdmc_reachable(const cdmc_partition& p, const communicator& comm, int own_cdmc,
                          const sweep_hooks& hooks) {
  if (p.elsewhere.empty()) return;
  const std::string asked =
      "cases ask for CUDA_DEVICE_MAX_CONNECTIONS=" + std::to_string(*p.elsewhere.begin()) +
      " but this run has " + std::to_string(own_cdmc);
  if (comm.size() > 1)
    throw config_error(asked +
                       "; under mpirun run one launch per value with scripts/sweep_cdmc.sh");
  if (!hooks.run_at_cdmc) throw config_error(asked + "; run one process per CDMC value");
}

// Plans, measures and reduces case `index`; the injected faults (a test hook) act here.
case_record run_case(const sweep_request& req, std::size_t index, executor& exec,
                     communicator& comm, const sweep_hooks& hooks, sweep_result& out,
                     std::size_t traced) {
  const sweep_case& c = req.cases[index];
  schedule planned;
  try {
    planned = req.plan(c);
  } catch (const config_error& e) {
    // Name where the value came from: the scenario file (or flags) and the case.
    throw config_error(req.source + ": case " + c.id + ": " + e.what());
  }
  const variant_schedules variants = make_variant_schedules(planned);
  measure_options o = req.measure;
  o.cdmc = c.cdmc;
  variant_measurements m;
  try {
    m = measure_case(exec, comm, variants, o, hooks.inject, index);
  } catch (const hang_error& e) {
    throw hang_error("case " + std::to_string(index) + " (" + c.id + "): " + e.what());
  }
  if (traced < hooks.trace_cases) add_to_trace(out.trace, traced, exec, variants, m, c.id);
  return make_record(c, req.scenario, variants, m, hooks.predictor, o);
}

// The cases measured in other processes (one per other CDMC value), rank 0 only.
int run_elsewhere(const cdmc_partition& part, const sweep_hooks& hooks, communicator& comm,
                  case_engine<case_record>& engine) {
  if (!comm.is_root()) return 0;
  for (int cdmc : part.elsewhere) {
    if (const int stop = hooks.should_stop ? hooks.should_stop() : 0; stop != 0) return stop;
    for (case_record& rec : hooks.run_at_cdmc(cdmc)) engine.add(std::move(rec));
  }
  return 0;
}

}  // namespace

variant_measurements measure_variants(executor& exec, communicator& comm,
                                      const variant_schedules& variants,
                                      const measure_options& opts) {
  variant_measurements m = exec.measure(variants, opts);
  // The slowest rank sets each iteration; every rank calls this the same number of times
  // because every rank runs the same case list.
  std::vector<long long> wrong;
  for (auto& v : m) {
    comm.max_reduce(v.iter_ms);
    wrong.push_back(v.wrong);
  }
  comm.sum_reduce(wrong);
  for (std::size_t i = 0; i < m.size(); ++i) m[i].wrong = wrong[i];
  return m;
}

variant_measurements measure_case(executor& exec, communicator& comm,
                                  const variant_schedules& variants, measure_options opts,
                                  const fault_injection& inject, std::size_t index) {
  maybe_die(inject, comm.rank(), index);
  if (inject.kind != fault_kind::skip_collective || inject.case_index != index)
    return measure_variants(exec, comm, variants, opts);
  // One process: a simulated rank skips the collective. Under mpirun the process of that rank
  // skips the reduction and leaves the others waiting in it.
  if (comm.size() == 1) {
    opts.inject_skip_rank = inject.rank;
    return measure_variants(exec, comm, variants, opts);
  }
  if (comm.rank() == inject.rank) return exec.measure(variants, opts);
  return measure_variants(exec, comm, variants, opts);
}

doc_header new_doc_header(const executor& exec, const gpu_spec& gpu, const communicator& comm,
                          ordered_json config) {
  doc_header doc;
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

std::string sweep_fingerprint(const sweep_request& req, const std::string& backend) {
  const measure_options& m = req.measure;
  std::vector<std::string> parts = {req.scenario, backend, dump_json(req.config),
                                    std::to_string(m.warmup) + "," + std::to_string(m.iters) + "," +
                                        std::to_string(m.graphs) + "," + std::to_string(m.verify)};
  parts.insert(parts.end(), req.warnings.begin(), req.warnings.end());
  for (const sweep_case& c : req.cases) parts.push_back(c.id);
  return fingerprint_of(parts);
}

sweep_result run_sweep(const sweep_request& req, executor& exec, communicator& comm,
                       const gpu_spec& gpu, const sweep_hooks& hooks) {
  const int own_cdmc = process_cdmc();
  case_engine<case_record> engine(hooks, comm);
  std::set<std::string> finished;
  for (const sweep_case& c : req.cases)
    if (engine.finished(c.id)) finished.insert(c.id);
  const cdmc_partition part =
      partition_by_cdmc(req, per_process_cdmc(exec, hooks), own_cdmc, hooks.only_cdmc, finished);
  check_cdmc_reachable(part, comm, own_cdmc, hooks);

  sweep_result out;
  out.trace.set_metadata(
      {{"backend", exec.backend()}, {"simulated", exec.simulated()}, {"label", exec.label()}});
  timeline_keeper timelines;
  out.stopped = engine.run(
      part.here, [&req](std::size_t i) { return req.cases[i].id; },
      [&](std::size_t index, std::size_t done) {
        return run_case(req, index, exec, comm, hooks, out, done);
      },
      // The journal gets the case after the keeper has judged its timeline: only the best and
      // worst so far keep one, and the document's best and worst are always among those, so a
      // resumed sweep still writes the same bytes while the journal stays small.
      [&timelines](case_record& rec) { timelines.offer(rec); });
  if (!out.stopped) out.stopped = run_elsewhere(part, hooks, comm, engine);

  ordered_json config = req.config;
  config["warnings"] = req.warnings;
  static_cast<doc_header&>(out.doc) = new_doc_header(exec, gpu, comm, config);
  std::vector<std::string> ids;
  for (const auto& c : req.cases) ids.push_back(c.id);
  out.doc.cases = engine.take_in_order(ids);
  finish_answers(out.doc);
  // A child run of one CDMC value holds only its own cases; its parent's document is the sweep.
  if (!hooks.only_cdmc && out.doc.cases.size() < req.cases.size())
    out.doc.planned_cases = req.cases.size();
  for (const auto& rec : out.doc.cases)
    if (rec.m.wrong > 0) out.exit_code = static_cast<int>(exit_code::runtime);
  return out;
}

}  // namespace ob
