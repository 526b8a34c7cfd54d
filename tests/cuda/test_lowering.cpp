// The CUDA executor's host-side lowering, tested without a GPU: what each op launches, which
// buffers the variants share and how they start, GEMM chunk groups and their reference check,
// the loopback copy proxy, p2p peers, element counts per element type, and verification jobs.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "base/error.hpp"
#include "cuda/lowering.hpp"
#include "model/executor.hpp"

namespace ob {
namespace {

using namespace ob::cuda;

constexpr std::size_t overlapped = static_cast<std::size_t>(variant::overlapped);
constexpr std::size_t compute_only = static_cast<std::size_t>(variant::compute_only);
constexpr std::size_t comm_only = static_cast<std::size_t>(variant::comm_only);
constexpr std::size_t serial = static_cast<std::size_t>(variant::serial);

lowering_target rank_of(int rank, int world, int sms = 132) {
  lowering_target t;
  t.global_rank = rank;
  t.world_size = world;
  t.sm_count = sms;
  t.priority_least = 0;
  t.priority_greatest = -5;
  return t;
}

cuda_backend_options backend(const std::string& name) {
  cuda_backend_options b;
  b.backend = name;
  return b;
}

collective_params collective(coll_op op, std::uint64_t bytes, int group, dtype t = dtype::bf16,
                             int ctas = 0) {
  collective_params c;
  c.op = op;
  c.bytes = bytes;
  c.group_size = group;
  c.type = t;
  c.ctas = ctas;
  return c;
}

// A TP-overlap shape: a GEMM chunked along M in four, each chunk followed by its reduce-scatter,
// then an unchunked GEMM that waits on the last collective.
schedule chunked_rs_schedule(int group = 4) {
  schedule s;
  s.name = "chunked";
  const int c = s.add_stream("compute", stream_role::compute, 0);
  const int m = s.add_stream("comm", stream_role::comm, -1);
  int last = -1;
  for (int i = 0; i < 4; ++i) {
    const int g =
        s.add_op("proj_chunk", c, gemm_params{512, 12288, 3072, dtype::bf16, 16}, {}, "proj_fprop");
    last = s.add_op("rs_chunk", m,
                    collective(coll_op::reduce_scatter, 512ull * 12288 * 2, group, dtype::bf16, 8),
                    {g}, "proj_fprop");
  }
  s.add_op("fc1", c, gemm_params{2048, 12288, 12288, dtype::bf16, 0}, {last}, "fc1_fprop");
  return s;
}

const lowered_action& action_named(const lowered_variant& v, const std::string& name, int nth = 0) {
  for (const lowered_action& a : v.actions)
    if (a.name == name && nth-- == 0) return a;
  throw std::runtime_error("no action " + name);
}

int buffer_index(const case_lowering& low, const std::string& key) {
  for (std::size_t i = 0; i < low.buffers.size(); ++i)
    if (low.buffers[i].key == key) return static_cast<int>(i);
  return -1;
}

std::size_t count_checks(const lowered_variant& v, check_kind k) {
  return static_cast<std::size_t>(std::count_if(v.verifies.begin(), v.verifies.end(),
                                                [&](const verify_job& j) { return j.kind == k; }));
}

// A per-layer CUDA graph scope is simulated only (docs/MOE.md §17): the CUDA backend refuses an
// op marked graphed rather than run it eagerly under the scope's name.
TEST(lowering, a_graphed_op_is_refused) {
  schedule s = chunked_rs_schedule();
  s.ops.front().graphed = true;
  EXPECT_THROW((void)lower_case(make_variant_schedules(s), measure_options{}, backend("cuda"),
                                rank_of(1, 4)),
               config_error);
}

TEST(lowering, variants_share_buffers_by_stable_key) {
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  const case_lowering low = lower_case(v, measure_options{}, backend("cuda"), rank_of(1, 4));
  std::set<std::string> keys;
  for (const buffer_request& b : low.buffers) EXPECT_TRUE(keys.insert(b.key).second) << b.key;
  // The first chunk's X, W and D, and the first reduce-scatter's buffers, are the same buffers
  // in every variant that runs them.
  const lowered_action& g0 = action_named(low.variants[overlapped], "proj_chunk");
  for (std::size_t i : {compute_only, serial}) {
    const lowered_action& g = action_named(low.variants[i], "proj_chunk");
    EXPECT_EQ(g.x.buffer, g0.x.buffer);
    EXPECT_EQ(g.w.buffer, g0.w.buffer);
    EXPECT_EQ(g.dst.buffer, g0.dst.buffer);
  }
  const lowered_action& rs0 = action_named(low.variants[overlapped], "rs_chunk", 2);
  const lowered_action& rs0c = action_named(low.variants[comm_only], "rs_chunk", 2);
  EXPECT_EQ(rs0.src.buffer, rs0c.src.buffer);
  EXPECT_EQ(rs0.dst.buffer, rs0c.dst.buffer);
  EXPECT_NE(rs0.src.buffer, action_named(low.variants[overlapped], "rs_chunk", 1).src.buffer);
  EXPECT_EQ(low.buffer(rs0.src).key, "rs_chunk#2|send");
  // 2 GEMM groups x (X, W, D) + the proj reference + 4 collectives x (send, recv).
  EXPECT_EQ(low.buffers.size(), 2u * 3 + 1 + 4 * 2);
}

TEST(lowering, buffers_say_how_they_start) {
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  const case_lowering low = lower_case(v, measure_options{}, backend("cuda"), rank_of(1, 4));
  const lowered_action& g = action_named(low.variants[overlapped], "proj_chunk");
  EXPECT_EQ(low.buffer(g.x).init, buffer_init::random);
  EXPECT_EQ(low.buffer(g.w).init, buffer_init::random);
  EXPECT_NE(low.buffer(g.x).seed, low.buffer(g.w).seed);
  EXPECT_EQ(low.buffer(g.dst).init, buffer_init::none);
  const lowered_action& rs = action_named(low.variants[overlapped], "rs_chunk");
  EXPECT_EQ(low.buffer(rs.src).init, buffer_init::pattern);
  EXPECT_EQ(low.buffer(rs.src).pattern_rank, 1);  // position 1 of the tp group {0..3}
  EXPECT_EQ(low.buffer(rs.dst).init, buffer_init::none);
  // Another rank's operands differ (no two ranks multiply the same numbers).
  const case_lowering other = lower_case(v, measure_options{}, backend("cuda"), rank_of(2, 4));
  EXPECT_NE(other.buffer(action_named(other.variants[overlapped], "proj_chunk").x).seed,
            low.buffer(g.x).seed);
}

TEST(lowering, chunked_gemm_group_has_a_reference_and_a_close_check) {
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  const case_lowering low = lower_case(v, measure_options{}, backend("cuda"), rank_of(0, 4));
  ASSERT_EQ(low.references.size(), 1u);  // fc1 is unchunked: nothing to compare it with
  EXPECT_GE(buffer_index(low, "slot:proj_fprop|n=12288|k=3072|bf16|ref"), 0);
  const reference_gemm& ref = low.references[0];
  EXPECT_EQ(ref.gemm.m, 2048);
  EXPECT_EQ(ref.gemm.n, 12288);
  EXPECT_EQ(ref.gemm.k, 3072);
  EXPECT_EQ(ref.gemm.sm_target, 0);  // the reference runs at full SMs
  const lowered_variant& ov = low.variants[overlapped];
  // Chunk i writes rows [512 i, 512 (i + 1)) of the shared X and D.
  for (int i = 0; i < 4; ++i) {
    const lowered_action& g = action_named(ov, "proj_chunk", i);
    EXPECT_EQ(g.gemm.m, 512);
    EXPECT_EQ(g.x.buffer, ref.x.buffer);
    EXPECT_EQ(g.x.offset, static_cast<std::size_t>(i) * 512 * 3072 * 2);
    EXPECT_EQ(g.dst.offset, static_cast<std::size_t>(i) * 512 * 12288 * 2);
    EXPECT_EQ(g.w.offset, 0u);
    EXPECT_EQ(g.gemm.alignment, 256);
    EXPECT_EQ(g.gemm.sm_target, 116);
  }
  ASSERT_EQ(count_checks(ov, check_kind::close), 1u);
  const auto close = std::find_if(ov.verifies.begin(), ov.verifies.end(),
                                  [](const verify_job& j) { return j.kind == check_kind::close; });
  EXPECT_EQ(close->op, "proj_fprop");
  EXPECT_EQ(close->out.buffer, action_named(ov, "proj_chunk").dst.buffer);
  EXPECT_EQ(close->ref.buffer, ref.d.buffer);
  EXPECT_EQ(close->n, 2048u * 12288);
  EXPECT_EQ(close->out_bytes, 2048u * 12288 * 2);
  EXPECT_GT(close->tol.atol, 0.f);
  EXPECT_EQ(count_checks(low.variants[comm_only], check_kind::close), 0u);  // runs no GEMM
}

// gradient_accumulation_fusion's weight-gradient GEMM (gemm_params::accumulate): beta = 1 into
// D in the IR's `out` type (fp32 main grads), D sized and offset in that type and started from
// finite values (the GEMM reads it first), and no reference check (D holds every earlier run).
TEST(lowering, accumulating_gemm_adds_into_its_output_type) {
  schedule s;
  s.name = "wgrad";
  const int c = s.add_stream("compute", stream_role::compute, 0);
  gemm_params g{512, 12288, 3072, dtype::bf16, 0};
  g.accumulate = true;
  g.out = dtype::fp32;
  for (int i = 0; i < 2; ++i) s.add_op("wgrad_chunk", c, g, {}, "fc1_wgrad");
  const case_lowering low =
      lower_case(make_variant_schedules(s), measure_options{}, backend("cuda"), rank_of(0, 1));
  const lowered_action& a0 = action_named(low.variants[compute_only], "wgrad_chunk", 0);
  const lowered_action& a1 = action_named(low.variants[compute_only], "wgrad_chunk", 1);
  EXPECT_TRUE(a0.gemm.accumulate);
  EXPECT_EQ(output_type(a0.gemm), dtype::fp32);
  EXPECT_EQ(a1.dst.offset, 512u * 12288 * 4);
  EXPECT_EQ(low.buffer(a0.dst).bytes, 1024u * 12288 * 4);
  EXPECT_EQ(low.buffer(a0.dst).init, buffer_init::random);
  EXPECT_NE(to_string(a0.gemm).find("+= fp32"), std::string::npos);
  EXPECT_TRUE(low.references.empty());
  EXPECT_EQ(count_checks(low.variants[compute_only], check_kind::close), 0u);

  // Without the flag the same GEMM writes bf16 with beta = 0.
  g.accumulate = false;
  schedule plain;
  plain.name = "plain";
  const int pc = plain.add_stream("compute", stream_role::compute, 0);
  plain.add_op("wgrad", pc, g, {}, "fc1_wgrad");
  const case_lowering p =
      lower_case(make_variant_schedules(plain), measure_options{}, backend("cuda"), rank_of(0, 1));
  const lowered_action& b = action_named(p.variants[compute_only], "wgrad");
  EXPECT_FALSE(b.gemm.accumulate);
  EXPECT_EQ(output_type(b.gemm), dtype::bf16);
  EXPECT_EQ(p.buffer(b.dst).bytes, 512u * 12288 * 2);
}

TEST(lowering, unaligned_chunks_lower_their_alignment) {
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  // Chunks of 24 rows at k = 40 bf16: the second X chunk starts 1920 bytes in (128-aligned).
  s.add_op("a", c, gemm_params{24, 64, 40, dtype::bf16, 0}, {}, "slot");
  s.add_op("b", c, gemm_params{24, 64, 40, dtype::bf16, 0}, {}, "slot");
  const case_lowering low =
      lower_case(make_variant_schedules(s), measure_options{}, backend("cuda"), rank_of(0, 1));
  const lowered_action& b = action_named(low.variants[overlapped], "b");
  EXPECT_EQ(b.x.offset, 24u * 40 * 2);
  EXPECT_EQ(b.gemm.alignment, 128);
}

TEST(lowering, without_verify_no_references_and_no_checks) {
  measure_options m;
  m.verify = false;
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  const case_lowering low = lower_case(v, m, backend("cuda"), rank_of(0, 4));
  EXPECT_TRUE(low.references.empty());
  for (const lowered_variant& lv : low.variants) EXPECT_TRUE(lv.verifies.empty());
  EXPECT_EQ(buffer_index(low, "slot:proj_fprop|n=12288|k=3072|bf16|ref"), -1);
  for (const buffer_request& b : low.buffers)
    EXPECT_EQ(b.key.find("|ref"), std::string::npos) << b.key;
}

TEST(lowering, collectives_use_nccl_with_counts_per_element_type) {
  for (dtype t : {dtype::bf16, dtype::fp16, dtype::fp8, dtype::fp32}) {
    schedule s;
    const int m = s.add_stream("comm", stream_role::comm, -1);
    s.add_op("ag", m, collective(coll_op::all_gather, 1 << 20, 4, t));
    s.add_op("rs", m, collective(coll_op::reduce_scatter, 1 << 20, 4, t));
    s.add_op("ar", m, collective(coll_op::all_reduce, 1 << 20, 4, t));
    const case_lowering low =
        lower_case(make_variant_schedules(s), measure_options{}, backend("cuda"), rank_of(3, 4));
    const lowered_variant& ov = low.variants[overlapped];
    const std::uint64_t elems = (1u << 20) / dtype_bytes(t);
    const std::size_t size = dtype_bytes(t);
    const lowered_action& ag = action_named(ov, "ag");
    EXPECT_EQ(ag.kind, action_kind::nccl_collective);
    EXPECT_EQ(ag.coll, coll_op::all_gather);
    EXPECT_EQ(ag.type, t);
    EXPECT_EQ(ag.count, elems / 4) << to_string(t);
    EXPECT_EQ(low.buffer(ag.src).bytes, elems / 4 * size);
    EXPECT_EQ(low.buffer(ag.dst).bytes, elems * size);
    const lowered_action& rs = action_named(ov, "rs");
    EXPECT_EQ(rs.count, elems / 4);
    EXPECT_EQ(low.buffer(rs.src).bytes, elems * size);
    EXPECT_EQ(low.buffer(rs.dst).bytes, elems / 4 * size);
    const lowered_action& ar = action_named(ov, "ar");
    EXPECT_EQ(ar.count, elems);
    EXPECT_EQ(low.buffer(ar.dst).bytes, elems * size);
    EXPECT_EQ(ar.member.position, 3);
    EXPECT_EQ(ar.member.group_size, 4);
    // Send buffers start from the check pattern in their own type (fp8 has no pattern path).
    EXPECT_EQ(low.buffer(rs.src).init, t == dtype::fp8 ? buffer_init::random : buffer_init::pattern)
        << to_string(t);
  }
}

// An all-to-all lowers to grouped send/recv: one shard per peer, at the same offsets in both
// buffers. Played out on the host over every rank's pattern, the transfers leave each rank
// exactly what its check expects.
TEST(lowering, all_to_all_is_grouped_send_recv_that_its_check_accepts) {
  const int n = 4;
  const std::uint64_t bytes = 4096;  // 2048 bf16 elements per rank, 512 per peer
  std::vector<lowered_action> ranks;
  std::vector<verify_job> checks;
  for (int r = 0; r < n; ++r) {
    schedule s;
    const int m = s.add_stream("comm", stream_role::comm, -1);
    s.add_op("a2a", m, collective(coll_op::all_to_all, bytes, n));
    const case_lowering low =
        lower_case(make_variant_schedules(s), measure_options{}, backend("cuda"), rank_of(r, n));
    const lowered_variant& ov = low.variants[comm_only];
    ranks.push_back(action_named(ov, "a2a"));
    EXPECT_EQ(low.buffer(ranks.back().src).bytes, bytes);
    EXPECT_EQ(low.buffer(ranks.back().dst).bytes, bytes);
    ASSERT_EQ(count_checks(ov, check_kind::pattern), 1u);
    checks.push_back(ov.verifies.front());
  }
  const std::uint64_t shard = bytes / 2 / n;
  EXPECT_EQ(ranks[0].count, shard);
  EXPECT_EQ(ranks[0].kind, action_kind::nccl_collective);
  EXPECT_EQ(checks[1].spec.kind, verify_kind::all_to_all);
  EXPECT_EQ(kernels::output_elements(checks[1].spec), shard * n);
  // Element e of rank r's send buffer holds pattern_value(r, e); deliver every transfer.
  std::vector<std::vector<int>> recv(n, std::vector<int>(shard * n, 0));
  for (int r = 0; r < n; ++r) {
    const std::vector<a2a_transfer> sends = all_to_all_transfers(ranks[r]);
    ASSERT_EQ(sends.size(), static_cast<std::size_t>(n));
    for (const a2a_transfer& t : sends) {
      // The peer posts the matching receive for rank r at its own offset for r.
      const a2a_transfer back = all_to_all_transfers(ranks[t.peer])[r];
      ASSERT_EQ(back.peer, r);
      for (std::uint64_t e = 0; e < shard; ++e)
        recv[t.peer][back.recv_offset / 2 + e] = kernels::pattern_value(r, t.send_offset / 2 + e);
    }
  }
  for (int r = 0; r < n; ++r)
    for (std::uint64_t j = 0; j < shard * n; ++j)
      ASSERT_EQ(recv[r][j], kernels::expected_value(checks[r].spec, j)) << r << " " << j;
}

TEST(lowering, communicators_are_listed_once_sorted) {
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  const case_lowering low = lower_case(v, measure_options{}, backend("cuda"), rank_of(0, 8));
  ASSERT_EQ(low.comms.size(), 1u);
  EXPECT_EQ(low.comms[0].group_size, 4);
  EXPECT_EQ(low.comms[0].max_ctas, 8);
  EXPECT_EQ(action_named(low.variants[overlapped], "rs_chunk").comm, low.comms[0]);
  // Rank 5 of 8 in tp groups of 4: group {4..7}, position 1.
  const case_lowering r5 = lower_case(v, measure_options{}, backend("cuda"), rank_of(5, 8));
  const lowered_action& rs = action_named(r5.variants[overlapped], "rs_chunk");
  EXPECT_EQ(rs.member.color, 1);
  EXPECT_EQ(rs.member.position, 1);
}

TEST(lowering, group_that_does_not_fit_is_a_config_error) {
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule(8));
  try {
    (void)lower_case(v, measure_options{}, backend("cuda"), rank_of(0, 4));
    FAIL() << "expected config_error";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("rs_chunk"), std::string::npos) << e.what();
  }
  // Loopback copies on one GPU: no group to fit.
  EXPECT_NO_THROW((void)lower_case(v, measure_options{}, backend("loopback"), rank_of(0, 1)));
}

