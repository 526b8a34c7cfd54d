#include "results/document.hpp"

#include "base/error.hpp"

namespace ob {
namespace {

// "result" for overlap-bench/result/v1: the word the messages use.
std::string kind_word(const std::string& schema) {
  const std::string prefix = "overlap-bench/";
  if (schema.rfind(prefix, 0) != 0) return "";
  const std::size_t slash = schema.find('/', prefix.size());
  return schema.substr(prefix.size(), slash == std::string::npos ? slash : slash - prefix.size());
}

ordered_json to_ordered(const json& v) { return ordered_json::parse(v.dump()); }

}  // namespace

ordered_json read_document(const std::string& path) {
  const std::string text = read_file_text(path, "result file");
  try {
    return ordered_json::parse(text);
  } catch (const ordered_json::exception& e) {
    throw config_error(path + ": " + describe_parse_error(e));
  }
}

std::string schema_of(const ordered_json& doc) {
  if (!doc.is_object()) return "";
  const auto it = doc.find("schema");
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string describe_schema(const std::string& schema) {
  const std::string kind = kind_word(schema);
  if (kind == "result") return "a layer/pair result (" + schema + ")";
  if (kind == "step") return "a step document (" + schema + ")";
  if (!kind.empty()) return "a " + kind + " document (" + schema + ")";
  return "not an overlap-bench document (no known \"schema\")";
}

void check_schema(const json_object& top, const std::string& expected) {
  const std::string schema = top.get_string("schema");
  if (schema != expected)
    top.fail("schema", "expected \"" + expected + "\", got \"" + schema +
                           "\" (not an overlap-bench " + kind_word(expected) + " v1 document)");
}

bool check_simulated(const json_object& top, const json& env) {
  const bool simulated = top.get_bool("simulated");
  if (env.contains("simulated")) {
    const json& e = env["simulated"];
    if (!e.is_boolean())
      top.fail("env.simulated", "expected true or false, got " + describe_json(e));
    if (e.get<bool>() != simulated) top.fail("simulated", "disagrees with env.simulated");
  }
  return simulated;
}

bool env_simulated(const ordered_json& env) {
  auto it = env.find("simulated");
  return it != env.end() && it->is_boolean() && it->get<bool>();
}

void partial_marker_to_json(const std::optional<std::size_t>& planned, ordered_json& j) {
  if (!planned) return;
  j["complete"] = false;
  j["planned_cases"] = *planned;
}

std::optional<std::size_t> partial_marker_from_json(const json_object& top, std::size_t cases) {
  const bool complete = top.get_bool("complete", true);
  const std::optional<std::int64_t> planned = top.get_optional_int("planned_cases");
  if (complete) {
    if (planned) top.fail("planned_cases", "only a partial document (\"complete\": false) has it");
    return std::nullopt;
  }
  if (!planned) top.fail_missing("planned_cases");
  if (*planned < static_cast<std::int64_t>(cases))
    top.fail("planned_cases", "expected at least the " + std::to_string(cases) +
                                  " cases the document holds, got " + std::to_string(*planned));
  return static_cast<std::size_t>(*planned);
}

bool doc_header::simulated() const { return env_simulated(env); }

std::string doc_header::backend() const {
  auto it = env.find("backend");
  return it != env.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void header_to_json(const doc_header& h, const char* schema, ordered_json& j) {
  j["schema"] = schema;
  j["simulated"] = h.simulated();
  partial_marker_to_json(h.planned_cases, j);
  j["tool"] = h.tool.is_null() ? ordered_json::object() : h.tool;
  j["env"] = h.env.is_null() ? ordered_json::object() : h.env;
  j["config"] = h.config.is_null() ? ordered_json::object() : h.config;
}

const json& read_header(const json_object& top, const ordered_json* ordered,
                        const std::string& schema, const std::string& payload, doc_header& h,
                        bool config_optional) {
  check_schema(top, schema);
  const json& env = top.get_object("env").raw();
  top.get_object("tool");
  const bool has_config = !config_optional || top.get_optional_object("config").has_value();
  if (!config_optional) top.get_object("config");
  check_simulated(top, env);
  const json& items = top.get_raw(payload);
  if (!top.has(payload)) top.fail_missing(payload);
  if (!items.is_array()) top.fail(payload, "expected an array, got " + describe_json(items));
  h.planned_cases = partial_marker_from_json(top, items.size());
  const json& j = top.raw();
  h.tool = ordered ? (*ordered)["tool"] : to_ordered(j["tool"]);
  h.env = ordered ? (*ordered)["env"] : to_ordered(j["env"]);
  if (has_config) h.config = ordered ? (*ordered)["config"] : to_ordered(j["config"]);
  return items;
}

std::string partial_text(const std::optional<std::size_t>& planned, std::size_t cases) {
  if (!planned) return "";
  return "PARTIAL: " + std::to_string(cases) + " of " + std::to_string(*planned) +
         " cases (the sweep was stopped; --resume measures the rest)";
}

}  // namespace ob
