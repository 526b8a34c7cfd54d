#include "core/resolve.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "core/config_paths.hpp"
#include "core/error.hpp"
#include "core/presets.hpp"

namespace ob {
namespace {

// Bridge's DP-overlap default bucket: 128·1024·1024 parameters (docs/BRIDGE_RULES.md §4.4).
constexpr std::int64_t bridge_bucket_size = 128LL * 1024 * 1024;
// Generation (B) launcher default world size when nothing else says (docs/BRIDGE_RULES.md §8 B).
constexpr std::int64_t perf_env_plugin_num_gpus = 8;
constexpr std::int64_t max_parallel = 1 << 20;

// Collects warnings and errors; every message starts with "<file>: <path>: ".
struct report {
  std::string file;
  std::vector<diagnostic> warnings, errors;

  std::string at(const std::string& path) const { return file + ": " + path + ": "; }
  void warn(const std::string& code, const std::string& path, const std::string& msg) {
    warnings.push_back({parse_enum<diag_code>(code, "code"), at(path) + msg});
  }
  void error(const std::string& code, const std::string& path, const std::string& msg) {
    errors.push_back({parse_enum<diag_code>(code, "code"), at(path) + msg});
  }
};

std::string str(bool b) { return b ? "true" : "false"; }
std::string str(std::int64_t v) { return std::to_string(v); }
std::string str(const std::optional<std::string>& s) { return s ? "\"" + *s + "\"" : "null"; }

// ---- reading input ------------------------------------------------------------------------

std::optional<std::int64_t> opt_positive(const json_object& o, const std::string& key,
                                         std::int64_t max = max_parallel) {
  if (!o.has(key) || o.get_raw(key).is_null()) return std::nullopt;
  const std::int64_t v = o.get_positive_int(key);
  if (v > max) o.fail(key, "expected at most " + std::to_string(max) + ", got " + str(v));
  return v;
}

std::optional<std::int64_t> opt_int(const json_object& o, const std::string& key) {
  return o.get_optional_int(key);
}

std::optional<std::string> opt_enum(const json_object& o, const std::string& key,
                                    const std::vector<std::string>& allowed) {
  if (!o.has(key) || o.get_raw(key).is_null()) return std::nullopt;
  return o.get_enum(key, allowed);
}

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

// model/ddp/optimizer take pasted Megatron configs: what the resolver does not read is reported
// once per field instead of rejected.
void report_unread(const json_object& o, const std::vector<std::string>& modelled, report& r) {
  for (const auto& k : o.unused_keys()) {
    const std::string path = o.path() + "." + k;
    if (is_expert_field(k)) {
      r.warn("not_modelled", path,
             "expert-parallel / MoE setting accepted but not modelled: Bridge's EP all-to-all "
             "overlap and delay_wgrad_compute checks (docs/BRIDGE_RULES.md §3 D, E) are not run");
      continue;
    }
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
    r.warn("unused_field", path,
           "not modelled by the resolver, ignored (nearest modelled field: " +
               std::string(best ? *best : "none") + (best && best_d <= 3 ? ", a typo?" : "") + ")");
  }
}

// A tp_comm_overlap_cfg value: a preset name or path, an object keyed by GEMM, or null.
struct overlap_cfg_value {
  bool given = false;    // not null
  bool invalid = false;  // unknown preset (already reported)
  std::string path;      // JSON path, for messages
  std::optional<userbuffers_preset> preset;
  ordered_json expanded;  // null when not given or invalid
};

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
      r.errors.push_back({diag_code::unknown_preset, e.what()});
      v.invalid = true;
      return v;
    }
    v.preset = load_preset(file);
    v.expanded = expand_tp_overlap_layer(v.preset->gemms);
    warnings = v.preset->warnings;
  } else if (raw.is_object()) {
    v.expanded = expand_tp_overlap_layer(parse_tp_overlap_layer(raw, r.file, v.path, warnings));
  } else {
    o.fail(key,
           "expected a preset name, an object keyed by GEMM, or null, got " + describe_json(raw));
  }
  for (auto& w : warnings) r.warnings.push_back(std::move(w));
  return v;
}

struct model_in {
  std::int64_t tp = 1, pp = 1, cp = 1;
  std::optional<std::int64_t> vp, hidden, seq_length, heads;
  bool sp = false;
  bool grad_accum_fusion = false;  // MCore default
  bool fp8 = false;                // model.fp8 is a recipe name (e4m3, hybrid) or null
  // Overlap fields set directly on the model.
  std::optional<bool> tp_comm_overlap, overlap_p2p_comm, batch_p2p_comm, defer;
  std::optional<std::int64_t> wgrad_deferral_limit;
  bool backend_set = false;
  std::optional<std::string> backend;
  overlap_cfg_value cfg;
};

