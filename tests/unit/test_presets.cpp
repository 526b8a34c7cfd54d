#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "spec/presets.hpp"

namespace ob {
namespace {

const tp_overlap_gemm& slot(const userbuffers_preset& p, std::string_view name) {
  for (const auto& s : p.gemms)
    if (s.name == name) {
      if (!s.cfg) throw std::runtime_error(p.name + ": slot " + std::string(name) + " is None");
      return *s.cfg;
    }
  throw std::runtime_error(p.name + ": no slot " + std::string(name));
}

bool slot_is_none(const userbuffers_preset& p, std::string_view name) {
  for (const auto& s : p.gemms)
    if (s.name == name) return !s.cfg.has_value();
  throw std::runtime_error(p.name + ": no slot " + std::string(name));
}

// Compact cell notation of docs/BRIDGE_RULES.md §7: "R" ring_exchange, "B<sm>", "P<sm>".
void expect_cell(const userbuffers_preset& p, std::string_view name, overlap_method m, int num_sm,
                 int cga, bool margin) {
  SCOPED_TRACE(p.name + " " + std::string(name));
  const auto& g = slot(p, name);
  EXPECT_EQ(g.method, m);
  EXPECT_EQ(g.num_sm, num_sm);
  EXPECT_EQ(g.cga_size, cga);
  EXPECT_EQ(g.set_sm_margin, margin);
}

std::string write_temp(const std::string& name, const std::string& content) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ob_presets_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path) << content;
  return path.string();
}

std::string thrown_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const config_error& e) {
    EXPECT_EQ(e.code(), exit_code::usage);
    return e.what();
  }
  ADD_FAILURE() << "no config_error thrown";
  return "";
}

constexpr auto R = overlap_method::ring_exchange;
constexpr auto B = overlap_method::bulk;
constexpr auto P = overlap_method::pipeline;

}  // namespace

TEST(Presets, ListsAllNineteenBridgePresets) {
  const auto names = list_presets();
  ASSERT_EQ(names.size(), 19u);
  for (const auto& n : names) EXPECT_TRUE(n.starts_with("userbuffers_")) << n;
  EXPECT_EQ(load_all_presets().size(), 19u);
}

TEST(Presets, FileNamesAgreeWithTheirMetadata) {
  for (const auto& p : load_all_presets()) {
    std::string expect = "userbuffers_" + p.dtype + "_" + p.gpu + "_h" + std::to_string(p.hidden) +
                         "_tp" + std::to_string(p.tp) +
                         (p.cp > 1 ? "_cp" + std::to_string(p.cp) : "") + "_mbs" +
                         std::to_string(p.mbs) + "_seqlen" + std::to_string(p.seq_length);
    EXPECT_TRUE(p.name == expect || p.name == expect + "_lora") << p.name << " vs " << expect;
    EXPECT_NE(p.source.find("067f987d"), std::string::npos) << p.name;
    EXPECT_NE(p.source.find("docs/BRIDGE_RULES.md §7"), std::string::npos) << p.name;
  }
}

TEST(Presets, EveryFileListsTenSlotsWithExactlyTheDataclassFields) {
  const std::map<std::string, std::set<std::string>> fields = {
      {"bulk", {"method", "num_sm", "cga_size", "set_sm_margin"}},
      {"pipeline",
       {"method", "num_sm", "cga_size", "num_splits", "set_sm_margin", "fp8_buf", "atomic_gemm"}},
      {"ring_exchange",
       {"method", "num_sm", "cga_size", "set_sm_margin", "fp8_buf", "atomic_gemm", "aggregate"}}};
  for (const auto& name : list_presets()) {
    const json doc = load_json_file(find_config("presets/userbuffers", name, "test"));
    const json& gemms = doc.at("gemms");
    ASSERT_EQ(gemms.size(), 10u) << name;
    std::size_t i = 0;
    for (auto it = gemms.begin(); it != gemms.end(); ++it, ++i) {
      // nlohmann::json sorts keys, so compare as sets; order is checked via preset_to_json.
      EXPECT_TRUE(std::find(std::begin(preset_gemm_slots), std::end(preset_gemm_slots), it.key()) !=
                  std::end(preset_gemm_slots))
          << name << " " << it.key();
      if (it->is_null()) continue;
      std::set<std::string> keys;
      for (auto f = it->begin(); f != it->end(); ++f) keys.insert(f.key());
      EXPECT_EQ(keys, fields.at(it->at("method").get<std::string>())) << name << " " << it.key();
      EXPECT_FALSE(it->value("atomic_gemm", false)) << "no preset sets atomic_gemm";
    }
  }
}

