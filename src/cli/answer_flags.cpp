#include "cli/answer_flags.hpp"

#include <cstdlib>
#include <iostream>

#include "core/bringup.hpp"
#include "core/error.hpp"
#include "core/gbench.hpp"

namespace ob::cli {
namespace {

double parse_tolerance(std::string text) {
  if (!text.empty() && text.back() == '%') text.pop_back();
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= 0))
    throw config_error("--tolerance: expected a non-negative percent such as 5 or 5%, got '" +
                       text + "'");
  return v;
}

}  // namespace

void add_answer_flags(CLI::App& app, answer_flags& f) {
  app.add_option("--expect", f.expect_path,
                 "baseline result JSON: exit 1 listing the cases whose overlapped time is outside "
                 "--tolerance of it");
  app.add_option("--tolerance", f.tolerance,
                 "percent a case may differ from --expect's, e.g. 5 or 5% (the measured spread "
                 "widens it)")
      ->capture_default_str();
  app.add_option("--gbench-json", f.gbench_path,
                 "also write the result in Google Benchmark's JSON format");
}

void prepare_answers(answer_flags& f) {
  parse_tolerance(f.tolerance);
  if (!f.expect_path.empty())
    f.baseline = std::make_shared<const result_doc>(load_result(f.expect_path));
}

int emit_answers(const result_doc& doc, const answer_flags& f) {
  if (!f.gbench_path.empty()) write_gbench_json(f.gbench_path, doc);
  if (!f.baseline) return 0;
  const expect_outcome o =
      check_expectation(*f.baseline, doc, parse_tolerance(f.tolerance), f.expect_path);
  std::cout << format_expectation(o, f.expect_path) << std::flush;
  return o.passed() ? 0 : static_cast<int>(exit_code::regression);
}

}  // namespace ob::cli
