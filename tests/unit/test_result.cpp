#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/build_info.hpp"
#include "base/env_snapshot.hpp"
#include "base/error.hpp"
#include "results/report_table.hpp"
#include "results/result.hpp"

namespace ob {

namespace {

namespace fs = std::filesystem;

case_record make_case(const std::string& id, double overlapped, std::int64_t wrong = 0) {
  case_record c;
  c.id = id;
  c.scenario = "pair";
  c.params = ordered_json::parse(
      R"({"method":"preset","cdmc":8,"order":"comm_first","sm_margin":16,"comm_ctas":0,
          "priority":"comm_high"})");
  case_metrics& m = c.m;
  m.compute_ms = compute_stats({10, 10.2, 9.9});
  m.compute_with_margin_ms = compute_stats({10.5, 10.6});
  m.comm_ms = compute_stats({6, 6.1});
  m.serial_ms = compute_stats({16.1, 16.3});
  m.overlapped_ms = compute_stats({overlapped, overlapped + 0.1});
  m.exposed_comm_ms = m.overlapped_ms.median - m.compute_ms.median;
  m.overlap_efficiency = 1 - m.exposed_comm_ms / m.comm_ms.median;
  m.speedup_vs_serial = m.serial_ms.median / m.overlapped_ms.median;
  m.ideal_ms = 10;
  m.headroom_ms = m.overlapped_ms.median - 10;
  m.gemm_slowdown = 1.13;
  m.comm_slowdown = std::nullopt;  // a null metric must survive the round trip
  m.timeline_overlap_pct = 87.5;
  m.gemm_tflops = 712.25;
  m.gemm_tflops_overlapped = 630.3;
  m.comm_busbw_gbps = 351.0;
  m.comm_busbw_gbps_overlapped = std::nullopt;
  m.wrong = wrong;
  c.warnings = {"cdmc 8 asked, process runs 8"};
  return c;
}

result_doc make_doc(bool simulated) {
  result_doc d;
  d.tool = {{"version", "0.1.0"}, {"git_sha", "abc"}};
  d.env = {{"backend", simulated ? "sim" : "cuda"},
           {"simulated", simulated},
           {"gpu", {{"name", "H100 SXM"}, {"sm_count", 132}}},
           {"ranks", 8},
           {"variables", {{"NCCL_ALGO", "Ring"}}}};
  d.config = {{"zeta", 1}, {"alpha", {{"b", 2}, {"a", 1}}}};  // key order must survive
  d.cases.push_back(make_case("cdmc=8/margin=16", 12.0));
  d.cases.push_back(make_case("cdmc=1/margin=0", 14.5));
  d.cases.back().params["cdmc"] = 1;
  d.cases.back().params["sm_margin"] = 0;
  d.cases.back().warnings.clear();
  return d;
}

std::string temp_dir() {
  const fs::path p = fs::temp_directory_path() / ("ob_result_test_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p.string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void expect_config_error(const ordered_json& j, const std::string& needle) {
  try {
    result_from_json(j, "r.json");
    FAIL() << "accepted: " << needle;
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), exit_code::usage);
  }
}

}  // namespace

TEST(Result, JsonHasEveryDesignField) {
  const ordered_json j = to_json(make_doc(true));
  EXPECT_EQ(j["schema"], "overlap-bench/result/v1");
  EXPECT_EQ(j["simulated"], true);
  for (const char* k : {"tool", "env", "config", "cases"}) EXPECT_TRUE(j.contains(k)) << k;
  const ordered_json& c = j["cases"][0];
  for (const char* k : {"id",
                        "scenario",
                        "params",
                        "compute_ms",
                        "compute_with_margin_ms",
                        "comm_ms",
                        "serial_ms",
                        "overlapped_ms",
                        "exposed_comm_ms",
                        "overlap_efficiency",
                        "speedup_vs_serial",
                        "ideal_ms",
                        "headroom_ms",
                        "gemm_slowdown",
                        "comm_slowdown",
                        "timeline_overlap_pct",
                        "gemm_tflops",
                        "gemm_tflops_overlapped",
                        "comm_busbw_gbps",
                        "comm_busbw_gbps_overlapped",
                        "wrong",
                        "warnings"})
    EXPECT_TRUE(c.contains(k)) << k;
  for (const char* k : {"median", "p10", "p90", "min", "max", "mean", "stdev", "cv", "n"})
    EXPECT_TRUE(c["overlapped_ms"].contains(k)) << k;
  EXPECT_TRUE(c["comm_slowdown"].is_null());
}

