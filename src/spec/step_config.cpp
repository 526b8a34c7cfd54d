#include "spec/step_config.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <numeric>
#include <set>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "base/units.hpp"

namespace ob {
namespace {

long long parse_count(const std::string& text, const std::string& where, long long lo,
                      long long hi) {
  long long v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
    throw config_error(where + ": expected an integer, got '" + text + "'");
  if (v < lo || v > hi)
    throw config_error(where + ": " + text + " is out of range (" + std::to_string(lo) + " to " +
                       std::to_string(hi) + ")");
  return v;
}

int count(const std::string& v, const std::string& where, int lo = 1, int hi = 1 << 20) {
  return static_cast<int>(parse_count(v, where, lo, hi));
}

bool on_off(const std::string& v, const std::string& where) {
  if (v == "on" || v == "true" || v == "1") return true;
  if (v == "off" || v == "false" || v == "0") return false;
  throw config_error(where + ": expected on or off, got '" + v + "'");
}

double gbps(const std::string& v, const std::string& where) {
  double x = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec != std::errc() || ptr != v.data() + v.size() || !(x > 0) || x > 1e5)
    throw config_error(where + ": expected GB/s per NIC between 0 and 100000, got '" + v + "'");
  return x;
}

// Parses one value into the case; returns its typed form for params.
using step_parser = ordered_json (*)(const std::string&, const std::string&, step_case&);

template <int step_config::*field, int lo, int hi>
ordered_json count_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.*field = count(v, where, lo, hi);
  return c.cfg.*field;
}
template <bool step_config::*field>
ordered_json switch_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.*field = on_off(v, where);
  return c.cfg.*field;
}
ordered_json dtype_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.type = parse_enum<dtype>(v, where);
  return v;
}
ordered_json recipe_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.scaling = parse_enum<fp8_scaling>(v, where);
  return v;
}
ordered_json recompute_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.recompute = parse_enum<recompute_mode>(v, where);
  return v;
}
// Megatron's recompute_modules list as one value: names joined by '+' (the comma separates sweep
// values), or "none"; typed as the set in Megatron's order, so two spellings of one set clash.
// A set of an enum's bits named with '+' ("none": empty), as Megatron's list fields are.
template <class E>
unsigned parse_bit_set(const std::string& v, const std::string& where) {
  unsigned set = 0;
  if (v == "none") return set;
  std::size_t at = 0;
  while (at <= v.size()) {
    const std::size_t end = std::min(v.find('+', at), v.size());
    const auto bit = static_cast<unsigned>(parse_enum<E>(v.substr(at, end - at), where));
    if ((set & bit) != 0) throw config_error(where + ": '" + v + "' names a module twice");
    set |= bit;
    at = end + 1;
  }
  return set;
}
ordered_json recompute_modules_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.recompute_modules = parse_bit_set<recompute_module>(v, where);
  return bit_set_name<recompute_module>(c.cfg.recompute_modules);
}
// Megatron asserts that moe_preprocess comes with moe_router (TransformerConfig).
ordered_json graph_scope_axis(const std::string& v, const std::string& where, step_case& c) {
  const unsigned set = parse_bit_set<graph_scope>(v, where);
  c.cfg.cuda_graph_scope = set;
  if (c.cfg.graphs(graph_scope::moe_preprocess) && !c.cfg.graphs(graph_scope::moe_router))
    throw config_error(where + ": moe_preprocess needs moe_router in the same scope");
  // One graph of the whole iteration holds every per-layer scope already (Bridge's
  // cuda_graph_impl "full_iteration" takes an empty scope list).
  if (c.cfg.graphs(graph_scope::full_iteration) &&
      set != static_cast<unsigned>(graph_scope::full_iteration))
    throw config_error(where + ": full_iteration graphs every op; combine it with no other scope");
  return bit_set_name<graph_scope>(set);
}
ordered_json moments_axis(const std::string& v, const std::string& where, step_case& c) {
  if (v != "fp32" && v != "bf16")
    throw config_error(where + ": expected fp32 or bf16 (Adam's exp_avg and exp_avg_sq), got '" +
                       v + "'");
  c.cfg.bf16_moments = v == "bf16";
  return v;
}
// on | off (Megatron-FSDP's optim_grads_params) or shard_grad_op (PyTorch FSDP's, docs/FSDP.md
// §7); on and off keep their boolean form, so a case's params read as before.
ordered_json fsdp_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.fsdp_shard_grad_op = v == "shard_grad_op";
  if (c.cfg.fsdp_shard_grad_op) {
    c.cfg.fsdp = true;
    return v;
  }
  try {
    c.cfg.fsdp = on_off(v, where);
  } catch (const config_error&) {
    throw config_error(where + ": expected on, off or shard_grad_op, got '" + v + "'");
  }
  return c.cfg.fsdp;
}
ordered_json bucket_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.bucket_size = parse_count(v, where, 1, 1LL << 40);
  return c.cfg.bucket_size;
}
ordered_json cdmc_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.cdmc = count(v, where, 1, cdmc_max);
  return *c.cfg.cdmc;
}
ordered_json cross_entropy_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.cross_entropy = parse_enum<cross_entropy_impl>(v, where);
  return v;
}
ordered_json cp_comm_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.cp_comm_type = parse_enum<cp_comm>(v, where);
  return v;
}
// Megatron-Core's hierarchical_context_parallel_sizes as one value, its levels joined by '+':
// Transformer Engine's a2a+p2p takes exactly two, the all-to-all level and the ring level.
ordered_json hierarchical_cp_axis(const std::string& v, const std::string& where, step_case& c) {
  const std::size_t plus = v.find('+');
  if (plus == std::string::npos || v.find('+', plus + 1) != std::string::npos)
    throw config_error(where + ": expected two sizes joined by '+' (the a2a level, then the p2p " +
                       "level; Transformer Engine's a2a+p2p takes two), got '" + v + "'");
  c.cfg.cp_a2a = count(v.substr(0, plus), where, 1, 1024);
  c.cfg.cp_p2p = count(v.substr(plus + 1), where, 1, 1024);
  return std::to_string(c.cfg.cp_a2a) + "+" + std::to_string(c.cfg.cp_p2p);
}
ordered_json dispatcher_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.dispatcher = parse_enum<moe_dispatcher>(v, where);
  return v;
}
// A number from `low` to 1e6, else a config_error naming `where` and saying `expected`.
double ratio(const std::string& v, const std::string& where, double low, const char* expected) {
  double x = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec != std::errc() || ptr != v.data() + v.size() || !(x >= low) || x > 1e6)
    throw config_error(where + ": expected " + expected + ", got '" + v + "'");
  return x;
}
ordered_json imbalance_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.moe_imbalance = ratio(v, where, 1,
                              "the busiest EP rank's load over the mean, 1 or more "
                              "(1: force-balanced)");
  return c.cfg.moe_imbalance;
}
ordered_json capacity_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.moe_capacity_factor =
      ratio(v, where, 0, "moe_expert_capacity_factor, 0 or more (0: dropless)");
  return c.cfg.moe_capacity_factor;
}
ordered_json rank_capacity_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.moe_expert_rank_capacity_factor = ratio(
      v, where, 0, "moe_expert_rank_capacity_factor, 0 or more (0: off, the counts' host sync)");
  return c.cfg.moe_expert_rank_capacity_factor;
}
ordered_json layout_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.stage_layout = parse_pipeline_layout(v, where);
  return v;
}
ordered_json nic_axis(const std::string& v, const std::string& where, step_case& c) {
  c.cfg.nic_gbps = gbps(v, where);
  return c.cfg.nic_gbps;
}

