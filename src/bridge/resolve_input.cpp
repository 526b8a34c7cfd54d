#include "bridge/resolve_input.hpp"

#include <algorithm>

#include "base/config_paths.hpp"
#include "base/error.hpp"

namespace ob::resolve_detail {
namespace {

constexpr std::int64_t max_parallel = 1 << 20;

std::optional<std::int64_t> opt_positive(const json_object& o, const std::string& key,
                                         std::int64_t max = max_parallel) {
  if (!o.has(key) || o.get_raw(key).is_null()) return std::nullopt;
  const std::int64_t v = o.get_positive_int(key);
  if (v > max)
    o.fail(key, "expected at most " + std::to_string(max) + ", got " + std::to_string(v));
  return v;
}

std::optional<std::string> opt_enum(const json_object& o, const std::string& key,
                                    const std::vector<std::string>& allowed) {
  if (!o.has(key) || o.get_raw(key).is_null()) return std::nullopt;
  return o.get_enum(key, allowed);
}

// ---- fields the resolver does not model ----------------------------------------------------

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool is_expert_field(const std::string& k) {
  return k == "expert_model_parallel_size" || k == "expert_tensor_parallel_size" ||
         k == "num_moe_experts" || k == "overlap_moe_expert_parallel_comm" ||
         k == "delay_wgrad_compute" || k.starts_with("moe_");
}

// The modelled field `k` most likely meant, and its edit distance.
std::pair<const std::string*, std::size_t> nearest_field(const std::string& k,
                                                         const std::vector<std::string>& modelled) {
  // Ties go to the longer common prefix: tensor_parallel_size is as far from
  // context_parallel_size as from tensor_model_parallel_size, but means the latter.
  const auto prefix = [&](const std::string& m) {
    return std::mismatch(k.begin(), k.end(), m.begin(), m.end()).first - k.begin();
  };
  const std::string* best = nullptr;
  std::size_t best_d = 0;
  for (const auto& m : modelled) {
    const std::size_t d = edit_distance(k, m);
    if (!best || d < best_d || (d == best_d && prefix(m) > prefix(*best))) best = &m, best_d = d;
  }
  return {best, best_d};
}

// model/ddp/optimizer/dist take pasted Megatron configs: what the resolver does not read is
// reported once per field instead of rejected.
void report_unread(const json_object& o, const std::vector<std::string>& modelled, report& r) {
  for (const auto& k : o.unused_keys()) {
    const std::string path = o.path() + "." + k;
    if (is_expert_field(k)) {
      r.warn(diag_code::not_modelled, path,
             "expert-parallel / MoE setting accepted but not modelled: Bridge's EP all-to-all "
             "overlap and delay_wgrad_compute checks (docs/BRIDGE_RULES.md §3 D, E) are not run");
      continue;
    }
    const auto [best, best_d] = nearest_field(k, modelled);
    r.warn(diag_code::unused_field, path,
           "not modelled by the resolver, ignored (nearest modelled field: " +
               std::string(best ? *best : "none") + (best && best_d <= 3 ? ", a typo?" : "") + ")");
  }
}

// ---- the sections --------------------------------------------------------------------------

overlap_cfg_value read_overlap_cfg(const json_object& o, const std::string& key, report& r) {
  overlap_cfg_value v;
  v.path = o.path() + "." + key;
  if (!o.has(key) || o.get_raw(key).is_null()) return v;
  const json& raw = o.get_raw(key);
  v.given = true;
  std::vector<diagnostic> warnings;
  if (raw.is_string()) {
    std::string file;
    try {
      file = find_config("presets/userbuffers", raw.get<std::string>(), r.file + ": " + v.path);
    } catch (const config_error& e) {
      // A typo in a preset name is a rule violation to list with the others, not a parse error.
      r.errors.push_back({diag_code::unknown_preset, e.what()});
      v.invalid = true;
      return v;
    }
    v.preset = load_preset(file);
    v.layer = v.preset->gemms;
    warnings = v.preset->warnings;
  } else if (raw.is_object()) {
    v.layer = parse_tp_overlap_layer(raw, r.file, v.path, warnings);
  } else {
    o.fail(key,
           "expected a preset name, an object keyed by GEMM, or null, got " + describe_json(raw));
  }
  for (auto& w : warnings) r.warnings.push_back(std::move(w));
  return v;
}

const std::vector<std::string> model_modelled = {"tensor_model_parallel_size",
                                                 "pipeline_model_parallel_size",
                                                 "virtual_pipeline_model_parallel_size",
                                                 "context_parallel_size",
                                                 "sequence_parallel",
                                                 "hidden_size",
                                                 "seq_length",
                                                 "num_attention_heads",
                                                 "gradient_accumulation_fusion",
                                                 "fp8",
                                                 "tp_comm_overlap",
                                                 "tp_comm_overlap_cfg",
                                                 "tp_comm_bootstrap_backend",
                                                 "overlap_p2p_comm",
                                                 "batch_p2p_comm",
                                                 "defer_embedding_wgrad_compute",
                                                 "wgrad_deferral_limit"};
// The fields a typo is matched against. The FSDP fields (read too) stay out: by edit distance
// they would be the nearest to common pasted fields such as grad_reduce_in_fp32.
const std::vector<std::string> ddp_modelled = {
    "use_distributed_optimizer", "overlap_grad_reduce", "overlap_param_gather",
    "align_param_gather",        "bucket_size",         "num_buckets"};
const std::vector<std::string> dist_modelled = {"use_megatron_fsdp", "use_torch_fsdp2"};
const std::vector<std::string> optimizer_modelled = {"use_distributed_optimizer",
                                                     "overlap_param_gather",
                                                     "overlap_param_gather_with_optimizer_step"};
const std::vector<std::string> backends = {"nccl", "mpi", "gloo"};

// Megatron-Core's TransformerConfig.cp_comm_type: a string for every layer or a list of one per
// layer, each p2p, all_gather, a2a or a2a+p2p (null: Transformer Engine's default, p2p).
void read_cp_comm_type(const json_object& o, step_in& t) {
  static const std::vector<std::string> types = {"p2p", "all_gather", "a2a", "a2a+p2p"};
  if (!o.has("cp_comm_type") || o.get_raw("cp_comm_type").is_null()) return;
  if (!o.get_raw("cp_comm_type").is_array()) {
    t.cp_comm_type = std::vector<std::string>{o.get_enum("cp_comm_type", types)};
    return;
  }
  t.cp_comm_type = o.get_string_list("cp_comm_type");
  for (const std::string& v : *t.cp_comm_type)
    if (std::ranges::count(types, v) == 0)
      o.fail("cp_comm_type", "expected each of p2p, all_gather, a2a, a2a+p2p, got '" + v + "'");
}

// hierarchical_context_parallel_sizes: a list of positive sizes, one per level (null: none).
void read_hierarchical_cp(const json_object& o, step_in& t) {
  const std::string key = "hierarchical_context_parallel_sizes";
  if (!o.has(key) || o.get_raw(key).is_null()) return;
  const json& v = o.get_raw(key);
  if (!v.is_array()) o.fail(key, "expected a list of positive sizes");
  t.hierarchical_cp.emplace();
  for (const json& x : v) {
    if (!x.is_number_integer() || x.get<std::int64_t>() < 1 || x.get<std::int64_t>() > 1024)
      o.fail(key, "expected a list of sizes from 1 to 1024, got " + x.dump());
    t.hierarchical_cp->push_back(x.get<std::int64_t>());
  }
}

// A non-negative count of SMs, or null (the backend's default).
std::optional<std::int64_t> opt_sms(const json_object& o, const std::string& key) {
  const auto v = o.get_optional_int(key);
  if (v && (*v < 0 || *v > 4096))
    o.fail(key, "expected an SM count from 0 to 4096, got " + std::to_string(*v));
  return v;
}

// cuda_graph_modules, or its deprecated name cuda_graph_scope: a name or a list of names.
void read_graph_modules(const json_object& o, step_in& t) {
  for (const char* key : {"cuda_graph_modules", "cuda_graph_scope"}) {
    if (!o.has(key) || o.get_raw(key).is_null()) continue;
    // Megatron-Core takes the deprecated name only beside an empty (or "full") module list.
    const bool empty = !t.graph_modules || t.graph_modules->empty() ||
                       *t.graph_modules == std::vector<std::string>{"full"};
    if (!empty)
      o.fail(key,
             "set beside cuda_graph_modules: Megatron-Core asserts 'cuda_graph_scope and "
             "cuda_graph_modules cannot be set together'");
    t.graph_modules = o.get_raw(key).is_string() ? std::vector<std::string>{o.get_string(key)}
                                                 : o.get_string_list(key);
    t.graph_modules_field = key;
  }
}

// The sync-free MoE path's fields and the CUDA graph implementation (docs/MOE.md §21).
void read_sync_free(const json_object& o, step_in& t) {
  if (o.has("moe_expert_rank_capacity_factor") &&
      !o.get_raw("moe_expert_rank_capacity_factor").is_null()) {
    t.rank_capacity = o.get_number("moe_expert_rank_capacity_factor");
    if (!(*t.rank_capacity > 0) || *t.rank_capacity > 1e6)
      o.fail("moe_expert_rank_capacity_factor",
             "expected a factor above 0 (null: off), got " +
                 describe_json(o.get_raw("moe_expert_rank_capacity_factor")));
  }
  t.te_op_fuser = o.get_optional_bool("use_transformer_engine_op_fuser");
  t.flex_num_sms = opt_sms(o, "moe_flex_dispatcher_num_sms");
  t.deepep_num_sms = opt_sms(o, "moe_deepep_num_sms");
  t.hybridep_num_sms = opt_sms(o, "moe_hybridep_num_sms");
  t.cuda_graph_impl =
      opt_enum(o, "cuda_graph_impl", {"none", "local", "transformer_engine", "full_iteration"});
  read_graph_modules(o, t);
}

// The model fields `step` takes (docs/BRIDGE_RULES.md §12), with Megatron-Core's choices.
void read_model_step(const json_object& o, step_in& t) {
  t.ce_loss_fusion = o.get_optional_bool("cross_entropy_loss_fusion");
  t.ce_impl = opt_enum(o, "cross_entropy_fusion_impl", {"native", "te"});
  t.model_fp8_dpa = o.get_optional_bool("fp8_dot_product_attention");
  read_cp_comm_type(o, t);
  read_hierarchical_cp(o, t);
  t.cpu_offloading = o.get_optional_bool("cpu_offloading");
  t.cpu_offloading_num_layers = o.get_optional_int("cpu_offloading_num_layers");
  if (t.cpu_offloading_num_layers && *t.cpu_offloading_num_layers < 0)
    o.fail("cpu_offloading_num_layers",
           "expected 0 or more layers, got " + std::to_string(*t.cpu_offloading_num_layers));
  t.cpu_offloading_weights = o.get_optional_bool("cpu_offloading_weights");
  t.dispatcher_type = opt_enum(o, "moe_token_dispatcher_type", {"allgather", "alltoall", "flex"});
  t.flex_backend = opt_enum(o, "moe_flex_dispatcher_backend", {"deepep", "hybridep", "ncclep"});
  t.num_moe_experts = o.get_optional_int("num_moe_experts");
  t.ep = opt_positive(o, "expert_model_parallel_size");
  t.etp = opt_positive(o, "expert_tensor_parallel_size");
  t.moe_a2a_overlap = o.get_optional_bool("overlap_moe_expert_parallel_comm");
  t.delay_wgrad = o.get_optional_bool("delay_wgrad_compute");
  t.shared_expert_overlap = o.get_optional_bool("moe_shared_expert_overlap");
  t.recompute_granularity = opt_enum(o, "recompute_granularity", {"full", "selective"});
  t.recompute_method = opt_enum(o, "recompute_method", {"uniform", "block"});
  t.recompute_num_layers = opt_positive(o, "recompute_num_layers");
  if (o.has("recompute_modules") && !o.get_raw("recompute_modules").is_null())
    t.recompute_modules = o.get_string_list("recompute_modules");
  read_sync_free(o, t);
}

// Megatron's optimizer dtypes: its command line's names, or torch's.
std::optional<std::string> opt_dtype(const json_object& o, const std::string& key) {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"fp32", "fp32"}, {"float32", "fp32"},  {"torch.float32", "fp32"},
      {"bf16", "bf16"}, {"bfloat16", "bf16"}, {"torch.bfloat16", "bf16"},
      {"fp16", "fp16"}, {"float16", "fp16"},  {"torch.float16", "fp16"},
      {"fp8", "fp8"},   {"uint8", "fp8"},     {"torch.uint8", "fp8"}};
  std::vector<std::string> allowed;
  for (const auto& n : names) allowed.push_back(n.first);
  const auto v = opt_enum(o, key, allowed);
  if (!v) return v;
  return std::find_if(names.begin(), names.end(), [&](const auto& n) { return n.first == *v; })
      ->second;
}

