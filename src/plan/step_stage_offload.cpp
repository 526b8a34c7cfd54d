// Activation offloading on one stage (docs/FSDP.md §5): Megatron-Core's cpu_offloading_num_layers
// through Transformer Engine's CPU offload context, as TE 2.14's default synchronizer
// (DefaultOffloadSynchronizer, transformer_engine/pytorch/cpu_offload.py) schedules it. Of L
// layers the first N are offloaded: layer i's saved activations are copied to host memory once
// its forward is done, and the forward of layer L - N + i waits for that copy (then frees the
// layer's memory); in the backward, layer i's reload is issued before the backward of layer
// L - 1 - N + i, and layer i's backward waits for it. So at most L - N layers' activations are on
// the GPU at once. Both directions run on one stream, take no SM, and last the layer's
// activation bytes over the share of the cluster's host link a copy reaches that way
// (host_link_gbps times host_link_efficiency's d2h or h2d, docs/FSDP.md §5.4) or the copy
// engines, whichever is slower; they draw that rate from HBM, which slows the GEMMs beside them
// (docs/ARCHITECTURE.md §5.1, item 8).
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
// host link in one direction: to the host (the offload) or back (the reload).
int stage_planner::host_copy(const std::string& name, int chunk, int l, std::vector<int> after,
                             bool to_host) {
  const cluster_spec& c = in_.cluster;
  double gbps =
      c.host_link_gbps * (to_host ? c.host_link_d2h_efficiency : c.host_link_h2d_efficiency);
  if (in_.gpu.copy_engine_gbps > 0) gbps = std::min(gbps, in_.gpu.copy_engine_gbps);
  if (gbps <= 0) throw config_error("cluster " + c.name + ": no host_link_gbps");
  const double bytes = layer_activation_bytes(w_.model, cfg_, is_moe_layer(chunk, l));
  const double us = bytes / (gbps * bytes_per_us_per_gbps);
  // Its HBM reads (to the host) or writes (back) slow the GEMMs beside it as collectives' do.
  return s_.add_op(name, offload_, delay_params{us, 0, gbps}, std::move(after),
                   "activation_offload");
}

// After layer l's forward: its activations start for the host; layer l + 1's forward, the
// L - N + i-th, first waits for layer i's copy to end (TE's finish_offload_map).
void stage_planner::offload_after_forward(const std::string& prefix, int chunk, int l) {
  if (!offloaded(chunk, 0)) return;
  if (offloaded(chunk, l))
    offload_d2h_[l] = host_copy(prefix + "L" + std::to_string(l) + ".offload", chunk, l,
                                {appender_->last_compute()}, true);
  const int done = l + 1 - (layers_[0] - cfg_.cpu_offload_layers);
  if (offloaded(chunk, done)) next_waits_.push_back(offload_d2h_.at(done));
}

// Before layer l's backward, the L - 1 - N + i-th: layer i's reload is issued (after the compute
// so far, TE's start_reload_map); an offloaded layer's backward waits for its own reload.
void stage_planner::reload_before_backward(const std::string& prefix, int chunk, int l) {
  if (!offloaded(chunk, 0)) return;
  const int start = l - (layers_[0] - 1 - cfg_.cpu_offload_layers);
  if (offloaded(chunk, start)) {
    std::vector<int> after{offload_d2h_.at(start)};
    if (appender_->last_compute() >= 0) after.push_back(appender_->last_compute());
    offload_h2d_[start] = host_copy(prefix + "L" + std::to_string(start) + ".reload", chunk, start,
                                    std::move(after), false);
    offload_d2h_.erase(start);
  }
  if (!offloaded(chunk, l)) return;
  next_waits_.push_back(offload_h2d_.at(l));
  offload_h2d_.erase(l);
}

}  // namespace ob::detail
