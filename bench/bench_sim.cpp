// Simulated layer cases per second: one case = plan + the five variants of one layer
// configuration (forward and backward) simulated + metrics. Target: >= 500 cases/s on 2 cores.
// And the two training-step targets (docs/ARCHITECTURE.md §9.5): a whole step planned, simulated
// (overlapped and compute-only) and attributed, < 2 s at 1,024 GPUs and < 10 s at 16,384.
#include <benchmark/benchmark.h>

#include "analysis/diagnosis.hpp"
#include "analysis/metrics.hpp"
#include "dist/communicator.hpp"
#include "model/executor.hpp"
#include "model/gpu_spec.hpp"
#include "model/model_spec.hpp"
#include "model/workload.hpp"
#include "plan/plan.hpp"
#include "run/run_spec.hpp"
#include "run/step_run.hpp"
#include "sim/simulator.hpp"
#include "spec/presets.hpp"
#include "spec/scenario.hpp"

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

// One step case through resolve, plan, simulate and attribute.
void step_case(benchmark::State& state, ob::step_scenario sc) {
  const ob::step_spec spec = ob::resolve_step(sc);
  ob::sim_executor exec(spec.gpu);
  const auto comm = ob::make_single_communicator();
  for (auto _ : state) benchmark::DoNotOptimize(ob::run_step_sweep(spec, exec, *comm, {}));
  state.counters["ops"] =
      static_cast<double>(ob::plan_step_case(spec, spec.cases.front()).prog.op_count());
}

ob::step_scenario step_target(const char* model, int gpus, int tp, int pp, int vp, int seq) {
  ob::step_scenario sc;
  sc.model = model;
  sc.cluster = "dgx_h100";
  sc.base.gpus = gpus;
  sc.base.tp = tp;
  sc.base.pp = pp;
  sc.base.vp = vp;
  sc.base.gbs = 2048;
  sc.base.seq = seq;
  return sc;
}

BENCHMARK_CAPTURE(step_case, gpt3_175b_1024gpus, step_target("gpt3_175b", 1024, 4, 8, 12, 0))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK_CAPTURE(step_case, llama31_405b_16384gpus,
                  step_target("llama31_405b", 16384, 8, 16, 1, 8192))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
