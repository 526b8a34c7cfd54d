#pragma once
// Rate units shared by the cost models: GPU and link figures are given in GB/s, the simulator's
// clock runs in microseconds.

namespace ob {

inline constexpr double bytes_per_us_per_gbps = 1e3;  // 1 GB/s moves 1e3 bytes per µs

}  // namespace ob
