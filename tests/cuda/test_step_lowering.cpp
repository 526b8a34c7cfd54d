// A training step's lowering on the cuda backend, tested without a GPU: each rank's coordinate
// and stage, which communicator each op joins (coordinate groups, the world, the embedding
// group, one link per direction between stages), the send/recv peers of pp 2 x dp 2, the streams
// the ops run on, and buffers shared across passes so that memory does not grow with the layers
// or the micro-batches.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "base/error.hpp"
#include "cuda/lowering.hpp"
#include "cuda/step_groups.hpp"
#include "lowering_test_util.hpp"
#include "run/step_run.hpp"

namespace ob {
namespace {

using namespace ob::cuda;

constexpr auto overlapped = static_cast<std::size_t>(variant::overlapped);

measure_options step_options() {
  measure_options m;
  m.variants = {};
  m.variants[overlapped] = true;
  m.variants[static_cast<std::size_t>(variant::compute_only)] = true;
  return m;
}

// The program of a small GPT step, as `step` plans it: pp 2 x dp 2 on four GPUs by default.
program_variants small_step(std::vector<sweep_axis> axes = {}) {
  step_scenario sc;
  sc.model = "gpt3_20b";
  std::vector<sweep_axis> base = {{"gpus", {"4"}},   {"pp", {"2"}},   {"gbs", {"8"}},
                                  {"layers", {"4"}}, {"cdmc", {"8"}}, {"tp_overlap", {"off"}}};
  for (sweep_axis& a : axes) {
    std::erase_if(base, [&](const sweep_axis& b) { return b.name == a.name; });
    base.push_back(std::move(a));
  }
  sc.axes = base;
  const step_spec spec = resolve_step(sc);
  program_variants pv;
  pv[overlapped] = plan_step_case(spec, spec.cases.front()).prog;
  pv[static_cast<std::size_t>(variant::compute_only)] =
      derive_program_variant(pv[overlapped], variant::compute_only);
  return pv;
}

lowering_target rank_of(int rank, const rank_grid& grid) {
  lowering_target t;
  t.global_rank = rank;
  t.world_size = grid.world();
  t.priority_least = 0;
  t.priority_greatest = -5;
  t.grid = grid;
  return t;
}

case_lowering lower(const program_variants& pv, int rank) {
  return lower_stage(pv, step_options(), cuda_backend_options{},
                     rank_of(rank, pv[overlapped].grid));
}

using test::actions_with;
using test::stream_of;

TEST(step_groups, coordinates_follow_megatrons_order) {
  const rank_grid g{2, 2, 2, 2};  // tp, cp, dp, pp: 16 ranks
  // 13 = 1 + 0*2 + 1*4 + 1*8
  EXPECT_EQ(coordinate(g, comm_group::tp, 13), 1);
  EXPECT_EQ(coordinate(g, comm_group::cp, 13), 0);
  EXPECT_EQ(coordinate(g, comm_group::dp, 13), 1);
  EXPECT_EQ(coordinate(g, comm_group::pp, 13), 1);
  EXPECT_EQ(stage_of(g, 7), 0);
  EXPECT_EQ(stage_of(g, 8), 1);
}

TEST(step_groups, coordinate_groups_the_world_and_the_embedding_group) {
  const rank_grid g{2, 1, 2, 4};  // 16 ranks
  comm_key k;
  k.group = comm_group::dp;
  k.group_size = 2;
  // Rank 11 = tp 1, dp 1, pp 2: its dp group is {9, 11} (color 9), it at position 1.
  EXPECT_EQ(step_membership(k, g, 11, "ar"), (group_membership{9, 1, 2}));
  k.group = comm_group::tp;
  EXPECT_EQ(step_membership(k, g, 11, "ag"), (group_membership{10, 1, 2}));
  k.group = comm_group::pp;
  k.group_size = 4;
  EXPECT_EQ(step_membership(k, g, 11, "x"), (group_membership{3, 2, 4}));
  // The gradient-norm all-reduce spans the job.
  k.group = comm_group::dp;
  k.group_size = 16;
  EXPECT_EQ(step_membership(k, g, 11, "norm"), (group_membership{0, 11, 16}));
  // The embedding group: first and last stage of one (tp, dp) position; middle stages stay out.
  k.group = comm_group::pp;
  k.group_size = 2;
  EXPECT_EQ(step_membership(k, g, 1, "emb"), (group_membership{1, 0, 2}));
  EXPECT_EQ(step_membership(k, g, 13, "emb"), (group_membership{1, 1, 2}));
  EXPECT_LT(step_membership(k, g, 5, "emb").color, 0);
  k.group = comm_group::cp;
  k.group_size = 4;
  EXPECT_THROW((void)step_membership(k, g, 0, "ring"), config_error);
}

TEST(step_groups, each_direction_between_two_stages_is_its_own_link) {
  const rank_grid g{1, 1, 2, 3};  // 6 ranks: stage s holds ranks 2s and 2s + 1
  comm_key fwd;
  fwd.group = comm_group::pp;
  fwd.group_size = 2;
  fwd.link_from = 1;
  fwd.link_step = 1;  // stage 1 -> stage 2
  EXPECT_EQ(step_membership(fwd, g, 3, "send"), (group_membership{1, 0, 2}));
  EXPECT_EQ(step_membership(fwd, g, 5, "recv"), (group_membership{1, 1, 2}));
  EXPECT_LT(step_membership(fwd, g, 1, "x").color, 0);
  comm_key wrap = fwd;
  wrap.link_from = 2;  // the last stage to the first (interleaved schedules)
  EXPECT_EQ(step_membership(wrap, g, 4, "send"), (group_membership{0, 0, 2}));
  EXPECT_EQ(step_membership(wrap, g, 0, "recv"), (group_membership{0, 1, 2}));
}

TEST(step_lowering, each_rank_runs_its_stage_with_its_peers) {
  const program_variants pv = small_step();
  ASSERT_EQ(pv[overlapped].grid, (rank_grid{1, 1, 2, 2}));
  for (int rank = 0; rank < 4; ++rank) {
    const case_lowering low = lower(pv, rank);
    const int stage = rank / 2;
    ASSERT_TRUE(low.grid.has_value());
    // Stage 0 sends activations on and receives gradients back; stage 1 the reverse.
    const auto sends = actions_with(low, stage == 0 ? "pp.send_next" : "pp.send_prev");
    const auto recvs = actions_with(low, stage == 0 ? "pp.recv_next" : "pp.recv_prev");
    ASSERT_FALSE(sends.empty()) << rank;
    ASSERT_EQ(sends.size(), recvs.size()) << rank;
    EXPECT_TRUE(actions_with(low, stage == 0 ? "pp.send_prev" : "pp.send_next").empty());
    for (const lowered_action* a : sends) {
      EXPECT_EQ(a->kind, action_kind::nccl_p2p);
      EXPECT_EQ(a->direction, p2p_direction::send);
      EXPECT_EQ(a->comm.link_from, stage);
      EXPECT_EQ(a->comm.link_step, stage == 0 ? 1 : -1);
      // The sender is position 0 of its link, the receiver 1; the link holds the two ranks of
      // one dp position: color = the rank's dp group's pp colour (rank % 2).
      EXPECT_EQ(a->member, (group_membership{rank % 2, 0, 2}));
      EXPECT_EQ(a->send_peer, 1);
      EXPECT_TRUE(a->src);
      EXPECT_FALSE(a->dst);
      EXPECT_EQ(stream_of(low, *a), stage == 0 ? "pp_send_next" : "pp_send_prev");
    }
    for (const lowered_action* a : recvs) {
      EXPECT_EQ(a->direction, p2p_direction::recv);
      EXPECT_EQ(a->comm.link_from, 1 - stage);
      EXPECT_EQ(a->member, (group_membership{rank % 2, 1, 2}));
      EXPECT_EQ(a->recv_peer, 0);
      EXPECT_TRUE(a->dst);
      EXPECT_EQ(stream_of(low, *a), stage == 0 ? "pp_recv_next" : "pp_recv_prev");
    }
  }
}

TEST(step_lowering, data_parallel_collectives_run_on_their_stream_over_the_dp_group) {
  const program_variants pv = small_step();
  for (int rank = 0; rank < 4; ++rank) {
    const case_lowering low = lower(pv, rank);
    const auto reduces = actions_with(low, "grad_reduce");
    ASSERT_FALSE(reduces.empty());
    for (const lowered_action* a : reduces) {
      EXPECT_EQ(a->kind, action_kind::nccl_collective);
      EXPECT_EQ(a->comm.group, comm_group::dp);
      // dp pairs {0, 1} and {2, 3}: colour = the stage's first rank, position = dp coordinate.
      EXPECT_EQ(a->member, (group_membership{rank / 2 * 2, rank % 2, 2})) << rank;
      EXPECT_EQ(stream_of(low, *a), "dp");
    }
    // The gradient norm spans all four ranks, on the compute stream.
    const auto norm = actions_with(low, "grad_norm_ar");
    ASSERT_EQ(norm.size(), 1u);
    EXPECT_EQ(norm.front()->member, (group_membership{0, rank, 4}));
    EXPECT_EQ(stream_of(low, *norm.front()), "compute");
  }
}

// cp_comm_type all_gather and a2a (docs/ARCHITECTURE.md §9.3): their collectives run on the
// compute stream over each rank's CP group, ranks 0 and 1 (cp fastest after tp) and 2 and 3.
TEST(step_lowering, cp_all_gather_and_a2a_run_on_the_compute_stream_over_the_cp_group) {
  for (const auto& [type, op] :
       {std::pair{"all_gather", "attn_fwd.ag_k"}, {"a2a", "attn_fwd.a2a_q"}}) {
    const program_variants pv =
        small_step({{"pp", {"1"}}, {"cp", {"2"}}, {"cp_comm_type", {type}}});
    ASSERT_EQ(pv[overlapped].grid, (rank_grid{1, 2, 2, 1})) << type;
    for (int rank = 0; rank < 4; ++rank) {
      const case_lowering low = lower(pv, rank);
      const auto gathers = actions_with(low, op);
      ASSERT_FALSE(gathers.empty()) << type;
      for (const lowered_action* a : gathers) {
        EXPECT_EQ(a->kind, action_kind::nccl_collective);
        EXPECT_EQ(a->comm.group, comm_group::cp);
        EXPECT_EQ(a->member, (group_membership{rank / 2 * 2, rank % 2, 2})) << type << rank;
        EXPECT_EQ(stream_of(low, *a), "compute");
      }
    }
  }
}

// The ranks of each level of a CP group of sizes {a, p}, written the way Megatron-Core's
// create_hierarchical_groups rearranges them ("(l s u) -> (l u) s", u = the sizes below the
// level, s = its size): CP coordinates, each level's groups in order.
std::vector<std::vector<int>> megatron_level_groups(int a, int p, int level) {
  const int s = level == 0 ? a : p, u = level == 0 ? 1 : a, l = level == 0 ? p : 1;
  std::vector<std::vector<int>> groups;
  for (int li = 0; li < l; ++li)
    for (int ui = 0; ui < u; ++ui) {
      std::vector<int> g;
      for (int si = 0; si < s; ++si) g.push_back(li * s * u + si * u + ui);
      groups.push_back(g);
    }
  return groups;
}

// The global ranks of each communicator step_membership builds for `key`, by colour, each in
// position order.
std::map<int, std::vector<int>> groups_of(const comm_key& key, const rank_grid& g) {
  std::map<int, std::vector<int>> by_color;
  for (int rank = 0; rank < g.world(); ++rank) {
    const group_membership m = step_membership(key, g, rank, "x");
    EXPECT_EQ(m.group_size, key.group_size);
    auto& members = by_color[m.color];
    if (members.size() <= static_cast<std::size_t>(m.position))
      members.resize(static_cast<std::size_t>(m.position) + 1, -1);
    EXPECT_EQ(members[static_cast<std::size_t>(m.position)], -1) << "two ranks at one position";
    members[static_cast<std::size_t>(m.position)] = rank;
  }
  return by_color;
}

// a2a+p2p's two levels (docs/ARCHITECTURE.md §9.3): each rank's level communicators hold the
// global ranks of its CP group's level as Megatron builds them, positions in its order, and
// every other coordinate (tp, dp) keeps its own levels.
TEST(step_groups, hierarchical_cp_levels_follow_megatrons_sub_groups) {
  for (const auto& [a, p] : {std::pair{2, 2}, {2, 4}, {4, 2}}) {
    const rank_grid g{2, a * p, 2, 1};  // tp 2 fastest, then cp, dp 2
    for (int level = 0; level < 2; ++level) {
      comm_key k;
      k.group = comm_group::cp;
      k.group_size = level == 0 ? a : p;
      k.level_stride = level == 0 ? 1 : a;
      std::set<std::vector<int>> expected;
      for (int tp = 0; tp < 2; ++tp)
        for (int dp = 0; dp < 2; ++dp)
          for (const std::vector<int>& cps : megatron_level_groups(a, p, level)) {
            std::vector<int> ranks;
            for (int c : cps) ranks.push_back(tp + 2 * c + 2 * a * p * dp);
            expected.insert(ranks);
          }
      std::set<std::vector<int>> built;
      for (const auto& [color, ranks] : groups_of(k, g)) {
        EXPECT_EQ(color, ranks.front()) << "colour: the level's first rank";
        built.insert(ranks);
      }
      EXPECT_EQ(built, expected) << a << "+" << p << " level " << level;
    }
  }
  // A level that does not tile its group is refused, naming the op.
  comm_key bad;
  bad.group = comm_group::cp;
  bad.group_size = 2;
  bad.level_stride = 3;
  try {
    (void)step_membership(bad, rank_grid{1, 4, 1, 1}, 0, "attn_fwd.cp0.kv");
    ADD_FAILURE() << "a level of 2 ranks 3 apart in a CP group of 4";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("'attn_fwd.cp0.kv'"), std::string::npos) << e.what();
  }
}

program_variants hierarchical_step(const std::string& sizes, int cp = 4) {
  return small_step({{"pp", {"1"}},
                     {"gpus", {std::to_string(2 * cp)}},
                     {"cp", {std::to_string(cp)}},
                     {"cp_comm_type", {"a2a+p2p"}},
                     {"hierarchical_context_parallel_sizes", {sizes}}});
}

// a2a+p2p 2+2 over cp 4, dp 2: the all-to-alls run over CP neighbours {0, 1}, {2, 3} (CP
// coordinates), the ring's KV exchange over the ranks two apart {0, 2}, {1, 3}, each on a
// communicator of its own level that every rank creates in one order.
TEST(step_lowering, hierarchical_cp_lowers_each_level_onto_its_own_communicator) {
  const program_variants pv = hierarchical_step("2+2");
  ASSERT_EQ(pv[overlapped].grid, (rank_grid{1, 4, 2, 1}));
  const std::vector<comm_key> keys = lower(pv, 0).comms;
  std::set<int> level_strides;
  for (const comm_key& k : keys)
    if (k.group == comm_group::cp) level_strides.insert(k.level_stride);
  EXPECT_EQ(level_strides, (std::set<int>{1, 2}));
  for (int rank = 0; rank < 8; ++rank) {
    const case_lowering low = lower(pv, rank);
    EXPECT_EQ(low.comms, keys) << rank;
    const int c = rank % 4, dp_base = rank / 4 * 4;
    const auto a2as = actions_with(low, "attn_fwd.a2a_q");
    const auto ring = actions_with(low, "attn_fwd.cp0.kv");
    ASSERT_FALSE(a2as.empty());
    ASSERT_FALSE(ring.empty());
    for (const lowered_action* x : a2as) {
      EXPECT_EQ(x->comm.level_stride, 1);
      EXPECT_EQ(x->member, (group_membership{dp_base + c / 2 * 2, c % 2, 2})) << rank;
      EXPECT_EQ(stream_of(low, *x), "compute");
    }
    for (const lowered_action* x : ring) {
      EXPECT_EQ(x->kind, action_kind::nccl_p2p);
      EXPECT_EQ(x->comm.level_stride, 2);
      EXPECT_EQ(x->member, (group_membership{dp_base + c % 2, c / 2, 2})) << rank;
      EXPECT_EQ(x->send_peer, 1 - c / 2);
      EXPECT_EQ(x->recv_peer, 1 - c / 2);
    }
  }
}

// A level that is the whole CP group (4+1: no ring; 1+4: no all-to-all) is the CP group's own
// communicator, as under a2a or p2p.
TEST(step_lowering, a_hierarchical_level_of_the_whole_cp_group_is_the_cp_group) {
  for (const char* sizes : {"4+1", "1+4"}) {
    const program_variants pv = hierarchical_step(sizes);
    const case_lowering low = lower(pv, 5);
    bool cp_ops = false;
    for (const lowered_action& x : low.variants[overlapped].actions) {
      if (x.kind != action_kind::nccl_collective && x.kind != action_kind::nccl_p2p) continue;
      if (x.comm.group != comm_group::cp) continue;
      cp_ops = true;
      EXPECT_EQ(x.comm.level_stride, 0) << sizes << " " << x.name;
      EXPECT_EQ(x.member, (group_membership{4, 1, 4})) << sizes << " " << x.name;
    }
    EXPECT_TRUE(cp_ops) << sizes;
    EXPECT_EQ(actions_with(low, "a2a_").empty(), std::string(sizes) == "1+4") << sizes;
    EXPECT_EQ(actions_with(low, ".cp0.kv").empty(), std::string(sizes) == "4+1") << sizes;
  }
}

// Outside a step there is no rank grid to say who forms a level: refused (exit 2), naming the op.
TEST(step_lowering, a_hierarchical_level_outside_a_step_is_refused) {
  const program_variants pv = hierarchical_step("2+2");
  const schedule& stage = pv[overlapped].stages.front();
  lowering_target t = rank_of(0, pv[overlapped].grid);
  t.grid.reset();
  try {
    (void)lower_case(make_variant_schedules(stage), measure_options{}, cuda_backend_options{}, t);
    ADD_FAILURE() << "lowered a level without a rank grid";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("level of a hierarchical cp group"), std::string::npos)
        << e.what();
  }
}