TEST(Result, JsonRoundTripIsExact) {
  const result_doc d = make_doc(true);
  const ordered_json first = to_json(d);
  const ordered_json parsed = ordered_json::parse(first.dump(2));
  const ordered_json second = to_json(result_from_json(parsed, "r.json"));
  EXPECT_EQ(first, second);
  EXPECT_EQ(first.dump(2), second.dump(2));  // key order too

  // The json overload sorts free-form keys but keeps every value.
  const result_doc plain = result_from_json(json::parse(first.dump()), "r.json");
  EXPECT_EQ(json::parse(to_json(plain).dump()), json::parse(first.dump()));
}

TEST(Result, AnswersRoundTripAndOldDocumentsStillRead) {
  result_doc d = make_doc(false);
  diagnosis dg;
  dg.main_cause = exposure_cause::tail_not_overlapped;
  dg.causes = {{exposure_cause::tail_not_overlapped, 1.5, "fc2_fprop", std::nullopt},
               {exposure_cause::contention_slowdown, 0.5, "fc1_dgrad", 0.25}};
  d.cases[0].diag = dg;
  d.cases[0].predicted = prediction{11.0, 1.0, 10.0, 6.0, 9.1};
  d.cases[0].timeline =
      case_timeline{{"compute", "comm"},
                    {{"gemm", 0, "gemm", 0, 10, true}, {"ag", 1, "collective", 1, 5, false}}};
  d.rec = recommend(d);
  ASSERT_TRUE(d.rec.has_value());
  EXPECT_EQ(d.rec->best_case, "cdmc=8/margin=16");
  EXPECT_EQ(d.rec->default_case, "cdmc=8/margin=16");
  ASSERT_TRUE(d.rec->knob.has_value());
  EXPECT_EQ(d.rec->knob->axis, "cdmc");  // the first axis with the largest spread
  const ordered_json first = to_json(d);
  EXPECT_EQ(first["cases"][0]["diagnosis"]["main_cause"], "tail_not_overlapped");
  EXPECT_DOUBLE_EQ(first["cases"][0]["deviation_pct"].get<double>(), 9.1);
  EXPECT_TRUE(first["cases"][1]["diagnosis"].is_null());
  EXPECT_FALSE(first["cases"][1].contains("timeline"));
  const ordered_json second =
      to_json(result_from_json(ordered_json::parse(first.dump()), "r.json"));
  EXPECT_EQ(first.dump(2), second.dump(2));

  // A document written before these fields existed is still read (history, compare).
  ordered_json old = first;
  old.erase("recommendation");
  for (auto& c : old["cases"])
    for (const char* k : {"diagnosis", "predicted", "deviation_pct", "timeline"}) c.erase(k);
  const result_doc back = result_from_json(old, "old.json");
  EXPECT_FALSE(back.rec.has_value());
  EXPECT_FALSE(back.cases[0].diag.has_value());

  ordered_json bad = first;
  bad["cases"][0]["diagnosis"]["main_cause"] = "bad_luck";
  expect_config_error(bad, "r.json: cases[0].diagnosis.main_cause");
  bad = first;
  bad["cases"][0]["deviation_pct"] = nullptr;
  expect_config_error(bad, "r.json: cases[0].deviation_pct");
}

