#pragma once
// A subcommand: declares its flags on attach(), does its work in run(). main() holds the table.
#include <CLI/CLI.hpp>
#include <memory>
#include <vector>

namespace ob::cli {

// argc/argv for MPI_Init, which only measuring subcommands call.
struct process_args {
  int* argc;
  char*** argv;
};

class command {
 public:
  virtual ~command() = default;
  virtual CLI::App* attach(CLI::App& parent) = 0;
  virtual int run(const process_args& args) = 0;
};

std::unique_ptr<command> make_run_command();
std::unique_ptr<command> make_pair_command();
std::unique_ptr<command> make_coll_command();
std::unique_ptr<command> make_resolve_command();
std::unique_ptr<command> make_compare_command();
std::unique_ptr<command> make_presets_command();
std::unique_ptr<command> make_report_command();
std::unique_ptr<command> make_step_command();
std::unique_ptr<command> make_calibrate_command();
std::unique_ptr<command> make_analyze_command();

}  // namespace ob::cli
