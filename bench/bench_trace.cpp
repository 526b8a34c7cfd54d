// `analyze`'s reader throughput (issue 16: ≥ 50 MB/s of trace on this machine): a synthetic
// PyTorch-profiler trace, written once, shaped like a real one (CPU ops with shapes, runtime
// launches, kernels with their launch args, NCCL kernels with process-group args), read plain
// and gzip. bytes_per_second counts the file's bytes as they lie on disk.
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "trace/kineto_reader.hpp"
#include "trace/trace_metrics.hpp"

namespace {

namespace fs = std::filesystem;

std::string events_of_one_op(long long i) {
  const std::string ts = std::to_string(1700000000000000LL + i * 20) + ".125";
  const std::string id = std::to_string(i);
  std::string s;
  s += R"({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1234, "tid": 1234, "ts": )" + ts +
       R"(, "dur": 12.5, "args": {"External id": )" + id +
       R"(, "Record function id": 0, "Input Dims": [[4096, 12288], [12288, 3072]], )"
       R"("Input type": ["c10::BFloat16", "c10::BFloat16"], "Ev Idx": )" +
       id + "}},\n";
  s += R"({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1234, )"
       R"("tid": 1234, "ts": )" +
       ts + R"(, "dur": 4.2, "args": {"External id": )" + id + R"(, "cbid": 211, "correlation": )" +
       id + "}},\n";
  const bool comm = i % 4 == 3;
  s += R"({"ph": "X", "cat": "kernel", "name": ")" +
       std::string(comm ? "ncclDevKernel_AllReduce_Sum_bf16_RING_LL"
                        : "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64") +
       R"(", "pid": 0, "tid": )" + (comm ? "20" : "7") + R"(, "ts": )" + ts +
       R"(, "dur": 15.75, "args": {"External id": )" + id +
       R"(, "queued": 0, "device": 0, "context": 1, "stream": )" + (comm ? "20" : "7") +
       R"(, "correlation": )" + id +
       R"(, "registers per thread": 168, "shared memory": 232448, "blocks per SM": 1.0, )"
       R"("warps per SM": 12.0, "grid": [132, 1, 1], "block": [384, 1, 1], )"
       R"("est. achieved occupancy %": 19)" +
       (comm ? R"(, "Collective name": "allreduce", "In msg nelems": 16777216, )"
               R"("Out msg nelems": 16777216, "Group size": 8, "dtype": "BFloat16", )"
               R"("Process Group Name": "1", "Process Group Ranks": "[0, 1, 2, 3, 4, 5, 6, 7]")"
             : "") +
       "}},\n";
  return s;
}

// About 97 MB: 100,000 ops of three events each, and a step marker every 10,000 ops.
const std::string& trace_path(bool gz) {
  static const std::string plain = [] {
    const std::string p = (fs::temp_directory_path() / "ob_bench_trace.json").string();
    std::ofstream out(p);
    out << R"({"schemaVersion": 1, "distributedInfo": {"rank": 0, "world_size": 8}, )"
           R"("traceEvents": [)"
           "\n";
    for (long long i = 0; i < 100000; ++i) {
      if (i % 10000 == 0)
        out << R"({"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#)" << i / 10000
            << R"(", "pid": 1234, "tid": 1234, "ts": )" << 1700000000000000LL + i * 20
            << R"(, "dur": 200000},)"
               "\n";
      out << events_of_one_op(i);
    }
    out << R"({"ph": "i", "name": "end", "pid": 0, "tid": 0, "ts": 0}]})"
           "\n";
    return p;
  }();
  static const std::string zipped = [] {
    const std::string p = plain + ".gz";
    std::ifstream in(plain, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    gzFile f = gzopen(p.c_str(), "wb6");
    gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
    gzclose(f);
    return p;
  }();
  return gz ? zipped : plain;
}

void read_kineto_trace(benchmark::State& state) {
  const std::string& p = trace_path(state.range(0) != 0);
  const auto bytes = static_cast<std::int64_t>(fs::file_size(p));
  std::size_t events = 0;
  for (auto _ : state) {
    const ob::trace::rank_trace t = ob::trace::read_kineto(p);
    events = t.events.size();
    benchmark::DoNotOptimize(t.events.data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["file_MB"] = static_cast<double>(bytes) / 1e6;
  // The JSON parsed per second: for gzip, the inflated bytes (the plain file's size).
  const auto json_bytes = static_cast<double>(fs::file_size(trace_path(false)));
  state.counters["json_MB_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * json_bytes / 1e6, benchmark::Counter::kIsRate);
  state.counters["gpu_events"] = static_cast<double>(events);
}
BENCHMARK(read_kineto_trace)->Arg(0)->Arg(1)->ArgName("gzip")->Unit(benchmark::kMillisecond);

void measure_kineto_rank(benchmark::State& state) {
  const ob::trace::rank_trace t = ob::trace::read_kineto(trace_path(false));
  for (auto _ : state) benchmark::DoNotOptimize(ob::trace::measure_rank(t, {}));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(t.events.size()));
}
BENCHMARK(measure_kineto_rank)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
