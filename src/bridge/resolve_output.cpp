// `resolve`'s output: the typed resolution as ordered JSON, keys in the order resolve.hpp
// documents (the golden files pin every byte).
#include "bridge/resolve.hpp"

namespace ob {
namespace {

template <typename T>
ordered_json or_null(const std::optional<T>& v) {
  return v ? ordered_json(*v) : ordered_json();
}

ordered_json model_json(const bridge_resolution& r) {
  ordered_json m;
  m["tp_comm_overlap"] = r.tp_comm_overlap;
  m["tp_comm_overlap_cfg"] =
      r.tp_comm_overlap_cfg ? expand_tp_overlap_layer(*r.tp_comm_overlap_cfg) : ordered_json();
  m["tp_comm_bootstrap_backend"] = or_null(r.tp_comm_bootstrap_backend);
  m["overlap_p2p_comm"] = r.overlap_p2p_comm;
  m["batch_p2p_comm"] = r.batch_p2p_comm;
  m["defer_embedding_wgrad_compute"] = r.defer_embedding_wgrad_compute;
  m["wgrad_deferral_limit"] = r.wgrad_deferral_limit;
  return m;
}

ordered_json ddp_json(const bridge_resolution& r) {
  ordered_json d;
  d["use_distributed_optimizer"] = r.ddp_use_distributed_optimizer;
  d["overlap_grad_reduce"] = r.overlap_grad_reduce;
  d["overlap_param_gather"] = r.ddp_overlap_param_gather;
  d["align_param_gather"] = r.align_param_gather;
  d["bucket_size"] = or_null(r.bucket_size);
  if (r.use_megatron_fsdp) {
    d["use_megatron_fsdp"] = true;
    d["data_parallel_sharding_strategy"] = r.sharding_strategy;
  }
  return d;
}

ordered_json optimizer_json(const bridge_resolution& r) {
  ordered_json o;
  o["use_distributed_optimizer"] = r.optimizer_use_distributed_optimizer;
  o["overlap_param_gather"] = r.optimizer_overlap_param_gather;
  o["overlap_param_gather_with_optimizer_step"] = r.overlap_param_gather_with_optimizer_step;
  return o;
}

ordered_json derived_json(const bridge_resolution& r) {
  ordered_json d;
  d["data_parallel_size"] = r.data_parallel_size;
  d["num_gpus"] = r.num_gpus;
  d["gpu"] = or_null(r.gpu);
  d["gpu_sm100_or_newer"] = r.gpu_sm100_or_newer;
  d["interleaved_pipeline"] = r.interleaved_pipeline;
  d["comm_overlap_setup"] = r.comm_overlap_setup;
  d["dp_overlap_gate"] = r.dp_overlap_gate;
  d["effective_bucket_size"] = or_null(r.effective_bucket_size);
  d["te_userbuffers"] = r.te_userbuffers ? te_effective_to_json(*r.te_userbuffers) : ordered_json();
  return d;
}

ordered_json diagnostics_json(const std::vector<diagnostic>& ds) {
  ordered_json a = ordered_json::array();
  for (const auto& d : ds) a.push_back({{"code", d.name()}, {"message", d.message}});
  return a;
}

}  // namespace

ordered_json bridge_resolution::to_json() const {
  ordered_json out;
  out["model"] = model_json(*this);
  out["ddp"] = ddp_json(*this);
  out["optimizer"] = optimizer_json(*this);
  ordered_json env = ordered_json::object();
  for (const auto& [name, value] : this->env) env[name] = value;
  out["env"] = std::move(env);
  out["derived"] = derived_json(*this);
  // Only where the config decides a step setting, so other outputs keep their bytes.
  if (!step_settings.empty()) {
    ordered_json step = ordered_json::object();
    for (const auto& s : step_settings) step[s.axis] = {{"value", s.value}, {"from", s.source}};
    out["step"] = std::move(step);
  }
  out["warnings"] = diagnostics_json(warnings);
  out["errors"] = diagnostics_json(errors);
  return out;
}

}  // namespace ob
