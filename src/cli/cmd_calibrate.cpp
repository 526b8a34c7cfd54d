// overlap-bench calibrate: fit the simulator's constants to measurements (docs/CALIBRATION.md §4).
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "base/json_util.hpp"
#include "cli/command.hpp"
#include "model/gpu_spec.hpp"
#include "sim/calibrate.hpp"
#include "spec/calib_input.hpp"

namespace ob::cli {
namespace {

class calibrate_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand(
        "calibrate",
        "fit the simulator's constants to measured GEMM sweeps, nccl-tests output "
        "and result files; write a new GPU file");
    app->add_option("inputs", inputs_,
                    "files or folders: results/gpu/** (files without points are skipped and "
                    "named), nccl-tests stdout, GEMM CSV (M,N,K,dtype,TFLOP/s), bench_cuda JSON")
        ->required();
    app->add_option("--gpu", gpu_, "GPU file to start from (configs/gpus/NAME.json)")
        ->capture_default_str();
    app->add_option("--out", out_, "write the fitted GPU file here");
    app->add_flag("--check", check_,
                  "print the model against every input point with its error and a verdict; fit "
                  "nothing");
    app->add_option("--max-error", max_error_pct_,
                    "with --check: exit 1 when any point's |error| exceeds this many percent (CI)")
        ->check(CLI::Range(0.0, 1000.0));
    return app;
  }

  int run(const process_args&) override {
    check_out_flag();
    calib_points pts;
    for (const std::string& in : inputs_) read_calibration_inputs(in, pts);
    report_left_out(pts);
    if (pts.gemms.empty() && pts.colls.empty())
      throw config_error("inputs: no GEMM or collective points found in the given files");
    const gpu_spec gpu = load_gpu_spec(gpu_, "--gpu");
    sim::check_plausible(pts, gpu);
    if (check_) {
      const auto rows = sim::check_points(pts, gpu);
      std::cout << sim::format_check(rows);
      return verdict(rows);
    }
    const sim::fit_result fit = sim::fit_constants(pts, gpu);
    std::cout << "SIMULATED model refitted to " << pts.gemms.size() << " GEMM and "
              << pts.colls.size() << " collective points\n";
    for (const sim::fitted_constant& c : fit.constants)
      std::cout << "  " << std::left << std::setw(30) << c.key << std::right << std::setw(10)
                << c.before << " -> " << std::setw(10) << c.after << "  (" << c.points
                << " points)\n";
    std::cout << sim::format_check(sim::check_points(pts, fit.gpu));
    write_file_atomic(out_,
                      sim::fitted_gpu_file(find_config("gpus", gpu_, "--gpu"), fit, pts.files));
    std::cout << "wrote " << out_ << "\n";
    return 0;
  }

 private:
  // --out is the fitted GPU file: required to fit, meaningless with --check, and never one of
  // the inputs (no output overwrites an input).
  void check_out_flag() const {
    if (check_ && !out_.empty())
      throw config_error(
          "--out: --check fits nothing, so there is no GPU file to write (redirect "
          "stdout to keep the check)");
    if (!check_ && out_.empty())
      throw config_error("--out: required unless --check (the fitted GPU file)");
    if (!check_ && max_error_pct_ >= 0)
      throw config_error("--max-error: only with --check (it judges the model against the points)");
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const std::string& in : inputs_) {
      const bool same = in == out_ || (fs::exists(out_, ec) && fs::equivalent(in, out_, ec));
      if (same)
        throw config_error("--out " + out_ +
                           ": is also an input; calibrate never overwrites an input");
    }
  }

  static void report_left_out(const calib_points& pts) {
    for (const std::string& s : pts.skipped) std::cerr << "calibrate: skipped " << s << "\n";
    for (const std::string& s : pts.excluded) std::cerr << "calibrate: left out " << s << "\n";
  }

  // The line CI reads, and exit 1 when the worst point is over --max-error.
  int verdict(const std::vector<sim::check_row>& rows) const {
    const sim::check_summary sum = sim::summarize_check(rows);
    std::cout << std::fixed << std::setprecision(1) << "verdict: " << rows.size()
              << " points, mean |error| " << sum.mean_abs_pct << " %, worst " << sum.worst_abs_pct
              << " % (" << sum.worst_what << ")";
    if (max_error_pct_ < 0) {
      std::cout << "; no --max-error given, nothing judged\n";
      return 0;
    }
    const bool ok = sum.worst_abs_pct <= max_error_pct_;
    std::cout << (ok ? " within" : " OVER") << " --max-error " << max_error_pct_ << " %\n";
    return ok ? 0 : 1;
  }

 private:
  std::vector<std::string> inputs_;
  std::string gpu_ = "h100_sxm";
  std::string out_;
  bool check_ = false;
  double max_error_pct_ = -1;  // < 0: not given
};

}  // namespace

std::unique_ptr<command> make_calibrate_command() { return std::make_unique<calibrate_command>(); }

}  // namespace ob::cli
