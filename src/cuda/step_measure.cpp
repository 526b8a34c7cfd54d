// A training step on the cuda backend (docs/ARCHITECTURE.md §5.2): every process is one rank of
// the step's layout and runs the schedule of its pipeline stage; the ranks' iteration times and
// op intervals are then gathered so that each returns what the simulator returns, one
// measurement per stage.
#include <iostream>
#include <limits>
#include <set>

#include "base/error.hpp"
#include "cuda/cuda_executor.hpp"
#include "cuda/step_groups.hpp"
#include "model/cdmc.hpp"

namespace ob::cuda {
namespace {

variant first_measured(const measure_options& opts) {
  for (variant v : all_variants)
    if (opts.measures(v)) return v;
  throw config_error("no variant of the step to measure");
}

bool has_comm(const program_variants& pv, const measure_options& opts) {
  for (variant v : all_variants)
    if (opts.measures(v))
      for (const schedule& s : pv[static_cast<std::size_t>(v)].stages)
        for (const op& o : s.ops)
          if (o.is_comm()) return true;
  return false;
}

// Every stage's op intervals on every rank: the ranks of a stage put theirs, the others the
// lowest double, and the element-wise max keeps the stage's (the latest of its replicas). The
// ranks started the instrumented iteration together (a barrier), so one clock holds them all, to
// the barrier's skew.
std::vector<std::vector<op_interval>> gather_intervals(const program& p, int stage,
                                                       const std::vector<op_interval>& mine,
                                                       communicator& comm) {
  std::vector<std::size_t> first(p.stages.size() + 1, 0);
  for (std::size_t s = 0; s < p.stages.size(); ++s)
    first[s + 1] = first[s] + 2 * p.stages[s].ops.size();
  std::vector<double> all(first.back(), std::numeric_limits<double>::lowest());
  for (const op_interval& i : mine) {
    const std::size_t at = first[static_cast<std::size_t>(stage)] + 2 * i.op_id;
    all[at] = i.start_us;
    all[at + 1] = i.end_us;
  }
  comm.max_reduce(all);
  std::vector<std::vector<op_interval>> out(p.stages.size());
  for (std::size_t s = 0; s < p.stages.size(); ++s)
    for (std::size_t o = 0; o < p.stages[s].ops.size(); ++o)
      out[s].push_back({static_cast<int>(o), all[first[s] + 2 * o], all[first[s] + 2 * o + 1]});
  return out;
}

}  // namespace

void cuda_executor::check_step(const rank_grid& grid) const {
  if (engines_.size() != 1)
    throw config_error("a training step runs one rank per process: launch it with mpirun -np " +
                       std::to_string(grid.world()) + ", without --gpus");
  if (grid.world() != layout_.world_size)
    throw config_error("--gpus " + std::to_string(grid.world()) + ": the step's layout needs " +
                       std::to_string(grid.world()) + " ranks but " +
                       std::to_string(layout_.world_size) + " are running; launch mpirun -np " +
                       std::to_string(grid.world()) + " (one process per GPU)");
  if (loopback_ && grid.world() > 1)
    throw config_error("--backend loopback runs a step of one GPU only (--gpus 1); a step over " +
                       std::to_string(grid.world()) + " GPUs needs --backend cuda under mpirun");
}

program_measurements cuda_executor::measure_step(const program_variants& pv,
                                                 const measure_options& opts) {
  require_cdmc(opts.cdmc, process_cdmc());
  const rank_grid grid = pv[static_cast<std::size_t>(first_measured(opts))].grid;
  check_step(grid);
  for (variant v : all_variants)
    if (opts.measures(v)) pv[static_cast<std::size_t>(v)].validate();
  const int stage = stage_of(grid, layout_.first_global_rank);
  const stage_run run{&pv, grid, [this] { comm_.barrier(); }};
  abort_signal abort;
  const std::string* id = world_id(has_comm(pv, opts));
  rank_result r = engines_.front()->run(stage_schedules(pv, opts, stage), opts, id, abort, &run);
  std::vector<long long> wrong;
  for (const variant_measurement& m : r.variants) wrong.push_back(m.wrong);
  comm_.sum_reduce(wrong);
  program_measurements out;
  for (variant v : all_variants) {
    const auto i = static_cast<std::size_t>(v);
    if (!opts.measures(v)) continue;
    if (wrong[i] > 0)
      throw runtime_failure("step, variant " + std::string(to_string(v)) + ": " +
                            std::to_string(wrong[i]) + " wrong elements across the ranks");
    auto intervals = gather_intervals(pv[i], stage, r.variants[i].ops, comm_);
    for (auto& ops : intervals) {
      variant_measurement m;
      m.iter_ms = r.variants[i].iter_ms;  // the caller takes the max over the ranks
      m.ops = std::move(ops);
      out[i].push_back(std::move(m));
    }
  }
  std::set<std::string> seen;
  const variant at =
      opts.measures(variant::overlapped) ? variant::overlapped : first_measured(opts);
  auto& notes = out[static_cast<std::size_t>(at)].front().warnings;
  for (const std::string& w : r.warnings)
    if (seen.insert(w).second) {
      std::cerr << "overlap-bench: warning: " << w << "\n";
      notes.push_back(w);
    }
  return out;
}

}  // namespace ob::cuda
