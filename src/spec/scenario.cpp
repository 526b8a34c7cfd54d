#include "spec/scenario.hpp"

#include <algorithm>
#include <filesystem>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "base/units.hpp"

namespace ob {
namespace {

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

bool parse_bool(const std::string& text, const std::string& where) {
  if (text == "true" || text == "1" || text == "on") return true;
  if (text == "false" || text == "0" || text == "off") return false;
  throw config_error(where + ": expected true or false, got '" + text + "'");
}

sweep_axis& axis_mut(layer_scenario& sc, std::string_view name) {
  for (auto& a : sc.axes)
    if (a.name == name) return a;
  sc.axes.push_back({std::string(name), {}});
  return sc.axes.back();
}

void set_passes(layer_scenario& sc, const std::vector<std::string>& passes,
                const std::string& where) {
  sc.forward = sc.backward = false;
  for (const auto& p : passes) {
    if (p == "fwd")
      sc.forward = true;
    else if (p == "bwd")
      sc.backward = true;
    else
      throw config_error(where + ": unknown pass '" + p + "' (expected fwd, bwd)");
  }
  if (!sc.forward && !sc.backward) throw config_error(where + ": no pass selected");
}

}  // namespace

const sweep_axis& axis(const layer_scenario& sc, std::string_view name) {
  for (const auto& a : sc.axes)
    if (a.name == name) return a;
  throw config_error(sc.file + ": sweep." + std::string(name) + ": axis missing");
}

namespace {

void read_parallel(const json_object& top, layer_scenario& sc) {
  const auto par = top.get_optional_object("parallel");
  if (!par) return;
  // The bounds of --set tp/cp/dp/pp (field_table below).
  sc.layout.tp = static_cast<int>(par->get_int_in("tp", 1, 1024, 1));
  sc.layout.cp = static_cast<int>(par->get_int_in("cp", 1, 1024, 1));
  sc.layout.dp = static_cast<int>(par->get_int_in("dp", 1, 1 << 20, 1));
  sc.layout.pp = static_cast<int>(par->get_int_in("pp", 1, 1024, 1));
  sc.layout.sequence_parallel = par->get_bool("sequence_parallel", true);
  par->finish();
}

// A Bridge config path is relative to the scenario file that names it.
void read_overlap(const json_object& top, layer_scenario& sc) {
  const auto ov = top.get_optional_object("overlap");
  if (!ov) return;
  sc.preset = ov->get_string("preset", "");
  sc.bridge_config = ov->get_string("bridge_config", "");
  if (!sc.bridge_config.empty() && !std::filesystem::path(sc.bridge_config).is_absolute())
    sc.bridge_config = (std::filesystem::path(sc.file).parent_path() / sc.bridge_config)
                           .lexically_normal()
                           .string();
  ov->finish();
}

void read_passes(const json_object& top, layer_scenario& sc) {
  if (!top.has("passes")) return;
  const json& p = top.get_raw("passes");
  if (!p.is_array()) top.fail("passes", "expected a list such as [\"fwd\", \"bwd\"]");
  std::vector<std::string> passes;
  for (const auto& v : p) passes.push_back(value_text(v));
  set_passes(sc, passes, top.where("passes"));
}

// Defaults for every axis, so a scenario lists only what it sweeps.
void read_sweep(const json_object& top, layer_scenario& sc) {
  sc.axes.clear();
  for (const layer_axis& a : layer_axes)
    sc.axes.push_back({std::string(a.name), {std::string(a.default_value)}});
  const auto sw = top.get_optional_object("sweep");
  if (!sw) return;
  std::vector<std::string_view> names(std::begin(sweep_axis_names), std::end(sweep_axis_names));
  names.insert(names.end(), std::begin(nccl_axis_names), std::end(nccl_axis_names));
  for (std::string_view axis_name : names) {
    const std::string name(axis_name);
    if (!sw->has(name)) continue;
    const json& v = sw->get_raw(name);
    if (!v.is_array() || v.empty())
      sw->fail(name, "expected a non-empty list of values, got " + describe_json(v));
    auto& a = axis_mut(sc, name);
    a.values.clear();
    for (const auto& x : v) a.values.push_back(value_text(x));
  }
  sw->finish();
}

void read_measure(const json_object& top, layer_scenario& sc) {
  const auto m = top.get_optional_object("measure");
  if (!m) return;
  sc.warmup = static_cast<int>(m->get_int_in("warmup", 0, 1 << 20, sc.warmup));
  sc.iters = static_cast<int>(m->get_int_in("iters", 1, 1 << 20, sc.iters));
  sc.graphs = m->get_bool("graphs", false);
  m->finish();
}

// `--set field=value` for the fields that are not sweep axes: how each is parsed and set.
using field_setter = void (*)(layer_scenario&, const std::vector<std::string>&,
                              const std::string& where);
struct field_row {
  std::string_view key;
  field_setter set;
};

const std::string& single(const std::vector<std::string>& values, const std::string& where) {
  if (values.size() != 1) throw config_error(where + ": not a sweep axis; give one value");
  return values.front();
}

constexpr field_row field_table[] = {
    {"gpu", [](layer_scenario& sc, const auto& v, const auto& k) { sc.gpu = single(v, k); }},
    {"model", [](layer_scenario& sc, const auto& v, const auto& k) { sc.model = single(v, k); }},
    {"preset", [](layer_scenario& sc, const auto& v, const auto& k) { sc.preset = single(v, k); }},
    {"tp", [](layer_scenario& sc, const auto& v,
              const auto& k) { sc.layout.tp = parse_int_in(single(v, k), k, 1, 1024); }},
    {"cp", [](layer_scenario& sc, const auto& v,
              const auto& k) { sc.layout.cp = parse_int_in(single(v, k), k, 1, 1024); }},
    {"dp", [](layer_scenario& sc, const auto& v,
              const auto& k) { sc.layout.dp = parse_int_in(single(v, k), k, 1, 1 << 20); }},
    {"pp", [](layer_scenario& sc, const auto& v,
              const auto& k) { sc.layout.pp = parse_int_in(single(v, k), k, 1, 1024); }},
    {"sequence_parallel",
     [](layer_scenario& sc, const auto& v, const auto& k) {
       sc.layout.sequence_parallel = parse_bool(single(v, k), k);
     }},
    {"micro_batch",
     [](layer_scenario& sc, const auto& v, const auto& k) {
       sc.micro_batch = parse_int_in(single(v, k), k, 1, 1 << 16);
     }},
    {"seq_length",
     [](layer_scenario& sc, const auto& v, const auto& k) {
       sc.seq_length = parse_int_in(single(v, k), k, 1, 1 << 24);
     }},
    {"layernorm_sm_margin",
     [](layer_scenario& sc, const auto& v, const auto& k) {
       sc.layernorm_sm_margin = parse_int_in(single(v, k), k, 0, 1024);
     }},
    {"te_launch_ordering",
     [](layer_scenario& sc, const auto& v, const auto& k) {
       sc.te_launch_ordering = parse_enum<launch_ordering>(single(v, k), k);
     }},
    {"passes", [](layer_scenario& sc, const auto& v, const auto& k) { set_passes(sc, v, k); }},
    {"iters", [](layer_scenario& sc, const auto& v,
                 const auto& k) { sc.iters = parse_int_in(single(v, k), k, 1, 1 << 20); }},
    {"warmup", [](layer_scenario& sc, const auto& v,
                  const auto& k) { sc.warmup = parse_int_in(single(v, k), k, 0, 1 << 20); }},
};

std::string known_keys() {
  std::string fields;
  for (const field_row& r : field_table)
    fields += (fields.empty() ? "" : ", ") + std::string(r.key);
  return "axes: " + sweep_axis_list() + "; fields: " + fields;
}

}  // namespace

std::string scenario_kind(const std::string& ref) {
  const std::string path = find_config("scenarios", ref, "--config");
  const json doc = load_json_file(path);
  if (!doc.is_object() || !doc.contains("scenario") || !doc["scenario"].is_string())
    throw config_error(path +
                       ": scenario: required field is missing (expected \"layer\" or "
                       "\"step\")");
  return doc["scenario"].get<std::string>();
}

layer_scenario load_layer_scenario(const std::string& ref) {
  const std::string path = find_config("scenarios", ref, "--config");
  const json doc = load_json_file(path);
  const json_object top(doc, path, "");
  layer_scenario sc;
  sc.file = path;
  top.get_string("comment", "");
  top.get_enum("scenario", {"layer"});
  sc.gpu = top.get_string("gpu", sc.gpu);
  sc.model = top.get_string("model", sc.model);
  read_parallel(top, sc);
  if (top.has("micro_batch")) sc.micro_batch = top.get_int_in("micro_batch", 1, 1 << 16);
  if (top.has("seq_length")) sc.seq_length = top.get_int_in("seq_length", 1, 1 << 24);
  read_overlap(top, sc);
  sc.layernorm_sm_margin = static_cast<int>(top.get_int_in("layernorm_sm_margin", 0, 1024, 0));
  sc.te_launch_ordering =
      parse_enum<launch_ordering>(top.get_enum("te_launch_ordering", {"auto", "on", "off"}, "auto"),
                                  top.where("te_launch_ordering"));
  read_passes(top, sc);
  read_sweep(top, sc);
  read_measure(top, sc);
  top.finish();
  expand_cases(sc);  // validates every axis value now, naming the file
  return sc;
}

void apply_override(layer_scenario& sc, const std::string& assignment) {
  const auto [key, values] = parse_set_assignment(assignment);
  if (is_sweep_axis(key)) {
    // Checked here so that a bad value names --set, not the scenario file.
    expand_axes({{key, values}}, "--set ", plan_knobs{});
    axis_mut(sc, key).values = values;
    return;
  }
  for (const field_row& r : field_table)
    if (r.key == key) return r.set(sc, values, "--set " + key);
  throw config_error("--set " + assignment + ": unknown key '" + key + "' (" + known_keys() + ")");
}

std::vector<sweep_case> expand_cases(const layer_scenario& sc) {
  std::vector<sweep_axis> axes;
  for (std::string_view name : sweep_axis_names) axes.push_back(axis(sc, name));
  // NCCL's axes only where given, so other sweeps keep their case ids.
  for (std::string_view name : nccl_axis_names)
    for (const sweep_axis& a : sc.axes)
      if (a.name == name) axes.push_back(a);
  plan_knobs base;
  base.layernorm_sm_margin = sc.layernorm_sm_margin;
  base.forward = sc.forward;
  base.backward = sc.backward;
  return expand_axes(axes, sc.file + ": sweep.", base);
}

std::string default_scenario_path() {
  return find_config("scenarios", "default_layer", "--config");
}

}  // namespace ob
