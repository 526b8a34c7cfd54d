// Host-side tests of what the first GPU run checks about itself (README "On a GPU"): the
// SM-margin verdict on the kernel grid CUPTI reports, and the refusals that
// scripts/device_validate.sh expects: NCCL older than 2.30, and mxfp8 on a GPU before Blackwell.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "base/error.hpp"
#include "cuda/kernel_grid_probe.hpp"
#include "cuda/lowering.hpp"
#include "cuda/nccl_comms.hpp"

namespace ob::cuda {
namespace {

launched_kernel kernel(std::int64_t grid) { return {"sm90_xmma_gemm", grid, 384, 2}; }

TEST(sm_target_check, persistent_grid_within_target_is_respected) {
  const auto c = check_sm_target({kernel(100)}, 132, 100);
  EXPECT_TRUE(c.respected);
  EXPECT_EQ(c.largest_grid, 100);
  EXPECT_NE(c.verdict.find("margin of 32 SMs stays free"), std::string::npos) << c.verdict;
}

TEST(sm_target_check, grid_wider_than_target_is_not_a_cap) {
  const auto c = check_sm_target({kernel(96), kernel(144)}, 132, 100);
  EXPECT_FALSE(c.respected);
  EXPECT_EQ(c.largest_grid, 144);  // the widest kernel of the call decides
  EXPECT_NE(c.verdict.find("not a cap"), std::string::npos) << c.verdict;
}

TEST(sm_target_check, no_target_judges_against_the_device) {
  EXPECT_TRUE(check_sm_target({kernel(132)}, 132, 0).respected);
  EXPECT_FALSE(check_sm_target({kernel(264)}, 132, 0).respected);
}

TEST(sm_target_check, nothing_recorded_is_never_respected) {
  const auto c = check_sm_target({}, 132, 100);
  EXPECT_FALSE(c.respected);
  EXPECT_EQ(c.verdict, "no kernel recorded");
}

// The pattern device_validate.sh greps for in `variable`, read from the script itself.
std::string script_pattern(const std::string& variable) {
  const char* configs = std::getenv("OVERLAP_BENCH_CONFIGS");
  if (!configs) return {};
  const auto script =
      std::filesystem::path(configs).parent_path() / "scripts" / "device_validate.sh";
  std::ifstream in(script);
  std::stringstream ss;
  ss << in.rdbuf();
  std::smatch m;
  const std::string text = ss.str();
  if (!std::regex_search(text, m, std::regex(variable + "='([^']*)'"))) return {};
  return m[1];
}

TEST(multi_rank_gpu_refusal, matches_the_device_scripts_expected_failure) {
  const std::string pattern = script_pattern("nccl2_expected");
  ASSERT_FALSE(pattern.empty()) << "nccl2_expected not found in scripts/device_validate.sh";
  const std::string message = multi_rank_gpu_refusal(2, 1, 22809);
  // grep -E semantics: POSIX extended regular expressions.
  EXPECT_TRUE(std::regex_search(message, std::regex(pattern, std::regex::extended)))
      << "pattern '" << pattern << "' does not match: " << message;
  EXPECT_NE(message.find("2.28.9"), std::string::npos) << message;
}

// The pair_mxfp8 step runs on whatever GPU the lease has: before Blackwell its refusal is an
// expected failure, which only holds while the message matches the script's pattern.
TEST(block_scaled_refusal, matches_the_device_scripts_expected_failure) {
  const std::string pattern = script_pattern("mxfp8_expected");
  ASSERT_FALSE(pattern.empty()) << "mxfp8_expected not found in scripts/device_validate.sh";
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  s.add_op("gemm", c, gemm_params{8192, 8192, 8192, dtype::mxfp8, 0});
  lowering_target t;
  t.device_name = "NVIDIA H100 80GB HBM3";
  t.cc_major = 9;
  t.block_scaled_gemms = true;
  cuda_backend_options b;
  b.backend = "loopback";
  try {
    (void)lower_case(make_variant_schedules(s), measure_options{}, b, t);
    FAIL() << "mxfp8 lowered on compute capability 9.0";
  } catch (const config_error& e) {
    EXPECT_TRUE(std::regex_search(std::string(e.what()), std::regex(pattern, std::regex::extended)))
        << "pattern '" << pattern << "' does not match: " << e.what();
  }
}

}  // namespace
}  // namespace ob::cuda
