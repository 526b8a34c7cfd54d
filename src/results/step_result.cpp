#include "results/step_result.hpp"

#include <algorithm>
#include <cstdio>

#include "results/document.hpp"
#include "results/report_table.hpp"

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

// Numbers right-aligned in 9 columns; the last, why, left-aligned.
std::string cell(const std::vector<std::string>& row, std::size_t i) {
  return i + 1 == row.size() ? row[i] : pad(row[i], 9);
}

}  // namespace

const std::array<breakdown_part, 9>& breakdown_parts() {
  static const std::array<breakdown_part, 9> parts = {{
      {"compute", "compute", &step_breakdown::compute},
      {"tp_exposed", "tp exp", &step_breakdown::tp_exposed},
      {"cp_exposed", "cp exp", &step_breakdown::cp_exposed},
      {"dp_exposed", "dp exp", &step_breakdown::dp_exposed},
      {"pp_exposed", "pp exp", &step_breakdown::pp_exposed},
      {"ep_exposed", "ep exp", &step_breakdown::ep_exposed},
      {"bubble", "bubble", &step_breakdown::bubble},
      {"optimizer", "optim", &step_breakdown::optimizer},
      {"other", "other", &step_breakdown::other},
  }};
  return parts;
}

ordered_json to_json(const step_breakdown& b) {
  ordered_json j = ordered_json::object();
  for (const breakdown_part& p : breakdown_parts()) j[p.key] = b.*p.value;
  return j;
}

namespace {

// The memory model's parts, in the order memory_gib lists them (docs/MEMORY.md).
struct memory_part {
  const char* key;
  double memory_parts::*value;
};
constexpr std::array<memory_part, 6> memory_part_list = {
    {{"weights", &memory_parts::weights},
     {"gradients", &memory_parts::gradients},
     {"optimizer", &memory_parts::optimizer},
     {"activations", &memory_parts::activations},
     {"buffers", &memory_parts::buffers},
     {"reserve", &memory_parts::reserve}}};

void memory_to_json(const memory_estimate& m, ordered_json& j) {
  ordered_json gib = ordered_json::object();
  for (const memory_part& p : memory_part_list) gib[p.key] = m.gib.*p.value;
  gib["total"] = m.gib.total();
  j["memory_gib"] = gib;
  j["memory_stage"] = m.stage;
  j["fits"] = m.fits ? ordered_json(*m.fits) : ordered_json(nullptr);
}

}  // namespace

memory_estimate memory_from_json(const json_object& o) {
  memory_estimate m;
  const json_object gib = o.get_object("memory_gib");
  for (const memory_part& p : memory_part_list) m.gib.*p.value = gib.get_number(p.key);
  gib.get_number("total");  // the parts' sum, written for readers; recomputed here
  gib.finish();
  m.stage = static_cast<int>(o.get_int_in("memory_stage", 0, 1 << 20));
  m.fits = o.get_optional_bool("fits");
  return m;
}

namespace {

// What a predicted case and an oom entry both begin with.
ordered_json case_head_json(const std::string& id, const ordered_json& params,
                            const ordered_json& config) {
  ordered_json j;
  j["id"] = id;
  j["params"] = params;
  j["config"] = config;
  return j;
}

// The same, read back strictly; params and config copied from `j` to keep their key order.
void read_case_head(const json_object& o, const ordered_json& j, std::string& id,
                    ordered_json& params, ordered_json& config) {
  id = o.get_string("id");
  if (id.empty()) o.fail("id", "expected a non-empty string");
  o.get_object("params");
  o.get_object("config");
  params = j.at("params");
  config = j.at("config");
}

}  // namespace

ordered_json to_json(const oom_record& r) {
  ordered_json j = case_head_json(r.id, r.params, r.config);
  memory_to_json(r.memory, j);
  return j;
}

ordered_json to_json(const step_record& r) {
  ordered_json j = case_head_json(r.id, r.params, r.config);
  j["step_ms"] = to_json(r.step_ms);
  j["breakdown_ms"] = to_json(r.breakdown_ms);
  j["exposed_ms"] = r.exposed_ms;
  j["diagnosis"] = r.diagnosis ? to_json(*r.diagnosis) : ordered_json();
  j["compute_only_ms"] = r.compute_only_ms ? to_json(*r.compute_only_ms) : ordered_json();
  j["critical_stage"] = r.critical_stage;
  j["tokens_per_s_per_gpu"] = r.tokens_per_s_per_gpu;
  j["model_tflops_per_gpu"] = r.model_tflops_per_gpu;
  j["mfu"] = r.mfu;
  j["warnings"] = r.warnings;
  if (r.memory) memory_to_json(*r.memory, j);
  return j;
}

