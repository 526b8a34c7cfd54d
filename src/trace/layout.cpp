#include "trace/layout.hpp"

#include <array>
#include <charconv>
#include <set>
#include <sstream>

#include "base/error.hpp"

namespace ob::trace {

namespace {

int positive_int(const std::string& text, const std::string& part) {
  int v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v < 1)
    throw config_error("--layout: " + part + ": expected a positive integer");
  return v;
}

}  // namespace

parallel_layout parse_layout(const std::string& text) {
  parallel_layout l;
  std::stringstream in(text);
  std::string part;
  std::set<std::string> seen;
  while (std::getline(in, part, ',')) {
    const std::size_t eq = part.find('=');
    const std::string key = part.substr(0, eq);
    if (eq == std::string::npos || !seen.insert(key).second)
      throw config_error("--layout: '" + part +
                         "': expected each of tp=N,cp=N,pp=N,dp=N,ep=N once");
    const int v = positive_int(part.substr(eq + 1), part);
    if (key == "tp")
      l.tp = v;
    else if (key == "cp")
      l.cp = v;
    else if (key == "pp")
      l.pp = v;
    else if (key == "ep")
      l.ep = v;
    else if (key == "dp")
      l.dp = v;
    else
      throw config_error("--layout: '" + key + "': unknown dimension (tp, cp, pp, dp, ep)");
  }
  if (seen.empty()) throw config_error("--layout: empty; give e.g. tp=4,pp=2");
  return l;
}

parallel_layout resolve_layout(parallel_layout l, int world) {
  const int model = l.tp * l.cp * l.pp;
  const std::string where = "--layout tp=" + std::to_string(l.tp) + ",cp=" + std::to_string(l.cp) +
                            ",pp=" + std::to_string(l.pp);
  if (l.dp == 0) {
    if (world % model != 0)
      throw config_error(where + ": tp·cp·pp = " + std::to_string(model) + " does not divide the " +
                         std::to_string(world) + " ranks of the traces");
    l.dp = world / model;
  } else if (model * l.dp < world) {
    throw config_error(where + ",dp=" + std::to_string(l.dp) + ": covers " +
                       std::to_string(model * l.dp) + " ranks, the traces hold " +
                       std::to_string(world));
  }
  if (l.dp % l.ep != 0)
    throw config_error(where + ": ep=" + std::to_string(l.ep) +
                       " does not divide dp=" + std::to_string(l.dp));
  return l;
}

// A rank's coordinates: Megatron numbers ranks with TP fastest, then CP, then DP, then PP, and
// takes the expert-parallel group from the fastest ep ranks of DP.
std::string dimension_of(const std::vector<int>& group, const parallel_layout& l) {
  const int world = l.tp * l.cp * l.dp * l.pp;
  if (group.size() < 2) return "unknown";
  std::array<std::set<int>, 5> coords;  // tp, cp, ep, dp-outer, pp
  for (const int r : group) {
    if (r < 0 || r >= world) return "unknown";
    const int dp_index = (r / (l.tp * l.cp)) % l.dp;
    coords[0].insert(r % l.tp);
    coords[1].insert((r / l.tp) % l.cp);
    coords[2].insert(dp_index % l.ep);
    coords[3].insert(dp_index / l.ep);
    coords[4].insert(r / (l.tp * l.cp * l.dp));
  }
  const bool tp = coords[0].size() > 1, cp = coords[1].size() > 1, ep = coords[2].size() > 1;
  const bool dp_outer = coords[3].size() > 1, pp = coords[4].size() > 1;
  // A group over the outer part of DP (with or without ep) is a data-parallel one; over ep alone
  // it is the expert-parallel group.
  const bool dp = dp_outer;
  const std::array<std::pair<bool, const char*>, 5> parts{
      {{tp, "tp"}, {cp, "cp"}, {ep && !dp, "ep"}, {dp, "dp"}, {pp, "pp"}}};
  std::string out;
  for (const auto& [on, name] : parts) {
    if (!on) continue;
    if (!out.empty()) out += '+';
    out += name;
  }
  return out.empty() ? "unknown" : out;
}

}  // namespace ob::trace
