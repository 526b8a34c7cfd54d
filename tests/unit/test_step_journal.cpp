// Journaled training-step sweeps (README: journaled sweeps): a step case read back from its
// journal line gives the same text, the streamed document is the whole one byte for byte, a
// resumed sweep runs only what the journal lacks, and the fingerprint follows the sweep.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "dist/communicator.hpp"
#include "results/step_result.hpp"
#include "run/journal.hpp"
#include "run/step_run.hpp"
#include "sim/simulator.hpp"

namespace ob {
namespace {

// Four small cases: CDMC 1 and 8, TP overlap on and off.
step_spec small_spec() {
  step_scenario sc;
  sc.model = "gpt3_175b";
  sc.cluster = "dgx_h100";
  sc.axes = {{"gpus", {"16"}},
             {"tp", {"4"}},
             {"pp", {"2"}},
             {"gbs", {"16"}},
             {"layers", {"8"}},
             {"cdmc", {"1", "8"}},
             {"tp_overlap", {"on", "off"}}};
  return resolve_step(sc);
}

step_sweep_result run_spec(const step_spec& spec, const step_hooks& hooks = {}) {
  sim_executor exec(spec.gpu);
  auto comm = make_single_communicator();
  return run_step_sweep(spec, exec, *comm, hooks);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(StepJournal, ACaseReadBackGivesTheSameText) {
  step_doc doc = run_spec(small_spec()).doc;
  ASSERT_EQ(doc.cases.size(), 4u);
  doc.cases[1].diagnosis.reset();  // null fields come back null
  doc.cases[1].compute_only_ms.reset();
  doc.cases[2].warnings = {"a, \"warning\""};
  for (const step_record& r : doc.cases) {
    const std::string line = dump_json(to_json(r));  // as the journal holds it
    const step_record back = step_record_from_json(ordered_json::parse(line), "j", "line 2");
    EXPECT_EQ(dump_json(to_json(back), 2), dump_json(to_json(r), 2)) << r.id;
  }
}

TEST(StepJournal, AMalformedCaseIsNamedByFileLineAndField) {
  const step_record r = run_spec(small_spec()).doc.cases.front();
  const auto message = [](const ordered_json& c) {
    try {
      step_record_from_json(c, "s.json.journal", "line 3");
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  ordered_json c = to_json(r);
  c["mfu"] = "high";
  EXPECT_NE(message(c).find("s.json.journal: line 3.mfu: expected a number"), std::string::npos)
      << message(c);
  c = to_json(r);
  c.erase("diagnosis");
  EXPECT_NE(message(c).find("line 3.diagnosis"), std::string::npos) << message(c);
  c = to_json(r);
  c["breakdown_ms"]["bubbles"] = 1;
  EXPECT_NE(message(c).find("line 3.breakdown_ms.bubbles"), std::string::npos) << message(c);
}

TEST(StepJournal, TheStreamedDocumentIsTheWholeOneByteForByte) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ob-step-journal-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  step_doc doc = run_spec(small_spec()).doc;
  doc.config["note"] = "ünïcode, \"quotes\"\nand a newline";
  for (std::size_t n : {0u, 1u, 4u}) {
    doc.cases.resize(n);
    write_step_json((dir / "s.json").string(), doc);
    EXPECT_EQ(read_file((dir / "s.json").string()), dump_json(to_json(doc), 2) + "\n") << n;
  }
  std::filesystem::remove_all(dir);
}

TEST(StepJournal, FinishedCasesAreKeptAndNotRunAgain) {
  const step_spec spec = small_spec();
  const step_doc whole = run_spec(spec).doc;
  step_hooks hooks;
  hooks.finished = {whole.cases[2], whole.cases[0]};  // any order: the result keeps the spec's
  std::vector<std::string> ran;
  hooks.on_case = [&ran](const step_record& r) { ran.push_back(r.id); };
  hooks.progress = [](std::size_t, std::size_t total, const std::string&) {
    EXPECT_EQ(total, 2u);  // the cases to run here
  };
  const step_doc resumed = run_spec(spec, hooks).doc;
  EXPECT_EQ(ran, (std::vector<std::string>{whole.cases[1].id, whole.cases[3].id}));
  EXPECT_EQ(dump_json(to_json(resumed), 2), dump_json(to_json(whole), 2));

  // Stopped before the first case it would run, it still holds the finished ones.
  hooks.should_stop = [] { return 2; };
  const step_sweep_result stopped = run_spec(spec, hooks);
  EXPECT_EQ(stopped.stopped, 2);
  ASSERT_EQ(stopped.doc.cases.size(), 2u);
  EXPECT_EQ(stopped.doc.cases[0].id, whole.cases[0].id);
  EXPECT_EQ(stopped.doc.cases[1].id, whole.cases[2].id);
}

TEST(StepJournal, FingerprintFollowsCasesBackendIterationsAndModel) {
  const step_spec a = small_spec();
  step_spec b = a;
  EXPECT_EQ(step_fingerprint(a, "sim"), step_fingerprint(b, "sim"));
  EXPECT_NE(step_fingerprint(a, "sim"), step_fingerprint(a, "cuda"));
  b.measure.iters = 7;
  EXPECT_NE(step_fingerprint(a, "sim"), step_fingerprint(b, "sim"));
  b = a;
  b.cases.pop_back();
  EXPECT_NE(step_fingerprint(a, "sim"), step_fingerprint(b, "sim"));
  b = a;
  b.cases[0].model.hidden += 128;  // the model file changed in between
  EXPECT_NE(step_fingerprint(a, "sim"), step_fingerprint(b, "sim"));
  b = a;
  b.cases[0].config["cdmc"] = 2;
  EXPECT_NE(step_fingerprint(a, "sim"), step_fingerprint(b, "sim"));
}

}  // namespace
}  // namespace ob