TEST(Presets, SpotChecksLlamaFamilyTable) {
  const auto p1 = load_preset("userbuffers_bf16_h100_h8192_tp4_mbs1_seqlen8192");
  EXPECT_EQ(p1.dtype, "bf16");
  EXPECT_EQ(p1.gpu, "h100");
  EXPECT_EQ(p1.hidden, 8192);
  EXPECT_EQ(p1.tp, 4);
  EXPECT_EQ(p1.cp, 1);
  EXPECT_EQ(p1.seq_length, 8192);
  expect_cell(p1, "qkv_fprop", R, 1, 1, false);
  expect_cell(p1, "qkv_dgrad", B, 4, 2, false);
  expect_cell(p1, "qkv_wgrad", B, 24, 2, false);
  expect_cell(p1, "proj_fprop", P, 24, 2, true);
  EXPECT_EQ(slot(p1, "proj_fprop").num_splits, 4);
  expect_cell(p1, "fc1_dgrad", B, 2, 2, false);
  expect_cell(p1, "fc1_wgrad", B, 4, 2, false);
  expect_cell(p1, "fc2_fprop", P, 16, 2, true);

  const auto p3 = load_preset("userbuffers_bf16_b200_h8192_tp2_mbs1_seqlen8192");
  expect_cell(p3, "qkv_dgrad", B, 16, 2, false);
  expect_cell(p3, "proj_fprop", P, 32, 2, true);

  const auto p5 = load_preset("userbuffers_bf16_h100_h16384_tp8_cp2_mbs1_seqlen8192");
  EXPECT_EQ(p5.cp, 2);
  EXPECT_EQ(p5.tp, 8);
  expect_cell(p5, "fc2_fprop", P, 8, 2, true);
  expect_cell(p5, "fc1_wgrad", B, 2, 2, false);

  const auto p8 = load_preset("userbuffers_fp8_b200_h16384_tp4_cp2_mbs1_seqlen8192");
  expect_cell(p8, "qkv_dgrad", B, 8, 2, false);
  expect_cell(p8, "qkv_wgrad", B, 32, 2, false);
  expect_cell(p8, "fc1_wgrad", B, 8, 2, false);
  expect_cell(p8, "proj_fprop", R, 1, 1, true);  // "R(m)"
  expect_cell(p8, "fc2_fprop", R, 1, 1, true);
  EXPECT_FALSE(slot(p8, "proj_fprop").fp8_buf);
}

