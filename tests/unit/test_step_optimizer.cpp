// What a step adds around the layers' GEMMs for Megatron's gradients and optimizer
// (docs/ARCHITECTURE.md §9.3, docs/CALIBRATION.md §3.7): the weight-gradient GEMMs that
// accumulate into main_grad (gradient_accumulation_fusion), and the optimizer's passes over the
// gradient buffer and this rank's shard, checked on the simulated timeline.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "scratch_path.hpp"
#include "sim/gemm_model.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

// One layer of Llama 3 8B on one H100 at a short sequence: its weight-gradient GEMMs have
// K = 256 tokens against a 4096 x 28672 output, so their output traffic bounds them.
step_scenario one_gpu_layer(const char* fusion, const char* fp32_grads) {
  step_scenario sc;
  sc.model = "llama3_8b";
  sc.cluster = "dgx_h100";
  sc.axes = {{"gpus", {"1"}},
             {"gbs", {"1"}},
             {"seq", {"256"}},
             {"layers", {"1"}},
             {"grad_accum_fusion", {fusion}},
             {"grad_reduce_in_fp32", {fp32_grads}}};
  return sc;
}

// gradient_accumulation_fusion: each wgrad GEMM reads and writes its parameter's main_grad (fp32
// with grad_reduce_in_fp32, else bf16), so a GEMM bound by its output moves 8 (or 4) bytes per
// output element instead of 2 and lasts accordingly longer; dgrad and forward GEMMs are
// untouched, and so is the output layer's wgrad when the fusion is off.
TEST(StepOptimizer, FusedWgradAccumulationReadsAndWritesTheMainGrad) {
  const test::timeline fp32 = test::simulate(one_gpu_layer("on", "on"));
  const test::timeline bf16 = test::simulate(one_gpu_layer("on", "off"));
  const test::timeline off = test::simulate(one_gpu_layer("off", "on"));
  const std::string wgrad = "c0.mb0.L0.fc1_wgrad", dgrad = "c0.mb0.L0.fc1_dgrad";
  const gemm_params& g = fp32.named(0, wgrad).as<gemm_params>();
  EXPECT_TRUE(g.accumulate);
  EXPECT_EQ(g.out, dtype::fp32);
  EXPECT_EQ(bf16.named(0, wgrad).as<gemm_params>().out, dtype::bf16);
  EXPECT_FALSE(off.named(0, wgrad).as<gemm_params>().accumulate);
  EXPECT_FALSE(fp32.named(0, dgrad).as<gemm_params>().accumulate);
  EXPECT_TRUE(fp32.named(0, "c0.mb0.output_wgrad").as<gemm_params>().accumulate);
  EXPECT_FALSE(off.named(0, "c0.mb0.output_wgrad").as<gemm_params>().accumulate);

  // Output-bound: the fused fp32 GEMM lasts at least its bytes at the HBM rate.
  const gpu_spec gpu = resolve_step(one_gpu_layer("on", "on")).gpu;
  const double out_bytes = static_cast<double>(g.m) * static_cast<double>(g.n);
  EXPECT_DOUBLE_EQ(
      sim::gemm_hbm_bytes(g) - sim::gemm_hbm_bytes(off.named(0, wgrad).as<gemm_params>()),
      out_bytes * (8 - 2));
  EXPECT_GE(fp32.length(0, wgrad), sim::gemm_hbm_bytes(g) / (gpu.hbm_gbps * 1e3));
  EXPECT_GT(fp32.length(0, wgrad), 2.0 * off.length(0, wgrad));
  EXPECT_GT(fp32.length(0, wgrad), 1.5 * bf16.length(0, wgrad));
  EXPECT_GT(bf16.length(0, wgrad), 1.2 * off.length(0, wgrad));
  EXPECT_NEAR(fp32.length(0, dgrad), off.length(0, dgrad), 1e-6);
}

