#include <iostream>
#include <optional>

#include "cli/command.hpp"
#include "cli/harness.hpp"
#include "cli/sweep_driver.hpp"
#include "core/error.hpp"
#include "core/model_spec.hpp"
#include "core/presets.hpp"
#include "core/resolve.hpp"
#include "core/scenario.hpp"

namespace ob::cli {
namespace {

// What "preset" means for a scenario: a named userbuffers preset, or what a Bridge config
// resolves to (DESIGN §3: run uses the same resolver).
struct overlap_source {
  ordered_json tp_cfg;  // expanded per-GEMM object, or null for TE defaults
  bool tp_overlap = true;
  ordered_json resolved;  // the resolve output when a Bridge config was given
  json bridge_model;      // the Bridge config's model section (shape fields override the model)
  std::optional<std::int64_t> bridge_micro_batch;
};

// A Bridge config describes the model it trains: its shape wins over the scenario's model file,
// so the run benchmarks what Bridge would run.
void apply_bridge_shape(const overlap_source& src, const std::string& file, model_spec& m) {
  if (src.bridge_model.is_null()) return;
  const json_object b(src.bridge_model, file, "model");
  auto take = [&](const char* key, std::int64_t& field) {
    if (auto v = b.get_optional_int(key)) {
      if (*v <= 0) b.fail(key, "expected a positive integer, got " + std::to_string(*v));
      field = *v;
    }
  };
  take("hidden_size", m.hidden);
  take("ffn_hidden_size", m.ffn_hidden);
  take("num_attention_heads", m.heads);
  take("num_query_groups", m.kv_heads);
  take("seq_length", m.seq_length);
  if (src.bridge_micro_batch) m.micro_batch = *src.bridge_micro_batch;
  if (b.has("fp8") && !b.get_raw("fp8").is_null() && b.get_raw("fp8") != false) m.type = dtype::fp8;
  if (m.kv_heads > m.heads || m.heads % m.kv_heads != 0) m.kv_heads = m.heads;
}

overlap_source load_overlap(layer_scenario& sc) {
  overlap_source src;
  if (!sc.bridge_config.empty()) {
    const json in = load_json_file(sc.bridge_config);
    src.resolved = resolve_bridge(in, sc.bridge_config).to_json();
    if (!src.resolved["errors"].empty())
      throw config_error(sc.bridge_config + ": the Bridge config does not resolve: " +
                         src.resolved["errors"][0]["message"].get<std::string>() +
                         " (overlap-bench resolve --input " + sc.bridge_config + ")");
    const auto& model = src.resolved["model"];
    src.tp_overlap = model.value("tp_comm_overlap", false);
    src.tp_cfg = model.contains("tp_comm_overlap_cfg")
                     ? ordered_json(model["tp_comm_overlap_cfg"])
                     : ordered_json();  // The parallel layout Bridge would run with.
    const json_object top(in, sc.bridge_config, "");
    if (in.contains("model")) src.bridge_model = in["model"];
    if (in.contains("train") && in["train"].contains("micro_batch_size") &&
        in["train"]["micro_batch_size"].is_number_integer())
      src.bridge_micro_batch = in["train"]["micro_batch_size"].get<std::int64_t>();
    if (auto m = top.get_optional_object("model")) {
      sc.layout.tp = static_cast<int>(m->get_positive_int("tensor_model_parallel_size", 1));
      sc.layout.cp = static_cast<int>(m->get_positive_int("context_parallel_size", 1));
      sc.layout.pp = static_cast<int>(m->get_positive_int("pipeline_model_parallel_size", 1));
      sc.layout.sequence_parallel = m->get_bool("sequence_parallel", false);
    }
  } else if (!sc.preset.empty()) {
    src.tp_cfg =
        expand_tp_overlap_layer(load_preset(sc.preset, sc.file + ": overlap.preset").gemms);
  }
  return src;
}

// What the scenario asks for that the layer model does not capture, or that does not match.
std::vector<std::string> scenario_warnings(const layer_scenario& sc, const model_spec& model,
                                           const gpu_spec& gpu) {
  std::vector<std::string> w;
  const std::string where = sc.file + ": ";
  if (sc.layout.pp > 1 || sc.layout.dp > 1)
    w.push_back(where + "not_modelled: the layer scenario runs one TP group; pp=" +
                std::to_string(sc.layout.pp) + " and dp=" + std::to_string(sc.layout.dp) +
                " add no pipeline or data-parallel communication");
  if (sc.layout.cp > 1)
    w.push_back(where + "not_modelled: cp=" + std::to_string(sc.layout.cp) +
                " divides the tokens, but context-parallel communication is not modelled");
  if (sc.layernorm_sm_margin > 0)
    w.push_back(where +
                "layernorm_sm_margin leaves SMs for DP collectives, and the layer "
                "scenario has none: it can only cost time here");
  if (!sc.preset.empty()) {
    const userbuffers_preset p = load_preset(sc.preset, sc.file + ": overlap.preset");
    auto mismatch = [&](const std::string& what, std::int64_t preset_v, std::int64_t run_v) {
      if (preset_v != run_v)
        w.push_back(where + "preset_mismatch: " + p.name + " is for " + what + " " +
                    std::to_string(preset_v) + ", the run has " + std::to_string(run_v));
    };
    mismatch("hidden", p.hidden, model.hidden);
    mismatch("tp", p.tp, sc.layout.tp);
    mismatch("cp", p.cp, sc.layout.cp);
    mismatch("micro_batch", p.mbs, model.micro_batch);
    mismatch("seq_length", p.seq_length, model.seq_length);
    if (p.dtype != to_string(model.type))
      w.push_back(where + "preset_mismatch: " + p.name + " is for " + p.dtype +
                  ", the model runs " + std::string(to_string(model.type)));
    if (p.gpu.rfind(gpu.name.substr(0, 4), 0) != 0)
      w.push_back(where + "preset_mismatch: " + p.name + " is for " + p.gpu + ", the run is on " +
                  gpu.name);
  }
  return w;
}

class run_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand("run", "run a scenario file (layer) over its sweep axes");
    app->add_option("--config", config_,
                    "scenario JSON (a path, or a name in configs/scenarios/); default: the "
                    "GPT-3 175B TP4 layer sweep");
    app->add_option("--set", sets_,
                    "override: axis=v1,v2 (cdmc, method, order, sm_margin, comm_ctas, priority) "
                    "or field=v (gpu, model, preset, tp, ...)");
    add_common_flags(*app, flags_, false);
    return app;
  }

