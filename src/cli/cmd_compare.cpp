#include <cmath>
#include <cstdlib>
#include <iostream>

#include "base/error.hpp"
#include "base/json_util.hpp"
#include "cli/command.hpp"
#include "report/compare.hpp"
#include "report/step_compare.hpp"
#include "results/document.hpp"
#include "results/result.hpp"
#include "trace/analysis_compare.hpp"
#include "trace/analyze.hpp"

namespace ob::cli {
namespace {

double parse_threshold(const std::string& given) {
  std::string text = given;
  if (!text.empty() && text.back() == '%') text.pop_back();
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= 0) || !std::isfinite(v))
    throw config_error("--threshold: expected a percent from 0 such as 5 or 5%, got '" + given +
                       "'");
  return v;
}

class compare_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand(
        "compare",
        "compare two result (or two step, or two analysis) files; exit 1 on a regression");
    app->add_option("base", base_, "baseline result or step JSON")->required();
    app->add_option("new", new_, "new result or step JSON of the same kind")->required();
    app->add_option("--threshold", threshold_,
                    "percent change that counts, e.g. 5 or 5% (it must also exceed the measured "
                    "spread)")
        ->capture_default_str();
    return app;
  }
  // Layer/pair results with each other, step documents with each other; never across.
  int run(const process_args&) override {
    const double threshold = parse_threshold(threshold_);
    const ordered_json base = read_document(base_), neu = read_document(new_);
    const std::string kind_base = schema_of(base), kind_new = schema_of(neu);
    if (kind_base == trace::analysis_schema_v1 || kind_new == trace::analysis_schema_v1) {
      // Two analyses of real traces (docs/ANALYZE.md §5); read_parts names a non-analysis.
      const trace::analysis_comparison c =
          trace::compare_analyses(base, base_, neu, new_, threshold);
      std::cout << trace::format_analysis_comparison(c, base_, new_) << std::flush;
      return c.regression() ? static_cast<int>(exit_code::regression) : 0;
    }
    if (kind_base == step_schema_v1 || kind_new == step_schema_v1) {
      if (kind_base != kind_new)
        throw config_error("compare: " + base_ + " is " + describe_schema(kind_base) + " and " +
                           new_ + " is " + describe_schema(kind_new) +
                           "; compare documents of the same kind");
      const step_doc b = step_from_json(base, base_), n = step_from_json(neu, new_);
      const compare_outcome out = compare_steps(b, n, threshold);
      return finish(out, format_step_compare(out, b, n), b.cases.size(), n.cases.size());
    }
    const result_doc b = result_from_json(base, base_), n = result_from_json(neu, new_);
    const compare_outcome out = compare_results(b, n, threshold);
    return finish(out, format_compare(out), b.cases.size(), n.cases.size());
  }

 private:
  // The table on stdout, its warnings on stderr too (a model change or another GPU must not
  // pass unseen in a CI log); no case in both documents is unusable input (exit 2, as for
  // --expect), never "no regression".
  int finish(const compare_outcome& o, const std::string& text, std::size_t base_cases,
             std::size_t new_cases) const {
    std::cout << text << std::flush;
    for (const std::string& w : o.warnings) std::cerr << "overlap-bench: warning: " << w << "\n";
    if (o.matched() == 0)
      throw config_error("compare: nothing was compared: " + base_ + " (" +
                         std::to_string(base_cases) + " cases) and " + new_ + " (" +
                         std::to_string(new_cases) +
                         " cases) have no case in common (another scenario or sweep?)");
    return o.has_regression() ? static_cast<int>(exit_code::regression) : 0;
  }

  std::string base_, new_;
  std::string threshold_ = "5%";
};

}  // namespace

std::unique_ptr<command> make_compare_command() { return std::make_unique<compare_command>(); }

}  // namespace ob::cli