schedule ring_schedule(int send_peer, int recv_peer, std::uint64_t bytes, dtype t, int ctas) {
  schedule s;
  const int m = s.add_stream("p2p", stream_role::p2p, -1);
  p2p_params p;
  p.send_peer = send_peer;
  p.recv_peer = recv_peer;
  p.bytes = bytes;
  p.type = t;
  p.group_size = 4;
  p.ctas = ctas;
  s.add_op("ring", m, p);
  return s;
}

TEST(lowering, p2p_peers_are_positions_in_the_ring) {
  const case_lowering low =
      lower_case(make_variant_schedules(ring_schedule(1, -1, 4096, dtype::bf16, 0)),
                 measure_options{}, backend("cuda"), rank_of(0, 4));
  const lowered_action& a = action_named(low.variants[overlapped], "ring");
  EXPECT_EQ(a.kind, action_kind::nccl_p2p);
  EXPECT_EQ(a.send_peer, 1);
  EXPECT_EQ(a.recv_peer, 3);
  EXPECT_EQ(a.count, 2048u);
  const lowered_variant& ov = low.variants[overlapped];
  ASSERT_EQ(ov.verifies.size(), 1u);
  EXPECT_EQ(ov.verifies[0].kind, check_kind::pattern);
  EXPECT_EQ(ov.verifies[0].spec.kind, verify_kind::recv_from);
  EXPECT_EQ(ov.verifies[0].spec.peer, 3);
  EXPECT_EQ(ov.verifies[0].spec.count, 2048u);
  EXPECT_EQ(ov.verifies[0].out_bytes, 4096u);
  // fp16 halves nothing (2 bytes); fp8 doubles the count.
  const case_lowering f8 =
      lower_case(make_variant_schedules(ring_schedule(1, -1, 4096, dtype::fp8, 0)),
                 measure_options{}, backend("cuda"), rank_of(2, 4));
  const lowered_action& b = action_named(f8.variants[overlapped], "ring");
  EXPECT_EQ(b.count, 4096u);
  EXPECT_EQ(b.send_peer, 3);
  EXPECT_EQ(b.recv_peer, 1);
  EXPECT_THROW((void)lower_case(make_variant_schedules(ring_schedule(1, 1, 4096, dtype::bf16, 0)),
                                measure_options{}, backend("cuda"), rank_of(0, 4)),
               config_error);
}

