#include "core/json_util.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace ob {

json load_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw config_error(path + ": cannot open file: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw config_error(path + ": invalid JSON: " + e.what());
  }
}

std::string describe_json(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_object()) return "an object";
  if (v.is_array()) return "an array";
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

json_object::json_object(const json& obj, std::string file, std::string path)
    : obj_(obj), file_(std::move(file)), path_(std::move(path)) {
  if (!obj_.is_object())
    throw config_error(file_ + ": " + (path_.empty() ? std::string("(top level)") : path_) +
                       ": expected an object, got " + describe_json(obj_));
}

bool json_object::has(const std::string& key) const { return find(key) != nullptr; }

std::string json_object::where(const std::string& key) const {
  return file_ + ": " + (path_.empty() ? key : path_ + "." + key);
}

void json_object::fail(const std::string& key, const std::string& message) const {
  throw config_error(where(key) + ": " + message);
}

const json* json_object::find(const std::string& key) const {
  auto it = obj_.find(key);
  if (it == obj_.end()) return nullptr;
  used_.insert(key);
  return &*it;
}

const json& json_object::require(const std::string& key) const {
  const json* v = find(key);
  if (v == nullptr) fail(key, "required field is missing");
  return *v;
}

const json& json_object::get_raw(const std::string& key) const {
  static const json null_value;
  const json* v = find(key);
  return v ? *v : null_value;
}

namespace {
bool is_integer(const json& v) {
  return v.is_number_integer() ||
         (v.is_number_float() &&
          v.get<double>() == static_cast<double>(static_cast<std::int64_t>(v.get<double>())));
}
}  // namespace

std::int64_t json_object::get_int(const std::string& key) const {
  const json& v = require(key);
  if (!is_integer(v)) fail(key, "expected an integer, got " + describe_json(v));
  return v.is_number_integer() ? v.get<std::int64_t>() : static_cast<std::int64_t>(v.get<double>());
}

std::int64_t json_object::get_int(const std::string& key, std::int64_t fallback) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  return get_int(key);
}

std::optional<std::int64_t> json_object::get_optional_int(const std::string& key) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  return get_int(key);
}

std::int64_t json_object::get_positive_int(const std::string& key) const {
  const json& v = require(key);
  if (!is_integer(v) || get_int(key) <= 0)
    fail(key, "expected a positive integer, got " + describe_json(v));
  return get_int(key);
}

std::int64_t json_object::get_positive_int(const std::string& key, std::int64_t fallback) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  return get_positive_int(key);
}

double json_object::get_number(const std::string& key) const {
  const json& v = require(key);
  if (!v.is_number()) fail(key, "expected a number, got " + describe_json(v));
  return v.get<double>();
}

double json_object::get_number(const std::string& key, double fallback) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  return get_number(key);
}

double json_object::get_positive_number(const std::string& key) const {
  const json& v = require(key);
  if (!v.is_number() || !(v.get<double>() > 0))
    fail(key, "expected a positive number, got " + describe_json(v));
  return v.get<double>();
}

bool json_object::get_bool(const std::string& key) const {
  const json& v = require(key);
  if (!v.is_boolean()) fail(key, "expected true or false, got " + describe_json(v));
  return v.get<bool>();
}

bool json_object::get_bool(const std::string& key, bool fallback) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  return get_bool(key);
}

std::optional<bool> json_object::get_optional_bool(const std::string& key) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  return get_bool(key);
}

std::string json_object::get_string(const std::string& key) const {
  const json& v = require(key);
  if (!v.is_string()) fail(key, "expected a string, got " + describe_json(v));
  return v.get<std::string>();
}

std::string json_object::get_string(const std::string& key, const std::string& fallback) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  return get_string(key);
}

std::string json_object::get_enum(const std::string& key,
                                  const std::vector<std::string>& allowed) const {
  const std::string s = get_string(key);
  for (const auto& a : allowed)
    if (a == s) return s;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  fail(key, "unknown value '" + s + "' (expected one of: " + list + ")");
}

std::string json_object::get_enum(const std::string& key, const std::vector<std::string>& allowed,
                                  const std::string& fallback) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  return get_enum(key, allowed);
}

json_object json_object::get_object(const std::string& key) const {
  const json& v = require(key);
  if (!v.is_object()) fail(key, "expected an object, got " + describe_json(v));
  return json_object(v, file_, path_.empty() ? key : path_ + "." + key);
}

std::optional<json_object> json_object::get_optional_object(const std::string& key) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  return get_object(key);
}

std::vector<std::string> json_object::unused_keys() const {
  std::vector<std::string> out;
  for (auto it = obj_.begin(); it != obj_.end(); ++it)
    if (!used_.count(it.key())) out.push_back(it.key());
  return out;
}

void json_object::finish() const {
  const auto unused = unused_keys();
  if (!unused.empty()) fail(unused.front(), "unknown key (check the spelling)");
}

void write_file_atomic(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw runtime_failure(path + ": cannot write: " + std::strerror(errno));
    out << content;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw runtime_failure(path + ": write failed: " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw runtime_failure(path + ": rename failed: " + why);
  }
}

}  // namespace ob
