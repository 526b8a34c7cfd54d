#pragma once
// The device side of the simulator (docs/ARCHITECTURE.md §5.1): SM slots, the dispatcher, the
// progress of tiles, channels and copies, and the interference between GEMMs and communication.
// Event-driven: time jumps from one state change to the next; between two events every rate is
// constant, so progress is exact and no time step exists.
//
// Several devices can run together (a pipeline's stages, docs/ARCHITECTURE.md §9): each keeps
// its own clock and is advanced to its next event in global time order; a rendezvous op (one
// side of a stage-to-stage transfer) is dispatched like any kernel but makes no progress until
// its partner on the other device has started too.
#include <memory>
#include <string>
#include <vector>

#include "model/gpu_spec.hpp"
#include "model/ir.hpp"
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
  // By op id: 1 for an op that must wait for a partner on another device; empty for none.
  const std::vector<char>* rendezvous = nullptr;
  int stalled_op = -1;  // sim_options::stalled_op
};

// One device, stepped from outside.
class device_sim {
 public:
  explicit device_sim(const device_inputs& in);
  ~device_sim();
  device_sim(const device_sim&) = delete;
  device_sim& operator=(const device_sim&) = delete;

  // Everything that happens at the current time without time passing (dispatch, timers).
  void settle();
  // Sets the rates for the interval starting now; the time of the next state change (infinity
  // when nothing can change without an outside event).
  double next_event_time();
  // Moves the clock to `t` (no later than next_event_time()) and handles the events due then.
  void advance_to(double t);
  bool done() const;
  double now() const;
  // Rendezvous ops that started since the last call.
  std::vector<int> take_started_rendezvous();
  // The partner of rendezvous op `op` has started: the transfer may progress.
  void release(int op);
  // "queue 0: 'name' ..." for hang messages.
  std::string heads() const;
  sim_result result();

 private:
  std::unique_ptr<class device> impl_;
};

// Runs the schedule to completion; fills every field of sim_result.
sim_result run_device(const device_inputs& in);

}  // namespace ob::sim
