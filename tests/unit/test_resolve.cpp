#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "base/build_info.hpp"
#include "base/error.hpp"
#include "bridge/resolve.hpp"
#include "resolve_test_util.hpp"

namespace ob {
namespace {

using enum diag_code;

json base() { return test::resolve_base(); }
bridge_resolution resolve(const json& in) { return test::resolve_json(in); }

std::vector<diag_code> codes(const std::vector<diagnostic>& list) {
  std::vector<diag_code> out;
  for (const auto& d : list) out.push_back(d.code);
  return out;
}

bool has(const std::vector<diagnostic>& list, diag_code code) {
  return std::any_of(list.begin(), list.end(), [&](const diagnostic& d) { return d.code == code; });
}

std::size_t count(const std::vector<diagnostic>& list, diag_code code) {
  return static_cast<std::size_t>(
      std::count_if(list.begin(), list.end(), [&](const diagnostic& d) { return d.code == code; }));
}

std::string message(const std::vector<diagnostic>& list, diag_code code) {
  for (const auto& d : list)
    if (d.code == code) return d.message;
  return "";
}

std::string dump_codes(const bridge_resolution& r) {
  const ordered_json out = r.to_json();
  return "warnings: " + out.at("warnings").dump() + "\nerrors: " + out.at("errors").dump();
}

std::optional<std::string> env_of(const bridge_resolution& r, const std::string& name) {
  for (const auto& [k, v] : r.env)
    if (k == name) return v;
  return std::nullopt;
}

// A GEMM of the resolved tp_comm_overlap_cfg; nullptr when the slot is None or there is no cfg.
const tp_overlap_gemm* cfg_slot(const bridge_resolution& r, std::string_view name) {
  if (!r.tp_comm_overlap_cfg) return nullptr;
  for (const auto& s : *r.tp_comm_overlap_cfg)
    if (s.name == name) return s.cfg ? &*s.cfg : nullptr;
  return nullptr;
}

// The GEMMs of the resolved tp_comm_overlap_cfg that are not None (what the output prints).
std::size_t cfg_size(const bridge_resolution& r) {
  if (!r.tp_comm_overlap_cfg) return 0;
  return static_cast<std::size_t>(
      std::count_if(r.tp_comm_overlap_cfg->begin(), r.tp_comm_overlap_cfg->end(),
                    [](const tp_overlap_slot& s) { return s.cfg.has_value(); }));
}

// What Transformer Engine runs for a slot; throws when TP overlap is off.
const gemm_overlap_cfg& te(const bridge_resolution& r, const std::string& slot) {
  return r.te_userbuffers.value().at(slot);
}

std::string thrown(const json& in) {
  try {
    resolve(in);
  } catch (const config_error& e) {
    EXPECT_EQ(e.code(), exit_code::usage);
    return e.what();
  }
  ADD_FAILURE() << "no config_error thrown";
  return "";
}

std::string data_file(const std::string& name) {
  return std::string(OB_SOURCE_DIR) + "/tests/data/resolve/" + name;
}

const char* gpt3_preset = "userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048";

}  // namespace

// ---- the worked example -----------------------------------------------------------------------

TEST(ResolveExample, Gpt3175bTp4ResolvesCleanly) {
  const bridge_resolution out = resolve_bridge_file(data_file("gpt3_175b_tp4.json"));
  ASSERT_FALSE(out.has_errors()) << dump_codes(out);
  EXPECT_EQ(out.file, data_file("gpt3_175b_tp4.json"));
  EXPECT_EQ(out.input.tp, 4);
  EXPECT_EQ(out.input.hidden_size, 12288);
  EXPECT_EQ(out.input.micro_batch_size, 1);
  EXPECT_FALSE(out.input.fp8);
  EXPECT_TRUE(out.tp_comm_overlap);
  ASSERT_TRUE(out.preset.has_value());
  EXPECT_EQ(out.preset->name, gpt3_preset);
  EXPECT_EQ(cfg_size(out), 10u);
  ASSERT_NE(cfg_slot(out, "proj_fprop"), nullptr);
  EXPECT_EQ(cfg_slot(out, "proj_fprop")->num_sm, 24);
  EXPECT_EQ(out.tp_comm_bootstrap_backend, "nccl");
  EXPECT_FALSE(out.overlap_p2p_comm);
  EXPECT_FALSE(out.batch_p2p_comm);
  EXPECT_EQ(out.wgrad_deferral_limit, -1);
  EXPECT_EQ(out.bucket_size, 134217728);
  EXPECT_TRUE(out.overlap_grad_reduce);
  EXPECT_TRUE(out.optimizer_overlap_param_gather);
  EXPECT_FALSE(out.overlap_param_gather_with_optimizer_step);
  EXPECT_EQ(out.data_parallel_size, 2);
  EXPECT_EQ(env_of(out, "CUDA_DEVICE_MAX_CONNECTIONS"), "1");
  EXPECT_EQ(env_of(out, "NVTE_FWD_LAYERNORM_SM_MARGIN"), "16");
  EXPECT_FALSE(env_of(out, "NCCL_P2P_NET_CHUNKSIZE"));
  EXPECT_EQ(te(out, "proj_wgrad").method, overlap_method::external);
  const auto& w = out.warnings;
  EXPECT_TRUE(has(w, fp8_buf_tuple_truthy));
  EXPECT_TRUE(has(w, bucket_size_bridge_default));
  EXPECT_TRUE(has(w, cdmc_tp_dp_conflict));
  EXPECT_FALSE(has(w, preset_mismatch)) << dump_codes(out);
  // Key order is part of the contract.
  const ordered_json j = out.to_json();
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  // "step" because the config sets gradient_accumulation_fusion (docs/BRIDGE_RULES.md §12).
  EXPECT_EQ(keys, (std::vector<std::string>{"model", "ddp", "optimizer", "env", "derived", "step",
                                            "warnings", "errors"}));
  EXPECT_EQ(j.at("step").at("grad_accum_fusion"),
            (ordered_json{{"value", "on"}, {"from", "model.gradient_accumulation_fusion"}}));
  EXPECT_EQ(j.at("env").at("CUDA_DEVICE_MAX_CONNECTIONS"), "1");
  EXPECT_EQ(j.at("derived").at("te_userbuffers").at("proj_wgrad").at("method"), "external");
}

TEST(ResolveExample, DataFilesResolveOrFailAsTheirNamesSay) {
  for (const auto& e : std::filesystem::directory_iterator(data_file(""))) {
    const std::string name = e.path().filename().string();
    SCOPED_TRACE(name);
    if (!name.starts_with("bad_")) {
      const bridge_resolution out = resolve_bridge_file(e.path().string());
      EXPECT_FALSE(out.has_errors()) << dump_codes(out);
      continue;
    }
    try {
      const bridge_resolution out = resolve_bridge_file(e.path().string());
      EXPECT_TRUE(out.has_errors());
      for (const auto& err : out.errors)
        EXPECT_TRUE(err.message.starts_with(e.path().string() + ": "));
    } catch (const config_error& err) {
      EXPECT_NE(std::string(err.what()).find(e.path().string()), std::string::npos);
    }
  }
}

// ---- TP gate (docs/BRIDGE_RULES.md §3 B) --------------------------------------------------------

TEST(ResolveTpGate, TpBelowTwoDisablesWithWarning) {
  json in = base();
  in["model"]["tensor_model_parallel_size"] = 1;
  in["model"]["sequence_parallel"] = false;
  in["platform"]["num_gpus"] = 8;
  const bridge_resolution out = resolve(in);
  EXPECT_FALSE(out.tp_comm_overlap);
  EXPECT_TRUE(has(out.warnings, tp_overlap_disabled_tp_lt_2));
  EXPECT_FALSE(out.te_userbuffers.has_value());
  EXPECT_EQ(out.to_json().at("derived").at("te_userbuffers"), nullptr);
  EXPECT_FALSE(out.has_errors()) << "a warning, never an error";
}

TEST(ResolveTpGate, SequenceParallelOffDisablesWithWarning) {
  json in = base();
  in["model"]["sequence_parallel"] = false;
  const bridge_resolution out = resolve(in);
  EXPECT_FALSE(out.tp_comm_overlap);
  EXPECT_TRUE(has(out.warnings, tp_overlap_disabled_sequence_parallel_off));
  EXPECT_FALSE(has(out.warnings, tp_overlap_disabled_tp_lt_2));
}

TEST(ResolveTpGate, MissingTransformerEngineDisablesWithWarning) {
  json in = base();
  in["platform"]["have_te"] = false;
  const bridge_resolution out = resolve(in);
  EXPECT_FALSE(out.tp_comm_overlap);
  EXPECT_TRUE(has(out.warnings, tp_overlap_disabled_no_te));
}

TEST(ResolveTpGate, OnlyTheFirstFailingReasonIsReported) {
  json in = base();
  in["model"]["tensor_model_parallel_size"] = 1;  // reason 1
  in["model"]["sequence_parallel"] = false;       // reason 2
  in["platform"]["have_te"] = false;              // reason 3
  std::vector<diagnostic> w = resolve(in).warnings;
  EXPECT_TRUE(has(w, tp_overlap_disabled_tp_lt_2));
  EXPECT_FALSE(has(w, tp_overlap_disabled_sequence_parallel_off));
  EXPECT_FALSE(has(w, tp_overlap_disabled_no_te));

  in["model"]["tensor_model_parallel_size"] = 2;
  w = resolve(in).warnings;
  EXPECT_TRUE(has(w, tp_overlap_disabled_sequence_parallel_off));
  EXPECT_FALSE(has(w, tp_overlap_disabled_no_te));
}

TEST(ResolveTpGate, PassingGateKeepsOverlapAndWarnsAboutMissingPreset) {
  const bridge_resolution out = resolve(base());
  EXPECT_TRUE(out.tp_comm_overlap);
  EXPECT_FALSE(out.tp_comm_overlap_cfg.has_value());
  EXPECT_EQ(out.to_json().at("model").at("tp_comm_overlap_cfg"), nullptr);
  EXPECT_TRUE(has(out.warnings, tp_overlap_no_preset));
  // TE defaults when no preset is given.
  EXPECT_EQ(te(out, "proj_fprop").method, overlap_method::pipeline);
  EXPECT_EQ(te(out, "qkv_fprop").num_splits, 4);
}

TEST(ResolveTpGate, WithoutCommOverlapNothingIsGated) {
  json in = base();
  in.erase("comm_overlap");
  in["model"]["tp_comm_overlap"] = true;
  in["model"]["sequence_parallel"] = false;
  const bridge_resolution out = resolve(in);
  EXPECT_TRUE(out.tp_comm_overlap);
  EXPECT_FALSE(out.comm_overlap_setup);
  EXPECT_TRUE(has(out.warnings, comm_overlap_absent));
  EXPECT_TRUE(has(out.warnings, tp_overlap_ungated));
  // Megatron-Core defaults stand.
  EXPECT_TRUE(out.batch_p2p_comm);
  EXPECT_EQ(out.wgrad_deferral_limit, 0);
}

// ---- PP p2p table (docs/BRIDGE_RULES.md §3 C) ---------------------------------------------------

TEST(ResolvePp, P2pDefaultsFollowTheThreeRowTable) {
  struct row {
    int pp;
    std::optional<int> vp;
    bool overlap, batch;
  };
  for (const row& r :
       {row{4, 2, true, false}, row{4, std::nullopt, false, true}, row{4, 1, false, true},
        row{1, std::nullopt, false, false}, row{1, 4, false, false}}) {
    SCOPED_TRACE("pp " + std::to_string(r.pp) + " vp " + (r.vp ? std::to_string(*r.vp) : "None"));
    json in = base();
    in["model"]["pipeline_model_parallel_size"] = r.pp;
    if (r.vp) in["model"]["virtual_pipeline_model_parallel_size"] = *r.vp;
    in["platform"]["num_gpus"] = 4 * r.pp;
    const bridge_resolution out = resolve(in);
    EXPECT_EQ(out.overlap_p2p_comm, r.overlap);
    EXPECT_EQ(out.batch_p2p_comm, r.batch);
    EXPECT_EQ(out.interleaved_pipeline, r.overlap);
    EXPECT_FALSE(out.has_errors()) << dump_codes(out);
  }
}

// ---- DP gate and defaults (docs/BRIDGE_RULES.md §4.3, §4.4, §1 step 6) --------------------------

TEST(ResolveDp, GateOffDropsCommOverlapDpSettings) {
  json in = base();
  in["comm_overlap"]["overlap_grad_reduce"] = true;
  in["comm_overlap"]["bucket_size"] = 1000000;
  in["ddp"] = {{"use_distributed_optimizer", false}};
  const bridge_resolution out = resolve(in);
  EXPECT_FALSE(out.overlap_grad_reduce);
  EXPECT_FALSE(out.bucket_size.has_value());
  EXPECT_FALSE(out.dp_overlap_gate);
  const std::string msg = message(out.warnings, dp_overlap_settings_dropped);
  EXPECT_NE(msg.find("overlap_grad_reduce, bucket_size"), std::string::npos) << msg;
}

TEST(ResolveDp, GateOnAppliesBridgeDefaultsForDpAboveOne) {
  json in = base();
  in["ddp"] = {{"use_distributed_optimizer", true}};
  in["platform"]["num_gpus"] = 32;  // dp 8
  const bridge_resolution out = resolve(in);
  EXPECT_TRUE(out.dp_overlap_gate);
  EXPECT_EQ(out.data_parallel_size, 8);
  EXPECT_EQ(out.bucket_size, 134217728);
  EXPECT_TRUE(out.overlap_grad_reduce);
  EXPECT_TRUE(out.ddp_overlap_param_gather);
  EXPECT_FALSE(out.align_param_gather);  // PP 1
  EXPECT_TRUE(out.optimizer_overlap_param_gather);
  EXPECT_FALSE(out.overlap_param_gather_with_optimizer_step);
  EXPECT_TRUE(out.optimizer_use_distributed_optimizer);  // synced
  EXPECT_TRUE(has(out.warnings, distributed_optimizer_synced));
  EXPECT_EQ(out.effective_bucket_size, 134217728);
  const std::string msg = message(out.warnings, bucket_size_bridge_default);
  EXPECT_NE(msg.find("40000000"), std::string::npos) << msg;  // max(40M, 8M)
}

TEST(ResolveDp, DpOfOneGetsTheOffDefaults) {
  json in = base();
  in["ddp"] = {{"use_distributed_optimizer", true}};
  in["optimizer"] = {{"use_distributed_optimizer", true}};
  in["platform"]["num_gpus"] = 4;  // dp 1
  const bridge_resolution out = resolve(in);
  EXPECT_EQ(out.data_parallel_size, 1);
  EXPECT_FALSE(out.bucket_size.has_value());
  EXPECT_FALSE(out.overlap_grad_reduce);
  EXPECT_FALSE(out.ddp_overlap_param_gather);
  EXPECT_FALSE(out.effective_bucket_size.has_value());
  EXPECT_EQ(out.to_json().at("derived").at("effective_bucket_size"), nullptr);
  EXPECT_FALSE(has(out.warnings, bucket_size_bridge_default));
  EXPECT_FALSE(has(out.warnings, distributed_optimizer_synced));
}

TEST(ResolveDp, AlignParamGatherOnlyWithPpAndVp) {
  json in = base();
  in["ddp"] = {{"use_distributed_optimizer", true}};
  in["model"]["pipeline_model_parallel_size"] = 2;
  in["platform"]["num_gpus"] = 16;  // dp 2
  EXPECT_FALSE(resolve(in).align_param_gather);
  in["model"]["virtual_pipeline_model_parallel_size"] = 2;
  const bridge_resolution out = resolve(in);
  EXPECT_TRUE(out.align_param_gather);
  EXPECT_FALSE(out.overlap_param_gather_with_optimizer_step);
  EXPECT_TRUE(has(out.warnings, overlap_param_gather_with_optimizer_step_off));
}

TEST(ResolveDp, OptimizerOnlyFlagLosesTheDefaults) {
  json in = base();
  in["optimizer"] = {{"use_distributed_optimizer", true}};
  const bridge_resolution out = resolve(in);
  EXPECT_FALSE(out.dp_overlap_gate);
  EXPECT_TRUE(out.ddp_use_distributed_optimizer);  // synced afterwards
  EXPECT_FALSE(out.overlap_grad_reduce);           // but no DP defaults
  EXPECT_FALSE(out.bucket_size.has_value());
  EXPECT_TRUE(has(out.warnings, dp_defaults_skipped_optimizer_only));
  EXPECT_TRUE(has(out.warnings, distributed_optimizer_synced));
}

TEST(ResolveDp, OverlapParamGatherMismatchIsFlagged) {
  json in = base();
  in["ddp"] = {{"overlap_param_gather", true}};  // no distributed optimizer: the gate never runs
  bridge_resolution out = resolve(in);
  EXPECT_TRUE(out.ddp_overlap_param_gather);
  EXPECT_FALSE(out.optimizer_overlap_param_gather);
  EXPECT_TRUE(has(out.warnings, overlap_param_gather_mismatch));
  in["optimizer"] = {{"overlap_param_gather", true}};
  EXPECT_FALSE(has(resolve(in).warnings, overlap_param_gather_mismatch));
}

TEST(ResolveDp, WorldSizeOverwritesGivenDataParallelSize) {
  json in = base();
  in["comm_overlap"]["data_parallel_size"] = 4;
  bridge_resolution out = resolve(in);
  EXPECT_EQ(out.data_parallel_size, 2);
  EXPECT_TRUE(has(out.warnings, data_parallel_size_overwritten));

  in["platform"].erase("num_gpus");
  out = resolve(in);
  EXPECT_EQ(out.data_parallel_size, 4);
  EXPECT_EQ(out.num_gpus, 16);
  EXPECT_FALSE(has(out.warnings, num_gpus_defaulted));

  in["comm_overlap"].erase("data_parallel_size");
  out = resolve(in);
  EXPECT_EQ(out.num_gpus, 8);
  EXPECT_TRUE(has(out.warnings, num_gpus_defaulted));
}

// ---- user overrides and overwrites (docs/BRIDGE_RULES.md §3 F, §4.1, §4.5) ----------------------

TEST(ResolveOverride, UserValuesWinUnchecked) {
  json in = base();
  in["model"]["pipeline_model_parallel_size"] = 2;
  in["platform"]["num_gpus"] = 16;
  in["ddp"] = {{"use_distributed_optimizer", true}};
  in["comm_overlap"]["batch_p2p_comm"] = false;
  in["comm_overlap"]["bucket_size"] = 50000000;
  in["comm_overlap"]["overlap_param_gather"] = false;
  in["comm_overlap"]["tp_comm_bootstrap_backend"] = "mpi";
  const bridge_resolution out = resolve(in);
  EXPECT_FALSE(out.batch_p2p_comm);
  EXPECT_FALSE(out.overlap_p2p_comm);
  EXPECT_EQ(out.tp_comm_bootstrap_backend, "mpi");
  EXPECT_EQ(out.bucket_size, 50000000);
  EXPECT_FALSE(out.ddp_overlap_param_gather);
  EXPECT_TRUE(out.overlap_grad_reduce);  // default kept
  EXPECT_FALSE(has(out.warnings, bucket_size_bridge_default));
  EXPECT_TRUE(has(out.warnings, p2p_both_disabled));
}

TEST(ResolveOverwrite, ValuesSetOnModelAreOverwrittenWithWarning) {
  json in = base();
  in["model"]["overlap_p2p_comm"] = true;
  in["model"]["wgrad_deferral_limit"] = 5;
  in["model"]["tp_comm_overlap"] = false;
  in["model"]["batch_p2p_comm"] = false;  // equal to the resolved value: no warning
  const bridge_resolution out = resolve(in);
  EXPECT_FALSE(out.overlap_p2p_comm);
  EXPECT_EQ(out.wgrad_deferral_limit, -1);
  EXPECT_TRUE(out.tp_comm_overlap);
  EXPECT_EQ(count(out.warnings, model_field_overwritten), 3u) << dump_codes(out);
  bool saw_limit = false;
  for (const auto& w : out.warnings)
    if (w.code == model_field_overwritten &&
        w.message.starts_with("in.json: model.wgrad_deferral_limit: "))
      saw_limit = true;
  EXPECT_TRUE(saw_limit) << dump_codes(out);
}

TEST(ResolveOverwrite, ValuesSetOnDdpAndOptimizerAreOverwrittenWhenTheGateRuns) {
  json in = base();
  in["ddp"] = {
      {"use_distributed_optimizer", true}, {"overlap_grad_reduce", false}, {"bucket_size", 1000}};
  in["optimizer"] = {{"use_distributed_optimizer", true}, {"overlap_param_gather", false}};
  bridge_resolution out = resolve(in);
  EXPECT_TRUE(out.overlap_grad_reduce);
  EXPECT_EQ(out.bucket_size, 134217728);
  EXPECT_EQ(count(out.warnings, ddp_field_overwritten), 2u) << dump_codes(out);
  EXPECT_EQ(count(out.warnings, optimizer_field_overwritten), 1u);

  // Without the distributed optimizer the gate never runs: the ddp values stand.
  in["ddp"]["use_distributed_optimizer"] = false;
  in["optimizer"]["use_distributed_optimizer"] = false;
  out = resolve(in);
  EXPECT_EQ(out.bucket_size, 1000);
  EXPECT_FALSE(has(out.warnings, ddp_field_overwritten));
}

// ---- presets through the resolver (docs/BRIDGE_RULES.md §4.2, §7, §11.2, §11.3) -----------------

TEST(ResolvePreset, LoraExpansionDropsNoneSlots) {
  json in = base();
  in["model"]["fp8"] = "hybrid";
  in["comm_overlap"]["tp_comm_overlap_cfg"] =
      "userbuffers_fp8_h100_h16384_tp4_mbs1_seqlen2048_lora";
  const bridge_resolution out = resolve(in);
  ASSERT_FALSE(out.has_errors()) << dump_codes(out);
  EXPECT_EQ(cfg_size(out), 8u);
  EXPECT_EQ(cfg_slot(out, "qkv_wgrad"), nullptr);
  EXPECT_EQ(cfg_slot(out, "fc1_wgrad"), nullptr);
  ASSERT_NE(cfg_slot(out, "qkv_fprop"), nullptr);
  EXPECT_TRUE(cfg_slot(out, "qkv_fprop")->aggregate);
  const ordered_json cfg = out.to_json().at("model").at("tp_comm_overlap_cfg");
  EXPECT_EQ(cfg.size(), 8u);
  EXPECT_FALSE(cfg.contains("qkv_wgrad"));
  EXPECT_TRUE(te_is_reduce_scatter("fc1_dgrad", out.te_userbuffers.value()));
  EXPECT_EQ(te(out, "fc1_wgrad").method, overlap_method::none);
}

TEST(ResolvePreset, ExpandedFieldsFollowTheDataclass) {
  json in = base();
  in["comm_overlap"]["tp_comm_overlap_cfg"] = gpt3_preset;
  const ordered_json out = resolve(in).to_json();
  const auto& cfg = out.at("model").at("tp_comm_overlap_cfg");
  const auto keys = [](const ordered_json& o) {
    std::vector<std::string> k;
    for (auto it = o.begin(); it != o.end(); ++it) k.push_back(it.key());
    return k;
  };
  EXPECT_EQ(keys(cfg.at("qkv_dgrad")),
            (std::vector<std::string>{"method", "num_sm", "cga_size", "set_sm_margin"}));
  EXPECT_EQ(keys(cfg.at("proj_fprop")),
            (std::vector<std::string>{"method", "num_sm", "cga_size", "num_splits", "set_sm_margin",
                                      "fp8_buf", "atomic_gemm"}));
  EXPECT_EQ(keys(cfg.at("qkv_fprop")),
            (std::vector<std::string>{"method", "num_sm", "cga_size", "set_sm_margin", "fp8_buf",
                                      "atomic_gemm", "aggregate"}));
  EXPECT_EQ(cfg.at("proj_fprop").at("fp8_buf"), "(False,)");
}

TEST(ResolvePreset, Fp8BufTupleWarningNamesTheGemms) {
  json in = base();
  in["comm_overlap"]["tp_comm_overlap_cfg"] = gpt3_preset;
  const bridge_resolution out = resolve(in);
  const std::string msg = message(out.warnings, fp8_buf_tuple_truthy);
  EXPECT_NE(msg.find("gemms.proj_fprop.fp8_buf"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("fc2_fprop"), std::string::npos) << "fc2_fprop is ring exchange here";
}

TEST(ResolvePreset, InlineObjectIsAccepted) {
  json in = base();
  in["comm_overlap"]["tp_comm_overlap_cfg"] = json::parse(
      R"({"qkv_fprop": {"method": "ring_exchange", "aggregate": true}, "fc2_dgrad": null})");
  const bridge_resolution out = resolve(in);
  ASSERT_FALSE(out.has_errors()) << dump_codes(out);
  EXPECT_EQ(cfg_size(out), 1u);
  EXPECT_FALSE(out.preset.has_value()) << "an inline object names no preset";
  EXPECT_TRUE(te(out, "qkv_fprop").aggregate);
  EXPECT_FALSE(has(out.warnings, tp_overlap_no_preset));
}

TEST(ResolvePreset, MismatchWithTheRunIsWarned) {
  json in = base();
  in["model"]["tensor_model_parallel_size"] = 8;
  in["model"]["hidden_size"] = 12288;
  in["model"]["seq_length"] = 4096;
  in["train"] = {{"micro_batch_size", 1}};
  in["platform"]["gpu"] = "b200";
  in["comm_overlap"]["tp_comm_overlap_cfg"] = gpt3_preset;
  const bridge_resolution out = resolve(in);
  EXPECT_EQ(count(out.warnings, preset_mismatch), 3u) << dump_codes(out);  // tp, seq, gpu
  const std::string msg = message(out.warnings, preset_mismatch);
  EXPECT_NE(msg.find("TP 4"), std::string::npos);
  EXPECT_TRUE(msg.starts_with("in.json: comm_overlap.tp_comm_overlap_cfg: preset ")) << msg;
  EXPECT_TRUE(out.tp_comm_overlap) << "Bridge runs it anyway";
  in["model"]["fp8"] = "e4m3";
  const bridge_resolution fp8 = resolve(in);
  EXPECT_EQ(count(fp8.warnings, preset_mismatch), 4u);  // + dtype
  EXPECT_TRUE(std::any_of(fp8.warnings.begin(), fp8.warnings.end(), [](const diagnostic& d) {
    return d.code == preset_mismatch &&
           d.message.find("dtype bf16 but the run has fp8 (model.fp8 set)") != std::string::npos;
  })) << dump_codes(fp8);
}

TEST(ResolvePreset, PresetWithTpOverlapOffIsFlaggedUnused) {
  json in = base();
  in["comm_overlap"]["tp_comm_overlap"] = false;
  in["comm_overlap"]["tp_comm_overlap_cfg"] = gpt3_preset;
  const bridge_resolution out = resolve(in);
  EXPECT_TRUE(has(out.warnings, tp_comm_overlap_cfg_unused));
  EXPECT_FALSE(out.te_userbuffers.has_value());
  EXPECT_TRUE(out.tp_comm_overlap_cfg.has_value()) << "Bridge leaves it on the model";
  EXPECT_FALSE(has(out.warnings, preset_mismatch));
}

// ---- launch environment, PerfEnvPlugin generation (B) (docs/BRIDGE_RULES.md §8 B, §9) -----------

TEST(ResolveEnv, HopperWithTpGivesOne) {
  const bridge_resolution out = resolve(base());
  EXPECT_EQ(env_of(out, "CUDA_DEVICE_MAX_CONNECTIONS"), "1");
  EXPECT_FALSE(has(out.warnings, cdmc_generations_differ));
}

TEST(ResolveEnv, B200TpOnlyGivesEightAndFlagsLaterGenerations) {
  json in = base();
  in["model"]["tensor_model_parallel_size"] = 8;
  in["platform"] = {{"gpu", "b200"}, {"num_gpus", 8}};  // dp 1, pp 1
  const bridge_resolution out = resolve(in);
  EXPECT_EQ(env_of(out, "CUDA_DEVICE_MAX_CONNECTIONS"), "8");
  EXPECT_TRUE(out.gpu_sm100_or_newer);
  const std::string msg = message(out.warnings, cdmc_generations_differ);
  EXPECT_NE(msg.find("give 32"), std::string::npos) << msg;
}

TEST(ResolveEnv, Sm100WithTpAndDpOrPpGives32) {
  json in = base();
  in["platform"] = {{"gpu", "gb200"}, {"num_gpus", 16}};  // tp 4, dp 4
  EXPECT_EQ(env_of(resolve(in), "CUDA_DEVICE_MAX_CONNECTIONS"), "32");
  in["platform"]["num_gpus"] = 8;
  in["model"]["pipeline_model_parallel_size"] = 2;  // dp 1, pp 2
  const bridge_resolution out = resolve(in);
  EXPECT_EQ(env_of(out, "CUDA_DEVICE_MAX_CONNECTIONS"), "32");
  EXPECT_FALSE(has(out.warnings, cdmc_generations_differ));
}

TEST(ResolveEnv, DeepepGives32ExceptHopperWithTp) {
  json in = base();
  in["model"]["tensor_model_parallel_size"] = 1;
  in["model"]["sequence_parallel"] = false;
  in["launcher"] = {{"moe_flex_dispatcher_backend", "deepep"}};
  EXPECT_EQ(env_of(resolve(in), "CUDA_DEVICE_MAX_CONNECTIONS"), "32");
  in["launcher"]["moe_flex_dispatcher_backend"] = "hybridep";
  in["platform"]["gpu"] = "b200";
  EXPECT_EQ(env_of(resolve(in), "CUDA_DEVICE_MAX_CONNECTIONS"), "32");
  // Hopper with TP: the 1 overrides deepep's 32.
  in = base();
  in["launcher"] = {{"moe_flex_dispatcher_backend", "deepep"}};
  EXPECT_EQ(env_of(resolve(in), "CUDA_DEVICE_MAX_CONNECTIONS"), "1");
}

TEST(ResolveEnv, HopperA2aOverlapKeepsTheDefault) {
  json in = base();
  in["launcher"] = {{"a2a_overlap", true}};
  EXPECT_EQ(env_of(resolve(in), "CUDA_DEVICE_MAX_CONNECTIONS"), "8");
  in["launcher"]["moe_flex_dispatcher_backend"] = "deepep";
  EXPECT_EQ(env_of(resolve(in), "CUDA_DEVICE_MAX_CONNECTIONS"), "32");
}

TEST(ResolveEnv, TpOneOnHopperGivesEight) {
  json in = base();
  in["model"]["tensor_model_parallel_size"] = 1;
  in["model"]["sequence_parallel"] = false;
  in["model"]["context_parallel_size"] = 2;
  EXPECT_EQ(env_of(resolve(in), "CUDA_DEVICE_MAX_CONNECTIONS"), "1") << "CP counts like TP";
  in["model"]["context_parallel_size"] = 1;
  EXPECT_EQ(env_of(resolve(in), "CUDA_DEVICE_MAX_CONNECTIONS"), "8");
}

TEST(ResolveEnv, LayerNormMarginEnv) {
  json in = base();
  in["launcher"] = {{"layernorm_sm_margin", 20}};
  bridge_resolution out = resolve(in);
  EXPECT_EQ(env_of(out, "NVTE_FWD_LAYERNORM_SM_MARGIN"), "20");
  EXPECT_EQ(env_of(out, "NVTE_BWD_LAYERNORM_SM_MARGIN"), "20");
  in["launcher"]["enable_layernorm_sm_margin"] = false;
  out = resolve(in);
  EXPECT_FALSE(env_of(out, "NVTE_FWD_LAYERNORM_SM_MARGIN"));
  EXPECT_FALSE(env_of(out, "NVTE_BWD_LAYERNORM_SM_MARGIN"));
}

TEST(ResolveEnv, NcclP2pChunkSizeOnlyWithPipelineParallelism) {
  json in = base();
  in["launcher"] = {{"nccl_pp_comm_chunksize", 2097152}};
  bridge_resolution out = resolve(in);
  EXPECT_FALSE(env_of(out, "NCCL_P2P_NET_CHUNKSIZE"));
  EXPECT_TRUE(has(out.warnings, nccl_chunksize_ignored));
  in["model"]["pipeline_model_parallel_size"] = 2;
  in["platform"]["num_gpus"] = 16;
  out = resolve(in);
  EXPECT_EQ(env_of(out, "NCCL_P2P_NET_CHUNKSIZE"), "2097152");
  in["launcher"]["nccl_pp_comm_chunksize"] = 1;  // PerfEnvPlugin asserts > 1
  EXPECT_NE(thrown(in).find("in.json: launcher.nccl_pp_comm_chunksize"), std::string::npos);
}

TEST(ResolveEnv, EnvVariablesKeepTheirOrder) {
  json in = base();
  in["model"]["pipeline_model_parallel_size"] = 2;
  in["platform"]["num_gpus"] = 16;
  in["launcher"] = {{"nccl_pp_comm_chunksize", 2097152}};
  std::vector<std::string> names;
  for (const auto& [name, value] : resolve(in).env) names.push_back(name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"CUDA_DEVICE_MAX_CONNECTIONS", "NVTE_FWD_LAYERNORM_SM_MARGIN",
                                      "NVTE_BWD_LAYERNORM_SM_MARGIN", "NCCL_P2P_NET_CHUNKSIZE"}));
}

