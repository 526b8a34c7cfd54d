// CUDA microbenchmarks with manual time from CUDA events: a GEMM alone (8192^3 and the GPT-3 175B
// TP=4 layer GEMMs), the loopback copy proxy alone (and cudaMemcpy D2D as its ceiling), the
// LayerNorm stand-in under SM margins, and a GEMM + copy-proxy pair on two streams.
// scripts/device_validate.sh reads the JSON of this binary (--benchmark_format=json).
// Without a GPU it prints why and exits 0; --benchmark_list_tests lists the names anyway (the
// device script's --quick filter is tested against them).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuda/cublaslt_gemm.hpp"
#include "cuda/cuda_backend.hpp"
#include "cuda/cuda_raii.hpp"
#include "cuda/kernel_grid_probe.hpp"
#include "kernels/kernels.cuh"

namespace {

using namespace ob;
using namespace ob::cuda;

const error_context bench_ctx{0, 0, "bench"};

// The element type of the copy, LayerNorm and pair benchmarks (what TE's collectives move).
constexpr dtype data_type = dtype::bf16;

struct gemm_shape {
  const char* name;
  std::int64_t m, n, k;
};

// GPT-3 175B, T = 2048 tokens, h = 12288, ffn = 4h, TP = 4 (the forward GEMMs of one layer).
const gemm_shape gemm_shapes[] = {
    {"square8192", 8192, 8192, 8192}, {"gpt3_qkv", 2048, 9216, 12288},
    {"gpt3_proj", 2048, 12288, 3072}, {"gpt3_fc1", 2048, 12288, 12288},
    {"gpt3_fc2", 2048, 12288, 12288},
};

// Times `body` between two events on `s`, once per benchmark iteration.
template <class Body>
void time_with_events(benchmark::State& state, cudaStream_t s, Body body, double* total_s) {
  event_handle start = make_event(true, bench_ctx), stop = make_event(true, bench_ctx);
  // Warm-up outside the timed loop: module load, heuristics and clocks settle first.
  for (int i = 0; i < 3; ++i) body();
  OB_CUDA_CHECK(bench_ctx, cudaStreamSynchronize(s));
  *total_s = 0;
  for (auto _ : state) {
    OB_CUDA_CHECK(bench_ctx, cudaEventRecord(start.get(), s));
    body();
    OB_CUDA_CHECK(bench_ctx, cudaEventRecord(stop.get(), s));
    OB_CUDA_CHECK(bench_ctx, cudaEventSynchronize(stop.get()));
    float ms = 0;
    OB_CUDA_CHECK(bench_ctx, cudaEventElapsedTime(&ms, start.get(), stop.get()));
    state.SetIterationTime(ms * 1e-3);
    *total_s += ms * 1e-3;
  }
}

// One more GEMM, traced by CUPTI: the grid of the kernel cuBLASLt chose against the SM target,
// so the summary can say whether an SM margin was real (docs/ARCHITECTURE.md §6.3).
void probe_grid(benchmark::State& state, const std::function<void()>& launch, cudaStream_t s,
                int sm_target) {
  std::string why;
  const auto probe = kernel_grid_probe::open(&why);
  if (!probe) {
    state.SetLabel("grid probe unavailable: " + why);
    return;
  }
  cudaDeviceProp prop{};
  OB_CUDA_CHECK(bench_ctx, cudaGetDeviceProperties(&prop, 0));
  const auto kernels = probe->record(launch, s);
  const sm_target_check c = check_sm_target(kernels, prop.multiProcessorCount, sm_target);
  state.counters["sm_count"] = c.sm_count;
  state.counters["sm_target"] = c.sm_target;
  state.counters["grid_ctas"] = static_cast<double>(c.largest_grid);
  state.counters["kernels"] = static_cast<double>(kernels.size());
  state.counters["target_respected"] = c.respected ? 1 : 0;
  state.SetLabel((kernels.empty() ? std::string("?") : kernels.back().name.substr(0, 80)) + "; " +
                 c.verdict);
}

void bm_gemm(benchmark::State& state, gemm_shape shape, dtype type, int sm_target) {
  try {
    cublaslt_gemm gemm(bench_ctx);
    const gemm_key key{shape.m, shape.n, shape.k, type, sm_target};
    const std::size_t in = dtype_bytes(type);
    device_buffer x(static_cast<std::size_t>(shape.m * shape.k) * in, bench_ctx);
    device_buffer w(static_cast<std::size_t>(shape.n * shape.k) * in, bench_ctx);
    device_buffer d(static_cast<std::size_t>(shape.m * shape.n) * output_bytes_per_elem(type),
                    bench_ctx);
    device_buffer ws(cublaslt_gemm::workspace_bytes, bench_ctx);
    stream_handle s = make_stream(0, bench_ctx);
    OB_CUDA_CHECK(bench_ctx, kernels::launch_fill_random(x.get(), shape.m * shape.k,
                                                         operand_elem(type), 1, 1.0f, s.get()));
    OB_CUDA_CHECK(bench_ctx, kernels::launch_fill_random(w.get(), shape.n * shape.k,
                                                         operand_elem(type), 2, 1.0f, s.get()));
    double total_s = 0;
    const auto launch = [&] {
      gemm.run(key, {x.get(), w.get(), d.get()}, ws.get(), s.get(), bench_ctx);
    };
    time_with_events(state, s.get(), launch, &total_s);
    probe_grid(state, launch, s.get(), sm_target);
    const double flops = 2.0 * shape.m * shape.n * shape.k;
    state.counters["TFLOPS"] = total_s > 0 ? flops * state.iterations() / total_s * 1e-12 : 0;
    state.counters["m"] = static_cast<double>(shape.m);
    state.counters["n"] = static_cast<double>(shape.n);
    state.counters["k"] = static_cast<double>(shape.k);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void set_bandwidth(benchmark::State& state, std::size_t bytes, double total_s) {
  const double per_s = total_s > 0 ? static_cast<double>(bytes) * state.iterations() / total_s : 0;
  state.counters["GBps"] = per_s * 1e-9;          // bytes copied per second (algbw-like)
  state.counters["hbm_GBps"] = 2 * per_s * 1e-9;  // bytes read + written
  state.counters["bytes"] = static_cast<double>(bytes);
}

// Times `copy(dst, src, stream)` over `bytes` of patterned data: the copy proxy and cudaMemcpy
// are measured the same way so their ratio is fair.
template <class Copy>
void time_copy(benchmark::State& state, std::size_t bytes, Copy copy) {
  try {
    device_buffer src(bytes, bench_ctx), dst(bytes, bench_ctx);
    stream_handle s = make_stream(0, bench_ctx);
    OB_CUDA_CHECK(bench_ctx, kernels::launch_fill_pattern(src.get(), bytes / dtype_bytes(data_type),
                                                          operand_elem(data_type), 0, 0, s.get()));
    double total_s = 0;
    time_with_events(
        state, s.get(), [&] { copy(dst.get(), src.get(), s.get()); }, &total_s);
    set_bandwidth(state, bytes, total_s);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void bm_copy_proxy(benchmark::State& state, std::size_t bytes, int ctas) {
  time_copy(state, bytes, [&](void* dst, const void* src, cudaStream_t s) {
    OB_CUDA_CHECK(bench_ctx, kernels::launch_copy_proxy(dst, src, bytes, ctas, s));
  });
  state.counters["ctas"] = ctas;
}

void bm_memcpy(benchmark::State& state, std::size_t bytes) {
  time_copy(state, bytes, [&](void* dst, const void* src, cudaStream_t s) {
    OB_CUDA_CHECK(bench_ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
  });
}

void bm_layernorm(benchmark::State& state, int sm_margin) {
  try {
    cudaDeviceProp prop{};
    OB_CUDA_CHECK(bench_ctx, cudaGetDeviceProperties(&prop, 0));
    const std::size_t elems = std::size_t{2048} * 12288;
    const std::size_t bytes = elems * dtype_bytes(data_type);
    device_buffer in(bytes, bench_ctx), out(bytes, bench_ctx);
    stream_handle s = make_stream(0, bench_ctx);
    OB_CUDA_CHECK(bench_ctx, kernels::launch_fill_random(in.get(), elems, operand_elem(data_type),
                                                         3, 1.0f, s.get()));
    const int ctas = std::max(1, prop.multiProcessorCount - sm_margin);
    double total_s = 0;
    time_with_events(
        state, s.get(),
        [&] {
          OB_CUDA_CHECK(bench_ctx, kernels::launch_layernorm(out.get(), in.get(), elems, 12288 / 2,
                                                             ctas, s.get()));
        },
        &total_s);
    set_bandwidth(state, bytes, total_s);
    state.counters["ctas"] = ctas;
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// A GEMM on a low-priority compute stream and a copy proxy on a high-priority comm stream,
// launched together (comm first, as TE orders them): the overlapped time of the pair.
void bm_pair(benchmark::State& state, std::size_t bytes, int ctas) {
  try {
    int least = 0, greatest = 0;
    OB_CUDA_CHECK(bench_ctx, cudaDeviceGetStreamPriorityRange(&least, &greatest));
    cublaslt_gemm gemm(bench_ctx);
    const gemm_key key{8192, 8192, 8192, data_type, 0};
    const std::size_t elems = std::size_t{8192} * 8192;
    device_buffer x(elems * dtype_bytes(data_type), bench_ctx), w(x.bytes(), bench_ctx),
        d(elems * output_bytes_per_elem(data_type), bench_ctx),
        ws(cublaslt_gemm::workspace_bytes, bench_ctx);
    device_buffer src(bytes, bench_ctx), dst(bytes, bench_ctx);
    stream_handle join = make_stream(least, bench_ctx);
    stream_handle compute = make_stream(least, bench_ctx);
    stream_handle comm = make_stream(greatest, bench_ctx);
    OB_CUDA_CHECK(bench_ctx, kernels::launch_fill_random(x.get(), elems, operand_elem(data_type), 1,
                                                         1.f, join.get()));
    OB_CUDA_CHECK(bench_ctx, kernels::launch_fill_random(w.get(), elems, operand_elem(data_type), 2,
                                                         1.f, join.get()));
    OB_CUDA_CHECK(bench_ctx,
                  kernels::launch_fill_pattern(src.get(), bytes / dtype_bytes(data_type),
                                               operand_elem(data_type), 0, 0, join.get()));
    event_handle fork = make_event(false, bench_ctx), done_c = make_event(false, bench_ctx),
                 done_m = make_event(false, bench_ctx);
    double total_s = 0;
    time_with_events(
        state, join.get(),
        [&] {
          OB_CUDA_CHECK(bench_ctx, cudaEventRecord(fork.get(), join.get()));
          OB_CUDA_CHECK(bench_ctx, cudaStreamWaitEvent(comm.get(), fork.get(), 0));
          OB_CUDA_CHECK(bench_ctx, cudaStreamWaitEvent(compute.get(), fork.get(), 0));
          OB_CUDA_CHECK(bench_ctx,
                        kernels::launch_copy_proxy(dst.get(), src.get(), bytes, ctas, comm.get()));
          gemm.run(key, {x.get(), w.get(), d.get()}, ws.get(), compute.get(), bench_ctx);
          OB_CUDA_CHECK(bench_ctx, cudaEventRecord(done_m.get(), comm.get()));
          OB_CUDA_CHECK(bench_ctx, cudaEventRecord(done_c.get(), compute.get()));
          OB_CUDA_CHECK(bench_ctx, cudaStreamWaitEvent(join.get(), done_m.get(), 0));
          OB_CUDA_CHECK(bench_ctx, cudaStreamWaitEvent(join.get(), done_c.get(), 0));
        },
        &total_s);
    state.counters["ms"] = total_s > 0 ? total_s * 1e3 / state.iterations() : 0;
    state.counters["ctas"] = ctas;
    state.counters["bytes"] = static_cast<double>(bytes);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void register_all() {
  auto reg = [](const std::string& name, auto fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.3);
  };
  for (const gemm_shape& s : gemm_shapes) {
    reg(std::string("gemm/") + s.name + "/bf16",
        [s](benchmark::State& st) { bm_gemm(st, s, dtype::bf16, 0); });
  }
  reg("gemm/square8192/fp8",
      [](benchmark::State& st) { bm_gemm(st, gemm_shapes[0], dtype::fp8, 0); });
  // SM-count targets of margins 16 and 32 on a 132-SM H100: the margins the sweeps use.
  for (const gemm_shape& s : gemm_shapes)
    for (int target : {116, 100})
      reg(std::string("gemm/") + s.name + "/bf16/sm" + std::to_string(target),
          [s, target](benchmark::State& st) { bm_gemm(st, s, dtype::bf16, target); });
  const std::size_t gib = std::size_t{1} << 30;
  for (int ctas : {4, 8, 16, 32, 64, 132, 264})
    reg("copy_proxy/1GiB/ctas" + std::to_string(ctas),
        [=](benchmark::State& st) { bm_copy_proxy(st, gib, ctas); });
  reg("memcpy_d2d/1GiB", [=](benchmark::State& st) { bm_memcpy(st, gib); });
  for (int margin : {0, 16, 32})
    reg("layernorm/2048x12288/margin" + std::to_string(margin),
        [margin](benchmark::State& st) { bm_layernorm(st, margin); });
  for (int ctas : {8, 16, 32})
    reg("pair/gemm8192_copy256MiB/ctas" + std::to_string(ctas),
        [ctas](benchmark::State& st) { bm_pair(st, std::size_t{256} << 20, ctas); });
}

}  // namespace

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i)
    listing = listing || std::string(argv[i]).rfind("--benchmark_list_tests", 0) == 0;
  benchmark::Initialize(&argc, argv);
  register_all();
  if (!listing && ob::cuda_device_count() == 0) {
    std::printf("bench_cuda: no CUDA device found; nothing to measure (use bench_sim)\n");
    return 0;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
