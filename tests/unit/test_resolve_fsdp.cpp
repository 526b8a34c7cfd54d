// Megatron-FSDP in `resolve` (docs/FSDP.md §6): Bridge's use_megatron_fsdp (dist or ddp) and
// data_parallel_sharding_strategy, the rules Bridge's validation applies, and the step a Bridge
// config with FSDP becomes (step --fsdp on).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "base/build_info.hpp"
#include "bridge/resolve.hpp"
#include "resolve_test_util.hpp"
#include "run/step_run.hpp"

namespace ob {
namespace {

using enum diag_code;

// Llama 3 70B's FSDP layout on 64 GB200s: TP 1, no TP overlap.
json fsdp_base() {
  return json::parse(R"({
    "model": {"tensor_model_parallel_size": 1, "seq_length": 8192},
    "ddp": {"use_megatron_fsdp": true, "data_parallel_sharding_strategy": "optim_grads_params"},
    "platform": {"gpu": "gb200", "num_gpus": 64}
  })");
}

bridge_resolution resolve(const json& in) { return test::resolve_json(in); }
const diagnostic* find(const std::vector<diagnostic>& list, diag_code code) {
  return test::find_diag(list, code);
}

TEST(ResolveFsdp, UseMegatronFsdpWithOptimGradsParamsIsStepsFsdp) {
  const bridge_resolution r = resolve(fsdp_base());
  EXPECT_FALSE(r.has_errors());
  EXPECT_TRUE(r.use_megatron_fsdp);
  EXPECT_TRUE(r.step_fsdp());
  // Megatron-FSDP always shards the optimizer: Bridge turns the distributed optimizer on.
  EXPECT_TRUE(r.ddp_use_distributed_optimizer);
  EXPECT_TRUE(r.optimizer_use_distributed_optimizer);
  const diagnostic* forced = find(r.warnings, fsdp_distributed_optimizer_forced);
  ASSERT_NE(forced, nullptr);
  EXPECT_NE(forced->message.find("in.json: ddp.use_distributed_optimizer"), std::string::npos);
  const ordered_json out = r.to_json();
  EXPECT_EQ(out.at("ddp").at("use_megatron_fsdp"), true);
  EXPECT_EQ(out.at("ddp").at("data_parallel_sharding_strategy"), "optim_grads_params");
  EXPECT_EQ(out.at("ddp").at("use_distributed_optimizer"), true);
}

TEST(ResolveFsdp, DistSwitchAloneTurnsItOnAndWithoutFsdpNothingIsPrinted) {
  json in = fsdp_base();
  in["ddp"].erase("use_megatron_fsdp");
  in["dist"] = {{"use_megatron_fsdp", true}};
  EXPECT_TRUE(resolve(in).step_fsdp());
  in["dist"]["use_megatron_fsdp"] = false;
  const bridge_resolution off = resolve(in);
  EXPECT_FALSE(off.use_megatron_fsdp);
  EXPECT_FALSE(off.to_json().at("ddp").contains("use_megatron_fsdp"));
  EXPECT_EQ(find(off.warnings, fsdp_distributed_optimizer_forced), nullptr);
}

TEST(ResolveFsdp, OtherShardingStrategiesAreNotPlannedAsFsdp) {
  json in = fsdp_base();
  in["ddp"].erase("data_parallel_sharding_strategy");  // Megatron-Core's default: no_shard
  const bridge_resolution r = resolve(in);
  EXPECT_TRUE(r.use_megatron_fsdp);
  EXPECT_FALSE(r.step_fsdp());
  const diagnostic* w = find(r.warnings, fsdp_strategy_not_planned);
  ASSERT_NE(w, nullptr);
  EXPECT_NE(w->message.find("'no_shard' (unset"), std::string::npos) << w->message;
  in["ddp"]["data_parallel_sharding_strategy"] = "zero3";
  EXPECT_THROW(resolve(in), config_error);
}

TEST(ResolveFsdp, BridgesRefusalsAreErrors) {
  json both = fsdp_base();
  both["dist"] = {{"use_megatron_fsdp", true}, {"use_torch_fsdp2", true}};
  EXPECT_NE(find(resolve(both).errors, fsdp_and_torch_fsdp2), nullptr);
  // TP 2 on Hopper: the launcher sets CUDA_DEVICE_MAX_CONNECTIONS 1, which Megatron-FSDP asserts
  // against.
  json hopper = fsdp_base();
  hopper["model"]["tensor_model_parallel_size"] = 2;
  hopper["platform"]["gpu"] = "h100";
  const bridge_resolution r = resolve(hopper);
  const diagnostic* e = find(r.errors, fsdp_cdmc_1);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("CUDA_DEVICE_MAX_CONNECTIONS"), std::string::npos);
  hopper["platform"]["gpu"] = "gb200";  // 32 on Blackwell with TP and DP
  EXPECT_EQ(find(resolve(hopper).errors, fsdp_cdmc_1), nullptr);
}

TEST(ResolveFsdp, AStepFromTheBridgeConfigPlansFsdp) {
  step_scenario sc;
  sc.model = "llama3_70b";
  sc.cluster = "gb200_nvl72";
  sc.allow_oom = true;
  sc.bridge_config = std::string(OB_SOURCE_DIR) + "/configs/bridge/llama3_70b_fsdp_gb200.json";
  sc.axes = {{"gbs", {"256"}}, {"layers", {"2"}}};
  const step_run_case rc = resolve_step(sc).cases.at(0);
  EXPECT_TRUE(rc.c.cfg.fsdp);
  EXPECT_TRUE(rc.c.cfg.distributed_optimizer);
  EXPECT_EQ(rc.c.cfg.gpus, 64);
  EXPECT_EQ(rc.c.cfg.mbs, 2);
  // A swept --fsdp still overrides the config's default.
  sc.axes.push_back({"fsdp", {"off"}});
  EXPECT_FALSE(resolve_step(sc).cases.at(0).c.cfg.fsdp);
}

}  // namespace
}  // namespace ob
