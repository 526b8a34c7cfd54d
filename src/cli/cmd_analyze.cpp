// `analyze`: real profiles read back (src/trace), and with --predict the step model's answer for
// the same layout beside them.
#include <iostream>

#include "base/error.hpp"
#include "base/json_util.hpp"
#include "bridge/resolve.hpp"
#include "cli/command.hpp"
#include "cli/flag_checks.hpp"
#include "cli/output_paths.hpp"
#include "dist/communicator.hpp"
#include "report/report_plots.hpp"
#include "results/document.hpp"
#include "run/step_run.hpp"
#include "sim/simulator.hpp"
#include "trace/analysis_compare.hpp"
#include "trace/analyze.hpp"

namespace ob::cli {
namespace {

// The step model's step for the traces' layout: the simulator on this process, one iteration
// (it is deterministic), the first case.
step_record predict_step(const std::string& model, const std::string& gpu,
                         const trace::parallel_layout& l) {
  step_scenario sc;
  sc.model = model;
  sc.gpu = gpu;
  sc.base.gpus = l.tp * l.cp * l.dp * l.pp;
  sc.base.tp = l.tp, sc.base.cp = l.cp, sc.base.pp = l.pp;
  sc.warmup = 0, sc.iters = 1;
  sc.allow_oom = true;  // the job ran: its memory is not in question here
  const step_spec spec = resolve_step(sc);
  if (spec.cases.empty())
    throw config_error("--predict: the model " + model + " does not fit the layout's GPUs");
  sim_executor exec(spec.gpu, spec.cases.front().cluster);
  const auto comm = make_single_communicator();
  const step_sweep_result out = run_step_sweep(spec, exec, *comm, {});
  if (out.doc.cases.empty()) throw runtime_failure("--predict: the step model gave no case");
  return out.doc.cases.front();
}

// The model's figure for each part measured_step_parts names.
void fill_prediction(std::vector<trace::model_part>& parts, const step_record& r) {
  const step_breakdown& b = r.breakdown_ms;
  for (trace::model_part& p : parts) {
    if (p.part == "step") p.predicted_ms = r.step_ms.median;
    if (p.part == "compute") p.predicted_ms = b.compute;
    if (p.part == "tp exposed") p.predicted_ms = b.tp_exposed;
    if (p.part == "cp exposed") p.predicted_ms = b.cp_exposed;
    if (p.part == "dp exposed") p.predicted_ms = b.dp_exposed;
    if (p.part == "pp exposed") p.predicted_ms = b.pp_exposed;
    if (p.part == "bubble") p.predicted_ms = b.bubble;
  }
}

// analyze FILE|DIR...: exposed communication in real profiles (docs/ANALYZE.md).
class analyze_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand(
        "analyze",
        "exposed communication per rank, kind, dimension and step, from PyTorch "
        "profiler (Kineto) traces or Nsight Systems SQLite exports");
    app->add_option("traces", req_.inputs, "trace files (.json, .json.gz, .sqlite) or folders")
        ->required();
    app->add_option("--json", json_, "write the analysis/v1 document here")->check(not_empty());
    app->add_option("--layout", req_.layout,
                    "tp=N,cp=N,pp=N[,dp=N][,ep=N]: split communication by dimension (Megatron "
                    "rank order)");
    app->add_option("--bridge-config", bridge_,
                    "a Megatron-Bridge config: the layout from its parallel sizes (instead of "
                    "--layout)")
        ->check(CLI::ExistingFile);
    app->add_option("--steps", req_.last_steps, "measure only the last K steps of each rank")
        ->check(CLI::PositiveNumber);
    app->add_option("--step-marker", req_.step_marker,
                    "steps are the ranges whose name starts with NAME (default: ProfilerStep#N, "
                    "NVTX 'iteration N' or 'step N')")
        ->check(not_empty());
    app->add_option("--report", report_dir_, "also write DIR/report.md, analysis.json and PNGs")
        ->check(not_empty());
    app->add_option("--expect", expect_,
                    "an earlier analysis JSON: exit 1 when exposed communication (in all, per "
                    "dimension or kind) or the median step grew beyond --tolerance")
        ->check(CLI::ExistingFile);
    app->add_flag("--predict", predict_,
                  "also run the step model (simulator) for --model on --gpu with --layout, and "
                  "print measured against predicted per part");
    app->add_option("--model", model_, "the model the traces ran, for --predict (configs/models)")
        ->check(not_empty());
    app->add_option("--gpu", gpu_, "the GPU they ran on, for --predict (default h100_sxm)")
        ->check(not_empty());
    app->add_option("--tolerance", tolerance_, "percent growth that counts against --expect")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    return app;
  }

