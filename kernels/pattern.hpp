#pragma once
// The data every collective and p2p buffer starts from, shared by the init and verify kernels and
// by host-side tests. Values are small non-zero integers so that any reduction order gives the
// exact same sum: |sum| <= 3 * ranks stays an integer that bf16 holds exactly up to 85 ranks
// (256), fp16 up to 682 (2048) and fp32 up to 5,592,405 (2^24). Verification can therefore be
// exact (nccl-tests' #wrong), not tolerance-based. Plain C++17: the kernels include it, so it may
// include no other header of src/.
#include <cstdint>

#include "model/verify_kind.hpp"

#if defined(__CUDACC__)
#define OB_HD __host__ __device__ __forceinline__
#else
#define OB_HD inline
#endif

namespace ob::kernels {

OB_HD std::uint64_t mix64(std::uint64_t x) {
  // splitmix64 finaliser: cheap and well spread, so neighbouring indices look unrelated.
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Element `index` of rank `rank`'s input: one of -3, -2, -1, 1, 2, 3.
OB_HD int pattern_value(int rank, std::uint64_t index) {
  const auto h = mix64(index * 0x100000001B3ull + static_cast<std::uint64_t>(rank) * 0x5851F42Dull);
  const int v = static_cast<int>(h % 6u);
  return v < 3 ? v - 3 : v - 2;
}

// The largest |expected value| of an output: a sum over the group for reductions, one element
// otherwise. Verification is exact only while the element type holds every integer up to it.
inline int pattern_max_abs(verify_kind kind, int group_size) {
  const bool sums = kind == verify_kind::reduce_scatter || kind == verify_kind::all_reduce;
  return 3 * (sums ? group_size : 1);
}

// What one collective's output must hold, element by element.
struct verify_spec {
  verify_kind kind = verify_kind::all_reduce;
  int group_size = 1;  // ranks in the group
  int position = 0;    // this rank's position in the group
  int peer = 0;        // recv_from: the sender's position
  // Elements per rank: AG the send count (output holds group_size * count), RS the receive count
  // (each input holds group_size * count), A2A the count per peer (both buffers hold
  // group_size * count), AR and recv_from the buffer count.
  std::uint64_t count = 0;
};

inline std::uint64_t output_elements(const verify_spec& s) {
  const bool whole_group = s.kind == verify_kind::all_gather || s.kind == verify_kind::all_to_all;
  return whole_group ? s.count * static_cast<std::uint64_t>(s.group_size) : s.count;
}

// Expected output element `j` (as an exact integer).
OB_HD int expected_value(const verify_spec& s, std::uint64_t j) {
  switch (s.kind) {
    case verify_kind::all_gather: {
      const auto src = static_cast<int>(j / s.count);
      return pattern_value(src, j % s.count);
    }
    case verify_kind::reduce_scatter: {
      int sum = 0;
      for (int q = 0; q < s.group_size; ++q)
        sum += pattern_value(q, static_cast<std::uint64_t>(s.position) * s.count + j);
      return sum;
    }
    case verify_kind::all_reduce: {
      int sum = 0;
      for (int q = 0; q < s.group_size; ++q) sum += pattern_value(q, j);
      return sum;
    }
    case verify_kind::recv_from:
      return pattern_value(s.peer, j);
    case verify_kind::all_to_all: {
      // Block `src` of the output is the shard peer `src` addressed to this rank.
      const auto src = static_cast<int>(j / s.count);
      return pattern_value(src, static_cast<std::uint64_t>(s.position) * s.count + j % s.count);
    }
  }
  return 0;
}

}  // namespace ob::kernels