TEST(step_lowering, every_rank_creates_every_stages_communicators_in_one_order) {
  const program_variants pv = small_step();
  const std::vector<comm_key> keys = lower(pv, 0).comms;
  for (int rank = 1; rank < 4; ++rank) EXPECT_EQ(lower(pv, rank).comms, keys);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  int links = 0;
  for (const comm_key& k : keys) links += k.link_from >= 0;
  EXPECT_EQ(links, 2);  // 1F1B over two stages: 0 -> 1 and 1 -> 0
}

// Only what a real step holds per stage grows with it: the DP gradient and parameter buckets and
// the optimizer's shard follow the stage's parameters. Layers and micro-batches add passes, not
// buffers.
TEST(step_lowering, buffers_do_not_grow_with_layers_or_micro_batches) {
  const case_lowering small = lower(small_step(), 0);
  const case_lowering more_mb = lower(small_step({{"gbs", {"16"}}}), 0);
  EXPECT_GT(more_mb.variants[overlapped].actions.size(),
            small.variants[overlapped].actions.size() * 3 / 2);
  EXPECT_EQ(more_mb.buffers, small.buffers);
  const case_lowering deep = lower(small_step({{"layers", {"8"}}, {"gbs", {"16"}}}), 0);
  EXPECT_GT(deep.variants[overlapped].actions.size(),
            2 * small.variants[overlapped].actions.size());
  ASSERT_EQ(deep.buffers.size(), small.buffers.size());
  EXPECT_EQ(deep.references.size(), small.references.size());
  for (std::size_t i = 0; i < small.buffers.size(); ++i) {
    const std::string& key = small.buffers[i].key;
    EXPECT_EQ(deep.buffers[i].key, key);
    const bool per_stage = key.find("grad_reduce") != std::string::npos ||
                           key.find("param_ag") != std::string::npos ||
                           key.find("optimizer") != std::string::npos;
    if (!per_stage) {
      EXPECT_EQ(deep.buffers[i].bytes, small.buffers[i].bytes) << key;
    }
  }
}

