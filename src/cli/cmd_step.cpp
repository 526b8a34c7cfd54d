#include "base/error.hpp"
#include "cli/command.hpp"
#include "cli/harness.hpp"
#include "cli/step_driver.hpp"

namespace ob::cli {
namespace {

// One training step across the cluster (docs/ARCHITECTURE.md §9). Every flag but --model and
// --gpu takes a comma list and sweeps.
class step_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand("step", "a whole training step: TP, CP, DP and PP overlap");
    app->add_option("--config", config_, "a step scenario (configs/scenarios/, \"step\")");
    app->add_option("--model", model_, "a name in configs/models/ or a model file");
    app->add_option("--cluster", cluster_, "a name in configs/clusters/ or a cluster file");
    app->add_option("--bridge-config", bridge_,
                    "a Megatron-Bridge config: its layout and "
                    "overlap settings are the defaults");
    app->add_option("--te-launch-ordering", ordering_, "auto | on | off");
    for (const auto& [axis, help] : flag_axes) add_axis(*app, axis, help);
    app->add_option("--set", sets_, "axis=v1,v2 for any step axis, e.g. sm_margin=0,16");
    app->add_flag("--allow-oom", allow_oom_,
                  "predict cases over the GPU's memory too (never recommended; docs/MEMORY.md)");
    app->add_flag("--search", search_.on,
                  "search tp, pp, vp, cp, mbs and recompute for this model, GPU count and batch, "
                  "then the overlap settings (README: which layout)");
    app->add_option("--top", search_.top, "--search: the cases kept, best first (default 5)");
    app->add_option("--budget-s", search_.budget_s,
                    "--search: stop simulating after S seconds (default: none)");
    add_common_flags(*app, flags_, true, false);
    add_answer_flags(*app, flags_.answers);
    add_sweep_flags(*app, flags_);
    gpu_given_ = app->get_option("--gpu");
    return app;
  }

  int run(const process_args& args) override {
    check_lists();
    prepare_step_answers(flags_.answers);
    step_scenario sc = config_.empty() ? step_scenario{} : load_step_scenario(config_);
    if (!model_.empty()) sc.model = model_;
    if (gpu_given_->count() > 0) sc.gpu = flags_.gpu;
    if (!cluster_.empty()) sc.cluster = cluster_;
    if (!bridge_.empty()) sc.bridge_config = bridge_;
    if (!ordering_.empty())
      sc.te_launch_ordering = parse_enum<launch_ordering>(ordering_, "--te-launch-ordering");
    for (const auto& [axis, values] : values_)
      if (!values.empty()) apply_step_override(sc, axis + "=" + join(values));
    for (const auto& s : sets_) apply_step_override(sc, s);
    sc.allow_oom = allow_oom_;
    if (search_.on)
      return drive_search(sc, flags_, search_, args,
                          {{"--config", config_},
                           {"--model", model_},
                           {"--cluster", cluster_},
                           {"--bridge-config", bridge_},
                           {"--gpu", flags_.gpu}});
    return drive_step(sc, flags_, args,
                      {{"--config", config_},
                       {"--model", model_},
                       {"--cluster", cluster_},
                       {"--bridge-config", bridge_},
                       {"--gpu", flags_.gpu}});
  }

