#include "results/result.hpp"

#include <map>
#include <set>

#include "base/error.hpp"
#include "model/collective_traits.hpp"
#include "results/answers.hpp"
#include "results/document.hpp"

namespace ob {

namespace {

ordered_json optional_json(const std::optional<double>& v) {
  return v ? ordered_json(*v) : ordered_json(nullptr);
}

// A field that must be present but may be null (a metric the case could not have).
std::optional<double> get_nullable_number(const json_object& obj, const std::string& key) {
  if (!obj.has(key)) obj.fail_missing(key);
  const json& v = obj.get_raw(key);
  if (v.is_null()) return std::nullopt;
  if (!v.is_number()) obj.fail(key, "expected a number or null, got " + describe_json(v));
  return v.get<double>();
}

std::int64_t get_non_negative_int(const json_object& obj, const std::string& key) {
  const std::int64_t v = obj.get_int(key);
  if (v < 0) obj.fail(key, "expected an integer >= 0, got " + std::to_string(v));
  return v;
}

const json& get_object_raw(const json_object& obj, const std::string& key) {
  return obj.get_object(key).raw();  // validates presence and type
}

ordered_json to_ordered(const json& v) { return ordered_json::parse(v.dump()); }

case_record case_from_json(const json_object& obj) {
  case_record c;
  c.id = obj.get_string("id");
  if (c.id.empty()) obj.fail("id", "expected a non-empty string");
  c.scenario = obj.get_string("scenario");
  get_object_raw(obj, "params");  // filled by the caller, which knows the key order
  case_metrics& m = c.m;
  m.compute_ms = stats_from_json(obj.get_object("compute_ms"));
  m.compute_with_margin_ms = stats_from_json(obj.get_object("compute_with_margin_ms"));
  m.comm_ms = stats_from_json(obj.get_object("comm_ms"));
  m.serial_ms = stats_from_json(obj.get_object("serial_ms"));
  m.overlapped_ms = stats_from_json(obj.get_object("overlapped_ms"));
  m.exposed_comm_ms = obj.get_number("exposed_comm_ms");
  m.overlap_efficiency = get_nullable_number(obj, "overlap_efficiency");
  m.speedup_vs_serial = get_nullable_number(obj, "speedup_vs_serial");
  m.ideal_ms = obj.get_number("ideal_ms");
  m.headroom_ms = obj.get_number("headroom_ms");
  m.gemm_slowdown = get_nullable_number(obj, "gemm_slowdown");
  m.comm_slowdown = get_nullable_number(obj, "comm_slowdown");
  m.timeline_overlap_pct = get_nullable_number(obj, "timeline_overlap_pct");
  m.gemm_tflops = get_nullable_number(obj, "gemm_tflops");
  m.gemm_tflops_overlapped = get_nullable_number(obj, "gemm_tflops_overlapped");
  m.comm_busbw_gbps = get_nullable_number(obj, "comm_busbw_gbps");
  m.comm_busbw_gbps_overlapped = get_nullable_number(obj, "comm_busbw_gbps_overlapped");
  m.wrong = get_non_negative_int(obj, "wrong");
  c.warnings = obj.get_string_list("warnings");
  read_case_answers(obj, c);
  obj.finish();
  return c;
}

result_doc read_result(const json& j, const ordered_json* ordered, const std::string& file) {
  const json_object top(j, file, "");
  result_doc d;
  const json& cases = read_header(top, ordered, result_schema_v1, "cases", d);
  read_doc_answers(top, d);
  top.finish();

  std::set<std::string> ids;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const json_object obj(cases[i], file, "cases[" + std::to_string(i) + "]");
    case_record c = case_from_json(obj);
    if (!ids.insert(c.id).second) obj.fail("id", "duplicate case id '" + c.id + "'");
    c.params = ordered ? (*ordered)["cases"][i]["params"] : to_ordered(cases[i]["params"]);
    d.cases.push_back(std::move(c));
  }
  return d;
}

// ---- CSV ----------------------------------------------------------------------------------

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

void flatten(const ordered_json& v, const std::string& prefix,
             std::vector<std::pair<std::string, ordered_json>>& out) {
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      flatten(it.value(), prefix + "." + it.key(), out);
  } else {
    out.emplace_back(prefix, v);
  }
}

const std::vector<std::pair<const char*, stats case_metrics::*>>& stat_fields() {
  static const std::vector<std::pair<const char*, stats case_metrics::*>> fields = {
      {"compute_ms", &case_metrics::compute_ms},
      {"compute_with_margin_ms", &case_metrics::compute_with_margin_ms},
      {"comm_ms", &case_metrics::comm_ms},
      {"serial_ms", &case_metrics::serial_ms},
      {"overlapped_ms", &case_metrics::overlapped_ms}};
  return fields;
}

