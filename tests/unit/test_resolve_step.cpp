// What `resolve` hands `step` beyond the layout and the overlap flags (docs/BRIDGE_RULES.md §12):
// gradient_accumulation_fusion as Bridge's model provider defaults it, the precision, recompute,
// offload, optimizer and MoE settings with where each came from, what step cannot plan reported
// not_modelled, and a step made from the config running with them.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/build_info.hpp"
#include "base/error.hpp"
#include "bridge/resolve.hpp"
#include "resolve_test_util.hpp"
#include "run/step_run.hpp"
#include "scratch_path.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

using enum diag_code;

json base() { return test::resolve_base(); }
bridge_resolution resolve(const json& in) { return test::resolve_json(in); }
using test::find_diag;

// The carried setting of `axis`; nullptr when the config leaves it to step.
const step_setting* setting(const bridge_resolution& r, std::string_view axis) {
  const auto it = std::find_if(r.step_settings.begin(), r.step_settings.end(),
                               [&](const step_setting& s) { return s.axis == axis; });
  return it == r.step_settings.end() ? nullptr : &*it;
}

std::string value(const bridge_resolution& r, std::string_view axis) {
  const step_setting* s = setting(r, axis);
  return s ? s->value : "(not carried)";
}

// Defer needs PP > 1 and a limit; the fusion is then the only question.
json deferring() {
  json in = base();
  in["model"]["pipeline_model_parallel_size"] = 2;
  in["platform"]["num_gpus"] = 16;
  in["comm_overlap"]["defer_embedding_wgrad_compute"] = true;
  in["comm_overlap"]["wgrad_deferral_limit"] = 22;
  return in;
}

// Megatron-Core's ModelParallelConfig says False, but a Bridge model is a GPTModelProvider,
// whose default is True where Transformer Engine imports (utils/fusions.py): unset is on.
TEST(ResolveStep, UnsetGradientAccumulationFusionIsBridgesProviderDefault) {
  json in = deferring();
  bridge_resolution r = resolve(in);
  EXPECT_EQ(find_diag(r.errors, defer_embedding_wgrad_no_gradient_accumulation_fusion), nullptr);
  EXPECT_EQ(setting(r, "grad_accum_fusion"), nullptr);  // step's default, on, is Bridge's
  in["model"]["gradient_accumulation_fusion"] = false;
  r = resolve(in);
  const diagnostic* e = find_diag(r.errors, defer_embedding_wgrad_no_gradient_accumulation_fusion);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("model.gradient_accumulation_fusion false"), std::string::npos);
  EXPECT_EQ(value(r, "grad_accum_fusion"), "off");
  EXPECT_EQ(setting(r, "grad_accum_fusion")->source, "model.gradient_accumulation_fusion");
  // Without Transformer Engine the provider turns it on only with APEX's extension.
  in["model"].erase("gradient_accumulation_fusion");
  in["platform"]["have_te"] = false;
  r = resolve(in);
  e = find_diag(r.errors, defer_embedding_wgrad_no_gradient_accumulation_fusion);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("without Transformer Engine"), std::string::npos) << e->message;
  EXPECT_EQ(value(r, "grad_accum_fusion"), "off");
}

