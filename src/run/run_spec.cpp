#include "run/run_spec.hpp"

#include <filesystem>

#include "base/error.hpp"
#include "plan/plan.hpp"
#include "spec/presets.hpp"

namespace ob {
namespace {

// What "preset" means for the run: a named userbuffers preset, or what a Bridge config
// resolves to (run uses the same resolver as `resolve`).
struct overlap_source {
  bool tp_overlap = true;
  std::optional<tp_overlap_layer> layer;  // nullopt: Transformer Engine's defaults
  std::optional<bridge_resolution> bridge;
};

overlap_source load_overlap_source(const layer_scenario& sc) {
  overlap_source src;
  if (!sc.bridge_config.empty()) {
    if (!std::filesystem::is_regular_file(sc.bridge_config))
      throw config_error(sc.file + ": overlap.bridge_config: file '" + sc.bridge_config +
                         "' not found");
    bridge_resolution res = resolve_bridge_file(sc.bridge_config);
    if (res.has_errors())
      throw config_error(sc.bridge_config +
                         ": the Bridge config does not resolve: " + res.errors.front().message +
                         " (overlap-bench resolve --input " + sc.bridge_config + ")");
    src.tp_overlap = res.tp_comm_overlap;
    src.layer = res.tp_comm_overlap_cfg;
    src.bridge = std::move(res);
  } else if (!sc.preset.empty()) {
    src.layer = load_preset(sc.preset, sc.file + ": overlap.preset").gemms;
  }
  return src;
}

// A Bridge config describes the layout it trains with: it wins over the scenario's, so the run
// benchmarks what Bridge would run. DP is not part of a Bridge model section and stays.
parallel_layout resolve_layout(const layer_scenario& sc, const overlap_source& src) {
  parallel_layout l = sc.layout;
  if (!src.bridge) return l;
  const bridge_model_input& in = src.bridge->input;
  l.tp = static_cast<int>(in.tp);
  l.cp = static_cast<int>(in.cp);
  l.pp = static_cast<int>(in.pp);
  l.sequence_parallel = in.sequence_parallel;
  return l;
}

// The scenario's model file, its micro-batch and sequence overrides, then the Bridge config's
// model shape, which wins.
model_spec resolve_model(const layer_scenario& sc, const overlap_source& src) {
  model_spec m = load_model_spec(sc.model, sc.file + ": model");
  require_dense_planner_support(m, sc.file + ": model");
  if (sc.micro_batch) m.micro_batch = *sc.micro_batch;
  if (sc.seq_length) m.seq_length = *sc.seq_length;
  if (!src.bridge) return m;
  const bridge_model_input& in = src.bridge->input;
  const auto take = [&](const std::optional<std::int64_t>& v, const char* key,
                        std::int64_t& field) {
    if (!v) return;
    if (*v <= 0)
      throw config_error(sc.bridge_config + ": model." + key +
                         ": expected a positive integer, got " + std::to_string(*v));
    field = *v;
  };
  take(in.hidden_size, "hidden_size", m.hidden);
  take(in.ffn_hidden_size, "ffn_hidden_size", m.ffn_hidden);
  take(in.num_attention_heads, "num_attention_heads", m.heads);
  take(in.num_query_groups, "num_query_groups", m.kv_heads);
  take(in.seq_length, "seq_length", m.seq_length);
  if (in.micro_batch_size) m.micro_batch = *in.micro_batch_size;
  if (in.fp8) m.type = dtype::fp8;
  if (m.kv_heads > m.heads || m.heads % m.kv_heads != 0) m.kv_heads = m.heads;
  return m;
}

// What the scenario asks for that the layer model does not capture, or that does not match.
std::vector<std::string> scenario_warnings(const layer_scenario& sc, const run_spec& r) {
  std::vector<std::string> w;
  const std::string where = sc.file + ": ";
  if (r.layout.pp > 1 || r.layout.dp > 1)
    w.push_back(where + "not_modelled: the layer scenario runs one TP group; pp=" +
                std::to_string(r.layout.pp) + " and dp=" + std::to_string(r.layout.dp) +
                " add no pipeline or data-parallel communication");
  if (r.layout.cp > 1)
    w.push_back(where + "not_modelled: cp=" + std::to_string(r.layout.cp) +
                " divides the tokens, but context-parallel communication is not modelled");
  if (sc.layernorm_sm_margin > 0)
    w.push_back(where +
                "layernorm_sm_margin leaves SMs for DP collectives, and the layer "
                "scenario has none: it can only cost time here");
  if (!sc.preset.empty()) {
    preset_run_shape shape;
    shape.hidden = r.model.hidden;
    shape.seq_length = r.model.seq_length;
    shape.micro_batch = r.model.micro_batch;
    shape.tp = r.layout.tp;
    shape.cp = r.layout.cp;
    shape.dtype = std::string(to_string(r.model.type));
    shape.gpu = r.gpu.name;
    const userbuffers_preset p = load_preset(sc.preset, sc.file + ": overlap.preset");
    for (const std::string& m : preset_mismatches(p, shape))
      w.push_back(where + "preset_mismatch: " + m);
  }
  return w;
}

layer_workload make_workload(const layer_scenario& sc, const run_spec& r) {
  try {
    return make_layer_workload(r.model, r.layout);
  } catch (const config_error& e) {
    throw config_error(sc.file + ": parallel.tp/cp vs model " + r.model.name + ": " + e.what());
  }
}

std::vector<sweep_case> resolve_cases(const layer_scenario& sc, const gpu_spec& gpu) {
  std::vector<sweep_case> cases = expand_cases(sc);
  for (sweep_case& c : cases) {
    c.knobs.te_launch_ordering =
        te_launch_ordering_applies(sc.te_launch_ordering, gpu, c.cdmc, c.method);
    c.params["te_launch_ordering"] = c.knobs.te_launch_ordering;
  }
  return cases;
}

ordered_json preset_methods_json(const slot_overlap_map& methods) {
  ordered_json out = ordered_json::object();
  for (const auto& [slot, m] : methods)
    out[slot] = {{"method", to_string(m.method)},
                 {"num_sm", m.num_sm},
                 {"set_sm_margin", m.set_sm_margin},
                 {"num_splits", m.num_splits}};
  return out;
}

ordered_json run_config(const layer_scenario& sc, const run_spec& r) {
  const model_spec& m = r.model;
  ordered_json cfg;
  cfg["scenario_file"] = sc.file;
  cfg["scenario"] = "layer";
  cfg["gpu"] = r.gpu.name;
  cfg["model"] = {{"name", m.name},
                  {"hidden", m.hidden},
                  {"ffn_hidden", m.ffn_hidden},
                  {"heads", m.heads},
                  {"kv_heads", m.kv_heads},
                  {"seq_length", m.seq_length},
                  {"micro_batch", m.micro_batch},
                  {"dtype", to_string(m.type)}};
  cfg["parallel"] = {{"tp", r.layout.tp},
                     {"cp", r.layout.cp},
                     {"dp", r.layout.dp},
                     {"pp", r.layout.pp},
                     {"sequence_parallel", r.layout.sequence_parallel}};
  cfg["preset"] = sc.preset;
  if (r.bridge) cfg["bridge_resolved"] = r.bridge->to_json();
  cfg["tp_comm_overlap"] = r.tp_overlap;
  cfg["passes"] = ordered_json::array();
  if (sc.forward) cfg["passes"].push_back("fwd");
  if (sc.backward) cfg["passes"].push_back("bwd");
  cfg["layernorm_sm_margin"] = sc.layernorm_sm_margin;
  cfg["te_launch_ordering"] = to_string(sc.te_launch_ordering);
  cfg["preset_methods"] = preset_methods_json(r.overlap.preset);
  ordered_json axes = ordered_json::object();
  for (const auto& a : sc.axes) axes[a.name] = a.values;
  cfg["sweep"] = axes;
  return cfg;
}

}  // namespace

const slot_overlap_map& overlap_per_setting::of(overlap_setting s) const {
  switch (s) {
    case overlap_setting::preset:
      return preset;
    case overlap_setting::te_default:
      return te_default;
    case overlap_setting::none:
      break;
  }
  return none;
}

bool te_launch_ordering_applies(launch_ordering mode, const gpu_spec& gpu, int cdmc,
                                overlap_setting method) {
  if (method == overlap_setting::none) return false;
  if (mode == launch_ordering::on) return true;
  return mode == launch_ordering::automatic && gpu.compute_capability_major == 9 && cdmc > 1;
}

run_spec resolve_run(const layer_scenario& sc) {
  const overlap_source src = load_overlap_source(sc);
  run_spec r;
  r.source = sc.file;
  r.gpu = load_gpu_spec(sc.gpu, sc.file + ": gpu");
  r.model = resolve_model(sc, src);
  r.layout = resolve_layout(sc, src);
  r.gpu.require(r.model.type, sc.file + ": model " + r.model.name + " dtype");
  r.bridge = src.bridge;
  r.tp_overlap = src.tp_overlap;
  if (sc.layernorm_sm_margin >= r.gpu.sm_count)
    throw config_error(
        sc.file + ": layernorm_sm_margin: " + std::to_string(sc.layernorm_sm_margin) +
        " leaves no SM on " + r.gpu.name + " (" + std::to_string(r.gpu.sm_count) + " SMs)");
  r.warnings = scenario_warnings(sc, r);
  r.workload = make_workload(sc, r);
  if (r.tp_overlap)
    r.overlap.preset = te_effective_overlap(src.layer ? &*src.layer : nullptr, r.layout.tp);
  r.overlap.te_default = te_effective_overlap(nullptr, r.layout.tp);
  r.cases = resolve_cases(sc, r.gpu);
  r.measure.warmup = sc.warmup;
  r.measure.iters = sc.iters;
  r.measure.graphs = sc.graphs;
  r.config = run_config(sc, r);
  return r;
}

schedule plan_case(const run_spec& r, const sweep_case& c) {
  return plan_layer(r.workload, r.overlap.of(c.method), r.gpu, c.knobs);
}

}  // namespace ob
