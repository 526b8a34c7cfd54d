#include "model/program.hpp"

#include "base/error.hpp"

namespace ob {

std::size_t program::op_count() const {
  std::size_t n = 0;
  for (const schedule& s : stages) n += s.ops.size();
  return n;
}

void program::validate() const {
  for (const schedule& s : stages) s.validate();
  const auto check = [&](int stage, int op, const char* side) {
    if (stage < 0 || stage >= static_cast<int>(stages.size()) || op < 0 ||
        op >= static_cast<int>(stages[stage].ops.size()))
      throw config_error("program '" + name + "': a link's " + side + " points at stage " +
                         std::to_string(stage) + " op " + std::to_string(op) +
                         ", which does not exist");
    if (stages[stage].ops[op].kind() != op_kind::p2p)
      throw config_error("program '" + name + "': a link's " + side + " '" +
                         stages[stage].ops[op].name + "' is not a p2p op");
  };
  for (const stage_link& l : links) {
    check(l.send_stage, l.send_op, "send");
    check(l.recv_stage, l.recv_op, "receive");
  }
}

program one_stage_program(schedule s) {
  program p;
  p.name = s.name;
  p.stages.push_back(std::move(s));
  p.one_stage_case = true;
  return p;
}

program derive_program_variant(const program& planned, variant v) {
  program out;
  out.name = planned.name;
  out.grid = planned.grid;
  out.one_stage_case = planned.one_stage_case;
  for (const schedule& s : planned.stages) out.stages.push_back(derive_variant(s, v));
  // Variants keep every p2p op or none (comm-only, serial and overlapped keep them; the
  // compute-only ones drop them all), and keep op order, so a link maps by counting kept ops.
  const bool keeps_p2p = v != variant::compute_only && v != variant::compute_with_margin;
  if (!keeps_p2p) return out;
  // comm_only keeps only the comm ops: an op's new id is its position among them.
  std::vector<std::vector<int>> comm_index(planned.stages.size());
  if (v == variant::comm_only)
    for (std::size_t s = 0; s < planned.stages.size(); ++s) {
      int kept = 0;
      for (const op& o : planned.stages[s].ops) comm_index[s].push_back(o.is_comm() ? kept++ : -1);
    }
  for (stage_link l : planned.links) {
    if (v == variant::comm_only) {
      l.send_op = comm_index[l.send_stage][l.send_op];
      l.recv_op = comm_index[l.recv_stage][l.recv_op];
    }
    out.links.push_back(l);
  }
  return out;
}

}  // namespace ob
