#include "core/scenario.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "core/config_paths.hpp"
#include "core/error.hpp"

namespace ob {
namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t cut = s.find(sep, start);
    out.emplace_back(s.substr(start, cut - start));
    if (cut == std::string_view::npos) break;
    start = cut + 1;
  }
  return out;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

int parse_int(const std::string& text, const std::string& where, int lo, int hi) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
    throw config_error(where + ": expected an integer, got '" + text + "'");
  if (v < lo || v > hi)
    throw config_error(where + ": " + text + " is out of range [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "]");
  return v;
}

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

const std::vector<std::string> method_values = {"preset", "te_default", "none"};

}  // namespace

const sweep_axis& axis(const layer_scenario& sc, std::string_view name) {
  for (const auto& a : sc.axes)
    if (a.name == name) return a;
  throw config_error(sc.file + ": sweep." + std::string(name) + ": axis missing");
}

layer_scenario load_layer_scenario(const std::string& ref) {
  const std::string path = find_config("scenarios", ref, "--config");
  const json doc = load_json_file(path);
  const json_object top(doc, path, "");
  layer_scenario sc;
  sc.file = path;
  top.get_string("comment", "");
  const std::string kind = top.get_enum("scenario", {"layer"});
  (void)kind;
  sc.gpu = top.get_string("gpu", sc.gpu);
  sc.model = top.get_string("model", sc.model);
  if (auto par = top.get_optional_object("parallel")) {
    sc.layout.tp = static_cast<int>(par->get_positive_int("tp", 1));
    sc.layout.cp = static_cast<int>(par->get_positive_int("cp", 1));
    sc.layout.dp = static_cast<int>(par->get_positive_int("dp", 1));
    sc.layout.pp = static_cast<int>(par->get_positive_int("pp", 1));
    sc.layout.sequence_parallel = par->get_bool("sequence_parallel", true);
    par->finish();
  }
  if (top.has("micro_batch")) sc.micro_batch = top.get_positive_int("micro_batch");
  if (top.has("seq_length")) sc.seq_length = top.get_positive_int("seq_length");
  if (auto ov = top.get_optional_object("overlap")) {
    sc.preset = ov->get_string("preset", "");
    sc.bridge_config = ov->get_string("bridge_config", "");
    if (!sc.bridge_config.empty() && !std::filesystem::path(sc.bridge_config).is_absolute())
      sc.bridge_config = (std::filesystem::path(path).parent_path() / sc.bridge_config)
                             .lexically_normal()
                             .string();
    ov->finish();
  }
  sc.layernorm_sm_margin = static_cast<int>(top.get_int("layernorm_sm_margin", 0));
  if (sc.layernorm_sm_margin < 0)
    top.fail("layernorm_sm_margin", "expected a non-negative integer");
  sc.te_launch_ordering = top.get_enum("te_launch_ordering", {"auto", "on", "off"}, "auto");
  if (top.has("passes")) {
    const json& p = top.get_raw("passes");
    if (!p.is_array()) top.fail("passes", "expected a list such as [\"fwd\", \"bwd\"]");
    std::vector<std::string> passes;
    for (const auto& v : p) passes.push_back(value_text(v));
    set_passes(sc, passes, top.where("passes"));
  }
  // Defaults for every axis, so a scenario lists only what it sweeps.
  sc.axes = {{"cdmc", {"8"}},           {"method", {"preset"}}, {"order", {"comm_first"}},
             {"sm_margin", {"preset"}}, {"comm_ctas", {"0"}},   {"priority", {"comm_high"}}};
  if (auto sw = top.get_optional_object("sweep")) {
    for (const char* name : layer_axis_names) {
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
  if (auto m = top.get_optional_object("measure")) {
    sc.warmup = static_cast<int>(m->get_int("warmup", sc.warmup));
    sc.iters = static_cast<int>(m->get_positive_int("iters", sc.iters));
    sc.graphs = m->get_bool("graphs", false);
    if (sc.warmup < 0) m->fail("warmup", "expected a non-negative integer");
    m->finish();
  }
  top.finish();
  expand_cases(sc);  // validates every axis value now, naming the file
  return sc;
}

void apply_override(layer_scenario& sc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string where = "--set " + assignment;
  if (eq == std::string::npos || eq == 0 || eq + 1 == assignment.size())
    throw config_error(where + ": expected key=value[,value...]");
  const std::string key = assignment.substr(0, eq);
  const std::vector<std::string> values = split(assignment.substr(eq + 1), ',');
  for (const auto& v : values)
    if (v.empty()) throw config_error(where + ": empty value in list");
  for (const char* name : layer_axis_names) {
    if (key == name) {
      axis_mut(sc, key).values = values;
      return;
    }
  }
  auto single = [&]() -> const std::string& {
    if (values.size() != 1)
      throw config_error(where + ": '" + key + "' is not a sweep axis; give one value");
    return values.front();
  };
  const std::string k = "--set " + key;
  if (key == "gpu")
    sc.gpu = single();
  else if (key == "model")
    sc.model = single();
  else if (key == "preset")
    sc.preset = single();
  else if (key == "tp")
    sc.layout.tp = parse_int(single(), k, 1, 1024);
  else if (key == "cp")
    sc.layout.cp = parse_int(single(), k, 1, 1024);
  else if (key == "dp")
    sc.layout.dp = parse_int(single(), k, 1, 1 << 20);
  else if (key == "pp")
    sc.layout.pp = parse_int(single(), k, 1, 1024);
  else if (key == "sequence_parallel")
    sc.layout.sequence_parallel = parse_bool(single(), k);
  else if (key == "micro_batch")
    sc.micro_batch = parse_int(single(), k, 1, 1 << 16);
  else if (key == "seq_length")
    sc.seq_length = parse_int(single(), k, 1, 1 << 24);
  else if (key == "layernorm_sm_margin")
    sc.layernorm_sm_margin = parse_int(single(), k, 0, 1024);
  else if (key == "te_launch_ordering") {
    const std::string v = single();
    if (v != "auto" && v != "on" && v != "off")
      throw config_error(k + ": expected auto, on or off, got '" + v + "'");
    sc.te_launch_ordering = v;
  } else if (key == "iters")
    sc.iters = parse_int(single(), k, 1, 1 << 20);
  else if (key == "warmup")
    sc.warmup = parse_int(single(), k, 0, 1 << 20);
  else if (key == "passes")
    set_passes(sc, values, k);
  else {
    std::string known;
    for (const char* n : layer_axis_names) known += std::string(known.empty() ? "" : ", ") + n;
    throw config_error(
        where + ": unknown key '" + key + "' (axes: " + known +
        "; fields: gpu, model, preset, tp, cp, dp, pp, sequence_parallel, "
        "micro_batch, seq_length, layernorm_sm_margin, te_launch_ordering, passes, iters, "
        "warmup)");
  }
}

std::vector<layer_case> expand_cases(const layer_scenario& sc) {
  std::vector<sweep_axis> axes;
  for (const char* name : layer_axis_names) axes.push_back(axis(sc, name));
  plan_knobs base;
  base.layernorm_sm_margin = sc.layernorm_sm_margin;
  base.forward = sc.forward;
  base.backward = sc.backward;
  return expand_axes(axes, sc.file + ": sweep.", base);
}

std::vector<layer_case> expand_axes(const std::vector<sweep_axis>& axes, const std::string& where,
                                    const plan_knobs& base) {
  std::vector<layer_case> cases;
  std::vector<std::size_t> idx(axes.size(), 0);
  for (const auto& a : axes)
    if (a.values.empty()) throw config_error(where + a.name + ": no values");
  while (true) {
    layer_case c;
    c.knobs = base;
    c.params = ordered_json::object();
    for (std::size_t a = 0; a < axes.size(); ++a) {
      const std::string& name = axes[a].name;
      const std::string& v = axes[a].values[idx[a]];
      const std::string field = where + name;
      if (name == "cdmc") {
        c.cdmc = parse_int(v, field, 1, 32);
        c.params[name] = c.cdmc;
      } else if (name == "method") {
        if (std::find(method_values.begin(), method_values.end(), v) == method_values.end())
          throw config_error(field + ": unknown method '" + v +
                             "' (expected preset, te_default or none)");
        c.method = v;
        c.params[name] = v;
      } else if (name == "order") {
        c.knobs.order = parse_enum<launch_order>(v, field);
        c.params[name] = v;
      } else if (name == "sm_margin") {
        if (v == "preset") {
          c.params[name] = v;
        } else {
          c.knobs.sm_margin = parse_int(v, field, 0, 1024);
          c.params[name] = *c.knobs.sm_margin;
        }
      } else if (name == "comm_ctas") {
        c.knobs.comm_ctas = parse_int(v, field, 0, 1024);
        c.params[name] = c.knobs.comm_ctas;
      } else if (name == "priority") {
        c.knobs.priority = parse_enum<priority_mode>(v, field);
        c.params[name] = v;
      } else {
        throw config_error(field + ": unknown sweep axis");
      }
      c.id += (c.id.empty() ? "" : ",") + name + "=" + v;
    }
    cases.push_back(std::move(c));
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

std::string default_scenario_path() {
  return find_config("scenarios", "default_layer", "--config");
}

}  // namespace ob
