// Context parallelism's communication types (cp_comm_type; docs/ARCHITECTURE.md §9.3), checked
// on the simulated timeline: the ring (p2p) exchanges K/V blocks beside the core's chunks;
// all_gather gathers K and V before the core and reduce-scatters their gradients after the
// backward's core; a2a trades sequence for heads before the core and back after it.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <variant>
#include <vector>

#include "bridge/resolve.hpp"
#include "plan/memory_model.hpp"
#include "resolve_test_util.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

// Llama 3 8B (32 heads, 8 KV heads of 128) on TP 2 x CP 2, two layers of 8192 tokens.
step_scenario cp_case(const std::string& type, int gpus = 4, int cp = 2) {
  step_scenario sc;
  sc.model = "llama3_8b";
  sc.cluster = "dgx_h100";
  sc.axes = {{"gpus", {std::to_string(gpus)}},
             {"tp", {"2"}},
             {"cp", {std::to_string(cp)}},
             {"seq", {"8192"}},
             {"layers", {"2"}},
             {"cp_comm_type", {type}}};
  return sc;
}

const collective_params& coll(const test::timeline& t, const std::string& name) {
  return std::get<collective_params>(t.named(0, name).params);
}

// One tensor of this rank's 4096 tokens: heads / tp x 128 wide, bf16.
constexpr std::uint64_t local_bytes(int heads) { return 4096ull * (heads / 2) * 128 * 2; }

TEST(CpComm, AllGatherAttentionWaitsForItsGatheredKv) {
  const test::timeline t = test::simulate(cp_case("all_gather"));
  const std::string fwd = "c0.mb0.L0.attn_fwd", bwd = "c0.mb0.L0.attn_bwd";
  EXPECT_EQ(t.find(0, fwd + ".cp0"), nullptr);  // no ring
  for (const std::string& core : {fwd, bwd}) {
    for (const char* kv : {".ag_k", ".ag_v"}) {
      const collective_params& c = coll(t, core + kv);
      EXPECT_EQ(c.op, coll_op::all_gather);
      EXPECT_EQ(c.group, comm_group::cp);
      EXPECT_EQ(c.bytes, 2 * local_bytes(8));  // the whole sequence's K (or V)
      for (const char* chunk : {".chunk0", ".chunk1"})
        EXPECT_LE(t.at(0, core + kv).end_us, t.at(0, core + chunk).start_us) << core << kv;
      // On the compute stream: nothing hides it.
      EXPECT_EQ(t.named(0, core + kv).stream, t.named(0, core + ".chunk0").stream);
    }
  }
  EXPECT_EQ(t.find(0, fwd + ".rs_dk"), nullptr);
  for (const char* g : {".rs_dk", ".rs_dv"}) {
    EXPECT_EQ(coll(t, bwd + g).op, coll_op::reduce_scatter);
    EXPECT_EQ(coll(t, bwd + g).bytes, 2 * local_bytes(8));
    for (const char* add : {".chunk0.dkv_add", ".chunk1.dkv_add"})
      EXPECT_GE(t.at(0, bwd + g).start_us, t.at(0, bwd + add).end_us) << g << add;
  }
  // The layer's backward goes on only after the gradients are scattered back.
  const op& rs = t.named(0, bwd + ".rs_dv");
  const auto& ops = t.prog.stages[0].ops;
  auto next = ops.begin() + rs.id + 1;
  while (next != ops.end() && next->stream != rs.stream) ++next;
  ASSERT_NE(next, ops.end());
  EXPECT_GE(t.at(0, next->name).start_us, t.at(0, rs.name).end_us) << next->name;
}

