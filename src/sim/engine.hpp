#pragma once
// The device side of the simulator (docs/ARCHITECTURE.md §5.1): SM slots, the dispatcher, the
// progress of tiles, channels and copies, and the interference between GEMMs and communication.
// Event-driven: time jumps from one state change to the next; between two events every rate is
// constant, so progress is exact and no time step exists.
#include <vector>

#include "core/gpu_spec.hpp"
#include "core/ir.hpp"
#include "sim/hw_queues.hpp"
#include "sim/kernel_model.hpp"
#include "sim/simulator.hpp"

namespace ob::sim {

struct device_inputs {
  const schedule& sched;
  const gpu_spec& gpu;
  const std::vector<kernel_plan>& plans;  // by op id
  const std::vector<double>& enqueue_us;  // by op id, from the origin (op 0 at 0), non-decreasing
  int queue_count = 1;
  int stalled_op = -1;  // sim_options::stalled_op
};

// Runs the schedule to completion; fills every field of sim_result.
sim_result run_device(const device_inputs& in);

}  // namespace ob::sim
