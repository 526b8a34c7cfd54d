#pragma once
// NCCL's communicator settings that change the overlap answer (docs/ARCHITECTURE.md §5.5): the
// CTA policy (ncclConfig_t.CTAPolicy, NCCL 2.27; copy-engine collectives with policy zero, NCCL
// 2.28), symmetric memory windows (ncclCommWindowRegister, NCCL 2.27), the communicator's
// minCTAs/maxCTAs, and the algorithm (NVLS, NVLS-tree). The simulator costs them and the cuda
// backend sets them; combinations NCCL cannot run are refused here, once, for both.
#include <array>
#include <string>
#include <string_view>

#include "base/enum_names.hpp"

namespace ob {

enum class cta_policy { standard, efficiency, zero };

template <>
struct enum_names<cta_policy> {
  static constexpr std::string_view noun = "cta_policy";
  static constexpr std::array names = {enum_entry{cta_policy::standard, "default"},
                                       enum_entry{cta_policy::efficiency, "efficiency"},
                                       enum_entry{cta_policy::zero, "zero"}};
};

// NCCL_VERSION(major, minor, patch) as nccl.h computes it from 2.9 on.
constexpr int nccl_version_code(int major, int minor, int patch = 0) {
  return major * 10000 + minor * 100 + patch;
}
// The newest NCCL whose features the simulator models (the CTA policy zero needs 2.28).
inline constexpr int nccl_version_modelled = nccl_version_code(2, 28);
// Where NCCL's features begin (its release notes; docs/CALIBRATION.md §2.7).
inline constexpr int nccl_version_symmetric = nccl_version_code(2, 27);
inline constexpr int nccl_version_cta_policy = nccl_version_code(2, 27);
inline constexpr int nccl_version_copy_engine = nccl_version_code(2, 28);
inline constexpr int nccl_version_min_max_ctas = nccl_version_code(2, 17);
// Hierarchical zero-SM AllGather and AlltoAll across NVLink domains (docs/ARCHITECTURE.md §5.5).
inline constexpr int nccl_version_zero_across_nodes = nccl_version_code(2, 30);
// Per-collective configuration: ncclCollConfig_t and the nccl*Config calls, with minCTAs,
// maxCTAs and CTAPolicy per call (docs/ARCHITECTURE.md §5.5).
inline constexpr int nccl_version_coll_config = nccl_version_code(2, 31);

// "2.28" or "2.28.3"; errors name `field` (exit 2).
int parse_nccl_version(const std::string& text, const std::string& field);
std::string nccl_version_text(int code);  // 22803 -> "2.28.3"

// One communicator's settings, as ncclCommInitRankConfig and ncclCommWindowRegister take them.
struct nccl_comm_config {
  cta_policy policy = cta_policy::standard;
  bool symmetric = false;                    // buffers registered in a symmetric window
  int min_ctas = 0, max_ctas = 0;            // 0 = NCCL's own
  int nccl_version = nccl_version_modelled;  // the NCCL checked against
  // Not a communicator setting: NCCL 2.31's per-call cap (ncclCollConfig_t.maxCTAs on every
  // nccl*Config call of that collective), indexed by coll_op; 0 = none.
  std::array<int, 4> coll_max_ctas{};
  bool operator==(const nccl_comm_config&) const = default;
  bool is_default() const { return *this == nccl_comm_config{}; }
};

// Refuses what the NCCL version cannot do and min > max; messages start with `field`.
void check_nccl_config(const nccl_comm_config& c, const std::string& field);

struct collective_params;
struct gpu_spec;
// Refuses what NCCL cannot run for one collective on one GPU (exit 2, naming why): the above;
// cta_policy zero with a reduction (all_reduce, reduce_scatter: copy engines move bytes, they
// cannot add), with a DeepEP/HybridEP exchange (not an NCCL call), or across NVLink domains
// before NCCL 2.30; a symmetric window where the GPU file has no symmetric kernels (A100; `gpu`
// nullptr: a real device, whose NCCL decides). NVLS on a GPU without NVLink SHARP is refused with
// the algorithm (sim/nccl_model.cpp).
void check_collective_nccl(const collective_params& c, const gpu_spec* gpu,
                           const std::string& field);
// Whether NCCL can run `c` on the copy engines with cta_policy zero: an AllGather or an NCCL
// AlltoAll (NCCL 2.28's copy-engine collectives, docs/ARCHITECTURE.md §5.5), inside one NVLink
// domain or, from NCCL 2.30, across domains. A training step keeps NCCL's SM kernels for the
// others.
bool zero_sm_possible(const collective_params& c);
// The per-call CTA cap of `c` (NCCL 2.31's ncclCollConfig_t.maxCTAs), 0 when none.
int coll_max_ctas_of(const collective_params& c);
// "all_gather:4+reduce_scatter:16" (or "8" for every collective) into `c.coll_max_ctas`; errors
// name `field` (exit 2). Caps run from 1 to `max_ctas`.
void parse_coll_max_ctas(const std::string& text, const std::string& field, int max_ctas,
                         nccl_comm_config& c);

}  // namespace ob