struct step_axis_row {
  std::string_view name;
  step_parser parse;
};

using C = step_config;
constexpr step_axis_row step_axis_table[] = {
    {"gpus", count_axis<&C::gpus, 1, (1 << 20)>},
    {"tp", count_axis<&C::tp, 1, 1024>},
    {"pp", count_axis<&C::pp, 1, 1024>},
    {"vp", count_axis<&C::vp, 1, 1024>},
    {"cp", count_axis<&C::cp, 1, 1024>},
    {"cp_comm_type", cp_comm_axis},
    {"hierarchical_context_parallel_sizes", hierarchical_cp_axis},
    {"ep", count_axis<&C::ep, 1, (1 << 16)>},
    {"etp", count_axis<&C::etp, 1, 1024>},
    {"mbs", count_axis<&C::mbs, 1, (1 << 16)>},
    {"gbs", count_axis<&C::gbs, 1, (1 << 24)>},
    {"seq", count_axis<&C::seq, 1, (1 << 24)>},
    {"dtype", dtype_axis},
    {"fp8_recipe", recipe_axis},
    {"fp8_dot_product_attention", switch_axis<&C::fp8_dpa>},
    {"recompute", recompute_axis},
    {"recompute_modules", recompute_modules_axis},
    {"cuda_graph_scope", graph_scope_axis},
    {"sequence_parallel", switch_axis<&C::sequence_parallel>},
    {"tp_overlap", switch_axis<&C::tp_overlap>},
    {"dp_overlap", switch_axis<&C::dp_overlap>},
    {"pp_overlap", switch_axis<&C::pp_overlap>},
    {"distributed_optimizer", switch_axis<&C::distributed_optimizer>},
    {"fsdp", fsdp_axis},
    {"cpu_offload_layers", count_axis<&C::cpu_offload_layers, 0, (1 << 16)>},
    {"grad_reduce_in_fp32", switch_axis<&C::grad_reduce_in_fp32>},
    {"grad_accum_fusion", switch_axis<&C::grad_accum_fusion>},
    {"cross_entropy_fusion_impl", cross_entropy_axis},
    {"megatron_2022", switch_axis<&C::megatron_2022>},
    {"fp8_param_gather", switch_axis<&C::fp8_param_gather>},
    {"exp_avg_dtype", moments_axis},
    {"bucket_size", bucket_axis},
    {"layers", count_axis<&C::layers, 1, (1 << 16)>},
    {"pipeline_layout", layout_axis},
    {"cdmc", cdmc_axis},
    {"gpus_per_node", count_axis<&C::gpus_per_node, 1, 1024>},
    {"nvlink_domain", count_axis<&C::nvlink_domain, 1, (1 << 16)>},
    {"nic_gbps", nic_axis},
    {"moe_imbalance", imbalance_axis},
    {"delay_wgrad", switch_axis<&C::delay_wgrad>},
    {"moe_a2a_overlap", switch_axis<&C::moe_a2a_overlap>},
    {"moe_dispatcher", dispatcher_axis},
    {"moe_shared_overlap", switch_axis<&C::moe_shared_overlap>},
    {"moe_capacity_factor", capacity_axis},
    {"moe_expert_rank_capacity_factor", rank_capacity_axis},
    {"use_transformer_engine_op_fuser", switch_axis<&C::te_op_fuser>},
    {"moe_flex_dispatcher_num_sms", count_axis<&C::flex_sms, 0, 4096>},
};

// Layer knobs a step takes, and NCCL's settings for its layers' TP collectives.
bool is_layer_axis(std::string_view name) {
  return is_nccl_axis(name) ||
         std::any_of(std::begin(layer_axes), std::end(layer_axes),
                     [name](const layer_axis& a) { return a.step_knob && a.name == name; });
}

