#pragma once
// Helpers the step tests share: a sweep run on the simulator, and what resolving refuses.
#include <string>
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

// The first case of a resolved spec planned and simulated: its program and stage 0's ops.
struct stage0_run {
  program prog;
  std::vector<sim_op_result> ops;
};
inline stage0_run simulate_first_case(const step_spec& spec) {
  stage0_run r;
  r.prog = plan_step_case(spec, spec.cases.at(0)).prog;
  sim_options o;
  o.cluster = &spec.cases.at(0).cluster;
  o.cdmc = spec.cases.at(0).cdmc;
  r.ops = simulate_program(r.prog, spec.gpu, o).front().ops;
  return r;
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

}  // namespace ob::test
