#pragma once
// What every measuring subcommand shares: backend choice, running one planned case on the
// executor across ranks, and writing the table, JSON, CSV and trace.
#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/executor.hpp"
#include "core/gpu_spec.hpp"
#include "core/result.hpp"
#include "core/trace.hpp"
#include "dist/communicator.hpp"

namespace ob::cli {

// Flags common to pair, coll and run.
struct common_flags {
  std::string backend = "auto";
  std::string gpu = "h100_sxm";
  int iters = 0;    // 0 = scenario/default
  int warmup = -1;  // -1 = scenario/default
  bool graphs = false;
  int gpus = 0;  // single-process multi-GPU threads (cuda backend)
  double timeout_s = 300;
  std::string json_path, csv_path, trace_path;
  bool quiet = false;
};
void add_common_flags(CLI::App& app, common_flags& f, bool with_gpu = true);

// The executor for --backend, announcing what auto chose on stderr.
std::unique_ptr<executor> make_executor(const common_flags& f, const gpu_spec& gpu,
                                        communicator& comm);

// The CDMC this process runs under (CUDA_DEVICE_MAX_CONNECTIONS; unset = the GPU's default).
int process_cdmc(const gpu_spec& gpu);

class case_runner {
 public:
  case_runner(executor& exec, communicator& comm, measure_options opts);
  // Plans are per rank; iteration times are reduced (max) across ranks.
  case_record run(const schedule& planned, std::string id, std::string scenario,
                  ordered_json params, int cdmc);
  const trace_writer& trace() const { return trace_; }
  void enable_trace(std::size_t max_cases) { trace_cases_ = max_cases; }

 private:
  executor& exec_;
  communicator& comm_;
  measure_options opts_;
  trace_writer trace_;
  std::size_t trace_cases_ = 0;
  std::size_t traced_ = 0;
};

// Fills tool and env for a result document.
result_doc make_result_doc(const executor& exec, const gpu_spec& gpu, const communicator& comm,
                           ordered_json config);

// Rank 0: prints the table and writes --json/--csv/--trace. Other ranks write nothing.
void emit(const result_doc& doc, const common_flags& f, const communicator& comm,
          const case_runner* runner);

// Prints "[k/n] ..." progress to stderr on long sweeps (rank 0 only).
class progress {
 public:
  progress(std::size_t total, bool enabled) : total_(total), enabled_(enabled && total >= 20) {}
  void step(const std::string& what);

 private:
  std::size_t total_, done_ = 0;
  int last_decile_ = -1;
  bool enabled_;
};

}  // namespace ob::cli