TEST(Result, ReaderIsStrictAndNamesFileAndPath) {
  const ordered_json good = to_json(make_doc(false));
  ordered_json j = good;
  j["schema"] = "overlap-bench/result/v2";
  expect_config_error(j, "r.json: schema");
  j = good;
  j["cases"][1]["exposed_comm"] = 1.0;
  expect_config_error(j, "r.json: cases[1].exposed_comm");
  j = good;
  j["cases"][0].erase("gemm_slowdown");
  expect_config_error(j, "r.json: cases[0].gemm_slowdown: required field is missing");
  j = good;
  j["cases"][0]["overlapped_ms"]["median"] = "fast";
  expect_config_error(j, "r.json: cases[0].overlapped_ms.median");
  j = good;
  j["cases"][1]["id"] = j["cases"][0]["id"];
  expect_config_error(j, "duplicate case id");
  j = good;
  j["simulated"] = true;  // env says measured
  expect_config_error(j, "r.json: simulated");
  j = good;
  j["cases"][0]["wrong"] = -1;
  expect_config_error(j, "r.json: cases[0].wrong");
  j = good;
  j["cases"][0]["warnings"] = {1};
  expect_config_error(j, "r.json: cases[0].warnings[0]");
  expect_config_error(ordered_json::array(), "r.json");
}

TEST(Result, AtomicWriteLeavesNoTemporaryFile) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/out/r.json";
  write_result_json(path, make_doc(true));
  for (const auto& e : fs::directory_iterator(dir + "/out"))
    EXPECT_EQ(e.path().filename(), "r.json") << "left " << e.path();
  const result_doc back = load_result(path);
  EXPECT_EQ(to_json(back), to_json(make_doc(true)));
  fs::remove_all(dir);
}

TEST(Result, UnwritablePathIsARuntimeFailure) {
  const std::string dir = temp_dir();
  const std::string blocker = dir + "/a_file";
  std::ofstream(blocker) << "x";
  // A path below a regular file fails even for root.
  EXPECT_THROW(write_result_json(blocker + "/r.json", make_doc(true)), runtime_failure);
  EXPECT_THROW(write_result_csv(blocker + "/r.csv", make_doc(true)), runtime_failure);
  fs::remove_all(dir);
}

