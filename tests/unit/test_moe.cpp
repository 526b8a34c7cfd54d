// One MoE layer's routed work (docs/MOE.md §4): the busiest rank's tokens under imbalance, the
// dispatch size, and the grouped GEMM whose members are sized by tokens per expert.
#include <gtest/gtest.h>

#include <string>

#include "base/error.hpp"
#include "model/gpu_spec.hpp"
#include "model/model_spec.hpp"
#include "model/moe_layer.hpp"
#include "sim/gemm_model.hpp"

namespace ob {
namespace {

double flops(const std::vector<gemm_params>& g) {
  double f = 0;
  for (const gemm_params& x : g) f += x.flops();
  return f;
}

TEST(MoeLayer, BalancedRoutingGivesEveryRankItsOwnCopies) {
  const model_spec m = load_model_spec("qwen3_30b_a3b");  // 128 experts, top-8, hidden 2048
  const moe_rank_load l = busiest_rank_load(m, 4096, 16, 1.0, dtype::bf16, "--moe-imbalance");
  EXPECT_EQ(l.local_experts, 8);
  EXPECT_EQ(l.tokens_routed, 4096 * 8);
  EXPECT_EQ(l.tokens_received, 4096 * 8);
  ASSERT_EQ(l.tokens_per_expert.size(), 8u);
  EXPECT_EQ(l.tokens_per_expert[0], 4096);
  EXPECT_EQ(l.dispatch_bytes, 4096ull * 8 * 2048 * 2);
  // The busiest rank at 1.5x the mean computes and receives 1.5x.
  const moe_rank_load hot = busiest_rank_load(m, 4096, 16, 1.5, dtype::bf16, "--moe-imbalance");
  EXPECT_EQ(hot.tokens_received, 4096 * 8 * 3 / 2);
  EXPECT_EQ(hot.dispatch_bytes, l.dispatch_bytes * 3 / 2);
  for (double bad : {0.5, 17.0}) {
    try {
      (void)busiest_rank_load(m, 4096, 16, bad, dtype::bf16, "--moe-imbalance");
      FAIL() << bad;
    } catch (const config_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--moe-imbalance: expected", 0), 0u) << e.what();
    }
  }
}

TEST(MoeLayer, ExpertGemmsCarryTheRoutedFlopsInEveryPass) {
  const model_spec m = load_model_spec("qwen3_30b_a3b");
  const moe_rank_load l = busiest_rank_load(m, 4096, 8, 1.0, dtype::bf16, "x");
  const double tokens = static_cast<double>(l.tokens_received);
  const double fc1 = 2.0 * tokens * 2048 * (2 * 768 / 2);  // gated, etp 2
  EXPECT_DOUBLE_EQ(flops(expert_gemms(m, l, 2, expert_gemm::fc1_fprop, dtype::bf16)), fc1);
  EXPECT_DOUBLE_EQ(flops(expert_gemms(m, l, 2, expert_gemm::fc1_dgrad, dtype::bf16)), fc1);
  EXPECT_DOUBLE_EQ(flops(expert_gemms(m, l, 2, expert_gemm::fc1_wgrad, dtype::bf16)), fc1);
  EXPECT_DOUBLE_EQ(flops(expert_gemms(m, l, 2, expert_gemm::fc2_wgrad, dtype::bf16)), fc1 / 2);
  EXPECT_EQ(expert_gemms(m, l, 2, expert_gemm::fc2_fprop, dtype::bf16).size(), 16u);
}

class GroupedGemm : public ::testing::Test {
 protected:
  gpu_spec gpu = load_gpu_spec("h100_sxm");
};

TEST_F(GroupedGemm, OneMemberIsThePlainGemmWithoutSplitK) {
  const gemm_params g{8192, 4096, 2048, dtype::bf16, 0};
  const sim::gemm_choice plain = sim::choose_gemm(g, gpu, gpu.sm_count);
  ASSERT_EQ(plain.splits, 1);
  const std::vector<gemm_params> one{g};
  const sim::gemm_choice grouped = sim::choose_grouped_gemm(one, gpu, gpu.sm_count);
  EXPECT_EQ(grouped.units, plain.units);
  EXPECT_DOUBLE_EQ(grouped.est_us, plain.est_us);
}

// 64 experts of 64 tokens each pad every member to a whole tile of rows (tiles are 128 or more
// rows on H100): half of what the kernel computes is padding, and it runs longer than one
// 4096-row GEMM of the same FLOPs.
TEST_F(GroupedGemm, FewTokensPerExpertPayWholeTiles) {
  const std::vector<gemm_params> small(64, gemm_params{64, 1536, 2048, dtype::bf16, 0});
  const gemm_params big{4096, 1536, 2048, dtype::bf16, 0};
  const sim::gemm_choice g = sim::choose_grouped_gemm(small, gpu, gpu.sm_count);
  const std::vector<gemm_params> one{big};
  const sim::gemm_choice b = sim::choose_grouped_gemm(one, gpu, gpu.sm_count);
  const auto ceil_div = [](std::int64_t a, std::int64_t d) { return (a + d - 1) / d; };
  EXPECT_EQ(g.units, 64 * ceil_div(64, g.tile_m) * ceil_div(1536, g.tile_n));
  ASSERT_GE(g.tile_m, 128);
  EXPECT_GE(static_cast<double>(g.units) * g.tile_m * g.tile_n, 2.0 * 64 * 64 * 1536);
  EXPECT_GT(g.est_us, b.est_us);
  // Nothing routed: no work.
  const std::vector<gemm_params> none(8, gemm_params{0, 1536, 2048, dtype::bf16, 0});
  EXPECT_EQ(sim::choose_grouped_gemm(none, gpu, gpu.sm_count).units, 0);
}

// The busiest rank's experts run longer as imbalance grows: the whole EP group waits for them.
TEST_F(GroupedGemm, ImbalanceLengthensTheBusiestRanksExperts) {
  const model_spec m = load_model_spec("qwen3_30b_a3b");
  double prev = 0;
  for (double f : {1.0, 1.5, 2.0, 4.0}) {
    const moe_rank_load l = busiest_rank_load(m, 4096, 8, f, dtype::bf16, "x");
    const double us =
        sim::choose_grouped_gemm(expert_gemms(m, l, 1, expert_gemm::fc1_fprop, dtype::bf16), gpu,
                                 gpu.sm_count)
            .est_us;
    EXPECT_GT(us, prev) << f;
    prev = us;
  }
}

}  // namespace
}  // namespace ob
