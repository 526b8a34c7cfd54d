#pragma once
// Flags of the measuring subcommands that turn a result into answers for tools: pass or fail
// against a baseline (--expect, --tolerance) and Google Benchmark JSON (--gbench-json).
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/result.hpp"

namespace ob::cli {

struct answer_flags {
  std::string expect_path;
  std::string tolerance = "5%";
  std::string gbench_path;
  std::shared_ptr<const result_doc> baseline;  // read by prepare_answers, before measuring
};

void add_answer_flags(CLI::App& app, answer_flags& f);

// Reads the --expect baseline now, so a bad file fails before a long run (exit 2).
void prepare_answers(answer_flags& f);

// After the table, rank 0: writes --gbench-json and checks --expect. Returns 1 when cases fall
// outside the tolerance, else 0.
int emit_answers(const result_doc& doc, const answer_flags& f);

}  // namespace ob::cli
