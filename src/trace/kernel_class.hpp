#pragma once
// The kernel classes of `analyze`, in one table (kernel_class.cpp, documented in
// docs/ANALYZE.md §2): every GPU activity of a profile is communication, memory traffic or
// compute, with a kind inside each. Exposure counts communication not covered by compute.
#include <cstdint>
#include <string>
#include <string_view>

namespace ob::trace {

enum class category : std::uint8_t { compute, comm, memory };

enum class kernel_kind : std::uint8_t {
  // compute
  gemm,
  attention,
  elementwise,
  norm,
  other_compute,  // matched no rule: the name is listed as unknown
  // communication
  all_reduce,
  all_gather,
  reduce_scatter,
  send_recv,
  all_to_all,
  broadcast,
  reduce,
  userbuffers,
  ep_dispatch,
  ep_combine,
  nvshmem,
  p2p_copy,
  other_comm,
  // memory
  memcpy,
  memset,
};

struct kernel_class {
  category cat = category::compute;
  kernel_kind kind = kernel_kind::other_compute;
};

// A kernel by its name (case-insensitive substring rules, first match wins).
kernel_class classify_kernel(std::string_view name);
// A copy: peer-to-peer copies are communication (a p2p or copy-engine collective moves them),
// other copies memory traffic. `peer` is true for PtoP (Kineto "Memcpy PtoP", nsys copyKind 10).
kernel_class classify_copy(bool peer);
kernel_class classify_memset();
// A communication kernel's kind refined by the collective the framework names (Kineto's
// "Collective name" arg, e.g. "_allgather_base"): NCCL runs all-to-all as SendRecv kernels.
kernel_class refine_by_collective(kernel_class k, std::string_view collective_name);

std::string_view kind_name(kernel_kind k);   // "all_reduce", "gemm", ...
std::string_view category_name(category c);  // "compute", "comm", "memory"
bool is_unknown(kernel_class k);             // compute that matched no rule

}  // namespace ob::trace
