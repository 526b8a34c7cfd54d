#include "run/step_run.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "analysis/step_metrics.hpp"
#include "base/error.hpp"
#include "base/stats.hpp"
#include "bridge/resolve.hpp"
#include "model/moe_layer.hpp"
#include "plan/memory_model.hpp"
#include "results/trace.hpp"
#include "run/journal.hpp"
#include "run/run_spec.hpp"
#include "run/sweep.hpp"
#include "spec/presets.hpp"

namespace ob {
namespace {

std::string label(const step_scenario& sc, const char* field, const char* flag) {
  return sc.file.empty() ? flag : sc.file + ": " + field;
}

// The userbuffers configuration a Bridge config hands TE (its tp_comm_overlap_cfg, a preset or
// an object keyed by GEMM); without one the step uses the preset Bridge has for the shape.
struct bridge_tp_cfg {
  std::optional<tp_overlap_layer> layer;
  std::string source;
};

// The Bridge config's fields the layout and CDMC came from, so that an error about one of them
// names the field rather than a flag the user never gave.
void name_bridge_layout(step_scenario& sc, const bridge_resolution& r) {
  const auto from = [&](const char* axis, const std::string& field) {
    sc.base_sources.emplace_back(axis, sc.bridge_config + ": " + field);
  };
  from("tp", "model.tensor_model_parallel_size");
  from("pp", "model.pipeline_model_parallel_size");
  from("cp", "model.context_parallel_size");
  from("vp", "model.virtual_pipeline_model_parallel_size");
  from("sequence_parallel", "model.sequence_parallel");
  from("gpus", "platform.num_gpus");
  if (r.input.micro_batch_size) from("mbs", "train.micro_batch_size");
  if (r.input.seq_length) from("seq", "model.seq_length");
  from("cdmc",
       "env.CUDA_DEVICE_MAX_CONNECTIONS as Megatron-Bridge's launcher sets it "
       "(docs/BRIDGE_RULES.md §8)");
}

// A Bridge config's layout and overlap settings become the defaults the swept axes override.
bridge_tp_cfg apply_bridge(step_scenario& sc) {
  if (sc.bridge_config.empty()) return {};
  const bridge_resolution r = resolve_bridge_file(sc.bridge_config);
  if (r.has_errors())
    throw config_error(sc.bridge_config +
                       ": the Bridge config does not resolve: " + r.errors.front().message);
  step_config& b = sc.base;
  b.tp = static_cast<int>(r.input.tp);
  b.pp = static_cast<int>(r.input.pp);
  b.cp = static_cast<int>(r.input.cp);
  b.vp = static_cast<int>(r.input.vp.value_or(1));
  b.sequence_parallel = r.input.sequence_parallel;
  if (r.input.micro_batch_size) b.mbs = static_cast<int>(*r.input.micro_batch_size);
  if (r.input.seq_length) b.seq = static_cast<int>(*r.input.seq_length);
  b.gpus = static_cast<int>(r.num_gpus);
  b.tp_overlap = r.tp_comm_overlap;
  b.pp_overlap = r.overlap_p2p_comm;
  b.dp_overlap = r.overlap_grad_reduce;
  b.distributed_optimizer = r.ddp_use_distributed_optimizer;
  b.fsdp = r.step_fsdp();  // use_megatron_fsdp with optim_grads_params: step --fsdp on
  if (r.bucket_size) b.bucket_size = *r.bucket_size;
  for (const auto& [name, value] : r.env)
    if (name == "CUDA_DEVICE_MAX_CONNECTIONS") b.cdmc = std::stoi(value);
  name_bridge_layout(sc, r);
  // The settings beyond layout and overlap (gradient_accumulation_fusion, precision, recompute,
  // MoE, ...), each through its step axis's parser (docs/BRIDGE_RULES.md §12).
  for (const step_setting& s : r.step_settings) {
    const std::string where = sc.bridge_config + ": " + s.source;
    set_step_axis(b, s.axis, s.value, where);
    sc.base_sources.emplace_back(s.axis, where);
  }
  if (!r.tp_comm_overlap_cfg) return {};
  return {r.tp_comm_overlap_cfg, sc.bridge_config + ": tp_comm_overlap_cfg"};
}

// What Megatron-Bridge's launcher sets (docs/BRIDGE_RULES.md §8 B): 1 on Hopper with TP or CP
// (so the userbuffers comm kernel launches ahead of the GEMM), 32 on Blackwell when TP or CP meet
// DP or PP, else the driver's 8.
int bridge_cdmc(const step_config& c, const gpu_spec& gpu, std::string& source) {
  source = "Megatron-Bridge's launcher rule (docs/BRIDGE_RULES.md §8)";
  launcher_layout l;
  l.sm100_or_newer = gpu.compute_capability_major >= 10;  // the GPU file's own fact
  l.tp = c.tp;
  l.cp = c.cp;
  l.dp = c.dp;
  l.pp = c.pp;
  l.a2a_overlap = c.moe_a2a_overlap;
  l.deep_dispatcher =
      c.dispatcher == moe_dispatcher::deepep || c.dispatcher == moe_dispatcher::hybridep;
  return launcher_cdmc_rule(l, false);
}

// TE's userbuffers run only with TP > 1 and sequence parallelism (Bridge switches them off
// otherwise); with them, the Bridge config's own tp_comm_overlap_cfg, else the preset Bridge
// uses for the shape, else TE's defaults.
void resolve_tp(step_run_case& rc, const gpu_spec& gpu, const bridge_tp_cfg& bridge) {
  const step_config& c = rc.c.cfg;
  if (!(c.tp_overlap && c.tp > 1 && c.sequence_parallel)) {
    rc.tp_source = "none";
    if (c.tp_overlap && c.tp > 1)
      rc.c.cfg.tp_overlap = false;  // the Bridge gate: no sequence parallelism
    return;
  }
  if (bridge.layer) {
    rc.tp_methods = te_effective_overlap(&*bridge.layer, c.tp);
    rc.tp_source = bridge.source;
    return;
  }
  const auto preset = preset_for_shape(std::string(to_string(rc.model.type)), gpu.name,
                                       rc.model.hidden, c.tp, c.cp, c.mbs, rc.model.seq_length);
  rc.tp_methods = te_effective_overlap(preset ? &preset->gemms : nullptr, c.tp);
  rc.tp_source = preset ? preset->name : "te_default";
}

// TE allocates one userbuffer per GEMM slot it overlaps (docs/MEMORY.md §3).
int userbuffer_count(const slot_overlap_map& methods) {
  return static_cast<int>(std::count_if(methods.begin(), methods.end(), [](const auto& m) {
    return m.second.method != overlap_method::none;
  }));
}

// The transformer layers of each pipeline stage, all chunks together.
std::vector<int> stage_layers(const step_config& c) {
  std::vector<int> out;
  for (int stage = 0; stage < c.pp; ++stage) {
    int n = 0;
    for (int l : stage_chunk_layers(c, stage)) n += l;
    out.push_back(n);
  }
  return out;
}

// Megatron's uneven split is a choice the user may not know was made (docs/ARCHITECTURE.md
// §9.3): said on every case that takes it.
std::vector<std::string> split_warnings(const step_config& c) {
  const int chunks = c.pp * c.vp;
  if (c.pp == 1 || c.layers_used % chunks == 0 || c.stage_layout) return {};
  const std::vector<int> per_stage = stage_layers(c);
  return {std::to_string(c.layers_used) +
          " layers do not divide over pp x vp = " + std::to_string(chunks) +
          " chunks: the embedding and the loss count as a layer each "
          "(Megatron's account_for_embedding_in_pipeline_split and "
          "account_for_loss_in_pipeline_split), so the first and the last stage hold " +
          std::to_string(per_stage.front()) + " and " + std::to_string(per_stage.back()) +
          " layers and the others " + std::to_string(per_stage[c.pp / 2])};
}

ordered_json case_config(const step_run_case& rc) {
  const step_config& c = rc.c.cfg;
  return {{"gpus", c.gpus},
          {"tp", c.tp},
          {"pp", c.pp},
          {"vp", c.vp},
          {"cp", c.cp},
          {"dp", c.dp},
          {"mbs", c.mbs},
          {"gbs", c.gbs},
          {"microbatches", c.microbatches},
          {"seq", rc.model.seq_length},
          {"layers", c.layers_used},
          {"stage_layers", stage_layers(c)},
          {"dtype", to_string(rc.model.type)},
          {"recompute", to_string(c.recompute)},
          {"sequence_parallel", c.sequence_parallel},
          {"tp_overlap", rc.tp_source},
          {"dp_overlap", c.dp_overlap},
          {"pp_overlap", c.pp_overlap},
          {"distributed_optimizer", c.distributed_optimizer},
          {"grad_reduce_in_fp32", c.grad_reduce_in_fp32},
          {"cdmc", rc.cdmc},
          {"cdmc_source", rc.cdmc_source},
          {"te_launch_ordering", rc.c.knobs.te_launch_ordering},
          {"gpus_per_node", rc.cluster.gpus_per_node},
          {"nic_gbps", rc.cluster.nic_gbps}};
}

// NVLink domains larger than a node (NVL72) are named in the case's config; a node-sized one,
// as every H100 and A100 cluster has, is what gpus_per_node already says.
ordered_json with_domain(ordered_json config, const cluster_spec& c) {
  if (c.nvlink_domain != c.gpus_per_node) config["nvlink_domain"] = c.nvlink_domain;
  return config;
}

// Megatron-FSDP is named only where it is on: a dense case without it reads as before.
ordered_json with_fsdp(ordered_json config, const step_config& c) {
  if (c.fsdp)
    config["fsdp"] = c.fsdp_shard_grad_op ? ordered_json("shard_grad_op") : ordered_json(true);
  // gradient_accumulation_fusion likewise, where it is off.
  if (!c.grad_accum_fusion) config["grad_accum_fusion"] = false;
  if (c.megatron_2022) config["megatron_2022"] = true;
  // An uneven pipeline layout likewise (docs/MOE.md §14.2).
  if (c.stage_layout) config["pipeline_layout"] = c.stage_layout->text;
  if (c.fp8_param_gather) config["fp8_param_gather"] = true;
  if (c.fp8_dpa) config["fp8_dot_product_attention"] = true;
  if (c.cpu_offload_layers > 0) config["cpu_offload_layers"] = c.cpu_offload_layers;
  if (c.bf16_moments) config["exp_avg_dtype"] = "bf16";
  // CP's exchange likewise, where it is not the ring (docs/ARCHITECTURE.md §9.3).
  if (c.cp > 1 && c.cp_comm_type != cp_comm::p2p)
    config["cp_comm_type"] = to_string(c.cp_comm_type);
  if (c.cp > 1 && c.cp_comm_type == cp_comm::a2a_p2p)
    config["hierarchical_context_parallel_sizes"] = {c.cp_a2a, c.cp_p2p};
  if (c.cross_entropy != cross_entropy_impl::native)
    config["cross_entropy_fusion_impl"] = to_string(c.cross_entropy);
  // Per-layer CUDA graphs likewise (docs/MOE.md §17).
  if (c.cuda_graph_scope != 0)
    config["cuda_graph_scope"] = bit_set_name<graph_scope>(c.cuda_graph_scope);
  // Selective recomputation names its modules (docs/MEMORY.md §2.1).
  if (c.recompute == recompute_mode::selective) {
    config["recompute_modules"] = ordered_json::array();
    for (const auto& e : enum_names<recompute_module>::names)
      if (c.recomputes(e.value)) config["recompute_modules"].push_back(e.name);
  }
  return config;
}

// A MoE model's case carries its expert layout and MoE settings (docs/MOE.md §5); a dense
// model's config is unchanged.
ordered_json with_experts(ordered_json config, const step_run_case& rc) {
  if (!rc.model.moe.enabled()) return config;
  const step_config& c = rc.c.cfg;
  config["experts"] = {{"ep", c.ep},
                       {"etp", c.etp},
                       {"edp", c.edp},
                       {"moe_imbalance", c.moe_imbalance},
                       {"moe_dispatcher", to_string(c.dispatcher)},
                       {"moe_a2a_overlap", c.moe_a2a_overlap},
                       {"delay_wgrad", c.delay_wgrad},
                       {"moe_shared_overlap", c.moe_shared_overlap},
                       {"moe_capacity_factor", c.moe_capacity_factor},
                       {"moe_dropped", dropped_fraction(c.moe_imbalance, c.moe_capacity_factor)}};
  // The sync-free dispatch's budget likewise, only when set (docs/MOE.md §21).
  if (c.sync_free_moe())
    config["experts"]["moe_expert_rank_capacity_factor"] = c.moe_expert_rank_capacity_factor;
  if (c.te_op_fuser) config["experts"]["use_transformer_engine_op_fuser"] = true;
  if (c.flex_sms > 0) config["experts"]["moe_flex_dispatcher_num_sms"] = c.flex_sms;
  return config;
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// A cluster file fixes its nodes: gpus_per_node or nic_gbps that differ from it are refused,
// naming both (README: the training step; the flags describe a cluster without a file).
void check_cluster_settings(const step_scenario& sc, const step_config& cfg,
                            const cluster_spec& cluster) {
  if (sc.cluster.empty()) return;
  const std::string against = " and " + label(sc, "cluster", "--cluster") + " " + sc.cluster +
                              " disagree: the cluster file has ";
  if (cfg.gpus_per_node > 0 && cfg.gpus_per_node != cluster.gpus_per_node)
    throw config_error(axis_label(sc, "gpus_per_node") + " " + std::to_string(cfg.gpus_per_node) +
                       against + "gpus_per_node " + std::to_string(cluster.gpus_per_node));
  if (cfg.nic_gbps > 0 && std::abs(cfg.nic_gbps - cluster.nic_gbps) > 1e-9 * cluster.nic_gbps)
    throw config_error(axis_label(sc, "nic_gbps") + " " + number_text(cfg.nic_gbps) + against +
                       "nic_gbps " + number_text(cluster.nic_gbps));
}

// A case that keeps the CDMC a Bridge config's launcher rule gave says so; a flag, a sweep or
// the search that set another value leaves "given".
std::string cdmc_origin(const step_scenario& sc, int cdmc) {
  const auto swept = [](const sweep_axis& a) { return a.name == "cdmc"; };
  if (sc.base.cdmc != cdmc || std::ranges::any_of(sc.axes, swept)) return "given";
  for (const auto& [axis, source] : sc.base_sources)
    if (axis == "cdmc") return source;
  return "given";
}

step_run_case resolve_case(const step_scenario& sc, const step_case& c, const model_spec& base,
                           const gpu_spec& gpu, const cluster_spec& cluster,
                           const bridge_tp_cfg& bridge) {
  step_run_case rc;
  rc.c = c;
  step_config& cfg = rc.c.cfg;
  rc.cluster = cluster;
  check_cluster_settings(sc, cfg, cluster);
  if (cfg.gpus_per_node > 0)
    rc.cluster.gpus_per_node = rc.cluster.nics_per_node = rc.cluster.nvlink_domain =
        cfg.gpus_per_node;
  if (cfg.nvlink_domain > 0)
    set_nvlink_domain(rc.cluster, cfg.nvlink_domain, axis_label(sc, "nvlink_domain"));
  if (cfg.nic_gbps > 0) rc.cluster.nic_gbps = cfg.nic_gbps;
  rc.model = base;
  rc.model.micro_batch = cfg.mbs;
  if (cfg.seq > 0) rc.model.seq_length = cfg.seq;
  if (cfg.type) rc.model.type = *cfg.type;
  rc.model.scaling = cfg.scaling;
  check_step(sc, cfg, rc.model, gpu, rc.cluster);
  rc.model.fp8_dpa = cfg.fp8_dpa;
  rc.model.layers = cfg.layers_used;
  resolve_tp(rc, gpu, bridge);
  rc.memory = estimate_memory(rc.model, gpu, cfg, userbuffer_count(rc.tp_methods));
  rc.warnings = split_warnings(cfg);
  rc.cdmc = cfg.cdmc ? *cfg.cdmc : bridge_cdmc(cfg, gpu, rc.cdmc_source);
  if (cfg.cdmc) rc.cdmc_source = cdmc_origin(sc, *cfg.cdmc);
  rc.c.knobs.te_launch_ordering = te_launch_ordering_applies(
      sc.te_launch_ordering, gpu, rc.cdmc,
      rc.tp_methods.empty() ? overlap_setting::none : overlap_setting::preset);
  rc.config = with_experts(with_fsdp(with_domain(case_config(rc), rc.cluster), rc.c.cfg), rc);
  // TE's scaling recipe means something for fp8 only (per-tensor; mxfp8 scales per block).
  if (rc.model.type == dtype::fp8) rc.config["fp8_recipe"] = to_string(rc.model.scaling);
  return rc;
}

}  // namespace

namespace {

// Stage 2 with the cases from `make_cases` (the scenario's axes, or a search's candidates);
// `refused`, when given, counts the cases check_step refuses instead of throwing.
step_spec resolve_with(
    const step_scenario& scenario,
    const std::function<std::vector<step_case>(const step_scenario&)>& make_cases,
    std::size_t* refused) {
  step_scenario sc = scenario;
  const bridge_tp_cfg bridge = apply_bridge(sc);
  step_spec spec;
  spec.source = sc.file.empty() ? "step flags" : sc.file;
  const cluster_spec base_cluster =
      sc.cluster.empty() ? cluster_spec{}
                         : load_cluster(sc.cluster, label(sc, "cluster", "--cluster"));
  const std::string gpu_name = !sc.gpu.empty()       ? sc.gpu
                               : !sc.cluster.empty() ? base_cluster.gpu
                                                     : "h100_sxm";
  // A step keeps every GPU busy for seconds: its tensor cores run at the sustained clock.
  spec.gpu = at_sustained_clock(load_gpu_spec(gpu_name, label(sc, "gpu", "--gpu")));
  // A cluster file names the GPU its nodes hold; another GPU beside it is a contradiction.
  if (!sc.cluster.empty() && !sc.gpu.empty() && spec.gpu.name != base_cluster.gpu)
    throw config_error(label(sc, "gpu", "--gpu") + " " + sc.gpu + " and " +
                       label(sc, "cluster", "--cluster") + " " + sc.cluster +
                       " disagree: the cluster file's nodes hold " + base_cluster.gpu +
                       " (leave out the GPU to use the cluster's)");
  const cluster_spec cluster = sc.cluster.empty() ? default_cluster(spec.gpu) : base_cluster;
  const model_spec model = load_model_spec(sc.model, label(sc, "model", "--model"));
  for (const step_case& c : make_cases(sc)) {
    try {
      spec.cases.push_back(resolve_case(sc, c, model, spec.gpu, cluster, bridge));
    } catch (const config_error&) {
      if (!refused) throw;
      ++*refused;
    }
  }
  // After the layout checks, so that a bad expert layout is named first.
  require_dense_planner_support(model, label(sc, "model", "--model"), true);
  spec.measure.warmup = sc.warmup;
  spec.measure.iters = sc.iters;
  spec.config = {{"scenario", "step"},
                 {"source", spec.source},
                 {"model", model.name},
                 {"gpu", spec.gpu.name},
                 {"sustained_clock_factor", spec.gpu.sustained_clock_factor},
                 {"cluster", cluster.name},
                 {"bridge_config", sc.bridge_config},
                 {"te_launch_ordering", to_string(sc.te_launch_ordering)},
                 {"hbm_gib", spec.gpu.hbm_gib},
                 {"allow_oom", sc.allow_oom}};
  spec.allow_oom = sc.allow_oom;
  return spec;
}

}  // namespace

step_spec resolve_step(const step_scenario& scenario) {
  return resolve_with(scenario, expand_step_cases, nullptr);
}

step_spec resolve_step_cases(const step_scenario& scenario, const std::vector<step_case>& cases,
                             std::size_t& refused) {
  return resolve_with(
      scenario, [&cases](const step_scenario&) { return cases; }, &refused);
}

step_plan plan_step_case(const step_spec& spec, const step_run_case& c) {
  const step_inputs in{c.model, spec.gpu, c.cluster, c.c.cfg, c.tp_methods, c.c.knobs};
  return plan_step(in);
}

namespace {

std::vector<std::vector<op_interval>> stage_intervals(const std::vector<variant_measurement>& m) {
  std::vector<std::vector<op_interval>> out;
  for (const variant_measurement& s : m) out.push_back(s.ops);
  return out;
}

// Each iteration's time is the slowest rank's; every rank runs the same cases.
void reduce_across_ranks(program_measurements& m, communicator& comm) {
  for (auto& stages : m)
    for (variant_measurement& s : stages) comm.max_reduce(s.iter_ms);
}

step_record summarise(const step_spec& spec, const step_run_case& rc, const program& overlapped,
                      const program_measurements& m) {
  step_record r;
  r.id = rc.c.id;
  r.params = rc.c.params;
  r.config = rc.config;
  r.memory = rc.memory;
  r.warnings = rc.warnings;
  const auto ov = static_cast<int>(variant::overlapped);
  const auto co = static_cast<int>(variant::compute_only);
  r.step_ms = compute_stats(m[ov].front().iter_ms);
  if (!m[co].empty()) r.compute_only_ms = compute_stats(m[co].front().iter_ms);
  const step_config& c = rc.c.cfg;
  const double hottest = c.ep > 1 ? 1 - kept_load(1, c.moe_capacity_factor) /
                                            kept_load(c.moe_imbalance, c.moe_capacity_factor)
                                  : 0;
  const step_attribution a = attribute_step(overlapped, stage_intervals(m[ov]), hottest);
  r.breakdown_ms = a.breakdown;
  r.critical_stage = a.critical_stage;
  r.exposed_ms = a.exposed_ms();
  r.diagnosis = diagnosis_of(a.causes, r.exposed_ms, a.breakdown.total());
  for (const variant_measurement& s : m[ov])
    for (const std::string& w : s.warnings)
      if (std::find(r.warnings.begin(), r.warnings.end(), w) == r.warnings.end())
        r.warnings.push_back(w);
  const double seconds = r.step_ms.median / 1000.0;
  if (seconds > 0) {
    r.tokens_per_s_per_gpu = static_cast<double>(c.gbs) * rc.model.seq_length / seconds / c.gpus;
    r.model_tflops_per_gpu =
        model_flops_per_step(rc.model, c.gbs, rc.model.seq_length, rc.model.layers) / seconds /
        c.gpus / 1e12;
    r.mfu = r.model_tflops_per_gpu / spec.gpu.peak_tflops(rc.model.type);
  }
  return r;
}

json trace_of(const program& p, const std::vector<variant_measurement>& stages,
              const executor& exec) {
  trace_writer t;
  t.set_metadata(
      {{"backend", exec.backend()}, {"simulated", exec.simulated()}, {"label", exec.label()}});
  for (std::size_t s = 0; s < p.stages.size(); ++s)
    t.add(p.stages[s], stages[s].ops, static_cast<int>(s),
          "stage " + std::to_string(s) + (exec.simulated() ? " (sim)" : ""));
  return t.to_json();
}

// The case's program measured: its overlapped variant, and its compute-only variant when asked.
struct case_measurement {
  program overlapped, compute_only;
  program_measurements m;
};

case_measurement measure_case(const step_spec& spec, const step_run_case& rc, executor& exec,
                              bool compute_only, bool overlapped = true) {
  measure_options opts = spec.measure;
  opts.cdmc = rc.cdmc;
  opts.cluster = &rc.cluster;
  opts.variants = {};
  opts.variants[static_cast<int>(variant::overlapped)] = overlapped;
  opts.variants[static_cast<int>(variant::compute_only)] = compute_only;
  program_variants pv;
  pv[static_cast<int>(variant::overlapped)] = plan_step_case(spec, rc).prog;
  const program& ov = pv[static_cast<int>(variant::overlapped)];
  if (compute_only)
    pv[static_cast<int>(variant::compute_only)] = derive_program_variant(ov, variant::compute_only);
  case_measurement out{ov, pv[static_cast<int>(variant::compute_only)], exec.measure(pv, opts)};
  return out;
}

// Case `index`: its program's overlapped and compute-only variants measured and reduced across
// ranks; the injected fault (a test hook) acts before it. `trace`, when given, gets the
// overlapped timeline.
step_record run_step_case(const step_spec& spec, std::size_t index, executor& exec,
                          communicator& comm, const fault_injection& inject, json* trace) {
  maybe_die(inject, comm.rank(), index);
  const step_run_case& rc = spec.cases[index];
  case_measurement cm = measure_case(spec, rc, exec, true);
  reduce_across_ranks(cm.m, comm);
  if (trace) *trace = trace_of(cm.overlapped, cm.m[static_cast<int>(variant::overlapped)], exec);
  return summarise(spec, rc, cm.overlapped, cm.m);
}

std::string model_dimensions(const model_spec& m) {
  return std::to_string(m.hidden) + "," + std::to_string(m.ffn_hidden) + "," +
         std::to_string(m.heads) + "," + std::to_string(m.kv_heads) + "," +
         std::to_string(m.vocab_size) + "," + std::to_string(m.gated_mlp) + "," +
         std::to_string(m.causal) + "," + std::to_string(m.tie_embeddings) + "," +
         std::string(to_string(m.attention)) + "," + std::to_string(m.attention_dropout) + "," +
         std::to_string(m.hidden_dropout);
}

}  // namespace

step_record predict_step_case(const step_spec& spec, const step_run_case& rc, executor& exec) {
  const case_measurement cm = measure_case(spec, rc, exec, false);
  return summarise(spec, rc, cm.overlapped, cm.m);
}

double compute_only_busy_ms(const step_spec& spec, const step_run_case& rc, executor& exec) {
  const case_measurement cm = measure_case(spec, rc, exec, true, false);
  const auto& stages = cm.m[static_cast<int>(variant::compute_only)];
  return attribute_step(cm.compute_only, stage_intervals(stages)).breakdown.compute;
}

std::string step_fingerprint(const step_spec& spec, const std::string& backend) {
  const measure_options& m = spec.measure;
  std::vector<std::string> parts = {
      "step", backend, dump_json(spec.config),
      std::to_string(m.warmup) + "," + std::to_string(m.iters) + "," + std::to_string(m.graphs)};
  parts.insert(parts.end(), spec.warnings.begin(), spec.warnings.end());
  for (const step_run_case& rc : spec.cases)
    parts.push_back(rc.c.id + " " + dump_json(rc.config) + " " + model_dimensions(rc.model));
  return fingerprint_of(parts);
}

step_sweep_result run_step_sweep(const step_spec& spec, executor& exec, communicator& comm,
                                 const step_hooks& hooks) {
  step_sweep_result out;
  ordered_json config = spec.config;
  config["warnings"] = spec.warnings;
  static_cast<doc_header&>(out.doc) = new_doc_header(exec, spec.gpu, comm, config);
  case_engine<step_record> engine(hooks, comm);
  std::vector<std::size_t> todo;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < spec.cases.size(); ++i) {
    const step_run_case& rc = spec.cases[i];
    ids.push_back(rc.c.id);
    if (rc.memory.over() && !spec.allow_oom)
      out.doc.oom.push_back({rc.c.id, rc.c.params, rc.config, rc.memory});
    else if (!engine.finished(rc.c.id))
      todo.push_back(i);
  }
  out.stopped = engine.run(
      todo, [&spec](std::size_t i) { return spec.cases[i].c.id; },
      [&](std::size_t index, std::size_t done) {
        return run_step_case(spec, index, exec, comm, hooks.inject,
                             hooks.trace && done == 0 ? &out.trace : nullptr);
      },
      [](step_record&) {});
  out.doc.cases = engine.take_in_order(ids);
  out.doc.rec = recommend(out.doc);  // of the cases finished (docs/ARCHITECTURE.md §7.2)
  if (out.doc.cases.size() + out.doc.oom.size() < spec.cases.size())
    out.doc.planned_cases = spec.cases.size();
  return out;
}

}  // namespace ob
