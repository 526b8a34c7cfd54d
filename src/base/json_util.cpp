#include "base/json_util.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "base/atomic_file.hpp"
#include "base/error.hpp"

namespace ob {

std::string read_file_text(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw config_error(path + ": is a folder, not a " + what);
  std::ifstream in(path);
  if (!in) throw config_error(path + ": cannot open file: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json load_json_file(const std::string& path) {
  const std::string text = read_file_text(path, "JSON file");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw config_error(path + ": " + describe_parse_error(e));
  }
}

std::string describe_parse_error(const json::exception& e) {
  // what() is "[json.exception.parse_error.101] parse error at line 1, column 2: <reason>", or
  // "[json.exception.out_of_range.406] number overflow parsing '1e400'".
  std::string text = e.what();
  if (const auto end = text.find("] "); text.starts_with("[json.exception.") && end != text.npos)
    text.erase(0, end + 2);
  const std::string marker = "parse error";
  if (text.starts_with(marker)) text.erase(0, marker.size());
  if (!text.empty() && text.front() == ':') text.erase(0, 1);
  while (!text.empty() && text.front() == ' ') text.erase(0, 1);
  return "invalid JSON" + std::string(text.starts_with("at ") ? " " : ": ") + text;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment over three rows: a transposed pair ("modle") is one edit.
  std::vector<std::size_t> before(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], before[j - 2] + 1);
    }
    std::swap(before, prev);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string likely_meant(const std::string& word, const std::vector<std::string>& candidates,
                         std::size_t max_edits) {
  const std::size_t reach = max_edits ? max_edits : std::max<std::size_t>(1, word.size() / 4);
  std::string best;
  std::size_t best_d = reach + 1;
  for (const auto& c : candidates) {
    if (c == word) continue;
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) best = c, best_d = d;
  }
  return best;
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
  if (std::find(asked_.begin(), asked_.end(), key) == asked_.end()) asked_.push_back(key);
  auto it = obj_.find(key);
  if (it == obj_.end()) return nullptr;
  used_.insert(key);
  return &*it;
}

const json& json_object::require(const std::string& key) const {
  const json* v = find(key);
  if (v == nullptr) fail_missing(key);
  return *v;
}

void json_object::fail_missing(const std::string& key, const std::string& what) const {
  // Only one edit away, and only long names: the keys not read yet include real fields read
  // later, and among those short names (tp, pp; p10, p90) or two edits (comm_slowdown,
  // gemm_slowdown) separate real siblings.
  if (key.size() >= 5) {
    for (const auto& k : unused_keys())
      if (likely_meant(k, {key}, 1) == key) fail(k, "unknown key (did you mean " + key + "?)");
  }
  fail(key, "required " + what + " is missing");
}

const json& json_object::get_raw(const std::string& key) const {
  static const json null_value;
  const json* v = find(key);
  return v ? *v : null_value;
}

namespace {
// Whole numbers an int64 holds: 4, 4.0; not 1e30 or 2^64 - 1, which would wrap when read.
bool is_integer(const json& v) {
  if (v.is_number_unsigned())
    return v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX);
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::fabs(d) < 9.2e18 && d == std::trunc(d);
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

std::int64_t json_object::get_int_in(const std::string& key, std::int64_t lo,
                                     std::int64_t hi) const {
  const json& v = require(key);
  if (is_integer(v) && get_int(key) >= lo && get_int(key) <= hi) return get_int(key);
  const std::string kind = lo == 1   ? "a positive integer up to "
                           : lo == 0 ? "a non-negative integer up to "
                                     : "an integer from " + std::to_string(lo) + " to ";
  fail(key, "expected " + kind + std::to_string(hi) + ", got " + describe_json(v));
}

std::int64_t json_object::get_int_in(const std::string& key, std::int64_t lo, std::int64_t hi,
                                     std::int64_t fallback) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  return get_int_in(key, lo, hi);
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

std::vector<std::string> json_object::get_string_list(const std::string& key) const {
  const json& v = require(key);
  if (!v.is_array()) fail(key, "expected an array of strings, got " + describe_json(v));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string())
      fail(key + "[" + std::to_string(i) + "]", "expected a string, got " + describe_json(v[i]));
    out.push_back(v[i].get<std::string>());
  }
  return out;
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
  if (unused.empty()) return;
  const std::string meant = likely_meant(unused.front(), asked_);
  fail(unused.front(),
       "unknown key (" +
           (meant.empty() ? std::string("check the spelling") : "did you mean " + meant + "?") +
           ")");
}

void write_file_atomic(const std::string& path, const std::string& content) {
  atomic_file out(path);
  out.write(content);
  out.commit();
}

namespace {

// One item at the nesting of the document's array: dump(2) with every line four spaces in.
std::string indented_item(const ordered_json& item) {
  const std::string text = dump_json(item, 2);
  std::string out = "    ";
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    out += ch;
    if (ch == '\n') out += "    ";
  }
  return out;
}

}  // namespace

void write_json_streamed(const std::string& path, const ordered_json& head, std::size_t count,
                         const std::function<ordered_json(std::size_t)>& item) {
  // dump(2) of `head` ends with `"cases": []\n}`: the frame is that text less the empty array.
  constexpr std::string_view empty_tail = "[]\n}";
  std::string frame = dump_json(head, 2);
  if (head.empty() || !head.back().is_array() || !head.back().empty() ||
      !frame.ends_with(empty_tail))
    throw std::logic_error("write_json_streamed: the head's last value must be an empty array");
  atomic_file out(path);
  if (count == 0) {
    out.write(frame + "\n");
    out.commit();
    return;
  }
  frame.resize(frame.size() - empty_tail.size());
  out.write(frame);
  for (std::size_t i = 0; i < count; ++i) {
    out.write(i == 0 ? "[\n" : ",\n");
    out.write(indented_item(item(i)));
  }
  out.write("\n  ]\n}\n");
  out.commit();
}

}  // namespace ob