// Layer knobs go through the layer sweep's own parsers, so their rules stay in one place; the
// message is re-labelled with the flag or field the value came from.
ordered_json parse_layer_knob(const std::string& name, const std::string& v,
                              const std::string& where, step_case& c) {
  try {
    sweep_case one = expand_axes({{name, {v}}}, "", c.knobs).front();
    c.knobs = one.knobs;
    return one.params[name];
  } catch (const config_error& e) {
    const std::string msg = e.what();
    throw config_error(where + msg.substr(std::min(msg.size(), name.size())));
  }
}

ordered_json parse_axis(const std::string& name, const std::string& v, const std::string& where,
                        step_case& c) {
  if (is_layer_axis(name)) return parse_layer_knob(name, v, where, c);
  for (const step_axis_row& r : step_axis_table)
    if (r.name == name) return r.parse(v, where, c);
  throw config_error(where + ": unknown step axis");
}

// A value listed twice would give two cases one id, which no step reader accepts (as for run's
// axes, spec/sweep_axes.cpp); two spellings of one value ("16" and "016", "on" and "true") two
// cases that differ in nothing. Each value is parsed alone here, so the messages name the axis.
void check_values(const step_scenario& sc, const sweep_axis& a) {
  const std::string label = axis_label(sc, a.name);
  if (a.values.empty()) throw config_error(label + ": no values");
  std::set<std::string> seen;
  std::vector<std::pair<ordered_json, std::string>> parsed;
  for (const std::string& v : a.values) {
    if (!seen.insert(v).second) throw config_error(label + ": value '" + v + "' is listed twice");
    step_case c;
    c.cfg = sc.base;
    const ordered_json typed = parse_axis(a.name, v, label, c);
    for (const auto& [earlier, text] : parsed)
      if (earlier == typed)
        throw config_error(label + ": values '" + text + "' and '" + v + "' are the same");
    parsed.emplace_back(typed, v);
  }
}

}  // namespace

const std::vector<std::string_view>& step_axis_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> out;
    for (const step_axis_row& r : step_axis_table) out.push_back(r.name);
    for (const layer_axis& a : layer_axes)
      if (a.step_knob) out.push_back(a.name);
    out.insert(out.end(), std::begin(nccl_axis_names), std::end(nccl_axis_names));
    return out;
  }();
  return names;
}

bool is_step_axis(std::string_view name) {
  const auto& names = step_axis_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

void set_step_axis(step_config& cfg, std::string_view axis, const std::string& value,
                   const std::string& where) {
  for (const step_axis_row& r : step_axis_table)
    if (r.name == axis) {
      step_case c;
      c.cfg = cfg;
      r.parse(value, where, c);
      cfg = c.cfg;
      return;
    }
  throw config_error(where + ": " + std::string(axis) + " is not a step axis");
}

std::string axis_label(const step_scenario& sc, std::string_view axis) {
  const auto swept = [&](const sweep_axis& a) { return a.name == axis; };
  for (const auto& [name, source] : sc.base_sources)
    if (name == axis && std::none_of(sc.axes.begin(), sc.axes.end(), swept)) return source;
  if (!sc.file.empty()) return sc.file + ": sweep." + std::string(axis);
  std::string flag(axis);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return "--" + flag;
}

std::vector<step_case> expand_step_cases(const step_scenario& sc) {
  std::vector<const sweep_axis*> axes;
  for (std::string_view name : step_axis_names())
    for (const sweep_axis& a : sc.axes)
      if (a.name == name) axes.push_back(&a);
  for (const sweep_axis* a : axes) check_values(sc, *a);
  std::vector<step_case> cases;
  std::vector<std::size_t> idx(axes.size(), 0);
  while (true) {
    step_case c;
    c.cfg = sc.base;
    for (std::size_t i = 0; i < axes.size(); ++i) {
      const std::string& v = axes[i]->values[idx[i]];
      c.params[axes[i]->name] = parse_axis(axes[i]->name, v, axis_label(sc, axes[i]->name), c);
      c.id += (c.id.empty() ? "" : ",") + axes[i]->name + "=" + v;
    }
    if (c.id.empty()) c.id = "default";
    cases.push_back(std::move(c));
    std::size_t a = axes.size();
    while (a > 0) {
      --a;
      if (++idx[a] < axes[a]->values.size()) break;
      idx[a] = 0;
      if (a == 0) return cases;
    }
    if (axes.empty()) return cases;
  }
}

}  // namespace ob