// mixed_precision's setup writes over ddp's field, with its own default when unset.
TEST(ResolveStep, MixedPrecisionWinsOverDdpForGradReduceAndFp8ParamGather) {
  json in = base();
  in["ddp"] = {{"grad_reduce_in_fp32", false}, {"fp8_param_gather", true}};
  bridge_resolution r = resolve(in);
  EXPECT_EQ(value(r, "grad_reduce_in_fp32"), "off");
  EXPECT_EQ(setting(r, "grad_reduce_in_fp32")->source, "ddp.grad_reduce_in_fp32");
  EXPECT_EQ(value(r, "fp8_param_gather"), "on");
  EXPECT_EQ(find_diag(r.warnings, unused_field), nullptr);  // both read now
  in["mixed_precision"] = json::object();
  r = resolve(in);
  EXPECT_EQ(value(r, "grad_reduce_in_fp32"), "on");  // MixedPrecisionConfig's default
  EXPECT_NE(setting(r, "grad_reduce_in_fp32")->source.find("MixedPrecisionConfig's default true"),
            std::string::npos);
  EXPECT_EQ(value(r, "fp8_param_gather"), "off");
  const diagnostic* w = find_diag(r.warnings, ddp_field_overwritten);
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->message.starts_with("in.json: ddp.grad_reduce_in_fp32: set to false"));
  in["mixed_precision"] = {{"grad_reduce_in_fp32", false}, {"fp8_param_gather", true}};
  r = resolve(in);
  EXPECT_EQ(setting(r, "grad_reduce_in_fp32")->source, "mixed_precision.grad_reduce_in_fp32");
  EXPECT_EQ(value(r, "fp8_param_gather"), "on");
  EXPECT_EQ(find_diag(r.warnings, ddp_field_overwritten), nullptr);
  // A recipe name is not expanded: nothing of the pair is carried, and it says so.
  in["mixed_precision"] = "bf16_mixed";
  r = resolve(in);
  EXPECT_EQ(setting(r, "grad_reduce_in_fp32"), nullptr);
  EXPECT_NE(find_diag(r.warnings, not_modelled), nullptr);
  in["mixed_precision"] = 3;
  EXPECT_THROW(resolve(in), config_error);
}

// Without mixed_precision and ddp's field, DistributedDataParallelConfig's default (false) runs.
TEST(ResolveStep, UnsetGradReduceWithoutMixedPrecisionIsMegatronsDefault) {
  const bridge_resolution r = resolve(base());
  EXPECT_EQ(value(r, "grad_reduce_in_fp32"), "off");
  EXPECT_NE(setting(r, "grad_reduce_in_fp32")->source.find("unset (no mixed_precision)"),
            std::string::npos);
  EXPECT_EQ(setting(r, "fp8_param_gather"), nullptr);  // step's default is the same, off
}

TEST(ResolveStep, CrossEntropyImplCountsOnlyWithLossFusion) {
  json in = base();
  in["model"]["cross_entropy_fusion_impl"] = "te";
  bridge_resolution r = resolve(in);
  EXPECT_EQ(value(r, "cross_entropy_fusion_impl"), "te");
  EXPECT_NE(setting(r, "cross_entropy_fusion_impl")->source.find("GPTModelProvider"),
            std::string::npos);
  in["model"]["cross_entropy_loss_fusion"] = false;
  EXPECT_EQ(value(resolve(in), "cross_entropy_fusion_impl"), "native");
  in["model"]["cross_entropy_fusion_impl"] = "apex";
  EXPECT_THROW(resolve(in), config_error);
}

TEST(ResolveStep, PrecisionAwareOptimizerMoments) {
  json in = base();
  in["optimizer"] = {{"use_precision_aware_optimizer", true},
                     {"exp_avg_dtype", "torch.bfloat16"},
                     {"exp_avg_sq_dtype", "bf16"}};
  bridge_resolution r = resolve(in);
  EXPECT_EQ(value(r, "exp_avg_dtype"), "bf16");
  EXPECT_FALSE(r.has_errors());
  in["optimizer"]["exp_avg_sq_dtype"] = "fp32";  // mixed: step cannot plan it
  r = resolve(in);
  EXPECT_EQ(setting(r, "exp_avg_dtype"), nullptr);
  EXPECT_NE(find_diag(r.warnings, not_modelled), nullptr);
  in["optimizer"]["use_precision_aware_optimizer"] = false;  // Megatron-Core asserts
  r = resolve(in);
  const diagnostic* e = find_diag(r.errors, step_setting_invalid);
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->message.starts_with("in.json: optimizer.exp_avg_dtype: bf16 without"));
}

