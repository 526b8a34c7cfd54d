#include <cmath>
#include <cstdlib>
#include <iostream>

#include "cli/command.hpp"
#include "core/compare.hpp"
#include "core/error.hpp"
#include "core/json_util.hpp"
#include "core/result.hpp"

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
    auto* app = parent.add_subcommand("compare",
                                      "compare two result files per case; exit 1 on a regression");
    app->add_option("base", base_, "baseline result JSON")->required();
    app->add_option("new", new_, "new result JSON")->required();
    app->add_option("--threshold", threshold_,
                    "percent change that counts, e.g. 5 or 5% (it must also exceed the measured "
                    "spread)")
        ->capture_default_str();
    return app;
  }
  int run(const process_args&) override {
    const result_doc base = load_result(base_);
    const result_doc neu = load_result(new_);
    const compare_outcome out = compare_results(base, neu, parse_threshold(threshold_));
    std::cout << format_compare(out);
    return out.has_regression() ? static_cast<int>(exit_code::regression) : 0;
  }

 private:
  std::string base_, new_;
  std::string threshold_ = "5%";
};

}  // namespace

std::unique_ptr<command> make_compare_command() { return std::make_unique<compare_command>(); }

}  // namespace ob::cli