namespace ob {
namespace {

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

void read_step_sweep(const json_object& top, step_scenario& sc) {
  const auto sw = top.get_optional_object("sweep");
  if (!sw) return;
  for (std::string_view name : step_axis_names()) {
    const std::string key(name);
    if (!sw->has(key)) continue;
    const json& v = sw->get_raw(key);
    sweep_axis a{key, {}};
    if (v.is_array()) {
      if (v.empty()) sw->fail(key, "expected a non-empty list of values");
      for (const auto& x : v) a.values.push_back(value_text(x));
    } else if (v.is_number() || v.is_string() || v.is_boolean()) {
      a.values.push_back(value_text(v));
    } else {
      sw->fail(key, "expected a value or a list of values, got " + describe_json(v));
    }
    sc.axes.push_back(std::move(a));
  }
  sw->finish();
}

// "sources": where each swept setting comes from (a recipe's file@tag), one non-empty string for
// each axis the sweep sets and for no other, so that neither outlives the other (docs/MOE.md §18).
void read_step_sources(const json_object& top, const step_scenario& sc) {
  const auto src = top.get_optional_object("sources");
  if (!src) return;
  for (const sweep_axis& a : sc.axes)
    if (!src->has(a.name)) src->fail_missing(a.name, "source of the swept setting");
  // Named, not a structured binding: clang (the sanitizer build) cannot capture a binding.
  for (const auto& item : src->raw().items()) {
    const std::string& key = item.key();
    const auto& v = item.value();
    const bool swept = std::any_of(sc.axes.begin(), sc.axes.end(),
                                   [&key](const sweep_axis& a) { return a.name == key; });
    if (!swept) src->fail(key, "names no axis of this file's sweep");
    if (!v.is_string() || v.get<std::string>().empty())
      src->fail(key, "expected a non-empty string (where the setting comes from)");
  }
}

}  // namespace

void apply_step_override(step_scenario& sc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string key = assignment.substr(0, eq);
  // An unknown axis is named before a bad value list, as long as the assignment has both sides.
  if (eq != std::string::npos && eq != 0 && eq + 1 < assignment.size() && !is_step_axis(key)) {
    std::string known;
    for (std::string_view n : step_axis_names())
      known += (known.empty() ? "" : ", ") + std::string(n);
    throw config_error("--set " + assignment + ": unknown step axis '" + key + "' (" + known + ")");
  }
  set_assignment set = parse_set_assignment(assignment);
  std::erase_if(sc.axes, [&set](const sweep_axis& a) { return a.name == set.key; });
  sc.axes.push_back({set.key, std::move(set.values)});
}

step_scenario load_step_scenario(const std::string& ref) {
  const std::string path = find_config("scenarios", ref, "--config");
  const json doc = load_json_file(path);
  const json_object top(doc, path, "");
  step_scenario sc;
  sc.file = path;
  top.get_string("comment", "");
  top.get_enum("scenario", {"step"});
  sc.model = top.get_string("model", sc.model);
  sc.gpu = top.get_string("gpu", "");
  sc.cluster = top.get_string("cluster", "");
  sc.bridge_config = top.get_string("bridge_config", "");
  if (!sc.bridge_config.empty() && !std::filesystem::path(sc.bridge_config).is_absolute())
    sc.bridge_config =
        (std::filesystem::path(path).parent_path() / sc.bridge_config).lexically_normal().string();
  sc.te_launch_ordering =
      parse_enum<launch_ordering>(top.get_enum("te_launch_ordering", {"auto", "on", "off"}, "auto"),
                                  top.where("te_launch_ordering"));
  read_step_sweep(top, sc);
  read_step_sources(top, sc);
  if (const auto m = top.get_optional_object("measure")) {
    sc.warmup = static_cast<int>(m->get_int("warmup", sc.warmup));
    sc.iters = static_cast<int>(m->get_positive_int("iters", sc.iters));
    if (sc.warmup < 0) m->fail("warmup", "expected a non-negative integer");
    m->finish();
  }
  top.finish();
  expand_step_cases(sc);  // every value parses now, naming the file
  return sc;
}

namespace {

void require(bool ok, const std::string& label, const std::string& why) {
  if (!ok) throw config_error(label + ": " + why);
}

std::string n(std::int64_t v) { return std::to_string(v); }

void check_tp(const step_scenario& sc, const step_config& c, const model_spec& m) {
  const std::string tp = axis_label(sc, "tp");
  const std::string of = " of " + m.name;
  require(m.heads % c.tp == 0, tp,
          n(c.tp) + " does not divide the " + n(m.heads) + " attention heads" + of);
  require(m.kv_heads % c.tp == 0, tp,
          n(c.tp) + " does not divide the " + n(m.kv_heads) + " query groups" + of);
  require(m.ffn_hidden % c.tp == 0, tp,
          n(c.tp) + " does not divide ffn_hidden_size " + n(m.ffn_hidden) + of);
  require(m.hidden % c.tp == 0, tp, n(c.tp) + " does not divide hidden_size " + n(m.hidden) + of);
}

// Megatron splits the layers evenly over pp x vp chunks; when they do not divide, counting the
// embedding and the loss as one layer each (account_for_embedding/loss_in_pipeline_split) may.
void check_layers(const step_scenario& sc, step_config& c, const model_spec& m) {
  c.layers_used = c.layers > 0 ? c.layers : static_cast<int>(m.layers);
  if (c.stage_layout) {
    check_pipeline_layout(*c.stage_layout, c.pp, c.vp, c.layers_used,
                          static_cast<int>(m.mtp_num_layers), axis_label(sc, "pipeline_layout"));
    return;
  }
  const int chunks = c.pp * c.vp;
  if (c.layers_used % chunks == 0 || (c.pp > 1 && (c.layers_used + 2) % chunks == 0)) return;
  throw config_error(axis_label(sc, c.vp > 1 ? "vp" : "pp") + ": pp x vp = " + n(chunks) +
                     " does not divide the " + n(c.layers_used) + " layers of " + m.name +
                     (c.layers > 0 ? " (--layers)" : "") +
                     " (nor the layers plus the embedding and the loss)");
}

// Megatron-Core's TransformerConfig: moe_shared_expert_overlap with the alltoall or the flex
// dispatcher only; a model without a shared expert has nothing to overlap.
void check_shared_overlap(const step_scenario& sc, const step_config& c, const model_spec& m) {
  if (!c.moe_shared_overlap) return;
  const std::string f = axis_label(sc, "moe_shared_overlap");
  require(m.moe.shared_ffn_hidden > 0, f,
          "model " + m.name + " has no shared expert (moe_shared_expert_intermediate_size)");
  require(c.dispatcher != moe_dispatcher::allgather, f,
          "moe_shared_expert_overlap works with the alltoall or the flex dispatcher only "
          "(--moe-dispatcher alltoall, deepep or hybridep)");
}

// Megatron-Core's and Bridge's preconditions of overlap_moe_expert_parallel_comm and
// delay_wgrad_compute (shared/reference/megatron_bridge_overlap.md §3, steps D and E), then what
// the planner models of it so far (docs/MOE.md §6).
void check_a2a_overlap(const step_scenario& sc, const step_config& c, const model_spec& m) {
  const std::string a2a = axis_label(sc, "moe_a2a_overlap");
  require(!c.delay_wgrad || c.moe_a2a_overlap, axis_label(sc, "delay_wgrad"),
          "delay_wgrad_compute needs overlap_moe_expert_parallel_comm (--moe-a2a-overlap on; "
          "Megatron-Bridge's rule)");
  if (!c.moe_a2a_overlap) return;
  // Megatron allows it; the planner does not lay those gathers out yet (docs/FSDP.md §1).
  require(!c.fsdp, a2a,
          "Megatron-Core runs Megatron-FSDP with overlap_moe_expert_parallel_comm (Megatron-LM "
          "PR #3797), but the step planner does not model the pair yet: use --fsdp off or "
          "--moe-a2a-overlap off");
  require(c.ep > 1, a2a, "overlap_moe_expert_parallel_comm needs expert_model_parallel_size > 1");
  require(c.dispatcher != moe_dispatcher::allgather, a2a,
          "overlap_moe_expert_parallel_comm needs the alltoall or the flex dispatcher "
          "(--moe-dispatcher alltoall, deepep or hybridep)");
  require(c.pp == 1 || c.vp > 1, a2a,
          "overlap_moe_expert_parallel_comm with pp > 1 needs virtual pipeline stages (--vp)");
  require(c.recompute != recompute_mode::full, a2a,
          "overlap_moe_expert_parallel_comm refuses full recomputation (--recompute full)");
  require(m.mtp_num_layers <= 1, a2a,
          "overlap_moe_expert_parallel_comm takes at most one MTP layer (mtp_num_layers)");
  require(!c.moe_shared_overlap, a2a,
          "overlap_moe_expert_parallel_comm refuses moe_shared_expert_overlap "
          "(--moe-shared-overlap off; Megatron-Bridge's rule)");
}

// Megatron-Core's TransformerConfig (the Megatron-LM that Megatron-Bridge v0.6.0 pins) takes
// moe_expert_rank_capacity_factor only with the hybridep (or ncclep) flex backend, and with
// hybridep only beside use_transformer_engine_op_fuser, the fused grouped MLP that reads the
// counts on the device. A busiest rank over the budget makes Megatron's paged-stash runner rerun
// the step without the budget, which the model does not plan (docs/MOE.md §21).
void check_rank_capacity(const step_scenario& sc, const step_config& c) {
  if (!c.sync_free_moe()) return;
  const std::string f = axis_label(sc, "moe_expert_rank_capacity_factor");
  require(c.dispatcher == moe_dispatcher::hybridep, f,
          "Megatron-Core takes moe_expert_rank_capacity_factor with the hybridep flex backend "
          "only (--moe-dispatcher hybridep)");
  require(c.te_op_fuser, f,
          "Megatron-Core takes moe_expert_rank_capacity_factor with hybridep only beside "
          "use_transformer_engine_op_fuser, whose fused grouped MLP reads the counts on the device "
          "(--use-transformer-engine-op-fuser on)");
  require(c.moe_capacity_factor == 0, f,
          "a per-expert capacity factor (drop-and-pad, --moe-capacity-factor) beside the rank "
          "budget is not modelled; set one of the two");
  require(c.moe_imbalance <= c.moe_expert_rank_capacity_factor, f,
          "the busiest rank's load over the mean (--moe-imbalance) passes the budget: "
          "Megatron's runner would rerun every step without it, which the model does not plan");
}

// Megatron-Core's TEGroupedMLP asserts its fused implementation is supported whenever
// use_transformer_engine_op_fuser is set (_is_fused_impl_supported: no expert TP, a GLU with
// NVTE_CUTEDSL_FUSED_GROUPED_MLP), and Transformer Engine fuses the grouped MLP only under an MXFP8
// or NVFP4 recipe on compute capability 10 (fuse_grouped_mlp_ops, is_supported); elsewhere TE
// would run its basic ops unfused, which the model does not plan (docs/MOE.md §21).
void check_op_fuser(const step_scenario& sc, const step_config& c, const model_spec& m,
                    const gpu_spec& gpu) {
  const std::string sms = axis_label(sc, "moe_flex_dispatcher_num_sms");
  require(c.flex_sms == 0 || c.dispatcher == moe_dispatcher::deepep ||
              c.dispatcher == moe_dispatcher::hybridep,
          sms, "the SMs of the flex dispatcher's kernels: --moe-dispatcher deepep or hybridep");
  require(c.flex_sms <= gpu.sm_count, sms,
          n(c.flex_sms) + " is more than the " + n(gpu.sm_count) + " SMs of " + gpu.name);
  if (!c.te_op_fuser) return;
  const std::string f = axis_label(sc, "use_transformer_engine_op_fuser");
  require(m.gated_mlp, f, "the fused grouped MLP needs a GLU expert MLP; " + m.name + " has none");
  require(c.etp == 1, f, "Megatron-Core's fused grouped MLP takes no expert tensor parallelism");
  const dtype type = c.type.value_or(m.type);
  require(type == dtype::mxfp8 || type == dtype::nvfp4, f,
          "Transformer Engine fuses the grouped MLP under mxfp8 or nvfp4 only, not " +
              std::string(to_string(type)));
  require(gpu.compute_capability_major == 10, f,
          "Transformer Engine's fused grouped MLP runs on compute capability 10 (Blackwell "
          "B200/GB200/B300/GB300), not " +
              gpu.name);
}

// Transformer Engine runs fp8 dot-product attention in its FusedAttention (cuDNN) backend only,
// under an fp8 recipe: per-tensor delayed scaling from compute capability 9.0, current scaling
// and MXFP8 from 10.0 only, NVFP4 not at all (get_attention_backend's FP8 filters); the GPU file
// must carry cuDNN's fp8 attention rates (docs/ARCHITECTURE.md §5.1, item 5).
void check_fp8_dpa(const step_scenario& sc, const step_config& c, const model_spec& m,
                   const gpu_spec& gpu) {
  if (!c.fp8_dpa) return;
  const std::string f = axis_label(sc, "fp8_dot_product_attention");
  const dtype type = c.type.value_or(m.type);
  require(type == dtype::fp8 || type == dtype::mxfp8, f,
          "fp8 attention needs the fp8 or mxfp8 recipe (Transformer Engine's fp8_dpa acts inside "
          "its fp8 autocast; TE runs none for nvfp4), not " +
              std::string(to_string(type)));
  require(m.attention == attention_backend::flash, f,
          "Transformer Engine runs fp8 attention in its fused (cuDNN) backend only; model " +
              m.name + " has attention_backend " + std::string(to_string(m.attention)));
  require(type == dtype::mxfp8 || c.scaling == fp8_scaling::delayed ||
              gpu.compute_capability_major >= 10,
          f,
          "Transformer Engine's fused fp8 attention with current scaling needs compute capability "
          "10 (Blackwell), not " +
              gpu.name);
  require(gpu.has_fp8_attention(type), f,
          "configs/gpus/" + gpu.name + ".json has no sim.flash_attention_efficiency." +
              (type == dtype::mxfp8 ? "mxfp8" : "fp8") + " (cuDNN's " +
              std::string(to_string(type)) + " attention rates; none measured for " +
              gpu.display_name + ")");
}

// Megatron-Core's rules for the expert layout (docs/MOE.md §2): the experts split evenly over
// EP, each expert's FFN over ETP, and ETP x EP x PP ranks tile the world (initialize_model_parallel
// refuses otherwise); EP beside TP needs sequence parallelism (arguments.py).
void check_experts(const step_scenario& sc, step_config& c, const model_spec& m) {
  const std::string ep = axis_label(sc, "ep"), etp = axis_label(sc, "etp");
  if (!m.moe.enabled()) {
    require(c.ep == 1, ep, "model " + m.name + " has no experts (num_moe_experts)");
    require(c.etp <= 1, etp, "model " + m.name + " has no experts (num_moe_experts)");
    require(c.moe_imbalance == 1.0, axis_label(sc, "moe_imbalance"),
            "model " + m.name + " has no experts (num_moe_experts)");
    require(!c.moe_a2a_overlap, axis_label(sc, "moe_a2a_overlap"),
            "model " + m.name + " has no experts (num_moe_experts)");
    require(!c.delay_wgrad, axis_label(sc, "delay_wgrad"),
            "model " + m.name + " has no experts (num_moe_experts)");
    require(c.dispatcher == moe_dispatcher::alltoall, axis_label(sc, "moe_dispatcher"),
            "model " + m.name + " has no experts (num_moe_experts)");
    require(!c.moe_shared_overlap, axis_label(sc, "moe_shared_overlap"),
            "model " + m.name + " has no experts (num_moe_experts)");
    require(c.moe_capacity_factor == 0, axis_label(sc, "moe_capacity_factor"),
            "model " + m.name + " has no experts (num_moe_experts)");
    require(!c.sync_free_moe(), axis_label(sc, "moe_expert_rank_capacity_factor"),
            "model " + m.name + " has no experts (num_moe_experts)");
    require(!c.te_op_fuser, axis_label(sc, "use_transformer_engine_op_fuser"),
            "model " + m.name + " has no experts (num_moe_experts)");
    require(c.flex_sms == 0, axis_label(sc, "moe_flex_dispatcher_num_sms"),
            "model " + m.name + " has no experts (num_moe_experts)");
    c.etp = 1;
    return;
  }
  if (c.etp == 0) c.etp = c.tp;
  require(m.moe.experts % c.ep == 0, ep,
          n(c.ep) + " does not divide the " + n(m.moe.experts) + " experts of " + m.name);
  require(
      m.moe.ffn_hidden % c.etp == 0, etp,
      n(c.etp) + " does not divide moe_ffn_hidden_size " + n(m.moe.ffn_hidden) + " of " + m.name);
  const int tile = c.etp * c.ep * c.pp;
  require(c.gpus % tile == 0, ep,
          "etp x ep x pp = " + n(c.etp) + " x " + n(c.ep) + " x " + n(c.pp) +
              " does not divide the " + n(c.gpus) +
              " GPUs (Megatron: each pipeline stage's ranks split into whole expert groups)");
  c.edp = c.gpus / tile;
  check_shared_overlap(sc, c, m);
  check_a2a_overlap(sc, c, m);
  check_rank_capacity(sc, c);
  require(c.moe_imbalance <= c.ep, axis_label(sc, "moe_imbalance"),
          "the busiest rank's load over the mean cannot pass ep = " + n(c.ep) +
              " (every token on one rank)");
  require(c.ep == 1 || c.tp == 1 || c.sequence_parallel, ep,
          "expert parallelism beside tp " + n(c.tp) +
              " needs sequence parallelism (Megatron-Core's rule; --sequence-parallel on)");
}

// Megatron-Core's TransformerConfig takes recompute_modules with selective granularity only, its
// default list being ["core_attn"]; a module the model lacks would change nothing, so it is
// refused rather than silently kept (docs/MEMORY.md §2.1).
void check_recompute(const step_scenario& sc, step_config& c, const model_spec& m) {
  const std::string f = axis_label(sc, "recompute_modules");
  if (c.recompute_modules != 0) {
    require(c.recompute != recompute_mode::full, f,
            "recompute_modules applies to selective recomputation, not --recompute full");
    c.recompute = recompute_mode::selective;
  } else if (c.recompute == recompute_mode::selective) {
    c.recompute_modules = static_cast<unsigned>(recompute_module::core_attn);
  }
  const auto has = [&](recompute_module r) { return c.recomputes(r); };
  require(!has(recompute_module::mla_up_proj) || m.mla.enabled, f,
          "mla_up_proj: model " + m.name + " has no multi-latent attention");
  const bool moe_module = has(recompute_module::moe_act) || has(recompute_module::moe) ||
                          has(recompute_module::shared_experts);
  require(!moe_module || m.moe.enabled(), f,
          "model " + m.name + " has no experts (moe_act, moe, shared_experts)");
  const dtype type = c.type.value_or(m.type);
  require(!c.fp8_param_gather || type == dtype::fp8 || type == dtype::mxfp8,
          axis_label(sc, "fp8_param_gather"),
          "fp8 parameters need --dtype fp8 or mxfp8, not " + std::string(to_string(type)));
  require(!has(recompute_module::moe) && !has(recompute_module::shared_experts), f,
          "moe and shared_experts are not modelled yet (core_attn, moe_act, layernorm, "
          "mla_up_proj and mlp are)");
  require(
      !has(recompute_module::mlp) || !m.moe.enabled() ||
          std::find(m.moe.layers.begin(), m.moe.layers.end(), false) != m.moe.layers.end(),
      f,
      "mlp: every layer of " + m.name + " is a MoE layer (the dense MLP is 'mlp', the MoE 'moe')");
}

// Megatron-Core's TransformerConfig (core_v0.17.0, __post_init__) on cuda_graph_scope: the MoE
// scopes on a model without experts, any graph beside CPU offloading, full recomputation with
// anything but a full-iteration graph. And what the model lacks: a full-iteration graph of a MoE
// layer needs the counts on the device (moe_expert_rank_capacity_factor, the sync-free
// dispatch), else the planner syncs the host for them (docs/MOE.md §16, §21).
void check_graphs(const step_scenario& sc, const step_config& c, const model_spec& m) {
  if (c.cuda_graph_scope == 0) return;
  const std::string f = axis_label(sc, "cuda_graph_scope");
  require(m.moe.enabled() ||
              (!c.graphs(graph_scope::moe_router) && !c.graphs(graph_scope::moe_preprocess)),
          f,
          "model " + m.name +
              " has no experts: moe_router and moe_preprocess graph a MoE layer "
              "(Megatron-Core: 'moe cuda graph is only supported for MoE')");
  require(c.cpu_offload_layers == 0, f,
          "Megatron-Core refuses CUDA graphs with CPU offloading (--cpu-offload-layers 0)");
  require(c.recompute != recompute_mode::full || c.graphs(graph_scope::full_iteration), f,
          "Megatron-Core takes full recomputation only with a full_iteration graph");
  require(!m.moe.enabled() || !c.graphs(graph_scope::full_iteration) || c.sync_free_moe(), f,
          "full_iteration of a MoE model needs the sync-free dispatch "
          "(--moe-expert-rank-capacity-factor F): without it each MoE layer syncs the host for "
          "its token counts, which a captured iteration cannot hold (docs/MOE.md §16, §21)");
}

// Megatron-Core's TransformerConfig refuses CPU offloading with pipeline parallelism, with
// activation recomputation and for as many layers as the model has (cpu_offloading_num_layers in
// 0 .. num_layers - 1); the copies need the host link's bandwidth from the cluster file.
void check_offload(const step_scenario& sc, const step_config& c, const cluster_spec& cluster) {
  if (c.cpu_offload_layers == 0) return;
  const std::string f = axis_label(sc, "cpu_offload_layers");
  require(c.cpu_offload_layers < c.layers_used, f,
          n(c.cpu_offload_layers) + " is not below the " + n(c.layers_used) +
              " layers (Megatron-Core: cpu_offloading_num_layers is 0 to num_layers - 1)");
  require(c.pp == 1, f, "Megatron-Core refuses CPU offloading with pipeline parallelism (pp 1)");
  require(c.recompute == recompute_mode::none, f,
          "Megatron-Core refuses CPU offloading with activation recomputation (--recompute none)");
  require(cluster.host_link_gbps > 0, f,
          "cluster " + cluster.name +
              " gives no host_link_gbps (the CPU-GPU link the copies use; a cluster file)");
}

void check_batch(const step_scenario& sc, step_config& c) {
  const int model_parallel = c.tp * c.pp * c.cp;
  require(c.gpus % model_parallel == 0, axis_label(sc, "gpus"),
          n(c.gpus) + " GPUs are not divisible by tp x pp x cp = " + n(model_parallel));
  c.dp = c.gpus / model_parallel;
  if (c.gbs == 0) c.gbs = c.mbs * c.dp;
  require(c.gbs % (c.mbs * c.dp) == 0, axis_label(sc, "gbs"),
          n(c.gbs) + " is not divisible by mbs x dp = " + n(c.mbs) + " x " + n(c.dp));
  c.microbatches = c.gbs / (c.mbs * c.dp);
  require(c.vp == 1 || c.microbatches % c.pp == 0, axis_label(sc, "gbs"),
          "the interleaved schedule needs micro-batches per pipeline (" + n(c.microbatches) +
              ") divisible by pp = " + n(c.pp));
}

// What Megatron-LM of mid-2022 had (NVIDIA/Megatron-LM @d898a89; docs/ARCHITECTURE.md §9.3): no
// Transformer Engine (fp16 or bf16 only, no userbuffers), no overlapped gradient reduction, no
// overlap_p2p_comm, no CP, FSDP, offloading or modelled MoE; and its arguments.py accumulates
// bf16 gradients in fp32 and fuses the accumulation into the wgrad GEMM only then.
void check_megatron_2022(const step_scenario& sc, const step_config& c, const model_spec& m) {
  if (!c.megatron_2022) return;
  const std::string f = axis_label(sc, "megatron_2022") + ": Megatron-LM 2022 ";
  const dtype t = c.type.value_or(m.type);
  require(t == dtype::fp16 || t == dtype::bf16, f + "trains in fp16 or bf16", "set --dtype");
  require(!c.tp_overlap, f + "has no Transformer Engine userbuffers", "set --tp-overlap off");
  require(!c.dp_overlap, f + "reduces gradients after the backward", "set --dp-overlap off");
  require(!c.pp_overlap || c.vp == 1, f + "has no overlap_p2p_comm", "set --pp-overlap off");
  require(c.cp == 1 && !c.fsdp && c.cpu_offload_layers == 0 && m.moe.experts == 0,
          f + "is modelled without CP, FSDP, offloading and experts", "leave them out");
  require(t != dtype::bf16 || c.grad_reduce_in_fp32, f + "accumulates bf16 gradients in fp32",
          "set grad_reduce_in_fp32 on");
  require(!c.grad_accum_fusion || c.grad_reduce_in_fp32,
          f + "fuses gradient accumulation only into fp32 main grads",
          "set --grad-accum-fusion off or grad_reduce_in_fp32 on");
}

// Context parallelism splits each sequence into 2 x cp chunks (the load-balanced split) and runs
// a fused kernel on them (docs/ARCHITECTURE.md §9.3); a2a scatters each TP rank's heads over CP,
// which Transformer Engine asserts divides both the query and the KV heads.
void check_cp(const step_scenario& sc, const step_config& c, const model_spec& m) {
  const std::string h = axis_label(sc, "hierarchical_context_parallel_sizes");
  require(c.cp_a2a == 0 || c.cp_a2a * c.cp_p2p == c.cp, h,
          n(c.cp_a2a) + " x " + n(c.cp_p2p) + " is not cp = " + n(c.cp) +
              " (Megatron-Core asserts the product)");
  if (c.cp == 1) return;
  const int seq = c.seq > 0 ? c.seq : static_cast<int>(m.seq_length);
  require(seq % (2 * c.cp) == 0, axis_label(sc, "seq"),
          n(seq) + " is not divisible by 2 x cp = " + n(2 * c.cp) +
              " (context parallelism splits each sequence into 2 x cp chunks)");
  require(fused_attention(m.attention), axis_label(sc, "cp"),
          "context parallelism (cp " + n(c.cp) + ") needs attention_backend flash; model " +
              m.name + " is unfused");
  require(c.cp_comm_type != cp_comm::a2a_p2p || c.cp_a2a > 0, axis_label(sc, "cp_comm_type"),
          "a2a+p2p needs hierarchical_context_parallel_sizes (--hierarchical-context-parallel-"
          "sizes A+P: the all-to-all level, then the ring level)");
  const int a2a = c.cp_comm_type == cp_comm::a2a       ? c.cp
                  : c.cp_comm_type == cp_comm::a2a_p2p ? c.cp_a2a
                                                       : 1;
  if (a2a == 1) return;  // no heads scattered (check_layers has TP dividing them)
  const std::int64_t kv = m.mla.enabled ? m.heads : m.kv_heads;
  for (const auto& [what, heads] : {std::pair{"attention heads", m.heads}, {"KV heads", kv}})
    require(heads % c.tp == 0 && (heads / c.tp) % a2a == 0, axis_label(sc, "cp_comm_type"),
            std::string(c.cp_comm_type == cp_comm::a2a ? "a2a" : "a2a+p2p") +
                " scatters each TP rank's heads over " + (a2a == c.cp ? "CP" : "its a2a level") +
                ": " + what + " " + n(heads) + " / tp " + n(c.tp) + " = " + n(heads / c.tp) +
                " is not divisible by " + (a2a == c.cp ? "cp " : "") + n(a2a));
}

}  // namespace

void check_step(const step_scenario& sc, step_config& c, const model_spec& m, const gpu_spec& gpu,
                const cluster_spec& cluster) {
  require(c.vp == 1 || c.pp > 1, axis_label(sc, "vp"),
          "virtual pipeline stages (vp = " + n(c.vp) + ") need pp > 1");
  check_tp(sc, c, m);
  check_layers(sc, c, m);
  check_batch(sc, c);
  check_experts(sc, c, m);
  if (m.moe.enabled()) check_op_fuser(sc, c, m, gpu);
  check_fp8_dpa(sc, c, m, gpu);
  check_recompute(sc, c, m);
  check_offload(sc, c, cluster);
  check_graphs(sc, c, m);
  check_megatron_2022(sc, c, m);
  check_cp(sc, c, m);
  const int seq = c.seq > 0 ? c.seq : static_cast<int>(m.seq_length);
  if (c.tp == 1) c.sequence_parallel = false;  // nothing to shard over
  require(!c.sequence_parallel || (static_cast<std::int64_t>(seq) * c.mbs / c.cp) % c.tp == 0,
          axis_label(sc, "seq"), "seq x mbs / cp is not divisible by tp = " + n(c.tp));
  gpu.require(c.type.value_or(m.type), axis_label(sc, "dtype"));
  const int per_node = c.nvlink_domain > 0   ? c.nvlink_domain
                       : c.gpus_per_node > 0 ? c.gpus_per_node
                                             : cluster.nvlink_domain;
  require(!(c.tp_overlap && c.tp > 1 && c.sequence_parallel && c.tp > per_node),
          axis_label(sc, "tp"),
          n(c.tp) + " spans nodes of " + n(per_node) +
              " GPUs: Transformer Engine's userbuffers need the TP group in one NVLink domain "
              "(set --tp-overlap off)");
}

}  // namespace ob