TEST(ResolveEnv, CdmcConflictBetweenTpOverlapAndDpOverlapOnHopper) {
  json in = base();
  in["ddp"] = {{"use_distributed_optimizer", true}};
  bridge_resolution out = resolve(in);
  EXPECT_TRUE(has(out.warnings, cdmc_tp_dp_conflict));
  in["platform"]["num_gpus"] = 4;  // dp 1: no DP overlap
  out = resolve(in);
  EXPECT_FALSE(has(out.warnings, cdmc_tp_dp_conflict));
  in["platform"] = {{"gpu", "b200"}, {"num_gpus", 16}};
  EXPECT_FALSE(has(resolve(in).warnings, cdmc_tp_dp_conflict));
}

TEST(ResolveEnv, MissingGpuIsTreatedAsHopperWithWarning) {
  json in = base();
  in["platform"].erase("gpu");
  const bridge_resolution out = resolve(in);
  EXPECT_TRUE(has(out.warnings, platform_gpu_defaulted));
  EXPECT_FALSE(out.gpu.has_value());
  EXPECT_EQ(env_of(out, "CUDA_DEVICE_MAX_CONNECTIONS"), "1");
}

// ---- errors Megatron would raise later (docs/BRIDGE_RULES.md §5) --------------------------------

TEST(ResolveErrors, OverlapP2pWithoutVirtualPipeline) {
  json in = base();
  in["model"]["pipeline_model_parallel_size"] = 4;
  in["platform"]["num_gpus"] = 16;
  in["comm_overlap"]["overlap_p2p_comm"] = true;
  const bridge_resolution out = resolve(in);
  ASSERT_TRUE(out.has_errors());
  EXPECT_TRUE(message(out.errors, overlap_p2p_comm_without_interleaving)
                  .starts_with("in.json: comm_overlap.overlap_p2p_comm: "))
      << dump_codes(out);
  EXPECT_TRUE(out.batch_p2p_comm) << "Bridge keeps its default";
}

