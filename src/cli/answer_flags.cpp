#include "cli/answer_flags.hpp"

#include <cstdlib>
#include <iostream>

#include "base/error.hpp"
#include "cli/flag_checks.hpp"
#include "report/bringup.hpp"
#include "report/step_compare.hpp"
#include "results/document.hpp"
#include "results/gbench.hpp"

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

// The baseline file, refused (exit 2) when it is another kind of document than the run writes.
ordered_json baseline_document(const std::string& path, const std::string& expected) {
  ordered_json j = read_document(path);
  const std::string schema = schema_of(j);
  if (schema != expected && !schema.empty())
    throw config_error("--expect " + path + ": " + describe_schema(schema) +
                       ", but this run writes " + describe_schema(expected) +
                       "; give a baseline of the same kind");
  return j;
}

int print_expectation(const expect_outcome& o, const answer_flags& f) {
  std::cout << format_expectation(o, f.expect_path) << std::flush;
  return o.passed() ? 0 : static_cast<int>(exit_code::regression);
}

}  // namespace

void add_answer_flags(CLI::App& app, answer_flags& f) {
  app.add_option("--expect", f.expect_path,
                 "baseline result JSON: exit 1 listing the cases whose time (overlapped, or a "
                 "step's) is outside --tolerance of it");
  app.add_option("--tolerance", f.tolerance,
                 "percent a case may differ from --expect's, e.g. 5 or 5% (the measured spread "
                 "widens it)")
      ->capture_default_str();
  // An empty path would write nothing, silently.
  app.add_option("--gbench-json", f.gbench_path,
                 "also write the result in Google Benchmark's JSON format")
      ->check(not_empty());
}

void prepare_answers(answer_flags& f) {
  parse_tolerance(f.tolerance);
  if (!f.expect_path.empty())
    f.baseline = std::make_shared<const result_doc>(
        result_from_json(baseline_document(f.expect_path, result_schema_v1), f.expect_path));
}

void prepare_step_answers(answer_flags& f) {
  parse_tolerance(f.tolerance);
  if (!f.expect_path.empty())
    f.step_baseline = std::make_shared<const step_doc>(
        step_from_json(baseline_document(f.expect_path, step_schema_v1), f.expect_path));
}

int emit_answers(const result_doc& doc, const answer_flags& f) {
  if (!f.gbench_path.empty()) write_gbench_json(f.gbench_path, doc);
  if (!f.baseline) return 0;
  return print_expectation(
      check_expectation(*f.baseline, doc, parse_tolerance(f.tolerance), f.expect_path), f);
}

int emit_answers(const step_doc& doc, const answer_flags& f) {
  if (!f.gbench_path.empty()) write_gbench_json(f.gbench_path, doc);
  if (!f.step_baseline) return 0;
  return print_expectation(
      check_step_expectation(*f.step_baseline, doc, parse_tolerance(f.tolerance), f.expect_path),
      f);
}

}  // namespace ob::cli
