#pragma once
// Hardware queues and dependency resolution (docs/ARCHITECTURE.md §5.1). Streams map onto Q FIFO
// queues; only a queue's head may dispatch, and it must be ready first. A dependency completed in
// the op's own queue counts at once; one completed in another queue is seen
// cross_queue_event_us later. A launch-ordering dependency (op::waits_started) is resolved when
// its op *starts* (first CTA dispatched, or copy engine started), with the same delay rule: it is
// an event like any other, recorded on the waited op's stream, that the waiting queue observes.
#include <cstddef>
#include <utility>
#include <vector>

#include "model/cdmc.hpp"
#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

namespace ob::sim {

class hw_queues {
 public:
  hw_queues(const schedule& s, int queue_count);
  int count() const { return static_cast<int>(fifo_.size()); }
  int queue_of(int op_id) const { return op_queue_[op_id]; }
  // The op at the head of queue q (enqueued or not yet), or -1 once every op has left it.
  int head(int q) const { return pos_[q] < fifo_[q].size() ? fifo_[q][pos_[q]] : -1; }
  // The head has dispatched all its CTAs: the op behind it becomes head.
  void pop(int q) { ++pos_[q]; }

 private:
  std::vector<std::vector<int>> fifo_;  // op ids per queue, in enqueue order
  std::vector<std::size_t> pos_;
  std::vector<int> op_queue_;
};

// Tracks, per op, its stream predecessor, its waits (resolved on completion) and its
// waits_started (resolved on start). Until all are resolved the op is not ready, and as the head
// of its queue it blocks the ops behind it like any unresolved dependency.
class dependency_tracker {
 public:
  dependency_tracker(const schedule& s, const hw_queues& queues, double cross_queue_us);
  // Every dependency complete and its cross-queue delay elapsed.
  bool met(int op_id, double now) const { return left_[op_id] == 0 && ready_at_[op_id] <= now; }
  // Records that `op_id` completed at `now`. Calls on_resolved(dependent, ready_at) for each
  // dependent whose last outstanding dependency this was.
  template <class F>
  void complete(int op_id, double now, F&& on_resolved) {
    resolve(done_, op_id, now, on_resolved);
  }
  // Records that `op_id` started at `now` (its launch-ordering dependents); same callback.
  template <class F>
  void start(int op_id, double now, F&& on_resolved) {
    resolve(started_, op_id, now, on_resolved);
  }

 private:
  // Dependents of each op, in CSR form: first[id]..first[id + 1] index into dependents.
  struct edges {
    std::vector<int> first;
    std::vector<int> dependents;
  };
  static edges build(std::vector<std::pair<int, int>>& producer_consumer, std::size_t ops);

  template <class F>
  void resolve(const edges& e, int op_id, double now, F& on_resolved) {
    for (int i = e.first[op_id]; i < e.first[op_id + 1]; ++i) {
      const int d = e.dependents[i];
      const double at = now + (queues_.queue_of(d) == queues_.queue_of(op_id) ? 0 : cross_us_);
      if (at > ready_at_[d]) ready_at_[d] = at;
      if (--left_[d] == 0) on_resolved(d, ready_at_[d]);
    }
  }

  const hw_queues& queues_;
  double cross_us_;
  std::vector<int> left_;         // dependencies (both kinds) not yet resolved
  std::vector<double> ready_at_;  // latest resolution (+ delay) seen so far
  edges done_;                    // resolved when the producer completes
  edges started_;                 // resolved when the producer starts
};

}  // namespace ob::sim
