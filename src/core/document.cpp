#include "core/document.hpp"

#include "core/error.hpp"

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

}  // namespace ob
