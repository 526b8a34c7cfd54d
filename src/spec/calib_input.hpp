#pragma once
// Measured points `overlap-bench calibrate` fits the simulator to (docs/CALIBRATION.md §4):
// GEMM sweeps (CSV of M,N,K,dtype,TFLOP/s, or bench_cuda's Google Benchmark JSON), nccl-tests
// stdout (any collective; the out-of-place time), and this project's own result files
// (overlap-bench/coll/v1 rows, overlap-bench/result/v1 pair cases). Simulated documents are
// refused: fitting the model to itself teaches it nothing.
#include <cstdint>
#include <string>
#include <vector>

#include "base/json_util.hpp"
#include "model/ir.hpp"

namespace ob {

struct gemm_point {
  gemm_params shape;
  double tflops = 0;
  std::string where;  // "file:line" or "file: cases[2]"
};

struct coll_point {
  coll_op op = coll_op::all_reduce;
  int ranks = 0;
  std::uint64_t bytes = 0;  // nccl-tests size
  double time_us = 0;
  std::string algorithm;  // "" = NCCL's choice, else ring / nvls / tree
  std::string where;
  // GPUs per NVLink domain (`# nvlink-domain: N`, one NIC per GPU beyond it); 0: 8.
  int nvlink_domain = 0;
};

struct calib_points {
  std::vector<gemm_point> gemms;
  std::vector<coll_point> colls;
  std::vector<std::string> files;     // the files points came from
  std::vector<std::string> skipped;   // "file: why" for files in a folder that hold no points
  std::vector<std::string> excluded;  // "where: why" for measurements that are not model points
};

// Reads one input file, recognised by its content: a JSON document (result/v1, coll/v1, Google
// Benchmark), a CSV whose header names M,N,K,dtype,TFLOP/s, or nccl-tests text. nccl-tests text
// names its collective in "# Collective test starting: all_reduce_perf" or, failing that, in a
// header line "# op: all_reduce"; "# algorithm: nvls" sets the algorithm (as NCCL_ALGO would).
// Errors name the file and line (config_error, exit 2).
void read_calibration_input(const std::string& path, calib_points& out);

// NCCL's own JSON (spec/calib_nccl_json.cpp): nccl-tests' -J report, one document with
// "config", "args" and "results"; NCCL Inspector records, JSON objects one after another, each
// with "header" and "coll_perf". Collectives the model does not have go to `excluded`.
bool is_nccl_tests_json(const json& doc);
void read_nccl_tests_json(const std::string& path, const json& doc, calib_points& out);
bool looks_like_inspector(const std::string& text);
void read_inspector(const std::string& path, const std::string& text, calib_points& out);

// `path` as a file (read_calibration_input), or every file under it when it is a folder, sorted.
// A results folder (scripts/device_validate.sh) holds more than points: env.json, torch.json,
// summaries, step and simulated documents, logs. Those go to `skipped` with the reason instead of
// failing; a malformed input still fails.
void read_calibration_inputs(const std::string& path, calib_points& out);

}  // namespace ob