// GPT 22B in fp16 on 8 A100 (TP 8, one pipeline stage, DP 1), bf16 gradients: the step zeroes
// the gradient buffer before the first forward, and after the backward runs, in Megatron-Core's
// order on the compute stream, the fp32 cast of the main grads, fp16's unscale, the gradient
// norm and its all-reduce, Adam and the copy back into the fp16 weights, each for as long as its
// bytes take at the elementwise HBM rate.
TEST(StepOptimizer, OptimizerPassesRunInMegatronsOrderAtTheHbmRate) {
  step_scenario sc;
  sc.model = "gpt_22b";
  sc.cluster = "dgx_a100";
  sc.axes = {{"gpus", {"8"}},        {"tp", {"8"}},     {"mbs", {"4"}},
             {"gbs", {"4"}},         {"layers", {"2"}}, {"grad_reduce_in_fp32", {"off"}},
             {"dp_overlap", {"off"}}};
  const step_spec spec = resolve_step(sc);
  const test::timeline t = test::simulate_spec(spec);
  const std::vector<std::string> order = {"main_grad_cast", "grad_unscale",   "grad_norm",
                                          "grad_norm_ar",   "optimizer_step", "param_copy"};
  EXPECT_LE(t.at(0, "grad_zero").end_us, t.at(0, "c0.mb0.L0.ln1_fwd").start_us);
  EXPECT_LE(t.at(0, "c0.mb0.L0.ln1_bwd").end_us, t.at(0, "main_grad_cast").start_us);
  for (std::size_t i = 1; i < order.size(); ++i)
    EXPECT_LE(t.at(0, order[i - 1]).end_us, t.at(0, order[i]).start_us) << order[i];
  const double shard =
      static_cast<double>(t.named(0, "optimizer_step").as<elementwise_params>().bytes) / 28;
  const std::map<std::string, double> bytes_per_param = {
      {"grad_zero", 2}, {"main_grad_cast", 6},  {"grad_unscale", 8},
      {"grad_norm", 4}, {"optimizer_step", 28}, {"param_copy", 6}};
  for (const auto& [name, per] : bytes_per_param) {
    const auto& e = t.named(0, name).as<elementwise_params>();
    EXPECT_NEAR(static_cast<double>(e.bytes), shard * per, per) << name;
    EXPECT_EQ(t.named(0, name).slot, "optimizer") << name;
    const double ideal_us = static_cast<double>(e.bytes) / spec.gpu.hbm_bytes_per_us();
    EXPECT_GE(t.length(0, name), 0.99 * ideal_us) << name;
    EXPECT_LE(t.length(0, name), 1.2 * ideal_us) << name;
  }
  // fp32 gradients need no cast, and bf16 no unscale.
  sc.axes = {{"gpus", {"8"}}, {"tp", {"8"}},     {"mbs", {"4"}},
             {"gbs", {"4"}},  {"layers", {"2"}}, {"dtype", {"bf16"}}};
  const test::timeline fp32 = test::simulate(sc);
  EXPECT_EQ(fp32.find(0, "main_grad_cast"), nullptr);
  EXPECT_EQ(fp32.find(0, "grad_unscale"), nullptr);
  EXPECT_EQ(fp32.named(0, "grad_zero").as<elementwise_params>().bytes,
            fp32.named(0, "grad_norm").as<elementwise_params>().bytes);  // DP 1: all of it, 4 B
}

