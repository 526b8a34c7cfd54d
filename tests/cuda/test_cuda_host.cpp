// Host-side tests of the CUDA backend: they run on machines without a GPU (CI) and check what can
// be checked there: no-GPU behaviour, CDMC handling, communicator keys and groups, buffer and
// GEMM-chunk planning, the verification pattern, version gates and the failure plumbing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "base/env_snapshot.hpp"
#include "base/error.hpp"
#include "cuda/action_launch.hpp"
#include "cuda/cublaslt_gemm.hpp"
#include "cuda/cuda_backend.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/cuda_executor.hpp"
#include "cuda/lowering.hpp"
#include "cuda/nccl_comms.hpp"
#include "cuda/nvml_telemetry.hpp"
#include "cuda/rank_engine.hpp"
#include "cuda/rank_threads.hpp"
#include "cuda/schedule_prep.hpp"
#include "cuda/watchdog.hpp"
#include "kernels/pattern.hpp"
#include "model/collective_traits.hpp"

namespace ob {
namespace {

using namespace ob::cuda;

// --- no GPU --------------------------------------------------------------------------------------

TEST(cuda_backend, device_count_never_throws) {
  const int n = cuda_device_count();
  EXPECT_GE(n, 0);
  EXPECT_EQ(cuda_device_count(), n);  // stable, and the first call left no sticky error behind
}

TEST(cuda_backend, executor_without_gpu_says_use_sim) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present";
  auto comm = make_single_communicator();
  for (const char* backend : {"cuda", "loopback"}) {
    cuda_backend_options o;
    o.backend = backend;
    try {
      (void)make_cuda_executor(o, *comm);
      FAIL() << "expected runtime_failure";
    } catch (const runtime_failure& e) {
      EXPECT_EQ(e.code(), exit_code::runtime);
      EXPECT_NE(std::string(e.what()).find("no CUDA device found; use --backend sim"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(cuda_backend, bad_options_are_config_errors) {
  auto comm = make_single_communicator();
  cuda_backend_options o;
  o.backend = "sim";
  EXPECT_THROW((void)make_cuda_executor(o, *comm), config_error);
  o.backend = "cuda";
  o.gpus = -1;
  EXPECT_THROW((void)make_cuda_executor(o, *comm), config_error);
}

TEST(cuda_backend, loopback_is_a_backend_name) {
  cuda_backend_options o;
  EXPECT_FALSE(o.loopback());
  o.backend = "loopback";
  EXPECT_TRUE(o.loopback());
}

// --- CDMC ----------------------------------------------------------------------------------------

TEST(cdmc, parse) {
  EXPECT_EQ(parse_cdmc(nullptr), cdmc_default);
  EXPECT_EQ(parse_cdmc(""), cdmc_default);
  EXPECT_EQ(parse_cdmc("1"), 1);
  EXPECT_EQ(parse_cdmc("32"), cdmc_max);
  EXPECT_EQ(parse_cdmc("64"), cdmc_max);  // the driver's maximum
  for (const char* bad : {"0", "-1", "abc", "8x", " 8", "1.5"})
    EXPECT_THROW(parse_cdmc(bad), config_error) << bad;
  try {
    parse_cdmc("abc");
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA_DEVICE_MAX_CONNECTIONS"), std::string::npos);
  }
}

TEST(cdmc, process_value_is_a_snapshot) {
  const int first = process_cdmc();
  EXPECT_GE(first, 1);
  EXPECT_LE(first, cdmc_max);
  const char* old = std::getenv("CUDA_DEVICE_MAX_CONNECTIONS");
  const std::string saved = old ? old : "";
  ::setenv("CUDA_DEVICE_MAX_CONNECTIONS", first == 3 ? "5" : "3", 1);
  EXPECT_EQ(process_cdmc(), first);  // the driver would not see the change either
  if (old)
    ::setenv("CUDA_DEVICE_MAX_CONNECTIONS", saved.c_str(), 1);
  else
    ::unsetenv("CUDA_DEVICE_MAX_CONNECTIONS");
}

TEST(cdmc, other_value_is_refused_with_sweep_advice) {
  EXPECT_NO_THROW(require_cdmc(cdmc_default, cdmc_default));
  try {
    require_cdmc(cdmc_max, cdmc_default);
    FAIL() << "expected config_error";
  } catch (const config_error& e) {
    EXPECT_EQ(e.code(), exit_code::usage);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("=" + std::to_string(cdmc_max)), std::string::npos) << msg;
    EXPECT_NE(msg.find("runs under " + std::to_string(cdmc_default)), std::string::npos) << msg;
    EXPECT_NE(msg.find("scripts/sweep_cdmc.sh"), std::string::npos) << msg;
  }
}

// The re-exec test runs this very binary again, filtered to the child test below, which exits
// with the CDMC it sees: proof that execve passed the variable and the exit code came back.
TEST(cdmc_reexec_child, report) {
  if (!std::getenv("OB_TEST_CDMC_CHILD")) GTEST_SKIP() << "only runs as the re-exec child";
  std::_Exit(process_cdmc());
}

TEST(cdmc, reexec_passes_variable_and_exit_code) {
  const auto self = self_command_line();
  ASSERT_FALSE(self.empty());
  const int rc = reexec_with_cdmc(17, {self[0], "--gtest_filter=cdmc_reexec_child.report"},
                                  {{"OB_TEST_CDMC_CHILD", "1"}});
  EXPECT_EQ(rc, 17);
  EXPECT_THROW(reexec_with_cdmc(0), config_error);
  EXPECT_THROW(reexec_with_cdmc(33), config_error);
}

// --- communicators ------------------------------------------------------------------------------

TEST(comm_groups, tp_is_contiguous_others_strided) {
  // 8 ranks, tp 4: {0..3} {4..7}; dp 2: {0,4} {1,5} ...
  auto tp5 = comm_membership(comm_group::tp, 4, 5, 8, "ag");
  EXPECT_EQ(tp5.color, 1);
  EXPECT_EQ(tp5.position, 1);
  auto dp5 = comm_membership(comm_group::dp, 2, 5, 8, "ar");
  EXPECT_EQ(dp5.color, 1);
  EXPECT_EQ(dp5.position, 1);
  auto dp2 = comm_membership(comm_group::dp, 2, 2, 8, "ar");
  EXPECT_EQ(dp2.color, 2);
  EXPECT_EQ(dp2.position, 0);
  auto all = comm_membership(comm_group::tp, 8, 7, 8, "ag");
  EXPECT_EQ(all.color, 0);
  EXPECT_EQ(all.position, 7);
}

TEST(comm_groups, group_that_does_not_fit_is_config_error_naming_op) {
  try {
    (void)comm_membership(comm_group::tp, 8, 0, 1, "ag_ln1");
    FAIL();
  } catch (const config_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("ag_ln1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("8 ranks"), std::string::npos) << msg;
  }
  EXPECT_THROW((void)comm_membership(comm_group::dp, 3, 0, 8, "x"), config_error);
  EXPECT_THROW((void)comm_membership(comm_group::dp, 0, 0, 8, "x"), config_error);
}

schedule comm_schedule() {
  schedule s;
  s.name = "t";
  const int c = s.add_stream("compute", stream_role::compute, 0);
  const int m = s.add_stream("comm", stream_role::comm, -1);
  collective_params ag;
  ag.op = coll_op::all_gather;
  ag.bytes = 1 << 20;
  ag.group_size = 4;
  ag.ctas = 8;
  collective_params rs = ag;
  rs.op = coll_op::reduce_scatter;
  collective_params ag_default = ag;
  ag_default.ctas = 0;
  p2p_params p;
  p.send_peer = 1;
  p.recv_peer = -1;
  p.group_size = 4;
  p.bytes = 4096;
  s.add_op("ag", m, ag);
  s.add_op("rs", m, rs);  // same key as ag
  s.add_op("ag2", m, ag_default);
  s.add_op("ring", m, p);
  s.add_op("gemm", c, gemm_params{128, 256, 64, dtype::bf16, 0});
  return s;
}

TEST(comm_keys, keyed_by_group_size_ctas_and_cga) {
  const schedule s = comm_schedule();
  const comm_key a = comm_key_for(s.ops[0]);
  const comm_key b = comm_key_for(s.ops[1]);
  const comm_key c = comm_key_for(s.ops[2]);
  EXPECT_EQ(a, b);  // the op kind does not matter, only the communicator's configuration
  EXPECT_NE(a, c);
  EXPECT_EQ(a.max_ctas, 8);
  EXPECT_EQ(c.max_ctas, 0);
  EXPECT_EQ(a.cga_cluster_size, 0);
  EXPECT_THROW((void)comm_key_for(s.ops[4]), config_error);
  comm_key d = a;
  d.cga_cluster_size = 2;
  EXPECT_NE(a, d);
  EXPECT_NE(to_string(a).find("maxCTAs 8"), std::string::npos);
  EXPECT_NE(to_string(c).find("maxCTAs default"), std::string::npos);
}

TEST(comm_keys, needed_keys_are_sorted_and_unique_across_variants) {
  const schedule s = comm_schedule();
  const variant_schedules v = make_variant_schedules(s);
  std::vector<const schedule*> all;
  for (const auto& x : v) all.push_back(&x);
  const auto keys = comm_keys_needed(all);
  // ag/rs share (tp, 4, 8); ag2 is (tp, 4, default); ring is (tp, 4, default) too.
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_TRUE(keys[0] < keys[1]);
  EXPECT_EQ(keys[0].max_ctas, 0);
  EXPECT_EQ(keys[1].max_ctas, 8);
}

TEST(collective_counts, follow_nccl_tests_sizes_per_element_type) {
  // The executor's counts are collective_traits' (core); these pin what NCCL is called with.
  // AG: size = gathered total; 1 MiB over 4 ranks = 128 Ki bf16 per rank.
  auto ag = traits_of(coll_op::all_gather).counts(1 << 20, 4, dtype::bf16);
  EXPECT_EQ(ag.per_rank, (1u << 19) / 4);
  EXPECT_EQ(ag.send_elems, ag.per_rank);
  EXPECT_EQ(ag.recv_elems, ag.per_rank * 4);
  auto rs = traits_of(coll_op::reduce_scatter).counts(1 << 20, 4, dtype::bf16);
  EXPECT_EQ(rs.send_elems, 1u << 19);
  EXPECT_EQ(rs.recv_elems, (1u << 19) / 4);
  auto ar = traits_of(coll_op::all_reduce).counts(1 << 20, 4, dtype::bf16);
  EXPECT_EQ(ar.per_rank, 1u << 19);
  EXPECT_EQ(ar.recv_elems, 1u << 19);
  auto odd = traits_of(coll_op::all_gather).counts(14, 4, dtype::bf16);  // 7 elements: 1 per rank
  EXPECT_EQ(odd.per_rank, 1u);
  EXPECT_EQ(odd.recv_elems, 4u);
  EXPECT_EQ(traits_of(coll_op::all_gather).counts(1 << 20, 4, dtype::fp16).per_rank, ag.per_rank);
  EXPECT_EQ(traits_of(coll_op::all_gather).counts(1 << 20, 4, dtype::fp8).per_rank,
            2 * ag.per_rank);
  EXPECT_EQ(traits_of(coll_op::all_reduce).counts(1 << 20, 4, dtype::fp8).per_rank, 1u << 20);
}

TEST(ring, peers_wrap_both_ways) {
  EXPECT_EQ(ring_peer(0, -1, 4), 3);
  EXPECT_EQ(ring_peer(3, 1, 4), 0);
  EXPECT_EQ(ring_peer(2, 5, 4), 3);
  EXPECT_EQ(ring_peer(0, -5, 4), 3);
  EXPECT_EQ(ring_peer(0, 1, 1), 0);
}

TEST(loopback, proxy_ctas_defaults) {
  const schedule s = comm_schedule();
  EXPECT_EQ(proxy_ctas(s.ops[0], nullptr), 8);
  EXPECT_EQ(proxy_ctas(s.ops[2], nullptr), 16);
  EXPECT_EQ(proxy_ctas(s.ops[2], [](coll_op op) { return op == coll_op::all_gather ? 24 : 1; }),
            24);
  EXPECT_EQ(proxy_ctas(s.ops[2], [](coll_op) { return 0; }), 16);
  EXPECT_EQ(proxy_ctas(s.ops[3], nullptr), 0);  // p2p ctas 0: copy engine
}

// --- streams and buffers -------------------------------------------------------------------------

TEST(priorities, relative_order_survives_any_numbering) {
  schedule s;
  s.add_stream("compute", stream_role::compute, 0);
  s.add_stream("comm", stream_role::comm, -1);
  EXPECT_EQ(map_stream_priorities(s, 0, -5), (std::vector<int>{0, -1}));
  schedule t;
  t.add_stream("a", stream_role::compute, 5);
  t.add_stream("b", stream_role::comm, 1);
  t.add_stream("c", stream_role::p2p, 1);
  t.add_stream("d", stream_role::p2p, 3);
  EXPECT_EQ(map_stream_priorities(t, 0, -5), (std::vector<int>{0, -2, -2, -1}));
  // Saturates at the device's greatest priority.
  EXPECT_EQ(map_stream_priorities(t, 0, -1), (std::vector<int>{0, -1, -1, -1}));
  schedule same;
  same.add_stream("a", stream_role::compute, -3);
  same.add_stream("b", stream_role::comm, -3);
  EXPECT_EQ(map_stream_priorities(same, 0, -5), (std::vector<int>{0, 0}));
}

TEST(buffers, keys_count_repeated_names) {
  schedule s;
  const int c = s.add_stream("c", stream_role::compute, 0);
  s.add_op("rs", c, delay_params{1, 1});
  s.add_op("gemm", c, delay_params{1, 1});
  s.add_op("rs", c, delay_params{1, 1});
  EXPECT_EQ(buffer_keys(s), (std::vector<std::string>{"rs#0", "gemm#0", "rs#1"}));
}

TEST(gemm_groups, chunks_along_m_share_weight_and_output) {
  schedule s;
  const int c = s.add_stream("c", stream_role::compute, 0);
  const int m = s.add_stream("m", stream_role::comm, -1);
  for (int i = 0; i < 4; ++i) {
    const int g =
        s.add_op("proj_chunk", c, gemm_params{512, 12288, 3072, dtype::bf16, 16}, {}, "proj_fprop");
    collective_params rs;
    rs.op = coll_op::reduce_scatter;
    s.add_op("rs_chunk", m, rs, {g}, "proj_fprop");
  }
  s.add_op("fc1", c, gemm_params{2048, 12288, 12288, dtype::bf16, 0}, {}, "fc1_fprop");
  s.add_op("other", c, gemm_params{2048, 9216, 12288, dtype::fp8, 0});
  s.add_op("other", c, gemm_params{2048, 9216, 12288, dtype::fp8, 0});
  const auto layout = plan_gemm_groups(s, [](const op& o) -> const gemm_params* {
    return o.kind() == op_kind::gemm ? &o.as<gemm_params>() : nullptr;
  });
  ASSERT_EQ(layout.groups.size(), 4u);
  EXPECT_EQ(layout.groups[0].chunks, 4);
  EXPECT_EQ(layout.groups[0].total_m, 2048);
  EXPECT_EQ(layout.slices.at(0).row_offset, 0);
  EXPECT_EQ(layout.slices.at(2).row_offset, 512);
  EXPECT_EQ(layout.slices.at(6).row_offset, 1536);
  EXPECT_EQ(layout.groups[1].chunks, 1);
  // Ops without a slot never group, even with the same name and shape.
  EXPECT_EQ(layout.groups[2].chunks, 1);
  EXPECT_EQ(layout.groups[3].chunks, 1);
  EXPECT_NE(layout.groups[2].key, layout.groups[3].key);
  EXPECT_EQ(layout.slices.count(1), 0u);  // the collective runs no GEMM
}

TEST(elementwise, layernorm_is_memory_bound_attention_becomes_a_gemm) {
  elementwise_params ln;
  ln.bytes = 2ull * 2048 * 12288 * 2;  // read + write of [2048, 12288] bf16
  ln.flops = 8.0 * 2048 * 12288;
  ln.sm_margin = 16;
  ln.persistent = true;
  const auto p = plan_elementwise(ln, 132);
  EXPECT_FALSE(p.as_gemm);
  EXPECT_EQ(p.ctas, 116);
  EXPECT_EQ(p.elems, 2048ull * 12288);

  elementwise_params attn;
  attn.bytes = 4ull * 2048 * 3072 * 2;
  attn.flops = 4.0 * 2048 * 2048 * 12288 / 4;
  const auto a = plan_elementwise(attn, 132);
  ASSERT_TRUE(a.as_gemm);
  EXPECT_EQ(a.gemm.sm_margin, 0);
  EXPECT_EQ(a.gemm.k % 64, 0);
  EXPECT_NEAR(a.gemm.flops(), attn.flops, attn.flops * 0.05);
  attn.sm_margin = 8;
  EXPECT_EQ(plan_elementwise(attn, 132).gemm.sm_margin, 8);

  elementwise_params huge_margin = ln;
  huge_margin.sm_margin = 500;
  EXPECT_EQ(plan_elementwise(huge_margin, 132).ctas, 1);
}

TEST(gemm, sm_target_is_the_device_less_the_margin) {
  EXPECT_EQ(sm_target_for(0, 132), 0);  // no margin: all SMs
  EXPECT_EQ(sm_target_for(16, 132), 116);
  EXPECT_EQ(sm_target_for(16, 148), 132);  // the margin crosses devices, not the count
  EXPECT_EQ(sm_target_for(500, 132), 1);
  EXPECT_EQ(sm_target_for(-3, 132), 0);
}

TEST(gemm, pointer_alignment_for_chunks) {
  auto at = [](std::uintptr_t v) { return reinterpret_cast<const void*>(v); };
  EXPECT_EQ(pointer_alignment(at(0x10000), at(0x20000), at(0x30000)), 256);
  EXPECT_EQ(pointer_alignment(at(0x10000), at(0x20010), at(0x30000)), 16);
  EXPECT_EQ(pointer_alignment(at(0x10008), at(0x20000), nullptr), 8);
  EXPECT_EQ(pointer_alignment(nullptr, nullptr, nullptr), 256);
  gemm_key a{512, 12288, 3072, dtype::bf16, 0};
  gemm_key b = a;
  b.alignment = 16;
  EXPECT_NE(a, b);  // a less aligned chunk gets its own cached plan
}

TEST(gemm, chunk_tolerance_scales_with_k) {
  const auto small = chunked_gemm_tolerance(64, dtype::bf16);
  const auto big = chunked_gemm_tolerance(12288, dtype::bf16);
  EXPECT_GT(small.rtol, 0.f);
  EXPECT_LT(small.rtol, 0.05f);
  EXPECT_GT(big.atol, small.atol);
  EXPECT_GT(chunked_gemm_tolerance(4096, dtype::fp8).atol,
            chunked_gemm_tolerance(4096, dtype::bf16).atol);
}

// --- verification pattern ------------------------------------------------------------------------

TEST(pattern, small_nonzero_integers) {
  int counts[7] = {0};
  for (std::uint64_t i = 0; i < 60000; ++i) {
    const int v = kernels::pattern_value(static_cast<int>(i % 5), i);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
    ASSERT_NE(v, 0);
    ++counts[v + 3];
  }
  for (int v : {-3, -2, -1, 1, 2, 3}) EXPECT_GT(counts[v + 3], 8000) << v;  // roughly uniform
  EXPECT_NE(kernels::pattern_value(0, 12345), kernels::pattern_value(1, 12345) * 0 + 99);
}

TEST(pattern, expected_values_match_brute_force) {
  const int g = 4;
  const std::uint64_t c = 37;
  // all_gather: element j comes from rank j / c.
  kernels::verify_spec ag{verify_kind::all_gather, g, 2, 0, c};
  EXPECT_EQ(kernels::output_elements(ag), c * g);
  for (std::uint64_t j = 0; j < c * g; ++j)
    ASSERT_EQ(kernels::expected_value(ag, j),
              kernels::pattern_value(static_cast<int>(j / c), j % c));
  // reduce_scatter: rank p gets the sum of every rank's block p.
  kernels::verify_spec rs{verify_kind::reduce_scatter, g, 3, 0, c};
  EXPECT_EQ(kernels::output_elements(rs), c);
  for (std::uint64_t j = 0; j < c; ++j) {
    int sum = 0;
    for (int q = 0; q < g; ++q) sum += kernels::pattern_value(q, 3 * c + j);
    ASSERT_EQ(kernels::expected_value(rs, j), sum);
  }
  kernels::verify_spec ar{verify_kind::all_reduce, g, 1, 0, c};
  for (std::uint64_t j = 0; j < c; ++j) {
    int sum = 0;
    for (int q = 0; q < g; ++q) sum += kernels::pattern_value(q, j);
    ASSERT_EQ(kernels::expected_value(ar, j), sum);
    ASSERT_LE(std::abs(sum), 3 * g);  // exact in bf16 for any summation order
  }
  kernels::verify_spec p2p{verify_kind::recv_from, g, 1, 0, c};
  for (std::uint64_t j = 0; j < c; ++j)
    ASSERT_EQ(kernels::expected_value(p2p, j), kernels::pattern_value(0, j));
}

TEST(pattern, largest_value_bounds_every_expected_value) {
  const int g = 5;
  const std::uint64_t c = 200;
  for (verify_kind k : {verify_kind::all_gather, verify_kind::reduce_scatter,
                        verify_kind::all_reduce, verify_kind::recv_from, verify_kind::all_to_all}) {
    const kernels::verify_spec spec{k, g, 1, 2, c};
    int seen = 0;
    for (std::uint64_t j = 0; j < kernels::output_elements(spec); ++j)
      seen = std::max(seen, std::abs(kernels::expected_value(spec, j)));
    EXPECT_LE(seen, kernels::pattern_max_abs(k, g)) << static_cast<int>(k);
  }
  EXPECT_EQ(kernels::pattern_max_abs(verify_kind::all_reduce, 4), 12);
  EXPECT_EQ(kernels::pattern_max_abs(verify_kind::all_gather, 4), 3);
  // The collective table and the kernels speak the same enum.
  EXPECT_EQ(traits_of(coll_op::reduce_scatter).verify, verify_kind::reduce_scatter);
}

// --- versions, telemetry, layout ----------------------------------------------------------------

TEST(nccl_versions, strings_and_gates) {
  EXPECT_EQ(nccl_version_string(22809), "2.28.9");
  EXPECT_EQ(nccl_version_string(2708), "2.7.8");
  EXPECT_EQ(nccl_version_string(0), "unknown");
  EXPECT_FALSE(nccl_cta_policy_supported(22605));
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 27, 0)
  EXPECT_TRUE(nccl_cta_policy_supported(22700));
#endif
  EXPECT_FALSE(nccl_multi_rank_gpu_supported(22909));
  // Per-collective configs need 2.31 in the library and in the headers built against.
  EXPECT_FALSE(nccl_coll_config_supported(23007));
  EXPECT_EQ(nccl_coll_config_supported(23102), NCCL_VERSION_CODE >= NCCL_VERSION(2, 31, 0));
  EXPECT_TRUE(nccl_multi_rank_gpu_supported(23000));
  EXPECT_EQ(parse_cta_policy(""), -1);
  EXPECT_THROW(parse_cta_policy("fast"), config_error);
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 27, 0)
  EXPECT_EQ(parse_cta_policy("efficiency"), NCCL_CTA_POLICY_EFFICIENCY);
#endif
  EXPECT_GE(nccl_runtime_version(), 0);  // readable without a GPU
}

TEST(nccl_types, follow_the_element_type) {
  const error_context ctx{0, 0, "ag"};
  EXPECT_EQ(nccl_data_type(dtype::bf16, ctx), ncclBfloat16);
  EXPECT_EQ(nccl_data_type(dtype::fp16, ctx), ncclHalf);
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 24, 0)
  if (nccl_runtime_version() >= NCCL_VERSION(2, 24, 0)) {
    EXPECT_EQ(nccl_data_type(dtype::fp8, ctx), ncclFloat8e4m3);
    return;
  }
#endif
  try {
    (void)nccl_data_type(dtype::fp8, ctx);
    FAIL() << "expected config_error";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("NCCL >= 2.24"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'ag'"), std::string::npos) << e.what();
  }
}

TEST(telemetry, clock_warning_threshold) {
  EXPECT_FALSE(clock_warning("rank 0", "x", 1755u, 1755u));
  EXPECT_FALSE(clock_warning("rank 0", "x", 1320u, 1755u));  // 75.2 %
  const auto w = clock_warning("rank 0 (GPU 0)", "at the end", 900u, 1755u);
  ASSERT_TRUE(w);
  EXPECT_NE(w->find("900 MHz"), std::string::npos);
  EXPECT_NE(w->find("rank 0 (GPU 0)"), std::string::npos);
  EXPECT_FALSE(clock_warning("r", "x", std::nullopt, 1755u));
  EXPECT_FALSE(clock_warning("r", "x", 900u, std::nullopt));
  (void)nvml_telemetry::open();  // absent here, or present: either way no crash
}

TEST(layout, ranks_map_to_devices) {
  // MPI, one rank per GPU: rank 5 of 8 on a node with local rank 1 of 4 GPUs.
  auto mpi = plan_rank_layout(0, 5, 8, 1, 4, 4);
  EXPECT_EQ(mpi.local_ranks, 1);
  EXPECT_EQ(mpi.world_size, 8);
  EXPECT_EQ(mpi.first_global_rank, 5);
  EXPECT_EQ(mpi.devices, std::vector<int>{1});
  EXPECT_FALSE(mpi.shares_gpus);
  // Single process, --gpus 4 on 8 GPUs.
  auto threads = plan_rank_layout(4, 0, 1, 0, 8, 4);
  EXPECT_EQ(threads.world_size, 4);
  EXPECT_EQ(threads.devices, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_FALSE(threads.shares_gpus);
  // Two ranks on one GPU.
  auto two = plan_rank_layout(2, 0, 1, 0, 1, 2);
  EXPECT_EQ(two.devices, (std::vector<int>{0, 0}));
  EXPECT_TRUE(two.shares_gpus);
  // Rank 0 of two MPI ranks on a one-GPU node learns from the max that GPUs are shared.
  EXPECT_TRUE(plan_rank_layout(0, 0, 2, 0, 1, 2).shares_gpus);
  EXPECT_THROW(plan_rank_layout(0, 0, 1, 0, 0, 1), runtime_failure);
}

TEST(environment, variables_come_from_the_one_snapshot) {
  // The executor reports env_variables_snapshot(); these are the names the CUDA backend's results
  // depend on.
  const char* envp[] = {"NCCL_OB_TEST_KNOB=7",           "NVTE_OB_TEST=1",
                        "CUDA_DEVICE_MAX_CONNECTIONS=1", "CUDA_VISIBLE_DEVICES=0,1",
                        "OB_UNRELATED_TEST=x",           nullptr};
  const ordered_json v = env_variables_snapshot(envp);
  EXPECT_EQ(v.value("NCCL_OB_TEST_KNOB", ""), "7");
  EXPECT_EQ(v.value("NVTE_OB_TEST", ""), "1");
  EXPECT_EQ(v.value("CUDA_DEVICE_MAX_CONNECTIONS", ""), "1");
  EXPECT_EQ(v.value("CUDA_VISIBLE_DEVICES", ""), "0,1");
  EXPECT_FALSE(v.contains("OB_UNRELATED_TEST"));
}

// --- failure plumbing ----------------------------------------------------------------------------

TEST(errors, messages_carry_rank_op_and_call) {
  error_context ctx{3, 1, "ag_ln1"};
  EXPECT_EQ(ctx.prefix(), "rank 3 (GPU 1), op 'ag_ln1': ");
  EXPECT_EQ(error_context{}.prefix(), "");
  EXPECT_EQ((error_context{-1, 2, ""}.prefix()), "GPU 2: ");
  try {
    OB_CUDA_CHECK(ctx, cudaErrorInvalidValue);
    FAIL();
  } catch (const runtime_failure& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rank 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("ag_ln1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cudaErrorInvalidValue"), std::string::npos) << msg;
  }
  try {
    OB_NCCL_CHECK(ctx, nullptr, ncclInvalidArgument);
    FAIL();
  } catch (const runtime_failure& e) {
    EXPECT_NE(std::string(e.what()).find("ncclInvalidArgument"), std::string::npos) << e.what();
  }
  try {
    OB_CUBLAS_CHECK(ctx, CUBLAS_STATUS_NOT_SUPPORTED);
    FAIL();
  } catch (const runtime_failure& e) {
    EXPECT_NE(std::string(e.what()).find("NOT_SUPPORTED"), std::string::npos) << e.what();
  }
}

TEST(rank_threads, first_failure_wins_with_its_type) {
  abort_signal abort;
  std::atomic<int> ran{0};
  try {
    run_on_rank_threads(
        4,
        [&](int i) {
          ++ran;
          if (i == 2) throw hang_error("rank 2: timed out waiting on op 'ag'");
          // The others wait for the abort, as a rank blocked on a collective would.
          for (int k = 0; k < 500 && !abort.raised(); ++k)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          if (abort.raised()) throw runtime_failure("stopped because another rank failed");
        },
        abort);
    FAIL() << "expected hang_error";
  } catch (const hang_error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 2"), std::string::npos);
  }
  EXPECT_EQ(ran.load(), 4);
  EXPECT_TRUE(abort.raised());
  EXPECT_NE(abort.reason().find("rank 2"), std::string::npos);

  abort_signal quiet;
  EXPECT_NO_THROW(run_on_rank_threads(
      3, [](int) {}, quiet));
  EXPECT_FALSE(quiet.raised());
}

TEST(watchdog, fires_without_progress_and_not_with_it) {
  std::atomic<int> fired{0};
  {
    watchdog dog(
        0.05, "rank 1", [&] { ++fired; }, 60.0);
    const auto start = std::chrono::steady_clock::now();
    // fired() turns true just before the callback runs (the owner must see the hang before the
    // abort unblocks it), so wait for both.
    while ((!dog.fired() || fired.load() == 0) &&
           std::chrono::steady_clock::now() - start < std::chrono::seconds(10))
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(dog.fired());
    EXPECT_EQ(fired.load(), 1);
    EXPECT_NE(dog.message().find("rank 1"), std::string::npos) << dog.message();
  }
  {
    watchdog dog(30, "rank 0", [&] { ++fired; });
    dog.beat("busy");
    EXPECT_LT(dog.seconds_since_beat(), 5.0);
    EXPECT_FALSE(dog.fired());
  }
  EXPECT_EQ(fired.load(), 1);
}

}  // namespace
}  // namespace ob