TEST(ResolveErrors, OverlapAndBatchP2pWithInterleaving) {
  json in = base();
  in["model"]["pipeline_model_parallel_size"] = 4;
  in["model"]["virtual_pipeline_model_parallel_size"] = 2;
  in["platform"]["num_gpus"] = 16;
  in["comm_overlap"]["batch_p2p_comm"] = true;
  const bridge_resolution out = resolve(in);
  EXPECT_TRUE(has(out.errors, overlap_and_batch_p2p_comm)) << dump_codes(out);
  in["comm_overlap"]["batch_p2p_comm"] = false;
  EXPECT_FALSE(resolve(in).has_errors());
}

TEST(ResolveErrors, DeferEmbeddingWgradWithBridgeDefaultLimit) {
  json in = base();
  in["model"]["pipeline_model_parallel_size"] = 2;
  in["model"]["gradient_accumulation_fusion"] = true;
  in["platform"]["num_gpus"] = 16;
  in["comm_overlap"]["defer_embedding_wgrad_compute"] = true;
  bridge_resolution out = resolve(in);
  EXPECT_EQ(codes(out.errors), std::vector<diag_code>{defer_embedding_wgrad_negative_limit});
  EXPECT_NE(message(out.errors, defer_embedding_wgrad_negative_limit).find("-1"),
            std::string::npos);
  in["comm_overlap"]["wgrad_deferral_limit"] = 0;
  out = resolve(in);
  EXPECT_FALSE(out.has_errors()) << dump_codes(out);
  EXPECT_TRUE(out.defer_embedding_wgrad_compute);
}