// Scalar metrics in document order; the case's JSON is the single source of their values.
const std::vector<const char*>& scalar_fields() {
  static const std::vector<const char*> fields = {"exposed_comm_ms",
                                                  "overlap_efficiency",
                                                  "speedup_vs_serial",
                                                  "ideal_ms",
                                                  "headroom_ms",
                                                  "gemm_slowdown",
                                                  "comm_slowdown",
                                                  "timeline_overlap_pct",
                                                  "gemm_tflops",
                                                  "gemm_tflops_overlapped",
                                                  "comm_busbw_gbps",
                                                  "comm_busbw_gbps_overlapped",
                                                  "wrong"};
  return fields;
}

}  // namespace

std::string csv_value(const ordered_json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();  // numbers in shortest round-trip form, bools, arrays as JSON
}

void append_csv_row(std::string& out, const std::vector<std::string>& cells) {
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i) out += ',';
    out += csv_field(cells[i]);
  }
  out += "\r\n";  // RFC 4180 line ending
}

ordered_json to_json(const case_record& c) {
  const case_metrics& m = c.m;
  ordered_json j;
  j["id"] = c.id;
  j["scenario"] = c.scenario;
  j["params"] = c.params.is_null() ? ordered_json::object() : c.params;
  for (const auto& [name, member] : stat_fields()) j[name] = to_json(m.*member);
  j["exposed_comm_ms"] = m.exposed_comm_ms;
  j["overlap_efficiency"] = optional_json(m.overlap_efficiency);
  j["speedup_vs_serial"] = optional_json(m.speedup_vs_serial);
  j["ideal_ms"] = m.ideal_ms;
  j["headroom_ms"] = m.headroom_ms;
  j["gemm_slowdown"] = optional_json(m.gemm_slowdown);
  j["comm_slowdown"] = optional_json(m.comm_slowdown);
  j["timeline_overlap_pct"] = optional_json(m.timeline_overlap_pct);
  j["gemm_tflops"] = optional_json(m.gemm_tflops);
  j["gemm_tflops_overlapped"] = optional_json(m.gemm_tflops_overlapped);
  j["comm_busbw_gbps"] = optional_json(m.comm_busbw_gbps);
  j["comm_busbw_gbps_overlapped"] = optional_json(m.comm_busbw_gbps_overlapped);
  j["wrong"] = m.wrong;
  j["warnings"] = c.warnings;
  case_answers_to_json(c, j);
  return j;
}

ordered_json to_json(const result_doc& d) {
  ordered_json j;
  header_to_json(d, result_schema_v1, j);
  // The recommendation before the cases: write_result_json streams the cases as the tail.
  doc_answers_to_json(d, j);
  j["cases"] = ordered_json::array();
  for (const case_record& c : d.cases) j["cases"].push_back(to_json(c));
  return j;
}

result_doc result_from_json(const json& j, const std::string& file) {
  return read_result(j, nullptr, file);
}

result_doc result_from_json(const ordered_json& j, const std::string& file) {
  const json plain = json::parse(j.dump());
  return read_result(plain, &j, file);
}

case_record case_record_from_json(const ordered_json& j, const std::string& file,
                                  const std::string& where) {
  const json plain = json::parse(j.dump());
  case_record c = case_from_json(json_object(plain, file, where));
  c.params = j.at("params");  // case_from_json checked it is there; this keeps its key order
  return c;
}

result_doc load_result(const std::string& path) {
  return result_from_json(read_document(path), path);
}

void write_result_json(const std::string& path, const result_doc& d) {
  result_doc head;  // the document less its cases, which are written one at a time
  static_cast<doc_header&>(head) = d;
  write_json_streamed(path, to_json(head), d.cases.size(),
                      [&d](std::size_t i) { return to_json(d.cases[i]); });
}