// Adam's pass bytes follow the types it moves (docs/MEMORY.md §1.1, plan/adam_state.hpp). Llama 3
// 8B on 8 B200 (DP 8, distributed optimizer): per parameter of the shard,
// - fp32 moments: Adam reads the fp32 gradient, reads and writes the fp32 master and both moments
//   (28), then Megatron copies the master into the bf16 weight (4 + 2);
// - bf16 moments with bf16 weights: TE's FusedAdam reads the gradient in place (4, or 2 for bf16
//   gradients), the bf16 weight and its int16 remainder and both bf16 moments, writes all four
//   back (4 + 4 + 8), and no cast or param copy runs;
// - bf16 moments with MXFP8 (Megatron keeps the fp32 master): the bf16 gradients cast to fp32
//   (2 + 4), Adam 4 + 8 + 8, the master copied into the bf16 parameter buffer (4 + 2).
TEST(StepOptimizer, AdamPassBytesFollowTheMomentAndGradientTypes) {
  const auto passes = [](const char* type, const char* moments, const char* fp32_grads) {
    step_scenario sc;
    sc.model = "llama3_8b";
    sc.cluster = "dgx_b200";
    sc.allow_oom = true;
    sc.axes = {{"gpus", {"8"}},
               {"layers", {"2"}},
               {"dtype", {type}},
               {"exp_avg_dtype", {moments}},
               {"grad_reduce_in_fp32", {fp32_grads}}};
    const test::timeline t = test::simulate(sc);
    std::map<std::string, double> bytes;
    for (const char* name :
         {"main_grad_cast", "grad_norm", "optimizer_step", "param_copy", "grad_zero"})
      if (const op* o = t.find(0, name))
        bytes[name] = static_cast<double>(o->as<elementwise_params>().bytes);
    return bytes;
  };
  const auto fp32 = passes("bf16", "fp32", "on");
  const double shard = fp32.at("grad_norm") / 4;
  const auto per = [&](const std::map<std::string, double>& b, const char* name) {
    return b.count(name) ? b.at(name) / shard : 0.0;
  };
  EXPECT_NEAR(per(fp32, "optimizer_step"), 28, 1e-6);
  EXPECT_NEAR(per(fp32, "param_copy"), 6, 1e-6);
  const auto te = passes("bf16", "bf16", "on");
  EXPECT_NEAR(per(te, "optimizer_step"), 4 + 4 + 4 + 8, 1e-6);
  EXPECT_EQ(te.count("param_copy"), 0u);
  const auto te16 = passes("bf16", "bf16", "off");
  EXPECT_NEAR(per(te16, "optimizer_step"), 2 + 4 + 4 + 8, 1e-6);
  EXPECT_NEAR(per(te16, "grad_norm"), 2, 1e-6);
  EXPECT_EQ(te16.count("main_grad_cast"), 0u);
  const auto mx = passes("mxfp8", "bf16", "off");
  EXPECT_NEAR(per(mx, "main_grad_cast"), 2 + 4, 1e-6);
  EXPECT_NEAR(per(mx, "grad_norm"), 4, 1e-6);
  EXPECT_NEAR(per(mx, "optimizer_step"), 4 + 8 + 8, 1e-6);
  EXPECT_NEAR(per(mx, "param_copy"), 4 + 2, 1e-6);
}

// The lookup's weight gradient (docs/ARCHITECTURE.md §9.3): every micro-batch the first stage
// zeroes a dense [V, h] gradient before the lookup's backward scatters into it, and DDP's hook
// adds it into main_grad after, in main_grad's type, whether or not the wgrad GEMMs accumulate
// themselves.
TEST(StepOptimizer, EmbeddingGradientIsZeroedDenseAndAddedIntoMainGrad) {
  const double table = 128256.0 * 4096;  // Llama 3 8B's vocabulary x hidden, TP 1
  const auto bytes = [](const test::timeline& t, const std::string& name) {
    return static_cast<double>(t.named(0, name).as<elementwise_params>().bytes);
  };
  for (const char* fusion : {"on", "off"}) {
    const test::timeline bf16 = test::simulate(one_gpu_layer(fusion, "off"));
    const test::timeline fp32 = test::simulate(one_gpu_layer(fusion, "on"));
    const std::string zero = "c0.mb0.embedding_grad_zero", bwd = "c0.mb0.embedding_bwd",
                      add = "c0.mb0.embedding_grad_add";
    EXPECT_DOUBLE_EQ(bytes(bf16, zero), table * 2) << fusion;
    EXPECT_DOUBLE_EQ(bytes(bf16, add), table * (2 + 2 * 2)) << fusion;
    EXPECT_DOUBLE_EQ(bytes(fp32, add), table * (2 + 2 * 4)) << fusion;
    EXPECT_GE(bf16.at(0, bwd).start_us, bf16.at(0, zero).end_us) << fusion;
    EXPECT_GE(bf16.at(0, add).start_us, bf16.at(0, bwd).end_us) << fusion;
    EXPECT_GT(fp32.length(0, add), 1.5 * bf16.length(0, add)) << fusion;
  }
}

