#pragma once
// Strict, path-aware access to JSON config objects. Every error names the file and the JSON path
// (docs/ARCHITECTURE.md §1): "configs/x.json: model.hidden_size: expected a positive integer, got
// -5".
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ob {

using json = nlohmann::json;
// Keeps the key order of the file, so printed JSON reads like its input.
using ordered_json = nlohmann::ordered_json;

// Reads and parses a JSON file; a missing file or a parse error is a config_error (exit 2).
json load_json_file(const std::string& path);
// A file's bytes; a folder ("x: is a folder, not a <what>") or a file that cannot be opened is a
// config_error naming it.
std::string read_file_text(const std::string& path, const std::string& what);

// A view of one JSON object inside a file. Reading a key marks it used; `finish()` rejects the
// keys nobody read, so a typo never silently falls back to a default.
class json_object {
 public:
  json_object(const json& obj, std::string file, std::string path);

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  const json& raw() const { return obj_; }
  bool has(const std::string& key) const;
  // "file: path.key" for messages.
  std::string where(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // `key` is required but absent. When an unknown key present is a likely misspelling of it,
  // names that key instead: "x.json: comm_overlap.tp_comm_overlapp: unknown key (did you mean
  // tp_comm_overlap?)", so a typo is never reported as a missing field.
  [[noreturn]] void fail_missing(const std::string& key, const std::string& what = "field") const;

  std::int64_t get_int(const std::string& key) const;
  std::int64_t get_int(const std::string& key, std::int64_t fallback) const;
  std::int64_t get_positive_int(const std::string& key) const;
  std::int64_t get_positive_int(const std::string& key, std::int64_t fallback) const;
  std::optional<std::int64_t> get_optional_int(const std::string& key) const;
  // An integer from `lo` to `hi`: a value that would not fit what reads it is refused, not cut
  // ("expected a positive integer up to 1024, got 99999999999").
  std::int64_t get_int_in(const std::string& key, std::int64_t lo, std::int64_t hi) const;
  std::int64_t get_int_in(const std::string& key, std::int64_t lo, std::int64_t hi,
                          std::int64_t fallback) const;
  double get_number(const std::string& key) const;
  double get_number(const std::string& key, double fallback) const;
  double get_positive_number(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::optional<bool> get_optional_bool(const std::string& key) const;  // absent or null -> nullopt
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // A required array of strings ("warnings"); the message names the item that is not one.
  std::vector<std::string> get_string_list(const std::string& key) const;
  // One of `allowed`; the message lists them.
  std::string get_enum(const std::string& key, const std::vector<std::string>& allowed) const;
  std::string get_enum(const std::string& key, const std::vector<std::string>& allowed,
                       const std::string& fallback) const;
  json_object get_object(const std::string& key) const;
  std::optional<json_object> get_optional_object(const std::string& key) const;
  // Marks a key used and returns its raw value (or null when absent).
  const json& get_raw(const std::string& key) const;

  // Keys present in the object that were never read.
  std::vector<std::string> unused_keys() const;
  // Throws config_error naming the first unused key, and the known key it most likely meant.
  void finish() const;

 private:
  const json& require(const std::string& key) const;
  const json* find(const std::string& key) const;

  const json& obj_;
  std::string file_;
  std::string path_;
  mutable std::set<std::string> used_;
  mutable std::vector<std::string> asked_;  // every key looked up, present or not, in order
};

// Edits (insert, delete, replace, swap two neighbours) between two names.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The candidate `word` most likely misspells (ties to the first), or "" when none is within
// `max_edits` (by default about one edit per four letters).
std::string likely_meant(const std::string& word, const std::vector<std::string>& candidates,
                         std::size_t max_edits = 0);

// A parse error's position and reason, without the library's error code: "invalid JSON at line
// 1, column 21: syntax error while parsing object - unexpected end of input", "invalid JSON:
// number overflow parsing '1e400'".
std::string describe_parse_error(const json::exception& e);

// j.dump(indent) that never throws on text that is not UTF-8 (an environment variable, a file
// name, a flag): such bytes become U+FFFD instead of a library exception. Identical to dump()
// for valid text.
template <class J>
std::string dump_json(const J& j, int indent = -1) {
  return j.dump(indent, ' ', false, J::error_handler_t::replace);
}

// Short description of a JSON value for error messages: -5, "abc", an object, null.
std::string describe_json(const json& v);

// Writes `content` to `path` through a temporary file in the same folder and a rename, so a
// crash never leaves half a file. Throws runtime_failure on I/O errors.
void write_file_atomic(const std::string& path, const std::string& content);

// A result document written one case at a time, still all or nothing (docs/ARCHITECTURE.md
// §7.5): `head` is the document with an empty array as its last value ("cases"), which the file
// gets as item(0) .. item(count - 1). Byte for byte what write_file_atomic(path,
// dump_json(whole, 2) + "\n") writes, without building the whole document as one JSON value or
// one string, so a sweep of any length holds one case's text at a time.
void write_json_streamed(const std::string& path, const ordered_json& head, std::size_t count,
                         const std::function<ordered_json(std::size_t)>& item);

}  // namespace ob