std::string result_csv(const result_doc& d) {
  // Union of flattened params keys in first-seen order, so every row has the same columns.
  std::vector<std::vector<std::pair<std::string, ordered_json>>> flat(d.cases.size());
  std::vector<std::string> param_cols;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < d.cases.size(); ++i) {
    const ordered_json& p = d.cases[i].params;
    if (p.is_object())
      for (auto it = p.begin(); it != p.end(); ++it)
        flatten(it.value(), "params." + it.key(), flat[i]);
    for (const auto& [k, v] : flat[i])
      if (seen.insert(k).second) param_cols.push_back(k);
  }

  std::vector<std::string> header = {"id", "scenario", "backend", "simulated"};
  header.insert(header.end(), param_cols.begin(), param_cols.end());
  for (const auto& [name, member] : stat_fields())
    for (const char* s : csv_stat_names) header.push_back(std::string(name) + "." + s);
  for (const char* f : scalar_fields()) header.push_back(f);
  // The table's why, as in the step CSV: the main cause's name and the line a person reads.
  header.insert(header.end(), {"main_cause", "why", "warnings"});

  std::string out;
  append_csv_row(out, header);
  const std::string backend = d.backend();
  const std::string simulated = d.simulated() ? "true" : "false";
  for (std::size_t i = 0; i < d.cases.size(); ++i) {
    const case_record& c = d.cases[i];
    const ordered_json j = to_json(c);
    std::vector<std::string> row = {c.id, c.scenario, backend, simulated};
    for (const std::string& col : param_cols) {
      std::string cell;
      for (const auto& [k, v] : flat[i])
        if (k == col) cell = csv_value(v);
      row.push_back(cell);
    }
    for (const auto& [name, member] : stat_fields())
      for (const char* s : csv_stat_names) row.push_back(csv_value(j[name][s]));
    for (const char* f : scalar_fields()) row.push_back(csv_value(j[f]));
    row.push_back(c.diag ? std::string(to_string(c.diag->main_cause)) : "");
    row.push_back(c.diag ? why_text(*c.diag) : "-");
    std::string warnings;
    for (const std::string& w : c.warnings) {
      if (!warnings.empty()) warnings += "; ";
      warnings += w;
    }
    row.push_back(warnings);
    append_csv_row(out, row);
  }
  return out;
}

void write_result_csv(const std::string& path, const result_doc& d) {
  write_file_atomic(path, result_csv(d));
}

// ---- coll document ------------------------------------------------------------------------

ordered_json to_json(const coll_doc& d) {
  ordered_json j;
  header_to_json(d, coll_schema_v1, j);
  // One sweep is one op over one group; said once up top for readers that skip the rows.
  if (!d.rows.empty()) {
    j["op"] = d.rows.front().op;
    j["ranks"] = d.rows.front().ranks;
  }
  j["rows"] = ordered_json::array();
  for (const coll_row& r : d.rows) j["rows"].push_back(to_json(r));
  return j;
}

coll_doc coll_from_json(const ordered_json& oj, const std::string& file) {
  const json j = json::parse(oj.dump());
  const json_object top(j, file, "");
  coll_doc d;
  const json& rows = read_header(top, &oj, coll_schema_v1, "rows", d, true);
  // Summaries of the rows, re-derived on write; checked against them so they cannot disagree.
  const std::string op = top.get_enum("op", collective_names(), std::string());
  const std::int64_t ranks = top.get_positive_int("ranks", 0);
  top.finish();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const json_object row(rows[i], file, "rows[" + std::to_string(i) + "]");
    d.rows.push_back(coll_row_from_json(row));
    if (!op.empty() && d.rows.back().op != op) row.fail("op", "differs from the top-level op");
    if (ranks != 0 && d.rows.back().ranks != ranks)
      row.fail("ranks", "differs from the top-level ranks");
  }
  return d;
}

void write_coll_json(const std::string& path, const coll_doc& d) {
  write_file_atomic(path, dump_json(to_json(d), 2) + "\n");
}

std::string coll_csv(const coll_doc& d) {
  const auto env_backend = d.env.find("backend");
  const std::string backend =
      env_backend != d.env.end() && env_backend->is_string() ? env_backend->get<std::string>() : "";
  std::string out;
  // Every row has the same fields (to_json(coll_row)), so an empty row names the columns.
  std::vector<std::pair<std::string, ordered_json>> columns;
  flatten(to_json(coll_row{}), "", columns);
  std::vector<std::string> header;
  for (const auto& [key, value] : columns) header.push_back(key.substr(1));  // no leading dot
  header.insert(header.end(), {"backend", "simulated"});
  append_csv_row(out, header);
  for (const coll_row& r : d.rows) {
    std::vector<std::pair<std::string, ordered_json>> flat;
    flatten(to_json(r), "", flat);
    std::vector<std::string> cells;
    for (const auto& [key, value] : flat) cells.push_back(csv_value(value));
    cells.insert(cells.end(), {backend, d.simulated() ? "true" : "false"});
    append_csv_row(out, cells);
  }
  return out;
}

void write_coll_csv(const std::string& path, const coll_doc& d) {
  write_file_atomic(path, coll_csv(d));
}

}  // namespace ob
