#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "base/build_info.hpp"
#include "spec/diagnostics.hpp"

namespace ob {
namespace {

std::string severity_name(severity s) { return s == severity::warning ? "warning" : "error"; }

std::string trim(const std::string& s) {
  const std::size_t b = s.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(' ') - b + 1);
}

// "| a | b |" -> {"a", "b"}
std::vector<std::string> cells(const std::string& row) {
  std::vector<std::string> out;
  std::stringstream ss(row.substr(1));
  std::string cell;
  while (std::getline(ss, cell, '|')) out.push_back(trim(cell));
  return out;
}

// The README's table of codes, code -> severity: the rows under its
// "| code | severity | meaning |" header.
std::map<std::string, std::string> readme_codes() {
  const std::string path = std::string(OB_SOURCE_DIR) + "/README.md";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::map<std::string, std::string> codes;
  bool in_table = false;
  std::string line;
  while (std::getline(in, line)) {
    const std::string row = trim(line);
    if (!in_table) {
      in_table = row == "| code | severity | meaning |";
      continue;
    }
    if (!row.starts_with("|")) break;
    if (row.starts_with("|---")) continue;
    const auto c = cells(row);
    if (c.size() != 3 || c[0].size() < 3 || !c[0].starts_with('`') || !c[0].ends_with('`')) {
      ADD_FAILURE() << path << ": not a row of the code table: " << row;
      continue;
    }
    const std::string code = c[0].substr(1, c[0].size() - 2);
    EXPECT_TRUE(codes.emplace(code, c[1]).second) << code << " is listed twice in " << path;
  }
  return codes;
}

}  // namespace

TEST(Diagnostics, TableFollowsTheEnumAndExplainsEveryCode) {
  const auto& table = diagnostic_table();
  ASSERT_EQ(table.size(), enum_names<diag_code>::names.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto code = static_cast<diag_code>(i);
    SCOPED_TRACE(std::string(to_string(code)));
    EXPECT_EQ(table[i].code, code) << "diagnostic_table() is out of diag_code order at " << i;
    EXPECT_FALSE(table[i].meaning.empty());
    EXPECT_EQ(&info_of(code), &table[i]);
    EXPECT_EQ(enum_names<diag_code>::names[i].value, code);
  }
}

TEST(Diagnostics, ReadmeListsEveryCodeAndNoOther) {
  const auto readme = readme_codes();
  ASSERT_FALSE(readme.empty()) << "no code table in README.md";
  for (const diag_info& d : diagnostic_table()) {
    const std::string name(to_string(d.code));
    const auto it = readme.find(name);
    if (it == readme.end()) {
      ADD_FAILURE() << name << " is missing from README.md's table of codes";
      continue;
    }
    EXPECT_EQ(it->second, severity_name(d.level)) << name << ": wrong severity in README.md";
  }
  for (const auto& [name, sev] : readme)
    EXPECT_TRUE(try_parse_enum<diag_code>(name).has_value())
        << "README.md lists `" << name << "`, which is no diagnostic code";
}

}  // namespace ob
