#include "spec/presets.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <set>
#include <sstream>

#include "base/config_paths.hpp"
#include "base/error.hpp"

namespace ob {
namespace {

constexpr const char* presets_kind = "presets/userbuffers";

// Bounds well above any real value; they only stop a typo from overflowing an int.
constexpr std::int64_t max_small_int = 1 << 20;

std::string join_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

int small_positive_int(const json_object& o, const std::string& key) {
  const std::int64_t v = o.get_positive_int(key);
  if (v > max_small_int)
    o.fail(key, "expected at most " + std::to_string(max_small_int) + ", got " + std::to_string(v));
  return static_cast<int>(v);
}

int small_positive_int(const json_object& o, const std::string& key, int fallback) {
  if (!o.has(key)) return fallback;
  return small_positive_int(o, key);
}

// The Bridge dataclass behind each method, for messages.
const char* class_name(overlap_method m) {
  switch (m) {
    case overlap_method::bulk:
      return "BulkOverlapCfg";
    case overlap_method::pipeline:
      return "PipelineOverlapCfg";
    case overlap_method::ring_exchange:
      return "RingExchangeOverlapCfg";
    default:
      return "?";
  }
}

const std::vector<std::string>& class_fields(overlap_method m) {
  static const std::vector<std::string> bulk = {"method", "num_sm", "cga_size", "set_sm_margin"};
  static const std::vector<std::string> pipeline = {
      "method", "num_sm", "cga_size", "num_splits", "set_sm_margin", "fp8_buf", "atomic_gemm"};
  static const std::vector<std::string> ring = {
      "method", "num_sm", "cga_size", "set_sm_margin", "fp8_buf", "atomic_gemm", "aggregate"};
  return m == overlap_method::bulk ? bulk : m == overlap_method::pipeline ? pipeline : ring;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// fp8_buf: a bool, or the "(False,)" marker. Returns {truthy, was_tuple}.
std::pair<bool, bool> read_fp8_buf(const json_object& o, bool fallback, bool fallback_tuple) {
  if (!o.has("fp8_buf")) return {fallback, fallback_tuple};
  const json& v = o.get_raw("fp8_buf");
  if (v.is_boolean()) return {v.get<bool>(), false};
  if (v.is_string() && v.get<std::string>() == fp8_buf_tuple_marker) return {true, true};
  o.fail("fp8_buf", "expected true, false or \"" + std::string(fp8_buf_tuple_marker) +
                        "\" (the tuple default), got " + describe_json(v));
}

// One GEMM object. `all_fields` (preset files) makes every field of the class required, so the
// data stays field-for-field; otherwise missing fields take their dataclass default.
tp_overlap_gemm parse_gemm(const json& v, const std::string& file, const std::string& path,
                           bool all_fields) {
  const json_object o(v, file, path);
  tp_overlap_gemm g;
  g.method = parse_enum<overlap_method>(o.get_enum("method", {"bulk", "pipeline", "ring_exchange"}),
                                        o.where("method"));
  const auto& fields = class_fields(g.method);
  if (all_fields)
    for (const auto& f : fields)
      if (!o.has(f))
        o.fail(f, std::string("required field of ") + class_name(g.method) +
                      " is missing (preset files list every field)");
  switch (g.method) {
    case overlap_method::bulk:
      // BulkOverlapCfg has no defaults but `method`.
      g.num_sm = small_positive_int(o, "num_sm");
      g.cga_size = small_positive_int(o, "cga_size");
      g.set_sm_margin = o.get_bool("set_sm_margin");
      break;
    case overlap_method::pipeline: {
      g.num_sm = small_positive_int(o, "num_sm");
      g.cga_size = small_positive_int(o, "cga_size");
      g.num_splits = small_positive_int(o, "num_splits");
      g.set_sm_margin = o.get_bool("set_sm_margin");
      const auto [fp8, tuple] = read_fp8_buf(o, true, true);
      g.fp8_buf = fp8;
      g.fp8_buf_tuple = tuple;
      g.atomic_gemm = o.get_bool("atomic_gemm", false);
      break;
    }
    case overlap_method::ring_exchange: {
      g.num_sm = small_positive_int(o, "num_sm", 1);
      g.cga_size = small_positive_int(o, "cga_size", 1);
      g.set_sm_margin = o.get_bool("set_sm_margin", false);
      const auto [fp8, tuple] = read_fp8_buf(o, false, false);
      g.fp8_buf = fp8;
      g.fp8_buf_tuple = tuple;
      g.atomic_gemm = o.get_bool("atomic_gemm", false);
      g.aggregate = o.get_bool("aggregate", false);
      break;
    }
    default:
      break;
  }
  for (const auto& k : o.unused_keys())
    o.fail(k, std::string("not a field of ") + class_name(g.method) +
                  " (fields: " + join_names(fields) + ")");
  return g;
}

tp_overlap_layer parse_layer(const json& gemms, const std::string& file, const std::string& path,
                             std::vector<diagnostic>& warnings, bool preset_file) {
  const json_object o(gemms, file, path);
  tp_overlap_layer layer;
  std::vector<std::string> tuple_fields;
  for (std::string_view slot_sv : preset_gemm_slots) {
    const std::string slot(slot_sv);
    tp_overlap_slot s{slot, std::nullopt};
    if (!o.has(slot)) {
      if (preset_file) o.fail(slot, "required GEMM slot is missing (use null for None)");
    } else if (!o.get_raw(slot).is_null()) {
      s.cfg = parse_gemm(o.get_raw(slot), file, join_path(path, slot), preset_file);
      if (s.cfg->fp8_buf_tuple) tuple_fields.push_back(join_path(join_path(path, slot), "fp8_buf"));
    }
    layer.push_back(std::move(s));
  }
  for (const auto& k : o.unused_keys()) {
    if (k == "proj_wgrad" || k == "fc2_wgrad")
      o.fail(k,
             "TransformerLayerTPOverlapCfg has no such slot: Transformer Engine always runs it "
             "'external', riding on " +
                 std::string(k == "proj_wgrad" ? "proj_dgrad" : "fc2_dgrad") + "'s ring exchange");
    std::vector<std::string> slots(std::begin(preset_gemm_slots), std::end(preset_gemm_slots));
    o.fail(k, "not a GEMM slot of TransformerLayerTPOverlapCfg (slots: " + join_names(slots) + ")");
  }
  if (!tuple_fields.empty())
    warnings.push_back(
        {diag_code::fp8_buf_tuple_truthy,
         file + ": " + join_names(tuple_fields) + ": \"" + std::string(fp8_buf_tuple_marker) +
             "\" is PipelineOverlapCfg's unset fp8_buf default, a 1-tuple that Python treats as "
             "true: in an FP8 run Transformer Engine allocates an FP8 (uint8) reduce-scatter "
             "buffer for these GEMMs, although false was almost certainly intended; in BF16 it "
             "makes no difference (docs/BRIDGE_RULES.md §11.3)"});
  return layer;
}

userbuffers_preset load_preset_file(const std::string& path) {
  const json doc = load_json_file(path);
  const json_object top(doc, path, "");
  userbuffers_preset p;
  p.name = std::filesystem::path(path).stem().string();
  p.file = path;
  p.comment = top.get_string("comment", "");
  p.source = top.get_string("source", "");
  p.model_note = top.get_string("model_note", "");
  p.used_by = top.get_string("used_by", "");
  p.dtype = top.get_enum("dtype", {"bf16", "fp8"});
  p.gpu = top.get_enum("gpu", gpu_family_names());
  p.hidden = small_positive_int(top, "hidden");
  p.tp = small_positive_int(top, "tp");
  p.cp = small_positive_int(top, "cp", 1);
  p.mbs = small_positive_int(top, "mbs");
  p.seq_length = small_positive_int(top, "seq_length");
  if (!top.has("gemms")) top.fail_missing("gemms");
  p.gemms = parse_layer(top.get_raw("gemms"), path, "gemms", p.warnings, true);
  top.finish();
  return p;
}

std::string pad(const std::string& s, std::size_t width, bool right) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return right ? fill + s : s + fill;
}

}  // namespace

bool fp8_buf_truthy(const json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) return v.get<std::string>() == fp8_buf_tuple_marker;
  return false;
}

