#pragma once
// Which planned ops a CUDA graph scope captures (step_config::cuda_graph_scope; docs/MOE.md §17,
// §18). The MoE scopes are marked where the MoE layer is planned (plan/step_stage_moe.cpp); the
// attention's and the full iteration's here, from each op's layer slot, once a stage is planned.
#include <string_view>

#include "model/ir.hpp"
#include "spec/step_config.hpp"

namespace ob {

// The slots of TE's per-layer graph of the attention block (Megatron-Core's
// TransformerLayer._get_submodules_under_cudagraphs for CudaGraphScope.attn: input_layernorm and
// self_attention, whose forward _forward_attention also runs the bias-dropout-add), forward and
// backward: the LayerNorm, the QKV (or MLA's down and up) projections and their fp8 casts, RoPE,
// the attention core with its CP exchange, the output projection and its bias, the residual add,
// and the TP collectives of those GEMMs.
bool attention_slot(std::string_view slot);

// Marks the ops of `s` that `cfg`'s attn or full_iteration scope captures. A full-iteration graph
// holds the forward and backward passes; the optimizer step and the gradients' finalization after
// them (the embedding's gradient all-reduce) stay eager, as does a host sync (a graph cannot hold
// the host's wait).
void mark_graph_scopes(schedule& s, const step_config& cfg);

}  // namespace ob
