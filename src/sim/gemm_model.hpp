#pragma once
// GEMM model v2 (docs/ARCHITECTURE.md §5.1, item 4): the kernel cuBLAS would pick for a shape
// and what it costs. A kernel is a persistent grid of CTAs taking work units (an output tile, or
// a K slice of one under split-K / stream-K) one at a time; each CTA pays a fixed setup once, each
// unit its math or its share of the HBM traffic, whichever is longer, plus a small overhead.
// Candidates (three tile shapes, 1..gemm_splitk_max slices) are ranked by the same cost with
// whole waves, as cuBLAS's heuristics rank kernels, so a chunk whose last wave would be nearly
// empty is sliced along K instead of paying a full extra wave.
#include <cstdint>
#include <span>

#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

namespace ob::sim {

struct gemm_choice {
  int tile_m = 0, tile_n = 0;
  int splits = 1;          // K slices per tile (1 = no split-K)
  std::int64_t units = 0;  // tiles x splits
  int ctas = 0;            // min(units, SMs it may use)
  double unit_us = 0;      // one unit, alone on the GPU
  double setup_us = 0;     // once per CTA
  double hbm_bytes = 0;    // A, B and C through HBM once
  double est_us = 0;       // whole kernel alone, whole waves (the heuristic's estimate)
};

// Bytes a GEMM must move through HBM at least: its operands once and its output in `out` (bf16;
// fp8 GEMMs write bf16 as Transformer Engine's do), twice when it accumulates into it (C read, D
// written: a weight gradient added into an fp32 main_grad moves 8 bytes per element, not 2).
double gemm_hbm_bytes(const gemm_params& g);

// The kernel cuBLAS would run for `g` on `gpu` with `sms` SMs available to it.
gemm_choice choose_gemm(const gemm_params& g, const gpu_spec& gpu, int sms);

// A grouped GEMM (MoE experts, docs/MOE.md §4): one persistent kernel over every member's tiles.
// Members share the type and differ in the tokens routed to each expert (m for fprop and dgrad,
// k for wgrad); each member rounds up to whole tiles, so many small experts cost more than one
// GEMM of the same FLOPs. No split-K. An empty group, or one with no work, has no units.
gemm_choice choose_grouped_gemm(std::span<const gemm_params> group, const gpu_spec& gpu, int sms);

}  // namespace ob::sim
