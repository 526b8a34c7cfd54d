#include "sim/hw_queues.hpp"

#include <algorithm>

namespace ob::sim {

int hardware_queue_count(int cdmc, const gpu_spec& gpu) {
  const int v = cdmc > 0 ? cdmc : gpu.default_cdmc;
  return std::clamp(v, 1, 32);
}

hw_queues::hw_queues(const schedule& s, int queue_count)
    : fifo_(static_cast<std::size_t>(std::max(1, queue_count))),
      pos_(fifo_.size(), 0),
      op_queue_(s.ops.size(), 0) {
  const int q = count();
  for (const op& o : s.ops) {
    // Stream ids are creation indices (schedule::validate checks it).
    op_queue_[o.id] = o.stream % q;
    fifo_[op_queue_[o.id]].push_back(o.id);
  }
}

dependency_tracker::dependency_tracker(const schedule& s, const hw_queues& queues,
                                       double cross_queue_us)
    : queues_(queues),
      cross_us_(cross_queue_us),
      left_(s.ops.size(), 0),
      ready_at_(s.ops.size(), 0.0),
      first_(s.ops.size() + 1, 0) {
  // Dependency edges (producer, consumer), deduplicated per consumer.
  std::vector<std::pair<int, int>> edges;
  std::vector<int> last_on_stream(s.streams.size(), -1);
  std::vector<int> deps;
  for (const op& o : s.ops) {
    deps.clear();
    if (last_on_stream[o.stream] >= 0) deps.push_back(last_on_stream[o.stream]);
    last_on_stream[o.stream] = o.id;
    deps.insert(deps.end(), o.waits.begin(), o.waits.end());
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    for (int d : deps) edges.emplace_back(d, o.id);
    left_[o.id] = static_cast<int>(deps.size());
  }
  std::sort(edges.begin(), edges.end());
  dependents_.reserve(edges.size());
  for (const auto& [producer, consumer] : edges) {
    ++first_[producer + 1];
    dependents_.push_back(consumer);
  }
  for (std::size_t i = 1; i < first_.size(); ++i) first_[i] += first_[i - 1];
}

}  // namespace ob::sim