TEST(ResolveErrors, DeferEmbeddingWgradNeedsPipelineAndFusion) {
  json in = base();
  // Unset it is Bridge's GPTModelProvider default, on with TE (test_resolve_step.cpp).
  in["model"]["gradient_accumulation_fusion"] = false;
  in["comm_overlap"]["defer_embedding_wgrad_compute"] = true;
  in["comm_overlap"]["wgrad_deferral_limit"] = 22;
  const bridge_resolution out = resolve(in);
  EXPECT_TRUE(has(out.errors, defer_embedding_wgrad_pp1));
  EXPECT_TRUE(has(out.errors, defer_embedding_wgrad_no_gradient_accumulation_fusion));
  EXPECT_FALSE(has(out.errors, defer_embedding_wgrad_negative_limit));
}

TEST(ResolveErrors, SequenceParallelWithoutTensorParallel) {
  json in = base();
  in["model"]["tensor_model_parallel_size"] = 1;
  const bridge_resolution out = resolve(in);
  EXPECT_TRUE(message(out.errors, sequence_parallel_without_tp)
                  .starts_with("in.json: model.sequence_parallel: "));
}

TEST(ResolveErrors, WorldSizeNotDivisibleOrTooSmall) {
  json in = base();
  in["platform"]["num_gpus"] = 6;
  bridge_resolution out = resolve(in);
  EXPECT_TRUE(
      message(out.errors, world_size_not_divisible).starts_with("in.json: platform.num_gpus: "));
  in["platform"]["num_gpus"] = 2;
  out = resolve(in);
  EXPECT_TRUE(has(out.errors, data_parallel_size_zero));
  EXPECT_EQ(out.data_parallel_size, 0);
}

