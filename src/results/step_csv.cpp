// The step document as CSV (results/README.md): one row per case, the columns a spreadsheet
// wants first, and `why` as the step table prints it.
#include <set>

#include "results/result.hpp"
#include "results/step_result.hpp"

namespace ob {
namespace {

constexpr const char* scalar_names[] = {"exposed_ms", "critical_stage", "tokens_per_s_per_gpu",
                                        "model_tflops_per_gpu", "mfu"};

// Every case's param keys, in first-seen order, so every row has the same columns.
std::vector<std::string> param_keys(const step_doc& d) {
  std::vector<std::string> keys;
  std::set<std::string> seen;
  auto add = [&](const ordered_json& params) {
    for (auto it = params.begin(); it != params.end(); ++it)
      if (seen.insert(it.key()).second) keys.push_back(it.key());
  };
  for (const step_record& r : d.cases) add(r.params);
  for (const oom_record& r : d.oom) add(r.params);
  return keys;
}

std::vector<std::string> header(const std::vector<std::string>& keys) {
  std::vector<std::string> h = {"id", "backend", "simulated"};
  for (const std::string& k : keys) h.push_back("params." + k);
  for (const char* s : csv_stat_names) h.push_back(std::string("step_ms.") + s);
  for (const breakdown_part& p : breakdown_parts())
    h.push_back(std::string("breakdown_ms.") + p.key);
  h.insert(h.end(), std::begin(scalar_names), std::end(scalar_names));
  h.insert(h.end(),
           {"compute_only_ms.median", "main_cause", "why", "memory_gib.total", "fits", "warnings"});
  return h;
}

std::vector<std::string> row(const step_doc& d, const step_record& r,
                             const std::vector<std::string>& keys) {
  const ordered_json j = to_json(r);
  std::vector<std::string> out = {r.id, d.env.value("backend", std::string()),
                                  d.simulated() ? "true" : "false"};
  for (const std::string& k : keys) out.push_back(csv_value(r.params.value(k, ordered_json())));
  for (const char* s : csv_stat_names) out.push_back(csv_value(j["step_ms"][s]));
  for (const breakdown_part& p : breakdown_parts())
    out.push_back(csv_value(j["breakdown_ms"][p.key]));
  for (const char* s : scalar_names) out.push_back(csv_value(j[s]));
  out.push_back(r.compute_only_ms ? csv_value(r.compute_only_ms->median) : "");
  out.push_back(r.diagnosis ? std::string(to_string(r.diagnosis->main_cause)) : "");
  out.push_back(r.diagnosis ? why_text(*r.diagnosis) : "-");
  out.push_back(r.memory ? csv_value(r.memory->gib.total()) : "");
  out.push_back(r.memory && r.memory->fits ? (*r.memory->fits ? "true" : "false") : "");
  std::string warnings;
  for (const std::string& w : r.warnings) warnings += (warnings.empty() ? "" : "; ") + w;
  out.push_back(warnings);
  return out;
}

// A case over the GPU's memory: its params and memory, every predicted column empty.
std::vector<std::string> oom_row(const step_doc& d, const oom_record& r,
                                 const std::vector<std::string>& keys) {
  std::vector<std::string> out = {r.id, d.env.value("backend", std::string()),
                                  d.simulated() ? "true" : "false"};
  for (const std::string& k : keys) out.push_back(csv_value(r.params.value(k, ordered_json())));
  const std::size_t empty = std::size(csv_stat_names) + breakdown_parts().size() +
                            std::size(scalar_names) + 2;  // + compute_only_ms, main_cause
  out.insert(out.end(), empty, "");
  out.insert(out.end(), {"not run: over the GPU's memory (--allow-oom predicts it)",
                         csv_value(r.memory.gib.total()), "false", ""});
  return out;
}

}  // namespace

std::string step_csv(const step_doc& d) {
  const std::vector<std::string> keys = param_keys(d);
  std::string out;
  append_csv_row(out, header(keys));
  for (const step_record& r : d.cases) append_csv_row(out, row(d, r, keys));
  for (const oom_record& r : d.oom) append_csv_row(out, oom_row(d, r, keys));
  return out;
}

void write_step_csv(const std::string& path, const step_doc& d) {
  write_file_atomic(path, step_csv(d));
}

}  // namespace ob
