#pragma once
// `overlap-bench calibrate` (docs/CALIBRATION.md §4): the simulator's prediction for each
// measured point, and a fit of the model's constants to those points. Each constant is fitted on
// the points it governs (GEMM efficiencies per dtype on that dtype's GEMMs, the per-CTA setup on
// every GEMM, NVLink efficiency on ring collectives, NVLS bandwidth and latency on NVLS
// all-reduces, the chunk-pipeline fill on every collective) by a bounded one-dimensional search
// on the sum of squared log errors, in rounds, so each sees the others' current values.
#include <string>
#include <vector>

#include "model/gpu_spec.hpp"
#include "spec/calib_input.hpp"

namespace ob::sim {

struct check_row {
  std::string what;   // "gemm 1024x1024x1024 bf16", "all_reduce 8 ranks 1 MiB nvls"
  std::string unit;   // "TFLOP/s" or "GB/s busbw"
  std::string where;  // the input's file and line
  double measured = 0;
  double model = 0;
  std::string family;  // "gemm", "collective, one node" or "collective, across nodes"
  double measured_us = 0, model_us = 0;  // the same point as a time (the 8 B all-reduce's busbw
                                         // rounds to zero; its time does not)
  std::string runs;  // what the model runs for a collective, as NCCL's tuner picks: "tree/LL128"
  double error() const { return model / measured - 1; }  // +0.05: the model is 5 % high
};

std::vector<check_row> check_points(const calib_points& pts, const gpu_spec& gpu);

struct fitted_constant {
  std::string key;  // JSON path in the GPU file: "sim.gemm_efficiency.bf16"
  double before = 0, after = 0;
  int points = 0;
};

struct fit_result {
  gpu_spec gpu;
  std::vector<fitted_constant> constants;  // only those some input point governs
};

fit_result fit_constants(const calib_points& pts, const gpu_spec& start);

// The GPU file `base_path` with every fitted value replaced and sourced to `inputs`.
std::string fitted_gpu_file(const std::string& base_path, const fit_result& fit,
                            const std::vector<std::string>& inputs);

// "what  measured  model  error  unit  measured-µs  model-µs  input" lines, then the mean and
// worst absolute error of each family and of all points.
std::string format_check(const std::vector<check_row>& rows);

struct check_summary {
  double mean_abs_pct = 0, worst_abs_pct = 0;
  std::string worst_what;  // the worst point's description and input
};
check_summary summarize_check(const std::vector<check_row>& rows);

// Refuses (config_error naming the point's input) a measurement no GPU of this kind can make: a
// GEMM above the datasheet's dense peak for its dtype, or a collective whose bus bandwidth is
// over twice the GPU's NVLink bandwidth (NVLS reductions exceed the link rate, never twice it).
// Such points are wrong units or the wrong --gpu, and would drag every fitted constant.
void check_plausible(const calib_points& pts, const gpu_spec& gpu);

}  // namespace ob::sim
