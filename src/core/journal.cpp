#include "core/journal.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace ob {
namespace {

// FNV-1a: stable across builds and machines, which std::hash is not.
std::uint64_t fnv1a(std::uint64_t h, std::string_view text) {
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string header_line(const std::string& fingerprint) {
  return ordered_json{{"journal", journal_schema_v1}, {"fingerprint", fingerprint}}.dump() + "\n";
}

void check_header(const std::string& line, const std::string& path,
                  const std::string& fingerprint) {
  const json head = json::parse(line, nullptr, false);
  const auto is_string_at = [&head](const char* key) {
    return head.is_object() && head.contains(key) && head[key].is_string();
  };
  if (!is_string_at("journal") || head["journal"] != journal_schema_v1 ||
      !is_string_at("fingerprint"))
    throw config_error(path + ": line 1: not an overlap-bench journal (expected {\"journal\": \"" +
                       journal_schema_v1 + "\", \"fingerprint\": ...})");
  if (head["fingerprint"].get<std::string>() != fingerprint)
    throw config_error(path +
                       ": belongs to another sweep (its config, case list, backend or "
                       "measurement flags differ from this one); delete it, or run without "
                       "--resume to start over");
}

// The result document's text up to the cases array, and what closes it, as dump(2) writes them.
struct document_frame {
  std::string head;  // ends with `"cases": `
  std::string empty_tail = "[]\n}\n";
};

document_frame frame_of(const result_doc& doc) {
  result_doc header;
  header.tool = doc.tool;
  header.env = doc.env;
  header.config = doc.config;
  header.rec = doc.rec;
  document_frame f;
  f.head = dump_json(to_json(header), 2);
  f.head.resize(f.head.size() - std::string_view("[]\n}").size());
  return f;
}

// One case at the nesting of the cases array: dump(2) with every line four spaces in.
std::string indented_case(const ordered_json& c) {
  const std::string text = c.dump(2);
  std::string out = "    ";
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    out += ch;
    if (ch == '\n') out += "    ";
  }
  return out;
}

}  // namespace

std::string sweep_fingerprint(const sweep_request& req, const std::string& backend) {
  std::uint64_t h = 14695981039346656037ull;
  const measure_options& m = req.measure;
  h = fnv1a(h, req.scenario + "\n" + backend + "\n" + dump_json(req.config) + "\n");
  h = fnv1a(h, std::to_string(m.warmup) + "," + std::to_string(m.iters) + "," +
                   std::to_string(m.graphs) + "," + std::to_string(m.verify) + "\n");
  for (const std::string& w : req.warnings) h = fnv1a(h, w + "\n");
  for (const sweep_case& c : req.cases) h = fnv1a(h, c.id + "\n");
  return hex(h);
}

sweep_journal sweep_journal::start(const std::string& path, const std::string& fingerprint) {
  sweep_journal j(path);
  const std::string head = header_line(fingerprint);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << head;
    if (!out) throw runtime_failure(path + ": cannot write the journal: " + std::strerror(errno));
  }
  j.end_ = static_cast<std::streamoff>(head.size());
  j.open_for_append();
  return j;
}

sweep_journal sweep_journal::resume(const std::string& path, const std::string& fingerprint,
                                    std::vector<case_record>& finished) {
  sweep_journal j(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path + ": cannot open the journal: " + std::strerror(errno));
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (in.eof()) break;  // no newline: a write cut short by a crash; dropped below
    const std::string where = "line " + std::to_string(number);
    if (number == 1) {
      check_header(line, path, fingerprint);
    } else {
      const ordered_json c = ordered_json::parse(line, nullptr, false);
      if (c.is_discarded()) throw config_error(path + ": " + where + ": invalid JSON");
      case_record rec = case_record_from_json(c, path, where);
      if (j.offsets_.emplace(rec.id, j.end_).second) finished.push_back(std::move(rec));
    }
    j.end_ += static_cast<std::streamoff>(line.size() + 1);
  }
  if (j.end_ == 0) throw config_error(path + ": line 1: not an overlap-bench journal (empty)");
  in.close();
  std::error_code ec;
  std::filesystem::resize_file(path, static_cast<std::uintmax_t>(j.end_), ec);
  if (ec) throw runtime_failure(path + ": cannot drop its cut-short last line: " + ec.message());
  j.open_for_append();
  return j;
}

void sweep_journal::open_for_append() {
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_)
    throw runtime_failure(path_ + ": cannot append to the journal: " + std::strerror(errno));
}

void sweep_journal::append(const case_record& c) {
  const std::string line = dump_json(to_json(c)) + "\n";
  out_ << line;
  out_.flush();
  if (!out_) throw runtime_failure(path_ + ": journal write failed: " + std::strerror(errno));
  offsets_.emplace(c.id, end_);
  end_ += static_cast<std::streamoff>(line.size());
}

void sweep_journal::write_result(const std::string& json_path, const result_doc& doc) {
  out_.flush();
  const document_frame frame = frame_of(doc);
  atomic_file out(json_path);
  out.write(frame.head);
  if (doc.cases.empty()) out.write(frame.empty_tail);
  // Each case from the finished document (the sweep's answers may have changed a journaled
  // record since: timelines stay only on the best and the worst case), one at a time.
  for (std::size_t i = 0; i < doc.cases.size(); ++i) {
    out.write(i == 0 ? "[\n" : ",\n");
    out.write(indented_case(to_json(doc.cases[i])));
  }
  if (!doc.cases.empty()) out.write("\n  ]\n}\n");
  out.commit();
}

void sweep_journal::remove() {
  out_.close();
  std::remove(path_.c_str());
}

}  // namespace ob