TEST(ResolveStep, CpuOffloadingAndRecompute) {
  json in = base();
  in["model"]["cpu_offloading"] = true;
  in["model"]["cpu_offloading_num_layers"] = 3;
  bridge_resolution r = resolve(in);
  EXPECT_EQ(value(r, "cpu_offload_layers"), "3");
  EXPECT_FALSE(r.has_errors());
  in["model"]["recompute_granularity"] = "selective";
  EXPECT_NE(find_diag(resolve(in).errors, step_setting_invalid), nullptr);
  in["model"].erase("cpu_offloading");  // the layer count alone does nothing
  r = resolve(in);
  EXPECT_EQ(setting(r, "cpu_offload_layers"), nullptr);
  EXPECT_EQ(value(r, "recompute"), "selective");
  EXPECT_EQ(value(r, "recompute_modules"), "core_attn");  // Megatron-Core's default list
  in["model"]["recompute_modules"] = {"mlp", "moe", "layernorm"};
  r = resolve(in);
  EXPECT_EQ(value(r, "recompute_modules"), "mlp+layernorm");
  const diagnostic* w = find_diag(r.warnings, not_modelled);
  ASSERT_NE(w, nullptr);
  EXPECT_NE(w->message.find("moe not planned by step"), std::string::npos) << w->message;
  in["model"]["recompute_granularity"] = "full";  // without a method Megatron-Core raises
  r = resolve(in);
  EXPECT_EQ(value(r, "recompute"), "full");
  EXPECT_EQ(setting(r, "recompute_modules"), nullptr);
  EXPECT_NE(find_diag(r.errors, step_setting_invalid), nullptr);
}

// With comm_overlap, Bridge writes its EP-overlap values (default false) over the model's.
TEST(ResolveStep, MoeSettings) {
  json in = base();
  in["model"]["moe_token_dispatcher_type"] = "flex";
  in["model"]["moe_shared_expert_overlap"] = true;
  in["model"]["overlap_moe_expert_parallel_comm"] = true;
  in["comm_overlap"]["delay_wgrad_compute"] = true;
  bridge_resolution r = resolve(in);
  EXPECT_EQ(value(r, "moe_dispatcher"), "deepep");  // Megatron-Core's default flex backend
  EXPECT_EQ(value(r, "moe_shared_overlap"), "on");
  EXPECT_EQ(value(r, "delay_wgrad"), "on");
  EXPECT_EQ(setting(r, "delay_wgrad")->source, "comm_overlap.delay_wgrad_compute");
  EXPECT_EQ(value(r, "moe_a2a_overlap"), "off");
  const diagnostic* w = find_diag(r.warnings, model_field_overwritten);
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->message.starts_with("in.json: model.overlap_moe_expert_parallel_comm: "));
  in.erase("comm_overlap");  // the model's own value stands
  EXPECT_EQ(value(resolve(in), "moe_a2a_overlap"), "on");
  in["model"]["moe_flex_dispatcher_backend"] = "ncclep";
  r = resolve(in);
  EXPECT_EQ(setting(r, "moe_dispatcher"), nullptr);
  EXPECT_NE(find_diag(r.warnings, not_modelled), nullptr);
}

// A MoE model without moe_token_dispatcher_type runs TransformerConfig's allgather; a dense
// model gets no dispatcher at all.
TEST(ResolveStep, UnsetDispatcherOfAMoeModelIsAllgather) {
  json in = base();
  EXPECT_EQ(setting(resolve(in), "moe_dispatcher"), nullptr);
  in["model"]["num_moe_experts"] = 64;
  const bridge_resolution r = resolve(in);
  EXPECT_EQ(value(r, "moe_dispatcher"), "allgather");
  EXPECT_NE(setting(r, "moe_dispatcher")->source.find("Megatron-Core's default allgather"),
            std::string::npos);
}