struct comm_in {
  bool tp_comm_overlap = false;
  overlap_cfg_value cfg;
  std::optional<std::string> backend = "nccl";  // Bridge default since PR #1395; never None
  std::optional<bool> overlap_p2p_comm, batch_p2p_comm, overlap_grad_reduce, overlap_param_gather,
      opg_with_step, align_param_gather, defer;
  std::optional<std::int64_t> bucket_size, data_parallel_size, wgrad_deferral_limit;
};

struct ddp_in {
  std::optional<bool> use_dist_opt, overlap_grad_reduce, overlap_param_gather, align_param_gather;
  std::optional<std::int64_t> bucket_size, num_buckets;
};

struct optimizer_in {
  std::optional<bool> use_dist_opt, overlap_param_gather, opg_with_step;
};

struct platform_in {
  std::optional<std::string> gpu;
  bool have_te = true;
  std::optional<std::int64_t> num_gpus;
};

struct launcher_in {
  bool enable_ln_margin = true;
  std::int64_t ln_margin = 16;
  std::optional<std::string> dispatcher;
  bool a2a_overlap = false;
  std::optional<std::int64_t> pp_chunksize;
};

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
const std::vector<std::string> ddp_modelled = {
    "use_distributed_optimizer", "overlap_grad_reduce", "overlap_param_gather",
    "align_param_gather",        "bucket_size",         "num_buckets"};
const std::vector<std::string> optimizer_modelled = {"use_distributed_optimizer",
                                                     "overlap_param_gather",
                                                     "overlap_param_gather_with_optimizer_step"};
const std::vector<std::string> backends = {"nccl", "mpi", "gloo"};

model_in read_model(const json_object& o, report& r) {
  model_in m;
  m.tp = opt_positive(o, "tensor_model_parallel_size").value_or(1);
  m.pp = opt_positive(o, "pipeline_model_parallel_size").value_or(1);
  m.vp = opt_positive(o, "virtual_pipeline_model_parallel_size");
  m.cp = opt_positive(o, "context_parallel_size").value_or(1);
  m.sp = o.get_bool("sequence_parallel", false);
  m.hidden = opt_positive(o, "hidden_size", std::int64_t{1} << 30);
  m.seq_length = opt_positive(o, "seq_length", std::int64_t{1} << 30);
  m.heads = opt_positive(o, "num_attention_heads");
  m.grad_accum_fusion = o.get_bool("gradient_accumulation_fusion", false);
  if (o.has("fp8") && !o.get_raw("fp8").is_null()) m.fp8 = !o.get_string("fp8").empty();
  m.tp_comm_overlap = o.get_optional_bool("tp_comm_overlap");
  m.cfg = read_overlap_cfg(o, "tp_comm_overlap_cfg", r);
  if (o.has("tp_comm_bootstrap_backend")) {
    m.backend_set = true;
    m.backend = opt_enum(o, "tp_comm_bootstrap_backend", backends);
  }
  m.overlap_p2p_comm = o.get_optional_bool("overlap_p2p_comm");
  m.batch_p2p_comm = o.get_optional_bool("batch_p2p_comm");
  m.defer = o.get_optional_bool("defer_embedding_wgrad_compute");
  m.wgrad_deferral_limit = opt_int(o, "wgrad_deferral_limit");
  report_unread(o, model_modelled, r);
  return m;
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
  c.wgrad_deferral_limit = opt_int(o, "wgrad_deferral_limit");
  for (const char* k : {"overlap_moe_expert_parallel_comm", "delay_wgrad_compute"})
    if (o.get_optional_bool(k).has_value())
      r.warn("not_modelled", o.path() + "." + k,
             "expert-parallel setting accepted but not modelled: Bridge's EP all-to-all overlap "
             "and delay_wgrad_compute checks (docs/BRIDGE_RULES.md §3 D, E) are not run");
  o.finish();
  return c;
}

ddp_in read_ddp(const json_object& o, report& r) {
  ddp_in d;
  d.use_dist_opt = o.get_optional_bool("use_distributed_optimizer");
  d.overlap_grad_reduce = o.get_optional_bool("overlap_grad_reduce");
  d.overlap_param_gather = o.get_optional_bool("overlap_param_gather");
  d.align_param_gather = o.get_optional_bool("align_param_gather");
  d.bucket_size = opt_positive(o, "bucket_size", std::int64_t{1} << 40);
  d.num_buckets = opt_positive(o, "num_buckets");
  report_unread(o, ddp_modelled, r);
  return d;
}

optimizer_in read_optimizer(const json_object& o, report& r) {
  optimizer_in p;
  p.use_dist_opt = o.get_optional_bool("use_distributed_optimizer");
  p.overlap_param_gather = o.get_optional_bool("overlap_param_gather");
  p.opg_with_step = o.get_optional_bool("overlap_param_gather_with_optimizer_step");
  report_unread(o, optimizer_modelled, r);
  return p;
}

