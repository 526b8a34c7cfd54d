// The resolver's phases, in the order Bridge and Megatron-Core apply them; each adds its
// warnings and errors in that order, which is the order `resolve` prints them.
#include "bridge/resolve.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "bridge/resolve_input.hpp"
#include "model/cdmc.hpp"

namespace ob {
namespace {

using resolve_detail::bridge_input;
using resolve_detail::comm_in;
using resolve_detail::launcher_in;
using resolve_detail::model_in;
using resolve_detail::overlap_cfg_value;
using resolve_detail::report;

// Bridge's DP-overlap default bucket: 128·1024·1024 parameters (docs/BRIDGE_RULES.md §4.4).
constexpr std::int64_t bridge_bucket_size = 128LL * 1024 * 1024;
// Generation (B) launcher default world size when nothing else says (docs/BRIDGE_RULES.md §8 B).
constexpr std::int64_t perf_env_plugin_num_gpus = 8;

std::string str(bool b) { return b ? "true" : "false"; }
std::string str(std::int64_t v) { return std::to_string(v); }
std::string str(const std::optional<std::string>& s) { return s ? "\"" + *s + "\"" : "null"; }
std::string str(const std::optional<std::int64_t>& v) { return v ? str(*v) : "null"; }

// Megatron-Core's DDP bucket when overlap_grad_reduce is on and no bucket_size is given.
std::int64_t mcore_bucket_size(std::int64_t dp) {
  return std::max<std::int64_t>(40'000'000, 1'000'000 * dp);
}

void warn_overwrite(report& r, diag_code code, const std::string& section, const std::string& field,
                    const std::string& user, const std::string& now, const std::string& why) {
  if (user == now) return;
  r.warn(code, section + "." + field,
         "set to " + user + " here but overwritten with " + now + " by " + why);
}

// ---- world and data-parallel size (docs/BRIDGE_RULES.md §1 step 3) -------------------------

void check_world_divisible(std::int64_t world, const bridge_model_input& m, const std::string& how,
                           report& r) {
  const std::int64_t model_parallel = m.tp * m.cp * m.pp;
  if (world % model_parallel == 0) return;
  const std::string prod =
      "tp·cp·pp = " + str(m.tp) + "·" + str(m.cp) + "·" + str(m.pp) + " = " + str(model_parallel);
  if (world < model_parallel)
    r.error(diag_code::data_parallel_size_zero, "platform.num_gpus",
            "world size " + str(world) + how + " is smaller than " + prod +
                ": data_parallel_size would be 0");
  else
    r.error(diag_code::world_size_not_divisible, "platform.num_gpus",
            "world size " + str(world) + how + " is not divisible by " + prod +
                " (Bridge asserts this in set_data_parallel_size)");
}

void resolve_world(const bridge_input& in, bridge_resolution& res, report& r) {
  const std::int64_t model_parallel = in.shape.tp * in.shape.cp * in.shape.pp;
  const auto& co = in.comm_overlap;
  std::int64_t world = 0;
  if (in.platform.num_gpus) {
    world = *in.platform.num_gpus;
    check_world_divisible(world, in.shape, "", r);
    if (co && co->data_parallel_size && *co->data_parallel_size != world / model_parallel)
      r.warn(diag_code::data_parallel_size_overwritten, "comm_overlap.data_parallel_size",
             "set to " + str(*co->data_parallel_size) + " but Bridge overwrites it with " +
                 "world_size / (tp·cp·pp) = " + str(world / model_parallel) +
                 " (docs/BRIDGE_RULES.md §1)");
  } else if (co && co->data_parallel_size) {
    world = *co->data_parallel_size * model_parallel;
  } else {
    world = perf_env_plugin_num_gpus;
    r.warn(diag_code::num_gpus_defaulted, "platform.num_gpus",
           "not given (nor comm_overlap.data_parallel_size): assuming " + str(world) +
               " GPUs, PerfEnvPlugin's default");
    check_world_divisible(world, in.shape, " (assumed)", r);
  }
  res.num_gpus = world;
  res.data_parallel_size = world / model_parallel;
}

// ---- model side (docs/BRIDGE_RULES.md §3, §4.1, §4.2) --------------------------------------

// A resolved value and where it came from: the field a user set, else the one it lands in.
template <typename T>
struct sourced {
  T value{};
  std::string path;
};

// What ends up on the model, with the paths later messages name.
struct model_side {
  sourced<bool> tp_overlap;
  const overlap_cfg_value* cfg = nullptr;  // where tp_comm_overlap_cfg comes from; nullptr: null
  std::optional<std::string> backend;
  sourced<bool> overlap_p2p, batch_p2p, defer;
  sourced<std::int64_t> wgrad_deferral_limit;

