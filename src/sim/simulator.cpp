#include "sim/simulator.hpp"

#include <algorithm>
#include <limits>
#include <memory>

#include "base/error.hpp"
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

namespace {

std::vector<sim::kernel_plan> plan_kernels(const schedule& s, const gpu_spec& gpu,
                                           const sim_options& opts) {
  const cluster_spec fallback = opts.cluster ? cluster_spec{} : default_cluster(gpu);
  const cluster_spec& net = opts.cluster ? *opts.cluster : fallback;
  std::vector<sim::kernel_plan> plans;
  plans.reserve(s.ops.size());
  // A layer repeats a few GEMM shapes (chunks, forward and backward): plan each shape once.
  std::vector<std::pair<gemm_params, std::size_t>> seen;
  for (const op& o : s.ops) {
    const auto* g = std::get_if<gemm_params>(&o.params);
    const auto same = [g](const auto& e) {
      return e.first.m == g->m && e.first.n == g->n && e.first.k == g->k &&
             e.first.type == g->type && e.first.sm_margin == g->sm_margin;
    };
    const auto hit = g ? std::find_if(seen.begin(), seen.end(), same) : seen.end();
    if (hit != seen.end()) {
      plans.push_back(plans[hit->second]);
      continue;
    }
    if (g) seen.emplace_back(*g, plans.size());
    plans.push_back(sim::plan_kernel(o, gpu, net));
  }
  return plans;
}

// One stage's inputs, kept alive while the devices run.
struct stage_inputs {
  std::vector<sim::kernel_plan> plans;
  sim::host_timeline host;
  std::vector<char> rendezvous;
};

// The partner of each linked op: (stage, op), by stage and op id; -1 where none.
using partner_map = std::vector<std::vector<std::pair<int, int>>>;

partner_map partners_of(const program& p) {
  partner_map m(p.stages.size());
  for (std::size_t s = 0; s < p.stages.size(); ++s) m[s].assign(p.stages[s].ops.size(), {-1, -1});
  for (const stage_link& l : p.links) {
    m[l.send_stage][l.send_op] = {l.recv_stage, l.recv_op};
    m[l.recv_stage][l.recv_op] = {l.send_stage, l.send_op};
  }
  return m;
}

// Advances the devices in global time order, releasing each linked pair once both sides have
// started.
class program_runner {
 public:
  program_runner(std::vector<std::unique_ptr<sim::device_sim>>& devs, const program& p)
      : devs_(devs), prog_(p), partner_(partners_of(p)), next_(devs.size(), 0) {
    for (std::size_t s = 0; s < devs.size(); ++s) arrived_.emplace_back(p.stages[s].ops.size(), 0);
  }

  void run() {
    for (std::size_t d = 0; d < devs_.size(); ++d) settle(static_cast<int>(d));
    for (std::size_t d = 0; d < devs_.size(); ++d) next_[d] = devs_[d]->next_event_time();
    while (true) {
      const auto it = std::min_element(next_.begin(), next_.end());
      const int d = static_cast<int>(it - next_.begin());
      if (*it == std::numeric_limits<double>::infinity()) {
        if (all_done()) return;
        hung();
      }
      devs_[d]->advance_to(*it);
      settle(d);
      next_[d] =
          devs_[d]->done() ? std::numeric_limits<double>::infinity() : devs_[d]->next_event_time();
    }
  }

 private:
  bool all_done() const {
    for (const auto& d : devs_)
      if (!d->done()) return false;
    return true;
  }

  void settle(int d) {
    devs_[d]->settle();
    for (int op : devs_[d]->take_started_rendezvous()) arrive(d, op);
  }

  // A linked op is resident; when its partner already is, the transfer starts now.
  void arrive(int d, int op) {
    arrived_[d][op] = 1;
    const auto [pd, pop] = partner_[d][op];
    if (pd < 0 || !arrived_[pd][pop]) return;
    const double t = devs_[d]->now();
    if (devs_[pd]->now() < t) devs_[pd]->advance_to(t);
    devs_[pd]->release(pop);
    devs_[d]->release(op);
    settle(pd);
    next_[pd] = devs_[pd]->next_event_time();
  }

  [[noreturn]] void hung() const {
    std::string what;
    for (std::size_t d = 0; d < devs_.size(); ++d)
      if (!devs_[d]->done())
        what += "; stage " + std::to_string(d) + " waits at" + devs_[d]->heads();
    throw hang_error("simulator: program '" + prog_.name +
                     "' cannot finish: a linked send/recv never meets its partner" + what);
  }

  std::vector<std::unique_ptr<sim::device_sim>>& devs_;
  const program& prog_;
  partner_map partner_;
  std::vector<std::vector<char>> arrived_;
  std::vector<double> next_;
};

}  // namespace

