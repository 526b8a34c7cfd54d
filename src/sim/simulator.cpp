#include "sim/simulator.hpp"

#include "sim/engine.hpp"
#include "sim/host.hpp"
#include "sim/hw_queues.hpp"
#include "sim/kernel_model.hpp"

namespace ob {

std::vector<op_interval> sim_result::intervals() const {
  std::vector<op_interval> out;
  out.reserve(ops.size());
  for (const auto& r : ops) {
    op_interval& i = out.emplace_back(r.op_id, r.start_us, r.end_us);
    i.enqueue_us = r.enqueue_us;
    i.deps_met_us = r.deps_met_us;
    i.ready_us = r.ready_us;
  }
  return out;
}

sim_result simulate(const schedule& s, const gpu_spec& gpu, const sim_options& opts) {
  s.validate();
  std::vector<sim::kernel_plan> plans;
  plans.reserve(s.ops.size());
  for (const op& o : s.ops) plans.push_back(sim::plan_kernel(o, gpu));
  const sim::host_timeline host = sim::host_enqueue_times(s, plans, gpu, opts.graphs);
  const sim::device_inputs in{s, gpu, plans, host.enqueue_us, sim::hardware_queue_count(opts.cdmc)};
  sim_result r = sim::run_device(in);
  r.queues = in.queue_count;
  r.host_us = host.enqueue_us.empty() ? 0 : host.enqueue_us.back();
  r.origin_us = host.origin_us;
  return r;
}

variant_measurements sim_executor::measure(const variant_schedules& variants,
                                           const measure_options& opts) {
  // The model is deterministic: one simulated iteration is the exact answer, so warm-up and
  // repeated iterations would only repeat it. Iteration time and op intervals both run from the
  // origin (the first op's enqueue, see sim_result), not from the host starting to enqueue.
  const sim_options so{opts.cdmc, opts.graphs};
  variant_measurements out;
  for (std::size_t i = 0; i < variants.size(); ++i) {
    if (!opts.variants[i]) continue;
    const sim_result r = simulate(variants[i], gpu_, so);
    out[i].iter_ms = {r.total_us / 1000.0};
    out[i].ops = r.intervals();
    out[i].wrong = 0;
  }
  return out;
}

json sim_executor::environment() const {
  // Same `gpu` shape as the result writer's env (results/README.md), so merging this object
  // into it refines rather than replaces.
  return json{
      {"backend", "sim"},
      {"simulated", true},
      {"gpu", {{"name", gpu_.display_name}, {"config", gpu_.name}, {"sm_count", gpu_.sm_count}}},
      {"sim_model", sim_model_version}};
}

}  // namespace ob
