#include "results/recommend.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "base/units.hpp"
#include "results/result.hpp"
#include "results/step_result.hpp"
#include "spec/sweep_axes.hpp"

namespace ob {
namespace {

using entry = ranked_sweep::entry;

std::string value_text(const ordered_json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

bool is_axis(const ranked_sweep& s, const std::string& key) { return !s.is_axis || s.is_axis(key); }

bool has(const entry& c, const std::string& key) {
  return c.params->is_object() && c.params->contains(key);
}

const entry* find_case(const ranked_sweep& s, const std::string& id) {
  for (const entry& c : s.cases)
    if (*c.id == id) return &c;
  return nullptr;
}

// What the ranking minimises: the time, or the throughput negated (the highest wins).
double cost(const ranked_sweep& s, const entry& c) {
  return s.measure == rank_measure::throughput ? -c.tokens_per_s_per_gpu : c.ms;
}

// The ranked figure as a user reads it: ms, or tokens/s per GPU.
double figure(const ranked_sweep& s, const entry& c) {
  return s.measure == rank_measure::throughput ? c.tokens_per_s_per_gpu : c.ms;
}

struct value_best {
  ordered_json value;
  double cost = 0;
};

// For one param: per value (in first-seen order), the lowest cost of the cases having it.
std::vector<value_best> best_per_value(const ranked_sweep& s, const std::string& key) {
  std::vector<value_best> out;
  for (const entry& c : s.cases) {
    if (!c.valid || !has(c, key)) continue;
    const ordered_json& v = (*c.params)[key];
    auto it =
        std::find_if(out.begin(), out.end(), [&](const value_best& b) { return b.value == v; });
    if (it == out.end())
      out.push_back({v, cost(s, c)});
    else
      it->cost = std::min(it->cost, cost(s, c));
  }
  return out;
}

std::string gain_text(double pct, const std::string& than) {
  return format_fixed(std::abs(pct), 1) + " % " + (pct >= 0 ? "faster" : "slower") + " than " +
         than;
}

std::vector<std::string> param_keys(const ranked_sweep& s) {
  std::vector<std::string> keys;
  for (const entry& c : s.cases)
    if (c.params->is_object())
      for (auto it = c.params->begin(); it != c.params->end(); ++it)
        if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
  return keys;
}

}  // namespace

ranked_sweep ranked(const result_doc& d) {
  ranked_sweep s;
  s.simulated = d.simulated();
  s.is_axis = is_sweep_axis;
  for (const case_record& c : d.cases)
    s.cases.push_back(
        {&c.id, &c.params, c.m.overlapped_ms.median, c.m.wrong == 0 && c.m.overlapped_ms.n > 0});
  return s;
}

namespace {

// The resolved settings that set a step's work (tokens per step) and its GPU count: when any of
// them differs between cases, a shorter step is not a faster one.
constexpr const char* work_keys[] = {"gpus", "gbs", "seq"};

// "gbs, seq" for the keys whose resolved values differ between the cases; "" when none does.
std::string differing_work(const step_doc& d) {
  std::string out;
  for (const char* key : work_keys) {
    const auto differs = std::any_of(d.cases.begin(), d.cases.end(), [&](const step_record& c) {
      return c.config.value(key, ordered_json()) !=
             d.cases.front().config.value(key, ordered_json());
    });
    if (differs) out += (out.empty() ? "" : ", ") + std::string(key);
  }
  return out;
}

// The share of routed token copies a case drops under a capacity factor (docs/MOE.md §9); 0
// for dense models and dropless MoE.
double dropped_share(const step_record& c) {
  const auto e = c.config.find("experts");
  if (e == c.config.end() || !e->is_object()) return 0;
  return e->value("moe_dropped", 0.0);
}

// Dropping tokens changes what the step trains, so a case that drops more than the sweep's least
// is not the same work done faster: it may be shown, never recommended.
bool drops_more(const step_record& c, double least_dropped) {
  return dropped_share(c) > least_dropped + 1e-12;
}

}  // namespace

ranked_sweep ranked(const step_doc& d) {
  ranked_sweep s;
  s.simulated = d.simulated();
  double least_dropped = 1;
  for (const step_record& c : d.cases) least_dropped = std::min(least_dropped, dropped_share(c));
  // A case over the GPU's memory (predicted with --allow-oom) cannot run: never the answer.
  for (const step_record& c : d.cases)
    s.cases.push_back(
        {&c.id, &c.params, c.step_ms.median,
         c.step_ms.n > 0 && !(c.memory && c.memory->over()) && !drops_more(c, least_dropped),
         c.tokens_per_s_per_gpu});
  const std::string differing = d.cases.empty() ? "" : differing_work(d);
  s.measure = differing.empty() ? rank_measure::time : rank_measure::throughput;
  s.ranked_by = differing.empty()
                    ? "step time (every case has the same gpus, gbs and seq)"
                    : "tokens/s/GPU, not step time (" + differing + " differ between cases)";
  return s;
}

std::vector<knob_impact> param_impacts(const ranked_sweep& s) {
  const entry* best = nullptr;
  for (const entry& c : s.cases)
    if (c.valid && (!best || cost(s, c) < cost(s, *best))) best = &c;
  const double best_figure = best ? std::abs(figure(s, *best)) : 0;
  std::vector<knob_impact> out;
  for (const std::string& k : param_keys(s)) {
    const std::vector<value_best> per = best_per_value(s, k);
    if (per.size() < 2) continue;
    auto by_cost = [](const value_best& a, const value_best& b) { return a.cost < b.cost; };
    const auto lo = std::min_element(per.begin(), per.end(), by_cost);
    const auto hi = std::max_element(per.begin(), per.end(), by_cost);
    knob_impact k_impact{k, lo->value, hi->value, hi->cost - lo->cost, 0};
    if (best_figure > 0) k_impact.spread_pct = 100.0 * k_impact.spread / best_figure;
    out.push_back(std::move(k_impact));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const knob_impact& a, const knob_impact& b) { return a.spread > b.spread; });
  return out;
}

std::optional<recommendation> recommend(const ranked_sweep& s) {
  const entry *best = nullptr, *first = nullptr, *none = nullptr;
  for (const entry& c : s.cases) {
    if (!c.valid) continue;
    if (!first) first = &c;
    if (!best || cost(s, c) < cost(s, *best)) best = &c;
    const bool is_none = has(c, "method") && (*c.params)["method"] == ordered_json("none");
    if (is_none && (!none || c.ms < none->ms)) none = &c;
  }
  if (!best) return std::nullopt;
  recommendation r;
  r.measure = s.measure;
  r.best_case = *best->id;
  r.best_ms = best->ms;
  r.default_case = *first->id;
  r.default_ms = first->ms;
  if (s.measure == rank_measure::throughput) {
    r.best_tokens_per_s_per_gpu = best->tokens_per_s_per_gpu;
    r.default_tokens_per_s_per_gpu = first->tokens_per_s_per_gpu;
    if (first->tokens_per_s_per_gpu > 0)
      r.gain_vs_default_pct = 100.0 * (best->tokens_per_s_per_gpu - first->tokens_per_s_per_gpu) /
                              first->tokens_per_s_per_gpu;
  } else if (r.default_ms > 0) {
    r.gain_vs_default_pct = 100.0 * (r.default_ms - r.best_ms) / r.default_ms;
  }
  if (none) {
    r.none_case = *none->id;
    r.none_ms = none->ms;
    if (*r.none_ms > 0) r.gain_vs_none_pct = 100.0 * (*r.none_ms - r.best_ms) / *r.none_ms;
  }
  // A knob that moves the best figure by less than 0.1 % did not matter.
  for (const knob_impact& k : param_impacts(s))
    if (is_axis(s, k.axis)) {
      if (k.spread > 0.001 * std::abs(figure(s, *best))) r.knob = k;
      break;
    }
  return r;
}

namespace {

std::string name_of(const ranked_sweep& s, const std::vector<knob_impact>& impacts, const entry* c,
                    const std::string& id) {
  if (!c || !c->params->is_object()) return id;
  std::string out;
  for (const knob_impact& k : impacts)
    if (is_axis(s, k.axis) && has(*c, k.axis))
      out += (out.empty() ? "" : " ") + k.axis + "=" + value_text((*c->params)[k.axis]);
  if (out.empty()) return s.cases.size() == 1 ? "the only case" : id;
  return out;
}

}  // namespace

std::string short_case_name(const ranked_sweep& s, const std::string& id) {
  return name_of(s, param_impacts(s), find_case(s, id), id);
}

case_namer::case_namer(ranked_sweep s) : s_(std::move(s)), impacts_(param_impacts(s_)) {
  for (const entry& c : s_.cases) by_id_.emplace(*c.id, &c);
}
case_namer::case_namer(const result_doc& d) : case_namer(ranked(d)) {}
case_namer::case_namer(const step_doc& d) : case_namer(ranked(d)) {}

std::string case_namer::operator()(const std::string& id) const {
  const auto it = by_id_.find(id);
  return name_of(s_, impacts_, it == by_id_.end() ? nullptr : it->second, id);
}

namespace {

// The swept params in which `to` differs from `from`, widest impact first.
std::string changes(const ranked_sweep& s, const std::string& from, const std::string& to) {
  const entry *a = find_case(s, from), *b = find_case(s, to);
  if (!a || !b || !b->params->is_object()) return to;
  std::string out;
  for (const knob_impact& k : param_impacts(s)) {
    if (!is_axis(s, k.axis) || !has(*b, k.axis)) continue;
    const bool same = has(*a, k.axis) && (*a->params)[k.axis] == (*b->params)[k.axis];
    if (!same) out += (out.empty() ? "" : " ") + k.axis + "=" + value_text((*b->params)[k.axis]);
  }
  return out.empty() ? short_case_name(s, to) : out;
}

}  // namespace

namespace {

// The best case's figure: "8.627 ms", or "812 tokens/s/GPU (step 9100.123 ms)".
std::string best_text(const recommendation& r) {
  if (r.measure != rank_measure::throughput || !r.best_tokens_per_s_per_gpu)
    return format_fixed(r.best_ms, 3) + " ms";
  return format_fixed(*r.best_tokens_per_s_per_gpu, 0) + " tokens/s/GPU (step " +
         format_fixed(r.best_ms, 3) + " ms)";
}

std::string spread_text(const recommendation& r, const knob_impact& k) {
  if (r.measure == rank_measure::throughput)
    return "-" + format_fixed(k.spread, 0) + " tokens/s/GPU";
  return "+" + format_fixed(k.spread, 3) + " ms";
}

}  // namespace

std::string recommendation_line(const recommendation& r, const ranked_sweep& s) {
  std::string out = std::string("recommendation") + (s.simulated ? " (SIMULATED)" : "") + ": ";
  const bool keep = r.best_case == r.default_case;
  if (s.cases.size() == 1)
    out += "the only case — " + best_text(r);
  else if (keep)
    out += "keep the default case, " + short_case_name(s, r.best_case) + " — " + best_text(r);
  else
    out += "from the default case, set " + changes(s, r.default_case, r.best_case) + " — " +
           best_text(r) + ", " + gain_text(r.gain_vs_default_pct, "the default");
  if (r.gain_vs_none_pct) out += ", " + gain_text(*r.gain_vs_none_pct, "no overlap");
  if (r.knob)
    out += "; mattered most: " + r.knob->axis + " (" + value_text(r.knob->best) + " best, " +
           value_text(r.knob->worst) + " worst: " + spread_text(r, *r.knob) + ")";
  if (!s.ranked_by.empty()) out += "; ranked by " + s.ranked_by;
  return out;
}

std::vector<knob_impact> param_impacts(const result_doc& d) { return param_impacts(ranked(d)); }
std::optional<recommendation> recommend(const result_doc& d) { return recommend(ranked(d)); }
std::optional<recommendation> recommend(const step_doc& d) { return recommend(ranked(d)); }
std::string recommendation_line(const recommendation& r, const result_doc& d) {
  return recommendation_line(r, ranked(d));
}
std::string recommendation_line(const recommendation& r, const step_doc& d) {
  return recommendation_line(r, ranked(d));
}
std::string short_case_name(const result_doc& d, const std::string& id) {
  return short_case_name(ranked(d), id);
}
std::string short_case_name(const step_doc& d, const std::string& id) {
  return short_case_name(ranked(d), id);
}

namespace {

// `time` names the ranked time in the field names ("overlapped", "step"); the `none` fields
// belong to documents whose sweeps may have a `method` axis.
constexpr const char* throughput_key = "tokens_per_s_per_gpu";

// The knob's spread is named by the ranked measure's unit.
std::string spread_key(rank_measure m) {
  return m == rank_measure::throughput ? std::string("spread_") + throughput_key : "spread_ms";
}

ordered_json rec_json(const recommendation& r, const std::string& time, bool with_none) {
  ordered_json j;
  j["best_case"] = r.best_case;
  j["gain_vs_default_pct"] = r.gain_vs_default_pct;
  if (with_none)
    j["gain_vs_none_pct"] = r.gain_vs_none_pct ? ordered_json(*r.gain_vs_none_pct) : nullptr;
  if (r.knob)
    j["knob"] = {{"axis", r.knob->axis},
                 {"best", r.knob->best},
                 {"worst", r.knob->worst},
                 {spread_key(r.measure), r.knob->spread},
                 {"spread_pct", r.knob->spread_pct}};
  else
    j["knob"] = nullptr;
  j["best_" + time + "_ms"] = r.best_ms;
  j["default_case"] = r.default_case;
  j["default_" + time + "_ms"] = r.default_ms;
  if (with_none) {
    j["none_case"] = r.none_case ? ordered_json(*r.none_case) : nullptr;
    j["none_" + time + "_ms"] = r.none_ms ? ordered_json(*r.none_ms) : nullptr;
  }
  return j;
}

std::optional<double> nullable(const json_object& obj, const std::string& key) {
  const json& v = obj.get_raw(key);
  if (v.is_null()) return std::nullopt;
  if (!v.is_number()) obj.fail(key, "expected a number or null, got " + describe_json(v));
  return v.get<double>();
}

std::optional<knob_impact> knob_from_json(const json_object& obj, rank_measure m) {
  const auto k = obj.get_optional_object("knob");
  if (!k) {
    obj.get_raw("knob");
    return std::nullopt;
  }
  knob_impact ki;
  ki.axis = k->get_string("axis");
  ki.best = ordered_json::parse(k->get_raw("best").dump());
  ki.worst = ordered_json::parse(k->get_raw("worst").dump());
  ki.spread = k->get_number(spread_key(m));
  ki.spread_pct = k->get_number("spread_pct");
  k->finish();
  return ki;
}

recommendation rec_from_json(const json_object& obj, const std::string& time, bool with_none) {
  recommendation r;
  r.best_case = obj.get_string("best_case");
  r.gain_vs_default_pct = obj.get_number("gain_vs_default_pct");
  if (with_none) r.gain_vs_none_pct = nullable(obj, "gain_vs_none_pct");
  r.knob = knob_from_json(obj, rank_measure::time);
  r.best_ms = obj.get_number("best_" + time + "_ms");
  r.default_case = obj.get_string("default_case");
  r.default_ms = obj.get_number("default_" + time + "_ms");
  if (with_none) {
    const json& none = obj.get_raw("none_case");
    if (none.is_string()) r.none_case = none.get<std::string>();
    r.none_ms = nullable(obj, "none_" + time + "_ms");
  }
  obj.finish();
  return r;
}

}  // namespace

ordered_json to_json(const recommendation& r) { return rec_json(r, "overlapped", true); }
recommendation recommendation_from_json(const json_object& obj) {
  return rec_from_json(obj, "overlapped", true);
}
ordered_json step_recommendation_json(const recommendation& r) {
  ordered_json j = rec_json(r, "step", false);
  const bool by_throughput = r.measure == rank_measure::throughput;
  j["ranked_by"] = by_throughput ? throughput_key : "step_ms";
  if (by_throughput) {
    j[std::string("best_") + throughput_key] = r.best_tokens_per_s_per_gpu.value_or(0);
    j[std::string("default_") + throughput_key] = r.default_tokens_per_s_per_gpu.value_or(0);
  }
  return j;
}

// As rec_from_json, after `ranked_by` (absent in documents written before it: step time), which
// says how the knob's spread is named and whether the throughput fields are there.
recommendation step_recommendation_from_json(const json_object& obj) {
  const std::string by = obj.get_enum("ranked_by", {"step_ms", throughput_key}, "step_ms");
  const rank_measure m = by == throughput_key ? rank_measure::throughput : rank_measure::time;
  recommendation r;
  r.measure = m;
  r.best_case = obj.get_string("best_case");
  r.gain_vs_default_pct = obj.get_number("gain_vs_default_pct");
  r.knob = knob_from_json(obj, m);
  r.best_ms = obj.get_number("best_step_ms");
  r.default_case = obj.get_string("default_case");
  r.default_ms = obj.get_number("default_step_ms");
  if (m == rank_measure::throughput) {
    r.best_tokens_per_s_per_gpu = obj.get_number(std::string("best_") + throughput_key);
    r.default_tokens_per_s_per_gpu = obj.get_number(std::string("default_") + throughput_key);
  }
  obj.finish();
  return r;
}

}  // namespace ob
