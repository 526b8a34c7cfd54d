// Activation offloading on one stage (docs/FSDP.md §5): Megatron-Core's cpu_offloading_num_layers
// through Transformer Engine's CPU offload context. The first N layers' saved activations are
// copied to host memory after each layer's forward and back before its backward, each direction
// on a stream of its own. TE double-buffers: the next layer's forward may start while one layer's
// copy runs, but the layer after it waits for that copy; in the backward a layer's reload is
// issued when the layer after it starts its backward, and its backward waits for the reload.
// The copies take no SM: they run as fixed-duration ops of the layer's activation bytes over the
// cluster's host link (host_link_gbps) or the copy engines, whichever is slower, and draw that
// rate from HBM, which slows the GEMMs running beside them (docs/ARCHITECTURE.md §5.1, item 8).
#include <algorithm>

#include "base/error.hpp"
#include "base/rates.hpp"
#include "plan/memory_model.hpp"
#include "plan/step_stage.hpp"

namespace ob::detail {

bool stage_planner::offloaded(int chunk, int l) const {
  return chunk == 0 && l >= 0 && l < cfg_.cpu_offload_layers;
}

// One layer's saved activations (a MoE layer's own, as the memory model counts them) over the
// host link in one direction.
int stage_planner::host_copy(const std::string& name, int stream, int chunk, int l,
                             std::vector<int> after) {
  double gbps = in_.cluster.host_link_gbps;
  if (in_.gpu.copy_engine_gbps > 0) gbps = std::min(gbps, in_.gpu.copy_engine_gbps);
  if (gbps <= 0) throw config_error("cluster " + in_.cluster.name + ": no host_link_gbps");
  const double bytes = layer_activation_bytes(w_.model, cfg_, is_moe_layer(chunk, l));
  const double us = bytes / (gbps * bytes_per_us_per_gbps);
  // Its HBM reads (to the host) or writes (back) slow the GEMMs beside it as collectives' do.
  return s_.add_op(name, stream, delay_params{us, 0, gbps}, std::move(after), "activation_offload");
}

// After layer l's forward: its activations start for the host; the next compute op waits for the
// previous layer's copy (TE's double buffer holds two layers' copies at most).
void stage_planner::offload_after_forward(const std::string& prefix, int chunk, int l) {
  if (!offloaded(chunk, l)) return;
  const auto prev = offload_d2h_.find(l - 1);
  if (prev != offload_d2h_.end()) next_waits_.push_back(prev->second);
  offload_d2h_[l] = host_copy(prefix + "L" + std::to_string(l) + ".offload", d2h_, chunk, l,
                              {appender_->last_compute()});
}

// Before layer l's backward: its reload (issued beside the layer after it, or now for the first
// offloaded layer the backward reaches) holds it back; the reload of the layer before it starts.
void stage_planner::reload_before_backward(const std::string& prefix, int chunk, int l) {
  if (!offloaded(chunk, l)) return;
  const auto issue = [&](int layer) {
    std::vector<int> after{offload_d2h_.at(layer)};
    if (appender_->last_compute() >= 0) after.push_back(appender_->last_compute());
    return host_copy(prefix + "L" + std::to_string(layer) + ".reload", h2d_, chunk, layer,
                     std::move(after));
  };
  const auto it = offload_h2d_.find(l);
  next_waits_.push_back(it != offload_h2d_.end() ? it->second : issue(l));
  offload_h2d_.erase(l);
  if (offloaded(chunk, l - 1)) offload_h2d_[l - 1] = issue(l - 1);
  offload_d2h_.erase(l);
}

}  // namespace ob::detail