// A small interleaved pipeline with DP 2 (TP 4, PP 4, VP 4, one layer per chunk, 8 micro-batches)
// on H100 with TP overlap, so CDMC is 1: one hardware queue for every stream.
step_scenario interleaved_dp2(const char* vp) {
  step_scenario sc;
  sc.model = test::balanced_model();
  sc.cluster = "dgx_h100";
  sc.axes = {{"gpus", {"32"}}, {"tp", {"4"}}, {"pp", {"4"}}, {"vp", {vp}}, {"gbs", {"16"}}};
  return sc;
}

// Under the interleaved schedule the distributed optimizer's all-gathers follow Megatron-Core's
// param_sync_func (docs/ARCHITECTURE.md §9.3): chunk 1's at the step's start, chunk c's (c >= 2)
// behind the compute of the forward pass before the schedule's pass (c - 1) * pp - stage, chunk
// 0's for the next step after the optimizer. Issued so, they no longer hold the compute stream's
// first kernel behind every chunk's gather on CDMC 1's one queue.
TEST(StepOptimizer, InterleavedParamGathersFollowTheSchedule) {
  const test::timeline t = test::simulate(interleaved_dp2("4"));
  const int pp = 4, vp = 4;
  for (int p = 0; p < pp; ++p) {
    EXPECT_EQ(t.find(p, "c0.b0.param_ag"), nullptr) << p;
    const op& next = t.named(p, "c0.b0.param_ag_next");
    ASSERT_EQ(next.waits.size(), 1u);
    EXPECT_EQ(t.prog.stages[p].ops[next.waits[0]].slot, "optimizer") << p;
    EXPECT_GE(t.at(p, "c0.b0.param_ag_next").start_us, t.at(p, "param_copy").end_us) << p;
    EXPECT_TRUE(t.named(p, "c1.b0.param_ag").waits.empty()) << p;
    EXPECT_LT(t.at(p, "grad_zero").start_us, t.at(p, "c1.b0.param_ag").end_us) << p;
    for (int c = 2; c < vp; ++c) {
      const std::string name = "c" + std::to_string(c) + ".b0.param_ag";
      const op& ag = t.named(p, name);
      const int before = (c - 1) * pp - p - 1;  // the forward pass whose compute it follows
      const std::string pass =
          "c" + std::to_string(before / pp) + ".mb" + std::to_string(before % pp) + ".";
      ASSERT_EQ(ag.waits.size(), 1u) << name;
      EXPECT_EQ(t.prog.stages[p].ops[ag.waits[0]].name.rfind(pass, 0), 0u) << name << " " << p;
      const std::string first = "c" + std::to_string(c) + ".mb0.L0.ln1_fwd";
      EXPECT_GE(t.at(p, first).start_us, t.at(p, name).end_us) << name << " " << p;
    }
  }
  // Without virtual stages every bucket is still gathered at the step's start.
  const test::timeline plain = test::simulate(interleaved_dp2("1"));
  EXPECT_NE(plain.find(0, "c0.b0.param_ag"), nullptr);
  EXPECT_EQ(plain.find(0, "c0.b0.param_ag_next"), nullptr);
}

}  // namespace
}  // namespace ob