TEST(Presets, SpotChecksLoraGptNemotronTable) {
  const auto p9 = load_preset("userbuffers_fp8_h100_h8192_tp2_mbs1_seqlen4096_lora");
  expect_cell(p9, "qkv_fprop", R, 1, 1, true);
  expect_cell(p9, "proj_fprop", R, 1, 2, true);  // "R cga2 m=T fb=T"
  EXPECT_TRUE(slot(p9, "proj_fprop").fp8_buf);
  EXPECT_FALSE(slot(p9, "proj_fprop").fp8_buf_tuple);
  expect_cell(p9, "fc1_dgrad", P, 16, 2, true);
  EXPECT_TRUE(slot(p9, "fc1_dgrad").fp8_buf);

  const auto p10 = load_preset("userbuffers_fp8_h100_h16384_tp4_mbs1_seqlen2048_lora");
  EXPECT_TRUE(slot(p10, "qkv_fprop").aggregate);
  EXPECT_TRUE(slot(p10, "fc2_dgrad").aggregate);
  expect_cell(p10, "proj_fprop", P, 32, 2, true);

  const auto p11 = load_preset("userbuffers_bf16_h100_h6144_tp2_mbs2_seqlen2048");
  EXPECT_EQ(p11.mbs, 2);
  expect_cell(p11, "fc2_fprop", P, 24, 2, true);
  EXPECT_TRUE(slot(p11, "fc2_fprop").fp8_buf_tuple);
  const auto p12 = load_preset("userbuffers_fp8_h100_h6144_tp2_mbs2_seqlen2048");
  EXPECT_TRUE(slot(p12, "proj_fprop").fp8_buf);
  EXPECT_FALSE(slot(p12, "proj_fprop").fp8_buf_tuple);  // fp8 presets set fb=True explicitly

  const auto p13 = load_preset("userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048");
  expect_cell(p13, "qkv_wgrad", B, 4, 2, false);
  expect_cell(p13, "proj_fprop", P, 24, 2, true);
  expect_cell(p13, "fc2_fprop", R, 1, 1, true);

  const auto p15 = load_preset("userbuffers_bf16_b200_h12288_tp4_mbs1_seqlen2048");
  expect_cell(p15, "qkv_wgrad", B, 16, 2, false);
  expect_cell(p15, "fc1_wgrad", B, 8, 2, false);

  const auto p18 = load_preset("userbuffers_bf16_b200_h18432_tp8_mbs1_seqlen4096");
  expect_cell(p18, "proj_fprop", R, 1, 1, true);
  expect_cell(p18, "fc2_fprop", P, 24, 2, true);
  const auto p19 = load_preset("userbuffers_fp8_b200_h18432_tp8_mbs1_seqlen4096");
  expect_cell(p19, "fc2_fprop", R, 1, 1, true);
  expect_cell(p19, "qkv_wgrad", B, 32, 2, false);
}

TEST(Presets, OnlyLoraPresetsHaveNoneSlots) {
  for (const auto& p : load_all_presets()) {
    const bool lora = p.name.ends_with("_lora");
    EXPECT_EQ(slot_is_none(p, "qkv_wgrad"), lora) << p.name;
    EXPECT_EQ(slot_is_none(p, "fc1_wgrad"), lora) << p.name;
    for (std::string_view s : {"qkv_fprop", "proj_fprop", "fc2_dgrad"})
      EXPECT_FALSE(slot_is_none(p, s)) << p.name;
  }
}

TEST(Presets, Fp8BufTupleIsTruthyAndWarns) {
  const auto p1 = load_preset("userbuffers_bf16_h100_h8192_tp4_mbs1_seqlen8192");
  EXPECT_TRUE(slot(p1, "proj_fprop").fp8_buf_tuple);
  EXPECT_TRUE(slot(p1, "proj_fprop").fp8_buf);
  ASSERT_EQ(p1.warnings.size(), 1u);
  EXPECT_EQ(p1.warnings[0].name(), "fp8_buf_tuple_truthy");
  EXPECT_NE(p1.warnings[0].message.find("gemms.proj_fprop.fp8_buf"), std::string::npos);
  EXPECT_NE(p1.warnings[0].message.find("gemms.fc2_fprop.fp8_buf"), std::string::npos);
  EXPECT_NE(p1.warnings[0].message.find(p1.file), std::string::npos);
  // The FP8 twin sets no tuple: no warning.
  EXPECT_TRUE(load_preset("userbuffers_fp8_h100_h8192_tp4_mbs1_seqlen8192").warnings.empty());
  EXPECT_TRUE(fp8_buf_truthy(json("(False,)")));
  EXPECT_FALSE(fp8_buf_truthy(json(false)));
  EXPECT_TRUE(fp8_buf_truthy(json(true)));
}

