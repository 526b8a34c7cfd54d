#include "results/answers.hpp"

#include "results/result.hpp"

namespace ob {
namespace {

bool valid(const case_record& c) { return c.m.wrong == 0 && c.m.overlapped_ms.n > 0; }
double time_of(const case_record& c) { return c.m.overlapped_ms.median; }

std::optional<double> nullable_number(const json_object& obj, const std::string& key) {
  const json& v = obj.get_raw(key);
  if (v.is_null()) return std::nullopt;
  if (!v.is_number()) obj.fail(key, "expected a number or null, got " + describe_json(v));
  return v.get<double>();
}

}  // namespace

void annotate_case(case_record& rec, const variant_schedules& v, const variant_measurements& m,
                   int cdmc) {
  rec.diag = diagnose_case(v, m, rec.m.exposed_comm_ms, rec.m.overlapped_ms.median, cdmc);
  const auto ov = static_cast<int>(variant::overlapped);
  rec.timeline = make_timeline(v[ov], m[ov].ops, cdmc);
}

void timeline_keeper::offer(case_record& rec) {
  if (!rec.timeline) return;
  if (!valid(rec)) {
    rec.timeline.reset();
    return;
  }
  bool kept = false;
  if (!best_ || time_of(rec) < time_of(*best_)) {
    case_record* old = std::exchange(best_, &rec);
    if (old && old != worst_) old->timeline.reset();
    kept = true;
  }
  if (!worst_ || time_of(rec) > time_of(*worst_)) {
    case_record* old = std::exchange(worst_, &rec);
    if (old && old != best_) old->timeline.reset();
    kept = true;
  }
  if (!kept) rec.timeline.reset();
}

void finish_answers(result_doc& d) {
  const case_record *best = nullptr, *worst = nullptr;
  for (const case_record& c : d.cases) {
    if (!valid(c)) continue;
    if (!best || time_of(c) < time_of(*best)) best = &c;
    if (!worst || time_of(c) > time_of(*worst)) worst = &c;
  }
  for (case_record& c : d.cases)
    if (&c != best && &c != worst) c.timeline.reset();
  d.rec = recommend(d);
}

void case_answers_to_json(const case_record& c, ordered_json& j) {
  j["diagnosis"] = c.diag ? to_json(*c.diag) : ordered_json(nullptr);
  j["predicted"] = c.predicted ? to_json(*c.predicted) : ordered_json(nullptr);
  j["deviation_pct"] = c.predicted ? ordered_json(c.predicted->deviation_pct) : nullptr;
  if (c.timeline) j["timeline"] = to_json(*c.timeline);
}

void read_case_answers(const json_object& obj, case_record& c) {
  if (const auto d = obj.get_optional_object("diagnosis")) c.diag = diagnosis_from_json(*d);
  const std::optional<double> deviation = nullable_number(obj, "deviation_pct");
  if (const auto p = obj.get_optional_object("predicted")) {
    if (!deviation) obj.fail("deviation_pct", "expected a number when predicted is given");
    c.predicted = prediction_from_json(*p, *deviation);
  }
  if (const auto t = obj.get_optional_object("timeline")) c.timeline = timeline_from_json(*t);
}

void doc_answers_to_json(const result_doc& d, ordered_json& j) {
  j["recommendation"] = d.rec ? to_json(*d.rec) : ordered_json(nullptr);
}

void read_doc_answers(const json_object& top, result_doc& d) {
  if (const auto r = top.get_optional_object("recommendation"))
    d.rec = recommendation_from_json(*r);
}

}  // namespace ob
