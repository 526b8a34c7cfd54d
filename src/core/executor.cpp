#include "core/executor.hpp"

namespace ob {

variant_schedules make_variant_schedules(const schedule& planned) {
  variant_schedules out;
  for (variant v : all_variants) out[static_cast<int>(v)] = derive_variant(planned, v);
  return out;
}

}  // namespace ob