TEST(lowering, loopback_copies_with_the_ops_ctas) {
  schedule s;
  const int m = s.add_stream("comm", stream_role::comm, -1);
  s.add_op("ag", m, collective(coll_op::all_gather, 1 << 20, 4, dtype::bf16, 8));
  s.add_op("rs", m, collective(coll_op::reduce_scatter, 1 << 20, 4, dtype::fp8, 0));
  const int p = s.add_stream("p2p", stream_role::p2p, -1);
  p2p_params ring;
  ring.send_peer = 1;
  ring.recv_peer = -1;
  ring.bytes = 4096;
  ring.group_size = 4;
  s.add_op("ring", p, ring);
  cuda_backend_options b = backend("loopback");
  b.default_ctas = [](coll_op op) { return op == coll_op::reduce_scatter ? 24 : 0; };
  const case_lowering low =
      lower_case(make_variant_schedules(s), measure_options{}, b, rank_of(0, 1));
  EXPECT_TRUE(low.comms.empty());
  const lowered_variant& ov = low.variants[overlapped];
  const lowered_action& ag = action_named(ov, "ag");
  EXPECT_EQ(ag.kind, action_kind::proxy_copy);
  EXPECT_EQ(ag.ctas, 8);
  EXPECT_EQ(ag.bytes, 1u << 20);  // the op's bytes, whatever its element type
  const lowered_action& rs = action_named(ov, "rs");
  EXPECT_EQ(rs.ctas, 24);
  EXPECT_EQ(rs.bytes, 1u << 20);
  EXPECT_EQ(low.buffer(rs.src).init, buffer_init::random);
  EXPECT_EQ(low.buffer(rs.src).type, dtype::fp8);
  const lowered_action& r = action_named(ov, "ring");
  EXPECT_EQ(r.kind, action_kind::ce_copy);  // p2p with ctas 0: the copy engine
  // Every copy is checked byte for byte against its source, fp8 included.
  ASSERT_EQ(ov.verifies.size(), 3u);
  for (const verify_job& j : ov.verifies) {
    EXPECT_EQ(j.kind, check_kind::same_bytes);
    const lowered_action& a = action_named(ov, j.op);
    EXPECT_EQ(j.out.buffer, a.dst.buffer);
    EXPECT_EQ(j.ref.buffer, a.src.buffer);
    EXPECT_EQ(j.n, a.bytes);
  }
  EXPECT_TRUE(low.warnings.empty());
}

