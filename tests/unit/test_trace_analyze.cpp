// `analyze` (src/trace): interval arithmetic, kernel classes, layouts, and a synthetic Kineto
// trace written here, plain and gzip, read back and measured (docs/ANALYZE.md).
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "base/error.hpp"
#include "trace/analyze.hpp"
#include "trace/intervals.hpp"
#include "trace/kernel_class.hpp"
#include "trace/kineto_reader.hpp"
#include "trace/layout.hpp"
#include "trace/nsys_reader.hpp"
#include "trace/trace_input.hpp"

namespace ob::trace {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() : dir_(fs::temp_directory_path() / ("ob_trace_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
  }
  ~TempDir() { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
};

std::string kernel(const std::string& name, double ts, double dur, int stream,
                   const std::string& extra_args = "") {
  return R"({"ph": "X", "cat": "kernel", "name": ")" + name + R"(", "pid": 0, "tid": )" +
         std::to_string(stream) + R"(, "ts": )" + std::to_string(ts) + R"(, "dur": )" +
         std::to_string(dur) + R"(, "args": {"device": 0, "stream": )" + std::to_string(stream) +
         extra_args + "}}";
}

std::string step(int n, double ts, double dur) {
  return R"({"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#)" + std::to_string(n) +
         R"(", "pid": 1, "tid": 1, "ts": )" + std::to_string(ts) + R"(, "dur": )" +
         std::to_string(dur) + "}";
}

std::string trace_text(int rank, const std::vector<std::string>& events) {
  std::string s = R"({"schemaVersion": 1, "distributedInfo": {"backend": "nccl", "rank": )" +
                  std::to_string(rank) + R"(, "world_size": 8}, "traceEvents": [)";
  for (std::size_t i = 0; i < events.size(); ++i) s += (i ? ", " : "") + events[i];
  return s + R"(], "traceName": "x"})";
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

void write_gz(const std::string& path, const std::string& text, std::size_t keep = 0) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  if (keep > 0) fs::resize_file(path, keep);
}

// Compute [0, 100) µs on stream 7, an all-reduce [50, 150) µs on stream 20: 100 µs of
// communication, of which the last 50 µs run with no compute beside them.
std::vector<std::string> half_covered() {
  return {kernel("sm90_xmma_gemm_bf16bf16_bf16f32", 1000, 100, 7),
          kernel("ncclDevKernel_AllReduce_Sum_bf16_RING_LL", 1050, 100, 20,
                 R"(, "Collective name": "allreduce", "Process Group Ranks": "[0, 1, 2, 3]")")};
}

TEST(TraceIntervals, UnionAndUncovered) {
  const auto m = merge_intervals({{10, 20}, {0, 5}, {15, 30}, {40, 40}});
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(covered_length(m), 25);
  EXPECT_EQ(uncovered_length({{0, 100}}, {{10, 20}, {50, 60}, {90, 200}}), 70);
  EXPECT_EQ(uncovered_length({{0, 10}, {20, 30}}, {}), 20);
  EXPECT_EQ(uncovered_length({{0, 10}, {20, 30}}, {{0, 30}}), 0);
}

TEST(TraceKernelClass, OneTableNamesEveryFamily) {
  EXPECT_EQ(classify_kernel("ncclDevKernel_AllReduce_Sum_f32_RING_LL").kind,
            kernel_kind::all_reduce);
  EXPECT_EQ(classify_kernel("ncclKernel_ReduceScatter_RING_LL_Sum_bf16").kind,
            kernel_kind::reduce_scatter);
  EXPECT_EQ(classify_kernel("ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)").kind,
            kernel_kind::send_recv);
  EXPECT_EQ(refine_by_collective(classify_kernel("ncclDevKernel_SendRecv"), "all_to_all").kind,
            kernel_kind::all_to_all);
  EXPECT_EQ(classify_kernel("userbuffers_fp16_sum_inplace_gpu_rr_rs").kind,
            kernel_kind::userbuffers);
  EXPECT_EQ(classify_kernel("void deep_ep::intranode::dispatch<8, 768>(...)").kind,
            kernel_kind::ep_dispatch);
  EXPECT_EQ(classify_kernel("hybrid_ep::combine_kernel").kind, kernel_kind::ep_combine);
  EXPECT_EQ(classify_kernel("nvshmemi_transfer_kernel").cat, category::comm);
  // RCCL's generic kernel (ROCm), as TraceLens names communication too.
  EXPECT_EQ(classify_kernel("void rcclGenericKernel<1, false>(ncclDevComm*)").kind,
            kernel_kind::other_comm);
  EXPECT_EQ(classify_kernel("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTN").kind, kernel_kind::gemm);
  EXPECT_EQ(classify_kernel("flash_fwd_kernel<Flash_fwd_kernel_traits>").kind,
            kernel_kind::attention);
  EXPECT_EQ(classify_kernel("void at::native::vectorized_elementwise_kernel<4>").kind,
            kernel_kind::elementwise);
  EXPECT_TRUE(is_unknown(classify_kernel("my_custom_kernel")));
  EXPECT_EQ(classify_copy(true).cat, category::comm);
  EXPECT_EQ(classify_copy(false).cat, category::memory);
}

TEST(TraceKineto, MicrosecondTextIsExactToTheNanosecond) {
  EXPECT_EQ(microseconds_text_to_ns("1700000000123.456"), 1700000000123456);
  EXPECT_EQ(microseconds_text_to_ns("5"), 5000);
  EXPECT_EQ(microseconds_text_to_ns("0.5"), 500);
  EXPECT_EQ(microseconds_text_to_ns("1.5e3"), 1500000);
}

TEST(TraceKineto, BaseTimeNanosecondsPutsTimesOnTheEpochClock) {
  TempDir d;
  const std::string p = d.path("r.json");
  std::string text = trace_text(0, {step(1, 0, 500), kernel("gemm", 10, 5, 7)});
  text.insert(1, R"("baseTimeNanoseconds": 1700000000000000000, )");
  write_text(p, text);
  const rank_trace t = read_kineto(p);
  EXPECT_EQ(t.events.at(0).start_ns, 1700000000000010000);
  EXPECT_EQ(t.steps.at(0).start_ns, 1700000000000000000);
  EXPECT_EQ(t.clock_origin_ns, 1700000000000000000);
}

TEST(TraceLayout, MegatronRankOrder) {
  const parallel_layout tp4dp2 = resolve_layout(parse_layout("tp=4"), 8);
  EXPECT_EQ(tp4dp2.dp, 2);
  EXPECT_EQ(dimension_of({0, 1, 2, 3}, tp4dp2), "tp");
  EXPECT_EQ(dimension_of({4, 5, 6, 7}, tp4dp2), "tp");
  EXPECT_EQ(dimension_of({1, 5}, tp4dp2), "dp");
  EXPECT_EQ(dimension_of({3}, tp4dp2), "unknown");
  const parallel_layout l = resolve_layout(parse_layout("tp=2,cp=2,pp=2"), 8);
  EXPECT_EQ(dimension_of({0, 2}, l), "cp");
  EXPECT_EQ(dimension_of({1, 5}, l), "pp");
  EXPECT_EQ(dimension_of({0, 1, 2, 3}, l), "tp+cp");
  const parallel_layout moe = resolve_layout(parse_layout("tp=1,ep=2"), 4);
  EXPECT_EQ(dimension_of({0, 1}, moe), "ep");
  EXPECT_EQ(dimension_of({0, 1, 2, 3}, moe), "dp");
  EXPECT_THROW(parse_layout("tp=0"), config_error);
  EXPECT_THROW(parse_layout("tq=2"), config_error);
  EXPECT_THROW(parse_layout("tp=2,tp=2"), config_error);
  EXPECT_THROW(resolve_layout(parse_layout("tp=3"), 8), config_error);
}

TEST(TraceKineto, ExposedIsCommunicationNoComputeCovers) {
  TempDir d;
  for (const bool gz : {false, true}) {
    const std::string p = d.path(gz ? "r.json.gz" : "r.json");
    const std::string text = trace_text(2, half_covered());
    gz ? write_gz(p, text) : write_text(p, text);
    const rank_trace t = read_kineto(p);
    EXPECT_EQ(t.rank, 2);
    ASSERT_EQ(t.events.size(), 2u);
    measure_options opt;
    opt.layout = resolve_layout(parse_layout("tp=4"), 8);
    const rank_metrics m = measure_rank(t, opt);
    EXPECT_NEAR(m.t.span_ms, 0.150, 1e-9);
    EXPECT_NEAR(m.t.compute_ms, 0.100, 1e-9);
    EXPECT_NEAR(m.t.comm_ms, 0.100, 1e-9);
    EXPECT_NEAR(m.t.exposed_comm_ms, 0.050, 1e-9);
    EXPECT_NEAR(m.t.overlap_pct, 50.0, 1e-9);
    EXPECT_NEAR(m.by_kind.at("all_reduce").exposed_ms, 0.050, 1e-9);
    EXPECT_NEAR(m.by_dim.at("tp").ms, 0.100, 1e-9);
  }
}

TEST(TraceKineto, ComputeOnAnyStreamOfTheGpuCovers) {
  TempDir d;
  const std::string p = d.path("r.json");
  // Two compute kernels on two streams cover [0, 60) and [80, 120); comm runs [40, 100): exposed
  // [60, 80) = 20 µs. A memset [60, 80) covers nothing.
  std::vector<std::string> ev{kernel("cutlass_gemm", 0, 60, 7), kernel("flash_fwd", 80, 40, 9),
                              kernel("ncclDevKernel_AllGather_RING_LL", 40, 60, 20),
                              R"x({"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", )x"
                              R"x("pid": 0, "tid": 7, "ts": 60, "dur": 20, "args": {}})x"};
  write_text(p, trace_text(0, ev));
  const rank_metrics m = measure_rank(read_kineto(p), {});
  EXPECT_NEAR(m.t.exposed_comm_ms, 0.020, 1e-9);
  EXPECT_NEAR(m.t.memory_ms, 0.020, 1e-9);
  EXPECT_TRUE(m.by_dim.empty());  // no layout: per kind only
  EXPECT_EQ(m.compute_by_kind.count("attention"), 1u);
}

TEST(TraceKineto, StepsSplitByProfilerStep) {
  TempDir d;
  const std::string p = d.path("r.json");
  std::vector<std::string> ev{step(5, 0, 500), step(6, 500, 500), step(7, 1000, 500)};
  for (int s = 0; s < 3; ++s) {
    ev.push_back(kernel("gemm", s * 500 + 10, 100, 7));
    // Step 7's all-reduce starts after its compute: 40 µs exposed; the others are covered.
    ev.push_back(kernel("ncclDevKernel_AllReduce", s * 500 + (s == 2 ? 110 : 20), 40, 20));
  }
  write_text(p, trace_text(0, ev));
  const rank_trace t = read_kineto(p);
  const rank_metrics all = measure_rank(t, {});
  ASSERT_EQ(all.steps.size(), 3u);
  EXPECT_EQ(all.steps[0].number, 5);
  EXPECT_NEAR(all.steps[0].t.exposed_comm_ms, 0.0, 1e-9);
  EXPECT_NEAR(all.steps[2].t.exposed_comm_ms, 0.040, 1e-9);
  measure_options last;
  last.last_steps = 1;
  const rank_metrics one = measure_rank(t, last);
  ASSERT_EQ(one.steps.size(), 1u);
  EXPECT_EQ(one.steps[0].number, 7);
  EXPECT_NEAR(one.t.exposed_comm_ms, 0.040, 1e-9);
}

// The report's kernel-level strip: the median step's busy intervals on one GPU, from its first
// activity.
TEST(TraceKineto, TimelineOfTheMedianStep) {
  TempDir d;
  const std::string p = d.path("r.json");
  // Step spans 100, 250 and 300 µs; the median, step 2: GEMM [0, 200), all-reduce [150, 250).
  write_text(p, trace_text(0, {step(1, 0, 500), step(2, 500, 500), step(3, 1000, 500),
                               kernel("gemm", 0, 100, 7), kernel("gemm", 500, 200, 7),
                               kernel("ncclDevKernel_AllReduce", 650, 100, 20),
                               kernel("gemm", 1000, 300, 7)}));
  measure_options opt;
  opt.timeline = true;
  const rank_metrics m = measure_rank(read_kineto(p), opt);
  ASSERT_TRUE(m.timeline.has_value());
  const rank_timeline& t = *m.timeline;
  EXPECT_EQ(t.step, 2);
  using ivs = std::vector<interval>;
  EXPECT_EQ(t.compute, (ivs{{0, 200'000}}));
  EXPECT_EQ(t.comm, (ivs{{150'000, 250'000}}));
  EXPECT_EQ(t.exposed, (ivs{{200'000, 250'000}}));
  EXPECT_FALSE(t.truncated);
  EXPECT_FALSE(measure_rank(read_kineto(p), {}).timeline.has_value());
}

TEST(TraceKineto, BadInputNamesTheFileAndTheProblem) {
  TempDir d;
  const auto message = [](const std::string& p) {
    try {
      read_kineto(p);
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  write_text(d.path("a.json"), "hello");
  EXPECT_NE(message(d.path("a.json")).find("not a Kineto/Chrome trace"), std::string::npos);
  write_text(d.path("b.json"), R"({"foo": 1})");
  EXPECT_NE(message(d.path("b.json")).find("no \"traceEvents\""), std::string::npos);
  write_text(d.path("c.json"), trace_text(0, {step(1, 0, 10)}));
  EXPECT_NE(message(d.path("c.json")).find("no GPU kernels"), std::string::npos);
  std::string big = trace_text(0, half_covered());
  for (int i = 0; i < 2000; ++i) big += " ";
  write_gz(d.path("d.json.gz"), big, 40);
  const std::string trunc = message(d.path("d.json.gz"));
  EXPECT_NE(trunc.find(d.path("d.json.gz")), std::string::npos) << trunc;
  EXPECT_TRUE(trunc.find("gzip") != std::string::npos ||
              trunc.find("JSON error") != std::string::npos)
      << trunc;
}

// One rank of an 8-rank TP4 x DP2 job: how each exposed interval's cause is found.
TEST(TraceDiagnosis, CausesSumToExposed) {
  TempDir d;
  const std::string p = d.path("r.json");
  const std::string tp = R"(, "Process Group Ranks": "[0, 1, 2, 3]")";
  const std::string dp = R"(, "Process Group Ranks": "[0, 4]")";
  std::vector<std::string> ev{
      kernel("gemm_a", 0, 100, 7), kernel("gemm_b", 200, 100, 7),
      // On the compute stream: 10 µs exposed in the gap [100, 200).
      kernel("ncclDevKernel_AllGather", 100, 10, 7, tp),
      // A pipeline receive in the gap: 30 µs.
      kernel("ncclDevKernel_SendRecv", 150, 30, 20),
      // A TP all-gather in the gap, partly hidden by gemm_b: 10 µs exposed, other.
      kernel("ncclDevKernel_AllGather", 190, 20, 21, tp),
      // After the last compute: DP is a late bucket (50 µs), TP the tail (20 µs).
      kernel("ncclDevKernel_AllReduce", 300, 50, 22, dp),
      kernel("ncclDevKernel_AllReduce", 360, 20, 23, tp)};
  write_text(p, trace_text(0, ev));
  measure_options opt;
  opt.layout = resolve_layout(parse_layout("tp=4"), 8);
  const rank_metrics m = measure_rank(read_kineto(p), opt);
  const auto& c = m.causes.ms;
  EXPECT_NEAR(c.at("serialized_same_stream"), 0.010, 1e-9);
  EXPECT_NEAR(c.at("bubble"), 0.030, 1e-9);
  EXPECT_NEAR(c.at("other"), 0.010, 1e-9);
  EXPECT_NEAR(c.at("late_bucket"), 0.050, 1e-9);
  EXPECT_NEAR(c.at("tail_not_overlapped"), 0.020, 1e-9);
  EXPECT_EQ(m.causes.main_cause, "late_bucket");
  double sum = 0;
  for (const auto& [cause, ms] : c) sum += ms;
  EXPECT_NEAR(sum, m.t.exposed_comm_ms, 1e-9);
}

std::string launch(double ts, double dur, int correlation) {
  return R"({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, )"
         R"("ts": )" +
         std::to_string(ts) + R"(, "dur": )" + std::to_string(dur) +
         R"(, "args": {"correlation": )" + std::to_string(correlation) + "}}";
}

// The launch-to-start wait: behind compute (sm_starved) or behind the stream's own previous
// kernel (queue_blocked).
TEST(TraceDiagnosis, LaunchWaits) {
  TempDir d;
  const std::string p = d.path("r.json");
  std::vector<std::string> ev{
      kernel("gemm", 0, 100, 7),
      // Launched at 5 µs, started at 90 while the GEMM held the GPU: 30 µs exposed.
      launch(0, 5, 11), kernel("ncclDevKernel_AllGather", 90, 40, 20, R"(, "correlation": 11)"),
      // No launch known: after the last compute, the tail (70 µs claimed after the all-gather).
      kernel("ncclDevKernel_Broadcast", 100, 100, 21),
      // Launched at 110, started at 200 behind the broadcast on its stream: 20 µs.
      launch(105, 5, 12), kernel("ncclDevKernel_AllReduce", 200, 20, 21, R"(, "correlation": 12)")};
  write_text(p, trace_text(0, ev));
  const rank_metrics m = measure_rank(read_kineto(p), {});
  const auto& c = m.causes.ms;
  EXPECT_NEAR(c.at("sm_starved"), 0.030, 1e-9);
  EXPECT_NEAR(c.at("tail_not_overlapped"), 0.070, 1e-9);
  EXPECT_NEAR(c.at("queue_blocked"), 0.020, 1e-9);
  EXPECT_NEAR(m.t.exposed_comm_ms, 0.120, 1e-9);
}

// The GPU runs behind the CPU: a kernel belongs to the step whose CPU range issued it, however
// late it starts; one whose call the trace does not hold (while it holds calls) was issued
// before the profile began, and belongs to no step.
TEST(TraceKineto, StepsOwnWhatTheirCpuRangeIssued) {
  TempDir d;
  const std::string p = d.path("r.json");
  const auto corr = [](int c) { return R"(, "correlation": )" + std::to_string(c); };
  std::vector<std::string> ev{
      step(1, 0, 100), step(2, 100, 100),
      // Launched in step 1, run in step 2's time: compute [150, 250), all-reduce [250, 300).
      launch(10, 5, 1), kernel("gemm", 150, 100, 7, corr(1)), launch(20, 5, 2),
      kernel("ncclDevKernel_AllReduce", 250, 50, 20, corr(2)),
      // A copy issued in step 1 too, by its memcpy call.
      R"({"ph": "X", "cat": "cuda_runtime", "name": "cudaMemcpyAsync", "pid": 1, "tid": 1, )"
      R"("ts": 30, "dur": 5, "args": {"correlation": 4}})",
      R"({"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoD", "pid": 0, "tid": 9, )"
      R"("ts": 400, "dur": 20, "args": {"device": 0, "stream": 9, "correlation": 4}})",
      // Launched in step 2.
      launch(110, 5, 3), kernel("gemm", 300, 50, 7, corr(3)),
      // Its launch is not in the trace: issued before it began.
      kernel("gemm", 120, 10, 7, corr(99))};
  write_text(p, trace_text(0, ev));
  const rank_metrics m = measure_rank(read_kineto(p), {});
  EXPECT_EQ(m.t.kernels, 5);
  ASSERT_EQ(m.steps.size(), 2u);
  EXPECT_EQ(m.steps[0].number, 1);
  EXPECT_EQ(m.steps[0].t.kernels, 3);
  EXPECT_NEAR(m.steps[0].t.compute_ms, 0.100, 1e-9);
  EXPECT_NEAR(m.steps[0].t.exposed_comm_ms, 0.050, 1e-9);
  EXPECT_NEAR(m.steps[0].t.memory_ms, 0.020, 1e-9);
  EXPECT_EQ(m.steps[1].t.kernels, 1);
  EXPECT_NEAR(m.steps[1].t.compute_ms, 0.050, 1e-9);
  // A trace without calls: its kernels' correlations place nothing; their GPU starts do.
  write_text(
      p, trace_text(0, {step(1, 0, 100), step(2, 100, 100), kernel("gemm", 150, 10, 7, corr(1))}));
  const rank_metrics bare = measure_rank(read_kineto(p), {});
  ASSERT_EQ(bare.steps.size(), 1u);
  EXPECT_EQ(bare.steps[0].number, 2);
}

// Communication without process-group args takes those of PyTorch's record_param_comms CPU op
// around its issuing call: a peer copy (a copy-engine collective), and a kernel whose args lack
// them (its kind then follows the op's collective).
TEST(TraceKineto, GroupsFromTheCommOpAroundTheCall) {
  TempDir d;
  const std::string p = d.path("r.json");
  const auto op = [](double ts, const std::string& coll, const std::string& ranks) {
    return R"({"ph": "X", "cat": "cpu_op", "name": "record_param_comms", "pid": 1, "tid": 1, )"
           R"("ts": )" +
           std::to_string(ts) + R"(, "dur": 20, "args": {"Collective name": ")" + coll +
           R"(", "Process Group Ranks": ")" + ranks + R"("}})";
  };
  write_text(
      p,
      trace_text(
          0,
          {op(0, "all_to_all", "[0, 1, 2, 3]"), launch(5, 5, 1),
           kernel("ncclDevKernel_SendRecv", 100, 50, 20, R"(, "correlation": 1)"),
           op(50, "allgather", "[0, 4]"),
           R"({"ph": "X", "cat": "cuda_runtime", "name": "cudaMemcpyAsync", "pid": 1, "tid": 1, )"
           R"("ts": 55, "dur": 5, "args": {"correlation": 2}})",
           R"x({"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy PtoP (Device -> Device)", "pid": 0, )x"
           R"x("tid": 9, "ts": 200, "dur": 30, "args": {"device": 0, "stream": 9, "correlation": 2}})x",
           // Launched outside any such op: no group.
           launch(90, 5, 3),
           kernel("ncclDevKernel_AllReduce", 300, 10, 20, R"(, "correlation": 3)")}));
  measure_options opt;
  opt.layout = resolve_layout(parse_layout("tp=4"), 8);
  const rank_metrics m = measure_rank(read_kineto(p), opt);
  EXPECT_NEAR(m.by_kind.at("all_to_all").ms, 0.050, 1e-9);
  EXPECT_NEAR(m.by_kind.at("p2p_copy").ms, 0.030, 1e-9);
  EXPECT_NEAR(m.by_dim.at("tp").ms, 0.050, 1e-9);
  EXPECT_NEAR(m.by_dim.at("dp").ms, 0.030, 1e-9);
  EXPECT_NEAR(m.by_dim.at("unknown").ms, 0.010, 1e-9);
}

TEST(TraceSteps, BuiltInAndGivenMarkers) {
  EXPECT_EQ(step_marker_number("ProfilerStep#12", "", 0), 12);
  EXPECT_EQ(step_marker_number("iteration 3", "", 0), 3);
  EXPECT_EQ(step_marker_number("step_4", "", 0), 4);
  EXPECT_FALSE(step_marker_number("forward", "", 0));
  EXPECT_FALSE(step_marker_number("Optimizer.step#SGD.step", "", 0));
  EXPECT_EQ(step_marker_number("train_step[7]", "train_step", 0), 7);
  EXPECT_EQ(step_marker_number("train_step", "train_step", 5), 5);
  EXPECT_FALSE(step_marker_number("ProfilerStep#1", "train_step", 0));
}

TEST(TraceAnalyze, RanksFromDistributedInfoAndNoTwoAlike) {
  TempDir d;
  write_text(d.path("a.json"), trace_text(1, half_covered()));
  write_text(d.path("b.json"), trace_text(0, half_covered()));
  analyze_request req;
  req.inputs = {d.path("a.json"), d.path("b.json")};
  const analysis a = analyze_traces(req);
  ASSERT_EQ(a.ranks.size(), 2u);
  EXPECT_EQ(a.ranks[0].file, d.path("b.json"));
  EXPECT_EQ(analysis_to_json(a)["schema"], analysis_schema_v1);
  EXPECT_NE(format_analysis(a).find("MEASURED"), std::string::npos);
  write_text(d.path("b.json"), trace_text(1, half_covered()));
  EXPECT_THROW(analyze_traces(req), config_error);
}

}  // namespace
}  // namespace ob::trace
