// overlap-bench calibrate: fit the simulator's constants to measurements (docs/CALIBRATION.md §4).
#include <iomanip>
#include <iostream>

#include "cli/command.hpp"
#include "core/calib_input.hpp"
#include "core/config_paths.hpp"
#include "core/error.hpp"
#include "core/gpu_spec.hpp"
#include "core/json_util.hpp"
#include "sim/calibrate.hpp"

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
                    "files or folders: results/gpu/**, nccl-tests stdout, GEMM CSV "
                    "(M,N,K,dtype,TFLOP/s), bench_cuda JSON")
        ->required();
    app->add_option("--gpu", gpu_, "GPU file to start from (configs/gpus/NAME.json)")
        ->capture_default_str();
    app->add_option("--out", out_, "write the fitted GPU file here");
    app->add_flag("--check", check_,
                  "print the model against every input point with its error; fit nothing");
    return app;
  }

  int run(const process_args&) override {
    calib_points pts;
    for (const std::string& in : inputs_)
      for (const std::string& f : calibration_files(in)) read_calibration_input(f, pts);
    if (pts.gemms.empty() && pts.colls.empty())
      throw config_error("inputs: no GEMM or collective points found in the given files");
    const gpu_spec gpu = load_gpu_spec(gpu_, "--gpu");
    if (check_) {
      std::cout << sim::format_check(sim::check_points(pts, gpu));
      return 0;
    }
    if (out_.empty()) throw config_error("--out: required unless --check (the fitted GPU file)");
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
  std::vector<std::string> inputs_;
  std::string gpu_ = "h100_sxm";
  std::string out_;
  bool check_ = false;
};

}  // namespace

std::unique_ptr<command> make_calibrate_command() { return std::make_unique<calibrate_command>(); }

}  // namespace ob::cli
