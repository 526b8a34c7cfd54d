#include "analysis/timeline.hpp"

#include "analysis/critical_path.hpp"

namespace ob {

std::optional<case_timeline> make_timeline(const schedule& s, const std::vector<op_interval>& ops,
                                           int cdmc) {
  if (ops.empty()) return std::nullopt;
  case_timeline t;
  for (const stream& st : s.streams) t.streams.push_back(st.name);
  std::vector<bool> critical(s.ops.size(), false);
  for (const path_segment& g : critical_path(s, ops, cdmc))
    if (g.exec) critical[g.op] = true;
  for (const op_interval& i : ops) {
    if (i.op_id < 0 || static_cast<std::size_t>(i.op_id) >= s.ops.size()) return std::nullopt;
    const op& o = s.ops[i.op_id];
    t.ops.push_back(
        {o.name, o.stream, std::string(to_string(o.kind())), i.start_us, i.end_us, critical[o.id]});
  }
  return t;
}

ordered_json to_json(const case_timeline& t) {
  ordered_json j;
  j["streams"] = t.streams;
  j["ops"] = ordered_json::array();
  for (const timeline_op& o : t.ops)
    j["ops"].push_back({{"name", o.name},
                        {"stream", o.stream},
                        {"kind", o.kind},
                        {"start_us", o.start_us},
                        {"end_us", o.end_us},
                        {"critical", o.critical}});
  return j;
}

case_timeline timeline_from_json(const json_object& obj) {
  case_timeline t;
  const std::string base = obj.path().empty() ? "" : obj.path() + ".";
  const json& streams = obj.get_raw("streams");
  if (!streams.is_array()) obj.fail("streams", "expected an array of names");
  for (const json& s : streams) {
    if (!s.is_string()) obj.fail("streams", "expected an array of names");
    t.streams.push_back(s.get<std::string>());
  }
  const json& ops = obj.get_raw("ops");
  if (!ops.is_array()) obj.fail("ops", "expected an array, got " + describe_json(ops));
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const json_object o(ops[i], obj.file(), base + "ops[" + std::to_string(i) + "]");
    timeline_op x;
    x.name = o.get_string("name");
    x.stream = static_cast<int>(o.get_int("stream"));
    if (x.stream < 0 || static_cast<std::size_t>(x.stream) >= t.streams.size())
      o.fail("stream", "expected an index into streams");
    x.kind = o.get_enum("kind", {"gemm", "collective", "p2p", "elementwise", "delay"});
    x.start_us = o.get_number("start_us");
    x.end_us = o.get_number("end_us");
    x.critical = o.get_bool("critical");
    o.finish();
    t.ops.push_back(std::move(x));
  }
  obj.finish();
  return t;
}

}  // namespace ob