// Megatron-Bridge v0.6.0's Qwen3 recipes on the sync-free path (_enable_hybridep_full_iteration_
// mxfp8, and _benchmark_common's moe_hybridep_num_sms): each setting is carried under step's axis.
json sync_free() {
  json in = base();
  in["model"] = {{"tensor_model_parallel_size", 1},
                 {"num_moe_experts", 128},
                 {"moe_token_dispatcher_type", "flex"},
                 {"moe_flex_dispatcher_backend", "hybridep"},
                 {"moe_expert_rank_capacity_factor", 1.5},
                 {"use_transformer_engine_op_fuser", true},
                 {"moe_hybridep_num_sms", 32},
                 {"cuda_graph_impl", "full_iteration"},
                 {"cuda_graph_scope", json::array()}};
  in["platform"] = {{"gpu", "gb200"}, {"num_gpus", 8}};
  in.erase("comm_overlap");
  return in;
}

TEST(ResolveStep, SyncFreeSettingsAreCarried) {
  json in = sync_free();
  bridge_resolution r = resolve(in);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front().message;
  EXPECT_EQ(value(r, "moe_dispatcher"), "hybridep");
  EXPECT_EQ(value(r, "moe_expert_rank_capacity_factor"), "1.5");
  EXPECT_EQ(value(r, "use_transformer_engine_op_fuser"), "on");
  EXPECT_EQ(value(r, "moe_flex_dispatcher_num_sms"), "32");
  EXPECT_TRUE(setting(r, "moe_flex_dispatcher_num_sms")
                  ->source.starts_with("model.moe_hybridep_num_sms (deprecated"));
  EXPECT_EQ(value(r, "cuda_graph_scope"), "full_iteration");
  EXPECT_EQ(setting(r, "cuda_graph_scope")->source, "model.cuda_graph_impl");
  for (const diagnostic& w : r.warnings)  // none of the fields is reported unread any more
    EXPECT_EQ(w.message.find("not modelled by the resolver"), std::string::npos) << w.message;
  EXPECT_EQ(find_diag(r.warnings, not_modelled), nullptr);
  // Megatron-Core's own name wins over the deprecated one.
  in["model"]["moe_flex_dispatcher_num_sms"] = 24;
  EXPECT_EQ(value(resolve(in), "moe_flex_dispatcher_num_sms"), "24");
  // The deprecated module value "full_iteration" is migrated to the impl.
  in["model"].erase("cuda_graph_impl");
  in["model"]["cuda_graph_scope"] = json::array({"full_iteration"});
  r = resolve(in);
  EXPECT_EQ(value(r, "cuda_graph_scope"), "full_iteration");
  EXPECT_TRUE(setting(r, "cuda_graph_scope")->source.starts_with("model.cuda_graph_scope"));
  // TE's per-layer graphs of the modules step plans are carried; the whole layer is not.
  in["model"]["cuda_graph_impl"] = "transformer_engine";
  in["model"]["cuda_graph_scope"] = json::array({"moe_router", "attn"});
  EXPECT_EQ(value(resolve(in), "cuda_graph_scope"), "attn+moe_router");
  in["model"]["cuda_graph_scope"] = json::array();
  r = resolve(in);
  EXPECT_EQ(setting(r, "cuda_graph_scope"), nullptr);
  EXPECT_NE(find_diag(r.warnings, not_modelled), nullptr);
}

