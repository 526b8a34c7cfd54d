#include "cuda/schedule_prep.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "base/error.hpp"
#include "cuda/gemm_key.hpp"

namespace ob::cuda {

std::vector<int> map_stream_priorities(const schedule& s, int least, int greatest) {
  std::set<int> levels;
  for (const stream& st : s.streams) levels.insert(st.priority);
  // Distinct IR levels from lowest priority (largest number) to highest.
  std::vector<int> ordered(levels.rbegin(), levels.rend());
  std::vector<int> out;
  out.reserve(s.streams.size());
  for (const stream& st : s.streams) {
    const auto step = std::find(ordered.begin(), ordered.end(), st.priority) - ordered.begin();
    out.push_back(std::max(greatest, least - static_cast<int>(step)));
  }
  return out;
}

group_membership comm_membership(comm_group g, int group_size, int global_rank, int world_size,
                                 const std::string& op_name) {
  if (group_size < 1 || group_size > world_size || world_size % group_size != 0)
    throw config_error("op '" + op_name + "' needs a " + std::string(to_string(g)) + " group of " +
                       std::to_string(group_size) + " ranks, but " + std::to_string(world_size) +
                       " rank(s) are running; launch a multiple of " + std::to_string(group_size) +
                       " ranks (mpirun -np N or --gpus N)");
  group_membership m;
  m.group_size = group_size;
  if (g == comm_group::tp) {
    m.color = global_rank / group_size;
    m.position = global_rank % group_size;
  } else {
    const int stride = world_size / group_size;
    m.color = global_rank % stride;
    m.position = global_rank / stride;
  }
  return m;
}

std::string to_string(const comm_key& k) {
  const std::string link = k.link_from < 0
                               ? ""
                               : " link from stage " + std::to_string(k.link_from) +
                                     (k.link_step > 0 ? " to the next" : " to the previous");
  std::string nccl;
  if (k.min_ctas > 0) nccl += "/minCTAs " + std::to_string(k.min_ctas);
  if (k.policy != cta_policy::standard) nccl += "/CTA policy " + std::string(to_string(k.policy));
  if (k.symmetric) nccl += "/symmetric";
  if (k.call_max_ctas > 0) nccl += "/per-call maxCTAs " + std::to_string(k.call_max_ctas);
  const std::string level =
      k.level_stride > 0 ? " level (stride " + std::to_string(k.level_stride) + ")" : "";
  return std::string(to_string(k.group)) + level + link + "/" + std::to_string(k.group_size) +
         " ranks/maxCTAs " + (k.max_ctas ? std::to_string(k.max_ctas) : "default") + "/cga " +
         (k.cga_cluster_size ? std::to_string(k.cga_cluster_size) : "default") + nccl;
}

namespace {

// NCCL versions in either encoding (2.8 and older: major*1000 + minor*100) as 2.9's.
int modern_version(int code) { return code < 10000 ? code / 1000 * 10000 + code % 1000 : code; }

void require_version(const comm_key& k, const char* what, int needed, int runtime, int header) {
  if (modern_version(runtime) >= needed && modern_version(header) >= needed) return;
  throw config_error("communicator " + to_string(k) + ": " + what +
                     " needs NCCL >= " + nccl_version_text(needed) + "; built against " +
                     nccl_version_text(modern_version(header)) + ", loaded " +
                     nccl_version_text(modern_version(runtime)));
}

}  // namespace

void require_nccl_features(const std::vector<comm_key>& keys, int runtime_version,
                           int header_version) {
  for (const comm_key& k : keys) {
    if (k.min_ctas > 0)
      require_version(k, "minCTAs", nccl_version_min_max_ctas, runtime_version, header_version);
    if (k.policy == cta_policy::efficiency)
      require_version(k, "CTA policy efficiency", nccl_version_cta_policy, runtime_version,
                      header_version);
    if (k.policy == cta_policy::zero)
      require_version(k, "CTA policy zero", nccl_version_copy_engine, runtime_version,
                      header_version);
    if (k.symmetric)
      require_version(k, "a symmetric window (ncclCommWindowRegister)", nccl_version_symmetric,
                      runtime_version, header_version);
    if (k.call_max_ctas > 0)
      require_version(k, "a per-collective CTA limit (ncclCollConfig_t)", nccl_version_coll_config,
                      runtime_version, header_version);
  }
}

comm_key comm_key_for(const op& o) {
  comm_key k;
  if (o.kind() == op_kind::collective) {
    const auto& p = o.as<collective_params>();
    k.group = p.group;
    k.group_size = p.group_size;
    k.level_stride = p.level_stride;
    k.max_ctas = p.ctas;
    if (p.nccl.max_ctas > 0)
      k.max_ctas = k.max_ctas > 0 ? std::min(k.max_ctas, p.nccl.max_ctas) : p.nccl.max_ctas;
    k.min_ctas = p.nccl.min_ctas;
    k.policy = p.nccl.policy;
    // NCCL runs a collective on the copy engines only when both of its buffers sit in symmetric
    // windows (docs/ARCHITECTURE.md §5.5): policy zero registers them too.
    k.symmetric = p.nccl.symmetric || p.nccl.policy == cta_policy::zero;
    k.call_max_ctas = coll_max_ctas_of(p);
  } else if (o.kind() == op_kind::p2p) {
    const auto& p = o.as<p2p_params>();
    k.group = p.group;
    k.group_size = p.group_size;
    k.level_stride = p.level_stride;
    k.max_ctas = p.ctas;
  } else {
    throw config_error("op '" + o.name + "' is not a communication op");
  }
  // The IR carries no CGA cluster size yet; the key keeps the slot so one can be added.
  k.cga_cluster_size = 0;
  return k;
}

std::vector<comm_key> comm_keys_needed(const std::vector<const schedule*>& schedules) {
  std::set<comm_key> keys;
  for (const schedule* s : schedules)
    for (const op& o : s->ops)
      if (o.is_comm()) keys.insert(comm_key_for(o));
  return {keys.begin(), keys.end()};
}

int ring_peer(int position, int offset, int group_size) {
  if (group_size <= 0) return 0;
  return ((position + offset) % group_size + group_size) % group_size;
}

int proxy_ctas(const op& o, const std::function<int(coll_op)>& default_ctas) {
  if (o.kind() == op_kind::p2p) return std::max(0, o.as<p2p_params>().ctas);
  const auto& p = o.as<collective_params>();
  int ctas = p.ctas;
  if (ctas <= 0) {
    const int d = default_ctas ? default_ctas(p.op) : 0;
    ctas = d > 0 ? d : 16;
  }
  const int cap = coll_max_ctas_of(p);  // NCCL 2.31's per-call maxCTAs
  return cap > 0 ? std::min(ctas, cap) : ctas;
}

namespace {

// "c0.", "mb12.", "b3.", "L7." or "re." at `at`: its length, else 0.
std::size_t pass_component(const std::string& name, std::size_t at) {
  if (name.compare(at, 3, "re.") == 0) return 3;
  std::size_t i = at;
  for (const char* tag : {"mb", "c", "b", "L"}) {
    const std::size_t n = std::char_traits<char>::length(tag);
    if (name.compare(at, n, tag) == 0) {
      i = at + n;
      break;
    }
  }
  if (i == at) return 0;
  const std::size_t digits_end = name.find_first_not_of("0123456789", i);
  if (digits_end == i || digits_end == std::string::npos || name[digits_end] != '.') return 0;
  return digits_end + 1 - at;
}

bool pipeline_transfer(const op& o) {
  return o.kind() == op_kind::p2p && o.as<p2p_params>().direction != p2p_direction::exchange;
}

}  // namespace

std::size_t pass_prefix_length(const std::string& name) {
  std::size_t at = 0;
  while (const std::size_t n = pass_component(name, at)) at += n;
  return at;
}

std::vector<std::string> buffer_keys(const schedule& s) {
  std::map<std::string, int> seen;
  std::vector<std::string> out;
  out.reserve(s.ops.size());
  for (const op& o : s.ops) {
    const int n = seen[o.name]++;
    if (pipeline_transfer(o))
      out.push_back(o.name);
    else if (o.kind() == op_kind::elementwise && o.slot == "optimizer")
      out.push_back("optimizer");  // its passes run one after another: one buffer, the largest
    else
      out.push_back(o.name.substr(pass_prefix_length(o.name)) + "#" + std::to_string(n));
  }
  return out;
}

gemm_layout plan_gemm_groups(const schedule& s,
                             const std::function<const gemm_params*(const op&)>& gemm_of) {
  gemm_layout layout;
  std::map<std::string, int> index;
  const auto keys = buffer_keys(s);
  for (const op& o : s.ops) {
    const gemm_params* g = gemm_of(o);
    if (!g) continue;
    const bool by_op = o.slot.empty() || g->group > 1;
    std::string stem = (by_op ? "op:" + keys[o.id] : "slot:" + o.slot) +
                       "|n=" + std::to_string(g->n) + "|k=" + std::to_string(g->k) + "|" +
                       std::string(to_string(g->type));
    if (g->group > 1) stem += "|g=" + std::to_string(g->group);
    if (g->accumulate) stem += "|acc=" + std::string(to_string(g->out));
    // Chunks of one logical GEMM sit in one pass; the same slot in another pass is another GEMM.
    const std::size_t pass = pass_prefix_length(o.name);
    std::string key = pass == 0 ? stem : stem + "|pass=" + o.name.substr(0, pass);
    auto [it, inserted] = index.emplace(key, static_cast<int>(layout.groups.size()));
    if (inserted) {
      gemm_group grp;
      grp.key = std::move(key);
      grp.buffer_key = std::move(stem);
      grp.n = g->n;
      grp.k = g->k;
      grp.type = g->type;
      grp.members = std::max(g->group, 1);
      grp.accumulate = g->accumulate;
      grp.out = g->accumulate ? g->out : gemm_output_type(g->type);
      layout.groups.push_back(std::move(grp));
    }
    gemm_group& grp = layout.groups[it->second];
    layout.slices[o.id] = {it->second, grp.total_m};
    grp.total_m += g->m;
    ++grp.chunks;
  }
  return layout;
}

elementwise_plan plan_elementwise(const elementwise_params& p, int sm_count) {
  elementwise_plan out;
  out.ctas = std::max(1, sm_count - std::max(0, p.sm_margin));
  const double bytes = static_cast<double>(std::max<std::uint64_t>(p.bytes, 1));
  if (p.flops > compute_bound_flops_per_byte * bytes) {
    out.as_gemm = true;
    // A square-ish GEMM with the op's FLOPs: the largest m = n that still leaves k >= 256,
    // so the tile count (and so SM occupancy) looks like a real attention kernel's.
    std::int64_t mn = 4096;
    while (mn > 256 && p.flops / (2.0 * mn * mn) < 256) mn /= 2;
    auto k = static_cast<std::int64_t>(std::ceil(p.flops / (2.0 * mn * mn) / 64.0)) * 64;
    out.gemm.m = mn;
    out.gemm.n = mn;
    out.gemm.k = std::max<std::int64_t>(k, 64);
    out.gemm.type = elementwise_type;
    out.gemm.sm_margin = std::max(0, p.sm_margin);
    return out;
  }
  // Half the bytes are read, half written; whole 16-byte vectors, as the kernel loads them.
  const std::uint64_t vector = 16 / dtype_bytes(elementwise_type);
  const std::uint64_t total = p.bytes / 2 / dtype_bytes(elementwise_type);
  const std::uint64_t most = elementwise_max_buffer_bytes / dtype_bytes(elementwise_type);
  out.repeat = static_cast<int>((total + most - 1) / most);
  out.repeat = std::max(out.repeat, 1);
  out.elems = (total + static_cast<std::uint64_t>(out.repeat) - 1) / out.repeat;
  out.elems -= out.elems % vector;
  return out;
}

int sm_target_for(int sm_margin, int sm_count) {
  return sm_margin > 0 ? std::max(1, sm_count - sm_margin) : 0;
}

}  // namespace ob::cuda
