#include "model/nccl_config.hpp"

#include "base/error.hpp"
#include "base/units.hpp"
#include "model/collective_traits.hpp"
#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

static_assert(static_cast<int>(ob::coll_op::all_to_all) == 3,
              "nccl_comm_config::coll_max_ctas holds one cap per coll_op");

namespace ob {

int parse_nccl_version(const std::string& text, const std::string& field) {
  int parts[3] = {0, 0, 0};
  std::size_t at = 0;
  int n = 0;
  while (n < 3 && at <= text.size()) {
    const std::size_t dot = text.find('.', at);
    const std::string piece = text.substr(at, dot == std::string::npos ? dot : dot - at);
    parts[n++] = parse_int_in(piece, field + " " + text, 0, 99);
    if (dot == std::string::npos) break;
    at = dot + 1;
  }
  if (n < 2 || parts[0] != 2)
    throw config_error(field + ": '" + text +
                       "': expected an NCCL 2 version such as 2.28 or 2.28.3");
  return nccl_version_code(parts[0], parts[1], parts[2]);
}

std::string nccl_version_text(int code) {
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." +
         std::to_string(code % 100);
}

namespace {

void require_version(const nccl_comm_config& c, int needed, const std::string& what,
                     const std::string& field) {
  if (c.nccl_version < needed)
    throw config_error(field + ": " + what + " needs NCCL >= " + nccl_version_text(needed) +
                       "; NCCL " + nccl_version_text(c.nccl_version) + " has no such setting");
}

// NCCL 2.31's per-call caps (docs/ARCHITECTURE.md §5.5): a call's maxCTAs is at most the
// communicator's maxCTAs; a cap below the communicator's minCTAs leaves NCCL no channel count to
// pick.
void check_coll_caps(const nccl_comm_config& c, const std::string& field) {
  for (std::size_t i = 0; i < c.coll_max_ctas.size(); ++i) {
    const int cap = c.coll_max_ctas[i];
    if (cap <= 0) continue;
    const std::string what = "coll_max_ctas " + std::string(to_string(static_cast<coll_op>(i))) +
                             ":" + std::to_string(cap);
    require_version(c, nccl_version_coll_config, what + " (ncclCollConfig_t, per collective)",
                    field);
    if (c.max_ctas > 0 && cap > c.max_ctas)
      throw config_error(field + ": " + what + " exceeds the communicator's max_ctas " +
                         std::to_string(c.max_ctas) +
                         " (NCCL: a call's maxCTAs is at most its communicator's)");
    if (c.min_ctas > 0 && cap < c.min_ctas)
      throw config_error(field + ": " + what + " is below the communicator's min_ctas " +
                         std::to_string(c.min_ctas));
  }
}

}  // namespace

int coll_max_ctas_of(const collective_params& c) {
  return c.nccl.coll_max_ctas[static_cast<std::size_t>(c.op)];
}

void parse_coll_max_ctas(const std::string& text, const std::string& field, int max_ctas,
                         nccl_comm_config& c) {
  c.coll_max_ctas = {};
  if (text.find(':') == std::string::npos) {
    const int n = parse_int_in(text, field, 1, max_ctas);
    c.coll_max_ctas.fill(n);
    return;
  }
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t plus = text.find('+', at);
    const std::string item = text.substr(at, plus == std::string::npos ? plus : plus - at);
    const std::size_t colon = item.find(':');
    if (colon == std::string::npos)
      throw config_error(field + ": '" + item +
                         "': expected collective:CTAs, e.g. all_gather:4+reduce_scatter:16");
    const auto op = parse_enum<coll_op>(item.substr(0, colon), field);
    int& slot = c.coll_max_ctas[static_cast<std::size_t>(op)];
    if (slot > 0)
      throw config_error(field + ": " + std::string(to_string(op)) + " is capped twice");
    slot = parse_int_in(item.substr(colon + 1), field + " " + item, 1, max_ctas);
    if (plus == std::string::npos) break;
    at = plus + 1;
  }
}

