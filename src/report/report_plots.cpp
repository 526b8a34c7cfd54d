#include "report/report_plots.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "base/build_info.hpp"

extern char** environ;

namespace ob {
namespace {
namespace fs = std::filesystem;

// Debian's interpreter first: python3-matplotlib is installed for it, while a python3 earlier on
// PATH (pyenv, a venv) often lacks matplotlib.
std::string python() {
  if (const char* p = std::getenv("OVERLAP_BENCH_PYTHON"); p && *p) return p;
  return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

struct child_output {
  int rc = 127;
  std::string out;
};

// Runs argv with stdout captured (stderr passes through to the user).
child_output run_capture(const std::vector<std::string>& args) {
  child_output r;
  int fds[2];
  if (::pipe(fds) != 0) return r;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (err == 0) {
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      r.out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fds[0]);
  if (err != 0) return r;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::vector<figure> parse_manifest(const std::string& text) {
  std::vector<figure> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const std::size_t a = line.find('\t');
    const std::size_t b = a == std::string::npos ? a : line.find('\t', a + 1);
    if (b == std::string::npos) continue;
    out.push_back({line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1)});
  }
  return out;
}

}  // namespace

std::string find_script(const std::string& name) {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("OVERLAP_BENCH_SCRIPTS"); env && *env) dirs.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path() / ".." / "scripts");
    dirs.push_back(exe.parent_path() / ".." / ".." / "scripts");
  }
  dirs.push_back(fs::path(OB_SOURCE_DIR) / "scripts");
  for (const fs::path& d : dirs)
    if (fs::is_regular_file(d / name, ec)) return fs::weakly_canonical(d / name, ec).string();
  return {};
}

plot_outcome run_plot_script(const std::string& name, const std::vector<std::string>& script_args) {
  plot_outcome o;
  const std::string script = find_script(name);
  if (script.empty()) {
    o.problem = "scripts/" + name + " not found (set OVERLAP_BENCH_SCRIPTS)";
    return o;
  }
  std::vector<std::string> args = {python(), script};
  args.insert(args.end(), script_args.begin(), script_args.end());
  const child_output r = run_capture(args);
  o.figures = parse_manifest(r.out);
  if (r.rc == 127)
    o.problem = "cannot run " + args[0];
  else if (r.rc == 3)
    o.problem = "matplotlib is missing (apt-get install python3-matplotlib)";
  else if (r.rc != 0)
    o.problem = "scripts/" + name + " failed with exit code " + std::to_string(r.rc);
  return o;
}

plot_outcome draw_report_figures(const std::string& out_dir, const std::string& result,
                                 const std::vector<std::pair<std::string, std::string>>& trend) {
  std::vector<std::string> args = {"--out", out_dir, "--result", result};
  for (const auto& [label, path] : trend) {
    args.push_back("--trend");
    args.push_back(label + "=" + path);
  }
  return run_plot_script("report_plots.py", args);
}

}  // namespace ob
