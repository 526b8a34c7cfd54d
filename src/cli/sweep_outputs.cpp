#include "cli/sweep_outputs.hpp"

#include <signal.h>

#include <filesystem>
#include <iostream>

#include "core/atomic_file.hpp"

namespace ob::cli {
namespace {

// Two flags naming one file would have the second write over the first.
void check_distinct(const std::vector<std::pair<const char*, const std::string*>>& outputs) {
  namespace fs = std::filesystem;
  for (std::size_t i = 0; i < outputs.size(); ++i)
    for (std::size_t j = i + 1; j < outputs.size(); ++j) {
      const std::string& a = *outputs[i].second;
      const std::string& b = *outputs[j].second;
      if (a.empty() || b.empty()) continue;
      if (fs::weakly_canonical(a) == fs::weakly_canonical(b) ||
          fs::weakly_canonical(a) == fs::weakly_canonical(journal_path_for(b)))
        throw config_error(std::string(outputs[j].first) + " " + b + ": the same file as " +
                           outputs[i].first);
    }
}

}  // namespace

void check_output_paths(const common_flags& f) {
  const std::vector<std::pair<const char*, const std::string*>> outputs = {
      {"--json", &f.json_path}, {"--csv", &f.csv_path}, {"--trace", &f.trace_path}};
  for (const auto& [flag, path] : outputs) {
    if (path->empty()) continue;
    if (const std::string why = why_not_writable(*path); !why.empty())
      throw config_error(std::string(flag) + " " + *path + ": cannot write there: " + why);
  }
  check_distinct(outputs);
  if (f.resume && f.json_path.empty())
    throw config_error("--resume: needs --json FILE (the journal is FILE.journal)");
}

journal_keeper::journal_keeper(const common_flags& f, const std::string& fingerprint,
                               std::size_t cases, const sweep_journal::case_reader& read) {
  if (f.json_path.empty()) return;
  const std::string path = journal_path_for(f.json_path);
  if (f.resume && std::filesystem::exists(path)) {
    journal_.emplace(sweep_journal::resume(path, fingerprint, read));
    resumed_ = true;
    std::cerr << "overlap-bench: resuming " << path << ": " << journal_->size() << " of " << cases
              << " cases already finished\n";
    return;
  }
  // An hour of measurements is not replaced by a forgotten flag.
  if (std::filesystem::exists(path))
    throw config_error("--json " + f.json_path + ": " + path +
                       " holds the cases of an unfinished sweep; pass --resume to continue it, "
                       "or delete it to start over");
  if (f.resume) std::cerr << "overlap-bench: --resume: no " << path << "; starting afresh\n";
  journal_.emplace(sweep_journal::start(path, fingerprint));
}

void journal_keeper::finish(bool stopped) {
  if (journal_ && !stopped) journal_->remove();
}

void journal_keeper::after_failure(const error& e) {
  if (!journal_) return;
  // A config error means this sweep cannot run as asked; an empty journal holds nothing to keep.
  if ((e.code() == exit_code::usage || journal_->size() == 0) && !resumed_) {
    journal_->remove();
    return;
  }
  if (journal_->size() > 0)
    std::cerr << "overlap-bench: " << journal_->size() << " finished case(s) are kept in "
              << journal_->path() << "; run again with --resume to measure only the rest\n";
}

int stopped_exit(int signal, std::size_t done, std::size_t total, const common_flags& f,
                 const communicator& comm) {
  if (comm.is_root())
    std::cerr << "overlap-bench: stopped by " << (signal == SIGINT ? "SIGINT" : "SIGTERM")
              << " after " << done << " of " << total << " cases"
              << (f.json_path.empty()
                      ? std::string()
                      : "; " + f.json_path + " holds them; --resume measures the rest")
              << "\n";
  return 128 + signal;
}

sweep_outputs::sweep_outputs(const common_flags& f, const sweep_request& req, const executor& exec,
                             sweep_hooks& hooks)
    : flags_(f) {
  check_output_paths(f);
  journal_.emplace(
      f, sweep_fingerprint(req, exec.backend()), req.cases.size(),
      [&hooks](const ordered_json& c, const std::string& file, const std::string& where) {
        hooks.finished.push_back(case_record_from_json(c, file, where));
      });
  if (!f.json_path.empty())
    hooks.on_case = [this](const case_record& rec) { journal_->append(to_json(rec)); };
}

int sweep_outputs::emit(const sweep_result& out, const communicator& comm) {
  const int rc = cli::emit(out.doc, flags_, comm, out.trace);
  journal_->finish(out.stopped != 0);
  return rc;
}

}  // namespace ob::cli