tp_overlap_layer parse_tp_overlap_layer(const json& gemms, const std::string& file,
                                        const std::string& path,
                                        std::vector<diagnostic>& warnings) {
  return parse_layer(gemms, file, path, warnings, false);
}

ordered_json tp_overlap_gemm_to_json(const tp_overlap_gemm& g) {
  ordered_json j;
  j["method"] = std::string(to_string(g.method));
  j["num_sm"] = g.num_sm;
  j["cga_size"] = g.cga_size;
  if (g.method == overlap_method::pipeline) j["num_splits"] = g.num_splits;
  j["set_sm_margin"] = g.set_sm_margin;
  if (g.method != overlap_method::bulk) {
    if (g.fp8_buf_tuple)
      j["fp8_buf"] = std::string(fp8_buf_tuple_marker);
    else
      j["fp8_buf"] = g.fp8_buf;
    j["atomic_gemm"] = g.atomic_gemm;
  }
  if (g.method == overlap_method::ring_exchange) j["aggregate"] = g.aggregate;
  return j;
}

ordered_json expand_tp_overlap_layer(const tp_overlap_layer& layer) {
  ordered_json j = ordered_json::object();
  for (const auto& s : layer)
    if (s.cfg) j[s.name] = tp_overlap_gemm_to_json(*s.cfg);
  return j;
}

