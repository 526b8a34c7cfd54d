#pragma once
// What one GPU holds during a training step (docs/MEMORY.md): weights, gradients, optimizer
// states, activations, communication buffers and a reserve, on the pipeline stage that holds the
// most. A model's estimate, never a measurement: the step case's "memory_gib".
#include <cstdint>

#include "model/gpu_spec.hpp"
#include "model/memory.hpp"
#include "model/model_spec.hpp"
#include "spec/step_config.hpp"

namespace ob {

// Bytes one micro-batch leaves stored for the backward pass of one transformer layer on one GPU,
// as Korthikanti et al. 2022 count them (docs/MEMORY.md §2): TP shards the attention and MLP
// tensors, sequence parallelism also the norms, dropout masks and GEMM inputs, CP the sequence;
// selective recompute drops what its recompute_modules name (§2.1), full recompute keeps only the
// layer's input. `moe`: a MoE layer (its routed and shared experts instead of the dense MLP).
// `model` is the case's (seq_length, micro_batch and type already set).
double layer_activation_bytes(const model_spec& model, const step_config& cfg, bool moe = false);

// The estimate for a checked case (check_step has filled dp, microbatches and layers_used);
// `ub_buffers`: the userbuffers TE allocates (one per overlapped GEMM; 0 without TP overlap).
memory_estimate estimate_memory(const model_spec& model, const gpu_spec& gpu,
                                const step_config& cfg, int ub_buffers);

}  // namespace ob
