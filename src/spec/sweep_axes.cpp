#include "spec/sweep_axes.hpp"

#include <algorithm>
#include <set>

#include "base/error.hpp"
#include "base/units.hpp"

namespace ob {
namespace {

// Parses one value of an axis into the case and returns its typed form for `params`.
using axis_parser = ordered_json (*)(const std::string& v, const std::string& field, sweep_case&);

ordered_json parse_cdmc_value(const std::string& v, const std::string& field, sweep_case& c) {
  c.cdmc = parse_int_in(v, field, 1, cdmc_max);
  return c.cdmc;
}
ordered_json parse_method(const std::string& v, const std::string& field, sweep_case& c) {
  c.method = parse_enum<overlap_setting>(v, field);
  return v;
}
ordered_json parse_order(const std::string& v, const std::string& field, sweep_case& c) {
  c.knobs.order = parse_enum<launch_order>(v, field);
  return v;
}
// "preset": each GEMM's own set_sm_margin/num_sm; a number overrides them all.
ordered_json parse_sm_margin(const std::string& v, const std::string& field, sweep_case& c) {
  if (v == "preset") return v;
  c.knobs.sm_margin = parse_int_in(v, field, 0, 1024);
  return *c.knobs.sm_margin;
}
ordered_json parse_comm_ctas(const std::string& v, const std::string& field, sweep_case& c) {
  c.knobs.comm_ctas = parse_int_in(v, field, 0, nccl_max_ctas);
  return c.knobs.comm_ctas;
}
ordered_json parse_priority(const std::string& v, const std::string& field, sweep_case& c) {
  c.knobs.priority = parse_enum<priority_mode>(v, field);
  return v;
}

ordered_json parse_cta_policy(const std::string& v, const std::string& field, sweep_case& c) {
  c.knobs.nccl.policy = parse_enum<cta_policy>(v, field);
  check_nccl_config(c.knobs.nccl, field);
  return v;
}
ordered_json parse_symmetric(const std::string& v, const std::string& field, sweep_case& c) {
  if (v != "on" && v != "off") throw config_error(field + ": expected on or off, got '" + v + "'");
  c.knobs.nccl.symmetric = v == "on";
  check_nccl_config(c.knobs.nccl, field);
  return v;
}
ordered_json parse_min_ctas(const std::string& v, const std::string& field, sweep_case& c) {
  c.knobs.nccl.min_ctas = parse_int_in(v, field, 0, nccl_max_ctas);
  check_nccl_config(c.knobs.nccl, field);
  return c.knobs.nccl.min_ctas;
}
ordered_json parse_max_ctas(const std::string& v, const std::string& field, sweep_case& c) {
  c.knobs.nccl.max_ctas = parse_int_in(v, field, 0, nccl_max_ctas);
  check_nccl_config(c.knobs.nccl, field);
  return c.knobs.nccl.max_ctas;
}
ordered_json parse_nccl_algo(const std::string& v, const std::string& field, sweep_case& c) {
  static const std::set<std::string> known = {"auto", "ring", "nvls", "nvls_tree", "tree"};
  if (!known.count(v))
    throw config_error(field + ": '" + v + "': expected auto, ring, nvls, nvls_tree or tree");
  c.knobs.nccl_algorithm = v == "auto" ? "" : v;
  return v;
}
// The NCCL the case's settings are checked against (the sim models 2.28's features).
ordered_json parse_nccl_version_axis(const std::string& v, const std::string& field,
                                     sweep_case& c) {
  c.knobs.nccl.nccl_version = parse_nccl_version(v, field);
  check_nccl_config(c.knobs.nccl, field);
  return v;
}

// NCCL 2.31's per-collective CTA cap: "8" (every collective) or "all_gather:4+reduce_scatter:16".
// Its NCCL version is checked per collective (check_collective_nccl), once every axis is
// parsed: --nccl-version may come after it.
ordered_json parse_coll_max_ctas_axis(const std::string& v, const std::string& field,
                                      sweep_case& c) {
  parse_coll_max_ctas(v, field, nccl_max_ctas, c.knobs.nccl);
  return v;
}

struct axis_row {
  std::string_view name;
  axis_parser parse;
  // Whether the axis changes anything without overlap (method none). There every collective
  // runs on the compute stream in dependency order and no GEMM overlaps communication: the
  // order of comm and GEMM, the overlapped GEMMs' SM margin, stream priorities (one busy
  // stream) and CDMC (one stream, one hardware queue) change nothing; the collectives' CTAs do.
  bool without_overlap;
};
// clang-format off
constexpr axis_row axis_table[] = {
    {"cdmc", parse_cdmc_value, false},      {"method", parse_method, true},
    {"order", parse_order, false},          {"sm_margin", parse_sm_margin, false},
    {"comm_ctas", parse_comm_ctas, true},   {"priority", parse_priority, false},
    {"cta_policy", parse_cta_policy, true}, {"symmetric", parse_symmetric, true},
    {"min_ctas", parse_min_ctas, true},     {"max_ctas", parse_max_ctas, true},
    {"nccl_algo", parse_nccl_algo, true},   {"nccl_version", parse_nccl_version_axis, true},
    {"coll_max_ctas", parse_coll_max_ctas_axis, true},
};
// clang-format on

const axis_row& row_of(const std::string& name, const std::string& where) {
  for (const axis_row& r : axis_table)
    if (r.name == name) return r;
  throw config_error(where + name + ": unknown sweep axis");
}

// How messages name an axis: "x.json: sweep.sm_margin", or "pair --sm-margin" for a flag.
std::string axis_field(const std::string& where, const std::string& name) {
  if (!where.ends_with("--")) return where + name;
  std::string flag = name;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return where + flag;
}

// Every value is parsed (and so validated); an axis that does not apply to the case's method
// stays out of its id and params, so such cases collapse into one (expand_axes keeps the first).
sweep_case make_case(const std::vector<sweep_axis>& axes, const std::vector<std::size_t>& idx,
                     const std::string& where, const plan_knobs& base) {
  sweep_case c;
  c.knobs = base;
  c.params = ordered_json::object();
  std::vector<std::pair<std::string, ordered_json>> parsed;
  for (std::size_t a = 0; a < axes.size(); ++a) {
    const std::string& name = axes[a].name;
    parsed.emplace_back(
        name, row_of(name, where).parse(axes[a].values[idx[a]], axis_field(where, name), c));
  }
  for (std::size_t a = 0; a < axes.size(); ++a) {
    const auto& [name, value] = parsed[a];
    if (c.method == overlap_setting::none && !row_of(name, where).without_overlap) continue;
    c.params[name] = value;
    c.id += (c.id.empty() ? "" : ",") + name + "=" + axes[a].values[idx[a]];
  }
  return c;
}

}  // namespace

std::string sweep_axis_list() {
  std::string out;
  for (std::string_view n : sweep_axis_names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

bool is_sweep_axis(std::string_view name) {
  return std::find(std::begin(sweep_axis_names), std::end(sweep_axis_names), name) !=
             std::end(sweep_axis_names) ||
         is_nccl_axis(name);
}

bool is_nccl_axis(std::string_view name) {
  return std::find(std::begin(nccl_axis_names), std::end(nccl_axis_names), name) !=
         std::end(nccl_axis_names);
}

std::vector<sweep_case> expand_axes(const std::vector<sweep_axis>& axes, const std::string& where,
                                    const plan_knobs& base) {
  for (const auto& a : axes) {
    if (a.values.empty()) throw config_error(axis_field(where, a.name) + ": no values");
    // A value listed twice would give two cases one id, which no result reader accepts.
    std::set<std::string> seen;
    for (const auto& v : a.values)
      if (!seen.insert(v).second)
        throw config_error(axis_field(where, a.name) + ": value '" + v + "' is listed twice");
  }
  std::vector<sweep_case> cases;
  std::set<std::string> ids;
  std::vector<std::size_t> idx(axes.size(), 0);
  while (true) {
    sweep_case c = make_case(axes, idx, where, base);
    if (ids.insert(c.id).second) cases.push_back(std::move(c));
    // Odometer increment, last axis fastest.
    std::size_t a = axes.size();
    while (a > 0) {
      --a;
      if (++idx[a] < axes[a].values.size()) break;
      idx[a] = 0;
      if (a == 0) return cases;
    }
    if (axes.empty()) return cases;
  }
}

}  // namespace ob
