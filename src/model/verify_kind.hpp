#pragma once
// What a buffer must hold after a communication op: the rule the verification kernels check.
// Plain C++17 and dependency-free, because the CUDA kernels (compiled as C++17) include it too.
namespace ob {

enum class verify_kind : int {
  all_gather = 0,
  reduce_scatter = 1,
  all_reduce = 2,
  recv_from = 3,
  all_to_all = 4
};

}  // namespace ob
