#pragma once
// Sweep axes as data: every axis is a name and a list of values (text, as a user types them),
// and a sweep is their Cartesian product. Each axis knows how to parse its value into a case's
// knobs, so adding an axis is one row in sweep_axes.cpp.
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

// The axes a sweep may have, in the order a layer scenario enumerates them (cdmc outermost, so a
// real backend runs one process per CDMC value).
inline constexpr std::string_view sweep_axis_names[] = {"cdmc",      "method",    "order",
                                                        "sm_margin", "comm_ctas", "priority"};
bool is_sweep_axis(std::string_view name);

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
