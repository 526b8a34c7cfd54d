#include "sim/hw_queues.hpp"

#include <algorithm>

#include "model/cdmc.hpp"

namespace ob::sim {

hw_queues::hw_queues(const schedule& s, int queue_count)
    : fifo_(static_cast<std::size_t>(std::max(1, queue_count))),
      pos_(fifo_.size(), 0),
      op_queue_(s.ops.size(), 0) {
  const int q = count();
  for (const op& o : s.ops) {
    // Stream ids are creation indices (schedule::validate checks it).
    op_queue_[o.id] = hardware_queue_of(o.stream, q);
    fifo_[op_queue_[o.id]].push_back(o.id);
  }
}

dependency_tracker::edges dependency_tracker::build(
    std::vector<std::pair<int, int>>& producer_consumer, std::size_t ops) {
  std::sort(producer_consumer.begin(), producer_consumer.end());
  edges e;
  e.first.assign(ops + 1, 0);
  e.dependents.reserve(producer_consumer.size());
  for (const auto& [producer, consumer] : producer_consumer) {
    ++e.first[producer + 1];
    e.dependents.push_back(consumer);
  }
  for (std::size_t i = 1; i < e.first.size(); ++i) e.first[i] += e.first[i - 1];
  return e;
}

dependency_tracker::dependency_tracker(const schedule& s, const hw_queues& queues,
                                       double cross_queue_us)
    : queues_(queues),
      cross_us_(cross_queue_us),
      left_(s.ops.size(), 0),
      ready_at_(s.ops.size(), 0.0) {
  // Dependency edges (producer, consumer), deduplicated per consumer and kind.
  std::vector<std::pair<int, int>> done, started;
  std::vector<int> last_on_stream(s.streams.size(), -1);
  std::vector<int> deps;
  for (const op& o : s.ops) {
    deps.clear();
    if (last_on_stream[o.stream] >= 0) deps.push_back(last_on_stream[o.stream]);
    last_on_stream[o.stream] = o.id;
    deps.insert(deps.end(), o.waits.begin(), o.waits.end());
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    for (int d : deps) done.emplace_back(d, o.id);
    left_[o.id] = static_cast<int>(deps.size());
    if (o.waits_started.empty()) continue;
    deps.assign(o.waits_started.begin(), o.waits_started.end());
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    for (int d : deps) started.emplace_back(d, o.id);
    left_[o.id] += static_cast<int>(deps.size());
  }
  done_ = build(done, s.ops.size());
  started_ = build(started, s.ops.size());
}

}  // namespace ob::sim
