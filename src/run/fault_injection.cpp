#include "run/fault_injection.hpp"

#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <string_view>

#include "base/error.hpp"

namespace ob {
namespace {

constexpr const char* fault_syntax =
    "expected skip_collective:rank=R:case=C, die:rank=R:case=C (R and C non-negative integers) "
    "or reexec_cdmc";

[[noreturn]] void bad(const std::string& source, const std::string& text, const std::string& why) {
  throw config_error(source + ": '" + text + "': " + why + "; " + fault_syntax);
}

// "key=N" with N a non-negative integer that fits an int.
int field_value(std::string_view part, std::string_view key, const std::string& source,
                const std::string& text) {
  const std::string prefix = std::string(key) + "=";
  if (!part.starts_with(prefix)) bad(source, text, "expected '" + prefix + "N'");
  const std::string_view digits = part.substr(prefix.size());
  int v = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() || v < 0)
    bad(source, text, std::string(key) + ": '" + std::string(digits) + "' is not an integer >= 0");
  return v;
}

}  // namespace

std::string fault_injection::describe() const {
  if (kind == fault_kind::reexec_cdmc) return "reexec_cdmc";
  const char* name = kind == fault_kind::die ? "die" : "skip_collective";
  return std::string(name) + ":rank=" + std::to_string(rank) +
         ":case=" + std::to_string(case_index);
}

fault_injection parse_fault_injection(const std::string& text, const std::string& source) {
  fault_injection f;
  if (text.empty()) return f;
  if (text == "reexec_cdmc") {
    f.kind = fault_kind::reexec_cdmc;
    return f;
  }
  std::string_view rest = text;
  std::string_view parts[3];
  for (auto& p : parts) {
    const auto cut = rest.find(':');
    p = rest.substr(0, cut);
    rest = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 1);
  }
  if (!rest.empty() || parts[2].empty()) bad(source, text, "expected three ':'-separated parts");
  if (parts[0] == "skip_collective")
    f.kind = fault_kind::skip_collective;
  else if (parts[0] == "die")
    f.kind = fault_kind::die;
  else
    bad(source, text, "unknown fault '" + std::string(parts[0]) + "'");
  f.rank = field_value(parts[1], "rank", source, text);
  f.case_index = static_cast<std::size_t>(field_value(parts[2], "case", source, text));
  return f;
}

void maybe_die(const fault_injection& f, int rank, std::size_t index) {
  // SIGKILL, not an exception or exit(): a crashed rank runs no destructor and says nothing.
  if (f.hits(fault_kind::die, rank, index)) ::kill(::getpid(), SIGKILL);
}

}  // namespace ob