TEST(lowering, pattern_checks_follow_the_collective_traits) {
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  const case_lowering low = lower_case(v, measure_options{}, backend("cuda"), rank_of(2, 4));
  const lowered_variant& ov = low.variants[overlapped];
  EXPECT_EQ(count_checks(ov, check_kind::pattern), 4u);
  for (const verify_job& j : ov.verifies) {
    if (j.kind != check_kind::pattern) continue;
    EXPECT_EQ(j.spec.kind, verify_kind::reduce_scatter);
    EXPECT_EQ(j.spec.group_size, 4);
    EXPECT_EQ(j.spec.position, 2);
    EXPECT_EQ(j.spec.count, 512u * 12288 / 4);
    EXPECT_EQ(j.out_bytes, 512u * 12288 / 4 * 2);
    EXPECT_EQ(j.type, dtype::bf16);
  }
  EXPECT_TRUE(low.warnings.empty());
}

TEST(lowering, unverifiable_ops_are_skipped_with_a_warning) {
  schedule s;
  const int m = s.add_stream("comm", stream_role::comm, -1);
  s.add_op("ag8", m, collective(coll_op::all_gather, 1 << 20, 4, dtype::fp8));
  s.add_op("ag16", m, collective(coll_op::all_gather, 1 << 20, 4, dtype::fp16));
  const case_lowering low =
      lower_case(make_variant_schedules(s), measure_options{}, backend("cuda"), rank_of(0, 4));
  const lowered_variant& ov = low.variants[overlapped];
  ASSERT_EQ(ov.verifies.size(), 1u);
  EXPECT_EQ(ov.verifies[0].op, "ag16");
  EXPECT_EQ(ov.verifies[0].type, dtype::fp16);
  ASSERT_EQ(low.warnings.size(), 1u);  // once per op, not once per variant
  EXPECT_NE(low.warnings[0].find("'ag8'"), std::string::npos) << low.warnings[0];
  EXPECT_NE(low.warnings[0].find("not verified"), std::string::npos) << low.warnings[0];
  // fp8 send buffers start random: the pattern fill has no fp8 path.
  EXPECT_EQ(low.buffer(action_named(ov, "ag8").src).init, buffer_init::random);
}

