#include "trace/kernel_class.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace ob::trace {
namespace {

// One rule: the name (lowercased) contains one of the '|'-separated `family` patterns and, when
// `op` is not empty, one of the `op` patterns. The order is the priority: NCCL's AllReduce before
// its Reduce, communication before the compute patterns ("cutlass" appears in TE's userbuffers
// GEMMs' names only through the GEMM, never in a comm kernel's).
struct rule {
  std::string_view family;
  std::string_view op;
  category cat;
  kernel_kind kind;
};

constexpr std::string_view nccl = "nccldevkernel_|ncclkernel_|rccl";
constexpr std::string_view ep = "deep_ep|deepep|hybrid_ep|hybridep";

constexpr rule rules[] = {
    {nccl, "allreduce", category::comm, kernel_kind::all_reduce},
    {nccl, "allgather", category::comm, kernel_kind::all_gather},
    {nccl, "reducescatter", category::comm, kernel_kind::reduce_scatter},
    {nccl, "alltoall", category::comm, kernel_kind::all_to_all},
    {nccl, "sendrecv|send|recv", category::comm, kernel_kind::send_recv},
    {nccl, "broadcast", category::comm, kernel_kind::broadcast},
    {nccl, "reduce", category::comm, kernel_kind::reduce},
    {nccl, "", category::comm, kernel_kind::other_comm},
    {"userbuffers", "", category::comm, kernel_kind::userbuffers},
    {ep, "dispatch", category::comm, kernel_kind::ep_dispatch},
    {ep, "combine", category::comm, kernel_kind::ep_combine},
    {ep, "", category::comm, kernel_kind::other_comm},
    {"nvshmem", "", category::comm, kernel_kind::nvshmem},
    {"gemm|cutlass|xmma|nvjet|cublas|matmul", "", category::compute, kernel_kind::gemm},
    {"flash|fmha|attn|attention", "", category::compute, kernel_kind::attention},
    {"elementwise", "", category::compute, kernel_kind::elementwise},
    {"layer_norm|layernorm|rmsnorm|rms_norm", "", category::compute, kernel_kind::norm},
};

// True when `text` contains one of the '|'-separated alternatives of `patterns`.
bool contains_any(std::string_view text, std::string_view patterns) {
  while (!patterns.empty()) {
    const std::size_t bar = patterns.find('|');
    const std::string_view p = patterns.substr(0, bar);
    if (!p.empty() && text.find(p) != std::string_view::npos) return true;
    if (bar == std::string_view::npos) break;
    patterns.remove_prefix(bar + 1);
  }
  return false;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

kernel_class classify_kernel(std::string_view name) {
  const std::string low = lowercase(name);
  for (const rule& r : rules) {
    if (contains_any(low, r.family) && (r.op.empty() || contains_any(low, r.op)))
      return {r.cat, r.kind};
  }
  return {category::compute, kernel_kind::other_compute};
}

kernel_class classify_copy(bool peer) {
  return peer ? kernel_class{category::comm, kernel_kind::p2p_copy}
              : kernel_class{category::memory, kernel_kind::memcpy};
}

kernel_class classify_memset() { return {category::memory, kernel_kind::memset}; }

kernel_class refine_by_collective(kernel_class k, std::string_view collective_name) {
  if (k.cat != category::comm || collective_name.empty()) return k;
  std::string low = lowercase(collective_name);
  std::erase(low, '_');
  if (low.find("alltoall") != std::string::npos) return {category::comm, kernel_kind::all_to_all};
  if (low.find("allgather") != std::string::npos) return {category::comm, kernel_kind::all_gather};
  if (low.find("reducescatter") != std::string::npos)
    return {category::comm, kernel_kind::reduce_scatter};
  if (low.find("allreduce") != std::string::npos) return {category::comm, kernel_kind::all_reduce};
  if (low == "send" || low == "recv" || low.find("sendrecv") != std::string::npos)
    return {category::comm, kernel_kind::send_recv};
  if (low.find("broadcast") != std::string::npos) return {category::comm, kernel_kind::broadcast};
  return k;
}

std::string_view kind_name(kernel_kind k) {
  static constexpr std::array<std::string_view, 20> names{
      "gemm",       "attention",  "elementwise",    "norm",        "other",
      "all_reduce", "all_gather", "reduce_scatter", "send_recv",   "all_to_all",
      "broadcast",  "reduce",     "userbuffers",    "ep_dispatch", "ep_combine",
      "nvshmem",    "p2p_copy",   "other_comm",     "memcpy",      "memset"};
  return names.at(static_cast<std::size_t>(k));
}

std::string_view category_name(category c) {
  switch (c) {
    case category::comm:
      return "comm";
    case category::memory:
      return "memory";
    default:
      return "compute";
  }
}

bool is_unknown(kernel_class k) {
  return k.cat == category::compute && k.kind == kernel_kind::other_compute;
}

}  // namespace ob::trace