// What Megatron-Core's TransformerConfig raises on comes out as resolve's error on the field.
TEST(ResolveStep, SyncFreeCombinationsMegatronRefusesAreErrors) {
  const auto error_at = [](const json& in, const std::string& field) {
    const bridge_resolution r = resolve(in);
    const diagnostic* e = find_diag(r.errors, step_setting_invalid);
    return e != nullptr && e->message.starts_with("in.json: " + field + ": ");
  };
  json in = sync_free();
  in["model"]["use_transformer_engine_op_fuser"] = false;
  EXPECT_TRUE(error_at(in, "model.moe_expert_rank_capacity_factor"));
  in = sync_free();
  in["model"]["moe_flex_dispatcher_backend"] = "deepep";
  EXPECT_TRUE(error_at(in, "model.moe_expert_rank_capacity_factor"));
  in = sync_free();
  in["model"]["moe_deepep_num_sms"] = 20;
  EXPECT_TRUE(error_at(in, "model.moe_deepep_num_sms"));
  in = sync_free();
  in["model"]["cuda_graph_scope"] = json::array({"attn"});
  EXPECT_TRUE(error_at(in, "model.cuda_graph_scope"));
  in = sync_free();
  in["model"]["moe_token_dispatcher_type"] = "alltoall";  // no flex kernels to size
  in["model"].erase("moe_expert_rank_capacity_factor");
  const bridge_resolution r = resolve(in);
  EXPECT_EQ(setting(r, "moe_flex_dispatcher_num_sms"), nullptr);
  EXPECT_NE(find_diag(r.warnings, unused_field), nullptr);
}

// The settings reach the step; a combination step refuses is named by the config's field.
TEST(ResolveStep, StepTakesTheSyncFreeSettingsAndNamesTheirFields) {
  json cfg = sync_free();
  const auto path = test::scratch_path("resolve_sync_free.json");
  std::ofstream(path) << cfg.dump();
  step_scenario sc;
  sc.model = "qwen3_30b_a3b";
  sc.cluster = "gb200_nvl72";
  sc.bridge_config = path.string();
  sc.axes = {{"ep", {"8"}}, {"dtype", {"mxfp8"}}, {"gbs", {"8"}}, {"layers", {"2"}}};
  sc.allow_oom = true;
  const step_config c = resolve_step(sc).cases.at(0).c.cfg;
  EXPECT_EQ(c.dispatcher, moe_dispatcher::hybridep);
  EXPECT_DOUBLE_EQ(c.moe_expert_rank_capacity_factor, 1.5);
  EXPECT_TRUE(c.te_op_fuser);
  EXPECT_EQ(c.flex_sms, 32);
  EXPECT_TRUE(c.graphs(graph_scope::full_iteration));
  // Without the budget each MoE layer syncs the host: no full-iteration graph (step's refusal).
  cfg["model"].erase("moe_expert_rank_capacity_factor");
  std::ofstream(path) << cfg.dump();
  try {
    resolve_step(sc);
    ADD_FAILURE() << "a full-iteration graph of a MoE model with the counts' sync was accepted";
  } catch (const config_error& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with(path.string() + ": model.cuda_graph_impl: "))
        << e.what();
  }
  std::filesystem::remove(path);
}

// Qwen3-30B-A3B on GB200 NVL72 from configs/bridge/qwen3_30b_a3b_sync_free_gb200.json, the
// GB200 recipe in Bridge's sections, with the axes resolve does not carry.
step_scenario sync_free_example(std::vector<sweep_axis> axes) {
  step_scenario sc;
  sc.model = "qwen3_30b_a3b";
  sc.cluster = "gb200_nvl72";
  sc.bridge_config =
      std::string(OB_SOURCE_DIR) + "/configs/bridge/qwen3_30b_a3b_sync_free_gb200.json";
  sc.axes = std::move(axes);
  return sc;
}

