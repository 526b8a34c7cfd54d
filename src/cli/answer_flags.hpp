#pragma once
// Flags of the measuring subcommands that turn a result into answers for tools: pass or fail
// against a baseline (--expect, --tolerance) and Google Benchmark JSON (--gbench-json). A layer
// or pair run judges result documents, a step run step documents.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "results/result.hpp"
#include "results/step_result.hpp"

namespace ob::cli {

struct answer_flags {
  std::string expect_path;
  std::string tolerance = "5%";
  std::string gbench_path;
  // Read by prepare_answers (a layer or pair run) or prepare_step_answers, before measuring.
  std::shared_ptr<const result_doc> baseline;
  std::shared_ptr<const step_doc> step_baseline;
};

void add_answer_flags(CLI::App& app, answer_flags& f);

// Reads the --expect baseline now, so a bad file fails before a long run (exit 2): one that is
// not a document of the run's kind is named with both kinds.
void prepare_answers(answer_flags& f);
void prepare_step_answers(answer_flags& f);

// After the table, rank 0: writes --gbench-json and checks --expect. Returns 1 when cases fall
// outside the tolerance, else 0.
int emit_answers(const result_doc& doc, const answer_flags& f);
int emit_answers(const step_doc& doc, const answer_flags& f);

}  // namespace ob::cli
