// The strict reader of step/v1 documents (core/step_result.hpp), for compare, --expect and report.
#include <set>

#include "core/document.hpp"
#include "core/step_result.hpp"

namespace ob {
namespace {

step_breakdown breakdown_from_json(const json_object& obj) {
  step_breakdown b;
  for (const breakdown_part& p : breakdown_parts()) b.*p.value = obj.get_number(p.key);
  obj.finish();
  return b;
}

// The case's fields but `params` and `config`, which the caller copies keeping their key order.
step_record step_record_from_json(const json_object& obj) {
  step_record r;
  r.id = obj.get_string("id");
  if (r.id.empty()) obj.fail("id", "expected a non-empty string");
  obj.get_object("params");
  obj.get_object("config");
  r.step_ms = stats_from_json(obj.get_object("step_ms"));
  r.breakdown_ms = breakdown_from_json(obj.get_object("breakdown_ms"));
  r.exposed_ms = obj.get_number("exposed_ms");
  if (!obj.has("diagnosis")) obj.fail_missing("diagnosis");
  if (const auto d = obj.get_optional_object("diagnosis")) r.diagnosis = diagnosis_from_json(*d);
  if (!obj.has("compute_only_ms")) obj.fail_missing("compute_only_ms");
  if (const auto c = obj.get_optional_object("compute_only_ms"))
    r.compute_only_ms = stats_from_json(*c);
  r.critical_stage = static_cast<int>(obj.get_int_in("critical_stage", 0, 1 << 30));
  r.tokens_per_s_per_gpu = obj.get_number("tokens_per_s_per_gpu");
  r.model_tflops_per_gpu = obj.get_number("model_tflops_per_gpu");
  r.mfu = obj.get_number("mfu");
  r.warnings = get_string_array(obj, "warnings");
  obj.finish();
  return r;
}

}  // namespace

step_doc step_from_json(const ordered_json& oj, const std::string& file) {
  const json j = json::parse(oj.dump());
  const json_object top(j, file, "");
  check_schema(top, step_schema_v1);
  const json& env = top.get_object("env").raw();
  top.get_object("tool");
  top.get_object("config");
  check_simulated(top, env);
  const json& cases = top.get_raw("cases");
  if (!top.has("cases")) top.fail_missing("cases");
  if (!cases.is_array()) top.fail("cases", "expected an array, got " + describe_json(cases));
  step_doc d;
  if (const auto r = top.get_optional_object("recommendation"))
    d.rec = step_recommendation_from_json(*r);
  top.finish();
  d.tool = oj["tool"];
  d.env = oj["env"];
  d.config = oj["config"];
  std::set<std::string> ids;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const json_object obj(cases[i], file, "cases[" + std::to_string(i) + "]");
    step_record r = step_record_from_json(obj);
    if (!ids.insert(r.id).second) obj.fail("id", "duplicate case id '" + r.id + "'");
    r.params = oj["cases"][i]["params"];
    r.config = oj["cases"][i]["config"];
    d.cases.push_back(std::move(r));
  }
  return d;
}

step_doc load_step(const std::string& path) { return step_from_json(read_document(path), path); }

}  // namespace ob
