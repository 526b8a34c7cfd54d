#include "base/error.hpp"
#include "cli/command.hpp"
#include "cli/flag_checks.hpp"
#include "cli/harness.hpp"
#include "cli/step_driver.hpp"
#include "cli/sweep_driver.hpp"
#include "run/pipeline.hpp"

namespace ob::cli {
namespace {

// A scenario file (configs/scenarios/), its `--set` overrides, then core's pipeline.
class run_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app =
        parent.add_subcommand("run", "run a scenario file (layer or step) over its sweep axes");
    app->add_option("--config", config_,
                    "scenario JSON (a path, or a name in configs/scenarios/); default: the "
                    "GPT-3 175B TP4 layer sweep")
        ->check(not_empty());
    app->add_option("--set", sets_,
                    "override: axis=v1,v2 (" + sweep_axis_list() +
                        ") or field=v (gpu, model, preset, tp, ...)");
    add_common_flags(*app, flags_, false);
    add_answer_flags(*app, flags_.answers);
    add_sweep_flags(*app, flags_);
    return app;
  }

  int run(const process_args& args) override {
    const std::string ref = config_.empty() ? "default_layer" : config_;
    const std::vector<path_flag> inputs = {{"--config", config_}};
    if (scenario_kind(ref) == "step") {
      // --csv writes the step CSV, as `step --csv` does.
      prepare_step_answers(flags_.answers);
      step_scenario sc = load_step_scenario(ref);
      for (const auto& s : sets_) apply_step_override(sc, s);
      return drive_step(sc, flags_, args, inputs);
    }
    prepare_answers(flags_.answers);
    layer_scenario sc = load_layer_scenario(ref);
    for (const auto& s : sets_) apply_override(sc, s);
    const run_spec r = resolve_run(sc);
    sweep_request req;
    req.scenario = "layer";
    req.cases = r.cases;
    req.plan = [&r](const sweep_case& c) { return plan_case(r, c); };
    req.config = r.config;
    req.measure = r.measure;
    req.source = r.source;
    req.warnings = r.warnings;
    return drive_sweep(std::move(req), flags_, r.gpu, args, inputs);
  }

 private:
  std::string config_;
  std::vector<std::string> sets_;
  common_flags flags_;
};

}  // namespace

std::unique_ptr<command> make_run_command() { return std::make_unique<run_command>(); }

}  // namespace ob::cli