ordered_json to_json(const step_doc& d) {
  ordered_json j;
  header_to_json(d, step_schema_v1, j);
  if (!d.search.is_null()) j["search"] = d.search;
  // Before the cases, as in a result document: the cases stay the last, longest value.
  j["recommendation"] = d.rec ? step_recommendation_json(*d.rec) : ordered_json(nullptr);
  if (!d.oom.empty()) {
    j["oom"] = ordered_json::array();
    for (const oom_record& r : d.oom) j["oom"].push_back(to_json(r));
  }
  j["cases"] = ordered_json::array();
  for (const step_record& r : d.cases) j["cases"].push_back(to_json(r));
  return j;
}

namespace {

// The same table the writer and the step table use, so a new part is added in one place.
step_breakdown breakdown_from_json(const json_object& o) {
  step_breakdown b;
  // ep_exposed came with MoE layers (issue 17): results written before it have none.
  for (const breakdown_part& p : breakdown_parts())
    b.*p.value =
        p.value == &step_breakdown::ep_exposed ? o.get_number(p.key, 0.0) : o.get_number(p.key);
  o.finish();
  return b;
}

// A key the writer always puts down, null when there is nothing to say.
std::optional<json_object> nullable_object(const json_object& o, const std::string& key) {
  if (!o.has(key)) o.fail_missing(key);
  if (o.get_raw(key).is_null()) return std::nullopt;
  return o.get_object(key);
}

}  // namespace

step_record step_record_from_json(const ordered_json& j, const std::string& file,
                                  const std::string& where) {
  const json plain = json::parse(dump_json(j));
  const json_object o(plain, file, where);
  step_record r;
  read_case_head(o, j, r.id, r.params, r.config);
  r.step_ms = stats_from_json(o.get_object("step_ms"));
  r.breakdown_ms = breakdown_from_json(o.get_object("breakdown_ms"));
  r.exposed_ms = o.get_number("exposed_ms");
  if (const auto d = nullable_object(o, "diagnosis")) r.diagnosis = diagnosis_from_json(*d);
  if (const auto c = nullable_object(o, "compute_only_ms")) r.compute_only_ms = stats_from_json(*c);
  r.critical_stage = static_cast<int>(o.get_int_in("critical_stage", 0, 1 << 20));
  r.tokens_per_s_per_gpu = o.get_number("tokens_per_s_per_gpu");
  r.model_tflops_per_gpu = o.get_number("model_tflops_per_gpu");
  r.mfu = o.get_number("mfu");
  r.warnings = o.get_string_list("warnings");
  if (o.has("memory_gib")) r.memory = memory_from_json(o);
  o.finish();
  return r;
}

oom_record oom_record_from_json(const ordered_json& j, const std::string& file,
                                const std::string& where) {
  const json plain = json::parse(dump_json(j));
  const json_object o(plain, file, where);
  oom_record r;
  read_case_head(o, j, r.id, r.params, r.config);
  r.memory = memory_from_json(o);
  if (!r.memory.over()) o.fail("fits", "expected false: the oom list holds cases that do not fit");
  o.finish();
  return r;
}

void write_step_json(const std::string& path, const step_doc& d) {
  step_doc head = d;  // everything but the cases, which go one at a time
  head.cases.clear();
  write_json_streamed(path, to_json(head), d.cases.size(),
                      [&d](std::size_t i) { return to_json(d.cases[i]); });
}