// The sync-free example with dtype, gbs and the recipe's CDMC plans the published scenario's
// case, so the two cannot drift apart (docs/MOE.md §21).
TEST(ResolveStep, TheSyncFreeBridgeExamplePlansThePublishedScenariosCase) {
  const std::string root = std::string(OB_SOURCE_DIR) + "/configs/";
  const step_scenario sc =
      sync_free_example({{"dtype", {"mxfp8"}}, {"gbs", {"512"}}, {"cdmc", {"32"}}});
  const step_run_case b = resolve_step(sc).cases.at(0);
  const step_run_case p =
      resolve_step(load_step_scenario(root + "scenarios/step_published_qwen3_30b_gb200.json"))
          .cases.at(0);
  // The record's config, every setting of the case, but for what set the CDMC and pp_overlap,
  // which Bridge leaves off without a pipeline and step's default keeps on: at PP 1 there are no
  // pipeline transfers to overlap.
  ordered_json bc = b.config, pc = p.config;
  for (ordered_json* j : {&bc, &pc}) {
    j->erase("cdmc_source");
    j->erase("pp_overlap");
  }
  EXPECT_EQ(bc, pc) << bc.dump() << "\n" << pc.dump();
  const step_config &x = b.c.cfg, &y = p.c.cfg;
  EXPECT_EQ(x.sync_free_moe(), y.sync_free_moe());
  EXPECT_DOUBLE_EQ(x.moe_expert_rank_capacity_factor, y.moe_expert_rank_capacity_factor);
  EXPECT_EQ(x.te_op_fuser, y.te_op_fuser);
  EXPECT_EQ(x.flex_sms, y.flex_sms);
  EXPECT_EQ(x.cuda_graph_scope, y.cuda_graph_scope);
  EXPECT_EQ(x.dispatcher, y.dispatcher);
  EXPECT_EQ(x.moe_a2a_overlap, y.moe_a2a_overlap);
  EXPECT_EQ(x.delay_wgrad, y.delay_wgrad);
  EXPECT_EQ(x.mbs, y.mbs);
  EXPECT_EQ(x.fp8_param_gather, y.fp8_param_gather);
  EXPECT_EQ(x.grad_reduce_in_fp32, y.grad_reduce_in_fp32);
  EXPECT_EQ(x.cross_entropy, y.cross_entropy);
  EXPECT_DOUBLE_EQ(b.memory.gib.total(), p.memory.gib.total());
}

// A Bridge config's expert layout reaches the step: EP and ETP as given, naming their fields in
// a refusal; without --ep the sync-free example plans EP 8, as its config says.
TEST(ResolveStep, ExpertLayoutIsCarried) {
  step_scenario sc = sync_free_example({{"dtype", {"mxfp8"}}, {"gbs", {"512"}}});
  const step_run_case c = resolve_step(sc).cases.at(0);
  EXPECT_EQ(c.c.cfg.ep, 8);
  EXPECT_EQ(c.c.cfg.etp, 1);  // unset in the config: TP's size

  json cfg;
  std::ifstream(sc.bridge_config) >> cfg;
  cfg["model"]["expert_tensor_parallel_size"] = 1;
  cfg["model"]["expert_model_parallel_size"] = 3;  // 128 experts do not split over 3 ranks
  const auto path = test::scratch_path("expert_layout.json");
  std::ofstream(path) << cfg.dump();
  const bridge_resolution r = resolve_bridge_file(path.string());
  bool ep = false, etp = false;
  for (const step_setting& s : r.step_settings) {
    ep |= s.axis == "ep" && s.value == "3" && s.source == "model.expert_model_parallel_size";
    etp |= s.axis == "etp" && s.value == "1" && s.source == "model.expert_tensor_parallel_size";
  }
  EXPECT_TRUE(ep);
  EXPECT_TRUE(etp);
  sc.bridge_config = path.string();
  const std::string msg = test::resolve_message(sc);
  EXPECT_NE(msg.find("model.expert_model_parallel_size"), std::string::npos) << msg;
}