TEST(lowering, pattern_exactness_limits) {
  std::string why;
  EXPECT_TRUE(pattern_verifiable(verify_kind::all_reduce, dtype::bf16, 85, &why));
  EXPECT_TRUE(why.empty());
  EXPECT_FALSE(pattern_verifiable(verify_kind::all_reduce, dtype::bf16, 86, &why));
  EXPECT_NE(why.find("86 ranks"), std::string::npos) << why;
  EXPECT_TRUE(pattern_verifiable(verify_kind::all_gather, dtype::bf16, 1000, nullptr));
  EXPECT_TRUE(pattern_verifiable(verify_kind::reduce_scatter, dtype::fp16, 682, nullptr));
  EXPECT_FALSE(pattern_verifiable(verify_kind::reduce_scatter, dtype::fp16, 683, nullptr));
  EXPECT_FALSE(pattern_verifiable(verify_kind::recv_from, dtype::fp8, 2, &why));
  EXPECT_NE(why.find("fp8"), std::string::npos) << why;
  // fp32 gradient reductions (grad_reduce_in_fp32) are checked exactly too, at any job's size.
  EXPECT_TRUE(pattern_verifiable(verify_kind::reduce_scatter, dtype::fp32, 16384, nullptr));
  EXPECT_TRUE(pattern_verifiable(verify_kind::all_reduce, dtype::fp32, 16384, nullptr));
}