// TE's AttnFuncWithCPAndKVAllGather runs the rank's two query chunks on two streams: the first
// on the compute stream, the second on cp_stream once the gathered K/V are reordered; the
// compute stream goes on only after both chunks' outputs are copied back.
TEST(CpComm, AllGatherRunsTheTwoQueryChunksOnTwoStreams) {
  const test::timeline t = test::simulate(cp_case("all_gather"));
  const std::string fwd = "c0.mb0.L0.attn_fwd";
  const op& first = t.named(0, fwd + ".chunk0");
  const op& second = t.named(0, fwd + ".chunk1");
  EXPECT_EQ(first.stream, 0);
  EXPECT_NE(second.stream, first.stream);
  EXPECT_EQ(t.prog.stages[0].streams[second.stream].name, "cp");
  EXPECT_EQ(t.prog.stages[0].streams[second.stream].role, stream_role::compute);
  EXPECT_GE(t.at(0, fwd + ".chunk1").start_us, t.at(0, fwd + ".kv_reorder").end_us);
  // The second chunk waits for the gathered K/V only, not for the first chunk or its copy: it
  // takes the SMs as the first one frees them (the model's attention kernel has no partial last
  // wave for it to fill; docs/ARCHITECTURE.md §9.3).
  EXPECT_EQ(second.waits, std::vector<int>{t.named(0, fwd + ".kv_reorder").id});
  EXPECT_LE(t.at(0, fwd + ".chunk1").start_us, t.at(0, fwd + ".chunk0").end_us + 1e-6);
  EXPECT_LT(t.at(0, fwd + ".chunk1").start_us, t.at(0, fwd + ".chunk0.out_copy").start_us);
  EXPECT_EQ(t.named(0, fwd + ".chunk0.out_copy").stream, first.stream);
  EXPECT_EQ(t.named(0, fwd + ".chunk1.out_copy").stream, second.stream);
  EXPECT_GE(t.at(0, fwd + ".chunk1.out_copy").start_us, t.at(0, fwd + ".chunk1").end_us);
  // The next op on the compute stream waits for the cp_stream's copy.
  const auto& ops = t.prog.stages[0].ops;
  const op& copy = t.named(0, fwd + ".chunk1.out_copy");
  auto next =
      std::find_if(ops.begin() + copy.id + 1, ops.end(), [](const op& o) { return o.stream == 0; });
  ASSERT_NE(next, ops.end());
  EXPECT_GE(t.at(0, next->name).start_us, t.at(0, copy.name).end_us) << next->name;
  // Causal, on CP rank 0: chunk 0 of 4 sees half a chunk of keys, chunk 3 three and a half; the
  // two together do the ring's work.
  const auto flops = [&](const std::string& name) {
    return std::get<elementwise_params>(t.named(0, name).params).flops;
  };
  EXPECT_NEAR(flops(fwd + ".chunk1"), 7 * flops(fwd + ".chunk0"), 1e-6 * flops(fwd + ".chunk1"));
  const test::timeline ring = test::simulate(cp_case("p2p"));
  EXPECT_NEAR(flops(fwd + ".chunk0") + flops(fwd + ".chunk1"),
              2 * std::get<elementwise_params>(ring.named(0, fwd + ".cp0").params).flops, 1.0);
}

// The backward's chunks add their dK, dV into the gathered-length gradients TE zero-filled
// before the gather, the second chunk's add after the first's; the reorder and the
// reduce-scatters follow both.
TEST(CpComm, AllGatherBackwardAddsEachChunksKvGradients) {
  const test::timeline t = test::simulate(cp_case("all_gather"));
  const std::string bwd = "c0.mb0.L0.attn_bwd";
  const std::uint64_t kv = 2 * 2 * local_bytes(8);  // gathered K and V
  const auto bytes = [&](const std::string& name) {
    return std::get<elementwise_params>(t.named(0, name).params).bytes;
  };
  EXPECT_EQ(bytes(bwd + ".dkv_zero"), kv);
  EXPECT_LE(t.at(0, bwd + ".dkv_zero").end_us, t.at(0, bwd + ".ag_k").start_us);
  // Chunk 0 of 4 adds into the first quarter, chunk 3 into all four: read, read, write.
  EXPECT_EQ(bytes(bwd + ".chunk0.dkv_add"), 3 * kv / 4);
  EXPECT_EQ(bytes(bwd + ".chunk1.dkv_add"), 3 * kv);
  EXPECT_EQ(t.named(0, bwd + ".chunk1.dkv_add").stream, t.named(0, bwd + ".chunk1").stream);
  EXPECT_GE(t.at(0, bwd + ".chunk1.dkv_add").start_us, t.at(0, bwd + ".chunk0.dkv_add").end_us);
  EXPECT_GE(t.at(0, bwd + ".dkv_reorder").start_us, t.at(0, bwd + ".chunk1.dkv_add").end_us);
  EXPECT_EQ(bytes(bwd + ".chunk0.dq_copy"), local_bytes(32));  // half of dQ, read and written
  EXPECT_EQ(t.find(0, "c0.mb0.L0.attn_fwd.dkv_zero"), nullptr);
}