userbuffers_preset load_preset(const std::string& name_or_path, const std::string& field) {
  return load_preset_file(find_config(presets_kind, name_or_path, field));
}

std::vector<std::string> list_presets() { return list_configs(presets_kind); }

std::vector<userbuffers_preset> load_all_presets() {
  std::vector<userbuffers_preset> out;
  for (const auto& name : list_presets()) out.push_back(load_preset(name));
  return out;
}

ordered_json preset_to_json(const userbuffers_preset& p) {
  ordered_json j;
  j["name"] = p.name;
  j["comment"] = p.comment;
  j["source"] = p.source;
  j["model_note"] = p.model_note;
  j["used_by"] = p.used_by;
  j["dtype"] = p.dtype;
  j["gpu"] = p.gpu;
  j["hidden"] = p.hidden;
  j["tp"] = p.tp;
  j["cp"] = p.cp;
  j["mbs"] = p.mbs;
  j["seq_length"] = p.seq_length;
  ordered_json gemms = ordered_json::object();
  for (const auto& s : p.gemms) gemms[s.name] = s.cfg ? tp_overlap_gemm_to_json(*s.cfg) : nullptr;
  j["gemms"] = std::move(gemms);
  return j;
}

std::string format_preset_table(const std::vector<userbuffers_preset>& presets) {
  const std::vector<std::string> header = {"name", "dtype", "gpu", "hidden",
                                           "tp",   "cp",    "mbs", "seq"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : presets)
    rows.push_back({p.name, p.dtype, p.gpu, std::to_string(p.hidden), std::to_string(p.tp),
                    std::to_string(p.cp), std::to_string(p.mbs), std::to_string(p.seq_length)});
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  // Text columns read left-aligned, numbers right-aligned.
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      if (c) s += "  ";
      s += pad(cells[c], width[c], c >= 3);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = line(header);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string format_preset_list() { return format_preset_table(load_all_presets()); }

// ---- Transformer Engine's view (initialize_ub) ----------------------------------------------

namespace {

overlap_method te_default_method(std::string_view slot) {
  if (slot == "qkv_fprop" || slot == "fc1_fprop" || slot == "proj_dgrad" || slot == "fc2_dgrad")
    return overlap_method::ring_exchange;
  if (slot == "proj_fprop" || slot == "fc2_fprop") return overlap_method::pipeline;
  if (slot == "proj_wgrad" || slot == "fc2_wgrad") return overlap_method::external;
  return overlap_method::bulk;
}

[[noreturn]] void te_reject(const std::string& slot, const std::string& why) {
  throw config_error("tp_comm_overlap_cfg." + slot + ": Transformer Engine rejects this: " + why);
}

const tp_overlap_gemm* user_slot(const tp_overlap_layer* layer, std::string_view slot) {
  if (!layer) return nullptr;
  for (const tp_overlap_slot& s : *layer)
    if (s.name == slot) return s.cfg ? &*s.cfg : nullptr;  // None: Bridge drops it before TE
  return nullptr;
}

// TE's all-gather and reduce-scatter lists and the method each slot starts from; a dgrad moved
// off bulk edits them before any buffer is built.
struct te_lists {
  std::set<std::string> all_gather = {"qkv_fprop", "qkv_dgrad", "proj_dgrad", "proj_wgrad",
                                      "fc1_fprop", "fc1_dgrad", "fc2_dgrad",  "fc2_wgrad"};
  std::set<std::string> reduce_scatter = {"proj_fprop", "fc2_fprop", "qkv_wgrad", "fc1_wgrad"};
  std::map<std::string, overlap_method> method_of;
  std::vector<std::string> moved_dgrads;
};

// qkv_dgrad / fc1_dgrad with a method other than bulk become a reduce-scatter of their output
// (TE's dgrad_reduce_scatter_overlap); their wgrad must then be absent from the dict.
te_lists make_te_lists(const tp_overlap_layer* layer) {
  te_lists l;
  for (std::string_view s : gemm_slots) l.method_of[std::string(s)] = te_default_method(s);
  for (const std::string dgrad : {"qkv_dgrad", "fc1_dgrad"}) {
    const tp_overlap_gemm* u = user_slot(layer, dgrad);
    if (!u || u->method == overlap_method::bulk) continue;
    const std::string wgrad = dgrad.substr(0, 3) + "_wgrad";
    if (user_slot(layer, wgrad))
      te_reject(dgrad, "method '" + std::string(to_string(u->method)) +
                           "' turns it into a reduce-scatter, which requires " + wgrad +
                           " to be absent from the config (Bridge drops it only when it is None)");
    l.reduce_scatter.erase(wgrad);
    l.all_gather.erase(dgrad);
    l.reduce_scatter.insert(dgrad);
    l.method_of[dgrad] = u->method;
    l.moved_dgrads.push_back(dgrad);
  }
  return l;
}

// TE's default for the slot, updated by the dict's fields (add_ub's arguments).
gemm_overlap_cfg te_slot(const std::string& slot, const te_lists& l, const tp_overlap_gemm* u,
                         int tp_size) {
  const overlap_method listed = l.method_of.at(slot);
  const bool ring = listed == overlap_method::ring_exchange;
  gemm_overlap_cfg c;
  c.method = listed;
  c.num_sm = ring ? 1 : 16;
  c.cga_size = ring ? 1 : 2;
  c.set_sm_margin = !ring;
  c.num_splits = ring ? tp_size : 4;
  // TE decides the buffer type from its own lists, not from the method the dict asks for.
  c.fp8_buf = l.all_gather.count(slot) > 0;
  if (u) {
    c.method = u->method;
    c.num_sm = u->num_sm;
    c.cga_size = u->cga_size;
    c.set_sm_margin = u->set_sm_margin;
    if (u->method == overlap_method::pipeline) c.num_splits = u->num_splits;
    if (u->method == overlap_method::ring_exchange) c.aggregate = u->aggregate;
    if (u->method != overlap_method::bulk) {
      c.atomic_gemm = u->atomic_gemm;
      if (listed == overlap_method::pipeline) c.fp8_buf = c.fp8_buf || u->fp8_buf;
    }
  }
  if (c.method == overlap_method::bulk || c.method == overlap_method::external)
    c.atomic_gemm = false;  // TE warns and turns it off
  if (c.method == overlap_method::pipeline && !l.reduce_scatter.count(slot))
    te_reject(slot, "the pipeline method is not supported for an all-gather GEMM");
  if ((slot == "proj_wgrad" || slot == "fc2_wgrad") && c.method != overlap_method::external)
    te_reject(slot, "it must use the external method (it overlaps with its dgrad's ring exchange)");
  if (c.method == overlap_method::ring_exchange) c.num_splits = tp_size;
  return c;
}

// An atomic ring-exchange AG GEMM shuffles chunk outputs that its RS partner must un-shuffle.
void check_atomic_partners(const slot_overlap_map& out) {
  for (const auto& [ag, rs] : std::array<std::pair<const char*, const char*>, 2>{
           {{"qkv_fprop", "proj_fprop"}, {"fc1_fprop", "fc2_fprop"}}}) {
    const auto atomic_ring = [&](const char* s) {
      const auto& c = out.at(s);
      return c.atomic_gemm && c.method == overlap_method::ring_exchange;
    };
    if (atomic_ring(ag) != atomic_ring(rs))
      te_reject(rs, std::string("atomic GEMM with ring_exchange must be used by both ") + ag +
                        " and " + rs + " or by neither");
  }
}

}  // namespace

slot_overlap_map te_effective_overlap(const tp_overlap_layer* layer, int tp_size) {
  if (tp_size < 1)
    throw config_error("tensor parallel size must be at least 1, got " + std::to_string(tp_size));
  const te_lists lists = make_te_lists(layer);
  slot_overlap_map out;
  for (std::string_view slot : gemm_slots)
    out[std::string(slot)] = te_slot(std::string(slot), lists, user_slot(layer, slot), tp_size);
  check_atomic_partners(out);
  // What the layer actually overlaps, beyond which buffers TE registers.
  for (const auto& dgrad : lists.moved_dgrads)
    out[dgrad.substr(0, 3) + "_wgrad"] = gemm_overlap_cfg{};
  for (const auto& [wgrad, dgrad] : std::array<std::pair<const char*, const char*>, 2>{
           {{"proj_wgrad", "proj_dgrad"}, {"fc2_wgrad", "fc2_dgrad"}}})
    if (out.at(dgrad).method != overlap_method::ring_exchange) out[wgrad] = gemm_overlap_cfg{};
  return out;
}

bool te_is_reduce_scatter(std::string_view slot, const slot_overlap_map& effective) {
  const auto it = effective.find(slot);
  if (it == effective.end()) return false;
  const overlap_method m = it->second.method;
  if (slot == "proj_fprop" || slot == "fc2_fprop") return m != overlap_method::none;
  if (slot == "qkv_wgrad" || slot == "fc1_wgrad") return m == overlap_method::bulk;
  if (slot == "qkv_dgrad" || slot == "fc1_dgrad")
    return m != overlap_method::bulk && m != overlap_method::none;
  return false;
}

ordered_json te_effective_to_json(const slot_overlap_map& effective) {
  ordered_json j = ordered_json::object();
  for (std::string_view slot : gemm_slots) {
    const auto it = effective.find(slot);
    if (it == effective.end()) continue;
    const gemm_overlap_cfg& c = it->second;
    ordered_json g;
    g["method"] = std::string(to_string(c.method));
    g["reduce_scatter"] = te_is_reduce_scatter(slot, effective);
    g["num_sm"] = c.num_sm;
    g["cga_size"] = c.cga_size;
    g["num_splits"] = c.num_splits;
    g["set_sm_margin"] = c.set_sm_margin;
    g["fp8_buf"] = c.fp8_buf;
    g["atomic_gemm"] = c.atomic_gemm;
    g["aggregate"] = c.aggregate;
    j[std::string(slot)] = std::move(g);
  }
  return j;
}

}  // namespace ob

