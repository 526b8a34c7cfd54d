#pragma once
// What a sweep adds to its numbers (docs/ARCHITECTURE.md §7.1–7.3): per case, why its
// communication was exposed and (for the best and worst case) its timeline; per document, the
// recommendation. Kept apart from the sweep and the result writer so both stay as they were.
#include "base/json_util.hpp"
#include "model/executor.hpp"

namespace ob {

struct case_record;
struct result_doc;

// The diagnosis and the compact timeline of a case just measured (rec.m already computed).
void annotate_case(case_record& rec, const variant_schedules& v, const variant_measurements& m,
                   int cdmc);

// Keeps a timeline only on the best and the worst case seen so far (lowest and highest
// overlapped median), so a long sweep does not hold one per case. Records must stay in place.
class timeline_keeper {
 public:
  void offer(case_record& rec);

 private:
  case_record* best_ = nullptr;
  case_record* worst_ = nullptr;
};

// At the end of a sweep: timelines only on the document's best and worst case, and the
// recommendation.
void finish_answers(result_doc& d);

// JSON of the case fields above (diagnosis, predicted, deviation_pct, timeline) and the document's
// recommendation; readers accept documents written before they existed.
void case_answers_to_json(const case_record& c, ordered_json& j);
void read_case_answers(const json_object& obj, case_record& c);
void doc_answers_to_json(const result_doc& d, ordered_json& j);
void read_doc_answers(const json_object& top, result_doc& d);

}  // namespace ob