TEST(CpComm, AllToAllSitsAroundTheCoreOnTheCriticalPath) {
  const test::timeline t = test::simulate(cp_case("a2a"));
  const std::string fwd = "c0.mb0.L0.attn_fwd", bwd = "c0.mb0.L0.attn_bwd";
  const auto before = [&](const std::string& core, const std::string& x) {
    EXPECT_EQ(coll(t, core + ".a2a_" + x).op, coll_op::all_to_all);
    EXPECT_LE(t.at(0, core + ".a2a_" + x).end_us, t.at(0, core).start_us) << core << x;
  };
  const auto after = [&](const std::string& core, const std::string& x) {
    EXPECT_GE(t.at(0, core + ".a2a_" + x).start_us, t.at(0, core).end_us) << core << x;
  };
  for (const char* x : {"q", "k", "v"}) before(fwd, x);
  after(fwd, "out");
  before(bwd, "dout");
  for (const char* x : {"dq", "dk", "dv"}) after(bwd, x);
  // Each rank sends its tokens' heads: 32 query heads, 8 KV heads over TP 2.
  EXPECT_EQ(coll(t, fwd + ".a2a_q").bytes, local_bytes(32));
  EXPECT_EQ(coll(t, fwd + ".a2a_k").bytes, local_bytes(8));
  EXPECT_EQ(coll(t, fwd + ".a2a_out").bytes, local_bytes(32));
  EXPECT_EQ(coll(t, fwd + ".a2a_q").group_size, 2);
}

TEST(CpComm, P2pKeepsTheRing) {
  const test::timeline t = test::simulate(cp_case("p2p"));
  EXPECT_NE(t.find(0, "c0.mb0.L0.attn_fwd.cp0"), nullptr);
  EXPECT_NE(t.find(0, "c0.mb0.L0.attn_fwd.cp0.kv"), nullptr);
  EXPECT_EQ(t.find(0, "c0.mb0.L0.attn_fwd.ag_k"), nullptr);
}

// Selective recomputation runs the forward again, and with it the gather.
TEST(CpComm, RecomputedCoreGathersAgain) {
  step_scenario sc = cp_case("all_gather");
  sc.axes.push_back({"recompute", {"selective"}});
  const test::timeline t = test::simulate(sc);
  const std::string core = "c0.mb0.L0.attn_recompute";
  EXPECT_LE(t.at(0, core + ".ag_k").end_us, t.at(0, core + ".chunk1").start_us);
  EXPECT_EQ(t.find(0, core + ".rs_dk"), nullptr);
}

TEST(CpComm, A2aNeedsHeadsDivisibleByCp) {
  // 8 KV heads / TP 2 = 4 per rank, not divisible by CP 8 (Transformer Engine asserts it).
  const std::string msg = test::resolve_message(cp_case("a2a", 16, 8));
  EXPECT_NE(msg.find("--cp-comm-type"), std::string::npos) << msg;
  EXPECT_NE(msg.find("KV heads 8 / tp 2 = 4"), std::string::npos) << msg;
  EXPECT_EQ(test::resolve_message(cp_case("all_gather", 16, 8)), "");
  const std::string hier = test::resolve_message(cp_case("a2a+p2p"));
  EXPECT_NE(hier.find("needs hierarchical_context_parallel_sizes"), std::string::npos) << hier;
  step_scenario sc = cp_case("a2a+p2p", 16, 8);
  sc.axes.push_back({"hierarchical_context_parallel_sizes", {"2+2"}});
  const std::string product = test::resolve_message(sc);
  EXPECT_NE(product.find("2 x 2 is not cp = 8"), std::string::npos) << product;
  sc.axes.back().values = {"8+1"};  // the a2a level is all of CP: 4 KV heads do not divide
  EXPECT_NE(test::resolve_message(sc).find("not divisible by"), std::string::npos);
  sc.axes.back().values = {"4+2"};
  EXPECT_EQ(test::resolve_message(sc), "");
}

