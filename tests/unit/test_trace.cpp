// Chrome-trace writer: one process per add(), one named track per stream, one complete event
// per op.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "base/error.hpp"
#include "base/json_util.hpp"
#include "model/gpu_spec.hpp"
#include "results/trace.hpp"
#include "sim/simulator.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

schedule three_streams() {
  schedule s;
  s.name = "trace";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("tp_comm", stream_role::comm, -1);
  const int p2p = s.add_stream("ring", stream_role::p2p, -1);
  const int g = s.add_op("fc2_gemm", compute, test::gemm(4096, 8192, 3584), {}, "fc2_fprop");
  s.add_op("fc2_rs", comm, test::collective(coll_op::reduce_scatter, 64u << 20, 8, 16), {g},
           "fc2_fprop");
  p2p_params x;
  x.bytes = 8u << 20;
  x.group_size = 8;
  s.add_op("ring_send", p2p, x);
  return s;
}

std::vector<json> events_named(const json& trace, const std::string& ph, const std::string& name) {
  std::vector<json> out;
  for (const json& e : trace.at("traceEvents"))
    if (e.at("ph") == ph && (name.empty() || e.at("name") == name)) out.push_back(e);
  return out;
}

TEST(Trace, OneTrackPerStreamNamedByRole) {
  const schedule s = three_streams();
  const sim_result r = simulate(s, load_gpu_spec("h100_sxm"), {});
  trace_writer w;
  w.add(s, r.intervals(), 0, "overlapped");
  const json t = w.to_json();
  std::map<int, std::string> tracks;
  for (const json& e : events_named(t, "M", "thread_name")) {
    EXPECT_EQ(e.at("pid"), 0);
    EXPECT_TRUE(tracks.emplace(e.at("tid").get<int>(), e.at("args").at("name")).second);
  }
  ASSERT_EQ(tracks.size(), s.streams.size());
  EXPECT_EQ(tracks.at(0), "compute (compute)");
  EXPECT_EQ(tracks.at(1), "tp_comm (comm)");
  EXPECT_EQ(tracks.at(2), "ring (p2p)");
  // Every op lands on its stream's track.
  const auto ops = events_named(t, "X", "");
  ASSERT_EQ(ops.size(), s.ops.size());
  for (const json& e : ops) {
    const op& o = s.ops.at(e.at("args").at("op_id").get<int>());
    EXPECT_EQ(e.at("tid"), o.stream);
    EXPECT_EQ(e.at("name"), o.name);
  }
}

TEST(Trace, CompleteEventsCarryTimesAndArgs) {
  const schedule s = three_streams();
  const sim_result r = simulate(s, load_gpu_spec("h100_sxm"), {});
  trace_writer w;
  w.add(s, r.intervals(), 3, "rank 0");
  const json t = w.to_json();
  const auto gemm = events_named(t, "X", "fc2_gemm").at(0);
  EXPECT_EQ(gemm.at("ts").get<double>(), r.ops[0].start_us);
  EXPECT_EQ(gemm.at("dur").get<double>(), r.ops[0].end_us - r.ops[0].start_us);
  EXPECT_EQ(gemm.at("pid"), 3);
  EXPECT_EQ(gemm.at("args").at("kind"), "gemm");
  EXPECT_EQ(gemm.at("args").at("slot"), "fc2_fprop");
  EXPECT_EQ(gemm.at("args").at("shape"), "4096x8192x3584");
  const auto rs = events_named(t, "X", "fc2_rs").at(0);
  EXPECT_EQ(rs.at("args").at("kind"), "collective");
  EXPECT_EQ(rs.at("args").at("op"), "reduce_scatter");
  EXPECT_EQ(rs.at("args").at("bytes"), 64u << 20);
  const auto send = events_named(t, "X", "ring_send").at(0);
  EXPECT_EQ(send.at("args").at("kind"), "p2p");
  EXPECT_EQ(send.at("args").at("bytes"), 8u << 20);
  EXPECT_FALSE(send.at("args").contains("slot"));  // none given
}

TEST(Trace, OneProcessPerAddCall) {
  const schedule s = three_streams();
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  const schedule serial = derive_variant(s, variant::serial);
  trace_writer w;
  w.add(s, simulate(s, gpu, {}).intervals(), 0, "overlapped");
  w.add(serial, simulate(serial, gpu, {}).intervals(), 1, "serial");
  const json t = w.to_json();
  std::map<int, std::string> processes;
  for (const json& e : events_named(t, "M", "process_name"))
    processes.emplace(e.at("pid").get<int>(), e.at("args").at("name"));
  EXPECT_EQ(processes, (std::map<int, std::string>{{0, "overlapped"}, {1, "serial"}}));
  std::set<int> serial_tids;
  for (const json& e : events_named(t, "X", ""))
    if (e.at("pid") == 1) serial_tids.insert(e.at("tid").get<int>());
  EXPECT_EQ(serial_tids, std::set<int>{0});
  EXPECT_EQ(events_named(t, "M", "thread_name").size(), s.streams.size() + 1);
}

TEST(Trace, WritesParsableFileAtomically) {
  const schedule s = three_streams();
  trace_writer w;
  w.add(s, simulate(s, load_gpu_spec("h100_sxm"), {}).intervals(), 0, "overlapped");
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("ob_trace_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  const std::string path = (dir / "sub" / "trace.json").string();
  w.write(path);
  std::ifstream in(path);
  const json back = json::parse(in);
  EXPECT_EQ(back, w.to_json());
  // Only the file itself: the temporary was renamed away.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "sub")) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
  std::filesystem::remove_all(dir);
}

TEST(Trace, RejectsIntervalOfUnknownOp) {
  const schedule s = three_streams();
  trace_writer w;
  EXPECT_THROW(w.add(s, {{7, 0.0, 1.0}}, 0, "bad"), runtime_failure);
}

}  // namespace
}  // namespace ob
