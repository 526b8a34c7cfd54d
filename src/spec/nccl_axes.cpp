#include "spec/nccl_axes.hpp"

#include "model/nccl_config.hpp"

namespace ob {

std::vector<sweep_axis> nccl_axes_given(const nccl_axis_values& given) {
  std::vector<sweep_axis> axes;
  for (std::size_t i = 0; i < given.size(); ++i) {
    if (given[i].empty()) continue;
    sweep_axis a{std::string(nccl_axis_names[i]), {}};
    for (std::size_t at = 0;;) {
      const std::size_t cut = given[i].find(',', at);
      a.values.push_back(given[i].substr(at, cut - at));
      if (cut == std::string::npos) break;
      at = cut + 1;
    }
    axes.push_back(std::move(a));
  }
  return axes;
}

void apply_nccl_axes(const std::vector<sweep_axis>& axes, const gpu_spec& gpu,
                     collective_params& c) {
  if (axes.empty()) return;
  const std::vector<sweep_case> cases = expand_axes(axes, "--", plan_knobs{});
  const collective_params base = c;
  for (auto it = cases.rbegin(); it != cases.rend(); ++it) {
    c = base;
    c.nccl = it->knobs.nccl;
    if (!it->knobs.nccl_algorithm.empty()) c.algorithm = it->knobs.nccl_algorithm;
    check_collective_nccl(c, &gpu, "--op " + std::string(to_string(c.op)) + " (" + it->id + ")");
  }
}

}  // namespace ob