TEST(ResolveErrors, UnknownPresetListsKnownNames) {
  json in = base();
  in["comm_overlap"]["tp_comm_overlap_cfg"] = "userbuffers_bf16_h100_h12288_tp8_mbs1_seqlen2048";
  const bridge_resolution out = resolve(in);
  const std::string msg = message(out.errors, unknown_preset);
  EXPECT_TRUE(msg.starts_with("in.json: comm_overlap.tp_comm_overlap_cfg: ")) << msg;
  EXPECT_NE(msg.find(gpt3_preset), std::string::npos) << msg;
  EXPECT_FALSE(has(out.warnings, tp_overlap_no_preset));
  EXPECT_FALSE(out.tp_comm_overlap_cfg.has_value());
  EXPECT_FALSE(out.te_userbuffers.has_value()) << "the config does not resolve";
}

TEST(ResolveErrors, NumBucketsCollidesWithBridgeBucketSize) {
  json in = base();
  in["ddp"] = {{"use_distributed_optimizer", true}, {"num_buckets", 48}};
  EXPECT_TRUE(has(resolve(in).errors, num_buckets_with_bucket_size));
  in["platform"]["num_gpus"] = 4;  // dp 1: no Bridge bucket
  EXPECT_FALSE(resolve(in).has_errors());
}

