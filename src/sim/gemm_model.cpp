#include "sim/gemm_model.hpp"

#include <algorithm>
#include <array>

namespace ob::sim {

namespace {

constexpr double flops_per_us_per_tflops = 1e6;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

struct tile_shape {
  int m, n;
  double efficiency;  // per-SM rate relative to the GPU's main tile
};

// What a candidate costs; `est_us` ranks them.
struct candidate_cost {
  std::int64_t units = 0;
  int ctas = 0;
  double unit_us = 0, est_us = 0;
};

// `shape` tiles with K cut into `splits` slices; `math_us` is one unslit tile's math.
candidate_cost cost(std::int64_t tiles, int splits, double math_us, double mem_us, int sms,
                    const gpu_spec& gpu) {
  candidate_cost c;
  c.units = tiles * splits;
  c.ctas = static_cast<int>(std::min<std::int64_t>(c.units, sms));
  const double math = math_us / splits;
  // The CTAs running at once share HBM: each unit's share of the kernel's traffic.
  const double mem = mem_us * c.ctas / static_cast<double>(c.units);
  c.unit_us = std::max(math, mem) + gpu.gemm_mem_overlap_loss * std::min(math, mem) +
              gpu.gemm_unit_overhead_us + (splits > 1 ? gpu.gemm_splitk_fixup_us : 0.0);
  c.est_us = gpu.gemm_setup_us + static_cast<double>(ceil_div(c.units, c.ctas)) * c.unit_us;
  return c;
}

}  // namespace

double gemm_hbm_bytes(const gemm_params& g) {
  const double in = dtype_operand_bytes(g.type);
  const auto m = static_cast<double>(g.m), n = static_cast<double>(g.n);
  const auto k = static_cast<double>(g.k);
  // An accumulating GEMM (beta = 1) reads C, its own output buffer, before it writes D.
  const double out = static_cast<double>(dtype_bytes(g.out)) * (g.accumulate ? 2 : 1);
  return (m * k + k * n) * in + m * n * out;
}

namespace {

std::array<tile_shape, 3> tile_shapes(const gpu_spec& gpu) {
  return {{{gpu.gemm_tile_m, gpu.gemm_tile_n, 1.0},
           {gpu.gemm_tile_n, gpu.gemm_tile_m, 1.0},
           {gpu.gemm_tile_m, std::max(1, gpu.gemm_tile_n / 2), gpu.small_tile_efficiency}}};
}

double per_sm_rate(dtype t, const gpu_spec& gpu) {
  return gpu.peak_tflops(t) * flops_per_us_per_tflops / gpu.sm_count * gpu.gemm_efficiency(t);
}

void take(gemm_choice& best, const tile_shape& s, int splits, const candidate_cost& c) {
  best.tile_m = s.m;
  best.tile_n = s.n;
  best.splits = splits;
  best.units = c.units;
  best.ctas = c.ctas;
  best.unit_us = c.unit_us;
  best.est_us = c.est_us;
}

}  // namespace

gemm_choice choose_gemm(const gemm_params& g, const gpu_spec& gpu, int sms) {
  const double mem_us = gemm_hbm_bytes(g) / gpu.hbm_bytes_per_us();
  const double per_sm = per_sm_rate(g.type, gpu);
  gemm_choice best;
  for (const tile_shape& s : tile_shapes(gpu)) {
    const std::int64_t tiles = ceil_div(g.m, s.m) * ceil_div(g.n, s.n);
    // Edge tiles cost a full tile: the hardware computes the padded tile anyway.
    const double math_us = 2.0 * s.m * s.n * static_cast<double>(g.k) / (per_sm * s.efficiency);
    for (int splits = 1; splits <= std::max(1, gpu.gemm_splitk_max); ++splits) {
      if (splits > 1 && g.k / splits < gpu.gemm_splitk_min_k) break;
      const candidate_cost c = cost(tiles, splits, math_us, mem_us, sms, gpu);
      if (best.units == 0 || c.est_us < best.est_us) take(best, s, splits, c);
    }
  }
  best.setup_us = gpu.gemm_setup_us;
  best.hbm_bytes = gemm_hbm_bytes(g);
  return best;
}

gemm_choice choose_grouped_gemm(std::span<const gemm_params> group, const gpu_spec& gpu, int sms) {
  gemm_choice best;
  if (group.empty()) return best;
  const double per_sm = per_sm_rate(group.front().type, gpu);  // one type for the group
  double hbm = 0;
  for (const gemm_params& e : group) hbm += e.m > 0 && e.k > 0 ? gemm_hbm_bytes(e) : 0;
  const double mem_us = hbm / gpu.hbm_bytes_per_us();
  for (const tile_shape& s : tile_shapes(gpu)) {
    // Each member rounds up to whole tiles (an expert with few tokens pays a full tile of rows);
    // a unit's math is the mean over the members' tiles, whose k may differ (wgrad).
    std::int64_t tiles = 0;
    double math_sum = 0;
    for (const gemm_params& e : group) {
      if (e.m == 0 || e.k == 0) continue;
      const std::int64_t t = ceil_div(e.m, s.m) * ceil_div(e.n, s.n);
      tiles += t;
      math_sum += static_cast<double>(t) * 2.0 * s.m * s.n * static_cast<double>(e.k) /
                  (per_sm * s.efficiency);
    }
    if (tiles == 0) return best;
    const candidate_cost c =
        cost(tiles, 1, math_sum / static_cast<double>(tiles), mem_us, sms, gpu);
    if (best.units == 0 || c.est_us < best.est_us) take(best, s, 1, c);
  }
  best.setup_us = gpu.gemm_setup_us;
  best.hbm_bytes = hbm;
  return best;
}

}  // namespace ob::sim
