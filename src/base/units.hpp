#pragma once
// Values as users type them on the command line and in scenario files: byte sizes, GEMM shapes,
// integers in a range, comma lists and `--set key=v1,v2`.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

// "a,b,,c" -> {"a", "b", "", "c"}: every item kept, empty ones too, so callers can refuse them.
std::vector<std::string> split_list(std::string_view text, char sep = ',');

// A whole decimal integer in [lo, hi]; config_error naming `where` otherwise (exit 2).
int parse_int_in(const std::string& text, const std::string& where, int lo, int hi);

// `--set key=v1,v2`: the key and its non-empty values; config_error naming the assignment for a
// missing key, value or '=', or an empty item.
struct set_assignment {
  std::string key;
  std::vector<std::string> values;
};
set_assignment parse_set_assignment(const std::string& assignment);

}  // namespace ob
