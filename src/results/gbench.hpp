#pragma once
// A result as Google Benchmark's JSON (`--benchmark_out_format=json`), so dashboards that track
// Google Benchmark output track overlap without glue code: one benchmark per case, real_time the
// overlapped median (a step: the step median), counters for exposed time, efficiency and the
// other metrics (a step: its breakdown and throughput).
#include <string>

#include "base/json_util.hpp"
#include "results/result.hpp"
#include "results/step_result.hpp"

namespace ob {

// `date` is the context's date (ISO 8601). Simulated results say so in each benchmark's label
// and in the context.
ordered_json gbench_json(const result_doc& d, const std::string& date);
// Benchmarks named "step/<case id>"; counters exposed_ms, <part>_ms per breakdown part,
// compute_only_ms, tokens_per_s_per_gpu, model_tflops_per_gpu, mfu.
ordered_json gbench_json(const step_doc& d, const std::string& date);

// Now's date; written atomically.
void write_gbench_json(const std::string& path, const result_doc& d);
void write_gbench_json(const std::string& path, const step_doc& d);

}  // namespace ob