// Bridge's MixedPrecisionConfig: an object, or a recipe name (not expanded here).
void read_mixed_precision(const json_object& top, step_in& t, report& r) {
  if (!top.has("mixed_precision") || top.get_raw("mixed_precision").is_null()) return;
  t.mixed_precision = true;
  if (top.get_raw("mixed_precision").is_string()) {
    t.mixed_precision_recipe = true;
    r.warn(diag_code::not_modelled, "mixed_precision",
           "the recipe '" + top.get_string("mixed_precision") +
               "' is not expanded: its grad_reduce_in_fp32 and fp8_param_gather, which Bridge "
               "writes over ddp's, are not carried into step; give the section as an object "
               "(docs/BRIDGE_RULES.md §12)");
    return;
  }
  const json_object o = top.get_object("mixed_precision");
  t.mp_grad_reduce_in_fp32 = o.get_optional_bool("grad_reduce_in_fp32");
  t.mp_fp8_param_gather = o.get_optional_bool("fp8_param_gather");
  t.mp_fp8_dpa = o.get_optional_bool("fp8_dot_product_attention");
  report_unread(o, {"grad_reduce_in_fp32", "fp8_param_gather", "fp8_dot_product_attention"}, r);
}

// The read order decides which of two bad fields the config_error names: keep it stable.
void read_model(const json_object& o, bridge_input& in, report& r) {
  bridge_model_input& s = in.shape;
  model_in& m = in.model;
  s.tp = opt_positive(o, "tensor_model_parallel_size").value_or(1);
  s.pp = opt_positive(o, "pipeline_model_parallel_size").value_or(1);
  s.vp = opt_positive(o, "virtual_pipeline_model_parallel_size");
  s.cp = opt_positive(o, "context_parallel_size").value_or(1);
  s.sequence_parallel = o.get_bool("sequence_parallel", false);
  s.hidden_size = opt_positive(o, "hidden_size", std::int64_t{1} << 30);
  s.seq_length = opt_positive(o, "seq_length", std::int64_t{1} << 30);
  s.num_attention_heads = opt_positive(o, "num_attention_heads");
  s.gradient_accumulation_fusion = o.get_optional_bool("gradient_accumulation_fusion");
  // A recipe name (e4m3, hybrid); null or "" means BF16.
  if (o.has("fp8") && !o.get_raw("fp8").is_null()) s.fp8 = !o.get_string("fp8").empty();
  m.tp_comm_overlap = o.get_optional_bool("tp_comm_overlap");
  m.cfg = read_overlap_cfg(o, "tp_comm_overlap_cfg", r);
  if (o.has("tp_comm_bootstrap_backend")) {
    m.backend_set = true;
    m.backend = opt_enum(o, "tp_comm_bootstrap_backend", backends);
  }
  m.overlap_p2p_comm = o.get_optional_bool("overlap_p2p_comm");
  m.batch_p2p_comm = o.get_optional_bool("batch_p2p_comm");
  m.defer = o.get_optional_bool("defer_embedding_wgrad_compute");
  m.wgrad_deferral_limit = o.get_optional_int("wgrad_deferral_limit");
  read_model_step(o, in.step);
  report_unread(o, model_modelled, r);
}

