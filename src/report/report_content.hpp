#pragma once
// What report.md says, section by section (docs/ARCHITECTURE.md §7.4), from the subject result,
// the trend and the pictures drawn; and the pieces the step report (report/step_report.hpp)
// shares with it.
#include <string>
#include <vector>

#include "analysis/diagnosis.hpp"
#include "report/history.hpp"
#include "report/report_doc.hpp"
#include "report/report_plots.hpp"
#include "results/recommend.hpp"

namespace ob {

report_doc build_report(const trend_point& subject, const std::vector<trend_point>& trend,
                        const plot_outcome& plots);

// Markdown code: `s`.
std::string code(const std::string& s);
// A JSON value as text: a string bare, anything else as JSON.
std::string text_of(const ordered_json& v);
// The document config's "warnings", as text.
std::vector<std::string> config_warnings(const ordered_json& config);
// "2.4 % faster", "0.3 % slower".
std::string faster_or_slower(double pct);
// The causes of a diagnosis with their ms (or shares of it) and where: "tail 0.412 ms
// (fc2_fprop), contention 0.200 ms (SM margin 0.150 ms)".
std::string cause_list(const diagnosis& d, bool ms);
// The pictures of one kind, in the order drawn.
void add_figures(report_doc& out, const plot_outcome& plots, const std::string& kind);
// The answer's first item: "**Use `best_name`**: `best_what`", then that it is the default case
// or what it gains over it (its time with `decimals`).
std::string use_item(const recommendation& r, const std::string& best_name,
                     const std::string& best_what, const std::string& default_name, int decimals);
// "The setting that mattered most: **axis** — `1` is best, `8` worst (+1.2 ms, +3.4 % on the best
// `time_word`)."
std::string knob_item(const knob_impact& k, int decimals, const std::string& time_word);
// The heading and what produced the numbers (SIMULATED in bold, with what that means).
void report_title(report_doc& out, const ordered_json& env, bool simulated);
// "overlap-bench 0.9.0 (abc123)".
std::string tool_text(const ordered_json& tool);
// "### The causes": each cause's meaning and what to try.
void causes_glossary(report_doc& out);
// One row of the diagnosis table: the case's short name, its time, its exposed time and its
// diagnosis (nullptr: nothing exposed).
struct diagnosed_case {
  std::string name;
  double time_ms = 0, exposed_ms = 0;
  const diagnosis* diag = nullptr;
};
// The table of every case's main cause and causes (times with `decimals`), then the glossary.
void diagnosis_table(report_doc& out, const std::string& time_header,
                     const std::vector<diagnosed_case>& cases, int decimals);
// "## Notes": why there are no pictures, then `notes`; nothing when both are empty.
void notes_section(report_doc& out, std::vector<std::string> notes, const plot_outcome& plots);

}  // namespace ob