// The settings reach the step's cases through the axes' own parsers; a swept axis overrides.
TEST(ResolveStep, StepTakesTheCarriedSettings) {
  json cfg;
  std::ifstream(std::string(OB_SOURCE_DIR) + "/configs/bridge/nemo_gpt3_175b_h100.json") >> cfg;
  cfg["model"]["pipeline_model_parallel_size"] = 1;
  cfg["model"].erase("virtual_pipeline_model_parallel_size");
  cfg["model"].erase("overlap_p2p_comm");
  cfg["model"].erase("batch_p2p_comm");
  cfg["model"]["cross_entropy_fusion_impl"] = "te";
  cfg["model"]["cp_comm_type"] = "all_gather";
  cfg["model"]["cpu_offloading"] = true;
  cfg["model"]["cpu_offloading_num_layers"] = 1;
  cfg["mixed_precision"] = {{"grad_reduce_in_fp32", false}};
  cfg["optimizer"] = {{"use_precision_aware_optimizer", true},
                      {"exp_avg_dtype", "bf16"},
                      {"exp_avg_sq_dtype", "bf16"}};
  const auto path = test::scratch_path("resolve_step.json");
  std::ofstream(path) << cfg.dump();
  step_scenario sc;
  sc.model = "gpt3_175b";
  sc.cluster = "dgx_h100";  // a host link for the offload
  sc.bridge_config = path.string();
  sc.axes = {{"gpus", {"8"}}, {"gbs", {"8"}}, {"layers", {"4"}}};
  sc.allow_oom = true;
  const step_config c = resolve_step(sc).cases.at(0).c.cfg;
  EXPECT_EQ(c.cross_entropy, cross_entropy_impl::te);
  EXPECT_EQ(c.cp_comm_type, cp_comm::all_gather);
  EXPECT_EQ(c.cpu_offload_layers, 1);
  EXPECT_FALSE(c.grad_reduce_in_fp32);
  EXPECT_TRUE(c.bf16_moments);
  sc.axes.push_back({"cross_entropy_fusion_impl", {"native"}});
  EXPECT_EQ(resolve_step(sc).cases.at(0).c.cfg.cross_entropy, cross_entropy_impl::native);
  // A carried value step refuses is named by the config's field, not by a flag never given.
  cfg["mixed_precision"]["fp8_param_gather"] = true;  // the run is bf16
  std::ofstream(path) << cfg.dump();
  try {
    resolve_step(sc);
    ADD_FAILURE() << "fp8_param_gather in a bf16 step was accepted";
  } catch (const config_error& e) {
    EXPECT_TRUE(
        std::string(e.what()).starts_with(path.string() + ": mixed_precision.fp8_param_gather: "))
        << e.what();
  }
  std::filesystem::remove(path);
}

// The layout and CDMC taken from a Bridge config name its fields: in a refusal, and as the
// source of the case's CDMC (the launcher rule), unless a flag or sweep set another value.
TEST(ResolveStep, LayoutAndCdmcFromABridgeConfigNameItsFields) {
  json cfg;
  std::ifstream(std::string(OB_SOURCE_DIR) + "/configs/bridge/nemo_gpt3_175b_h100.json") >> cfg;
  const auto path = test::scratch_path("resolve_layout.json");
  std::ofstream(path) << cfg.dump();
  step_scenario sc;
  sc.model = "gpt3_175b";
  sc.bridge_config = path.string();
  sc.axes = {{"gbs", {"256"}}};
  sc.allow_oom = true;
  const std::string cdmc_source = resolve_step(sc).cases.at(0).cdmc_source;
  EXPECT_NE(cdmc_source.find(path.string() + ": env.CUDA_DEVICE_MAX_CONNECTIONS"),
            std::string::npos)
      << cdmc_source;
  sc.axes.push_back({"cdmc", {"8"}});
  EXPECT_EQ(resolve_step(sc).cases.at(0).cdmc_source, "given");
  cfg["model"]["pipeline_model_parallel_size"] = 5;  // splits neither 96 layers nor 98
  cfg["model"].erase("virtual_pipeline_model_parallel_size");
  cfg["model"].erase("overlap_p2p_comm");
  cfg["model"].erase("batch_p2p_comm");
  cfg["platform"]["num_gpus"] = 40;
  std::ofstream(path) << cfg.dump();
  sc.axes = {{"gbs", {"256"}}};
  try {
    resolve_step(sc);
    ADD_FAILURE() << "PP 5 was accepted";
  } catch (const config_error& e) {
    EXPECT_TRUE(
        std::string(e.what()).starts_with(path.string() + ": model.pipeline_model_parallel_size: "))
        << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace ob
