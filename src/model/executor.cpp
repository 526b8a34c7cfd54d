#include "model/executor.hpp"

#include "base/error.hpp"

namespace ob {

variant_schedules make_variant_schedules(const schedule& planned) {
  variant_schedules out;
  for (variant v : all_variants) out[static_cast<int>(v)] = derive_variant(planned, v);
  return out;
}

program_variants make_program_variants(const program& planned, const measure_options& opts) {
  program_variants out;
  for (variant v : all_variants)
    if (opts.measures(v)) out[static_cast<int>(v)] = derive_program_variant(planned, v);
  return out;
}

program_measurements executor::measure_program(const program_variants&, const measure_options&) {
  throw runtime_failure("--backend " + backend() +
                        " cannot run a multi-stage training step yet; use --backend sim");
}

}  // namespace ob
