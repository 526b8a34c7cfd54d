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

std::string partial_text(const std::optional<std::size_t>& planned, std::size_t cases) {
  if (!planned) return "";
  return "PARTIAL: " + std::to_string(cases) + " of " + std::to_string(*planned) +
         " cases (the sweep was stopped; --resume measures the rest)";
}

}  // namespace ob