  bool cfg_invalid() const { return cfg && cfg->invalid; }
};

// Without comm_overlap Bridge's setup never runs: Megatron-Core's defaults and the user's values.
model_side mcore_model_side(const model_in& m) {
  model_side s;
  s.tp_overlap = {m.tp_comm_overlap.value_or(false), "model.tp_comm_overlap"};
  s.cfg = m.cfg.given ? &m.cfg : nullptr;
  s.backend = m.backend_set ? m.backend : std::optional<std::string>("nccl");
  s.overlap_p2p = {m.overlap_p2p_comm.value_or(false), "model.overlap_p2p_comm"};
  s.batch_p2p = {m.batch_p2p_comm.value_or(true), "model.batch_p2p_comm"};
  s.defer = {m.defer.value_or(false), "model.defer_embedding_wgrad_compute"};
  s.wgrad_deferral_limit = {m.wgrad_deferral_limit.value_or(0), "model.wgrad_deferral_limit"};
  return s;
}

// Step B, the TP gate: an if/elif chain, so only the first failing reason is reported.
bool tp_gate(const bridge_input& in, report& r) {
  if (!in.comm_overlap->tp_comm_overlap) return false;
  const std::string path = "comm_overlap.tp_comm_overlap";
  const std::string tail =
      "; comm_overlap.tp_comm_overlap still reads true, only Bridge's internal copy is "
      "switched off (Megatron-LM's own CLI would reject this instead)";
  if (in.shape.tp < 2) {
    r.warn(diag_code::tp_overlap_disabled_tp_lt_2, path,
           "TP overlap silently disabled: tensor_model_parallel_size is " + str(in.shape.tp) +
               " (< 2)" + tail);
    return false;
  }
  if (!in.shape.sequence_parallel) {
    r.warn(diag_code::tp_overlap_disabled_sequence_parallel_off, path,
           "TP overlap silently disabled: model.sequence_parallel is false" + tail);
    return false;
  }
  if (!in.platform.have_te) {
    r.warn(diag_code::tp_overlap_disabled_no_te, path,
           "TP overlap silently disabled: Transformer Engine not available "
           "(platform.have_te false)" +
               tail);
    return false;
  }
  return true;
}

// Step C, PP p2p defaults, then the user's values (step F), unchecked.
void resolve_p2p(const comm_in& co, std::int64_t pp, bool interleaved, model_side& s, report& r) {
  s.overlap_p2p = {co.overlap_p2p_comm.value_or(interleaved), "comm_overlap.overlap_p2p_comm"};
  s.batch_p2p = {co.batch_p2p_comm.value_or(pp > 1 && !interleaved), "comm_overlap.batch_p2p_comm"};
  if (pp > 1 && !s.overlap_p2p.value && !s.batch_p2p.value &&
      (co.overlap_p2p_comm || co.batch_p2p_comm))
    r.warn(diag_code::p2p_both_disabled, "comm_overlap",
           "with pipeline parallelism the override leaves overlap_p2p_comm and batch_p2p_comm "
           "both false: pipeline send/recv is neither batched nor overlapped (Bridge allows it "
           "without a word)");
}

// Bridge's comm_overlap setup: its base defaults (step A), the TP gate (B), the p2p defaults (C),
// then every user value that is not None (F).
model_side bridge_model_side(const bridge_input& in, bool interleaved, report& r) {
  const comm_in& co = *in.comm_overlap;
  model_side s;
  s.tp_overlap = {tp_gate(in, r), "comm_overlap.tp_comm_overlap"};
  resolve_p2p(co, in.shape.pp, interleaved, s, r);
  s.cfg = co.cfg.given ? &co.cfg : nullptr;
  s.backend = co.backend;
  s.defer = {co.defer.value_or(false), "comm_overlap.defer_embedding_wgrad_compute"};
  // Bridge's base default is -1 where Megatron-Core says 0.
  s.wgrad_deferral_limit = {co.wgrad_deferral_limit.value_or(-1),
                            "comm_overlap.wgrad_deferral_limit"};
  return s;
}

ordered_json cfg_json(const overlap_cfg_value* v) {
  return v && v->layer ? expand_tp_overlap_layer(*v->layer) : ordered_json();
}

// §4.1: the whole model-side result is written onto the model, None included.
void warn_model_overwrites(const model_in& m, const model_side& s, report& r) {
  const std::string why = "Bridge's comm_overlap setup (docs/BRIDGE_RULES.md §4.1)";
  const auto over = [&](const char* field, const std::string& user, const std::string& now) {
    warn_overwrite(r, diag_code::model_field_overwritten, "model", field, user, now, why);
  };
  if (m.tp_comm_overlap) over("tp_comm_overlap", str(*m.tp_comm_overlap), str(s.tp_overlap.value));
  if (m.cfg.given && (m.cfg.invalid || cfg_json(&m.cfg) != cfg_json(s.cfg)))
    r.warn(diag_code::model_field_overwritten, "model.tp_comm_overlap_cfg",
           "set here but overwritten with " +
               std::string(s.cfg ? "comm_overlap.tp_comm_overlap_cfg" : "null") + " by " + why);
  if (m.backend_set) over("tp_comm_bootstrap_backend", str(m.backend), str(s.backend));
  if (m.overlap_p2p_comm)
    over("overlap_p2p_comm", str(*m.overlap_p2p_comm), str(s.overlap_p2p.value));
  if (m.batch_p2p_comm) over("batch_p2p_comm", str(*m.batch_p2p_comm), str(s.batch_p2p.value));
  if (m.defer) over("defer_embedding_wgrad_compute", str(*m.defer), str(s.defer.value));
  if (m.wgrad_deferral_limit)
    over("wgrad_deferral_limit", str(*m.wgrad_deferral_limit), str(s.wgrad_deferral_limit.value));
}

void warn_no_comm_overlap(const bridge_input& in, const model_side& s, report& r) {
  r.warn(diag_code::comm_overlap_absent, "comm_overlap",
         "absent: Bridge skips its comm-overlap setup, so model, ddp and optimizer keep "
         "Megatron-Core defaults and the values set on them (docs/BRIDGE_RULES.md §1 step 5)");
  const bool tp_lt_2 = in.shape.tp < 2;
  if (s.tp_overlap.value && (tp_lt_2 || !in.shape.sequence_parallel))
    r.warn(diag_code::tp_overlap_ungated, "model.tp_comm_overlap",
           "true with " +
               std::string(tp_lt_2 ? "tensor_model_parallel_size < 2" : "sequence_parallel false") +
               ": without comm_overlap Bridge's TP gate does not run to switch it off");
}

// The run a preset is compared with (docs/BRIDGE_RULES.md §11.2).
preset_run_shape run_shape(const bridge_input& in) {
  const bridge_model_input& m = in.shape;
  return {.hidden = m.hidden_size,
          .seq_length = m.seq_length,
          .micro_batch = m.micro_batch_size,
          .tp = m.tp,
          .cp = m.cp,
          .dtype = m.fp8 ? "fp8" : "bf16",
          .dtype_note = m.fp8 ? " (model.fp8 set)" : " (model.fp8 unset)",
          .gpu = in.platform.gpu};
}

// What the tp_comm_overlap_cfg that reaches the model means for the run (§4.2, §11.2).
void check_tp_overlap_cfg(const bridge_input& in, const model_side& s, report& r) {
  if (!s.tp_overlap.value) {
    if (s.cfg)
      r.warn(diag_code::tp_comm_overlap_cfg_unused, s.cfg->path,
             "given but TP overlap is off, so no userbuffers are initialised and it has no effect");
    return;
  }
  if (!s.cfg)
    r.warn(diag_code::tp_overlap_no_preset, s.tp_overlap.path,
           "TP overlap on without tp_comm_overlap_cfg: Transformer Engine uses its built-in "
           "defaults (Bridge logs 'No overlap config provided')");
  else if (s.cfg->preset)
    for (const std::string& msg : preset_mismatches(*s.cfg->preset, run_shape(in)))
      r.warn(diag_code::preset_mismatch, s.cfg->path, msg);
}

model_side resolve_model_side(const bridge_input& in, bridge_resolution& res, report& r) {
  model_side s;
  if (in.comm_overlap) {
    s = bridge_model_side(in, res.interleaved_pipeline, r);
    warn_model_overwrites(in.model, s, r);
  } else {
    s = mcore_model_side(in.model);
    warn_no_comm_overlap(in, s, r);
  }
  check_tp_overlap_cfg(in, s, r);
  res.tp_comm_overlap = s.tp_overlap.value;
  if (s.cfg) {
    res.tp_comm_overlap_cfg = s.cfg->layer;
    res.preset = s.cfg->preset;
  }
  res.tp_comm_bootstrap_backend = s.backend;
  res.overlap_p2p_comm = s.overlap_p2p.value;
  res.batch_p2p_comm = s.batch_p2p.value;
  res.defer_embedding_wgrad_compute = s.defer.value;
  res.wgrad_deferral_limit = s.wgrad_deferral_limit.value;
  return s;
}

// ---- DP side (docs/BRIDGE_RULES.md §4.3-4.5, §1 step 6) ------------------------------------

// What Bridge's DP-overlap setup writes onto ddp and optimizer: its defaults for the DP size,
// then the comm_overlap values that are not None.
struct dp_overlap {
  bool overlap_grad_reduce, overlap_param_gather, opg_with_step, align_param_gather;
  std::optional<std::int64_t> bucket_size;
};

dp_overlap bridge_dp_overlap(const comm_in& co, std::int64_t dp, bool interleaved) {
  const bool multi = dp > 1;
  dp_overlap d{multi, multi, false, multi && interleaved,
               multi ? std::optional<std::int64_t>(bridge_bucket_size) : std::nullopt};
  d.overlap_grad_reduce = co.overlap_grad_reduce.value_or(d.overlap_grad_reduce);
  d.overlap_param_gather = co.overlap_param_gather.value_or(d.overlap_param_gather);
  d.opg_with_step = co.opg_with_step.value_or(d.opg_with_step);
  d.align_param_gather = co.align_param_gather.value_or(d.align_param_gather);
  if (co.bucket_size) d.bucket_size = co.bucket_size;
  return d;
}

// §4.5: values set on ddp and optimizer that the DP-overlap setup replaces.
void warn_dp_overwrites(const bridge_input& in, const dp_overlap& d, report& r) {
  const std::string why =
      "Bridge's DP-overlap setup (distributed optimizer on, docs/BRIDGE_RULES.md §4.5)";
  const auto ddp = [&](const char* field, const std::string& user, const std::string& now) {
    warn_overwrite(r, diag_code::ddp_field_overwritten, "ddp", field, user, now, why);
  };
  const auto opt = [&](const char* field, const std::string& user, const std::string& now) {
    warn_overwrite(r, diag_code::optimizer_field_overwritten, "optimizer", field, user, now, why);
  };
  const auto& u = in.ddp;
  const auto& o = in.optimizer;
  if (u.overlap_grad_reduce)
    ddp("overlap_grad_reduce", str(*u.overlap_grad_reduce), str(d.overlap_grad_reduce));
  if (u.overlap_param_gather)
    ddp("overlap_param_gather", str(*u.overlap_param_gather), str(d.overlap_param_gather));
  if (u.align_param_gather)
    ddp("align_param_gather", str(*u.align_param_gather), str(d.align_param_gather));
  if (u.bucket_size) ddp("bucket_size", str(u.bucket_size), str(d.bucket_size));
  if (o.overlap_param_gather)
    opt("overlap_param_gather", str(*o.overlap_param_gather), str(d.overlap_param_gather));
  if (o.opg_with_step)
    opt("overlap_param_gather_with_optimizer_step", str(*o.opg_with_step), str(d.opg_with_step));
}

// The DP gate passed: comm_overlap is set and ddp.use_distributed_optimizer is true.
void apply_dp_gate(const bridge_input& in, bridge_resolution& res, report& r) {
  const comm_in& co = *in.comm_overlap;
  const std::int64_t dp = res.data_parallel_size;
  const dp_overlap d = bridge_dp_overlap(co, dp, res.interleaved_pipeline);
  if (dp > 1 && !co.bucket_size)
    r.warn(diag_code::bucket_size_bridge_default, "ddp.bucket_size",
           "Bridge sets 134217728 (128 Mi parameters, not bytes: " +
               str(bridge_bucket_size * 2 / (1024 * 1024)) + " MiB of bf16 gradients) whatever " +
               "DP is; Megatron-Core alone would use max(40M, 1M x dp) = " +
               str(mcore_bucket_size(dp)) +
               ", so the last, exposed bucket is larger (docs/BRIDGE_RULES.md §10, §11.8)");
  if (dp > 1 && res.interleaved_pipeline && !co.opg_with_step)
    r.warn(diag_code::overlap_param_gather_with_optimizer_step_off,
           "optimizer.overlap_param_gather_with_optimizer_step",
           "left false: Bridge would turn it on for PP > 1 with VP but keeps it off on purpose "
           "(a checkpointing issue); set it on comm_overlap to override");
  warn_dp_overwrites(in, d, r);
  res.overlap_grad_reduce = d.overlap_grad_reduce;
  res.ddp_overlap_param_gather = d.overlap_param_gather;
  res.align_param_gather = d.align_param_gather;
  res.bucket_size = d.bucket_size;
  res.optimizer_overlap_param_gather = d.overlap_param_gather;
  res.overlap_param_gather_with_optimizer_step = d.opg_with_step;
}

// comm_overlap is set but the DP gate is closed: its DP fields are dropped (§4.3).
void warn_dp_gate_closed(const bridge_input& in, report& r) {
  const comm_in& co = *in.comm_overlap;
  std::string dropped;
  const auto note = [&](const char* name, bool set) {
    if (set) dropped += (dropped.empty() ? "" : ", ") + std::string(name);
  };
  note("overlap_grad_reduce", co.overlap_grad_reduce.has_value());
  note("overlap_param_gather", co.overlap_param_gather.has_value());
  note("overlap_param_gather_with_optimizer_step", co.opg_with_step.has_value());
  note("align_param_gather", co.align_param_gather.has_value());
  note("bucket_size", co.bucket_size.has_value());
  if (!dropped.empty())
    r.warn(diag_code::dp_overlap_settings_dropped, "comm_overlap",
           dropped +
               " ignored: Bridge applies DP overlap settings only when "
               "ddp.use_distributed_optimizer is true (docs/BRIDGE_RULES.md §4.3)");
  if (in.optimizer.use_dist_opt.value_or(false) && !in.ddp.use_dist_opt.value_or(false))
    r.warn(diag_code::dp_defaults_skipped_optimizer_only, "optimizer.use_distributed_optimizer",
           "true but ddp.use_distributed_optimizer is not: Bridge's DP-overlap gate reads the "
           "ddp flag before the two are synced, so the distributed optimizer ends up on but "
           "overlap_grad_reduce, overlap_param_gather and bucket_size keep Megatron-Core "
           "defaults (docs/BRIDGE_RULES.md §1 step 6); set ddp.use_distributed_optimizer instead");
}

// Bridge's validate() runs after the DP gate: it syncs the two flags and checks the pair.
void sync_distributed_optimizer(bridge_resolution& res, report& r) {
  bool& ddp_udo = res.ddp_use_distributed_optimizer;
  bool& opt_udo = res.optimizer_use_distributed_optimizer;
  if (ddp_udo != opt_udo) {
    r.warn(diag_code::distributed_optimizer_synced,
           ddp_udo ? "optimizer.use_distributed_optimizer" : "ddp.use_distributed_optimizer",
           "ddp.use_distributed_optimizer=" + str(ddp_udo) +
               " and optimizer.use_distributed_optimizer=" + str(opt_udo) +
               " differ: Bridge turns it on for both at validate()");
    ddp_udo = opt_udo = true;
  }
  if (res.ddp_overlap_param_gather != res.optimizer_overlap_param_gather)
    r.warn(diag_code::overlap_param_gather_mismatch, "optimizer.overlap_param_gather",
           "ddp says " + str(res.ddp_overlap_param_gather) + ", optimizer says " +
               str(res.optimizer_overlap_param_gather) +
               ": Bridge's validate() forces the two to match");
}

// Megatron-FSDP as Bridge's config validation applies it (docs/FSDP.md §6): either switch turns on
// both, it cannot run beside torch FSDP2, and it always uses the distributed optimizer, which
// Bridge switches on (after the DP-overlap gate has read the ddp flag).
void apply_megatron_fsdp(const bridge_input& in, bridge_resolution& res, report& r) {
  res.use_megatron_fsdp = in.dist.use_megatron_fsdp || in.ddp.use_megatron_fsdp;
  if (in.dist.use_megatron_fsdp && in.dist.use_torch_fsdp2)
    r.error(diag_code::fsdp_and_torch_fsdp2, "dist.use_torch_fsdp2",
            "true with use_megatron_fsdp: Bridge raises 'Using use_megatron_fsdp and "
            "use_torch_fsdp2 at the same time is not supported'");
  if (!res.use_megatron_fsdp) return;
  res.sharding_strategy = in.ddp.sharding_strategy.value_or("no_shard");
  if (!res.ddp_use_distributed_optimizer || !res.optimizer_use_distributed_optimizer)
    r.warn(diag_code::fsdp_distributed_optimizer_forced,
           res.ddp_use_distributed_optimizer ? "optimizer.use_distributed_optimizer"
                                             : "ddp.use_distributed_optimizer",
           "false with Megatron-FSDP: Bridge turns use_distributed_optimizer on for ddp and "
           "optimizer (Megatron-FSDP always shards the optimizer)");
  res.ddp_use_distributed_optimizer = res.optimizer_use_distributed_optimizer = true;
  if (!res.step_fsdp())
    r.warn(diag_code::fsdp_strategy_not_planned, "ddp.data_parallel_sharding_strategy",
           "'" + res.sharding_strategy + "'" +
               (in.ddp.sharding_strategy ? "" : " (unset: Megatron-Core's default)") +
               ": `step` plans Megatron-FSDP as optim_grads_params only (step --fsdp on); "
               "this config runs there as the distributed optimizer (docs/FSDP.md)");
}

void resolve_dp_side(const bridge_input& in, bridge_resolution& res, report& r) {
  res.ddp_use_distributed_optimizer = in.ddp.use_dist_opt.value_or(false);
  res.optimizer_use_distributed_optimizer = in.optimizer.use_dist_opt.value_or(false);
  res.overlap_grad_reduce = in.ddp.overlap_grad_reduce.value_or(false);
  res.ddp_overlap_param_gather = in.ddp.overlap_param_gather.value_or(false);
  res.align_param_gather = in.ddp.align_param_gather.value_or(false);
  res.bucket_size = in.ddp.bucket_size;
  res.optimizer_overlap_param_gather = in.optimizer.overlap_param_gather.value_or(false);
  res.overlap_param_gather_with_optimizer_step = in.optimizer.opg_with_step.value_or(false);
  // The gate reads the ddp flag before validate() syncs it with the optimizer's.
  res.dp_overlap_gate = in.comm_overlap && res.ddp_use_distributed_optimizer;
  if (res.dp_overlap_gate)
    apply_dp_gate(in, res, r);
  else if (in.comm_overlap)
    warn_dp_gate_closed(in, r);
  apply_megatron_fsdp(in, res, r);
  sync_distributed_optimizer(res, r);
  // What Megatron-Core's DDP actually buckets with (docs/BRIDGE_RULES.md §10).
  if (res.overlap_grad_reduce)
    res.effective_bucket_size = res.bucket_size.value_or(mcore_bucket_size(res.data_parallel_size));
}

// ---- errors Megatron would raise later (docs/BRIDGE_RULES.md §5) ---------------------------

void check_defer_embedding_wgrad(const bridge_input& in, const model_side& s, report& r) {
  if (!s.defer.value) return;
  if (in.shape.pp == 1)
    r.error(diag_code::defer_embedding_wgrad_pp1, s.defer.path,
            "true with pipeline_model_parallel_size 1: Megatron-Core raises ValueError");
  if (!resolve_detail::gradient_accumulation_fusion(in))
    r.error(diag_code::defer_embedding_wgrad_no_gradient_accumulation_fusion, s.defer.path,
            "true without gradient_accumulation_fusion (" +
                std::string(in.shape.gradient_accumulation_fusion
                                ? "model.gradient_accumulation_fusion false"
                                : "unset, and without Transformer Engine Bridge's "
                                  "GPTModelProvider default is off") +
                "): Megatron-Core raises ValueError (docs/BRIDGE_RULES.md §5)");
  const std::int64_t limit = s.wgrad_deferral_limit.value;
  const bool bridge_default = in.comm_overlap && !in.comm_overlap->wgrad_deferral_limit;
  if (limit < 0)
    r.error(diag_code::defer_embedding_wgrad_negative_limit, s.wgrad_deferral_limit.path,
            "wgrad_deferral_limit is " + str(limit) +
                (bridge_default ? " (unset: Bridge's default)" : "") +
                " with defer_embedding_wgrad_compute on: Megatron-Core requires >= 0 (0 = defer "
                "all micro-batches); Bridge's default is -1, so set it explicitly "
                "(docs/BRIDGE_RULES.md §11.6)");
}

void check_megatron_errors(const bridge_input& in, const model_side& s,
                           const bridge_resolution& res, report& r) {
  const bridge_model_input& m = in.shape;
  const bool interleaved = res.interleaved_pipeline;
  if (m.sequence_parallel && m.tp <= 1)
    r.error(diag_code::sequence_parallel_without_tp, "model.sequence_parallel",
            "true with tensor_model_parallel_size " + str(m.tp) +
                ": Megatron-Core raises 'Cannot use sequence parallelism without tensor "
                "parallelism'");
  if (m.num_attention_heads && *m.num_attention_heads % m.tp != 0)
    r.error(diag_code::heads_not_divisible_by_tp, "model.num_attention_heads",
            str(*m.num_attention_heads) + " is not a multiple of tensor_model_parallel_size " +
                str(m.tp) + " (Megatron-Core TransformerConfig raises)");
  if (m.pp > 1 && !interleaved && s.overlap_p2p.value)
    r.error(diag_code::overlap_p2p_comm_without_interleaving, s.overlap_p2p.path,
            "true with pipeline_model_parallel_size " + str(m.pp) +
                " and no virtual pipeline: the non-interleaved 1F1B schedule raises "
                "'Non-interleaved pipeline parallelism does not support overlapping p2p "
                "communication' at the first step (Bridge does not check, docs/BRIDGE_RULES.md "
                "§11.7)");
  if (interleaved && s.overlap_p2p.value && s.batch_p2p.value)
    r.error(diag_code::overlap_and_batch_p2p_comm, s.batch_p2p.path,
            "overlap_p2p_comm and batch_p2p_comm are both true with the interleaved schedule: "
            "Megatron-Core raises 'Can not use both overlap_p2p_comm and batch_p2p_comm'");
  check_defer_embedding_wgrad(in, s, r);
  const bool bridge_bucket = res.dp_overlap_gate && !in.comm_overlap->bucket_size;
  if (in.ddp.num_buckets && res.bucket_size)
    r.error(diag_code::num_buckets_with_bucket_size, "ddp.num_buckets",
            "set together with bucket_size " + str(*res.bucket_size) +
                (bridge_bucket ? " (Bridge's DP-overlap default)" : "") +
                ": Megatron-Core asserts 'Cannot specify both num_buckets and bucket_size'");
}

// ---- Transformer Engine's view (docs/BRIDGE_RULES.md §6.2, §6.3) ---------------------------

void resolve_te_view(const bridge_input& in, const model_side& s, bridge_resolution& res,
                     report& r) {
  if (!res.tp_comm_overlap || s.cfg_invalid()) return;
  const tp_overlap_layer* layer = res.tp_comm_overlap_cfg ? &*res.tp_comm_overlap_cfg : nullptr;
  try {
    res.te_userbuffers = te_effective_overlap(layer, static_cast<int>(in.shape.tp));
  } catch (const config_error& e) {
    // TE's message starts at tp_comm_overlap_cfg; prefix the section the config came from.
    const std::string section = s.cfg ? s.cfg->path.substr(0, s.cfg->path.rfind('.') + 1) : "";
    r.errors.push_back({diag_code::te_userbuffers_invalid, r.file + ": " + section + e.what()});
    return;
  }
  // TE's "atomic GEMM needs FP8" rule depends on the run's precision, which only we know.
  if (in.shape.fp8) return;
  const std::string cfg_path = s.cfg ? s.cfg->path : s.tp_overlap.path;
  for (const auto& [slot, c] : *res.te_userbuffers)
    if (c.atomic_gemm)
      r.error(diag_code::te_userbuffers_invalid, cfg_path + "." + slot + ".atomic_gemm",
              "Transformer Engine rejects this: atomic GEMM overlap is supported only for "
              "FP8 GEMMs and model.fp8 is unset");
}

// ---- launch environment: PerfEnvPlugin generation (B) (docs/BRIDGE_RULES.md §8 B, §9) ------

// CUDA_DEVICE_MAX_CONNECTIONS as generation (B) sets it (`later`: as generations (C) and (D),
// which give 32 on any SM100 GPU, whatever the layout).
int launcher_cdmc(const bridge_input& in, const bridge_resolution& res, bool later) {
  const auto& dispatcher = in.launcher.dispatcher;
  launcher_layout l;
  l.sm100_or_newer = res.gpu_sm100_or_newer;
  l.tp = static_cast<int>(in.shape.tp);
  l.cp = static_cast<int>(in.shape.cp);
  l.dp = static_cast<int>(res.data_parallel_size);
  l.pp = static_cast<int>(in.shape.pp);
  l.a2a_overlap = in.launcher.a2a_overlap;
  l.deep_dispatcher = dispatcher && (*dispatcher == "deepep" || *dispatcher == "hybridep");
  return launcher_cdmc_rule(l, later);
}

void warn_cdmc(const bridge_resolution& res, int cdmc, int cdmc_later, report& r) {
  if (cdmc != cdmc_later)
    r.warn(diag_code::cdmc_generations_differ, "env.CUDA_DEVICE_MAX_CONNECTIONS",
           str(std::int64_t{cdmc}) +
               " under PerfEnvPlugin generation (B), but the perf scripts "
               "(C) and today's recipes (D) give " +
               str(std::int64_t{cdmc_later}) +
               " on this GPU; Bridge training never checks it (docs/BRIDGE_RULES.md §8, §11.11)");
  const bool ogr = res.overlap_grad_reduce, opg = res.ddp_overlap_param_gather;
  if (!res.gpu_sm100_or_newer && res.tp_comm_overlap && (ogr || opg))
    r.warn(diag_code::cdmc_tp_dp_conflict, "env.CUDA_DEVICE_MAX_CONNECTIONS",
           "TP overlap on Hopper wants 1 (so the userbuffers comm kernel launches ahead of the "
           "persistent GEMM) while DP overlap (" +
               std::string(ogr ? "grad reduce-scatter" : "") + (ogr && opg ? ", " : "") +
               (opg ? "param all-gather" : "") +
               " on their own streams) wants more than one hardware queue; this run gets " +
               str(std::int64_t{cdmc}) +
               ". Recent TE orders UB launches with an event when CDMC > 1 on CUDA >= 12.3 "
               "(docs/BRIDGE_RULES.md §6.3, §8 E)");
}

void resolve_launch_env(const bridge_input& in, bridge_resolution& res, report& r) {
  if (!in.platform.gpu)
    r.warn(diag_code::platform_gpu_defaulted, "platform.gpu",
           "not given: treated as Hopper or earlier (PerfEnvPlugin's default "
           "gpu_sm100_or_newer=False)");
  const int cdmc = launcher_cdmc(in, res, false);
  warn_cdmc(res, cdmc, launcher_cdmc(in, res, true), r);
  res.env.emplace_back("CUDA_DEVICE_MAX_CONNECTIONS", std::to_string(cdmc));
  if (res.use_megatron_fsdp && cdmc == 1)
    r.error(diag_code::fsdp_cdmc_1, "env.CUDA_DEVICE_MAX_CONNECTIONS",
            "1 (the launcher's rule for TP or CP on Hopper) with Megatron-FSDP: Bridge asserts "
            "'FSDP requires CUDA_DEVICE_MAX_CONNECTIONS > 1 or unset'");
  const launcher_in& l = in.launcher;
  if (l.enable_ln_margin) {
    res.env.emplace_back("NVTE_FWD_LAYERNORM_SM_MARGIN", std::to_string(l.ln_margin));
    res.env.emplace_back("NVTE_BWD_LAYERNORM_SM_MARGIN", std::to_string(l.ln_margin));
  }
  if (!l.pp_chunksize) return;
  if (in.shape.pp > 1)
    res.env.emplace_back("NCCL_P2P_NET_CHUNKSIZE", std::to_string(*l.pp_chunksize));
  else
    r.warn(diag_code::nccl_chunksize_ignored, "launcher.nccl_pp_comm_chunksize",
           "given but pipeline_model_parallel_size is 1: the launcher sets "
           "NCCL_P2P_NET_CHUNKSIZE only with PP > 1");
}

}  // namespace

bridge_resolution resolve_bridge(const json& input, const std::string& file) {
  report r{file, {}, {}};
  const bridge_input in = resolve_detail::read_bridge_input(input, r);
  bridge_resolution res;
  res.file = file;
  res.input = in.shape;
  res.gpu = in.platform.gpu;
  res.gpu_sm100_or_newer = in.platform.gpu && is_sm100_or_newer(*in.platform.gpu);
  // Bridge treats a None virtual pipeline size as 1.
  res.interleaved_pipeline = in.shape.pp > 1 && in.shape.vp.value_or(1) > 1;
  res.comm_overlap_setup = in.comm_overlap.has_value();
  resolve_world(in, res, r);
  const model_side side = resolve_model_side(in, res, r);
  resolve_dp_side(in, res, r);
  check_megatron_errors(in, side, res, r);
  resolve_te_view(in, side, res, r);
  resolve_launch_env(in, res, r);
  resolve_detail::resolve_step_settings(in, res, r);
  res.warnings = std::move(r.warnings);
  res.errors = std::move(r.errors);
  return res;
}

bridge_resolution resolve_bridge_file(const std::string& path) {
  return resolve_bridge(load_json_file(path), path);
}

int launcher_cdmc_rule(const launcher_layout& l, bool later_generations) {
  const bool tp_or_cp = l.tp > 1 || l.cp > 1;
  if (l.sm100_or_newer) {
    if (later_generations || (tp_or_cp && (l.dp > 1 || l.pp > 1))) return cdmc_max;
  } else if (tp_or_cp && !l.a2a_overlap) {
    return 1;  // overrides deepep's 32 on Hopper
  }
  return l.deep_dispatcher ? cdmc_max : cdmc_default;
}

}  // namespace ob
