#include "cli/step_driver.hpp"

#include <iostream>

#include "cli/sweep_outputs.hpp"
#include "core/error.hpp"
#include "core/step_run.hpp"
#include "dist/communicator.hpp"

namespace ob::cli {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t cut = s.find(',', start);
    out.push_back(s.substr(start, cut - start));
    if (cut == std::string::npos) return out;
    start = cut + 1;
  }
}

}  // namespace

void apply_step_override(step_scenario& sc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == assignment.size())
    throw config_error("--set " + assignment + ": expected key=value[,value...]");
  const std::string key = assignment.substr(0, eq);
  if (!is_step_axis(key)) {
    std::string known;
    for (std::string_view n : step_axis_names)
      known += (known.empty() ? "" : ", ") + std::string(n);
    throw config_error("--set " + assignment + ": unknown step axis '" + key + "' (" + known + ")");
  }
  const std::vector<std::string> values = split_list(assignment.substr(eq + 1));
  for (const auto& v : values)
    if (v.empty()) throw config_error("--set " + assignment + ": empty value in list");
  std::erase_if(sc.axes, [&](const sweep_axis& a) { return a.name == key; });
  sc.axes.push_back({key, values});
}

int drive_step(const step_scenario& sc, const common_flags& flags, const process_args& args) {
  step_spec spec = resolve_step(sc);
  spec.measure = measure_from(flags, spec.measure);
  auto comm = make_communicator(args.argc, args.argv, flags.timeout_s);
  // Before the first case, as for run and pair (README: journaled sweeps).
  if (comm->is_root()) check_output_paths(flags);
  auto exec = make_executor(flags, spec.gpu, *comm);
  step_hooks hooks;
  hooks.trace = !flags.trace_path.empty();
  if (comm->is_root())
    hooks.progress = [](std::size_t done, std::size_t total, const std::string& id) {
      if (total > 1) std::cerr << "[" << done << "/" << total << "] " << id << "\n";
    };
  const step_sweep_result out = run_step_sweep(spec, *exec, *comm, hooks);
  if (!comm->is_root()) return 0;
  if (!flags.quiet) std::cout << format_step_table(out.doc) << std::flush;
  if (!flags.json_path.empty()) write_step_json(flags.json_path, out.doc);
  if (!flags.trace_path.empty()) write_file_atomic(flags.trace_path, out.trace.dump() + "\n");
  return 0;
}

}  // namespace ob::cli