TEST(ResolveErrors, HeadsNotDivisibleByTp) {
  json in = base();
  in["model"]["num_attention_heads"] = 6;
  EXPECT_TRUE(has(resolve(in).errors, heads_not_divisible_by_tp));
}

TEST(ResolveErrors, TeRejectsInlineConfig) {
  json in = base();
  in["comm_overlap"]["tp_comm_overlap_cfg"] = json::parse(
      R"({"qkv_fprop": {"method": "pipeline", "num_sm": 8, "cga_size": 2, "num_splits": 4,
                        "set_sm_margin": true}})");
  bridge_resolution out = resolve(in);
  EXPECT_TRUE(message(out.errors, te_userbuffers_invalid)
                  .starts_with("in.json: comm_overlap.tp_comm_overlap_cfg.qkv_fprop: "))
      << dump_codes(out);
  EXPECT_FALSE(out.te_userbuffers.has_value());
  in["comm_overlap"]["tp_comm_overlap_cfg"] = json::parse(
      R"({"qkv_fprop": {"method": "ring_exchange", "atomic_gemm": true},
          "proj_fprop": {"method": "ring_exchange", "atomic_gemm": true}})");
  out = resolve(in);
  EXPECT_TRUE(has(out.errors, te_userbuffers_invalid)) << "atomic GEMM needs FP8";
  EXPECT_TRUE(out.te_userbuffers.has_value()) << "TE builds it; only the precision is wrong";
  in["model"]["fp8"] = "e4m3";
  EXPECT_FALSE(resolve(in).has_errors());
}