platform_in read_platform(const json_object& o) {
  platform_in p;
  p.gpu =
      opt_enum(o, "gpu", {"a100", "h100", "h100_sxm", "h200", "b200", "b300", "gb200", "gb300"});
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

bool is_sm100_or_newer(const std::optional<std::string>& gpu) {
  return gpu && ob::is_sm100_or_newer(*gpu);
}

// ---- resolution ------------------------------------------------------------------------------

// A resolved bool/int together with where it came from, for messages.
template <typename T>
struct resolved {
  T value;
  std::string path;  // where a user set it, else the model field it lands in
};

void warn_overwrite(report& r, const char* code, const std::string& section,
                    const std::string& field, const std::string& user, const std::string& now,
                    const std::string& why) {
  if (user == now) return;
  r.warn(code, section + "." + field,
         "set to " + user + " here but overwritten with " + now + " by " + why);
}

void check_preset_matches(const userbuffers_preset& p, const std::string& path, const model_in& m,
                          const std::optional<std::int64_t>& mbs, const platform_in& plat,
                          report& r) {
  const auto mismatch = [&](const std::string& what, const std::string& preset_v,
                            const std::string& run_v, const std::string& extra) {
    r.warn("preset_mismatch", path,
           "preset " + p.name + " was tuned for " + what + " " + preset_v + " but the run has " +
               run_v + "; Bridge never compares them (docs/BRIDGE_RULES.md §11.2)" + extra);
  };
  const std::string sized =
      ": userbuffers are sized from the model ((seq x mbs / cp) x hidden), so it runs anyway";
  if (m.hidden && *m.hidden != p.hidden)
    mismatch("hidden size", str(std::int64_t{p.hidden}), str(*m.hidden), sized);
  if (m.tp != p.tp) mismatch("TP", str(std::int64_t{p.tp}), str(m.tp), sized);
  if (m.cp != p.cp) mismatch("CP", str(std::int64_t{p.cp}), str(m.cp), sized);
  if (m.seq_length && *m.seq_length != p.seq_length)
    mismatch("seq_length", str(std::int64_t{p.seq_length}), str(*m.seq_length), sized);
  if (mbs && *mbs != p.mbs)
    mismatch("micro_batch_size", str(std::int64_t{p.mbs}), str(*mbs), sized);
  const std::string run_dtype = m.fp8 ? "fp8" : "bf16";
  if (run_dtype != p.dtype)
    mismatch("dtype", p.dtype, run_dtype + (m.fp8 ? " (model.fp8 set)" : " (model.fp8 unset)"), "");
  if (plat.gpu && gpu_family(*plat.gpu) != p.gpu)
    mismatch("GPU", p.gpu, *plat.gpu,
             p.gpu == "b200" && is_sm100_or_newer(plat.gpu)
                 ? " (Bridge's own recipes reuse the b200 presets on b300/gb200/gb300)"
                 : "");
}

}  // namespace

