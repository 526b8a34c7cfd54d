#include "run/journal.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/error.hpp"

namespace ob {
namespace {

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

// The id every journaled case carries; config_error naming the line when it has none.
std::string case_id(const ordered_json& c, const std::string& path, const std::string& where) {
  if (c.is_discarded()) throw config_error(path + ": " + where + ": invalid JSON");
  if (!c.is_object()) throw config_error(path + ": " + where + ": expected a case object");
  const auto id = c.find("id");
  if (id == c.end() || !id->is_string() || id->get<std::string>().empty())
    throw config_error(path + ": " + where + ".id: expected a string (the case id), got " +
                       (id == c.end() ? std::string("none") : dump_json(*id)));
  return id->get<std::string>();
}

}  // namespace

std::string fingerprint_of(const std::vector<std::string>& parts) {
  std::uint64_t h = 14695981039346656037ull;
  for (const std::string& part : parts)
    for (unsigned char ch : part + "\n") {
      h ^= ch;
      h *= 1099511628211ull;
    }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

sweep_journal sweep_journal::start(const std::string& path, const std::string& fingerprint) {
  sweep_journal j(path);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << header_line(fingerprint);
    if (!out) throw runtime_failure(path + ": cannot write the journal: " + std::strerror(errno));
  }
  j.open_for_append();
  return j;
}

sweep_journal sweep_journal::resume(const std::string& path, const std::string& fingerprint,
                                    const case_reader& read) {
  sweep_journal j(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path + ": cannot open the journal: " + std::strerror(errno));
  std::string line;
  std::uintmax_t whole_lines = 0;  // bytes up to the end of the last complete line
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (in.eof()) break;  // no newline: a write cut short by a crash; dropped below
    const std::string where = "line " + std::to_string(number);
    if (number == 1) {
      check_header(line, path, fingerprint);
    } else {
      const ordered_json c = ordered_json::parse(line, nullptr, false);
      if (j.ids_.insert(case_id(c, path, where)).second) read(c, path, where);
    }
    whole_lines += line.size() + 1;
  }
  if (whole_lines == 0) throw config_error(path + ": line 1: not an overlap-bench journal (empty)");
  in.close();
  std::error_code ec;
  std::filesystem::resize_file(path, whole_lines, ec);
  if (ec) throw runtime_failure(path + ": cannot drop its cut-short last line: " + ec.message());
  j.open_for_append();
  return j;
}

void sweep_journal::open_for_append() {
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_)
    throw runtime_failure(path_ + ": cannot append to the journal: " + std::strerror(errno));
}

void sweep_journal::append(const ordered_json& c) {
  out_ << dump_json(c) << '\n';
  out_.flush();
  if (!out_) throw runtime_failure(path_ + ": journal write failed: " + std::strerror(errno));
  ids_.insert(c.at("id").get<std::string>());
}

void sweep_journal::remove() {
  out_.close();
  std::remove(path_.c_str());
}

}  // namespace ob