TEST(Presets, UnknownNameIsConfigErrorListingKnownNames) {
  const std::string msg =
      thrown_message([] { load_preset("userbuffers_bf16_h100_h1_tp4_mbs1_seqlen1", "--show"); });
  EXPECT_NE(msg.find("--show"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown preset"), std::string::npos) << msg;
  EXPECT_NE(msg.find("userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048"), std::string::npos);
}

TEST(Presets, MalformedFileNamesFileAndJsonPath) {
  const json good = load_json_file(
      find_config("presets/userbuffers", "userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048", "t"));
  json bad = good;
  bad["gemms"]["qkv_dgrad"]["num_splits"] = 4;  // BulkOverlapCfg has no num_splits
  std::string path = write_temp("bulk_splits.json", bad.dump());
  std::string msg = thrown_message([&] { load_preset(path); });
  EXPECT_NE(msg.find(path + ": gemms.qkv_dgrad.num_splits"), std::string::npos) << msg;
  EXPECT_NE(msg.find("BulkOverlapCfg"), std::string::npos) << msg;

  bad = good;
  bad["gemms"]["proj_fprop"]["fp8_buf"] = "(True,)";
  path = write_temp("fp8_buf.json", bad.dump());
  msg = thrown_message([&] { load_preset(path); });
  EXPECT_NE(msg.find("gemms.proj_fprop.fp8_buf"), std::string::npos) << msg;

  bad = good;
  bad["gemms"].erase("fc1_wgrad");
  path = write_temp("missing_slot.json", bad.dump());
  msg = thrown_message([&] { load_preset(path); });
  EXPECT_NE(msg.find("gemms.fc1_wgrad"), std::string::npos) << msg;

  bad = good;
  bad["gemms"]["qkv_fprop"].erase("aggregate");  // preset files list every field
  path = write_temp("missing_field.json", bad.dump());
  msg = thrown_message([&] { load_preset(path); });
  EXPECT_NE(msg.find("gemms.qkv_fprop.aggregate"), std::string::npos) << msg;

  bad = good;
  bad["hidden"] = -5;
  path = write_temp("hidden.json", bad.dump());
  msg = thrown_message([&] { load_preset(path); });
  EXPECT_NE(msg.find(path + ": hidden: expected a positive integer, got -5"), std::string::npos)
      << msg;
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST(Presets, ShowJsonKeepsSlotOrderNullsAndTupleMarker) {
  const auto p = load_preset("userbuffers_fp8_h100_h8192_tp2_mbs1_seqlen4096_lora");
  const ordered_json j = preset_to_json(p);
  EXPECT_EQ(j.at("name"), p.name);
  EXPECT_EQ(j.at("tp"), 2);
  EXPECT_EQ(j.at("seq_length"), 4096);
  std::vector<std::string> order;
  for (auto it = j.at("gemms").begin(); it != j.at("gemms").end(); ++it) order.push_back(it.key());
  EXPECT_EQ(order,
            std::vector<std::string>(std::begin(preset_gemm_slots), std::end(preset_gemm_slots)));
  EXPECT_TRUE(j.at("gemms").at("qkv_wgrad").is_null());
  EXPECT_EQ(j.at("gemms").at("fc1_dgrad").at("num_splits"), 4);

  const ordered_json t =
      preset_to_json(load_preset("userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048"));
  EXPECT_EQ(t.at("gemms").at("proj_fprop").at("fp8_buf"), "(False,)");
  EXPECT_FALSE(t.at("gemms").at("qkv_dgrad").contains("fp8_buf"));  // bulk has no such field
}

TEST(Presets, TableHasHeaderAndOneRowPerPreset) {
  const std::string table = format_preset_list();
  std::istringstream in(table);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 20u);
  EXPECT_TRUE(
      std::regex_search(lines[0], std::regex("^name +dtype +gpu +hidden +tp +cp +mbs +seq$")))
      << lines[0];
  bool found = false;
  for (const auto& l : lines)
    if (std::regex_search(l, std::regex("^userbuffers_bf16_h100_h16384_tp8_cp2_mbs1_seqlen8192 +"
                                        "bf16 +h100 +16384 +8 +2 +1 +8192$")))
      found = true;
  EXPECT_TRUE(found) << table;
}

TEST(Presets, ExpansionDropsNoneSlots) {
  const auto lora = load_preset("userbuffers_fp8_h100_h16384_tp4_mbs1_seqlen2048_lora");
  const ordered_json e = expand_tp_overlap_layer(lora.gemms);
  EXPECT_EQ(e.size(), 8u);
  EXPECT_FALSE(e.contains("qkv_wgrad"));
  EXPECT_FALSE(e.contains("fc1_wgrad"));
  EXPECT_EQ(e.at("fc1_dgrad").at("method"), "pipeline");
  EXPECT_EQ(
      expand_tp_overlap_layer(load_preset("userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048").gemms)
          .size(),
      10u);
}

TEST(Presets, InlineObjectTakesDataclassDefaultsAndRejectsForeignFields) {
  std::vector<diagnostic> w;
  auto layer = parse_tp_overlap_layer(json::parse(R"({"qkv_fprop": {"method": "ring_exchange"},
                      "proj_fprop": {"method": "pipeline", "num_sm": 8, "cga_size": 2,
                                     "num_splits": 2, "set_sm_margin": true}})"),
                                      "in.json", "comm_overlap.tp_comm_overlap_cfg", w);
  ASSERT_EQ(layer.size(), 10u);
  EXPECT_EQ(layer[0].cfg->num_sm, 1);  // RingExchangeOverlapCfg defaults
  EXPECT_EQ(layer[0].cfg->cga_size, 1);
  EXPECT_TRUE(layer[3].cfg->fp8_buf_tuple);  // the tuple default, unset
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].name(), "fp8_buf_tuple_truthy");
  EXPECT_FALSE(layer[1].cfg.has_value());

  std::string msg = thrown_message([] {
    std::vector<diagnostic> w2;
    parse_tp_overlap_layer(json::parse(R"({"qkv_dgrad": {"method": "bulk", "cga_size": 2,
                                                         "set_sm_margin": false}})"),
                           "in.json", "x", w2);
  });
  EXPECT_NE(msg.find("in.json: x.qkv_dgrad.num_sm: required field is missing"), std::string::npos)
      << msg;
  msg = thrown_message([] {
    std::vector<diagnostic> w2;
    parse_tp_overlap_layer(json::parse(R"({"proj_wgrad": {"method": "bulk"}})"), "in.json", "x",
                           w2);
  });
  EXPECT_NE(msg.find("x.proj_wgrad"), std::string::npos) << msg;
  EXPECT_NE(msg.find("external"), std::string::npos) << msg;
}

