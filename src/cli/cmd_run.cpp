#include <iostream>

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
};

overlap_source load_overlap(layer_scenario& sc) {
  overlap_source src;
  if (!sc.bridge_config.empty()) {
    const json in = load_json_file(sc.bridge_config);
    src.resolved = resolve_bridge_config(in, sc.bridge_config);
    if (resolve_has_errors(src.resolved))
      throw config_error(sc.bridge_config + ": the Bridge config does not resolve: " +
                         src.resolved["errors"][0]["message"].get<std::string>() +
                         " (overlap-bench resolve --input " + sc.bridge_config + ")");
    const auto& model = src.resolved["model"];
    src.tp_overlap = model.value("tp_comm_overlap", false);
    src.tp_cfg = model.contains("tp_comm_overlap_cfg") ? ordered_json(model["tp_comm_overlap_cfg"])
                                                       : ordered_json();
    // The parallel layout Bridge would run with.
    const json_object top(in, sc.bridge_config, "");
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
    const layer_workload w = [&] {
      try {
        return make_layer_workload(model, sc.layout);
      } catch (const config_error& e) {
        throw config_error(sc.file + ": parallel.tp/cp vs model " + model.name + ": " + e.what());
      }
    }();

    const slot_overlap_map preset_methods =
        src.tp_overlap ? te_effective_overlap(src.tp_cfg, sc.layout.tp) : slot_overlap_map{};
    const slot_overlap_map te_defaults = te_effective_overlap(ordered_json(), sc.layout.tp);
    const slot_overlap_map no_overlap;

    sweep_request req;
    req.scenario = "layer";
    req.cases = expand_cases(sc);
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