TEST(lowering, unmeasured_variants_lower_to_nothing) {
  measure_options m;
  m.variants = {false, false, true, false, false};  // coll: comm_only alone
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  const case_lowering low = lower_case(v, m, backend("cuda"), rank_of(0, 4));
  for (std::size_t i = 0; i < low.variants.size(); ++i) {
    EXPECT_EQ(low.variants[i].measured, i == comm_only);
    if (i != comm_only) {
      EXPECT_TRUE(low.variants[i].actions.empty());
    }
  }
  EXPECT_EQ(low.variants[comm_only].actions.size(), 4u);
  EXPECT_TRUE(low.references.empty());  // no measured variant runs a GEMM
  EXPECT_EQ(low.buffers.size(), 4u * 2);
  EXPECT_EQ(low.stream_sets.size(), 1u);
}

TEST(lowering, stream_sets_are_shared_by_signature) {
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  const case_lowering low = lower_case(v, measure_options{}, backend("cuda"), rank_of(0, 4));
  const int ov = low.variants[overlapped].stream_set;
  ASSERT_GE(ov, 0);
  EXPECT_EQ(low.variants[compute_only].stream_set, ov);  // same streams, comm ops dropped
  EXPECT_NE(low.variants[serial].stream_set, ov);        // one stream
  EXPECT_EQ(low.stream_sets.size(), 2u);
  const stream_set_request& set = low.stream_sets[static_cast<std::size_t>(ov)];
  EXPECT_EQ(set.names, (std::vector<std::string>{"compute", "comm"}));
  EXPECT_EQ(set.priorities, (std::vector<int>{0, -1}));
  std::set<std::string> signatures;
  for (const stream_set_request& s : low.stream_sets)
    EXPECT_TRUE(signatures.insert(s.signature).second);
}

TEST(lowering, waited_ops_signal_and_waits_are_kept) {
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  const case_lowering low = lower_case(v, measure_options{}, backend("cuda"), rank_of(0, 4));
  const lowered_variant& ov = low.variants[overlapped];
  EXPECT_EQ(ov.op_count, v[overlapped].ops.size());
  for (const lowered_action& a : ov.actions) {
    EXPECT_EQ(a.stream, v[overlapped].ops[static_cast<std::size_t>(a.op_id)].stream);
    for (int w : a.waits) EXPECT_TRUE(ov.actions[static_cast<std::size_t>(w)].signals) << a.name;
  }
  EXPECT_TRUE(action_named(ov, "proj_chunk").signals);  // the reduce-scatter waits on it
  EXPECT_FALSE(action_named(ov, "fc1").signals);        // nothing waits on the last GEMM
  EXPECT_TRUE(action_named(ov, "rs_chunk").is_comm);
}

TEST(lowering, sm_targets_keep_their_margin_on_another_device) {
  const variant_schedules v = make_variant_schedules(chunked_rs_schedule());
  cuda_backend_options b = backend("cuda");
  b.sm_count_hint = 132;  // planned for 132 SMs with a margin of 16
  const case_lowering low = lower_case(v, measure_options{}, b, rank_of(0, 4, 148));
  EXPECT_EQ(action_named(low.variants[overlapped], "proj_chunk").gemm.sm_target, 132);
  // compute_only drops the margin altogether.
  EXPECT_EQ(action_named(low.variants[compute_only], "proj_chunk").gemm.sm_target, 0);
}