// ---- Transformer Engine's view ----------------------------------------------------------------

// TE's view of an inline config, parsed as a Bridge config's tp_comm_overlap_cfg object is.
slot_overlap_map te(const char* cfg, int tp) {
  std::vector<diagnostic> warnings;
  const tp_overlap_layer layer =
      parse_tp_overlap_layer(json::parse(cfg), "in.json", "tp_comm_overlap_cfg", warnings);
  return te_effective_overlap(&layer, tp);
}

TEST(PresetTe, NullConfigGivesTeDefaultsForAllTwelveSlots) {
  const slot_overlap_map m = te_effective_overlap(nullptr, 8);
  ASSERT_EQ(m.size(), 12u);
  for (std::string_view s : {"qkv_fprop", "fc1_fprop", "proj_dgrad", "fc2_dgrad"}) {
    const auto& c = m.at(std::string(s));
    EXPECT_EQ(c.method, R) << s;
    EXPECT_EQ(c.num_sm, 1) << s;
    EXPECT_EQ(c.cga_size, 1) << s;
    EXPECT_FALSE(c.set_sm_margin) << s;
    EXPECT_EQ(c.num_splits, 8) << s;
    EXPECT_TRUE(c.fp8_buf) << s;  // all-gathers
  }
  for (std::string_view s : {"proj_fprop", "fc2_fprop"}) {
    const auto& c = m.at(std::string(s));
    EXPECT_EQ(c.method, P) << s;
    EXPECT_EQ(c.num_sm, 16) << s;
    EXPECT_EQ(c.cga_size, 2) << s;
    EXPECT_TRUE(c.set_sm_margin) << s;
    EXPECT_EQ(c.num_splits, 4) << s;
    EXPECT_FALSE(c.fp8_buf) << s;
    EXPECT_TRUE(te_is_reduce_scatter(s, m)) << s;
  }
  EXPECT_EQ(m.at("qkv_dgrad").method, B);
  EXPECT_TRUE(m.at("qkv_dgrad").fp8_buf);
  EXPECT_FALSE(te_is_reduce_scatter("qkv_dgrad", m));
  EXPECT_EQ(m.at("fc1_wgrad").method, B);
  EXPECT_TRUE(m.at("fc1_wgrad").set_sm_margin);
  EXPECT_TRUE(te_is_reduce_scatter("fc1_wgrad", m));
  EXPECT_EQ(m.at("proj_wgrad").method, overlap_method::external);
  EXPECT_EQ(m.at("fc2_wgrad").method, overlap_method::external);
}

