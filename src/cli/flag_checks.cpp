#include "cli/flag_checks.hpp"

#include <charconv>
#include <cmath>
#include <string>

namespace ob::cli {
namespace {

// Shortest readable form of a bound: 1e+07 rather than 10000000.000000.
std::string bound(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

CLI::Validator int_in(long long lo, long long hi) {
  const std::string expected =
      "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, expected](std::string& text) -> std::string {
        long long v = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v < lo ||
            v > hi)
          return expected + ", got '" + text + "'";
        return "";
      },
      std::to_string(lo) + ".." + std::to_string(hi));
}

CLI::Validator number_in(double lo, double hi, bool lo_open) {
  const std::string expected =
      "expected a number " +
      (lo_open ? "above " + bound(lo) + " and up to " : "from " + bound(lo) + " to ") + bound(hi);
  return CLI::Validator(
      [lo, hi, lo_open, expected](std::string& text) -> std::string {
        double v = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        const bool parsed = !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
        if (!parsed || !std::isfinite(v) || v < lo || (lo_open && v == lo) || v > hi)
          return expected + ", got '" + text + "'";
        return "";
      },
      (lo_open ? "(" : "[") + bound(lo) + ", " + bound(hi) + "]");
}

CLI::Validator not_empty() {
  return CLI::Validator(
      [](std::string& text) -> std::string { return text.empty() ? "expected a value" : ""; }, "");
}

}  // namespace ob::cli
