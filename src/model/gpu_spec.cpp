#include "model/gpu_spec.hpp"

#include <filesystem>
#include <tuple>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "base/json_util.hpp"
#include "model/collective_traits.hpp"

namespace ob {

double gpu_spec::peak_tflops(dtype t) const {
  switch (t) {
    case dtype::bf16:
      return peak_tflops_bf16;
    case dtype::fp16:
      return peak_tflops_fp16;
    case dtype::fp8:
      return peak_tflops_fp8;
    case dtype::mxfp8:
      return peak_tflops_mxfp8;
    case dtype::nvfp4:
      return peak_tflops_nvfp4;
    case dtype::fp32:
      return 0;  // no fp32 GEMMs are modelled
  }
  return peak_tflops_bf16;
}

double gpu_spec::gemm_efficiency(dtype t) const {
  switch (t) {
    case dtype::bf16:
      return gemm_efficiency_bf16;
    case dtype::fp16:
      return gemm_efficiency_fp16;
    case dtype::fp8:
      return gemm_efficiency_fp8;
    case dtype::mxfp8:
      return gemm_efficiency_mxfp8;
    case dtype::nvfp4:
      return gemm_efficiency_nvfp4;
    case dtype::fp32:
      return 0;
  }
  return gemm_efficiency_bf16;
}

double gpu_spec::math_efficiency(elementwise_math m, bool dropout) const {
  const double with_mask = dropout ? flash_attention_dropout_rate : 1;
  switch (m) {
    case elementwise_math::gemm:
      return gemm_efficiency_bf16;
    case elementwise_math::flash_attention_fwd:
      return flash_attention_efficiency_fwd * with_mask;
    case elementwise_math::flash_attention_bwd:
      return flash_attention_efficiency_bwd * with_mask;
    case elementwise_math::flash2_attention_fwd:
    case elementwise_math::flash2_attention_bwd:
      if (flash2_efficiency_fwd <= 0)
        throw config_error("configs/gpus/" + name +
                           ".json: sim.flash_attention_efficiency.flash2 is missing (a model with "
                           "attention_backend flash2 needs FlashAttention-2's rates on this GPU)");
      return (m == elementwise_math::flash2_attention_fwd ? flash2_efficiency_fwd
                                                          : flash2_efficiency_bwd) *
             with_mask;
    case elementwise_math::fp8_attention_fwd:
      return fp8_attention_rate(fp8_attention_efficiency_fwd, "fp8") * with_mask;
    case elementwise_math::fp8_attention_bwd:
      return fp8_attention_rate(fp8_attention_efficiency_bwd, "fp8") * with_mask;
    case elementwise_math::mxfp8_attention_fwd:
      return fp8_attention_rate(mxfp8_attention_efficiency_fwd, "mxfp8") * with_mask;
    case elementwise_math::mxfp8_attention_bwd:
      return fp8_attention_rate(mxfp8_attention_efficiency_bwd, "mxfp8") * with_mask;
  }
  return gemm_efficiency_bf16;
}

double gpu_spec::fp8_attention_rate(double rate, const char* key) const {
  if (rate <= 0)
    throw config_error("configs/gpus/" + name + ".json: sim.flash_attention_efficiency." + key +
                       " is missing (fp8 dot-product attention needs cuDNN's " + key +
                       " attention rates on this GPU)");
  return rate;
}

void gpu_spec::require(dtype t, const std::string& field) const {
  if (!supports(t))
    throw config_error(field + ": " + display_name + " has no " + std::string(to_string(t)) +
                       " tensor cores (configs/gpus/" + name + ".json has no peak for it)");
}

const char* to_string(nccl_protocol p) {
  switch (p) {
    case nccl_protocol::ll:
      return "LL";
    case nccl_protocol::ll128:
      return "LL128";
    case nccl_protocol::simple:
      return "Simple";
  }
  return "Simple";
}

int gpu_spec::default_ctas(coll_op op) const {
  const auto it = nccl_default_ctas.find(traits_of(op).ctas_key);
  return it == nccl_default_ctas.end() ? nccl_ctas_p2p : it->second;
}

namespace {

// Each value is {"value": X, "source": "..."}; the source is mandatory so no number is unowned.
json_object sourced(const json_object& obj, const std::string& key) {
  json_object v = obj.get_object(key);
  const std::string src = v.get_string("source");
  if (src.empty()) v.fail("source", "must name where the value comes from");
  return v;
}
// No GPU figure comes near 1e9 (TFLOP/s, GB/s, µs); beyond it the model's times overflow.
constexpr double max_figure = 1e9;

double sourced_positive(const json_object& obj, const std::string& key) {
  json_object v = sourced(obj, key);
  const double x = v.get_positive_number("value");
  if (x > max_figure)
    v.fail("value",
           "expected a positive number up to 1e9, got " + describe_json(v.get_raw("value")));
  v.finish();
  return x;
}
double sourced_fraction(const json_object& obj, const std::string& key) {
  json_object v = sourced(obj, key);
  const double x = v.get_positive_number("value");
  if (x > 1.0)
    v.fail("value", "expected a fraction in (0, 1], got " + describe_json(v.get_raw("value")));
  v.finish();
  return x;
}
double sourced_factor(const json_object& obj, const std::string& key) {
  json_object v = sourced(obj, key);
  const double x = v.get_number("value");
  if (!(x >= 1.0 && x <= 1e3))
    v.fail("value",
           "expected a slowdown factor from 1 to 1000, got " + describe_json(v.get_raw("value")));
  v.finish();
  return x;
}
int sourced_count(const json_object& obj, const std::string& key) {
  json_object v = sourced(obj, key);
  const auto x = v.get_int_in("value", 1, 1 << 20);  // SMs, tile sides, CTAs: never near it
  v.finish();
  return static_cast<int>(x);
}

constexpr const char* protocol_keys[nccl_protocol_count] = {"ll", "ll128", "simple"};

// {"ll": {...}, "ll128": {...}, "simple": {...}} into one member of each protocol's constants.
void read_per_protocol(const json_object& parent, const std::string& key, gpu_spec& g,
                       double nccl_protocol_constants::*member) {
  json_object obj = parent.get_object(key);
  for (int p = 0; p < nccl_protocol_count; ++p)
    g.nccl_proto[p].*member = sourced_positive(obj, protocol_keys[p]);
  obj.finish();
}

void read_datasheet(const json_object& top, gpu_spec& g) {
  g.compute_capability_major = sourced_count(top, "compute_capability_major");
  g.sm_count = sourced_count(top, "sm_count");
  json_object peak = top.get_object("peak_tflops");
  g.peak_tflops_bf16 = sourced_positive(peak, "bf16");
  g.peak_tflops_fp16 = sourced_positive(peak, "fp16");
  // A GPU without FP8 tensor cores (A100) has no fp8 entry; fp8 runs on it are refused.
  if (peak.has("fp8")) g.peak_tflops_fp8 = sourced_positive(peak, "fp8");
  // Blackwell's block-scaled formats; without an entry such GEMMs are refused.
  if (peak.has("mxfp8")) g.peak_tflops_mxfp8 = sourced_positive(peak, "mxfp8");
  if (peak.has("nvfp4")) g.peak_tflops_nvfp4 = sourced_positive(peak, "nvfp4");
  peak.finish();
  g.hbm_gbps = sourced_positive(top, "hbm_gbps");
  // What the memory model checks a case against (docs/MEMORY.md); without it nothing is refused.
  if (top.has("hbm_gib")) g.hbm_gib = sourced_positive(top, "hbm_gib");
  g.nvlink_gbps = sourced_positive(top, "nvlink_gbps");
  g.nic_gbps = sourced_positive(top, "nic_gbps");
  json_object tile = top.get_object("gemm_tile");
  g.gemm_tile_m = sourced_count(tile, "m");
  g.gemm_tile_n = sourced_count(tile, "n");
  tile.finish();
}

void read_latencies(const json_object& top, gpu_spec& g) {
  g.launch_us = sourced_positive(top, "launch_us");
  g.nccl_launch_us = sourced_positive(top, "nccl_launch_us");
  g.event_us = sourced_positive(top, "event_us");
  g.graph_node_us = sourced_positive(top, "graph_node_us");
  g.eager_op_us = sourced_positive(top, "eager_op_us");
  g.c10d_call_us = sourced_positive(top, "c10d_call_us");
  g.host_sync_us = sourced_positive(top, "host_sync_us");
  g.cross_queue_event_us = sourced_positive(top, "cross_queue_event_us");
  g.max_pending_launches = sourced_count(top, "max_pending_launches");
  read_per_protocol(top, "nccl_step_us", g, &nccl_protocol_constants::base_us);
}

// GEMM model v2 (docs/ARCHITECTURE.md §5.1, item 4).
void read_gemm_v2(const json_object& sim, gpu_spec& g) {
  g.gemm_setup_us = sourced_positive(sim, "gemm_setup_us");
  g.gemm_unit_overhead_us = sourced_positive(sim, "gemm_unit_overhead_us");
  g.gemm_splitk_fixup_us = sourced_positive(sim, "gemm_splitk_fixup_us");
  g.gemm_splitk_min_k = sourced_count(sim, "gemm_splitk_min_k");
  g.gemm_splitk_max = sourced_count(sim, "gemm_splitk_max");
  g.gemm_mem_overlap_loss = sourced_fraction(sim, "gemm_mem_overlap_loss");
}

// Collective model v2 (docs/ARCHITECTURE.md §5.1, items 6-7): NCCL's protocols, its channel
// rule, its chunk pipeline and NVLS where the GPU has it.
void read_nccl_v2(const json_object& sim, gpu_spec& g) {
  read_per_protocol(sim, "nccl_hop_us", g, &nccl_protocol_constants::hop_us);
  read_per_protocol(sim, "nccl_protocol_bw", g, &nccl_protocol_constants::bw_fraction);
  read_per_protocol(sim, "nccl_thread_bytes", g, &nccl_protocol_constants::thread_bytes);
  g.nccl_threads = sourced_count(sim, "nccl_threads");
  g.nccl_fill_fraction = sourced_positive(sim, "nccl_fill_fraction");
  g.nccl_fill_bytes = sourced_positive(sim, "nccl_fill_bytes");
  if (sim.has("nccl_symmetric_latency_factor"))
    g.nccl_symmetric_latency_factor = sourced_fraction(sim, "nccl_symmetric_latency_factor");
  if (!sim.has("nvls")) return;  // no NVLink SHARP (A100)
  json_object nvls = sim.get_object("nvls");
  g.nvls_latency_us = sourced_positive(nvls, "latency_us");
  g.nvls_bw_factor = sourced_positive(nvls, "bw_factor");
  nvls.finish();
}

// EP dispatchers' protocols (docs/MOE.md §7), optional: a GPU file without them costs a flex
// dispatcher as an NCCL all-to-all on its SMs.
void read_ep_dispatch(const json_object& sim, gpu_spec& g) {
  if (!sim.has("ep_dispatch")) return;
  json_object all = sim.get_object("ep_dispatch");
  all.get_string("comment", "");
  const auto read = [&](const char* key, ep_dispatch_constants& k) {
    if (!all.has(key)) return;
    json_object o = all.get_object(key);
    k.default_sms = sourced_count(o, "default_sms");
    k.sm_gbps = sourced_positive(o, "sm_gbps");
    if (o.has("token_sm_us")) k.token_sm_us = sourced_positive(o, "token_sm_us");
    if (o.has("combine_token_sm_us"))
      k.combine_token_sm_us = sourced_positive(o, "combine_token_sm_us");
    k.dispatch_us = sourced_positive(o, "dispatch_us");
    k.combine_us = sourced_positive(o, "combine_us");
    o.finish();
  };
  read("deepep", g.deepep);
  read("deepep_low_latency", g.deepep_low_latency);
  read("hybridep", g.hybridep);
  all.finish();
}

// HBM interference between GEMMs and communication (docs/ARCHITECTURE.md §5.1, item 8).
void read_interference(const json_object& sim, gpu_spec& g) {
  json_object hbm = sim.get_object("hbm_interference");
  g.gemm_hbm_traffic = sourced_factor(hbm, "gemm_traffic");
  g.comm_hbm_traffic = sourced_factor(hbm, "comm_traffic");
  g.gemm_hbm_sensitivity = sourced_positive(hbm, "gemm_sensitivity");
  g.comm_hbm_sensitivity = sourced_positive(hbm, "comm_sensitivity");
  hbm.finish();
}

// The simulator's calibration constants (docs/ARCHITECTURE.md §5.1).
void read_sim_constants(const json_object& top, gpu_spec& g) {
  json_object sim = top.get_object("sim");
  json_object eff = sim.get_object("gemm_efficiency");
  g.gemm_efficiency_bf16 = sourced_fraction(eff, "bf16");
  g.gemm_efficiency_fp16 = sourced_fraction(eff, "fp16");
  if (g.peak_tflops_fp8 > 0) g.gemm_efficiency_fp8 = sourced_fraction(eff, "fp8");
  if (g.peak_tflops_mxfp8 > 0) g.gemm_efficiency_mxfp8 = sourced_fraction(eff, "mxfp8");
  if (g.peak_tflops_nvfp4 > 0) g.gemm_efficiency_nvfp4 = sourced_fraction(eff, "nvfp4");
  eff.finish();
  g.small_tile_efficiency = sourced_fraction(sim, "small_tile_efficiency");
  read_gemm_v2(sim, g);
  read_interference(sim, g);
  g.nccl_channel_gbps = sourced_positive(sim, "nccl_channel_gbps");
  g.nccl_link_efficiency = sourced_fraction(sim, "nccl_link_efficiency");
  json_object ctas = sim.get_object("nccl_default_ctas");
  g.nccl_ctas_p2p = sourced_count(ctas, "p2p");
  g.nccl_default_ctas.emplace("p2p", g.nccl_ctas_p2p);
  for (const collective_traits& t : all_collectives())
    if (!g.nccl_default_ctas.contains(t.ctas_key))
      g.nccl_default_ctas.emplace(t.ctas_key, sourced_count(ctas, std::string(t.ctas_key)));
  ctas.finish();
  read_nccl_v2(sim, g);
  read_ep_dispatch(sim, g);
  g.copy_engine_gbps = sourced_positive(sim, "copy_engine_gbps");
  g.elementwise_hbm_efficiency = sourced_fraction(sim, "elementwise_hbm_efficiency");
  json_object flash = sim.get_object("flash_attention_efficiency");
  g.flash_attention_efficiency_fwd = sourced_fraction(flash, "fwd");
  g.flash_attention_efficiency_bwd = sourced_fraction(flash, "bwd");
  g.flash_attention_dropout_rate = sourced_fraction(flash, "dropout");
  if (auto fa2 = flash.get_optional_object("flash2")) {
    g.flash2_efficiency_fwd = sourced_fraction(*fa2, "fwd");
    g.flash2_efficiency_bwd = sourced_fraction(*fa2, "bwd");
    fa2->finish();
  }
  for (const auto& [key, fwd, bwd] :
       {std::tuple{"fp8", &g.fp8_attention_efficiency_fwd, &g.fp8_attention_efficiency_bwd},
        {"mxfp8", &g.mxfp8_attention_efficiency_fwd, &g.mxfp8_attention_efficiency_bwd}})
    if (auto low = flash.get_optional_object(key)) {
      *fwd = sourced_fraction(*low, "fwd");
      *bwd = sourced_fraction(*low, "bwd");
      low->finish();
    }
  flash.finish();
  g.sustained_clock_factor = sourced_fraction(sim, "sustained_clock_factor");
  sim.finish();
}

}  // namespace

gpu_spec at_sustained_clock(gpu_spec g) {
  const double f = g.sustained_clock_factor;
  g.gemm_efficiency_bf16 *= f;
  g.gemm_efficiency_fp16 *= f;
  g.gemm_efficiency_fp8 *= f;
  g.gemm_efficiency_mxfp8 *= f;
  g.gemm_efficiency_nvfp4 *= f;
  g.flash_attention_efficiency_fwd *= f;
  g.flash_attention_efficiency_bwd *= f;
  g.flash2_efficiency_fwd *= f;
  g.flash2_efficiency_bwd *= f;
  g.fp8_attention_efficiency_fwd *= f;
  g.fp8_attention_efficiency_bwd *= f;
  g.mxfp8_attention_efficiency_fwd *= f;
  g.mxfp8_attention_efficiency_bwd *= f;
  return g;
}

gpu_spec load_gpu_spec(const std::string& ref, const std::string& field) {
  const std::string path = find_config("gpus", ref, field);
  const json doc = load_json_file(path);
  const json_object top(doc, path, "");
  gpu_spec g;
  g.name = std::filesystem::path(path).stem().string();
  top.get_string("comment", "");
  g.display_name = top.get_string("display_name");
  read_datasheet(top, g);
  read_latencies(top, g);
  read_sim_constants(top, g);
  top.finish();
  return g;
}

std::string gpu_family(std::string_view gpu) { return std::string(gpu.substr(0, gpu.find('_'))); }

const gpu_family_info* find_gpu_family(std::string_view gpu_family_or_name) {
  const std::string f = gpu_family(gpu_family_or_name);
  for (const gpu_family_info& g : gpu_families)
    if (g.family == f) return &g;
  return nullptr;
}

bool is_sm100_or_newer(std::string_view gpu_family_or_name) {
  const gpu_family_info* g = find_gpu_family(gpu_family_or_name);
  return g && g->compute_capability_major >= 10;
}

std::vector<std::string> gpu_family_names() {
  std::vector<std::string> out;
  for (const gpu_family_info& g : gpu_families) out.emplace_back(g.family);
  return out;
}

}  // namespace ob
