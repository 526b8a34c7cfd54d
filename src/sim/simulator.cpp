#include "sim/simulator.hpp"

#include "core/error.hpp"
#include "sim/engine.hpp"
#include "sim/host.hpp"
#include "sim/hw_queues.hpp"
#include "sim/kernel_model.hpp"

namespace ob {

std::vector<op_interval> sim_result::intervals() const {
  std::vector<op_interval> out;
  out.reserve(ops.size());
  for (const auto& r : ops) out.push_back({r.op_id, r.start_us, r.end_us});
  return out;
}

sim_result simulate(const schedule& s, const gpu_spec& gpu, const sim_options& opts) {
  s.validate();
  std::vector<sim::kernel_plan> plans;
  plans.reserve(s.ops.size());
  for (const op& o : s.ops) plans.push_back(sim::plan_kernel(o, gpu));
  const sim::host_timeline host = sim::host_enqueue_times(s, plans, gpu, opts.graphs);
  const sim::device_inputs in{
      s, gpu, plans, host.enqueue_us, sim::hardware_queue_count(opts.cdmc), opts.stalled_op};
  sim_result r = sim::run_device(in);
  r.queues = in.queue_count;
  r.host_us = host.enqueue_us.empty() ? 0 : host.enqueue_us.back();
  r.origin_us = host.origin_us;
  return r;
}

namespace {

// The first collective of `s` that simulated rank `skipping` belongs to; -1 when none.
int first_collective(const schedule& s, int skipping) {
  for (const op& o : s.ops)
    if (o.kind() == op_kind::collective && skipping < o.as<collective_params>().group_size)
      return o.id;
  return -1;
}

// Simulates `s` with the injected rank never joining its first collective (a test hook).
sim_result simulate_skipping(const schedule& s, const gpu_spec& gpu, sim_options so, int skipping,
                             variant v) {
  so.stalled_op = first_collective(s, skipping);
  if (so.stalled_op < 0) return simulate(s, gpu, so);
  try {
    return simulate(s, gpu, so);
  } catch (const hang_error& e) {
    const op& o = s.ops[so.stalled_op];
    const auto& c = o.as<collective_params>();
    throw hang_error("simulated rank " + std::to_string(skipping == 0 ? 1 : 0) + " hangs in " +
                     std::string(to_string(c.op)) + " '" + o.name + "' (" +
                     std::string(to_string(c.group)) + " group of " + std::to_string(c.group_size) +
                     " ranks, " + std::string(to_string(v)) + " variant): rank " +
                     std::to_string(skipping) + " never joined it (injected skip_collective); " +
                     e.what());
  }
}

}  // namespace

variant_measurements sim_executor::measure(const variant_schedules& variants,
                                           const measure_options& opts) {
  // The model is deterministic: one simulated iteration is the exact answer, so warm-up and
  // repeated iterations would only repeat it. Iteration time and op intervals both run from the
  // origin (the first op's enqueue, see sim_result), not from the host starting to enqueue.
  const sim_options so{opts.cdmc, opts.graphs};
  variant_measurements out;
  for (std::size_t i = 0; i < variants.size(); ++i) {
    if (!opts.variants[i]) continue;
    const sim_result r =
        opts.inject_skip_rank >= 0
            ? simulate_skipping(variants[i], gpu_, so, opts.inject_skip_rank, all_variants[i])
            : simulate(variants[i], gpu_, so);
    out[i].iter_ms = {r.total_us / 1000.0};
    out[i].ops = r.intervals();
    out[i].wrong = 0;
  }
  // Reaching here with a rank that skips means it belongs to no collective of the case.
  if (opts.inject_skip_rank >= 0)
    throw config_error("fault injection skip_collective: simulated rank " +
                       std::to_string(opts.inject_skip_rank) +
                       " belongs to no collective group of this case");
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
