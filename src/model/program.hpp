#pragma once
// Several ranks' schedules run together: one representative rank per pipeline stage, with the
// point-to-point transfers that join them (docs/ARCHITECTURE.md §9). A send on one stage and the
// receive that matches it on another form one transfer that starts once both are posted.
#include <string>
#include <vector>

#include "model/cluster.hpp"
#include "model/ir.hpp"

namespace ob {

struct stage_link {
  int send_stage = 0, send_op = 0;  // a p2p op on the sending stage
  int recv_stage = 0, recv_op = 0;  // its partner on the receiving stage
};

struct program {
  std::string name;
  std::vector<schedule> stages;
  std::vector<stage_link> links;
  // The job's layout: stage s is run by every rank whose pp coordinate is s (a real backend
  // finds its stage and its communicators from it; the simulator runs one rank per stage).
  rank_grid grid;
  // A layer or pair case (one_stage_program): one stage and no links, whose ranks are its
  // collectives' groups rather than the grid's pipeline stages; false for a training step.
  bool one_stage_case = false;
  std::size_t op_count() const;
  // Throws config_error when a link points at a missing op or at an op that is not p2p.
  void validate() const;
};

// The variant of every stage (derive_variant); links survive only where both ops are kept.
program derive_program_variant(const program& planned, variant v);

// A layer or pair case as the program every executor takes (docs/ARCHITECTURE.md §2).
program one_stage_program(schedule s);

}  // namespace ob
