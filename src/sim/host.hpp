#pragma once
// The host thread (DESIGN §6 point 1): enqueues ops in schedule order and never waits for the
// GPU, so its timeline is known before the device model runs.
#include <vector>

#include "core/gpu_spec.hpp"
#include "core/ir.hpp"
#include "sim/kernel_model.hpp"

namespace ob::sim {

// Time (µs from the host starting at 0) at which each op has been handed to its hardware queue.
// Eager: every cross-stream wait edge costs one event_us (record + wait) before the launch, then
// the launch call itself. Graphs: every node costs graph_node_us; edges are free.
std::vector<double> host_enqueue_times(const schedule& s, const std::vector<kernel_plan>& plans,
                                       const gpu_spec& gpu, bool graphs);

}  // namespace ob::sim
