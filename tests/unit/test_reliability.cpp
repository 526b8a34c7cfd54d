// Reliability: journaled sweeps and their streamed result, stopping, resuming, injected faults,
// atomic files and the messages bad input gets (README: journaled sweeps, fault injection).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/atomic_file.hpp"
#include "base/error.hpp"
#include "dist/communicator.hpp"
#include "run/fault_injection.hpp"
#include "run/journal.hpp"
#include "run/pipeline.hpp"
#include "sim/simulator.hpp"

namespace ob {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

class ReliabilityFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ob-rel-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// A small pair sweep on the sim: 4 cases.
sweep_request pair_request(const gpu_spec& gpu) {
  pair_spec p;
  p.gemm = gemm_params{4096, 4096, 4096, dtype::bf16, 0};
  p.coll.op = coll_op::all_gather;
  p.coll.bytes = 16 << 20;
  p.coll.group_size = 4;
  return pair_sweep(p, {{"cdmc", {"1", "8"}}, {"sm_margin", {"0", "16"}}}, "pair --", gpu);
}

// ---- fault injection --------------------------------------------------------------------------

TEST(FaultInjection, ParsesTheTwoFaultsAndRejectsTheRest) {
  const fault_injection s = parse_fault_injection("skip_collective:rank=1:case=2", "--inject");
  EXPECT_EQ(s.kind, fault_kind::skip_collective);
  EXPECT_EQ(s.rank, 1);
  EXPECT_EQ(s.case_index, 2u);
  EXPECT_TRUE(s.hits(fault_kind::skip_collective, 1, 2));
  EXPECT_FALSE(s.hits(fault_kind::skip_collective, 0, 2));
  EXPECT_EQ(parse_fault_injection("die:rank=2:case=0", "x").kind, fault_kind::die);
  EXPECT_FALSE(parse_fault_injection("", "x").active());
  for (const char* bad :
       {"explode:rank=1:case=2", "die:rank=1", "die:rank=-1:case=0", "die:case=1:rank=0",
        "die:rank=1:case=2:extra", "die:rank=x:case=1", "die:rank=99999999999:case=1"}) {
    const std::string msg = message_of([&] { parse_fault_injection(bad, "OVERLAP_BENCH_INJECT"); });
    EXPECT_NE(msg.find("OVERLAP_BENCH_INJECT: '"), std::string::npos) << bad << ": " << msg;
    EXPECT_NE(msg.find("expected skip_collective:rank=R:case=C"), std::string::npos) << msg;
  }
}

TEST(FaultInjection, SkippedCollectiveHangsTheSimNamingRankAndOp) {
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  sweep_request req = pair_request(gpu);
  sim_executor exec(gpu);
  auto comm = make_single_communicator();
  sweep_hooks hooks;
  hooks.inject = parse_fault_injection("skip_collective:rank=1:case=2", "--inject");
  std::vector<std::string> journaled;
  hooks.on_case = [&](const case_record& r) { journaled.push_back(r.id); };
  try {
    run_sweep(req, exec, *comm, gpu, hooks);
    FAIL() << "no hang";
  } catch (const hang_error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.code(), exit_code::hang);
    EXPECT_NE(msg.find("case 2 (" + req.cases[2].id + ")"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 1 never joined it"), std::string::npos) << msg;
    EXPECT_NE(msg.find("all_gather 'all_gather'"), std::string::npos) << msg;
  }
  EXPECT_EQ(journaled.size(), 2u);  // the cases before the hang were handed on
}

TEST(FaultInjection, RankOutsideEveryGroupIsAConfigError) {
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  sweep_request req = pair_request(gpu);  // groups of 4
  sim_executor exec(gpu);
  auto comm = make_single_communicator();
  sweep_hooks hooks;
  hooks.inject = parse_fault_injection("skip_collective:rank=4:case=0", "--inject");
  EXPECT_THROW(run_sweep(req, exec, *comm, gpu, hooks), config_error);
}

// ---- stopping and resuming ----------------------------------------------------------------------

TEST(Sweep, StopsBeforeTheCaseShouldStopRefuses) {
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  const sweep_request req = pair_request(gpu);
  sim_executor exec(gpu);
  auto comm = make_single_communicator();
  sweep_hooks hooks;
  int asked = 0;
  hooks.should_stop = [&] { return ++asked > 2 ? 15 : 0; };
  const sweep_result out = run_sweep(req, exec, *comm, gpu, hooks);
  EXPECT_EQ(out.stopped, 15);
  ASSERT_EQ(out.doc.cases.size(), 2u);
  EXPECT_EQ(out.doc.cases[1].id, req.cases[1].id);
}

TEST(Sweep, FinishedCasesAreKeptAndNotMeasuredAgain) {
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  const sweep_request req = pair_request(gpu);
  sim_executor exec(gpu);
  auto comm = make_single_communicator();
  const sweep_result full = run_sweep(req, exec, *comm, gpu, sweep_hooks{});
  sweep_hooks hooks;
  hooks.finished = {full.doc.cases[3], full.doc.cases[0]};
  hooks.finished[0].warnings = {"from the journal"};
  std::vector<std::string> measured;
  hooks.on_case = [&](const case_record& r) { measured.push_back(r.id); };
  const sweep_result out = run_sweep(req, exec, *comm, gpu, hooks);
  EXPECT_EQ(measured, (std::vector<std::string>{req.cases[1].id, req.cases[2].id}));
  ASSERT_EQ(out.doc.cases.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(out.doc.cases[i].id, req.cases[i].id);
  EXPECT_EQ(out.doc.cases[3].warnings, (std::vector<std::string>{"from the journal"}));
}

// ---- the journal ------------------------------------------------------------------------------

result_doc sample_doc(std::size_t cases) {
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  sim_executor exec(gpu);
  auto comm = make_single_communicator();
  result_doc doc = run_sweep(pair_request(gpu), exec, *comm, gpu, sweep_hooks{}).doc;
  doc.cases.resize(cases);
  doc.config["note"] = "ünïcode, \"quotes\"\nand a newline";
  if (cases > 1) {
    doc.cases[1].m.overlap_efficiency = std::nullopt;
    doc.cases[1].warnings = {"a, warning"};
  }
  return doc;
}

// The journal's reader for layer cases, as cli/sweep_outputs plugs it in.
sweep_journal::case_reader layer_reader(std::vector<case_record>& finished) {
  return [&finished](const ordered_json& c, const std::string& file, const std::string& where) {
    finished.push_back(case_record_from_json(c, file, where));
  };
}

TEST_F(ReliabilityFiles, StreamedResultIsByteForByteTheWholeDocument) {
  for (std::size_t n : {0u, 1u, 4u}) {
    const result_doc doc = sample_doc(n);
    write_file_atomic(path("whole.json"), dump_json(to_json(doc), 2) + "\n");
    write_result_json(path("s.json"), doc);
    EXPECT_EQ(read_file(path("s.json")), read_file(path("whole.json"))) << n << " cases";
    EXPECT_NO_THROW(load_result(path("s.json")));
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2)
      << "no temporary file left";
  EXPECT_THROW(write_json_streamed(path("x.json"), ordered_json{{"cases", 1}}, 0, nullptr),
               std::logic_error);
}

TEST_F(ReliabilityFiles, JournalResumesWhatItHoldsAndDropsACutShortLine) {
  const result_doc doc = sample_doc(4);
  {
    sweep_journal j = sweep_journal::start(path("r.journal"), "abc");
    j.append(to_json(doc.cases[0]));
    j.append(to_json(doc.cases[2]));
    j.append(to_json(doc.cases[0]));  // journaled twice: read back once
    EXPECT_EQ(j.size(), 2u);
  }
  {
    std::ofstream torn(path("r.journal"), std::ios::app);
    torn << R"({"id": "half a li)";  // a crash in the middle of a write
  }
  std::vector<case_record> finished;
  sweep_journal j = sweep_journal::resume(path("r.journal"), "abc", layer_reader(finished));
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(j.size(), 2u);
  EXPECT_EQ(finished[1].id, doc.cases[2].id);
  EXPECT_EQ(finished[0].params, doc.cases[0].params);
  EXPECT_EQ(to_json(finished[1]).dump(), to_json(doc.cases[2]).dump());
  j.append(to_json(doc.cases[1]));
  EXPECT_EQ(j.size(), 3u);
  const std::string text = read_file(path("r.journal"));
  EXPECT_EQ(text.find("half a li"), std::string::npos) << "the torn line is cut off";
  EXPECT_EQ(text.back(), '\n');
}

TEST_F(ReliabilityFiles, JournalOfAnotherSweepOrNoneIsRefused) {
  sweep_journal::start(path("a.journal"), "abc");
  std::vector<case_record> finished;
  const auto reader = layer_reader(finished);
  const std::string other =
      message_of([&] { sweep_journal::resume(path("a.journal"), "xyz", reader); });
  EXPECT_NE(other.find("a.journal: belongs to another sweep"), std::string::npos) << other;
  std::ofstream(path("b.journal")) << "{\"hello\": 1}\n";
  const std::string not_one =
      message_of([&] { sweep_journal::resume(path("b.journal"), "x", reader); });
  EXPECT_NE(not_one.find("b.journal: line 1: not an overlap-bench journal"), std::string::npos)
      << not_one;
  const std::string head = "{\"journal\": \"overlap-bench/journal/v1\", \"fingerprint\": \"x\"}\n";
  for (const auto& [line, says] : std::vector<std::pair<std::string, std::string>>{
           {"{\"id\": 3}", "c.journal: line 2.id: expected a string"},
           {"[1, 2]", "c.journal: line 2: expected a case object"},
           {"{\"id\": \"a\",}", "c.journal: line 2: invalid JSON"},
           {"{\"id\": \"a\"}", "c.journal: line 2.scenario"}}) {
    std::ofstream(path("c.journal")) << head << line << "\n";
    const std::string bad =
        message_of([&] { sweep_journal::resume(path("c.journal"), "x", reader); });
    EXPECT_NE(bad.find(says), std::string::npos) << line << ": " << bad;
  }
}

TEST(Journal, FingerprintFollowsConfigCasesBackendAndIterations) {
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  const sweep_request a = pair_request(gpu);
  sweep_request b = a;
  EXPECT_EQ(sweep_fingerprint(a, "sim"), sweep_fingerprint(b, "sim"));
  EXPECT_NE(sweep_fingerprint(a, "sim"), sweep_fingerprint(a, "cuda"));
  b.measure.iters = 7;
  EXPECT_NE(sweep_fingerprint(a, "sim"), sweep_fingerprint(b, "sim"));
  b = a;
  b.cases.pop_back();
  EXPECT_NE(sweep_fingerprint(a, "sim"), sweep_fingerprint(b, "sim"));
  b = a;
  b.config["gpu"] = "h200";
  EXPECT_NE(sweep_fingerprint(a, "sim"), sweep_fingerprint(b, "sim"));
}

// ---- files ------------------------------------------------------------------------------------

TEST_F(ReliabilityFiles, AtomicFileAppearsOnlyOnCommit) {
  {
    atomic_file f(path("sub/a.txt"));
    f.write("half");
  }
  EXPECT_FALSE(fs::exists(path("sub/a.txt")));
  EXPECT_TRUE(fs::is_empty(path("sub")));
  atomic_file f(path("sub/a.txt"));
  f.write("all");
  f.commit();
  EXPECT_EQ(read_file(path("sub/a.txt")), "all");
}

TEST_F(ReliabilityFiles, UnwritablePathsAreFoundBeforeWriting) {
  EXPECT_EQ(why_not_writable(path("new/dir/x.json")), "");
  EXPECT_NE(why_not_writable("/proc/x.json"), "");
  EXPECT_EQ(why_not_writable(dir_.string()), "is a folder");
  EXPECT_EQ(why_not_writable("/dev/null"), "is not a regular file");
  EXPECT_THROW(atomic_file("/dev/null"), runtime_failure);
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

// ---- messages ---------------------------------------------------------------------------------

TEST(JsonObject, ATypoOfARequiredKeyIsNamedAsTheUnknownKey) {
  const json j = json::parse(R"({"tp_comm_overlapp": true})");
  const json_object o(j, "b.json", "comm_overlap");
  EXPECT_EQ(message_of([&] { o.get_bool("tp_comm_overlap"); }),
            "b.json: comm_overlap.tp_comm_overlapp: unknown key (did you mean tp_comm_overlap?)");
}

TEST(JsonObject, RealSiblingsAreNotTakenForTypos) {
  // p90 is a field of its own, and so is comm_slowdown next to gemm_slowdown.
  const json j = json::parse(R"({"p90": 1, "comm_slowdown": 2})");
  const json_object o(j, "r.json", "s");
  EXPECT_EQ(message_of([&] { o.get_number("p10"); }), "r.json: s.p10: required field is missing");
  EXPECT_EQ(message_of([&] { o.get_number("gemm_slowdown"); }),
            "r.json: s.gemm_slowdown: required field is missing");
}

TEST(JsonObject, UnknownKeysSuggestTheKeyMeant) {
  const json j = json::parse(R"({"hidden_szie": 5})");
  const json_object o(j, "m.json", "");
  o.get_int("hidden_size", 1);
  o.get_int("num_layers", 1);
  EXPECT_EQ(message_of([&] { o.finish(); }),
            "m.json: hidden_szie: unknown key (did you mean hidden_size?)");
}

TEST(JsonText, ParseErrorsCarryNoLibraryCode) {
  try {
    const json j = json::parse(R"({"a": )");
    FAIL() << j.dump();
  } catch (const json::parse_error& e) {
    const std::string msg = describe_parse_error(e);
    EXPECT_EQ(msg.rfind("invalid JSON at line 1, column 7", 0), 0u) << msg;
    EXPECT_EQ(msg.find("json.exception"), std::string::npos) << msg;
  }
  EXPECT_EQ(edit_distance("modle", "model"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(likely_meant("rnu", {"run", "pair"}), "run");
  EXPECT_EQ(likely_meant("frob", {"run", "pair"}), "");
}

}  // namespace
}  // namespace ob