// A shape field the resolver does not model but a run does: read from the raw object without
// marking it used, so it still gets its unused_field warning. A value that is not a positive
// integer is left unset rather than rejected, as the resolver never validated these fields.
std::optional<std::int64_t> unmodelled_positive(const json_object& o, const std::string& key) {
  const json& obj = o.raw();
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer() || it->get<std::int64_t>() <= 0)
    return std::nullopt;
  return it->get<std::int64_t>();
}

comm_in read_comm_overlap(const json_object& o, report& r) {
  comm_in c;
  // CommOverlapConfig has no default for it: constructing one without it fails in Python.
  c.tp_comm_overlap = o.get_bool("tp_comm_overlap");
  c.cfg = read_overlap_cfg(o, "tp_comm_overlap_cfg", r);
  if (o.has("tp_comm_bootstrap_backend"))
    c.backend = opt_enum(o, "tp_comm_bootstrap_backend", backends);
  c.overlap_p2p_comm = o.get_optional_bool("overlap_p2p_comm");
  c.batch_p2p_comm = o.get_optional_bool("batch_p2p_comm");
  c.overlap_grad_reduce = o.get_optional_bool("overlap_grad_reduce");
  c.overlap_param_gather = o.get_optional_bool("overlap_param_gather");
  c.opg_with_step = o.get_optional_bool("overlap_param_gather_with_optimizer_step");
  c.align_param_gather = o.get_optional_bool("align_param_gather");
  c.bucket_size = opt_positive(o, "bucket_size", std::int64_t{1} << 40);
  c.data_parallel_size = opt_positive(o, "data_parallel_size");
  c.defer = o.get_optional_bool("defer_embedding_wgrad_compute");
  c.wgrad_deferral_limit = o.get_optional_int("wgrad_deferral_limit");
  c.moe_a2a_overlap = o.get_optional_bool("overlap_moe_expert_parallel_comm");
  c.delay_wgrad = o.get_optional_bool("delay_wgrad_compute");
  o.finish();
  return c;
}

