#pragma once
// Sweep axes as data: every axis is a name and a list of values (text, as a user types them),
// and a sweep is their Cartesian product. Each axis knows how to parse its value into a case's
// knobs, so adding an axis is one row in sweep_axes.cpp.
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "base/enum_names.hpp"
#include "base/json_util.hpp"
#include "model/cdmc.hpp"
#include "model/knobs.hpp"

namespace ob {

// What the `method` axis selects for a layer: the preset (or the Bridge config's TP overlap),
// Transformer Engine's built-in defaults, or no overlap at all.
enum class overlap_setting { preset, te_default, none };
template <>
struct enum_names<overlap_setting> {
  static constexpr std::string_view noun = "method";
  static constexpr std::array names = {enum_entry{overlap_setting::preset, "preset"},
                                       enum_entry{overlap_setting::te_default, "te_default"},
                                       enum_entry{overlap_setting::none, "none"}};
};

// One axis value as text ("8", "comm_first", "preset"); parsed when a case is built so errors
// name the axis.
struct sweep_axis {
  std::string name;
  std::vector<std::string> values;
};

// Every layer axis as data (docs/ARCHITECTURE.md §10.5), in the order a layer case id lists them
// (cdmc outermost, so a real backend runs one process per CDMC value): the value a layer
// scenario takes when it does not list the axis, and whether a training step takes it for the
// TP overlap inside its layers (with --set). Each axis' parser is its row in sweep_axes.cpp.
struct layer_axis {
  std::string_view name;
  std::string_view default_value;
  bool step_knob;
};
inline constexpr layer_axis layer_axes[] = {
    {"cdmc", "8", false},          {"method", "preset", false}, {"order", "comm_first", true},
    {"sm_margin", "preset", true}, {"comm_ctas", "0", true},    {"priority", "comm_high", true}};
static_assert(layer_axes[0].default_value == "8" && cdmc_default == 8,
              "a layer scenario's default CDMC is the driver's");

// The names alone, in that order.
inline constexpr auto sweep_axis_names = [] {
  std::array<std::string_view, std::size(layer_axes)> names{};
  for (std::size_t i = 0; i < names.size(); ++i) names[i] = layer_axes[i].name;
  return names;
}();
// NCCL's communicator settings as optional axes (docs/ARCHITECTURE.md §5.5), after the layer
// axes: a case id and its params list one only where a scenario, --set or a flag gives it, so
// the cases of a sweep without them keep their ids.
inline constexpr std::string_view nccl_axis_names[] = {"cta_policy",   "symmetric", "min_ctas",
                                                       "max_ctas",     "nccl_algo", "nccl_version",
                                                       "coll_max_ctas"};
// Layer axes and NCCL axes.
bool is_sweep_axis(std::string_view name);
bool is_nccl_axis(std::string_view name);
// "cdmc, method, order, sm_margin, comm_ctas, priority": for help texts and messages.
std::string sweep_axis_list();

// The most CTAs (channels) one NCCL collective can run on: NCCL's MAXCHANNELS is 64 (NCCL 2.28),
// and NCCL_MAX_CTAS takes 1 to 64. A larger comm_ctas (or coll --ctas) would model a kernel NCCL
// cannot launch, so it is refused; 0 keeps the preset's or NCCL's default.
inline constexpr int nccl_max_ctas = 64;

// One point of a sweep.
struct sweep_case {
  std::string id;  // "cdmc=8,method=preset,order=comm_first,..."
  int cdmc = cdmc_default;
  overlap_setting method = overlap_setting::preset;
  plan_knobs knobs;
  ordered_json params;  // the axis values, typed
};

// Cartesian product of `axes` in the given order (last fastest). Values are validated here;
// errors name `where` + the axis ("x.json: sweep.order: ..."). Axes may be any subset of
// sweep_axis_names. Axes that change nothing for a case's method are not swept for it: a `none`
// case has only method and comm_ctas in its id and params (its CDMC is the axis' first value),
// and appears once per distinct comm_ctas.
std::vector<sweep_case> expand_axes(const std::vector<sweep_axis>& axes, const std::string& where,
                                    const plan_knobs& base);

}  // namespace ob
