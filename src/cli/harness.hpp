#pragma once
// What every measuring subcommand shares on the command line: the common flags, the backend
// choice, and printing and writing a result. The measuring itself is core's (run/sweep.hpp).
#include <CLI/CLI.hpp>
#include <array>
#include <memory>
#include <string>

#include "cli/answer_flags.hpp"
#include "model/cluster.hpp"
#include "model/communicator.hpp"
#include "model/executor.hpp"
#include "model/gpu_spec.hpp"
#include "results/result.hpp"
#include "results/trace.hpp"
#include "run/fault_injection.hpp"
#include "spec/nccl_axes.hpp"

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
  answer_flags answers;  // run and pair only (add_answer_flags)
  bool resume = false;   // run, pair and step: continue <json>.journal
  // run, pair and step: a sweep with more cases is refused before the first (exit 2).
  long long max_cases = 200000;
  std::string inject;  // test hook, run/fault_injection.hpp
  // Internal, set only on the command line of a CDMC child run (cli/sweep_driver.cpp): the
  // journal it appends its cases to, which the parent reads back.
  std::string cdmc_child_journal;
  // pair and coll: where the group's ranks sit (docs/ARCHITECTURE.md §5.4).
  std::string cluster;
  int gpus_per_node = 0;  // 0: the cluster's, else 8
  int nvlink_domain = 0;  // 0: the cluster's (its gpus_per_node unless it says otherwise)
  double nic_gbps = 0;    // 0: the cluster's, else the GPU file's
  // pair and coll: NCCL's settings as given (--cta-policy, ...), by nccl_axis_names; "" = unset.
  nccl_axis_values nccl;
};
// --cta-policy, --symmetric, --min-ctas, --max-ctas, --nccl-algo (unless `with_algo` is false:
// coll has --algo), --nccl-version: NCCL's communicator settings (docs/ARCHITECTURE.md §5.5).
void add_nccl_flags(CLI::App& app, common_flags& f, bool with_algo = true);
// NCCL's settings given as flags: nccl_axes_given and apply_nccl_axes (spec/nccl_axes.hpp).
// `with_threads`: --gpus N runs N local ranks as threads (not for `step`, whose --gpus is the
// job's size).
void add_common_flags(CLI::App& app, common_flags& f, bool with_gpu = true,
                      bool with_threads = true);
// --resume and --max-cases, for the subcommands that sweep (run, pair, step).
void add_sweep_flags(CLI::App& app, common_flags& f);

// Before the first case, on every rank: refuses a sweep over --max-cases (config_error naming the
// flag); with `announce` (rank 0) and unless -q, says how many cases will run.
void preflight(std::size_t cases, const common_flags& f, const std::string& what, bool announce);

// The injected fault (a test hook): --inject, else $OVERLAP_BENCH_INJECT, read once here.
// config_error when it is malformed or names a rank or case this run does not have, and for a
// training step (`step`) when it is skip_collective: a step takes `die` only.
fault_injection injected_fault(const common_flags& f, const communicator& comm,
                               const std::string& backend, std::size_t cases, bool step = false);

// --cluster, --gpus-per-node and --nic-gbps for pair and coll.
void add_network_flags(CLI::App& app, common_flags& f);
// The cluster the flags describe: a cluster file, or one NIC per GPU from the GPU file with
// --gpus-per-node and --nic-gbps. The flags are the alternative to a cluster file, not edits of
// it: a value that differs from the file's is a config_error (exit 2) naming both.
cluster_spec cluster_from(const common_flags& f, const gpu_spec& gpu);
// pair and coll: the GPU file. A cluster file names the GPU its nodes hold, so without --gpu
// (`gpu_given` false) that one; --gpu naming another GPU than the cluster's is a config_error
// naming both.
gpu_spec gpu_from(const common_flags& f, bool gpu_given);

// The flags' iterations, warm-up, graphs and timeout over `defaults` (a scenario's own).
measure_options measure_from(const common_flags& f, measure_options defaults);

// The executor for --backend, announcing what auto chose on stderr.
std::unique_ptr<executor> make_executor(const common_flags& f, const gpu_spec& gpu,
                                        communicator& comm);
std::unique_ptr<executor> make_executor(const common_flags& f, const gpu_spec& gpu,
                                        const cluster_spec& cluster, communicator& comm);

// Rank 0: prints the table and writes --json/--csv/--trace (the JSON streamed case by case),
// then the answers (--gbench-json, --expect). Other ranks write nothing.
// Returns 1 when --expect fails, else 0.
int emit(const result_doc& doc, const common_flags& f, const communicator& comm,
         const trace_writer& trace);

}  // namespace ob::cli
