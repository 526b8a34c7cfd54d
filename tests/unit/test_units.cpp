#include <gtest/gtest.h>

#include "base/error.hpp"
#include "base/units.hpp"

namespace ob {

TEST(Units, ParsesBinaryAndDecimalSuffixes) {
  EXPECT_EQ(parse_size("4096", "--bytes"), 4096u);
  EXPECT_EQ(parse_size("64KiB", "--bytes"), 64u * 1024);
  EXPECT_EQ(parse_size("1 MiB", "--bytes"), 1024u * 1024);
  EXPECT_EQ(parse_size("2GiB", "--bytes"), 2ull << 30);
  EXPECT_EQ(parse_size("1MB", "--bytes"), 1000000u);
  EXPECT_EQ(parse_size("1.5KiB", "--bytes"), 1536u);
  EXPECT_EQ(parse_size("8M", "--bytes"), 8u << 20);  // nccl-tests style
}

TEST(Units, RejectsMalformedSizesNamingTheField) {
  for (const char* bad : {"", "abc", "-5", "0", "12XB", "1.3B", "MiB"}) {
    try {
      parse_size(bad, "--bytes");
      FAIL() << "accepted '" << bad << "'";
    } catch (const config_error& e) {
      EXPECT_NE(std::string(e.what()).find("--bytes"), std::string::npos) << e.what();
      EXPECT_EQ(e.code(), exit_code::usage);
    }
  }
}

TEST(Units, FormatsBinarySizes) {
  EXPECT_EQ(format_size(1024 * 1024), "1 MiB");
  EXPECT_EQ(format_size(1536), "1.5 KiB");
  EXPECT_EQ(format_size(100), "100 B");
}

TEST(Units, ParsesGemmShapes) {
  const auto s = parse_gemm_shape("8192x4096X1024", "--gemm");
  EXPECT_EQ(s.m, 8192);
  EXPECT_EQ(s.n, 4096);
  EXPECT_EQ(s.k, 1024);
  for (const char* bad : {"8192x8192", "1x2x3x4", "0x1x1", "ax1x1", ""})
    EXPECT_THROW(parse_gemm_shape(bad, "--gemm"), config_error) << bad;
}

// Lists keep their empty items, so `--set` can refuse "8,,16" instead of reading "8,16".
TEST(Units, SplitsListsKeepingEmptyItems) {
  EXPECT_EQ(split_list("8,16"), (std::vector<std::string>{"8", "16"}));
  EXPECT_EQ(split_list("8,,16,"), (std::vector<std::string>{"8", "", "16", ""}));
  EXPECT_EQ(split_list(""), (std::vector<std::string>{""}));
}

TEST(Units, ParsesSetAssignmentsNamingTheAssignment) {
  const set_assignment a = parse_set_assignment("cdmc=1,8");
  EXPECT_EQ(a.key, "cdmc");
  EXPECT_EQ(a.values, (std::vector<std::string>{"1", "8"}));
  const auto message = [](const std::string& s) {
    try {
      parse_set_assignment(s);
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message("cdmc"), "--set cdmc: expected key=value[,value...]");
  EXPECT_EQ(message("=8"), "--set =8: expected key=value[,value...]");
  EXPECT_EQ(message("cdmc=1,,8"), "--set cdmc=1,,8: empty value in list");
  EXPECT_EQ(parse_int_in("32", "--x", 1, 32), 32);
  EXPECT_THROW(parse_int_in("33", "--x", 1, 32), config_error);
  EXPECT_THROW(parse_int_in("3x", "--x", 1, 32), config_error);
}

}  // namespace ob
