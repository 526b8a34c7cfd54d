#pragma once
// Helpers the step tests share: a sweep run on the simulator, and what resolving refuses.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "dist/communicator.hpp"
#include "run/step_run.hpp"
#include "sim/simulator.hpp"

namespace ob::test {

inline std::vector<step_record> run_sim_steps(const step_scenario& sc) {
  const step_spec spec = resolve_step(sc);
  sim_executor exec(spec.gpu);
  auto comm = make_single_communicator();
  return run_step_sweep(spec, exec, *comm, step_hooks{}).doc.cases;
}

// The config_error resolving `sc` throws; "" when it resolves.
inline std::string resolve_message(const step_scenario& sc) {
  try {
    resolve_step(sc);
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

// A step case planned and simulated: every stage's ops and their times, found by name.
struct timeline {
  program prog;
  std::vector<std::vector<sim_op_result>> ops;  // per stage
  const op* find(int stage, const std::string& name) const {
    for (const op& o : prog.stages[static_cast<std::size_t>(stage)].ops)
      if (o.name == name) return &o;
    return nullptr;
  }
  const op& named(int stage, const std::string& name) const {
    const op* o = find(stage, name);
    if (!o) throw std::out_of_range(name);
    return *o;
  }
  const sim_op_result& at(int stage, const std::string& name) const {
    return ops[static_cast<std::size_t>(stage)][named(stage, name).id];
  }
  double length(int stage, const std::string& name) const {
    return at(stage, name).end_us - at(stage, name).start_us;
  }
};

inline timeline simulate_spec(const step_spec& spec) {
  timeline t;
  t.prog = plan_step_case(spec, spec.cases.at(0)).prog;
  sim_options o;
  o.cluster = &spec.cases.at(0).cluster;
  o.cdmc = spec.cases.at(0).cdmc;
  for (const auto& stage : simulate_program(t.prog, spec.gpu, o)) t.ops.push_back(stage.ops);
  return t;
}

inline timeline simulate(const step_scenario& sc) { return simulate_spec(resolve_step(sc)); }

// The first case of a resolved spec planned and simulated: its program and stage 0's ops.
struct stage0_run {
  program prog;
  std::vector<sim_op_result> ops;
};
inline stage0_run simulate_first_case(const step_spec& spec) {
  timeline t = simulate_spec(spec);
  return {std::move(t.prog), std::move(t.ops.front())};
}

}  // namespace ob::test
