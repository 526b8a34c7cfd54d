#include "base/units.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

#include "base/error.hpp"

namespace ob {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

[[noreturn]] void bad_size(std::string_view text, std::string_view field, std::string_view why) {
  throw config_error(std::string(field) + ": invalid size '" + std::string(text) +
                     "': " + std::string(why) + " (use e.g. 4096, 64KiB, 1MiB, 2GB)");
}

}  // namespace

std::uint64_t parse_size(std::string_view text, std::string_view field) {
  const std::string_view s = trim(text);
  if (s.empty()) bad_size(text, field, "empty");
  std::size_t digits = 0;
  while (digits < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[digits])) || s[digits] == '.'))
    ++digits;
  if (digits == 0) bad_size(text, field, "must start with a number");
  double value = 0;
  const auto num = s.substr(0, digits);
  auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), value);
  if (ec != std::errc() || ptr != num.data() + num.size()) bad_size(text, field, "not a number");
  const std::string_view unit = trim(s.substr(digits));
  // K/M/G alone follow nccl-tests (-b 8M): powers of 1024.
  static constexpr std::array<std::pair<std::string_view, double>, 13> units{{
      {"", 1.0},
      {"B", 1.0},
      {"KiB", 1024.0},
      {"MiB", 1024.0 * 1024},
      {"GiB", 1024.0 * 1024 * 1024},
      {"TiB", 1024.0 * 1024 * 1024 * 1024},
      {"KB", 1e3},
      {"MB", 1e6},
      {"GB", 1e9},
      {"TB", 1e12},
      {"K", 1024.0},
      {"M", 1024.0 * 1024},
      {"G", 1024.0 * 1024 * 1024},
  }};
  for (const auto& [name, mult] : units) {
    if (unit == name) {
      const double bytes = value * mult;
      if (!(bytes >= 1.0)) bad_size(text, field, "must be at least 1 byte");
      if (bytes != std::floor(bytes)) bad_size(text, field, "not a whole number of bytes");
      if (bytes > 1.0e15) bad_size(text, field, "larger than 1 PB");
      return static_cast<std::uint64_t>(bytes);
    }
  }
  bad_size(text, field, "unknown unit '" + std::string(unit) + "'");
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<const char*, 5> names{"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  std::size_t i = 0;
  while (v >= 1024.0 && i + 1 < names.size()) {
    v /= 1024.0;
    ++i;
  }
  char buf[32];
  if (v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f %s", v, names[i]);
  else
    std::snprintf(buf, sizeof buf, "%.3g %s", v, names[i]);
  return buf;
}

gemm_shape parse_gemm_shape(std::string_view text, std::string_view field) {
  std::array<std::int64_t, 3> dims{};
  std::size_t idx = 0;
  std::string_view rest = trim(text);
  auto fail = [&](const std::string& why) -> void {
    throw config_error(std::string(field) + ": invalid GEMM shape '" + std::string(text) +
                       "': " + why + " (expected MxNxK, e.g. 8192x8192x8192)");
  };
  while (true) {
    std::size_t cut = rest.find_first_of("xX*");
    std::string_view part = trim(rest.substr(0, cut));
    if (idx >= 3) fail("more than three dimensions");
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || ptr != part.data() + part.size())
      fail("not an integer");
    if (v <= 0) fail("dimensions must be positive");
    // Far beyond any layer's GEMM; the simulator's work grows with the tile count.
    if (v > max_gemm_dim) fail("dimensions must be at most " + std::to_string(max_gemm_dim));
    dims[idx++] = v;
    if (cut == std::string_view::npos) break;
    rest = rest.substr(cut + 1);
  }
  if (idx != 3) fail("needs three dimensions");
  return {dims[0], dims[1], dims[2]};
}

std::string format_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::vector<std::string> split_list(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t cut = text.find(sep, start);
    out.emplace_back(text.substr(start, cut - start));
    if (cut == std::string_view::npos) return out;
    start = cut + 1;
  }
}

int parse_int_in(const std::string& text, const std::string& where, int lo, int hi) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  const bool whole = !text.empty() && ptr == text.data() + text.size();
  if (!whole || (ec != std::errc() && ec != std::errc::result_out_of_range))
    throw config_error(where + ": expected an integer, got '" + text + "'");
  if (ec == std::errc::result_out_of_range || v < lo || v > hi)
    throw config_error(where + ": " + text + " is out of range [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "]");
  return v;
}

set_assignment parse_set_assignment(const std::string& assignment) {
  const std::string where = "--set " + assignment;
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == assignment.size())
    throw config_error(where + ": expected key=value[,value...]");
  set_assignment a{assignment.substr(0, eq), split_list(assignment.substr(eq + 1))};
  for (const auto& v : a.values)
    if (v.empty()) throw config_error(where + ": empty value in list");
  return a;
}

}  // namespace ob