TEST(step_lowering, pass_prefixes_are_left_out_of_buffer_keys) {
  EXPECT_EQ(pass_prefix_length("c0.mb12.L3.re.qkv_fprop"), std::string("c0.mb12.L3.re.").size());
  EXPECT_EQ(pass_prefix_length("c1.b0.grad_reduce"), std::string("c1.b0.").size());
  EXPECT_EQ(pass_prefix_length("qkv_fprop"), 0u);
  EXPECT_EQ(pass_prefix_length("c0x.mb"), 0u);
  EXPECT_EQ(pass_prefix_length("L2"), 0u);
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  const int p = s.add_stream("pp_send_next", stream_role::p2p, 0);
  s.add_op("c0.mb0.L0.qkv", c, gemm_params{64, 64, 64, dtype::bf16, 0});
  s.add_op("c0.mb1.L0.qkv", c, gemm_params{64, 64, 64, dtype::bf16, 0});
  p2p_params send;
  send.group = comm_group::pp;
  send.group_size = 2;
  send.direction = p2p_direction::send;
  send.send_peer = 1;
  s.add_op("pp.send_next", p, send);
  s.add_op("pp.send_next", p, send);
  EXPECT_EQ(buffer_keys(s),
            (std::vector<std::string>{"qkv#0", "qkv#0", "pp.send_next", "pp.send_next"}));
}