ddp_in read_ddp(const json_object& o, step_in& t, report& r) {
  ddp_in d;
  d.use_dist_opt = o.get_optional_bool("use_distributed_optimizer");
  d.overlap_grad_reduce = o.get_optional_bool("overlap_grad_reduce");
  d.overlap_param_gather = o.get_optional_bool("overlap_param_gather");
  d.align_param_gather = o.get_optional_bool("align_param_gather");
  d.bucket_size = opt_positive(o, "bucket_size", std::int64_t{1} << 40);
  d.num_buckets = opt_positive(o, "num_buckets");
  d.use_megatron_fsdp = o.get_bool("use_megatron_fsdp", false);
  // Megatron-Core's ShardingStrategy names (docs/FSDP.md §6).
  d.sharding_strategy = opt_enum(o, "data_parallel_sharding_strategy",
                                 {"no_shard", "optim", "optim_grads", "optim_grads_params"});
  t.ddp_grad_reduce_in_fp32 = o.get_optional_bool("grad_reduce_in_fp32");
  t.ddp_fp8_param_gather = o.get_optional_bool("fp8_param_gather");
  report_unread(o, ddp_modelled, r);
  return d;
}

dist_in read_dist(const json_object& o, report& r) {
  dist_in d;
  d.use_megatron_fsdp = o.get_bool("use_megatron_fsdp", false);
  d.use_torch_fsdp2 = o.get_bool("use_torch_fsdp2", false);
  report_unread(o, dist_modelled, r);
  return d;
}

