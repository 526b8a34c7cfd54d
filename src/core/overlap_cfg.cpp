#include "core/overlap_cfg.hpp"

#include "core/error.hpp"

namespace ob {

std::string_view to_string(overlap_method m) {
  switch (m) {
    case overlap_method::none:
      return "none";
    case overlap_method::bulk:
      return "bulk";
    case overlap_method::pipeline:
      return "pipeline";
    case overlap_method::ring_exchange:
      return "ring_exchange";
    case overlap_method::external:
      return "external";
  }
  return "?";
}

overlap_method parse_overlap_method(std::string_view s, std::string_view field) {
  for (overlap_method m : {overlap_method::none, overlap_method::bulk, overlap_method::pipeline,
                           overlap_method::ring_exchange, overlap_method::external})
    if (to_string(m) == s) return m;
  throw config_error(std::string(field) + ": unknown overlap method '" + std::string(s) +
                     "' (expected none, bulk, pipeline, ring_exchange or external)");
}

}  // namespace ob
