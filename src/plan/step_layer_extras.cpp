// Kernels of the training step's layer that depend on how Megatron accumulates gradients and on
// its release, added to the layer every stage runs (docs/ARCHITECTURE.md §9.3).
#include <string_view>

#include "plan/step_stage.hpp"

namespace ob::detail {
namespace {

// Activations and their gradients in the 16-bit type (Megatron-LM 2022 trains in fp16 or bf16).
constexpr double act_bytes = 2;

layer_elementwise kernel(std::string slot, double elems, double bytes_per_elem) {
  layer_elementwise e;
  e.slot = std::move(slot);
  e.backward = true;
  e.params.bytes = static_cast<std::uint64_t>(elems * bytes_per_elem);
  e.params.flops = elems;
  return e;
}

const layer_gemm* gemm_at(const layer_workload& w, std::size_t i) {
  return std::get_if<layer_gemm>(&w.steps[i]);
}

// The index of the step after `slot`'s (the end when the layer has no such step).
std::size_t after(const layer_workload& w, std::string_view slot) {
  for (std::size_t i = 0; i < w.steps.size(); ++i) {
    const auto* e = std::get_if<layer_elementwise>(&w.steps[i]);
    const auto* g = gemm_at(w, i);
    if ((e && e->slot == slot) || (g && g->slot == slot)) return i + 1;
  }
  return w.steps.size();
}

// Elements of a GEMM's output [M, N] (0 when the layer has no such GEMM).
double output_elems(const layer_workload& w, std::string_view slot) {
  for (const layer_step& s : w.steps)
    if (const auto* g = std::get_if<layer_gemm>(&s); g && g->slot == slot)
      return static_cast<double>(g->gemm.m) * static_cast<double>(g->gemm.n);
  return 0;
}

void insert_after(layer_workload& w, std::string_view slot, layer_elementwise e) {
  w.steps.insert(w.steps.begin() + static_cast<std::ptrdiff_t>(after(w, slot)), std::move(e));
}

}  // namespace

// Megatron's DDP registers a hook on every parameter's gradient accumulator: once autograd has
// the weight's 16-bit gradient it runs `param.main_grad.add_(param.grad.data)` (Megatron-LM
// megatron/model/distributed.py `_make_param_hook`, 2022; Megatron-Core's DDP backward hook
// likewise): the gradient and main_grad read, main_grad written, right after each weight-gradient
// GEMM and on every micro-batch. `fc2_wgrad` adds through `fc2_grad_add`, so a MoE layer drops
// the dense MLP's as it drops its GEMMs (the first word of the slot).
void add_grad_accumulation(layer_workload& w, dtype main_grad) {
  const double per_param = grad_add_bytes_per_param(main_grad);
  for (std::size_t i = 0; i < w.steps.size(); ++i) {
    const layer_gemm* g = gemm_at(w, i);
    if (!g || !g->backward || !g->slot.ends_with("_wgrad")) continue;
    const std::string slot = g->slot.substr(0, g->slot.size() - 6) + "_grad_add";
    const double params = static_cast<double>(g->gemm.m) * static_cast<double>(g->gemm.n);
    w.steps.insert(w.steps.begin() + static_cast<std::ptrdiff_t>(i + 1),
                   kernel(slot, params, per_param));
    ++i;
  }
}

// Megatron-LM 2022's LinearWithGradAccumulationAndAsyncCommunication (megatron/mpu/layers.py):
// the QKV projection is a ColumnParallelLinear without skip_bias_add, so its forward runs
// `output = output + bias` after the GEMM (the output read and written) and its backward
// `grad_output.sum(dim=0)` after the weight gradient (the output gradient read). fc1 hands its
// bias to the fused bias-GeLU, whose backward returns the full-size gradient for the bias, which
// autograd sums over the tokens (one more read). proj's and fc2's biases go to the
// bias-dropout-add, whose reductions the layer already has (add_bias_linear).
void add_megatron_2022_biases(layer_workload& w) {
  if (!w.model.add_bias_linear) return;
  const double qkv = output_elems(w, "qkv_fprop"), fc1 = output_elems(w, "fc1_fprop");
  if (qkv > 0) {
    layer_elementwise fwd = kernel("qkv_bias_fwd", qkv, 2 * act_bytes);
    fwd.backward = false;
    insert_after(w, "qkv_fprop", std::move(fwd));
    insert_after(w, "qkv_wgrad", kernel("qkv_bias_bgrad", qkv, act_bytes));
  }
  if (fc1 > 0) insert_after(w, "act_bwd", kernel("fc1_bias_bgrad", fc1, act_bytes));
}

}  // namespace ob::detail