TEST(Result, LoadingAMissingOrBrokenFileIsAConfigError) {
  const std::string dir = temp_dir();
  EXPECT_THROW(load_result(dir + "/nope.json"), config_error);
  std::ofstream(dir + "/bad.json") << "{\"schema\":";
  try {
    load_result(dir + "/bad.json");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(Result, CsvHasOneRowPerCaseWithFlattenedParams) {
  result_doc d = make_doc(false);
  d.cases[1].params["nested"] = {{"x", 1}};
  d.cases[1].warnings = {"a, \"quoted\" warning"};
  diagnosis dg;
  dg.main_cause = exposure_cause::tail_not_overlapped;
  dg.causes = {{exposure_cause::tail_not_overlapped, 1.5, "fc2_fprop", std::nullopt}};
  d.cases[0].diag = dg;
  const std::string csv = result_csv(d);
  std::vector<std::string> lines;
  for (std::size_t pos = 0, end; (end = csv.find("\r\n", pos)) != std::string::npos; pos = end + 2)
    lines.push_back(csv.substr(pos, end - pos));
  ASSERT_EQ(lines.size(), 3u);
  const std::string& header = lines[0];
  EXPECT_EQ(header.rfind("id,scenario,backend,simulated,params.method,params.cdmc,", 0), 0u)
      << header;
  EXPECT_NE(header.find("params.nested.x"), std::string::npos);
  EXPECT_NE(header.find("overlapped_ms.median,overlapped_ms.p10"), std::string::npos);
  EXPECT_NE(header.find("exposed_comm_ms"), std::string::npos);
  // The table's why, as the step CSV has it: the main cause, then the line a person reads.
  EXPECT_EQ(header.substr(header.size() - 29), "wrong,main_cause,why,warnings");
  EXPECT_NE(lines[1].find(",tail_not_overlapped," + why_text(dg) + ","), std::string::npos)
      << lines[1];
  EXPECT_NE(lines[2].find(",,-,"), std::string::npos) << lines[2];  // no diagnosis
  EXPECT_EQ(lines[1].rfind("cdmc=8/margin=16,pair,cuda,false,preset,8,comm_first,16,", 0), 0u)
      << lines[1];
  EXPECT_NE(lines[2].find("\"a, \"\"quoted\"\" warning\""), std::string::npos) << lines[2];
  // Every row has as many cells as the header (no quoted commas in these besides warnings).
  auto cells = [](const std::string& l) {
    int n = 1;
    bool quoted = false;
    for (char ch : l) {
      if (ch == '"') quoted = !quoted;
      if (ch == ',' && !quoted) ++n;
    }
    return n;
  };
  EXPECT_EQ(cells(lines[1]), cells(header));
  EXPECT_EQ(cells(lines[2]), cells(header));

  const std::string dir = temp_dir();
  write_result_csv(dir + "/r.csv", d);
  EXPECT_EQ(read_all(dir + "/r.csv"), csv);
  fs::remove_all(dir);
}

TEST(Result, EnvSnapshotKeepsOverlapVariablesSorted) {
  const char* envp[] = {"PATH=/bin",
                        "NCCL_MAX_CTAS=16",
                        "NVTE_FWD_LAYERNORM_SM_MARGIN=8",
                        "CUDA_DEVICE_MAX_CONNECTIONS=1",
                        "NCCL_ALGO=Ring",
                        "HOME=/root",
                        "CUDA_HOME=/usr/local/cuda",
                        nullptr};
  const ordered_json j = env_variables_snapshot(envp);
  EXPECT_EQ(j.dump(),
            R"({"CUDA_DEVICE_MAX_CONNECTIONS":"1","NCCL_ALGO":"Ring","NCCL_MAX_CTAS":"16",)"
            R"("NVTE_FWD_LAYERNORM_SM_MARGIN":"8"})");
  ::setenv("NCCL_OB_UNIT_TEST", "x", 1);
  EXPECT_EQ(env_variables_snapshot()["NCCL_OB_UNIT_TEST"], "x");
  ::unsetenv("NCCL_OB_UNIT_TEST");
}

TEST(Result, CollDocRoundTrip) {
  coll_doc d;
  d.env = {{"backend", "sim"}, {"simulated", true}};
  collective_params c;
  c.op = coll_op::reduce_scatter;
  c.bytes = 1 << 20;
  c.group_size = 8;
  d.rows.push_back(make_coll_row(c, compute_stats({0.05, 0.06}), 0));
  const ordered_json j = to_json(d);
  EXPECT_EQ(j["schema"], "overlap-bench/coll/v1");
  EXPECT_EQ(j["simulated"], true);
  EXPECT_EQ(to_json(coll_from_json(ordered_json::parse(j.dump()), "c.json")), j);
  EXPECT_EQ(j["op"], "reduce_scatter");
  EXPECT_EQ(j["ranks"], 8);
  ordered_json bad = j;
  bad["rows"][0]["type"] = "float";
  EXPECT_THROW(coll_from_json(bad, "c.json"), config_error);
  bad = j;
  bad["op"] = "all_reduce";  // disagrees with the row
  EXPECT_THROW(coll_from_json(bad, "c.json"), config_error);
  ordered_json no_config = j;
  no_config.erase("config");
  EXPECT_NO_THROW(coll_from_json(no_config, "c.json"));
}

TEST(ResultTable, SimulatedBannerAndHeader) {
  const std::string t = format_case_table(make_doc(true));
  EXPECT_EQ(t.rfind("SIMULATED — model output, not a measurement (backend sim, H100 SXM)", 0), 0u)
      << t;
  // Widest-impact columns first: the params that move the best time most, then the end-to-end
  // time, the exposed time and why; case ids are not repeated when the params tell rows apart.
  const auto header = t.substr(t.find('\n') + 1, t.find('\n', t.find('\n') + 1) - t.find('\n'));
  EXPECT_LT(header.find("sm_margin"), header.find("overlapped ms")) << header;
  EXPECT_LT(header.find("overlapped ms"), header.find("exposed ms"));
  EXPECT_LT(header.find("exposed ms"), header.find("why"));
  EXPECT_LT(header.find("why"), header.find("compute ms"));
  EXPECT_EQ(t.find("cdmc=8/margin=16  "), std::string::npos) << t;
  // Params that vary get columns; the rest are said once.
  EXPECT_NE(header.find("sm_margin"), std::string::npos);
  EXPECT_NE(t.find("all cases: method=preset"), std::string::npos) << t;
  EXPECT_NE(t.find("warning: cdmc=8/margin=16: cdmc 8 asked"), std::string::npos);
}

TEST(ResultTable, MeasuredAndLoopbackBanners) {
  result_doc d = make_doc(false);
  EXPECT_EQ(format_case_table(d).find("SIMULATED"), std::string::npos);
  EXPECT_EQ(format_case_table(d).rfind("measured — backend cuda, H100 SXM, 8 ranks", 0), 0u);
  d.env["backend"] = "loopback";
  const std::string t = format_case_table(d);
  EXPECT_EQ(t.rfind("loopback (no NVLink)", 0), 0u) << t;

  d.cases[0].m.wrong = 5;
  EXPECT_NE(format_case_table(d).find("FAILED: 1 case(s) produced wrong data"), std::string::npos);
}

TEST(ResultTable, CollTableHasNcclTestsColumns) {
  collective_params c;
  c.op = coll_op::all_reduce;
  c.bytes = 8 << 20;
  c.group_size = 8;
  std::vector<coll_row> rows = {make_coll_row(c, compute_stats({0.1}), 0)};
  const std::string t =
      format_coll_table(rows, ordered_json{{"backend", "sim"}, {"simulated", true}});
  EXPECT_EQ(t.rfind("# SIMULATED", 0), 0u) << t;
  for (const char* col : {"size", "count", "type", "redop", "time", "algbw", "busbw", "#wrong",
                          "(us)", "(GB/s)", "8388608", "4194304", "bf16", "sum"})
    EXPECT_NE(t.find(col), std::string::npos) << col << "\n" << t;
  EXPECT_NE(t.find("# Avg bus bandwidth"), std::string::npos);
  EXPECT_EQ(format_coll_table(rows, true, "sim (model)").rfind("# SIMULATED", 0), 0u);
  EXPECT_EQ(
      format_coll_table(rows, false, "loopback (no NVLink)").rfind("# loopback (no NVLink)", 0),
      0u);
}

// The schema in results/schema accepts what the writer produces. Needs Python's jsonschema;
// skipped without it (the e2e tests validate real runs too).
TEST(Result, WrittenJsonMatchesSchema) {
  const std::string python = "python3";
  if (std::system((python + " -c 'import jsonschema' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "python3 jsonschema not installed";
  const std::string dir = temp_dir();
  result_doc d = make_doc(true);
  d.cases[0].m.overlap_efficiency = std::nullopt;
  write_result_json(dir + "/r.json", d);
  coll_doc c;
  c.env = {{"backend", "sim"}, {"simulated", true}};
  collective_params p;
  p.bytes = 4096;
  p.group_size = 4;
  p.type = dtype::fp16;
  c.rows.push_back(make_coll_row(p, compute_stats({0.01}), 0));
  write_coll_json(dir + "/c.json", c);
  const std::string schema_dir = std::string(OB_SOURCE_DIR) + "/results/schema/";
  const std::string script =
      "import json,sys,jsonschema\n"
      "for doc,schema in ((sys.argv[1],sys.argv[2]),(sys.argv[3],sys.argv[4])):\n"
      "  s=json.load(open(schema)); jsonschema.validators.validator_for(s).check_schema(s)\n"
      "  jsonschema.validate(json.load(open(doc)), s)\n";
  std::ofstream(dir + "/v.py") << script;
  const std::string cmd = python + " " + dir + "/v.py " + dir + "/r.json " + schema_dir +
                          "result_v1.schema.json " + dir + "/c.json " + schema_dir +
                          "coll_v1.schema.json";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  fs::remove_all(dir);
}

}  // namespace ob

namespace ob {
namespace {

// The report names every row with one case_namer; it must say what short_case_name says.
TEST(Result, CaseNamerNamesEveryCaseAsShortCaseNameDoes) {
  const result_doc d = make_doc(false);
  const case_namer name(d);
  for (const case_record& c : d.cases) EXPECT_EQ(name(c.id), short_case_name(d, c.id)) << c.id;
  EXPECT_EQ(name("no such case"), "no such case");
}

}  // namespace
}  // namespace ob