// a2a+p2p (TE's AttnFuncWithCPAndKVP2P with two CP groups): the all-to-alls over the a2a level
// (CP neighbours) sit before and after a ring over the p2p level, which runs in its own chunks.
TEST(CpComm, HierarchicalA2aWrapsARingOverTheOuterLevel) {
  step_scenario sc = cp_case("a2a+p2p", 16, 8);
  sc.axes.push_back({"hierarchical_context_parallel_sizes", {"4+2"}});
  const test::timeline t = test::simulate(sc);
  const std::string fwd = "c0.mb0.L0.attn_fwd", bwd = "c0.mb0.L0.attn_bwd";
  EXPECT_EQ(coll(t, fwd + ".a2a_q").group_size, 4);
  EXPECT_EQ(coll(t, fwd + ".a2a_q").bytes, 1024ull * 16 * 128 * 2);  // 8192 / 8 tokens
  const auto& ring = std::get<p2p_params>(t.named(0, fwd + ".cp0.kv").params);
  EXPECT_EQ(ring.group_size, 2);
  // Each level says which ranks it spans for the cuda backend's communicators: the a2a level CP
  // neighbours, the ring's ranks 4 CP ranks apart.
  EXPECT_EQ(coll(t, fwd + ".a2a_q").level_stride, 1);
  EXPECT_EQ(ring.level_stride, 4);
  // TP 2 x the a2a level's 4 CP neighbours fill one 8-GPU node; the ring's peers are 8 apart.
  EXPECT_EQ(coll(t, fwd + ".a2a_q").nodes, 1);
  EXPECT_EQ(ring.nodes, 2);
  EXPECT_EQ(t.find(0, fwd + ".cp2"), nullptr);  // two chunks, not eight
  EXPECT_LE(t.at(0, fwd + ".a2a_v").end_us, t.at(0, fwd + ".cp0").start_us);
  EXPECT_GE(t.at(0, fwd + ".a2a_out").start_us, t.at(0, fwd + ".cp1").end_us);
  EXPECT_LE(t.at(0, bwd + ".a2a_dout").end_us, t.at(0, bwd + ".cp0").start_us);
  EXPECT_GE(t.at(0, bwd + ".a2a_dq").start_us, t.at(0, bwd + ".cp1").end_us);
}

// The backward of the working layer holds K, V and dK, dV over the whole sequence.
TEST(CpComm, AllGatherHoldsTheGatheredKv) {
  const auto buffers = [](const std::string& type) {
    return resolve_step(cp_case(type)).cases.at(0).memory.gib.buffers;
  };
  const double kv = 4.0 * 8192 * (8 / 2) * 128 * 2;  // K, V, dK, dV, bf16
  EXPECT_NEAR((buffers("all_gather") - buffers("p2p")) * 1024 * 1024 * 1024, kv, 1);
  EXPECT_DOUBLE_EQ(buffers("a2a"), buffers("p2p"));
}

TEST(CpComm, ResolveCarriesMegatronsCpCommType) {
  json in = test::resolve_base();
  in["model"]["cp_comm_type"] = "all_gather";
  bridge_resolution r = test::resolve_json(in);
  const auto carried = [](const bridge_resolution& res) -> std::string {
    for (const step_setting& s : res.step_settings)
      if (s.axis == "cp_comm_type") return s.value;
    return "(not carried)";
  };
  EXPECT_EQ(carried(r), "all_gather");
  in["model"]["cp_comm_type"] = json::array({"a2a", "a2a"});
  EXPECT_EQ(carried(test::resolve_json(in)), "a2a");
  in["model"]["cp_comm_type"] = json::array({"a2a", "p2p"});
  r = test::resolve_json(in);
  EXPECT_EQ(carried(r), "(not carried)");
  EXPECT_NE(test::find_diag(r.warnings, diag_code::not_modelled), nullptr);
  in["model"]["cp_comm_type"] = "a2a+p2p";
  in["model"]["hierarchical_context_parallel_sizes"] = json::array({2, 4});
  r = test::resolve_json(in);
  EXPECT_EQ(carried(r), "a2a+p2p");
  const auto sizes = std::find_if(
      r.step_settings.begin(), r.step_settings.end(),
      [](const step_setting& s) { return s.axis == "hierarchical_context_parallel_sizes"; });
  ASSERT_NE(sizes, r.step_settings.end());
  EXPECT_EQ(sizes->value, "2+4");
  in["model"]["hierarchical_context_parallel_sizes"] = json::array({2, 2, 2});
  EXPECT_NE(test::find_diag(test::resolve_json(in).errors, diag_code::step_setting_invalid),
            nullptr);
  in["model"]["cp_comm_type"] = "ring";
  EXPECT_THROW(test::resolve_json(in), config_error);
}

}  // namespace
}  // namespace ob