  int run(const process_args&) override {
    layout_from_bridge();
    std::vector<path_flag> inputs{{"--expect", expect_}, {"--bridge-config", bridge_}};
    for (const std::string& f : trace::expand_inputs(req_.inputs)) inputs.push_back({"TRACE", f});
    const std::string md = report_dir_.empty() ? "" : report_dir_ + "/report.md";
    const std::string doc_path = report_dir_.empty() ? "" : report_dir_ + "/analysis.json";
    const std::string strip = report_dir_.empty() ? "" : report_dir_ + "/timeline.json";
    check_output_paths(
        {{"--json", json_}, {"--report", md}, {"--report", doc_path}, {"--report", strip}}, inputs);
    req_.timelines = !report_dir_.empty();
    // Read first, so that a baseline of another kind stops before the traces are read.
    const ordered_json baseline = expect_.empty() ? ordered_json() : read_document(expect_);
    if (!expect_.empty() && schema_of(baseline) != trace::analysis_schema_v1)
      throw config_error("--expect " + expect_ + ": " + describe_schema(schema_of(baseline)) +
                         "; analyze compares with an analysis document");
    if (predict_ && (model_.empty() || req_.layout.empty()))
      throw config_error("--predict: give --model and --layout (the step model needs both)");
    const trace::analysis a = trace::analyze_traces(req_);
    std::cout << trace::format_analysis(a) << std::flush;
    ordered_json doc = trace::analysis_to_json(a);
    if (predict_) doc["prediction"] = prediction(a);
    if (!json_.empty()) write_file_atomic(json_, dump_json(doc, 2) + "\n");
    if (!report_dir_.empty()) write_analysis_report(a, doc, doc_path, md);
    if (expect_.empty()) return 0;
    const trace::analysis_comparison c =
        trace::compare_analyses(baseline, expect_, doc, "this analysis", tolerance_);
    std::cout << "\n" << trace::format_analysis_comparison(c, expect_, "this analysis");
    std::cout << (c.regression() ? "expect: FAIL\n" : "expect: PASS\n") << std::flush;
    return c.regression() ? static_cast<int>(exit_code::regression) : 0;
  }

 private:
  // --bridge-config: tp, cp, pp and dp as Bridge resolves them (docs/BRIDGE_RULES.md).
  void layout_from_bridge() {
    if (bridge_.empty()) return;
    if (!req_.layout.empty())
      throw config_error("--bridge-config " + bridge_ + ": give it or --layout, not both");
    const bridge_resolution r = resolve_bridge_file(bridge_);
    req_.layout = "tp=" + std::to_string(r.input.tp) + ",cp=" + std::to_string(r.input.cp) +
                  ",pp=" + std::to_string(r.input.pp) +
                  ",dp=" + std::to_string(r.data_parallel_size);
  }

  // --predict: the table on stdout, the JSON for the document.
  ordered_json prediction(const trace::analysis& a) const {
    std::vector<trace::model_part> parts = trace::measured_step_parts(a);
    fill_prediction(parts, predict_step(model_, gpu_, *a.layout));
    const std::string gpu = gpu_.empty() ? "h100_sxm" : gpu_;
    const trace::parallel_layout& l = *a.layout;
    std::cout << trace::format_prediction(
        parts, "SIMULATED step model: " + model_ + " on " + gpu + ", tp=" + std::to_string(l.tp) +
                   " cp=" + std::to_string(l.cp) + " dp=" + std::to_string(l.dp) +
                   " pp=" + std::to_string(l.pp));
    return trace::prediction_to_json(parts, model_, gpu);
  }

  // The document and the timelines, then the pictures drawn from them, then report.md naming
  // them.
  void write_analysis_report(const trace::analysis& a, const ordered_json& doc,
                             const std::string& doc_path, const std::string& md) const {
    write_file_atomic(doc_path, dump_json(doc, 2) + "\n");
    const std::string strip = report_dir_ + "/timeline.json";
    write_file_atomic(strip, dump_json(trace::timelines_to_json(a)) + "\n");
    const plot_outcome p = run_plot_script(
        "analyze_plots.py", {"--out", report_dir_, "--analysis", doc_path, "--timeline", strip});
    std::vector<std::pair<std::string, std::string>> figures;
    for (const figure& f : p.figures) figures.emplace_back(f.file, f.caption);
    write_file_atomic(md, trace::analysis_markdown(a, figures, p.problem));
    if (!p.problem.empty()) std::cerr << "overlap-bench: analyze: " << p.problem << "\n";
    std::cout << md << "\n";
  }

  trace::analyze_request req_;
  std::string json_, expect_, report_dir_, model_, gpu_, bridge_;
  bool predict_ = false;
  double tolerance_ = 5;
};

}  // namespace

std::unique_ptr<command> make_analyze_command() { return std::make_unique<analyze_command>(); }

}  // namespace ob::cli