optimizer_in read_optimizer(const json_object& o, step_in& t, report& r) {
  optimizer_in p;
  p.use_dist_opt = o.get_optional_bool("use_distributed_optimizer");
  p.overlap_param_gather = o.get_optional_bool("overlap_param_gather");
  p.opg_with_step = o.get_optional_bool("overlap_param_gather_with_optimizer_step");
  t.precision_aware = o.get_optional_bool("use_precision_aware_optimizer");
  t.exp_avg_dtype = opt_dtype(o, "exp_avg_dtype");
  t.exp_avg_sq_dtype = opt_dtype(o, "exp_avg_sq_dtype");
  report_unread(o, optimizer_modelled, r);
  return p;
}

platform_in read_platform(const json_object& o) {
  platform_in p;
  // The families, and after h100 the one GPU file name these configs also use.
  std::vector<std::string> gpus = gpu_family_names();
  gpus.insert(gpus.begin() + 2, "h100_sxm");
  p.gpu = opt_enum(o, "gpu", gpus);
  p.have_te = o.get_bool("have_te", true);
  p.num_gpus = opt_positive(o, "num_gpus", std::int64_t{1} << 24);
  o.finish();
  return p;
}

launcher_in read_launcher(const json_object& o) {
  launcher_in l;
  l.enable_ln_margin = o.get_bool("enable_layernorm_sm_margin", true);
  l.ln_margin = o.get_int("layernorm_sm_margin", 16);
  if (l.ln_margin < 0 || l.ln_margin > 1024)
    o.fail("layernorm_sm_margin", "expected an SM count between 0 and 1024, got " +
                                      describe_json(o.get_raw("layernorm_sm_margin")));
  if (o.has("moe_flex_dispatcher_backend") && !o.get_raw("moe_flex_dispatcher_backend").is_null())
    l.dispatcher = o.get_string("moe_flex_dispatcher_backend");
  l.a2a_overlap = o.get_bool("a2a_overlap", false);
  l.pp_chunksize = o.get_optional_int("nccl_pp_comm_chunksize");
  // PerfEnvPlugin asserts an int > 1.
  if (l.pp_chunksize && *l.pp_chunksize <= 1)
    o.fail("nccl_pp_comm_chunksize", "expected an integer greater than 1, got " +
                                         describe_json(o.get_raw("nccl_pp_comm_chunksize")));
  o.finish();
  return l;
}

