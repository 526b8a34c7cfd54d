#pragma once
// The one sweep loop (docs/ARCHITECTURE.md §2): every kind of sweep (layer, pair, training step)
// runs its cases through case_engine, so resuming, stopping on a signal, journaling, progress
// and the injected faults behave the same for all of them. A kind supplies only how one case
// becomes its record (plan, measure, reduce across ranks, summarise) and what its record is:
// case_record for layers and pairs, step_record for steps.
#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/communicator.hpp"
#include "run/fault_injection.hpp"

namespace ob {

// Rank 0 asks `should_stop` (absent: 0) and every rank learns the answer (one broadcast), so no
// rank is left waiting in a reduction the others never enter.
int agree_on_stop(const std::function<int()>& should_stop, communicator& comm);

// The ids of the cases an earlier run finished, which rank 0 alone read from the journal: every
// rank must skip the same cases, or the reductions pair up different cases (one broadcast).
std::set<std::string> agree_on_finished(const std::vector<std::string>& root_ids,
                                        communicator& comm);

// What the caller of any sweep can plug in. Every hook is optional.
template <class Record>
struct engine_hooks {
  // After each case this process ran: (cases done, cases to run here, case id).
  std::function<void(std::size_t, std::size_t, const std::string&)> progress;
  // Asked on rank 0 before each case: non-zero stops the sweep there. Every rank learns the
  // answer (one broadcast per case).
  std::function<int()> should_stop;
  // Each finished case as it completes (the journal appends it); rank 0 only.
  std::function<void(const Record&)> on_case;
  // Cases an earlier run finished (--resume, on rank 0): not run again, kept in the result.
  std::vector<Record> finished;
  // Test hook (run/fault_injection.hpp): each kind's run_one applies it to its case.
  fault_injection inject;
};

template <class Record>
class case_engine {
 public:
  // Every rank agrees on which cases an earlier run finished (rank 0 read them).
  case_engine(const engine_hooks<Record>& hooks, communicator& comm) : hooks_(hooks), comm_(comm) {
    std::vector<std::string> ids;
    for (const Record& r : hooks.finished) {
      by_id_.emplace(r.id, r);
      ids.push_back(r.id);
    }
    finished_ = agree_on_finished(ids, comm);
  }

  bool finished(const std::string& id) const { return finished_.count(id) != 0; }

  // Runs `run_one(index, done)` (collective: every rank calls it for the same cases in order)
  // for each index of `todo`, asking before each whether to stop; `keep(record)` sees each
  // record where the engine holds it, before the journal does (its address stays valid until
  // take_in_order); `id_of(index)` names a case for the progress line. Returns the stop reason,
  // 0 when all ran.
  template <class IdOf, class RunOne, class Keep>
  int run(const std::vector<std::size_t>& todo, IdOf&& id_of, RunOne&& run_one, Keep&& keep) {
    std::size_t done = 0;
    for (std::size_t index : todo) {
      if (const int stop = agree_on_stop(hooks_.should_stop, comm_); stop != 0) return stop;
      Record& rec = by_id_.insert_or_assign(id_of(index), run_one(index, done)).first->second;
      keep(rec);
      if (hooks_.on_case && comm_.is_root()) hooks_.on_case(rec);
      if (hooks_.progress) hooks_.progress(++done, todo.size(), rec.id);
    }
    return 0;
  }

  // A record measured elsewhere (a CDMC child run): journaled and kept as if run here.
  void add(Record rec) {
    if (hooks_.on_case && comm_.is_root()) hooks_.on_case(rec);
    by_id_.insert_or_assign(rec.id, std::move(rec));
  }

  // The records of `ids` that ran (here, elsewhere or earlier), in that order, moved out: a long
  // sweep holds each record once.
  std::vector<Record> take_in_order(const std::vector<std::string>& ids) {
    std::vector<Record> out;
    for (const std::string& id : ids)
      if (auto it = by_id_.find(id); it != by_id_.end()) out.push_back(std::move(it->second));
    return out;
  }

 private:
  const engine_hooks<Record>& hooks_;
  communicator& comm_;
  std::unordered_map<std::string, Record> by_id_;
  std::set<std::string> finished_;
};

}  // namespace ob
