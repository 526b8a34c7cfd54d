// overlap-bench: how much communication stays exposed beside transformer GEMMs.
#include <algorithm>
#include <exception>
#include <iostream>

#include "base/build_info.hpp"
#include "base/error.hpp"
#include "base/json_util.hpp"
#include "cli/command.hpp"

namespace {

// Adding a subcommand: one file with make_X_command() and one line here.
std::vector<std::unique_ptr<ob::cli::command>> command_table() {
  std::vector<std::unique_ptr<ob::cli::command>> t;
  t.push_back(ob::cli::make_run_command());
  t.push_back(ob::cli::make_pair_command());
  t.push_back(ob::cli::make_coll_command());
  t.push_back(ob::cli::make_resolve_command());
  t.push_back(ob::cli::make_compare_command());
  t.push_back(ob::cli::make_presets_command());
  t.push_back(ob::cli::make_report_command());
  t.push_back(ob::cli::make_step_command());
  t.push_back(ob::cli::make_calibrate_command());
  t.push_back(ob::cli::make_analyze_command());
  return t;
}

// CLI11 answers "A subcommand is required" for a misspelt one; name it, and what it may mean.
void check_subcommand(int argc, char** argv, const std::vector<CLI::App*>& subs) {
  std::vector<std::string> names;
  for (const CLI::App* s : subs) names.push_back(s->get_name());
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  if (argc < 2) throw ob::config_error("a subcommand is required: " + list + " (see --help)");
  const std::string first = argv[1];
  if (first.starts_with("-") || std::find(names.begin(), names.end(), first) != names.end()) return;
  const std::string meant = ob::likely_meant(first, names);
  throw ob::config_error(
      "unknown subcommand '" + first + "' (" +
      (meant.empty() ? "expected one of " + list : "did you mean " + meant + "?") + ")");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    CLI::App app{"overlap-bench: exposed communication beside transformer GEMMs"};
    app.set_version_flag("--version",
                         std::string("overlap-bench ") + OB_VERSION + " (" + OB_GIT_SHA + ")");
    app.require_subcommand(1);
    auto commands = command_table();
    std::vector<CLI::App*> subs;
    for (auto& c : commands) subs.push_back(c->attach(app));
    check_subcommand(argc, argv, subs);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // CLI11 prints help (exit 0) or the usage error; every usage error is exit 2.
      const int rc = app.exit(e);
      return rc == 0 ? 0 : static_cast<int>(ob::exit_code::usage);
    }
    const ob::cli::process_args args{&argc, &argv};
    for (std::size_t i = 0; i < commands.size(); ++i)
      if (subs[i]->parsed()) return commands[i]->run(args);
    return static_cast<int>(ob::exit_code::usage);
  } catch (const ob::error& e) {
    std::cerr << "overlap-bench: error: " << e.what() << "\n";
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::cerr << "overlap-bench: runtime failure: " << e.what() << "\n";
    return static_cast<int>(ob::exit_code::runtime);
  }
}
