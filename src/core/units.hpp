#pragma once
// Byte sizes and GEMM shapes as users type them on the command line.
#include <cstdint>
#include <string>
#include <string_view>

namespace ob {

// "64MiB", "1GB", "4096", "512 KiB". Binary suffixes are powers of 1024, KB/MB/GB powers of 1000
// (docs/ARCHITECTURE.md §1). `field` names the flag or JSON path for the error message (exit 2).
std::uint64_t parse_size(std::string_view text, std::string_view field);

// Human form using binary units: 1048576 -> "1 MiB", 1536 -> "1.5 KiB".
std::string format_size(std::uint64_t bytes);

// Numbers as the tables and the report print them: `decimals` fixed decimals, "%.*f".
std::string format_fixed(double v, int decimals);

struct gemm_shape {
  std::int64_t m = 0, n = 0, k = 0;
};
inline constexpr std::int64_t max_gemm_dim = std::int64_t{1} << 20;
// "8192x8192x8192" (also 'X' or '*'); each dimension a positive integer up to max_gemm_dim.
gemm_shape parse_gemm_shape(std::string_view text, std::string_view field);

}  // namespace ob