TEST(lowering, elementwise_ops_become_layernorm_or_a_gemm) {
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  elementwise_params ln;
  ln.bytes = 2ull * 2048 * 12288 * 2;
  ln.flops = 8.0 * 2048 * 12288;
  ln.sm_margin = 16;
  s.add_op("ln", c, ln);
  elementwise_params attn;
  attn.bytes = 4ull * 2048 * 3072 * 2;
  attn.flops = 4.0 * 2048 * 2048 * 12288 / 4;
  s.add_op("attn", c, attn);
  const case_lowering low =
      lower_case(make_variant_schedules(s), measure_options{}, backend("cuda"), rank_of(0, 1));
  const lowered_variant& ov = low.variants[overlapped];
  const lowered_action& l = action_named(ov, "ln");
  EXPECT_EQ(l.kind, action_kind::layernorm);
  EXPECT_EQ(l.count, 2048u * 12288);
  EXPECT_EQ(l.ctas, 116);
  EXPECT_EQ(low.buffer(l.src).bytes, 2048u * 12288 * 2);
  EXPECT_EQ(low.buffer(l.src).init, buffer_init::random);
  EXPECT_EQ(low.buffer(l.dst).init, buffer_init::none);
  const lowered_action& a = action_named(ov, "attn");
  EXPECT_EQ(a.kind, action_kind::gemm);
  EXPECT_EQ(a.gemm.type, elementwise_type);
  EXPECT_EQ(action_named(ov, "attn").gemm.sm_target, 0);
}

TEST(lowering, delays_and_launch_ordering) {
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  const int m = s.add_stream("comm", stream_role::comm, -1);
  const int d = s.add_op("spin", m, delay_params{25.0, 0});
  s.add_op("after", c, delay_params{1.0, 2});
  const case_lowering low =
      lower_case(make_variant_schedules(s), measure_options{}, backend("cuda"), rank_of(0, 1));
  const lowered_action& a = action_named(low.variants[overlapped], "spin");
  EXPECT_EQ(a.kind, action_kind::delay);
  EXPECT_EQ(a.ctas, 1);  // at least one CTA
  EXPECT_DOUBLE_EQ(a.us, 25.0);
  EXPECT_TRUE(low.buffers.empty());
  variant_schedules v = make_variant_schedules(s);
  EXPECT_FALSE(uses_launch_ordering(v, measure_options{}));
  v[overlapped].ops[1].waits_started = {d};
  EXPECT_TRUE(uses_launch_ordering(v, measure_options{}));
  measure_options only_serial;
  only_serial.variants = {false, false, false, true, false};
  EXPECT_FALSE(uses_launch_ordering(v, only_serial));
}

// A host sync (docs/ARCHITECTURE.md §5.1 item 12) becomes a stream synchronize after its waits:
// no buffer, no kernel; the op it waits on records its completion event.
TEST(lowering, host_syncs_wait_on_their_stream) {
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  const int d2h = s.add_stream("d2h", stream_role::p2p, 0);
  const int g = s.add_op("router", c, delay_params{5.0, 2});
  s.add_op("counts", d2h, host_sync_params{1024}, {g});
  s.add_op("all", d2h, host_sync_params{0, true}, {g});
  const case_lowering low =
      lower_case(make_variant_schedules(s), measure_options{}, backend("cuda"), rank_of(0, 1));
  const lowered_action& a = action_named(low.variants[overlapped], "counts");
  EXPECT_EQ(a.kind, action_kind::host_sync);
  EXPECT_EQ(a.bytes, 1024u);
  EXPECT_EQ(a.waits, std::vector<int>{g});
  EXPECT_EQ(a.what, "host sync");
  EXPECT_EQ(action_named(low.variants[overlapped], "all").what, "device synchronize");
  EXPECT_TRUE(action_named(low.variants[overlapped], "router").signals);
  EXPECT_TRUE(low.buffers.empty());
}

}  // namespace
}  // namespace ob

