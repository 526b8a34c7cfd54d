#pragma once
// A test hook, not a feature: makes one rank misbehave at one case so the tests can prove that a
// hang or a dead rank ends the run with a clear message instead of blocking it forever
// (docs/ARCHITECTURE.md §6, hang timeout). The CLI reads it once at start-up from `--inject` or
// $OVERLAP_BENCH_INJECT and hands it to run_sweep; nothing else reads the environment for it.
//
//   skip_collective:rank=R:case=C   rank R skips a collective of case C (0-based, in the sweep's
//                                   case order). One process: the simulated rank R never joins
//                                   the case's first collective, so the simulator reports a hang
//                                   (exit 4). Under mpirun: process R skips the case's cross-rank
//                                   reduction, so the others time out in it (exit 4).
//   die:rank=R:case=C               process R kills itself (SIGKILL) before case C, as a crashed
//                                   rank would.
//   reexec_cdmc                     the simulator is treated as a real backend for CDMC: cases at
//                                   another CDMC than the process's run in a re-executed child
//                                   (one process only), so the child path is tested without a GPU.
//
// A training step (run/step_run.hpp) takes `die` only; the CLI refuses skip_collective for it
// (exit 2), since the step's simulator has one device per pipeline stage and no rank to hold back.
#include <cstddef>
#include <string>

namespace ob {

enum class fault_kind { none, skip_collective, die, reexec_cdmc };

struct fault_injection {
  fault_kind kind = fault_kind::none;
  int rank = 0;
  std::size_t case_index = 0;

  bool active() const { return kind != fault_kind::none; }
  // True when `rank` should misbehave at case `index` in the given way.
  bool hits(fault_kind k, int at_rank, std::size_t index) const {
    return kind == k && rank == at_rank && case_index == index;
  }
  std::string describe() const;  // "skip_collective:rank=1:case=2", for messages
};

// Parses the text above; an empty text is no injection. Malformed text is a config_error naming
// `source` ("--inject" or "OVERLAP_BENCH_INJECT").
fault_injection parse_fault_injection(const std::string& text, const std::string& source);

// The process at `rank` kills itself with SIGKILL when the injection says so for case `index`.
void maybe_die(const fault_injection& f, int rank, std::size_t index);

}  // namespace ob
