#include "results/gbench.hpp"

#include <ctime>
#include <thread>

namespace ob {
namespace {

std::string now_iso8601() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
  std::string s = buf;
  // +0000 -> +00:00, as Google Benchmark writes it.
  if (s.size() > 5) return s.substr(0, s.size() - 2) + std::string(":") + s.substr(s.size() - 2);
  return s;
}

std::string env_text(const ordered_json& env, const char* key) {
  auto it = env.find(key);
  return it != env.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Google Benchmark writes counters as extra numbers in each benchmark object; a metric the case
// cannot have (null) is left out.
void add_counters(ordered_json& b, const case_record& c) {
  const case_metrics& m = c.m;
  b["exposed_comm_ms"] = m.exposed_comm_ms;
  const auto optional = [&b](const char* key, const std::optional<double>& v) {
    if (v) b[key] = *v;
  };
  optional("overlap_efficiency", m.overlap_efficiency);
  b["compute_ms"] = m.compute_ms.median;
  b["comm_ms"] = m.comm_ms.median;
  b["serial_ms"] = m.serial_ms.median;
  optional("speedup_vs_serial", m.speedup_vs_serial);
  optional("gemm_slowdown", m.gemm_slowdown);
  optional("comm_slowdown", m.comm_slowdown);
  optional("gemm_tflops", m.gemm_tflops);
  optional("comm_busbw_gbps", m.comm_busbw_gbps);
  b["wrong"] = static_cast<double>(m.wrong);
  if (c.predicted) b["deviation_pct"] = c.predicted->deviation_pct;
}

// Google Benchmark's context keys, then ours (AddCustomContext writes strings).
ordered_json context(const ordered_json& env, const ordered_json& tool, bool simulated,
                     const std::string& date) {
  ordered_json ctx;
  ctx["date"] = date;
  ctx["host_name"] = env_text(env, "hostname");
  ctx["executable"] = "overlap-bench";
  ctx["num_cpus"] = static_cast<int>(std::thread::hardware_concurrency());
  ctx["mhz_per_cpu"] = 0;  // not measured; Google Benchmark reads it from /proc/cpuinfo
  ctx["cpu_scaling_enabled"] = false;
  ctx["caches"] = ordered_json::array();
  ctx["load_avg"] = ordered_json::array();
  ctx["library_build_type"] = "release";
  ctx["overlap_bench_backend"] = env_text(env, "backend");
  ctx["overlap_bench_simulated"] = simulated ? "true" : "false";
  ctx["overlap_bench_version"] = env_text(tool, "version");
  return ctx;
}

// One benchmark: `time` is its real_time. GPU time from events; there is no separate CPU time
// to report, so both carry it.
ordered_json benchmark(const std::string& name, int index, const stats& time,
                       const std::string& label) {
  ordered_json b;
  b["name"] = name;
  b["family_index"] = index;
  b["per_family_instance_index"] = 0;
  b["run_name"] = name;
  b["run_type"] = "iteration";
  b["repetitions"] = 1;
  b["repetition_index"] = 0;
  b["threads"] = 1;
  b["iterations"] = std::max<std::int64_t>(1, time.n);
  b["real_time"] = time.median;
  b["cpu_time"] = time.median;
  b["time_unit"] = "ms";
  b["label"] = label;
  return b;
}

// A step's counters: where the step went and its throughput.
void add_step_counters(ordered_json& b, const step_record& r) {
  b["exposed_ms"] = r.exposed_ms;
  for (const breakdown_part& p : breakdown_parts())
    b[std::string(p.key) + "_ms"] = r.breakdown_ms.*p.value;
  if (r.compute_only_ms) b["compute_only_ms"] = r.compute_only_ms->median;
  b["tokens_per_s_per_gpu"] = r.tokens_per_s_per_gpu;
  b["model_tflops_per_gpu"] = r.model_tflops_per_gpu;
  b["mfu"] = r.mfu;
}

}  // namespace

ordered_json gbench_json(const result_doc& d, const std::string& date) {
  ordered_json out;
  out["context"] = context(d.env, d.tool, d.simulated(), date);
  out["benchmarks"] = ordered_json::array();
  const std::string label = d.simulated() ? "SIMULATED" : d.backend();
  int index = 0;
  for (const case_record& c : d.cases) {
    ordered_json b = benchmark(c.scenario + "/" + c.id, index++, c.m.overlapped_ms, label);
    add_counters(b, c);
    out["benchmarks"].push_back(std::move(b));
  }
  return out;
}

ordered_json gbench_json(const step_doc& d, const std::string& date) {
  ordered_json out;
  out["context"] = context(d.env, d.tool, d.simulated(), date);
  out["benchmarks"] = ordered_json::array();
  const std::string label = d.simulated() ? "SIMULATED" : env_text(d.env, "backend");
  int index = 0;
  for (const step_record& r : d.cases) {
    ordered_json b = benchmark("step/" + r.id, index++, r.step_ms, label);
    add_step_counters(b, r);
    out["benchmarks"].push_back(std::move(b));
  }
  return out;
}

void write_gbench_json(const std::string& path, const result_doc& d) {
  write_file_atomic(path, gbench_json(d, now_iso8601()).dump(2) + "\n");
}

void write_gbench_json(const std::string& path, const step_doc& d) {
  write_file_atomic(path, gbench_json(d, now_iso8601()).dump(2) + "\n");
}

}  // namespace ob