namespace ob {
namespace {

using namespace ob::cuda;

// An all-gather with NCCL's settings (docs/ARCHITECTURE.md §5.5) beside a GEMM.
schedule nccl_settings_schedule(coll_op op, const nccl_comm_config& nccl) {
  schedule s;
  s.name = "nccl_settings";
  const int c = s.add_stream("compute", stream_role::compute, 0);
  const int m = s.add_stream("comm", stream_role::comm, -1);
  collective_params p;
  p.op = op;
  p.bytes = 8 << 20;
  p.group_size = 4;
  p.ctas = 16;
  p.nccl = nccl;
  s.add_op("coll", m, p);
  s.add_op("gemm", c, gemm_params{1024, 1024, 1024, dtype::bf16, 0});
  return s;
}

lowering_target rank0_of(int world) {
  lowering_target t;
  t.world_size = world;
  t.priority_greatest = -5;
  return t;
}

TEST(lowering, nccl_settings_reach_the_communicator_and_the_window) {
  nccl_comm_config n;
  n.policy = cta_policy::zero;
  n.symmetric = true;
  n.min_ctas = 4;
  n.max_ctas = 8;
  cuda_backend_options b;
  b.backend = "cuda";
  const variant_schedules v =
      make_variant_schedules(nccl_settings_schedule(coll_op::all_gather, n));
  const case_lowering low = lower_case(v, measure_options{}, b, rank0_of(4));
  ASSERT_EQ(low.comms.size(), 1u);
  const comm_key& k = low.comms[0];
  EXPECT_EQ(k.max_ctas, 8);  // the op's 16 within the communicator's maxCTAs
  EXPECT_EQ(k.min_ctas, 4);
  EXPECT_EQ(k.policy, cta_policy::zero);
  EXPECT_TRUE(k.symmetric);
  EXPECT_NE(to_string(k).find("CTA policy zero"), std::string::npos);
  int windows = 0;
  for (const buffer_request& r : low.buffers)
    if (r.symmetric) {
      ++windows;
      EXPECT_EQ(r.window, k);
    }
  EXPECT_EQ(windows, 2);  // send and receive buffers
  // Without the settings nothing is registered and the key is the plain one.
  const case_lowering plain =
      lower_case(make_variant_schedules(nccl_settings_schedule(coll_op::all_gather, {})),
                 measure_options{}, b, rank0_of(4));
  for (const buffer_request& r : plain.buffers) EXPECT_FALSE(r.symmetric);
  EXPECT_EQ(to_string(plain.comms[0]).find("policy"), std::string::npos);
}

TEST(lowering, nccl_settings_nccl_cannot_run_are_refused_before_any_call) {
  cuda_backend_options b;
  b.backend = "cuda";
  nccl_comm_config zero;
  zero.policy = cta_policy::zero;
  const variant_schedules ar =
      make_variant_schedules(nccl_settings_schedule(coll_op::all_reduce, zero));
  EXPECT_THROW(lower_case(ar, measure_options{}, b, rank0_of(4)), config_error);
  // The loaded NCCL decides: the settings against 2.26, 2.27 and 2.28 libraries.
  comm_key k;
  k.symmetric = true;
  EXPECT_THROW(require_nccl_features({k}, 22605, 22800), config_error);
  EXPECT_NO_THROW(require_nccl_features({k}, 22700, 22800));
  k.policy = cta_policy::zero;
  try {
    require_nccl_features({k}, 22703, 22800);
    ADD_FAILURE() << "CTA policy zero accepted on NCCL 2.27";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("loaded 2.27.3"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(require_nccl_features({k}, 22800, 22800));
  EXPECT_THROW(require_nccl_features({k}, 22800, 22605), config_error);  // old headers
}

// NCCL 2.28 runs an AlltoAll on the copy engines only through ncclAlltoAll with both buffers in
// symmetric windows (docs/ARCHITECTURE.md §5.5): policy zero registers them without --symmetric.
TEST(lowering, zero_sm_all_to_all_registers_its_buffers_in_a_symmetric_window) {
  nccl_comm_config zero;
  zero.policy = cta_policy::zero;
  const case_lowering low =
      lower_case(make_variant_schedules(nccl_settings_schedule(coll_op::all_to_all, zero)),
                 measure_options{}, backend("cuda"), rank0_of(4));
  ASSERT_EQ(low.comms.size(), 1u);
  EXPECT_EQ(low.comms[0].policy, cta_policy::zero);
  EXPECT_TRUE(low.comms[0].symmetric);
  int windows = 0;
  for (const buffer_request& r : low.buffers) windows += r.symmetric ? 1 : 0;
  EXPECT_EQ(windows, 2);
  EXPECT_EQ(action_named(low.variants[comm_only], "coll").comm.policy, cta_policy::zero);
}

// NCCL 2.31's per-collective cap: set per call, checked against the loaded NCCL and the headers
// built against (2.28 here: refused, naming both), and the loopback proxy runs that many CTAs.
TEST(lowering, per_collective_cta_cap_reaches_the_call_and_needs_nccl_231) {
  nccl_comm_config n;
  n.nccl_version = nccl_version_code(2, 31);
  n.coll_max_ctas[static_cast<std::size_t>(coll_op::all_gather)] = 4;
  const variant_schedules v =
      make_variant_schedules(nccl_settings_schedule(coll_op::all_gather, n));
  const case_lowering low = lower_case(v, measure_options{}, backend("cuda"), rank0_of(4));
  ASSERT_EQ(low.comms.size(), 1u);
  const comm_key& k = low.comms[0];
  EXPECT_EQ(k.call_max_ctas, 4);
  EXPECT_EQ(k.max_ctas, 16);  // the communicator keeps the op's own CTAs
  EXPECT_NE(to_string(k).find("per-call maxCTAs 4"), std::string::npos);
  try {
    require_nccl_features({k}, 23102, 22809);
    ADD_FAILURE() << "a per-collective cap accepted with 2.28 headers";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("built against 2.28.9"), std::string::npos) << e.what();
  }
  EXPECT_THROW(require_nccl_features({k}, 23007, 23102), config_error);  // loaded 2.30
  EXPECT_NO_THROW(require_nccl_features({k}, 23102, 23102));
  EXPECT_EQ(proxy_ctas(v[overlapped].ops[0], nullptr), 4);
  // Checked against the NCCL the settings name: below 2.31 the lowering refuses it.
  n.nccl_version = nccl_version_code(2, 30);
  EXPECT_THROW(lower_case(make_variant_schedules(nccl_settings_schedule(coll_op::all_gather, n)),
                          measure_options{}, backend("cuda"), rank0_of(4)),
               config_error);
}

}  // namespace
}  // namespace ob
