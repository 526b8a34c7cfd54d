#include "sim/host.hpp"

namespace ob::sim {

std::vector<double> host_enqueue_times(const schedule& s, const std::vector<kernel_plan>& plans,
                                       const gpu_spec& gpu, bool graphs) {
  std::vector<double> out(s.ops.size());
  double t = 0;
  for (const op& o : s.ops) {
    if (graphs) {
      t += gpu.graph_node_us;
    } else {
      for (int w : o.waits)
        if (s.ops[w].stream != o.stream) t += gpu.event_us;  // same stream: ordered already
      t += plans[o.id].launch_us;
    }
    out[o.id] = t;
  }
  return out;
}

}  // namespace ob::sim