  int run(const process_args& args) override {
    layer_scenario sc = load_layer_scenario(config_.empty() ? "default_layer" : config_);
    for (const auto& s : sets_) apply_override(sc, s);
    overlap_source src = load_overlap(sc);
    const gpu_spec gpu = load_gpu_spec(sc.gpu, sc.file + ": gpu");
    model_spec model = load_model_spec(sc.model, sc.file + ": model");
    if (sc.micro_batch) model.micro_batch = *sc.micro_batch;
    if (sc.seq_length) model.seq_length = *sc.seq_length;
    apply_bridge_shape(src, sc.bridge_config, model);
    if (sc.layernorm_sm_margin >= gpu.sm_count)
      throw config_error(
          sc.file + ": layernorm_sm_margin: " + std::to_string(sc.layernorm_sm_margin) +
          " leaves no SM on " + gpu.name + " (" + std::to_string(gpu.sm_count) + " SMs)");
    const std::vector<std::string> warnings = scenario_warnings(sc, model, gpu);
    const layer_workload w = [&] {
      try {
        return make_layer_workload(model, sc.layout);
      } catch (const config_error& e) {
        throw config_error(sc.file + ": parallel.tp/cp vs model " + model.name + ": " + e.what());
      }
    }();

    std::vector<diagnostic> ignored;
    const tp_overlap_layer typed =
        src.tp_cfg.is_null()
            ? tp_overlap_layer{}
            : parse_tp_overlap_layer(json::parse(src.tp_cfg.dump()), "", "", ignored);
    const slot_overlap_map preset_methods =
        src.tp_overlap ? te_effective_overlap(src.tp_cfg.is_null() ? nullptr : &typed, sc.layout.tp)
                       : slot_overlap_map{};
    const slot_overlap_map te_defaults = te_effective_overlap(nullptr, sc.layout.tp);
    const slot_overlap_map no_overlap;

    sweep_request req;
    req.scenario = "layer";
    req.cases = expand_cases(sc);
    req.source = sc.file;
    req.warnings = warnings;
    for (auto& c : req.cases) {
      // TE creates its launch-ordering event on Hopper when CDMC > 1 (reference §6.3).
      c.knobs.te_launch_ordering =
          c.method != "none" &&
          (sc.te_launch_ordering == "on" ||
           (sc.te_launch_ordering == "auto" && gpu.compute_capability_major == 9 && c.cdmc > 1));
      c.params["te_launch_ordering"] = c.knobs.te_launch_ordering;
    }
    req.plan = [&](const layer_case& c) {
      const slot_overlap_map& m = c.method == "none"         ? no_overlap
                                  : c.method == "te_default" ? te_defaults
                                                             : preset_methods;
      return plan_layer(w, m, gpu, c.knobs);
    };
    req.measure.warmup = flags_.warmup >= 0 ? flags_.warmup : sc.warmup;
    req.measure.iters = flags_.iters > 0 ? flags_.iters : sc.iters;
    req.measure.graphs = flags_.graphs || sc.graphs;
    req.measure.timeout_s = flags_.timeout_s;

    ordered_json cfg;
    cfg["scenario_file"] = sc.file;
    cfg["scenario"] = "layer";
    cfg["gpu"] = gpu.name;
    cfg["model"] = {{"name", model.name},
                    {"hidden", model.hidden},
                    {"ffn_hidden", model.ffn_hidden},
                    {"heads", model.heads},
                    {"kv_heads", model.kv_heads},
                    {"seq_length", model.seq_length},
                    {"micro_batch", model.micro_batch},
                    {"dtype", to_string(model.type)}};
    cfg["parallel"] = {{"tp", sc.layout.tp},
                       {"cp", sc.layout.cp},
                       {"dp", sc.layout.dp},
                       {"pp", sc.layout.pp},
                       {"sequence_parallel", sc.layout.sequence_parallel}};
    cfg["preset"] = sc.preset;
    if (!sc.bridge_config.empty()) cfg["bridge_resolved"] = src.resolved;
    cfg["tp_comm_overlap"] = src.tp_overlap;
    cfg["passes"] = ordered_json::array();
    if (sc.forward) cfg["passes"].push_back("fwd");
    if (sc.backward) cfg["passes"].push_back("bwd");
    cfg["layernorm_sm_margin"] = sc.layernorm_sm_margin;
    cfg["te_launch_ordering"] = sc.te_launch_ordering;
    ordered_json methods = ordered_json::object();
    for (const auto& [slot, m] : preset_methods)
      methods[slot] = {{"method", to_string(m.method)},
                       {"num_sm", m.num_sm},
                       {"set_sm_margin", m.set_sm_margin},
                       {"num_splits", m.num_splits}};
    cfg["preset_methods"] = methods;
    ordered_json axes = ordered_json::object();
    for (const auto& a : sc.axes) axes[a.name] = a.values;
    cfg["sweep"] = axes;
    req.config = cfg;
    return drive_sweep(req, flags_, gpu, args);
  }

 private:
  std::string config_;
  std::vector<std::string> sets_;
  common_flags flags_;
};

}  // namespace

std::unique_ptr<command> make_run_command() { return std::make_unique<run_command>(); }

}  // namespace ob::cli
