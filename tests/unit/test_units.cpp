#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/units.hpp"

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

}  // namespace ob
