#include "model/nccl_config.hpp"

#include "base/error.hpp"
#include "base/units.hpp"
#include "model/collective_traits.hpp"
#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

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

}  // namespace

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

void check_collective_nccl(const collective_params& c, const gpu_spec* gpu,
                           const std::string& field) {
  check_nccl_config(c.nccl, field);
  const std::string call(traits_of(c.op).nccl_call);
  if (c.nccl.policy == cta_policy::zero && c.op != coll_op::all_gather)
    throw config_error(field + ": cta_policy zero runs " + call +
                       " on no SM, which NCCL cannot do: its copy-engine collectives are "
                       "AllGather and AlltoAll, and a reduction needs SMs to add");
  // NCCL 2.30 (its release notes): hierarchical zero-SM AllGather and AlltoAll, the copy
  // engines inside the NVLink domain and the RMA CPU proxy across nodes.
  constexpr int zero_across_nodes = nccl_version_code(2, 30);
  if (c.nccl.policy == cta_policy::zero && c.nodes > 1 && c.nccl.nccl_version < zero_across_nodes)
    throw config_error(field + ": cta_policy zero: this " + call + " spans " +
                       std::to_string(c.nodes) +
                       " NVLink domains; copy-engine collectives run inside one before NCCL "
                       "2.30 (NCCL " +
                       nccl_version_text(c.nccl.nccl_version) +
                       "; --nccl-version 2.30 costs NCCL's hierarchical zero-SM all-gather)");
  if (c.nccl.symmetric && gpu && !gpu->has_symmetric_kernels())
    throw config_error(field + ": symmetric on " + gpu->display_name +
                       ": NCCL's symmetric kernels need NVLink on Hopper or newer (configs/gpus/" +
                       gpu->name + ".json has no sim.nccl_symmetric_latency_factor)");
}

}  // namespace ob