TEST(PresetTe, PresetOverridesDefaultsAndRingExchangeSplitsIntoTp) {
  const auto p = load_preset("userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048");
  for (int tp : {4, 8}) {
    const slot_overlap_map m = te_effective_overlap(&p.gemms, tp);
    EXPECT_EQ(m.at("qkv_fprop").num_splits, tp);
    EXPECT_EQ(m.at("fc2_fprop").method, R);
    EXPECT_EQ(m.at("fc2_fprop").num_splits, tp);
    EXPECT_TRUE(m.at("fc2_fprop").set_sm_margin);
    EXPECT_FALSE(m.at("fc2_fprop").fp8_buf);  // ring exchange RS with fp8_buf false
  }
  const slot_overlap_map m = te_effective_overlap(&p.gemms, 4);
  EXPECT_EQ(m.at("proj_fprop").method, P);
  EXPECT_EQ(m.at("proj_fprop").num_sm, 24);
  EXPECT_TRUE(m.at("proj_fprop").fp8_buf);  // the truthy (False,) tuple reaches TE
  EXPECT_EQ(m.at("qkv_dgrad").num_sm, 4);
  EXPECT_FALSE(m.at("qkv_dgrad").set_sm_margin);
  EXPECT_TRUE(m.at("qkv_dgrad").fp8_buf);  // all-gather: TE forces it
  EXPECT_EQ(m.at("proj_wgrad").method, overlap_method::external);
}