namespace {

std::string param_text(const ordered_json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// As the layer table (results/report_table.cpp): params that differ between cases get columns, the
// widest impact first (docs/ARCHITECTURE.md §7.2); those equal in every case are said once under
// the table, so a sweep of two values does not repeat twenty constant settings per row.
struct step_params {
  std::vector<std::string> varying;
  std::vector<std::string> fixed;  // "key=value"
};

// Every row's params: the predicted cases', then the oom entries'.
std::vector<const ordered_json*> row_params(const step_doc& d) {
  std::vector<const ordered_json*> out;
  for (const step_record& r : d.cases) out.push_back(&r.params);
  for (const oom_record& r : d.oom) out.push_back(&r.params);
  return out;
}

step_params split_step_params(const step_doc& d) {
  step_params out;
  for (const knob_impact& k : param_impacts(ranked(d))) out.varying.push_back(k.axis);
  const std::vector<const ordered_json*> rows = row_params(d);
  std::vector<std::string> keys;
  for (const ordered_json* p : rows)
    for (auto it = p->begin(); it != p->end(); ++it)
      if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
  for (const std::string& k : keys) {
    if (std::find(out.varying.begin(), out.varying.end(), k) != out.varying.end()) continue;
    const ordered_json first = rows.front()->value(k, ordered_json());
    const bool same = std::all_of(rows.begin(), rows.end(), [&](const ordered_json* p) {
      return p->value(k, ordered_json()) == first;
    });
    if (same)
      out.fixed.push_back(k + "=" + param_text(first));
    else
      out.varying.push_back(k);
  }
  return out;
}

// The varying params' cells of one row (the heading when `row` is null), left-aligned to their
// column; "-" where a case lacks the param.
std::vector<std::string> param_cells(const step_doc& d, const std::vector<std::string>& varying,
                                     const ordered_json* row) {
  std::vector<std::string> out;
  for (const std::string& k : varying) {
    std::size_t w = k.size();
    for (const ordered_json* p : row_params(d))
      w = std::max(w, p->contains(k) ? param_text((*p)[k]).size() : 1);
    const std::string v = !row ? k : row->contains(k) ? param_text((*row)[k]) : "-";
    out.push_back(pad(v, w, false));
  }
  return out;
}

// "79.6 GiB", or "memory (the GPU file gives none)".
std::string memory_capacity_text(const step_doc& d) {
  const double gib = d.config.value("hbm_gib", 0.0);
  return gib > 0 ? fixed(gib, 1) + " GiB" : "memory (the GPU file gives none)";
}

// The estimate's total; "OOM" before it when it does not fit.
std::string memory_cell(const std::optional<memory_estimate>& m) {
  if (!m) return "-";
  return (m->over() ? "OOM " : "") + fixed(m->gib.total(), 1);
}

// The table's breakdown columns: "ep exp" only where a case has MoE all-to-alls, so a dense
// sweep's table keeps its width.
std::vector<const breakdown_part*> table_parts(const step_doc& d) {
  const bool ep = std::any_of(d.cases.begin(), d.cases.end(),
                              [](const step_record& r) { return r.breakdown_ms.ep_exposed > 0; });
  std::vector<const breakdown_part*> out;
  for (const breakdown_part& p : breakdown_parts())
    if (ep || p.value != &step_breakdown::ep_exposed) out.push_back(&p);
  return out;
}

std::vector<std::string> metric_cells(const step_record& r,
                                      const std::vector<const breakdown_part*>& parts) {
  std::vector<std::string> cells = {fixed(r.step_ms.median, 1)};
  for (const breakdown_part* p : parts) cells.push_back(fixed(r.breakdown_ms.*p->value, 1));
  cells.insert(cells.end(), {fixed(r.tokens_per_s_per_gpu, 0), fixed(r.model_tflops_per_gpu, 1),
                             fixed(100 * r.mfu, 1), memory_cell(r.memory),
                             r.diagnosis ? why_text(*r.diagnosis) : "-"});
  return cells;
}

// An oom entry's row: its params, OOM and its memory, nothing predicted.
std::vector<std::string> oom_cells(const oom_record& r, std::size_t parts) {
  std::vector<std::string> cells(parts + 4, "-");
  cells.front() = "OOM";
  cells.push_back(memory_cell(r.memory));
  cells.push_back("not run: over the GPU's memory (--allow-oom predicts it)");
  return cells;
}

std::string table_line(const std::vector<std::string>& params,
                       const std::vector<std::string>& metrics) {
  std::string out;
  for (const std::string& p : params) out += (out.empty() ? "" : "  ") + p;
  for (std::size_t i = 0; i < metrics.size(); ++i)
    out += (out.empty() ? "" : "  ") + cell(metrics, i);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out + "\n";
}

// The breakdown parts where `loser` spent more than `winner`, largest first: "bubble +120.0 ms,
// tp exp +31.2 ms".
std::string losing_parts(const step_record& winner, const step_record& loser) {
  std::vector<std::pair<double, std::string>> parts;
  for (const breakdown_part& p : breakdown_parts()) {
    const double d = loser.breakdown_ms.*p.value - winner.breakdown_ms.*p.value;
    if (d > 0.005 * winner.step_ms.median) parts.emplace_back(d, p.heading);
  }
  std::sort(parts.rbegin(), parts.rend());
  std::string out;
  for (std::size_t i = 0; i < parts.size() && i < 2; ++i)
    out += (i ? ", " : "") + parts[i].second + " +" + fixed(parts[i].first, 1) + " ms";
  return out.empty() ? "no single part" : out;
}

// step --search's answer: what it looked at, the best case and why it beats the runner-up.
std::string search_lines(const step_doc& d) {
  const ordered_json& n = d.search;
  const auto count = [&n](const char* key) { return std::to_string(n.value(key, 0)); };
  std::string out = std::string("search (") + (d.simulated() ? "SIMULATED" : "MEASURED") +
                    "): " + count("candidates") + " layouts, " + count("refused") +
                    " invalid; of " + count("evaluated") + ": " + count("pruned_oom") +
                    " over memory, " + count("pruned_dominated") +
                    " dominated (a lighter recompute fits), " + count("pruned_bound") +
                    " beyond the bound, " + count("skipped_budget") + " left by the budget; " +
                    count("simulated") + " simulated, then " + count("variants") +
                    " overlap settings on the best, in " + fixed(n.value("seconds", 0.0), 1) +
                    " s (stopped by " + n.value("stopped_by", std::string("?")) + ")\n";
  if (d.cases.empty()) return out + "no layout fits: nothing to recommend\n";
  const step_record& best = d.cases[0];
  out += "best: " + best.id + " — " + fixed(best.step_ms.median, 1) + " ms, " +
         fixed(best.tokens_per_s_per_gpu, 0) + " tokens/s/GPU";
  if (d.cases.size() > 1) {
    const step_record& next = d.cases[1];
    const double ahead = next.step_ms.median - best.step_ms.median;
    out += "; " + fixed(ahead, 1) + " ms (" + fixed(100 * ahead / next.step_ms.median, 2) +
           " %) ahead of the runner-up " + next.id + ", which loses on " + losing_parts(best, next);
  }
  return out + "\n";
}

// Why cases are missing from the ranking: over the GPU's memory, not run or never recommended.
std::string oom_note(const step_doc& d) {
  const auto over = std::count_if(d.cases.begin(), d.cases.end(), [](const step_record& r) {
    return r.memory && r.memory->over();
  });
  std::string out;
  if (!d.oom.empty())
    out += std::to_string(d.oom.size()) + " case(s) over the GPU's " + memory_capacity_text(d) +
           " not run (--allow-oom predicts them); the recommendation is among the cases that "
           "fit\n";
  if (over > 0)
    out += std::to_string(over) +
           " predicted case(s) do not fit the GPU's memory (OOM): never recommended\n";
  return out;
}

}  // namespace

std::string format_step_table(const step_doc& d) {
  const step_params params =
      d.cases.empty() && d.oom.empty() ? step_params{} : split_step_params(d);
  const std::vector<const breakdown_part*> parts = table_parts(d);
  std::vector<std::string> head = {"step ms"};
  for (const breakdown_part* p : parts) head.push_back(p->heading);
  head.insert(head.end(), {"tok/s/GPU", "TFLOP/s", "MFU %", "mem GiB", "why"});
  std::string out = banner_line(d.env) + "\n";
  if (d.planned_cases) out += partial_text(d.planned_cases, d.cases.size()) + "\n";
  out += table_line(param_cells(d, params.varying, nullptr), head);
  for (const step_record& r : d.cases)
    out += table_line(param_cells(d, params.varying, &r.params), metric_cells(r, parts));
  for (const oom_record& r : d.oom)
    out += table_line(param_cells(d, params.varying, &r.params), oom_cells(r, parts.size()));
  if (d.cases.empty() && d.oom.empty()) out += "(no cases)\n";
  if (!params.fixed.empty()) {
    out += "all cases:";
    for (const std::string& p : params.fixed) out += " " + p;
    out += "\n";
  }
  out +=
      "times in ms on the critical stage; the breakdown adds up to the step; TFLOP/s per GPU "
      "by Megatron's formula (no recompute), MFU against the dense peak; why = the main cause "
      "of the exposed time and its dimension (docs/ARCHITECTURE.md §7.1); mem GiB = the memory "
      "model's estimate per GPU on the most loaded stage (docs/MEMORY.md), OOM over the GPU's " +
      memory_capacity_text(d) + "\n";
  if (!d.search.is_null())
    out += search_lines(d);
  else if (d.rec && !d.cases.empty())
    out += recommendation_line(*d.rec, d) + "\n";
  out += oom_note(d);
  for (const step_record& r : d.cases)
    for (const std::string& w : r.warnings) out += "warning: " + r.id + ": " + w + "\n";
  return out;
}

}  // namespace ob
