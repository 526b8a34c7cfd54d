// The strict reader of step/v1 documents (results/step_result.hpp), for compare, --expect and
// report.
#include <set>

#include "results/document.hpp"
#include "results/step_result.hpp"

namespace ob {

step_doc step_from_json(const ordered_json& oj, const std::string& file) {
  const json j = json::parse(oj.dump());
  const json_object top(j, file, "");
  step_doc d;
  const json& cases = read_header(top, &oj, step_schema_v1, "cases", d);
  if (const auto r = top.get_optional_object("recommendation"))
    d.rec = step_recommendation_from_json(*r);
  if (top.get_optional_object("search")) d.search = oj["search"];
  const json& oom = top.get_raw("oom");
  if (!oom.is_null() && !oom.is_array())
    top.fail("oom", "expected an array, got " + describe_json(oom));
  top.finish();
  std::set<std::string> ids;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string where = "cases[" + std::to_string(i) + "]";
    step_record r = step_record_from_json(oj["cases"][i], file, where);
    if (!ids.insert(r.id).second)
      json_object(cases[i], file, where).fail("id", "duplicate case id '" + r.id + "'");
    d.cases.push_back(std::move(r));
  }
  for (std::size_t i = 0; oom.is_array() && i < oom.size(); ++i) {
    oom_record r = oom_record_from_json(oj["oom"][i], file, "oom[" + std::to_string(i) + "]");
    if (!ids.insert(r.id).second)
      json_object(oom[i], file, "oom[" + std::to_string(i) + "]")
          .fail("id", "duplicate case id '" + r.id + "'");
    d.oom.push_back(std::move(r));
  }
  return d;
}

step_doc load_step(const std::string& path) { return step_from_json(read_document(path), path); }

}  // namespace ob