std::optional<std::int64_t> read_train(const json_object& o) {
  const auto mbs = opt_positive(o, "micro_batch_size");
  o.finish();
  return mbs;
}

}  // namespace

bridge_input read_bridge_input(const json& input, report& r) {
  const json_object top(input, r.file, "");
  top.get_string("comment", "");
  if (!top.has("model")) top.fail_missing("model", "section");
  bridge_input in;
  {
    const json_object model = top.get_object("model");
    read_model(model, in, r);
    in.shape.ffn_hidden_size = unmodelled_positive(model, "ffn_hidden_size");
    in.shape.num_query_groups = unmodelled_positive(model, "num_query_groups");
  }
  if (const auto o = top.get_optional_object("comm_overlap"))
    in.comm_overlap = read_comm_overlap(*o, r);
  if (const auto o = top.get_optional_object("ddp")) in.ddp = read_ddp(*o, in.step, r);
  if (const auto o = top.get_optional_object("dist")) in.dist = read_dist(*o, r);
  if (const auto o = top.get_optional_object("optimizer"))
    in.optimizer = read_optimizer(*o, in.step, r);
  read_mixed_precision(top, in.step, r);
  if (const auto o = top.get_optional_object("train")) in.shape.micro_batch_size = read_train(*o);
  if (const auto o = top.get_optional_object("platform")) in.platform = read_platform(*o);
  if (const auto o = top.get_optional_object("launcher")) in.launcher = read_launcher(*o);
  top.finish();
  return in;
}

}  // namespace ob::resolve_detail