void check_nccl_config(const nccl_comm_config& c, const std::string& field) {
  if (c.symmetric) require_version(c, nccl_version_symmetric, "symmetric memory windows", field);
  if (c.policy == cta_policy::efficiency)
    require_version(c, nccl_version_cta_policy, "cta_policy efficiency", field);
  if (c.policy == cta_policy::zero)
    require_version(c, nccl_version_copy_engine, "cta_policy zero (copy-engine collectives)",
                    field);
  if (c.min_ctas > 0 || c.max_ctas > 0)
    require_version(c, nccl_version_min_max_ctas, "minCTAs/maxCTAs", field);
  if (c.min_ctas > 0 && c.max_ctas > 0 && c.min_ctas > c.max_ctas)
    throw config_error(field + ": min_ctas " + std::to_string(c.min_ctas) + " exceeds max_ctas " +
                       std::to_string(c.max_ctas));
}

namespace {

bool copy_engine_op(const collective_params& c) {
  return c.op == coll_op::all_gather ||
         (c.op == coll_op::all_to_all && c.ep.backend == ep_backend::nccl);
}

// NCCL 2.28 runs AllGather and AlltoAll on the copy engines (docs/ARCHITECTURE.md §5.5),
// and only inside one NVLink domain; 2.30 adds the hierarchical form across domains.
void check_zero_sm(const collective_params& c, const std::string& field) {
  if (c.nccl.policy != cta_policy::zero) return;
  const std::string call(traits_of(c.op).nccl_call);
  if (c.op == coll_op::all_to_all && c.ep.backend != ep_backend::nccl)
    throw config_error(field + ": cta_policy zero is NCCL's copy-engine AlltoAll; a " +
                       std::string(to_string(c.ep.backend)) +
                       " exchange runs its own kernels on SMs (use --moe-dispatcher alltoall)");
  if (!copy_engine_op(c))
    throw config_error(field + ": cta_policy zero runs " + call +
                       " on no SM, which NCCL cannot do: its copy-engine collectives are "
                       "AllGather and AlltoAll, and a reduction needs SMs to add");
  if (c.nodes > 1 && c.nccl.nccl_version < nccl_version_zero_across_nodes)
    throw config_error(field + ": cta_policy zero: this " + call + " spans " +
                       std::to_string(c.nodes) +
                       " NVLink domains; copy-engine collectives run inside one before NCCL "
                       "2.30 (NCCL " +
                       nccl_version_text(c.nccl.nccl_version) +
                       "; --nccl-version 2.30 costs NCCL's hierarchical zero-SM form)");
}

}  // namespace

bool zero_sm_possible(const collective_params& c) {
  return copy_engine_op(c) &&
         (c.nodes <= 1 || c.nccl.nccl_version >= nccl_version_zero_across_nodes);
}

void check_collective_nccl(const collective_params& c, const gpu_spec* gpu,
                           const std::string& field) {
  check_nccl_config(c.nccl, field);
  // Checked here, once every axis is set, not with the communicator's settings: the axes are
  // parsed in the order given, and --nccl-version may come after --coll-max-ctas.
  check_coll_caps(c.nccl, field);
  check_zero_sm(c, field);
  if (const int cap = coll_max_ctas_of(c); cap > 0) {
    const std::string what =
        "coll_max_ctas " + std::string(to_string(c.op)) + ":" + std::to_string(cap);
    if (c.nccl.policy == cta_policy::zero)
      throw config_error(field + ": " + what +
                         " with cta_policy zero: NCCL runs this collective on the copy "
                         "engines, with no CTA to cap");
    if (c.op == coll_op::all_to_all && c.ep.backend != ep_backend::nccl)
      throw config_error(field + ": " + what + ": a " + std::string(to_string(c.ep.backend)) +
                         " exchange is not an NCCL call; its SMs are its own setting");
  }
  if (c.nccl.symmetric && gpu && !gpu->has_symmetric_kernels())
    throw config_error(field + ": symmetric on " + gpu->display_name +
                       ": NCCL's symmetric kernels need NVLink on Hopper or newer (configs/gpus/" +
                       gpu->name + ".json has no sim.nccl_symmetric_latency_factor)");
}

}  // namespace ob
