#pragma once
// Megatron-Bridge userbuffers presets (configs/presets/userbuffers/*.json) and what Transformer
// Engine makes of a TP-overlap config (docs/BRIDGE_RULES.md §2.4, §6, §7).
//
// A preset file holds metadata (dtype, gpu, hidden, tp, cp, mbs, seq_length) and "gemms": the
// 10 slots of Bridge's TransformerLayerTPOverlapCfg, each an object with exactly the fields of
// its Bridge dataclass, or null where Bridge has None (the LoRA presets):
//   bulk:          method, num_sm, cga_size, set_sm_margin
//   pipeline:      method, num_sm, cga_size, num_splits, set_sm_margin, fp8_buf, atomic_gemm
//   ring_exchange: method, num_sm, cga_size, set_sm_margin, fp8_buf, atomic_gemm, aggregate
// PipelineOverlapCfg's unset fp8_buf default is the 1-tuple (False,), which Python treats as
// true; the files spell it as the string "(False,)" so the data stays faithful, and every reader
// must go through fp8_buf_truthy().
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json_util.hpp"
#include "model/gpu_spec.hpp"
#include "model/overlap_cfg.hpp"
#include "spec/diagnostics.hpp"

namespace ob {

// The 10 GEMM slots of Bridge's TransformerLayerTPOverlapCfg, in the order presets and `resolve`
// print them. proj_wgrad and fc2_wgrad have no slot: TE always runs them "external".
inline constexpr std::string_view preset_gemm_slots[] = {
    "qkv_fprop", "qkv_dgrad", "qkv_wgrad", "proj_fprop", "proj_dgrad",
    "fc1_fprop", "fc1_dgrad", "fc1_wgrad", "fc2_fprop",  "fc2_dgrad"};

// How preset files (and `resolve` output) spell PipelineOverlapCfg's unset fp8_buf default.
inline constexpr std::string_view fp8_buf_tuple_marker = "(False,)";

// One Bridge per-GEMM dataclass instance (BulkOverlapCfg, PipelineOverlapCfg or
// RingExchangeOverlapCfg). Fields the class lacks keep their zero value and are not printed.
struct tp_overlap_gemm {
  overlap_method method = overlap_method::bulk;  // bulk | pipeline | ring_exchange
  int num_sm = 0;
  int cga_size = 0;
  int num_splits = 0;  // pipeline only
  bool set_sm_margin = false;
  bool fp8_buf = false;        // pipeline, ring_exchange: the value's truthiness
  bool fp8_buf_tuple = false;  // pipeline: the value was the (False,) tuple default
  bool atomic_gemm = false;    // pipeline, ring_exchange
  bool aggregate = false;      // ring_exchange only
};

struct tp_overlap_slot {
  std::string name;                    // one of preset_gemm_slots
  std::optional<tp_overlap_gemm> cfg;  // nullopt: None in Bridge
};
// A whole TransformerLayerTPOverlapCfg: the 10 slots in preset_gemm_slots order.
using tp_overlap_layer = std::vector<tp_overlap_slot>;

struct userbuffers_preset {
  std::string name;  // file stem: userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048
  std::string file;
  std::string comment, source, model_note, used_by;
  std::string dtype;  // bf16 | fp8
  std::string gpu;    // h100 | b200 (Bridge reuses the b200 presets on b300/gb200/gb300)
  int hidden = 0, tp = 0, cp = 1, mbs = 0, seq_length = 0;
  tp_overlap_layer gemms;
  std::vector<diagnostic> warnings;  // fp8_buf_tuple_truthy
};

// A preset by name (configs/presets/userbuffers/<name>.json) or by path. An unknown name is a
// config_error naming `field` and listing the known names; a malformed file is a config_error
// naming the file and JSON path. Both exit 2.
userbuffers_preset load_preset(const std::string& name_or_path,
                               const std::string& field = "preset");
// Names of the presets in configs/presets/userbuffers, sorted.
std::vector<std::string> list_presets();
std::vector<userbuffers_preset> load_all_presets();

// The preset Megatron-Bridge's recipes use for a shape: the one tuned for exactly this dtype,
// GPU family, hidden size, TP, CP, micro-batch and sequence; else one for the same dtype, GPU,
// hidden size, TP and CP; else none (Transformer Engine's defaults apply).
std::optional<userbuffers_preset> preset_for_shape(const std::string& dtype, const std::string& gpu,
                                                   std::int64_t hidden, int tp, int cp,
                                                   std::int64_t mbs, std::int64_t seq);

// The preset as ordered JSON (name first, then the file's fields), for `presets --show`.
ordered_json preset_to_json(const userbuffers_preset& p);
// A human table: name, dtype, gpu, hidden, tp, cp, mbs, seq; one row per preset.
std::string format_preset_table(const std::vector<userbuffers_preset>& presets);
// format_preset_table(load_all_presets()), for `presets`.
std::string format_preset_list();

// Parses an object keyed by GEMM slot (a preset's "gemms", or an inline tp_comm_overlap_cfg in
// a Bridge config). Slots may be absent or null (None). Each GEMM object must carry `method`;
// other fields missing from it take their dataclass default, and a dataclass without a default
// makes the field required. A fp8_buf of "(False,)" adds one fp8_buf_tuple_truthy warning.
tp_overlap_layer parse_tp_overlap_layer(const json& gemms, const std::string& file,
                                        const std::string& path, std::vector<diagnostic>& warnings);
// One GEMM as its dataclass fields (the order the preset files use).
ordered_json tp_overlap_gemm_to_json(const tp_overlap_gemm& g);
// What Bridge hands TE (docs/BRIDGE_RULES.md §4.2): `dataclasses.asdict` with top-level None slots
// dropped.
ordered_json expand_tp_overlap_layer(const tp_overlap_layer& layer);

// fp8_buf as Python would test it: a bool, or the "(False,)" marker (a non-empty tuple: true).
bool fp8_buf_truthy(const json& v);

// What Transformer Engine's initialize_ub runs for each of the 12 slots in gemm_slots, given the
// layer config Bridge hands it (`layer`; nullptr for "no preset", TE's defaults) and the TP size
// (docs/BRIDGE_RULES.md §6.2, §6.3):
//  - a slot the config leaves out (or None) gets TE's default method: ring_exchange (1 SM, cga
//    1, no SM margin), or bulk/pipeline (16 SMs, cga 2, SM margin, 4 splits); proj_wgrad and
//    fc2_wgrad are external;
//  - a slot in the config is TE's default updated by its fields; ring_exchange always splits
//    into tp_size chunks; atomic_gemm is forced off for bulk and external;
//  - fp8_buf is recomputed: true for TE's all-gather GEMMs, else the config's fp8_buf
//    truthiness if the slot is in TE's pipeline list (proj_fprop, fc2_fprop, plus moved dgrads);
//  - qkv_dgrad/fc1_dgrad with a method other than bulk become a reduce-scatter of the dgrad
//    output with that method (TE's dgrad_reduce_scatter_overlap). They keep that method in the
//    map and te_is_reduce_scatter() reports them as reduce-scatters. The paired qkv_wgrad /
//    fc1_wgrad is reported as `none`: TE still registers a default bulk buffer for it, but the
//    bulk all-gather/reduce-scatter pair it would overlap is replaced by the dgrad
//    reduce-scatter, so no communication runs alongside it;
//  - proj_wgrad/fc2_wgrad ride on proj_dgrad/fc2_dgrad's ring exchange; when that GEMM is not
//    ring_exchange they are reported as `none`.
// What TE itself rejects throws config_error naming the slot: "pipeline" for an all-gather GEMM,
// a non-bulk dgrad whose wgrad is also in the config, an atomic ring-exchange GEMM whose AG/RS
// partner differs. TE's "atomic GEMM needs FP8" rule depends on the run's precision and is left
// to the caller.
slot_overlap_map te_effective_overlap(const tp_overlap_layer* layer, int tp_size);
// TE's is_reduce_scatter for a slot of a te_effective_overlap() map: proj_fprop, fc2_fprop and
// the bulk qkv_wgrad/fc1_wgrad, or a qkv_dgrad/fc1_dgrad moved off bulk.
bool te_is_reduce_scatter(std::string_view slot, const slot_overlap_map& effective);
// The map as JSON keyed by slot in gemm_slots order (method, reduce_scatter, num_sm, cga_size,
// num_splits, set_sm_margin, fp8_buf, atomic_gemm, aggregate).
ordered_json te_effective_to_json(const slot_overlap_map& effective);

// gpu_family and is_sm100_or_newer: model/gpu_spec.hpp (the one table of GPU families).

// What a run has, for comparison with the shape a preset was tuned for. Unset fields are not
// compared.
struct preset_run_shape {
  std::optional<std::int64_t> hidden, seq_length, micro_batch;
  std::int64_t tp = 1, cp = 1;
  std::string dtype = "bf16";      // the GEMM input type the run uses
  std::string dtype_note;          // appended to the run's dtype: " (model.fp8 set)"
  std::optional<std::string> gpu;  // a GPU name: platform.gpu, or a GPU file's name
};
// One message per field where the preset was tuned for something else (Bridge never compares
// them, docs/BRIDGE_RULES.md §11.2). `resolve` and `run` both use it; callers add the location
// and the preset_mismatch code.
std::vector<std::string> preset_mismatches(const userbuffers_preset& p,
                                           const preset_run_shape& run);

}  // namespace ob
