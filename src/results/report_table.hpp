#pragma once
// Human tables for stdout (docs/ARCHITECTURE.md §7). Every table opens with a banner saying what
// produced the numbers, so a simulated or loopback figure is never read as a multi-GPU measurement.
#include <string>
#include <vector>

#include "analysis/metrics.hpp"
#include "results/result.hpp"

namespace ob {

// The first line of every table:
//   sim:      "SIMULATED — model output, not a measurement (backend sim, <gpu>)"
//   loopback: "loopback (no NVLink) — one real GPU, collectives replaced by copy kernels (<gpu>)"
//   cuda:     "measured — backend cuda, <gpu>, <ranks> ranks"
// `env` is a result document's env (backend, simulated, gpu or gpu.name, ranks).
std::string banner_line(const ordered_json& env);
// GPU name from env.gpu (a string, or an object with "name") or env.gpu_name; "" when absent.
std::string env_gpu_name(const ordered_json& env);

// One row per case, widest-impact columns first: exposed comm, efficiency, overlapped, compute,
// comm, serial, speedup, GEMM and comm slowdown, #wrong, then the params that differ between
// cases (params equal in every case are listed once under the table). Case warnings and wrong
// data follow the table.
std::string format_case_table(const result_doc& d);

// nccl-tests style: size, count, type, redop, time (us), algbw (GB/s), busbw (GB/s), #wrong,
// with '#' header lines and an average bus bandwidth footer.
std::string format_coll_table(const std::vector<coll_row>& rows, const ordered_json& env);
std::string format_coll_table(const coll_doc& d);
// For callers holding an executor rather than an env: the banner is the SIMULATED one when
// `simulated`, else `label` verbatim (executor::label(), e.g. "loopback (no NVLink)").
std::string format_coll_table(const std::vector<coll_row>& rows, bool simulated,
                              const std::string& label);

}  // namespace ob