sim_result simulate(const schedule& s, const gpu_spec& gpu, const sim_options& opts) {
  s.validate();
  const std::vector<sim::kernel_plan> plans = plan_kernels(s, gpu, opts);
  const sim::host_timeline host = sim::host_enqueue_times(s, plans, gpu, opts.graphs);
  const sim::device_inputs in{
      s, gpu, plans, host.enqueue_us, hardware_queue_count(opts.cdmc), nullptr, opts.stalled_op};
  sim_result r = sim::run_device(in);
  r.queues = in.queue_count;
  r.host_us = host.enqueue_us.empty() ? 0 : host.enqueue_us.back();
  r.origin_us = host.origin_us;
  return r;
}

std::vector<sim_result> simulate_program(const program& p, const gpu_spec& gpu,
                                         const sim_options& opts) {
  p.validate();
  std::vector<stage_inputs> inputs(p.stages.size());
  for (std::size_t s = 0; s < p.stages.size(); ++s) {
    inputs[s].plans = plan_kernels(p.stages[s], gpu, opts);
    inputs[s].host = sim::host_enqueue_times(p.stages[s], inputs[s].plans, gpu, opts.graphs);
    inputs[s].rendezvous.assign(p.stages[s].ops.size(), 0);
  }
  for (const stage_link& l : p.links) {
    inputs[l.send_stage].rendezvous[l.send_op] = 1;
    inputs[l.recv_stage].rendezvous[l.recv_op] = 1;
  }
  const int queues = hardware_queue_count(opts.cdmc);
  std::vector<sim::device_inputs> dev_in;
  dev_in.reserve(p.stages.size());
  for (std::size_t s = 0; s < p.stages.size(); ++s)
    dev_in.push_back({p.stages[s], gpu, inputs[s].plans, inputs[s].host.enqueue_us, queues,
                      &inputs[s].rendezvous});
  std::vector<std::unique_ptr<sim::device_sim>> devs;
  for (const auto& in : dev_in) devs.push_back(std::make_unique<sim::device_sim>(in));
  program_runner(devs, p).run();
  std::vector<sim_result> out;
  for (std::size_t s = 0; s < devs.size(); ++s) {
    out.push_back(devs[s]->result());
    out.back().queues = queues;
    out.back().origin_us = inputs[s].host.origin_us;
    out.back().host_us = inputs[s].host.enqueue_us.empty() ? 0 : inputs[s].host.enqueue_us.back();
  }
  return out;
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

program_measurements sim_executor::measure(const program_variants& variants,
                                           const measure_options& opts) {
  return is_one_stage_case(variants, opts) ? measure_case(variants, opts)
                                           : measure_step(variants, opts);
}

program_measurements sim_executor::measure_case(const program_variants& variants,
                                                const measure_options& opts) {
  // The model is deterministic: one simulated iteration is the exact answer, so warm-up and
  // repeated iterations would only repeat it. Iteration time and op intervals both run from the
  // origin (the first op's enqueue, see sim_result), not from the host starting to enqueue.
  const sim_options so{opts.cdmc, opts.graphs, opts.cluster ? opts.cluster : &cluster_};
  program_measurements out;
  for (std::size_t i = 0; i < variants.size(); ++i) {
    if (!opts.variants[i]) continue;
    const schedule& s = variants[i].stages.front();
    const sim_result r =
        opts.inject_skip_rank >= 0
            ? simulate_skipping(s, gpu_, so, opts.inject_skip_rank, all_variants[i])
            : simulate(s, gpu_, so);
    variant_measurement m;
    m.iter_ms = {r.total_us / 1000.0};
    m.ops = r.intervals();
    out[i].push_back(std::move(m));
  }
  // Reaching here with a rank that skips means it belongs to no collective of the case.
  if (opts.inject_skip_rank >= 0)
    throw config_error("fault injection skip_collective: simulated rank " +
                       std::to_string(opts.inject_skip_rank) +
                       " belongs to no collective group of this case");
  return out;
}

program_measurements sim_executor::measure_step(const program_variants& variants,
                                                const measure_options& opts) {
  const sim_options so{opts.cdmc, opts.graphs, opts.cluster ? opts.cluster : &cluster_};
  program_measurements out;
  for (std::size_t i = 0; i < variants.size(); ++i) {
    if (!opts.variants[i]) continue;
    const std::vector<sim_result> stages = simulate_program(variants[i], gpu_, so);
    double total = 0;
    for (const sim_result& r : stages) total = std::max(total, r.total_us);
    for (const sim_result& r : stages) {
      variant_measurement m;
      m.iter_ms = {total / 1000.0};
      m.ops = r.intervals();
      out[i].push_back(std::move(m));
    }
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
