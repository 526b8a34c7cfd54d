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
