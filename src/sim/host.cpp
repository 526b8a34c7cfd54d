#include "sim/host.hpp"

namespace ob::sim {

host_timeline host_enqueue_times(const schedule& s, const std::vector<kernel_plan>& plans,
                                 const gpu_spec& gpu, bool graphs) {
  host_timeline h;
  h.enqueue_us.resize(s.ops.size());
  // Costs are summed from the origin on, so that op i's time is exactly the sum of the costs of
  // ops 1..i (no subtraction rounding); op 0's own cost is the origin.
  double t = 0;
  for (const op& o : s.ops) {
    double cost = 0;
    if (graphs) {
      cost = gpu.graph_node_us;
    } else if (o.kind() == op_kind::host_sync && o.as<host_sync_params>().device) {
      cost = 0;  // cudaDeviceSynchronize: no event, no launch; the wait itself is the engine's
    } else {
      for (const auto* list : {&o.waits, &o.waits_started})
        for (int w : *list)
          if (s.ops[w].stream != o.stream) cost += gpu.event_us;  // same stream: ordered already
      cost += plans[o.id].launch_us;
    }
    if (o.id == 0)
      h.origin_us = cost;
    else
      t += cost;
    h.enqueue_us[o.id] = t;
  }
  return h;
}

}  // namespace ob::sim