// ---- input handling (DESIGN §3) ---------------------------------------------------------------

TEST(ResolveInput, UnmodelledFieldsWarnWithNearestName) {
  json in = base();
  in["model"]["tensor_parallel_size"] = 8;
  in["model"]["num_layers"] = 96;
  in["ddp"] = {{"overlap_grad_reduces", true}};
  in["optimizer"] = {{"lr", 0.0003}};
  const bridge_resolution out = resolve(in);
  EXPECT_EQ(count(out.warnings, unused_field), 4u) << dump_codes(out);
  bool typo = false, ddp_typo = false;
  for (const auto& w : out.warnings) {
    const std::string& m = w.message;
    if (m.starts_with("in.json: model.tensor_parallel_size: ") &&
        m.find("nearest modelled field: tensor_model_parallel_size") != std::string::npos)
      typo = true;
    if (m.starts_with("in.json: ddp.overlap_grad_reduces: ") &&
        m.find("nearest modelled field: overlap_grad_reduce") != std::string::npos)
      ddp_typo = true;
  }
  EXPECT_TRUE(typo) << dump_codes(out);
  EXPECT_TRUE(ddp_typo) << dump_codes(out);
  EXPECT_TRUE(out.tp_comm_overlap) << "the typo does not change TP";
  EXPECT_EQ(out.input.tp, 4);
}

TEST(ResolveInput, ShapeFieldsForARunKeepTheirUnusedFieldWarnings) {
  json in = base();
  in["model"]["hidden_size"] = 8192;
  in["model"]["ffn_hidden_size"] = 28672;
  in["model"]["num_query_groups"] = 8;
  in["model"]["num_attention_heads"] = 64;
  in["model"]["fp8"] = "hybrid";
  in["train"] = {{"micro_batch_size", 2}};
  bridge_resolution out = resolve(in);
  EXPECT_EQ(out.input.hidden_size, 8192);
  EXPECT_EQ(out.input.ffn_hidden_size, 28672);
  EXPECT_EQ(out.input.num_query_groups, 8);
  EXPECT_EQ(out.input.num_attention_heads, 64);
  EXPECT_EQ(out.input.micro_batch_size, 2);
  EXPECT_TRUE(out.input.fp8);
  // The resolver does not model them: each is still reported, exactly as before.
  EXPECT_EQ(count(out.warnings, unused_field), 2u) << dump_codes(out);
  EXPECT_TRUE(message(out.warnings, unused_field).starts_with("in.json: model.ffn_hidden_size: "));

  // Never validated by the resolver: a value that is not a positive integer is left unset.
  in["model"]["ffn_hidden_size"] = "28672";
  in["model"]["num_query_groups"] = -1;
  in["model"]["fp8"] = "";
  out = resolve(in);
  EXPECT_FALSE(out.input.ffn_hidden_size.has_value());
  EXPECT_FALSE(out.input.num_query_groups.has_value());
  EXPECT_FALSE(out.input.fp8);
  EXPECT_EQ(count(out.warnings, unused_field), 2u) << dump_codes(out);
}

