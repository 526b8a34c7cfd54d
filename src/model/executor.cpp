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

variant_measurements executor::measure(const variant_schedules& variants,
                                       const measure_options& opts) {
  program_variants pv;
  for (std::size_t i = 0; i < variants.size(); ++i)
    if (opts.variants[i]) pv[i] = one_stage_program(variants[i]);
  program_measurements pm = measure(pv, opts);
  variant_measurements out;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (!pm[i].empty()) out[i] = std::move(pm[i].front());
  return out;
}

bool is_one_stage_case(const program_variants& pv, const measure_options& opts) {
  for (std::size_t i = 0; i < pv.size(); ++i)
    if (opts.variants[i]) return pv[i].one_stage_case;
  return false;
}

}  // namespace ob