// scripts/device_validate.sh's step: one GPU, no mpirun. Its communicators hold one rank, and
// its buffers fit an 80 GB GPU with room to spare.
TEST(step_lowering, the_one_gpu_step_of_device_validate) {
  const program_variants pv = small_step(
      {{"gpus", {"1"}}, {"pp", {"1"}}, {"gbs", {"4"}}, {"layers", {"2"}}, {"seq", {"2048"}}});
  const case_lowering low = lower(pv, 0);
  for (const comm_key& k : low.comms) EXPECT_LT(k.link_from, 0);
  for (const lowered_action& a : low.variants[overlapped].actions)
    if (a.kind == action_kind::nccl_collective) {
      EXPECT_EQ(a.member.group_size, 1) << a.name;
    }
  const double gib = static_cast<double>(lowered_bytes(low)) / (1u << 30);
  RecordProperty("buffers_gib", std::to_string(gib));
  EXPECT_LT(gib, 16.0);
  EXPECT_GT(gib, 0.5);
}

// The optimizer sweeps the whole shard: more HBM traffic than a buffer should hold, so it runs as
// several passes over one capped buffer, moving the same bytes.
TEST(step_lowering, large_elementwise_ops_repeat_over_a_capped_buffer) {
  elementwise_params e;
  e.bytes = 10ull << 30;  // 5 GiB in, 5 GiB out
  const elementwise_plan p = plan_elementwise(e, 132);
  ASSERT_FALSE(p.as_gemm);
  EXPECT_EQ(p.repeat, 5);
  EXPECT_LE(p.elems * 2, elementwise_max_buffer_bytes);
  EXPECT_NEAR(static_cast<double>(p.elems * p.repeat * 2 * 2), static_cast<double>(e.bytes), 64.0);
  e.bytes = 1 << 20;
  EXPECT_EQ(plan_elementwise(e, 132).repeat, 1);
}

}  // namespace
}  // namespace ob