 private:
  static constexpr std::pair<const char*, const char*> flag_axes[] = {
      {"gpus", "GPUs in the job"},
      {"gpus_per_node", "GPUs per node (a host)"},
      {"nvlink_domain", "GPUs sharing NVLink, a whole number of nodes (72: NVL72); the cluster's"},
      {"nic_gbps", "GB/s per NIC per direction"},
      {"tp", "tensor parallel"},
      {"pp", "pipeline parallel"},
      {"vp", "virtual pipeline chunks per stage"},
      {"cp", "context parallel"},
      {"cp_comm_type",
       "p2p | all_gather | a2a | a2a+p2p (cp_comm_type: KV ring, K/V gathered, Ulysses head "
       "scatter, or both in levels)"},
      {"hierarchical_context_parallel_sizes",
       "A+P: a2a+p2p's all-to-all level (CP neighbours) and ring level, A x P = cp"},
      {"ep", "expert parallel (MoE models)"},
      {"etp", "expert tensor parallel (MoE models; default: tp)"},
      {"moe_imbalance", "busiest EP rank's routed tokens over the mean (1: force-balanced)"},
      {"delay_wgrad", "on | off (delay_wgrad_compute: expert wgrad beside the a2a backward)"},
      {"moe_a2a_overlap", "on | off (overlap_moe_expert_parallel_comm)"},
      {"moe_dispatcher", "alltoall | allgather | deepep | hybridep (MoE token dispatcher)"},
      {"moe_shared_overlap", "on | off (moe_shared_expert_overlap: shared expert beside the a2a)"},
      {"moe_capacity_factor", "moe_expert_capacity_factor: drop beyond F x balanced (0: dropless)"},
      {"moe_expert_rank_capacity_factor",
       "HybridEP's token budget per EP rank, F x balanced: sync-free dispatch, no host sync of "
       "the counts (0: off)"},
      {"use_transformer_engine_op_fuser",
       "on | off (with NVTE_CUTEDSL_FUSED_GROUPED_MLP: TE's fused grouped MLP for the experts)"},
      {"moe_flex_dispatcher_num_sms",
       "SMs the DeepEP / HybridEP kernels hold (0: the backend's default, 20 / 16)"},
      {"cuda_graph_scope",
       "CUDA graph scopes joined by '+': attn, moe_router, moe_preprocess (TE's per-layer "
       "graphs); or full_iteration; or none"},
      {"mbs", "micro-batch size"},
      {"gbs", "global batch size"},
      {"seq", "sequence length"},
      {"dtype", "bf16 | fp16 | fp8 | mxfp8 | nvfp4"},
      {"fp8_recipe", "delayed | current (TE's per-tensor fp8 scaling; docs/CALIBRATION.md §3.8)"},
      {"fp8_dot_product_attention",
       "on | off (TE's fp8_dpa: the fused attention on fp8 Q, K, V and dO; fp8 and mxfp8)"},
      {"recompute", "none | selective | full"},
      {"recompute_modules",
       "Megatron's recompute_modules joined by '+', e.g. mla_up_proj+mlp (core_attn, moe_act, "
       "layernorm, mla_up_proj, mlp, moe, shared_experts; implies selective) or none"},
      {"sequence_parallel", "on | off"},
      {"tp_overlap", "on | off (TE userbuffers: the Bridge preset for the shape, or TE's)"},
      {"dp_overlap", "on | off (overlap_grad_reduce and overlap_param_gather)"},
      {"pp_overlap", "on | off (overlap_p2p_comm with interleaving)"},
      {"distributed_optimizer", "on | off"},
      {"fsdp",
       "on | off | shard_grad_op (on: Megatron-FSDP, params, grads and optimizer sharded over "
       "DP; shard_grad_op: PyTorch FSDP's, params kept gathered from forward to backward)"},
      {"grad_accum_fusion",
       "on | off (gradient_accumulation_fusion: wgrad GEMMs add into main_grad; default on)"},
      {"cross_entropy_fusion_impl",
       "native | te (the loss keeps fp32 softmax, or TE's in-place 16-bit logits; default native)"},
      {"megatron_2022",
       "on | off (Megatron-LM's mid-2022 training path, as Korthikanti et al. ran it)"},
      {"cpu_offload_layers",
       "N: the first N layers' activations offloaded to host memory (cpu_offloading_num_layers)"},
      {"fp8_param_gather", "on | off (weights kept and all-gathered in fp8; fp8 and mxfp8)"},
      {"exp_avg_dtype", "fp32 | bf16 (precision-aware optimizer: Adam's moments in bf16)"},
      {"cdmc", "CUDA_DEVICE_MAX_CONNECTIONS (default: Bridge's launcher rule)"},
      {"cta_policy",
       "default | efficiency | zero (NCCL's; zero: copy-engine AllGather and EP AlltoAll)"},
      {"nccl_version", "the NCCL costed, e.g. 2.30 (default 2.28)"},
      {"coll_max_ctas", "NCCL 2.31's per-collective maxCTAs: N, or all_gather:4+reduce_scatter:16"},
      {"layers", "scale the model down to N layers"},
      {"pipeline_layout",
       "Megatron's pipeline_model_parallel_layout, e.g. 'Et|(tt|)*30mL' (default: even split)"}};

  void add_axis(CLI::App& app, const std::string& axis, const std::string& help) {
    std::string flag = "--" + axis;
    std::replace(flag.begin(), flag.end(), '_', '-');
    app.add_option(flag, values_[axis], help);
    flags_of_[axis] = flag;
  }

  // Comma lists are split by apply_step_override, not CLI11, which drops the empty item of
  // "1,,2"; an empty item is refused here, naming the flag.
  void check_lists() const {
    for (const auto& [axis, values] : values_)
      for (const std::string& v : values)
        if (v.empty() || v.front() == ',' || v.back() == ',' || v.find(",,") != v.npos)
          throw config_error(flags_of_.at(axis) + " " + v + ": empty value in list");
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ",") + x;
    return out;
  }

  std::string config_, model_, cluster_, bridge_, ordering_;
  std::vector<std::string> sets_;
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, std::string> flags_of_;
  common_flags flags_;
  CLI::Option* gpu_given_ = nullptr;
  bool allow_oom_ = false;
  search_flags search_;
};

}  // namespace

std::unique_ptr<command> make_step_command() { return std::make_unique<step_command>(); }

}  // namespace ob::cli
