#include "report/step_report.hpp"

#include <cmath>

#include "base/units.hpp"
#include "report/report_content.hpp"
#include "results/document.hpp"

namespace ob {
namespace {

std::string ms1(double v) { return format_fixed(v, 1); }

const step_record* find_case(const step_doc& d, const std::string& id) {
  for (const step_record& r : d.cases)
    if (r.id == id) return &r;
  return nullptr;
}

// "128 GPUs: TP 4, PP 8, VP 12, CP 1, DP 4; GBS 256, seq 2048, 96 layers, bf16".
std::string layout_text(const ordered_json& c) {
  auto f = [&c](const char* key) { return c.contains(key) ? text_of(c[key]) : std::string("?"); };
  return f("gpus") + " GPUs: TP " + f("tp") + ", PP " + f("pp") + ", VP " + f("vp") + ", CP " +
         f("cp") + ", DP " + f("dp") + "; GBS " + f("gbs") + ", seq " + f("seq") + ", " +
         f("layers") + " layers, " + f("dtype");
}

// model/cluster.cpp names the cluster "flags" when none was given (the GPU file's links, or
// --gpus-per-node and --nic-gbps).
std::string cluster_text(const std::string& name) {
  return name == "flags" ? "nodes from the flags and the GPU file" : "cluster " + code(name);
}

void header_section(report_doc& out, const std::string& path, const step_doc& d) {
  report_title(out, d.env, d.simulated());
  const ordered_json& cfg = d.config;
  auto f = [&cfg](const char* key) { return cfg.contains(key) ? text_of(cfg[key]) : "?"; };
  std::vector<std::vector<std::string>> rows = {
      {"result", code(path)},
      {"what ran", "one training step of " + code(f("model")) + " on " + code(f("gpu")) + ", " +
                       cluster_text(f("cluster"))}};
  if (!d.cases.empty())
    rows.push_back({"layout of the default case", layout_text(d.cases.front().config)});
  rows.push_back({"cases", std::to_string(d.cases.size())});
  rows.push_back({"tool", tool_text(d.tool)});
  out.table({"", ""}, rows);
  if (d.planned_cases) out.paragraph(partial_text(d.planned_cases, d.cases.size()) + ".");
}

// Cases that do different work per step (gbs, seq) or run on different GPU counts are ranked by
// throughput (results/recommend.hpp): the default is compared in tokens/s per GPU, not in ms.
std::string throughput_use_item(const recommendation& r, const std::string& best_name,
                                const std::string& best_what, const std::string& default_name) {
  std::string use = "**Use " + code(best_name) + "**: " + best_what;
  if (r.best_case == r.default_case)
    return use + " — it is the default case (the sweep's first), so nothing to change.";
  return use + ", " + format_fixed(std::abs(r.gain_vs_default_pct), 1) + " % " +
         (r.gain_vs_default_pct >= 0 ? "more" : "fewer") +
         " tokens/s per GPU than the default case " + code(default_name) + " (" +
         format_fixed(r.default_tokens_per_s_per_gpu.value_or(0), 0) + " tokens/s per GPU).";
}

std::string throughput_knob_item(const knob_impact& k) {
  return "The setting that mattered most: **" + k.axis + "** — " + code(text_of(k.best)) +
         " is best, " + code(text_of(k.worst)) + " worst (−" + format_fixed(k.spread, 0) +
         " tokens/s per GPU, −" + format_fixed(k.spread_pct, 1) + " % of the best).";
}

std::string ranked_by_item(const recommendation& r) {
  if (r.measure == rank_measure::throughput)
    return "Ranked by tokens/s per GPU, not by step time: the cases differ in GPUs or in tokens "
           "per step (gbs × seq), so a shorter step is not a faster one.";
  return "Ranked by step time: every case runs the same tokens per step on the same GPUs.";
}

void answer_section(report_doc& out, const step_doc& d) {
  out.heading(2, "Answer");
  // A recommendation stored in a document without cases answers nothing that is in it.
  if (d.cases.empty()) {
    out.paragraph("The document holds no cases: there is nothing to recommend.");
    return;
  }
  if (!d.rec || !find_case(d, d.rec->best_case)) {
    out.paragraph("No case has a measured step.");
    return;
  }
  const recommendation& r = *d.rec;
  const step_record& best = *find_case(d, r.best_case);
  const std::string what = ms1(r.best_ms) + " ms per step, " +
                           format_fixed(best.tokens_per_s_per_gpu, 0) + " tokens/s per GPU, MFU " +
                           format_fixed(100 * best.mfu, 1) + " %";
  std::vector<std::string> items = {r.measure == rank_measure::throughput
                                        ? throughput_use_item(r, short_case_name(d, r.best_case),
                                                              what,
                                                              short_case_name(d, r.default_case))
                                        : use_item(r, short_case_name(d, r.best_case), what,
                                                   short_case_name(d, r.default_case), 1)};
  if (r.knob)
    items.push_back(r.measure == rank_measure::throughput ? throughput_knob_item(*r.knob)
                                                          : knob_item(*r.knob, 1, "step"));
  items.push_back(ranked_by_item(r));
  if (best.diagnosis)
    items.push_back("What the best case still spends beside compute: " + ms1(best.exposed_ms) +
                    " ms — " + cause_list(*best.diagnosis, false) + ".");
  else
    items.push_back("The best case spends its step computing.");
  out.bullets(items);
}

void breakdown_section(report_doc& out, const step_doc& d, const plot_outcome& plots) {
  out.heading(2, "Where the step went");
  out.paragraph(
      "Each case's step on its critical stage (the last to finish), split into parts that add up "
      "to it: compute, the exposed TP, CP, DP and PP communication, the pipeline bubble, the "
      "optimizer and the rest (docs/ARCHITECTURE.md §9.4).");
  add_figures(out, plots, "breakdown");
  std::vector<std::string> header = {"case", "step ms"};
  for (const breakdown_part& p : breakdown_parts()) header.push_back(std::string(p.key) + " ms");
  std::vector<std::vector<std::string>> rows;
  const case_namer name(d);
  for (const step_record& r : d.cases) {
    std::vector<std::string> row = {code(name(r.id)), ms1(r.step_ms.median)};
    for (const breakdown_part& p : breakdown_parts()) row.push_back(ms1(r.breakdown_ms.*p.value));
    rows.push_back(std::move(row));
  }
  out.table(header, rows);
}

void diagnosis_section(report_doc& out, const step_doc& d, const plot_outcome& plots) {
  out.heading(2, "Why the step was not all compute");
  out.paragraph(
      "Each case's exposed time (the breakdown less compute and optimizer) split into causes of "
      "the layer diagnosis's vocabulary (docs/ARCHITECTURE.md §7.1); they add up to it.");
  add_figures(out, plots, "diagnosis");
  std::vector<diagnosed_case> rows;
  const case_namer name(d);
  for (const step_record& r : d.cases)
    rows.push_back(
        {name(r.id), r.step_ms.median, r.exposed_ms, r.diagnosis ? &*r.diagnosis : nullptr});
  diagnosis_table(out, "step ms", rows, 1);
}

void throughput_section(report_doc& out, const step_doc& d, const plot_outcome& plots) {
  out.heading(2, "Throughput");
  out.paragraph(
      "Tokens per second per GPU (gbs × seq / step / gpus) and model TFLOP/s per GPU by "
      "Megatron-LM's formula (recomputation not counted); MFU against the GPU's dense peak for "
      "the dtype. `compute only` is the same step with every communication op removed.");
  add_figures(out, plots, "throughput");
  std::vector<std::vector<std::string>> rows;
  const case_namer name(d);
  for (const step_record& r : d.cases)
    rows.push_back({code(name(r.id)), ms1(r.step_ms.median),
                    format_fixed(r.tokens_per_s_per_gpu, 0),
                    format_fixed(r.model_tflops_per_gpu, 1), format_fixed(100 * r.mfu, 1),
                    r.compute_only_ms ? ms1(r.compute_only_ms->median) : "-"});
  out.table(
      {"case", "step ms", "tokens/s per GPU", "model TFLOP/s per GPU", "MFU %", "compute only ms"},
      rows);
}

std::vector<std::string> warnings_of(const step_doc& d) {
  std::vector<std::string> out = config_warnings(d.config);
  for (const step_record& r : d.cases)
    for (const std::string& w : r.warnings) out.push_back(r.id + ": " + w);
  return out;
}

}  // namespace

report_doc build_step_report(const std::string& path, const step_doc& d,
                             const plot_outcome& plots) {
  report_doc out;
  header_section(out, path, d);
  answer_section(out, d);
  breakdown_section(out, d, plots);
  diagnosis_section(out, d, plots);
  throughput_section(out, d, plots);
  notes_section(out, warnings_of(d), plots);
  return out;
}

}  // namespace ob
