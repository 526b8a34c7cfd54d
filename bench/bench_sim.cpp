// Simulated layer cases per second: one case = plan + the five variants of one layer
// configuration (forward and backward) simulated + metrics. Target: >= 500 cases/s on 2 cores.
#include <benchmark/benchmark.h>

#include "core/diagnosis.hpp"
#include "core/executor.hpp"
#include "core/gpu_spec.hpp"
#include "core/metrics.hpp"
#include "core/model_spec.hpp"
#include "core/plan.hpp"
#include "core/presets.hpp"
#include "core/run_spec.hpp"
#include "core/scenario.hpp"
#include "core/workload.hpp"
#include "sim/simulator.hpp"

namespace {

struct fixture {
  ob::gpu_spec gpu = ob::load_gpu_spec("h100_sxm");
  ob::layer_workload w = ob::make_layer_workload(ob::load_model_spec("gpt3_175b"),
                                                 ob::parallel_layout{4, 1, 1, 1, 1, true});
  ob::userbuffers_preset preset =
      ob::load_preset("userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048");
  ob::slot_overlap_map methods = ob::te_effective_overlap(&preset.gemms, 4);
};

const fixture& fix() {
  static const fixture f;  // read-only after first use
  return f;
}

void layer_case(benchmark::State& state) {
  const auto& f = fix();
  ob::sim_executor exec(f.gpu);
  ob::plan_knobs knobs;
  knobs.sm_margin = 16;
  ob::measure_options opts;
  opts.cdmc = static_cast<int>(state.range(0));
  for (auto _ : state) {
    const ob::schedule s = ob::plan_layer(f.w, f.methods, f.gpu, knobs);
    const auto variants = ob::make_variant_schedules(s);
    const auto m = exec.measure(variants, opts);
    benchmark::DoNotOptimize(ob::compute_metrics(variants, m));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ops_per_case"] =
      static_cast<double>(ob::plan_layer(f.w, f.methods, f.gpu, knobs).ops.size());
}
BENCHMARK(layer_case)->Arg(1)->Arg(8)->Arg(32)->Unit(benchmark::kMicrosecond);

// The default scenario widened to 155 cases (5 comm_ctas values; `none` once per value), through
// the pipeline's resolve and plan stages, with each case's metrics and diagnosis.
void default_sweep(benchmark::State& state) {
  ob::layer_scenario sc = ob::load_layer_scenario("default_layer");
  ob::apply_override(sc, "comm_ctas=8,16,24,32,48");
  const ob::run_spec r = ob::resolve_run(sc);
  ob::sim_executor exec(r.gpu);
  for (auto _ : state) {
    for (const auto& c : r.cases) {
      ob::measure_options opts;
      opts.cdmc = c.cdmc;
      const auto variants = ob::make_variant_schedules(ob::plan_case(r, c));
      const auto m = exec.measure(variants, opts);
      const ob::case_metrics metrics = ob::compute_metrics(variants, m);
      benchmark::DoNotOptimize(ob::diagnose_case(variants, m, metrics.exposed_comm_ms,
                                                 metrics.overlapped_ms.median, c.cdmc));
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(r.cases.size()));
  state.counters["cases"] = static_cast<double>(r.cases.size());
}
BENCHMARK(default_sweep)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