TEST(PresetTe, NonBulkDgradBecomesReduceScatterAndItsWgradLosesBulk) {
  const auto p = load_preset("userbuffers_fp8_h100_h8192_tp2_mbs1_seqlen4096_lora");
  const slot_overlap_map m = te_effective_overlap(&p.gemms, 2);
  EXPECT_EQ(m.at("fc1_dgrad").method, P);
  EXPECT_TRUE(te_is_reduce_scatter("fc1_dgrad", m));
  EXPECT_TRUE(m.at("fc1_dgrad").fp8_buf);  // moved into TE's pipeline list, fp8_buf true
  EXPECT_EQ(m.at("fc1_wgrad").method, overlap_method::none);
  EXPECT_FALSE(te_is_reduce_scatter("fc1_wgrad", m));
  // qkv_dgrad stays bulk, so the None qkv_wgrad gets TE's default bulk.
  EXPECT_EQ(m.at("qkv_wgrad").method, B);
  EXPECT_EQ(m.at("qkv_wgrad").num_sm, 16);
  EXPECT_EQ(m.at("qkv_wgrad").cga_size, 2);
  EXPECT_TRUE(m.at("qkv_wgrad").set_sm_margin);
  // Ring-exchange RS with fp8_buf true counts, because proj_fprop is in TE's pipeline list.
  EXPECT_TRUE(m.at("proj_fprop").fp8_buf);
  EXPECT_EQ(m.at("proj_fprop").cga_size, 2);

  const ordered_json j = te_effective_to_json(m);
  EXPECT_EQ(j.size(), 12u);
  EXPECT_EQ(j.at("fc1_dgrad").at("reduce_scatter"), true);
  EXPECT_EQ(j.at("qkv_dgrad").at("reduce_scatter"), false);
}

TEST(PresetTe, RejectsWhatTransformerEngineRejects) {
  // pipeline on an all-gather
  EXPECT_THROW(te(R"({"qkv_fprop": {"method": "pipeline", "num_sm": 8, "cga_size": 2,
                      "num_splits": 4, "set_sm_margin": true}})",
                  4),
               config_error);
  // a non-bulk dgrad with its wgrad still in the dict
  const std::string msg = thrown_message([] {
    te(R"({"fc1_dgrad": {"method": "pipeline", "num_sm": 16, "cga_size": 2, "num_splits": 4,
                         "set_sm_margin": true},
           "fc1_wgrad": {"method": "bulk", "num_sm": 4, "cga_size": 2, "set_sm_margin": false}})",
       4);
  });
  EXPECT_NE(msg.find("fc1_dgrad"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fc1_wgrad"), std::string::npos) << msg;
  // ... but a null wgrad is what Bridge drops: accepted
  EXPECT_NO_THROW(te(R"({"fc1_dgrad": {"method": "pipeline", "num_sm": 16, "cga_size": 2,
                         "num_splits": 4, "set_sm_margin": true}, "fc1_wgrad": null})",
                     4));
  // atomic ring exchange on one side of an AG/RS pair only
  EXPECT_THROW(te(R"({"qkv_fprop": {"method": "ring_exchange", "atomic_gemm": true}})", 4),
               config_error);
  EXPECT_NO_THROW(te(R"({"qkv_fprop": {"method": "ring_exchange", "atomic_gemm": true},
                         "proj_fprop": {"method": "ring_exchange", "atomic_gemm": true}})",
                     4));
  EXPECT_THROW(te(R"({"attn": {"method": "bulk"}})", 4), config_error);
}

TEST(PresetTe, BulkHasNoAtomicGemmAndWgradNeedsRingDgrad) {
  // BulkOverlapCfg has no atomic_gemm field: the config is rejected where it is read.
  EXPECT_THROW(te(R"({"qkv_dgrad": {"method": "bulk", "num_sm": 4, "cga_size": 2,
                                    "set_sm_margin": false, "atomic_gemm": true}})",
                  4),
               config_error);
  const slot_overlap_map m = te(R"({"qkv_dgrad": {"method": "bulk", "num_sm": 4, "cga_size": 2,
                                                  "set_sm_margin": false},
                                    "proj_dgrad": {"method": "bulk", "num_sm": 4, "cga_size": 2,
                                                   "set_sm_margin": false}})",
                                4);
  EXPECT_FALSE(m.at("qkv_dgrad").atomic_gemm);
  EXPECT_EQ(m.at("proj_wgrad").method, overlap_method::none);
  EXPECT_EQ(m.at("fc2_wgrad").method, overlap_method::external);
}

}  // namespace ob
