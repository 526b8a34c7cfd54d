#include "report/report_content.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "analysis/diagnosis.hpp"
#include "base/units.hpp"
#include "results/document.hpp"
#include "results/report_table.hpp"

namespace ob {

std::string code(const std::string& s) { return "`" + s + "`"; }

std::string text_of(const ordered_json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::vector<std::string> config_warnings(const ordered_json& config) {
  std::vector<std::string> out;
  for (const auto& w : config.value("warnings", ordered_json::array())) out.push_back(text_of(w));
  return out;
}

std::string faster_or_slower(double pct) {
  return format_fixed(std::abs(pct), 1) + " % " + (pct >= 0 ? "faster" : "slower");
}

void add_figures(report_doc& out, const plot_outcome& plots, const std::string& kind) {
  for (const figure& f : plots.figures)
    if (f.kind == kind) out.image(f.file, f.caption);
}

std::string cause_list(const diagnosis& d, bool ms) {
  double total = 0;
  for (const cause_share& c : d.causes) total += c.ms;
  std::string out;
  for (const cause_share& c : d.causes) {
    out += (out.empty() ? "" : ", ") + std::string(info_of(c.cause).short_name) + " " +
           (c.dimension.empty() ? "" : dimension_text(c.dimension) + " ") +
           (ms ? format_fixed(c.ms, 3) + " ms" : format_fixed(100 * c.ms / total, 0) + " %");
    if (c.sm_margin_ms && *c.sm_margin_ms > 0.005 * total)
      out += " (SM margin " + format_fixed(*c.sm_margin_ms, 3) + " ms)";
    else if (!c.where.empty() && c.where != c.dimension)  // "PP (pp)" says it twice
      out += " (" + c.where + ")";
  }
  return out;
}

std::string use_item(const recommendation& r, const std::string& best_name,
                     const std::string& best_what, const std::string& default_name, int decimals) {
  std::string use = "**Use " + code(best_name) + "**: " + best_what;
  if (r.best_case == r.default_case)
    use += " — it is the default case (the sweep's first), so nothing to change";
  else
    use += ", " + faster_or_slower(r.gain_vs_default_pct) + " than the default case " +
           code(default_name) + " (" + format_fixed(r.default_ms, decimals) + " ms)";
  return use + ".";
}

std::string knob_item(const knob_impact& k, int decimals, const std::string& time_word) {
  return "The setting that mattered most: **" + k.axis + "** — " + code(text_of(k.best)) +
         " is best, " + code(text_of(k.worst)) + " worst (+" + format_fixed(k.spread, decimals) +
         " ms, +" + format_fixed(k.spread_pct, 1) + " % on the best " + time_word + ").";
}

void report_title(report_doc& out, const ordered_json& env, bool simulated) {
  out.heading(1, "overlap-bench report");
  if (simulated)
    out.paragraph("**" + banner_line(env) +
                  ".** Every number and picture below comes from the simulator: use it to reason "
                  "about mechanisms and to plan, and measure with `--backend cuda` before "
                  "believing a figure.");
  else
    out.paragraph("**" + banner_line(env) + "**.");
}

std::string tool_text(const ordered_json& tool) {
  return "overlap-bench " + tool.value("version", std::string("?")) + " (" +
         tool.value("git_sha", std::string("?")) + ")";
}

void diagnosis_table(report_doc& out, const std::string& time_header,
                     const std::vector<diagnosed_case>& cases, int decimals) {
  std::vector<std::vector<std::string>> rows;
  for (const diagnosed_case& c : cases)
    rows.push_back({code(c.name), format_fixed(c.time_ms, decimals),
                    format_fixed(c.exposed_ms, decimals),
                    c.diag ? std::string(to_string(c.diag->main_cause)) : "-",
                    c.diag ? cause_list(*c.diag, true) : "nothing exposed"});
  out.table({"case", time_header, "exposed ms", "main cause", "causes"}, rows);
  causes_glossary(out);
}

void causes_glossary(report_doc& out) {
  std::vector<std::vector<std::string>> glossary;
  for (const cause_info& c : cause_table())
    glossary.push_back(
        {code(std::string(to_string(c.cause))), std::string(c.meaning), std::string(c.try_this)});
  out.heading(3, "The causes");
  out.table({"cause", "meaning", "what to try"}, glossary);
}

void notes_section(report_doc& out, std::vector<std::string> notes, const plot_outcome& plots) {
  if (!plots.problem.empty()) notes.insert(notes.begin(), "No pictures: " + plots.problem + ".");
  if (notes.empty()) return;
  out.heading(2, "Notes");
  out.bullets(notes);
}

namespace {

const case_record* find_case(const result_doc& d, const std::string& id) {
  for (const case_record& c : d.cases)
    if (c.id == id) return &c;
  return nullptr;
}

std::string scenario_text(const ordered_json& cfg) {
  const std::string kind = cfg.contains("scenario") ? text_of(cfg["scenario"]) : "?";
  if (kind == "layer" && cfg.contains("model") && cfg.contains("parallel")) {
    const ordered_json& p = cfg["parallel"];
    std::string passes;
    for (const auto& x : cfg.value("passes", ordered_json::array()))
      passes += (passes.empty() ? "" : "+") + text_of(x);
    return "one " + text_of(cfg["model"]["name"]) + " layer (" + passes + "), TP " +
           text_of(p["tp"]) +
           (p.value("sequence_parallel", false) ? " with sequence parallelism" : "") + ", preset " +
           code(cfg.value("preset", std::string("(TE defaults)")));
  }
  if (kind == "pair" && cfg.contains("gemm") && cfg.contains("collective")) {
    const ordered_json &g = cfg["gemm"], &c = cfg["collective"];
    return "one GEMM " + text_of(g["m"]) + "x" + text_of(g["n"]) + "x" + text_of(g["k"]) + " " +
           text_of(g["dtype"]) + " beside one " + text_of(c["op"]) + " of " + text_of(c["bytes"]) +
           " bytes over " + text_of(c["ranks"]) + " ranks";
  }
  return kind;
}

void header_section(report_doc& out, const trend_point& s) {
  const result_doc& d = s.doc;
  report_title(out, d.env, d.simulated());
  out.table({"", ""}, {{"result", code(s.path)},
                       {"what ran", scenario_text(d.config)},
                       {"cases", std::to_string(d.cases.size())},
                       {"tool", tool_text(d.tool)}});
  if (d.planned_cases) out.paragraph(partial_text(d.planned_cases, d.cases.size()) + ".");
}

void answer_section(report_doc& out, const trend_point& s) {
  out.heading(2, "Answer");
  // A recommendation stored in a document without cases answers nothing that is in it.
  if (s.doc.cases.empty()) {
    out.paragraph("The result holds no cases: there is nothing to recommend.");
    return;
  }
  if (!s.rec) {
    out.paragraph("No case has valid data (every case failed verification).");
    return;
  }
  const recommendation& r = *s.rec;
  const result_doc& d = s.doc;
  std::vector<std::string> items = {use_item(r, short_case_name(d, r.best_case),
                                             format_fixed(r.best_ms, 3) + " ms per iteration",
                                             short_case_name(d, r.default_case), 3)};
  if (r.none_case && r.gain_vs_none_pct)
    items.push_back("Against no overlap (" + code(short_case_name(d, *r.none_case)) + ", " +
                    format_fixed(*r.none_ms, 3) + " ms): " + faster_or_slower(*r.gain_vs_none_pct) +
                    ".");
  if (r.knob) items.push_back(knob_item(*r.knob, 3, "time"));
  const case_record* best = find_case(d, r.best_case);
  if (best && best->diag)
    items.push_back(
        "What the best case still exposes: " + format_fixed(best->m.exposed_comm_ms, 3) + " ms — " +
        cause_list(*best->diag, false) + ".");
  else if (best)
    items.push_back("The best case hides its communication completely.");
  out.bullets(items);
}

// Per method, its best case: end to end, split into compute and exposed, and the extra compute
// the method's chunking costs against no overlap.
void methods_section(report_doc& out, const trend_point& s, const plot_outcome& plots) {
  std::map<std::string, const case_record*> best;
  for (const case_record& c : s.doc.cases) {
    if (c.m.wrong > 0 || !c.params.is_object() || !c.params.contains("method")) continue;
    const case_record*& b = best[text_of(c.params["method"])];
    if (!b || c.m.overlapped_ms.median < b->m.overlapped_ms.median) b = &c;
  }
  if (best.empty()) return;
  out.heading(2, "End to end per method");
  add_figures(out, plots, "e2e");
  const auto none = best.find("none");
  std::vector<std::vector<std::string>> rows;
  for (const auto& [method, c] : best) {
    const bool vs = none != best.end() && method != "none";
    const double n_over = vs ? none->second->m.overlapped_ms.median : 0;
    const double n_comp = vs ? none->second->m.compute_ms.median : 0;
    rows.push_back(
        {method, code(short_case_name(s.doc, c->id)), format_fixed(c->m.overlapped_ms.median, 3),
         format_fixed(c->m.compute_ms.median, 3), format_fixed(c->m.exposed_comm_ms, 3),
         vs ? format_fixed(c->m.compute_ms.median - n_comp, 3) : "-",
         vs ? format_fixed(100 * (n_over - c->m.overlapped_ms.median) / n_over, 1) : "-"});
  }
  out.table({"method", "best case", "overlapped ms", "compute ms", "exposed ms",
             "chunking cost vs none ms", "faster than none %"},
            rows);
  out.paragraph(
      "Compare methods on the overlapped (end-to-end) time. `exposed` is measured against each "
      "method's own compute-only time, which for a chunked method includes what splitting the "
      "GEMMs costs (the chunking cost column): a method can hide most of its communication and "
      "still end barely sooner than no overlap.");
}

void heatmap_section(report_doc& out, const plot_outcome& plots) {
  if (std::none_of(plots.figures.begin(), plots.figures.end(),
                   [](const figure& f) { return f.kind == "heatmap"; }))
    return;
  out.heading(2, "CDMC × SM margin");
  out.paragraph(
      "Exposed communication (ms) for each CUDA_DEVICE_MAX_CONNECTIONS and GEMM SM "
      "margin, one picture per method; the best case of the cell over the other axes.");
  add_figures(out, plots, "heatmap");
}

void diagnosis_section(report_doc& out, const trend_point& s, const plot_outcome& plots) {
  out.heading(2, "Why communication was exposed");
  out.paragraph(
      "Each case's exposed time split into causes along the critical path of its "
      "overlapped timeline (docs/ARCHITECTURE.md §7.1); the causes add up to the exposed "
      "time.");
  add_figures(out, plots, "diagnosis");
  std::vector<diagnosed_case> rows;
  const case_namer name(s.doc);
  for (const case_record& c : s.doc.cases)
    rows.push_back(
        {name(c.id), c.m.overlapped_ms.median, c.m.exposed_comm_ms, c.diag ? &*c.diag : nullptr});
  diagnosis_table(out, "overlapped ms", rows, 3);
}

void timeline_section(report_doc& out, const plot_outcome& plots) {
  if (std::none_of(plots.figures.begin(), plots.figures.end(),
                   [](const figure& f) { return f.kind.rfind("timeline", 0) == 0; }))
    return;
  out.heading(2, "Timelines of the best and the worst case");
  out.paragraph(
      "The overlapped variant, one row per stream; outlined ops lie on the critical "
      "path. Open `--trace` output in ui.perfetto.dev for every op of more cases.");
  add_figures(out, plots, "timeline_best");
  add_figures(out, plots, "timeline_worst");
}

void bringup_section(report_doc& out, const trend_point& s) {
  std::vector<std::vector<std::string>> rows;
  const case_namer name(s.doc);
  for (const case_record& c : s.doc.cases)
    if (c.predicted)
      rows.push_back({code(name(c.id)), format_fixed(c.m.overlapped_ms.median, 3),
                      format_fixed(c.predicted->overlapped_ms, 3),
                      std::string(c.predicted->deviation_pct >= 0 ? "+" : "") +
                          format_fixed(c.predicted->deviation_pct, 1),
                      format_fixed(c.m.compute_ms.median, 3),
                      format_fixed(c.predicted->compute_ms, 3), format_fixed(c.m.comm_ms.median, 3),
                      format_fixed(c.predicted->comm_ms, 3)});
  if (rows.empty()) return;
  out.heading(2, "Bring-up: measured against the simulator");
  out.paragraph(
      "The simulator's prediction for the same schedules. A uniform offset is model "
      "error; compute far off means the GPU (clocks, power, cuBLAS), comm far off the "
      "links or the NCCL build; only overlapped off means scheduling (README.md, "
      "\"Bring-up\").");
  out.table({"case", "measured ms", "predicted ms", "deviation %", "compute ms",
             "predicted compute ms", "comm ms", "predicted comm ms"},
            rows);
}

void trend_section(report_doc& out, const std::vector<trend_point>& trend,
                   const plot_outcome& plots) {
  if (trend.size() < 2) return;
  out.heading(2, "Trend");
  const auto simulated = std::count_if(trend.begin(), trend.end(),
                                       [](const trend_point& t) { return t.doc.simulated(); });
  out.paragraph("Oldest first; the last is this report's result. " + std::to_string(simulated) +
                " of " + std::to_string(trend.size()) + " results are SIMULATED." +
                (simulated > 0 && simulated < static_cast<long>(trend.size())
                     ? " Simulated and measured points differ by model error, not by performance."
                     : ""));
  for (const std::string& w : trend_warnings(trend)) out.paragraph("Warning: " + w + ".");
  add_figures(out, plots, "trend");
  out.table(trend_header(), trend_rows(trend));
}

}  // namespace

report_doc build_report(const trend_point& subject, const std::vector<trend_point>& trend,
                        const plot_outcome& plots) {
  report_doc out;
  header_section(out, subject);
  answer_section(out, subject);
  methods_section(out, subject, plots);
  heatmap_section(out, plots);
  diagnosis_section(out, subject, plots);
  timeline_section(out, plots);
  bringup_section(out, subject);
  trend_section(out, trend, plots);
  notes_section(out, config_warnings(subject.doc.config), plots);
  return out;
}

}  // namespace ob