ordered_json resolve_bridge_config(const json& input, const std::string& file) {
  report r{file, {}, {}};
  const json_object top(input, file, "");
  top.get_string("comment", "");
  if (!top.has("model")) top.fail("model", "required section is missing");
  const model_in m = read_model(top.get_object("model"), r);
  std::optional<comm_in> co;
  if (const auto o = top.get_optional_object("comm_overlap")) co = read_comm_overlap(*o, r);
  ddp_in ddp;
  if (const auto o = top.get_optional_object("ddp")) ddp = read_ddp(*o, r);
  optimizer_in opt;
  if (const auto o = top.get_optional_object("optimizer")) opt = read_optimizer(*o, r);
  std::optional<std::int64_t> mbs;
  if (const auto o = top.get_optional_object("train")) {
    mbs = opt_positive(*o, "micro_batch_size");
    o->finish();
  }
  platform_in plat;
  if (const auto o = top.get_optional_object("platform")) plat = read_platform(*o);
  launcher_in launch;
  if (const auto o = top.get_optional_object("launcher")) launch = read_launcher(*o);
  top.finish();

  const std::int64_t vp_eff = m.vp.value_or(1);  // Bridge treats None as 1
  const bool interleaved = m.pp > 1 && vp_eff > 1;

  // ---- derived: world and data-parallel size (docs/BRIDGE_RULES.md §1 step 3)
  // ---------------------------
  const std::int64_t model_parallel = m.tp * m.cp * m.pp;
  std::int64_t world = 0;
  const auto check_world = [&](const std::string& path, const std::string& how) {
    if (world % model_parallel == 0) return;
    const std::string prod =
        "tp·cp·pp = " + str(m.tp) + "·" + str(m.cp) + "·" + str(m.pp) + " = " + str(model_parallel);
    if (world < model_parallel)
      r.error("data_parallel_size_zero", path,
              "world size " + str(world) + how + " is smaller than " + prod +
                  ": data_parallel_size would be 0");
    else
      r.error("world_size_not_divisible", path,
              "world size " + str(world) + how + " is not divisible by " + prod +
                  " (Bridge asserts this in set_data_parallel_size)");
  };
  if (plat.num_gpus) {
    world = *plat.num_gpus;
    check_world("platform.num_gpus", "");
    if (co && co->data_parallel_size && *co->data_parallel_size != world / model_parallel)
      r.warn("data_parallel_size_overwritten", "comm_overlap.data_parallel_size",
             "set to " + str(*co->data_parallel_size) + " but Bridge overwrites it with " +
                 "world_size / (tp·cp·pp) = " + str(world / model_parallel) +
                 " (docs/BRIDGE_RULES.md §1)");
  } else if (co && co->data_parallel_size) {
    world = *co->data_parallel_size * model_parallel;
  } else {
    world = perf_env_plugin_num_gpus;
    r.warn("num_gpus_defaulted", "platform.num_gpus",
           "not given (nor comm_overlap.data_parallel_size): assuming " + str(world) +
               " GPUs, PerfEnvPlugin's default");
    check_world("platform.num_gpus", " (assumed)");
  }
  const std::int64_t dp = world / model_parallel;

  // ---- model side (docs/BRIDGE_RULES.md §3, §4.1, §4.2)
  // ----------------------------------------------
  resolved<bool> tp_overlap{m.tp_comm_overlap.value_or(false), "model.tp_comm_overlap"};
  const overlap_cfg_value* cfg_src = m.cfg.given ? &m.cfg : nullptr;
  std::optional<std::string> backend =
      m.backend_set ? m.backend : std::optional<std::string>("nccl");
  resolved<bool> overlap_p2p{m.overlap_p2p_comm.value_or(false), "model.overlap_p2p_comm"};
  resolved<bool> batch_p2p{m.batch_p2p_comm.value_or(true), "model.batch_p2p_comm"};
  resolved<bool> defer{m.defer.value_or(false), "model.defer_embedding_wgrad_compute"};
  resolved<std::int64_t> limit{m.wgrad_deferral_limit.value_or(0), "model.wgrad_deferral_limit"};

  if (co) {
    // Step A: Bridge's base defaults (wgrad_deferral_limit -1, where MCore says 0).
    tp_overlap = {false, "comm_overlap.tp_comm_overlap"};
    cfg_src = nullptr;
    std::optional<std::string> r_backend;
    defer = {false, "comm_overlap.defer_embedding_wgrad_compute"};
    limit = {-1, "comm_overlap.wgrad_deferral_limit"};
    // Step B: the TP gate, an if/elif chain: only the first failing reason is reported.
    bool user_tp = co->tp_comm_overlap;
    if (user_tp) {
      const std::string tail =
          "; comm_overlap.tp_comm_overlap still reads true, only Bridge's internal copy is "
          "switched off (Megatron-LM's own CLI would reject this instead)";
      if (m.tp < 2) {
        r.warn("tp_overlap_disabled_tp_lt_2", "comm_overlap.tp_comm_overlap",
               "TP overlap silently disabled: tensor_model_parallel_size is " + str(m.tp) +
                   " (< 2)" + tail);
        user_tp = false;
      } else if (!m.sp) {
        r.warn("tp_overlap_disabled_sequence_parallel_off", "comm_overlap.tp_comm_overlap",
               "TP overlap silently disabled: model.sequence_parallel is false" + tail);
        user_tp = false;
      } else if (!plat.have_te) {
        r.warn("tp_overlap_disabled_no_te", "comm_overlap.tp_comm_overlap",
               "TP overlap silently disabled: Transformer Engine not available "
               "(platform.have_te false)" +
                   tail);
        user_tp = false;
      }
    }
    // Step C: PP p2p defaults.
    overlap_p2p = {interleaved, "comm_overlap.overlap_p2p_comm"};
    batch_p2p = {m.pp > 1 && !interleaved, "comm_overlap.batch_p2p_comm"};
    // Step F: every user value that is not None wins, unchecked.
    tp_overlap.value = user_tp;
    if (co->cfg.given) cfg_src = &co->cfg;
    r_backend = co->backend;
    if (co->overlap_p2p_comm)
      overlap_p2p = {*co->overlap_p2p_comm, "comm_overlap.overlap_p2p_comm"};
    if (co->batch_p2p_comm) batch_p2p = {*co->batch_p2p_comm, "comm_overlap.batch_p2p_comm"};
    if (co->defer) defer = {*co->defer, "comm_overlap.defer_embedding_wgrad_compute"};
    if (co->wgrad_deferral_limit)
      limit = {*co->wgrad_deferral_limit, "comm_overlap.wgrad_deferral_limit"};
    if (m.pp > 1 && !overlap_p2p.value && !batch_p2p.value &&
        (co->overlap_p2p_comm || co->batch_p2p_comm))
      r.warn("p2p_both_disabled", "comm_overlap",
             "with pipeline parallelism the override leaves overlap_p2p_comm and batch_p2p_comm "
             "both false: pipeline send/recv is neither batched nor overlapped (Bridge allows it "
             "without a word)");

    // §4.1: the whole model-side result is written onto the model, None included.
    const std::string why = "Bridge's comm_overlap setup (docs/BRIDGE_RULES.md §4.1)";
    if (m.tp_comm_overlap)
      warn_overwrite(r, "model_field_overwritten", "model", "tp_comm_overlap",
                     str(*m.tp_comm_overlap), str(tp_overlap.value), why);
    if (m.cfg.given || m.cfg.invalid) {
      const ordered_json now = cfg_src ? cfg_src->expanded : ordered_json();
      if (m.cfg.invalid || m.cfg.expanded != now)
        r.warn("model_field_overwritten", "model.tp_comm_overlap_cfg",
               "set here but overwritten with " +
                   std::string(cfg_src ? "comm_overlap.tp_comm_overlap_cfg" : "null") + " by " +
                   why);
    }
    if (m.backend_set)
      warn_overwrite(r, "model_field_overwritten", "model", "tp_comm_bootstrap_backend",
                     str(m.backend), str(r_backend), why);
    if (m.overlap_p2p_comm)
      warn_overwrite(r, "model_field_overwritten", "model", "overlap_p2p_comm",
                     str(*m.overlap_p2p_comm), str(overlap_p2p.value), why);
    if (m.batch_p2p_comm)
      warn_overwrite(r, "model_field_overwritten", "model", "batch_p2p_comm",
                     str(*m.batch_p2p_comm), str(batch_p2p.value), why);
    if (m.defer)
      warn_overwrite(r, "model_field_overwritten", "model", "defer_embedding_wgrad_compute",
                     str(*m.defer), str(defer.value), why);
    if (m.wgrad_deferral_limit)
      warn_overwrite(r, "model_field_overwritten", "model", "wgrad_deferral_limit",
                     str(*m.wgrad_deferral_limit), str(limit.value), why);
    backend = r_backend;
  } else {
    r.warn("comm_overlap_absent", "comm_overlap",
           "absent: Bridge skips its comm-overlap setup, so model, ddp and optimizer keep "
           "Megatron-Core defaults and the values set on them (docs/BRIDGE_RULES.md §1 step 5)");
    if (tp_overlap.value && (m.tp < 2 || !m.sp))
      r.warn(
          "tp_overlap_ungated", "model.tp_comm_overlap",
          "true with " +
              std::string(m.tp < 2 ? "tensor_model_parallel_size < 2" : "sequence_parallel false") +
              ": without comm_overlap Bridge's TP gate does not run to switch it off");
  }
  const ordered_json tp_cfg = cfg_src ? cfg_src->expanded : ordered_json();
  const bool cfg_invalid = (co ? co->cfg.invalid : m.cfg.invalid);
  if (tp_overlap.value) {
    if (!cfg_src && !cfg_invalid)
      r.warn("tp_overlap_no_preset", tp_overlap.path,
             "TP overlap on without tp_comm_overlap_cfg: Transformer Engine uses its built-in "
             "defaults (Bridge logs 'No overlap config provided')");
    if (cfg_src && cfg_src->preset)
      check_preset_matches(*cfg_src->preset, cfg_src->path, m, mbs, plat, r);
  } else if (cfg_src) {
    r.warn("tp_comm_overlap_cfg_unused", cfg_src->path,
           "given but TP overlap is off, so no userbuffers are initialised and it has no effect");
  }

  // ---- DP side (docs/BRIDGE_RULES.md §4.3-4.5, §1 step 6)
  // --------------------------------------------
  bool ddp_udo = ddp.use_dist_opt.value_or(false);
  bool opt_udo = opt.use_dist_opt.value_or(false);
  bool d_ogr = ddp.overlap_grad_reduce.value_or(false);
  bool d_opg = ddp.overlap_param_gather.value_or(false);
  bool d_apg = ddp.align_param_gather.value_or(false);
  std::optional<std::int64_t> d_bucket = ddp.bucket_size;
  bool o_opg = opt.overlap_param_gather.value_or(false);
  bool o_opg_step = opt.opg_with_step.value_or(false);
  const bool dp_gate = co && ddp_udo;
  if (dp_gate) {
    const bool multi = dp > 1;
    std::optional<std::int64_t> bucket =
        multi ? std::optional<std::int64_t>(bridge_bucket_size) : std::nullopt;
    bool ogr = multi, opg = multi, opg_step = false, apg = multi && interleaved;
    if (co->bucket_size) bucket = co->bucket_size;
    if (co->overlap_grad_reduce) ogr = *co->overlap_grad_reduce;
    if (co->overlap_param_gather) opg = *co->overlap_param_gather;
    if (co->opg_with_step) opg_step = *co->opg_with_step;
    if (co->align_param_gather) apg = *co->align_param_gather;
    if (multi && !co->bucket_size) {
      const std::int64_t mcore = std::max<std::int64_t>(40'000'000, 1'000'000 * dp);
      r.warn("bucket_size_bridge_default", "ddp.bucket_size",
             "Bridge sets 134217728 (128 Mi parameters, not bytes: " +
                 str(bridge_bucket_size * 2 / (1024 * 1024)) + " MiB of bf16 gradients) whatever " +
                 "DP is; Megatron-Core alone would use max(40M, 1M x dp) = " + str(mcore) +
                 ", so the last, exposed bucket is larger (docs/BRIDGE_RULES.md §10, §11.8)");
    }
    if (multi && interleaved && !co->opg_with_step)
      r.warn("overlap_param_gather_with_optimizer_step_off",
             "optimizer.overlap_param_gather_with_optimizer_step",
             "left false: Bridge would turn it on for PP > 1 with VP but keeps it off on purpose "
             "(a checkpointing issue); set it on comm_overlap to override");
    const std::string why =
        "Bridge's DP-overlap setup (distributed optimizer on, docs/BRIDGE_RULES.md §4.5)";
    const auto opt_str = [](const std::optional<std::int64_t>& v) {
      return v ? str(*v) : std::string("null");
    };
    if (ddp.overlap_grad_reduce)
      warn_overwrite(r, "ddp_field_overwritten", "ddp", "overlap_grad_reduce",
                     str(*ddp.overlap_grad_reduce), str(ogr), why);
    if (ddp.overlap_param_gather)
      warn_overwrite(r, "ddp_field_overwritten", "ddp", "overlap_param_gather",
                     str(*ddp.overlap_param_gather), str(opg), why);
    if (ddp.align_param_gather)
      warn_overwrite(r, "ddp_field_overwritten", "ddp", "align_param_gather",
                     str(*ddp.align_param_gather), str(apg), why);
    if (ddp.bucket_size)
      warn_overwrite(r, "ddp_field_overwritten", "ddp", "bucket_size", opt_str(ddp.bucket_size),
                     opt_str(bucket), why);
    if (opt.overlap_param_gather)
      warn_overwrite(r, "optimizer_field_overwritten", "optimizer", "overlap_param_gather",
                     str(*opt.overlap_param_gather), str(opg), why);
    if (opt.opg_with_step)
      warn_overwrite(r, "optimizer_field_overwritten", "optimizer",
                     "overlap_param_gather_with_optimizer_step", str(*opt.opg_with_step),
                     str(opg_step), why);
    d_ogr = ogr;
    d_opg = opg;
    d_apg = apg;
    d_bucket = bucket;
    o_opg = opg;
    o_opg_step = opg_step;
  } else if (co) {
    std::string dropped;
    const auto note = [&](const char* name, bool set) {
      if (set) dropped += (dropped.empty() ? "" : ", ") + std::string(name);
    };
    note("overlap_grad_reduce", co->overlap_grad_reduce.has_value());
    note("overlap_param_gather", co->overlap_param_gather.has_value());
    note("overlap_param_gather_with_optimizer_step", co->opg_with_step.has_value());
    note("align_param_gather", co->align_param_gather.has_value());
    note("bucket_size", co->bucket_size.has_value());
    if (!dropped.empty())
      r.warn("dp_overlap_settings_dropped", "comm_overlap",
             dropped +
                 " ignored: Bridge applies DP overlap settings only when "
                 "ddp.use_distributed_optimizer is true (docs/BRIDGE_RULES.md §4.3)");
    if (opt_udo && !ddp_udo)
      r.warn(
          "dp_defaults_skipped_optimizer_only", "optimizer.use_distributed_optimizer",
          "true but ddp.use_distributed_optimizer is not: Bridge's DP-overlap gate reads the "
          "ddp flag before the two are synced, so the distributed optimizer ends up on but "
          "overlap_grad_reduce, overlap_param_gather and bucket_size keep Megatron-Core "
          "defaults (docs/BRIDGE_RULES.md §1 step 6); set ddp.use_distributed_optimizer instead");
  }
  if (ddp_udo != opt_udo) {
    r.warn("distributed_optimizer_synced",
           ddp_udo ? "optimizer.use_distributed_optimizer" : "ddp.use_distributed_optimizer",
           "ddp.use_distributed_optimizer=" + str(ddp_udo) +
               " and optimizer.use_distributed_optimizer=" + str(opt_udo) +
               " differ: Bridge turns it on for both at validate()");
    ddp_udo = opt_udo = true;
  }
  if (d_opg != o_opg)
    r.warn("overlap_param_gather_mismatch", "optimizer.overlap_param_gather",
           "ddp says " + str(d_opg) + ", optimizer says " + str(o_opg) +
               ": Bridge's validate() forces the two to match");

  // ---- errors Megatron would raise later (docs/BRIDGE_RULES.md §5)
  // -------------------------------------
  if (m.sp && m.tp <= 1)
    r.error("sequence_parallel_without_tp", "model.sequence_parallel",
            "true with tensor_model_parallel_size " + str(m.tp) +
                ": Megatron-Core raises 'Cannot use sequence parallelism without tensor "
                "parallelism'");
  if (m.heads && *m.heads % m.tp != 0)
    r.error("heads_not_divisible_by_tp", "model.num_attention_heads",
            str(*m.heads) + " is not a multiple of tensor_model_parallel_size " + str(m.tp) +
                " (Megatron-Core TransformerConfig raises)");
  if (m.pp > 1 && !interleaved && overlap_p2p.value)
    r.error(
        "overlap_p2p_comm_without_interleaving", overlap_p2p.path,
        "true with pipeline_model_parallel_size " + str(m.pp) +
            " and no virtual pipeline: the non-interleaved 1F1B schedule raises 'Non-interleaved "
            "pipeline parallelism does not support overlapping p2p communication' at the "
            "first step (Bridge does not check, docs/BRIDGE_RULES.md §11.7)");
  if (interleaved && overlap_p2p.value && batch_p2p.value)
    r.error("overlap_and_batch_p2p_comm", batch_p2p.path,
            "overlap_p2p_comm and batch_p2p_comm are both true with the interleaved schedule: "
            "Megatron-Core raises 'Can not use both overlap_p2p_comm and batch_p2p_comm'");
  if (defer.value) {
    if (m.pp == 1)
      r.error("defer_embedding_wgrad_pp1", defer.path,
              "true with pipeline_model_parallel_size 1: Megatron-Core raises ValueError");
    if (!m.grad_accum_fusion)
      r.error("defer_embedding_wgrad_no_gradient_accumulation_fusion", defer.path,
              "true without model.gradient_accumulation_fusion (false when unset): "
              "Megatron-Core raises ValueError");
    if (limit.value < 0)
      r.error("defer_embedding_wgrad_negative_limit", limit.path,
              "wgrad_deferral_limit is " + str(limit.value) +
                  (co && !co->wgrad_deferral_limit ? " (unset: Bridge's default)" : "") +
                  " with defer_embedding_wgrad_compute on: Megatron-Core requires >= 0 (0 = defer "
                  "all micro-batches); Bridge's default is -1, so set it explicitly "
                  "(docs/BRIDGE_RULES.md "
                  "§11.6)");
  }
  if (ddp.num_buckets && d_bucket)
    r.error("num_buckets_with_bucket_size", "ddp.num_buckets",
            "set together with bucket_size " + str(*d_bucket) +
                (dp_gate && !co->bucket_size ? " (Bridge's DP-overlap default)" : "") +
                ": Megatron-Core asserts 'Cannot specify both num_buckets and bucket_size'");

  ordered_json te = nullptr;
  if (tp_overlap.value && !cfg_invalid) {
    const std::string cfg_path = cfg_src ? cfg_src->path : tp_overlap.path;
    const std::string prefix = cfg_src ? cfg_src->path.substr(0, cfg_src->path.rfind('.') + 1) : "";
    try {
      std::vector<diagnostic> ignored;
      const tp_overlap_layer typed =
          tp_cfg.is_null() ? tp_overlap_layer{}
                           : parse_tp_overlap_layer(json::parse(tp_cfg.dump()), file, "", ignored);
      const slot_overlap_map eff =
          te_effective_overlap(tp_cfg.is_null() ? nullptr : &typed, static_cast<int>(m.tp));
      te = te_effective_to_json(eff);
      if (!m.fp8)
        for (const auto& [slot, c] : eff)
          if (c.atomic_gemm)
            r.error("te_userbuffers_invalid", cfg_path + "." + slot + ".atomic_gemm",
                    "Transformer Engine rejects this: atomic GEMM overlap is supported only for "
                    "FP8 GEMMs and model.fp8 is unset");
    } catch (const config_error& e) {
      r.errors.push_back({diag_code::te_userbuffers_invalid, file + ": " + prefix + e.what()});
    }
  }

  // ---- launch environment: PerfEnvPlugin generation (B) (docs/BRIDGE_RULES.md §8 B, §9)
  // ---------------
  const bool sm100 = is_sm100_or_newer(plat.gpu);
  if (!plat.gpu)
    r.warn("platform_gpu_defaulted", "platform.gpu",
           "not given: treated as Hopper or earlier (PerfEnvPlugin's default "
           "gpu_sm100_or_newer=False)");
  const bool deep =
      launch.dispatcher && (*launch.dispatcher == "deepep" || *launch.dispatcher == "hybridep");
  const bool tp_or_cp = m.tp > 1 || m.cp > 1;
  int cdmc = deep ? 32 : 8;
  if (sm100) {
    if (tp_or_cp && (dp > 1 || m.pp > 1)) cdmc = 32;
  } else if (tp_or_cp && !launch.a2a_overlap) {
    cdmc = 1;  // overrides deepep's 32 on Hopper
  }
  // Generations (C) and (D): 32 on any SM100 GPU, whatever the layout.
  int cdmc_later = deep ? 32 : 8;
  if (sm100)
    cdmc_later = 32;
  else if (tp_or_cp && !launch.a2a_overlap)
    cdmc_later = 1;
  if (cdmc != cdmc_later)
    r.warn("cdmc_generations_differ", "env.CUDA_DEVICE_MAX_CONNECTIONS",
           str(std::int64_t{cdmc}) +
               " under PerfEnvPlugin generation (B), but the perf scripts "
               "(C) and today's recipes (D) give " +
               str(std::int64_t{cdmc_later}) +
               " on this GPU; Bridge training never checks it (docs/BRIDGE_RULES.md §8, §11.11)");
  if (!sm100 && tp_overlap.value && (d_ogr || d_opg))
    r.warn("cdmc_tp_dp_conflict", "env.CUDA_DEVICE_MAX_CONNECTIONS",
           "TP overlap on Hopper wants 1 (so the userbuffers comm kernel launches ahead of the "
           "persistent GEMM) while DP overlap (" +
               std::string(d_ogr ? "grad reduce-scatter" : "") + (d_ogr && d_opg ? ", " : "") +
               (d_opg ? "param all-gather" : "") +
               " on their own streams) wants more than one hardware queue; this run gets " +
               str(std::int64_t{cdmc}) +
               ". Recent TE orders UB launches with an event when CDMC > 1 on CUDA >= 12.3 "
               "(docs/BRIDGE_RULES.md §6.3, §8 E)");

  ordered_json env = ordered_json::object();
  env["CUDA_DEVICE_MAX_CONNECTIONS"] = std::to_string(cdmc);
  if (launch.enable_ln_margin) {
    env["NVTE_FWD_LAYERNORM_SM_MARGIN"] = std::to_string(launch.ln_margin);
    env["NVTE_BWD_LAYERNORM_SM_MARGIN"] = std::to_string(launch.ln_margin);
  }
  if (launch.pp_chunksize) {
    if (m.pp > 1)
      env["NCCL_P2P_NET_CHUNKSIZE"] = std::to_string(*launch.pp_chunksize);
    else
      r.warn("nccl_chunksize_ignored", "launcher.nccl_pp_comm_chunksize",
             "given but pipeline_model_parallel_size is 1: the launcher sets "
             "NCCL_P2P_NET_CHUNKSIZE only with PP > 1");
  }

  // ---- output ------------------------------------------------------------------------------
  ordered_json out;
  ordered_json& mo = out["model"];
  mo["tp_comm_overlap"] = tp_overlap.value;
  mo["tp_comm_overlap_cfg"] = tp_cfg;
  mo["tp_comm_bootstrap_backend"] = backend ? ordered_json(*backend) : ordered_json();
  mo["overlap_p2p_comm"] = overlap_p2p.value;
  mo["batch_p2p_comm"] = batch_p2p.value;
  mo["defer_embedding_wgrad_compute"] = defer.value;
  mo["wgrad_deferral_limit"] = limit.value;
  ordered_json& d = out["ddp"];
  d["use_distributed_optimizer"] = ddp_udo;
  d["overlap_grad_reduce"] = d_ogr;
  d["overlap_param_gather"] = d_opg;
  d["align_param_gather"] = d_apg;
  d["bucket_size"] = d_bucket ? ordered_json(*d_bucket) : ordered_json();
  ordered_json& o = out["optimizer"];
  o["use_distributed_optimizer"] = opt_udo;
  o["overlap_param_gather"] = o_opg;
  o["overlap_param_gather_with_optimizer_step"] = o_opg_step;
  out["env"] = env;
  ordered_json& dv = out["derived"];
  dv["data_parallel_size"] = dp;
  dv["num_gpus"] = world;
  dv["gpu"] = plat.gpu ? ordered_json(*plat.gpu) : ordered_json();
  dv["gpu_sm100_or_newer"] = sm100;
  dv["interleaved_pipeline"] = interleaved;
  dv["comm_overlap_setup"] = co.has_value();
  dv["dp_overlap_gate"] = dp_gate;
  // What Megatron-Core's DDP actually buckets with (docs/BRIDGE_RULES.md §10).
  if (!d_ogr)
    dv["effective_bucket_size"] = nullptr;
  else
    dv["effective_bucket_size"] =
        d_bucket ? *d_bucket : std::max<std::int64_t>(40'000'000, 1'000'000 * dp);
  dv["te_userbuffers"] = te;
  const auto list = [](const std::vector<diagnostic>& ds) {
    ordered_json a = ordered_json::array();
    for (const auto& x : ds) a.push_back({{"code", x.name()}, {"message", x.message}});
    return a;
  };
  out["warnings"] = list(r.warnings);
  out["errors"] = list(r.errors);
  return out;
}

bool resolve_has_errors(const ordered_json& resolved) {
  const auto it = resolved.find("errors");
  return it != resolved.end() && it->is_array() && !it->empty();
}

}  // namespace ob