TEST(ResolveInput, ExpertFieldsAreAcceptedAsNotModelled) {
  json in = base();
  in["model"]["expert_model_parallel_size"] = 8;
  in["model"]["num_moe_experts"] = 64;
  in["model"]["moe_router_topk"] = 2;
  in["ddp"] = {{"delay_wgrad_compute", true}};
  in["comm_overlap"]["overlap_moe_expert_parallel_comm"] = true;
  const bridge_resolution out = resolve(in);
  // num_moe_experts is read (an unset dispatcher's default) and expert_model_parallel_size
  // carried to step (EP 8); the other three are reported.
  EXPECT_EQ(count(out.warnings, not_modelled), 3u) << dump_codes(out);
  EXPECT_TRUE(std::any_of(out.step_settings.begin(), out.step_settings.end(),
                          [](const auto& s) { return s.axis == "ep" && s.value == "8"; }));
  EXPECT_FALSE(has(out.warnings, unused_field));
  EXPECT_FALSE(out.has_errors());
}

TEST(ResolveInput, UnknownKeyInOwnedSectionsIsAnError) {
  json in = base();
  in["comm_overlap"]["overlap_grad_reduse"] = true;
  EXPECT_NE(thrown(in).find("in.json: comm_overlap.overlap_grad_reduse: unknown key"),
            std::string::npos);
  in = base();
  in["platform"]["gpus"] = 8;
  EXPECT_NE(thrown(in).find("in.json: platform.gpus"), std::string::npos);
  in = base();
  in["launcher"] = {{"enable_vboost", true}};
  EXPECT_NE(thrown(in).find("in.json: launcher.enable_vboost"), std::string::npos);
  in = base();
  in["train"] = {{"global_batch_size", 8}};
  EXPECT_NE(thrown(in).find("in.json: train.global_batch_size"), std::string::npos);
  in = base();
  in["checkpoint"] = json::object();
  EXPECT_NE(thrown(in).find("in.json: checkpoint"), std::string::npos);
}

TEST(ResolveInput, WrongTypeOrValueNamesFileAndPath) {
  json in = base();
  in["model"]["hidden_size"] = -5;
  EXPECT_NE(thrown(in).find("in.json: model.hidden_size: expected a positive integer, got -5"),
            std::string::npos);
  in = base();
  in["model"]["tensor_model_parallel_size"] = "4";
  EXPECT_NE(thrown(in).find("in.json: model.tensor_model_parallel_size"), std::string::npos);
  in = base();
  in["ddp"] = {{"bucket_size", "128MB"}};
  EXPECT_NE(thrown(in).find("in.json: ddp.bucket_size"), std::string::npos);
  in = base();
  in["platform"]["gpu"] = "v100";
  EXPECT_NE(thrown(in).find("in.json: platform.gpu: unknown value 'v100'"), std::string::npos);
  in = base();
  in["comm_overlap"]["tp_comm_overlap_cfg"] = 5;
  EXPECT_NE(thrown(in).find("in.json: comm_overlap.tp_comm_overlap_cfg"), std::string::npos);
  in = base();
  in["comm_overlap"]["tp_comm_overlap_cfg"] =
      json::parse(R"({"qkv_dgrad": {"method": "bulk", "num_sm": 4}})");
  EXPECT_NE(thrown(in).find("in.json: comm_overlap.tp_comm_overlap_cfg.qkv_dgrad.cga_size"),
            std::string::npos);
}

TEST(ResolveInput, ModelIsRequiredAndTpCommOverlapHasNoDefault) {
  json in = base();
  in.erase("model");
  EXPECT_NE(thrown(in).find("in.json: model: required"), std::string::npos);
  in = base();
  in["comm_overlap"].erase("tp_comm_overlap");
  EXPECT_NE(thrown(in).find("in.json: comm_overlap.tp_comm_overlap: required"), std::string::npos);
  in = base();
  in["comm_overlap"] = nullptr;  // None: Bridge skips the setup
  EXPECT_TRUE(has(resolve(in).warnings, comm_overlap_absent));
}

TEST(ResolveInput, FileIsReadOrNamedInTheError) {
  const std::string missing = data_file("no_such_config.json");
  try {
    resolve_bridge_file(missing);
    ADD_FAILURE() << "no config_error thrown";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

// ---- output -----------------------------------------------------------------------------------

TEST(ResolveOutput, HasErrorsFollowsTheErrorList) {
  bridge_resolution r;
  EXPECT_FALSE(r.has_errors());
  r.warnings.push_back({unused_field, "w"});
  EXPECT_FALSE(r.has_errors());
  r.errors.push_back({unknown_preset, "e"});
  EXPECT_TRUE(r.has_errors());
}

TEST(ResolveOutput, DiagnosticsPrintTheirCodeName) {
  json in = base();
  in["model"]["tensor_model_parallel_size"] = 1;
  const bridge_resolution out = resolve(in);
  const ordered_json j = out.to_json();
  ASSERT_EQ(j.at("errors").size(), out.errors.size());
  ASSERT_FALSE(out.errors.empty());
  EXPECT_EQ(j.at("errors")[0],
            ordered_json({{"code", "sequence_parallel_without_tp"},
                          {"message", message(out.errors, sequence_parallel_without_tp)}}));
  EXPECT_EQ(j.at("warnings").size(), out.warnings.size());
}

}  // namespace ob

namespace ob {
namespace {

// One launcher rule for `resolve` and the training step (docs/BRIDGE_RULES.md §8 B–D).
TEST(LauncherCdmc, HopperTpWantsOneBlackwellTpWithDpOrPpWants32) {
  launcher_layout hopper;
  hopper.tp = 4;
  EXPECT_EQ(launcher_cdmc_rule(hopper, false), 1);
  hopper.a2a_overlap = true;  // the MoE all-to-all overlap keeps the driver's default
  EXPECT_EQ(launcher_cdmc_rule(hopper, false), 8);
  hopper.deep_dispatcher = true;
  EXPECT_EQ(launcher_cdmc_rule(hopper, false), 32);
  launcher_layout blackwell;
  blackwell.sm100_or_newer = true;
  blackwell.tp = 2;
  EXPECT_EQ(launcher_cdmc_rule(blackwell, false), 8);
  blackwell.dp = 4;
  EXPECT_EQ(launcher_cdmc_rule(blackwell, false), 32);
  launcher_layout plain;  // no TP, no CP: the driver's default, on either generation
  plain.sm100_or_newer = true;
  EXPECT_EQ(launcher_cdmc_rule(plain, false), 8);
  EXPECT_EQ(launcher_cdmc_rule(plain, true), 32);  // the later generations' rule
}

}  // namespace
}  // namespace ob
