#include "core/step_result.hpp"

#include <cstdio>

#include "core/report_table.hpp"

namespace ob {
namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string pad(const std::string& s, std::size_t w, bool right = true) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

}  // namespace

bool step_doc::simulated() const {
  const auto it = env.find("simulated");
  return it != env.end() && it->is_boolean() && it->get<bool>();
}

ordered_json to_json(const step_breakdown& b) {
  return {{"compute", b.compute},       {"tp_exposed", b.tp_exposed}, {"cp_exposed", b.cp_exposed},
          {"dp_exposed", b.dp_exposed}, {"pp_exposed", b.pp_exposed}, {"bubble", b.bubble},
          {"optimizer", b.optimizer},   {"other", b.other}};
}

ordered_json to_json(const step_record& r) {
  ordered_json j;
  j["id"] = r.id;
  j["params"] = r.params;
  j["config"] = r.config;
  j["step_ms"] = to_json(r.step_ms);
  j["breakdown_ms"] = to_json(r.breakdown_ms);
  j["compute_only_ms"] = r.compute_only_ms ? to_json(*r.compute_only_ms) : ordered_json();
  j["critical_stage"] = r.critical_stage;
  j["tokens_per_s_per_gpu"] = r.tokens_per_s_per_gpu;
  j["model_tflops_per_gpu"] = r.model_tflops_per_gpu;
  j["mfu"] = r.mfu;
  j["warnings"] = r.warnings;
  return j;
}

ordered_json to_json(const step_doc& d) {
  ordered_json j;
  j["schema"] = step_schema_v1;
  j["simulated"] = d.simulated();
  j["tool"] = d.tool;
  j["env"] = d.env;
  j["config"] = d.config;
  j["cases"] = ordered_json::array();
  for (const step_record& r : d.cases) j["cases"].push_back(to_json(r));
  return j;
}

void write_step_json(const std::string& path, const step_doc& d) {
  write_file_atomic(path, to_json(d).dump(2) + "\n");
}

std::string format_step_table(const step_doc& d) {
  std::size_t id_w = 4;
  for (const step_record& r : d.cases) id_w = std::max(id_w, r.id.size());
  const std::vector<std::string> head = {"step ms", "compute", "tp exp", "cp exp", "dp exp",
                                         "pp exp",  "bubble",  "optim",  "other",  "tok/s/GPU",
                                         "TFLOP/s", "MFU %"};
  std::string out = banner_line(d.env) + "\n";
  out += pad(d.simulated() ? "case (sim)" : "case", id_w, false);
  for (const std::string& h : head) out += "  " + pad(h, 9);
  out += "\n";
  for (const step_record& r : d.cases) {
    const step_breakdown& b = r.breakdown_ms;
    const std::vector<std::string> cells = {
        fixed(r.step_ms.median, 1), fixed(b.compute, 1),    fixed(b.tp_exposed, 1),
        fixed(b.cp_exposed, 1),     fixed(b.dp_exposed, 1), fixed(b.pp_exposed, 1),
        fixed(b.bubble, 1),         fixed(b.optimizer, 1),  fixed(b.other, 1),
        fixed(r.tokens_per_s_per_gpu, 0), fixed(r.model_tflops_per_gpu, 1),
        fixed(100 * r.mfu, 1)};
    out += pad(r.id, id_w, false);
    for (const std::string& c : cells) out += "  " + pad(c, 9);
    out += "\n";
  }
  out += "times in ms on the critical stage; the breakdown adds up to the step; TFLOP/s per GPU "
         "by Megatron's formula (no recompute), MFU against the dense peak\n";
  for (const step_record& r : d.cases)
    for (const std::string& w : r.warnings) out += "warning: " + r.id + ": " + w + "\n";
  return out;
}

}  // namespace ob