namespace ob {

std::vector<std::string> preset_mismatches(const userbuffers_preset& p,
                                           const preset_run_shape& run) {
  std::vector<std::string> out;
  const auto mismatch = [&](const std::string& what, const std::string& preset_v,
                            const std::string& run_v, const std::string& extra) {
    out.push_back("preset " + p.name + " was tuned for " + what + " " + preset_v +
                  " but the run has " + run_v +
                  "; Bridge never compares them (docs/BRIDGE_RULES.md §11.2)" + extra);
  };
  const std::string sized =
      ": userbuffers are sized from the model ((seq x mbs / cp) x hidden), so it runs anyway";
  const auto num = [](std::int64_t v) { return std::to_string(v); };
  if (run.hidden && *run.hidden != p.hidden)
    mismatch("hidden size", num(p.hidden), num(*run.hidden), sized);
  if (run.tp != p.tp) mismatch("TP", num(p.tp), num(run.tp), sized);
  if (run.cp != p.cp) mismatch("CP", num(p.cp), num(run.cp), sized);
  if (run.seq_length && *run.seq_length != p.seq_length)
    mismatch("seq_length", num(p.seq_length), num(*run.seq_length), sized);
  if (run.micro_batch && *run.micro_batch != p.mbs)
    mismatch("micro_batch_size", num(p.mbs), num(*run.micro_batch), sized);
  if (run.dtype != p.dtype) mismatch("dtype", p.dtype, run.dtype + run.dtype_note, "");
  if (run.gpu && gpu_family(*run.gpu) != p.gpu)
    mismatch("GPU", p.gpu, *run.gpu,
             p.gpu == "b200" && is_sm100_or_newer(*run.gpu)
                 ? " (Bridge's own recipes reuse the b200 presets on b300/gb200/gb300)"
                 : "");
  return out;
}

}  // namespace ob

namespace ob {

std::optional<userbuffers_preset> preset_for_shape(const std::string& dtype, const std::string& gpu,
                                                   std::int64_t hidden, int tp, int cp,
                                                   std::int64_t mbs, std::int64_t seq) {
  std::optional<userbuffers_preset> close;
  for (userbuffers_preset& p : load_all_presets()) {
    if (p.dtype != dtype || p.gpu != gpu_family(gpu) || p.hidden != hidden || p.tp != tp ||
        p.cp != cp)
      continue;
    if (p.mbs == mbs && p.seq_length == seq) return std::move(p);
    if (!close) close = std::move(p);
  }
  return close;
}

}  // namespace ob
