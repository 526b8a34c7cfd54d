// TEMPORARY stub until the typed resolver lands from the resolve-split branch.
#include "core/error.hpp"
#include "core/resolve.hpp"

namespace ob {
ordered_json bridge_resolution::to_json() const { throw runtime_failure("typed resolve: not yet"); }
bridge_resolution resolve_bridge(const json&, const std::string&) {
  throw runtime_failure("typed resolve: not yet");
}
bridge_resolution resolve_bridge_file(const std::string&) {
  throw runtime_failure("typed resolve: not yet");
}
}  // namespace ob
