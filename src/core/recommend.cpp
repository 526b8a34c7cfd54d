#include "core/recommend.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/result.hpp"
#include "core/sweep_axes.hpp"
#include "core/units.hpp"

namespace ob {
namespace {

std::string value_text(const ordered_json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

bool valid(const case_record& c) { return c.m.wrong == 0 && c.m.overlapped_ms.n > 0; }

const case_record* find_case(const result_doc& d, const std::string& id) {
  for (const case_record& c : d.cases)
    if (c.id == id) return &c;
  return nullptr;
}

struct value_best {
  ordered_json value;
  double ms = 0;
};

// For one param: per value (in first-seen order), the lowest overlapped time of the cases having
// it.
std::vector<value_best> best_per_value(const result_doc& d, const std::string& key) {
  std::vector<value_best> out;
  for (const case_record& c : d.cases) {
    if (!valid(c) || !c.params.is_object() || !c.params.contains(key)) continue;
    const ordered_json& v = c.params[key];
    auto it =
        std::find_if(out.begin(), out.end(), [&](const value_best& b) { return b.value == v; });
    const double ms = c.m.overlapped_ms.median;
    if (it == out.end())
      out.push_back({v, ms});
    else
      it->ms = std::min(it->ms, ms);
  }
  return out;
}

std::string gain_text(double pct, const std::string& than) {
  return format_fixed(std::abs(pct), 1) + " % " + (pct >= 0 ? "faster" : "slower") + " than " +
         than;
}

}  // namespace

std::vector<knob_impact> param_impacts(const result_doc& d) {
  std::vector<std::string> keys;
  for (const case_record& c : d.cases)
    if (c.params.is_object())
      for (auto it = c.params.begin(); it != c.params.end(); ++it)
        if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
  double best_ms = 0;
  for (const case_record& c : d.cases)
    if (valid(c) && (best_ms == 0 || c.m.overlapped_ms.median < best_ms))
      best_ms = c.m.overlapped_ms.median;
  std::vector<knob_impact> out;
  for (const std::string& k : keys) {
    const std::vector<value_best> per = best_per_value(d, k);
    if (per.size() < 2) continue;
    auto by_ms = [](const value_best& a, const value_best& b) { return a.ms < b.ms; };
    const auto lo = std::min_element(per.begin(), per.end(), by_ms);
    const auto hi = std::max_element(per.begin(), per.end(), by_ms);
    knob_impact k_impact{k, lo->value, hi->value, hi->ms - lo->ms, 0};
    if (best_ms > 0) k_impact.spread_pct = 100.0 * k_impact.spread_ms / best_ms;
    out.push_back(std::move(k_impact));
  }
  std::stable_sort(out.begin(), out.end(), [](const knob_impact& a, const knob_impact& b) {
    return a.spread_ms > b.spread_ms;
  });
  return out;
}

std::optional<recommendation> recommend(const result_doc& d) {
  const case_record *best = nullptr, *first = nullptr, *none = nullptr;
  for (const case_record& c : d.cases) {
    if (!valid(c)) continue;
    if (!first) first = &c;
    if (!best || c.m.overlapped_ms.median < best->m.overlapped_ms.median) best = &c;
    const bool is_none = c.params.is_object() && c.params.contains("method") &&
                         c.params["method"] == ordered_json("none");
    if (is_none && (!none || c.m.overlapped_ms.median < none->m.overlapped_ms.median)) none = &c;
  }
  if (!best) return std::nullopt;
  recommendation r;
  r.best_case = best->id;
  r.best_ms = best->m.overlapped_ms.median;
  r.default_case = first->id;
  r.default_ms = first->m.overlapped_ms.median;
  if (r.default_ms > 0) r.gain_vs_default_pct = 100.0 * (r.default_ms - r.best_ms) / r.default_ms;
  if (none) {
    r.none_case = none->id;
    r.none_ms = none->m.overlapped_ms.median;
    if (*r.none_ms > 0) r.gain_vs_none_pct = 100.0 * (*r.none_ms - r.best_ms) / *r.none_ms;
  }
  // A knob that moves the best time by less than 0.1 % did not matter.
  for (const knob_impact& k : param_impacts(d))
    if (is_sweep_axis(k.axis)) {
      if (k.spread_ms > 0.001 * r.best_ms) r.knob = k;
      break;
    }
  return r;
}

std::string short_case_name(const result_doc& d, const std::string& id) {
  const case_record* c = find_case(d, id);
  if (!c || !c->params.is_object()) return id;
  std::string out;
  for (const knob_impact& k : param_impacts(d))
    if (is_sweep_axis(k.axis) && c->params.contains(k.axis))
      out += (out.empty() ? "" : " ") + k.axis + "=" + value_text(c->params[k.axis]);
  if (out.empty()) return d.cases.size() == 1 ? "the only case" : id;
  return out;
}

namespace {

// The swept params in which `to` differs from `from`, widest impact first.
std::string changes(const result_doc& d, const std::string& from, const std::string& to) {
  const case_record *a = find_case(d, from), *b = find_case(d, to);
  if (!a || !b || !b->params.is_object()) return to;
  std::string out;
  for (const knob_impact& k : param_impacts(d)) {
    if (!is_sweep_axis(k.axis) || !b->params.contains(k.axis)) continue;
    const bool same = a->params.is_object() && a->params.contains(k.axis) &&
                      a->params[k.axis] == b->params[k.axis];
    if (!same) out += (out.empty() ? "" : " ") + k.axis + "=" + value_text(b->params[k.axis]);
  }
  return out.empty() ? short_case_name(d, to) : out;
}

}  // namespace

std::string recommendation_line(const recommendation& r, const result_doc& d) {
  std::string out = std::string("recommendation") + (d.simulated() ? " (SIMULATED)" : "") + ": ";
  const bool keep = r.best_case == r.default_case;
  if (d.cases.size() == 1)
    out += "the only case — " + format_fixed(r.best_ms, 3) + " ms";
  else if (keep)
    out += "keep the default case, " + short_case_name(d, r.best_case) + " — " +
           format_fixed(r.best_ms, 3) + " ms";
  else
    out += "from the default case, set " + changes(d, r.default_case, r.best_case) + " — " +
           format_fixed(r.best_ms, 3) + " ms, " + gain_text(r.gain_vs_default_pct, "the default");
  if (r.gain_vs_none_pct) out += ", " + gain_text(*r.gain_vs_none_pct, "no overlap");
  if (r.knob)
    out += "; mattered most: " + r.knob->axis + " (" + value_text(r.knob->best) + " best, " +
           value_text(r.knob->worst) + " worst: +" + format_fixed(r.knob->spread_ms, 3) + " ms)";
  return out;
}

ordered_json to_json(const recommendation& r) {
  ordered_json j;
  j["best_case"] = r.best_case;
  j["gain_vs_default_pct"] = r.gain_vs_default_pct;
  j["gain_vs_none_pct"] = r.gain_vs_none_pct ? ordered_json(*r.gain_vs_none_pct) : nullptr;
  if (r.knob)
    j["knob"] = {{"axis", r.knob->axis},
                 {"best", r.knob->best},
                 {"worst", r.knob->worst},
                 {"spread_ms", r.knob->spread_ms},
                 {"spread_pct", r.knob->spread_pct}};
  else
    j["knob"] = nullptr;
  j["best_overlapped_ms"] = r.best_ms;
  j["default_case"] = r.default_case;
  j["default_overlapped_ms"] = r.default_ms;
  j["none_case"] = r.none_case ? ordered_json(*r.none_case) : nullptr;
  j["none_overlapped_ms"] = r.none_ms ? ordered_json(*r.none_ms) : nullptr;
  return j;
}

recommendation recommendation_from_json(const json_object& obj) {
  auto nullable = [&obj](const std::string& key) -> std::optional<double> {
    const json& v = obj.get_raw(key);
    if (v.is_null()) return std::nullopt;
    if (!v.is_number()) obj.fail(key, "expected a number or null, got " + describe_json(v));
    return v.get<double>();
  };
  recommendation r;
  r.best_case = obj.get_string("best_case");
  r.gain_vs_default_pct = obj.get_number("gain_vs_default_pct");
  r.gain_vs_none_pct = nullable("gain_vs_none_pct");
  if (const auto k = obj.get_optional_object("knob")) {
    knob_impact ki;
    ki.axis = k->get_string("axis");
    ki.best = ordered_json::parse(k->get_raw("best").dump());
    ki.worst = ordered_json::parse(k->get_raw("worst").dump());
    ki.spread_ms = k->get_number("spread_ms");
    ki.spread_pct = k->get_number("spread_pct");
    k->finish();
    r.knob = std::move(ki);
  } else {
    obj.get_raw("knob");
  }
  r.best_ms = obj.get_number("best_overlapped_ms");
  r.default_case = obj.get_string("default_case");
  r.default_ms = obj.get_number("default_overlapped_ms");
  const json& none = obj.get_raw("none_case");
  if (none.is_string()) r.none_case = none.get<std::string>();
  r.none_ms = nullable("none_overlapped_ms");
  obj.finish();
  return r;
}

}  // namespace ob
