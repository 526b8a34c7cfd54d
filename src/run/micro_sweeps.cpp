#include "run/micro_sweeps.hpp"

#include "base/error.hpp"
#include "base/stats.hpp"
#include "model/collective_traits.hpp"

namespace ob {

sweep_request pair_sweep(const pair_spec& p, const std::vector<sweep_axis>& axes,
                         const std::string& where, const gpu_spec& gpu) {
  gpu.require(p.gemm.type, "--dtype");
  const std::uint64_t unit = traits_of(p.coll.op).size_multiple(p.coll.group_size, p.coll.type);
  if (p.coll.bytes % unit != 0)
    throw config_error("--bytes: " + std::to_string(p.coll.bytes) +
                       " is not divisible by ranks x element size (" + std::to_string(unit) + ")");
  sweep_request req;
  req.scenario = "pair";
  req.source = where;
  req.cases = expand_axes(axes, where, plan_knobs{});
  req.plan = [p, gpu](const sweep_case& c) { return plan_pair(p, gpu, c.knobs); };
  req.config = {
      {"scenario", "pair"},
      {"gpu", gpu.name},
      {"gemm",
       {{"m", p.gemm.m}, {"n", p.gemm.n}, {"k", p.gemm.k}, {"dtype", to_string(p.gemm.type)}}},
      {"collective",
       {{"op", to_string(p.coll.op)}, {"bytes", p.coll.bytes}, {"ranks", p.coll.group_size}}},
      {"comm_waits_on_producer_us", p.producer_us}};
  if (p.coll.nodes > 1) req.config["collective"]["nodes"] = p.coll.nodes;
  return req;
}

std::vector<std::uint64_t> size_range(std::uint64_t lo, std::uint64_t hi, std::uint64_t factor) {
  std::vector<std::uint64_t> sizes;
  for (std::uint64_t s = lo; s <= hi; s *= factor) {
    sizes.push_back(s);
    if (factor <= 1 || s > hi / factor) break;  // the next step would pass hi (or overflow)
  }
  return sizes;
}

void check_coll_sizes(const coll_request& r, const std::string& field) {
  const std::uint64_t unit = traits_of(r.c.op).size_multiple(r.c.group_size, r.c.type);
  for (auto s : r.sizes)
    if (s % unit != 0)
      throw config_error(field + ": size " + std::to_string(s) + " is not a multiple of " +
                         std::to_string(unit) + " (" + std::string(to_string(r.c.type)) +
                         " elements x ranks)");
}

std::vector<coll_row> run_coll(const coll_request& r, executor& exec, communicator& comm) {
  measure_options opts = r.measure;
  const auto comm_only = static_cast<std::size_t>(variant::comm_only);
  opts.variants = {};
  opts.variants[comm_only] = true;
  std::vector<coll_row> rows;
  collective_params c = r.c;
  for (std::size_t i = 0; i < r.sizes.size(); ++i) {
    c.bytes = r.sizes[i];
    variant_measurements m;
    try {
      m = measure_case(exec, comm, make_variant_schedules(plan_collective(c)), opts, r.inject, i);
    } catch (const hang_error& e) {
      throw hang_error("size " + std::to_string(c.bytes) + " B: " + e.what());
    }
    rows.push_back(make_coll_row(c, compute_stats(m[comm_only].iter_ms), m[comm_only].wrong));
  }
  return rows;
}

}  // namespace ob
