#include "sim/host.hpp"

namespace ob::sim {
namespace {

// A collective Megatron issues through torch.distributed from eager Python: the DP buckets'
// reduce-scatter / all-gather / all-reduce (the experts' over expert DP too) and an EP exchange on
// NCCL (the alltoall and allgather dispatchers). TP and CP collectives are Transformer Engine's
// own, and HybridEP and DeepEP exchanges are their libraries' kernels, not c10d calls (docs/MOE.md
// §20).
bool c10d_collective(const op& o) {
  if (o.kind() != op_kind::collective) return false;
  const auto& c = o.as<collective_params>();
  if (c.group == comm_group::dp || c.group == comm_group::edp) return true;
  return c.group == comm_group::ep && c.ep.backend == ep_backend::nccl;
}

// What issuing the op itself costs: under an eager framework a GEMM or elementwise kernel is an
// eager op's (dispatch, autograd, launch, the Python between ops: gpu_spec::eager_op_us) and a
// c10d collective a c10d call's (gpu_spec::c10d_call_us), both measured in public profiles
// (docs/MOE.md §20); other collectives, copies and syncs keep their own call's cost.
double issue_cost(const schedule& s, const op& o, const kernel_plan& plan, const gpu_spec& gpu) {
  if (!s.eager_framework) return plan.launch_us;
  const bool kernel = o.kind() == op_kind::gemm || o.kind() == op_kind::elementwise;
  if (kernel) return gpu.eager_op_us;
  return c10d_collective(o) ? gpu.c10d_call_us : plan.launch_us;
}

// One op's host cost. Graphed (the whole step, or the op's CUDA graph scope): a node each for
// the op and its host ops, no events. Eager: every cross-stream edge costs one event_us (record +
// wait), the op its issue, and each host-only framework op before it one eager op.
double host_cost(const schedule& s, const op& o, const kernel_plan& plan, const gpu_spec& gpu,
                 bool graphs) {
  if (graphs || o.graphed) return gpu.graph_node_us * (1 + o.host_ops);
  if (o.kind() == op_kind::host_sync && o.as<host_sync_params>().device)
    return 0;  // cudaDeviceSynchronize: no event, no launch; the wait itself is the engine's
  double cost = 0;
  for (const auto* list : {&o.waits, &o.waits_started})
    for (int w : *list)
      if (s.ops[w].stream != o.stream) cost += gpu.event_us;  // same stream: ordered already
  return cost + issue_cost(s, o, plan, gpu) + o.host_ops * gpu.eager_op_us;
}

}  // namespace

host_timeline host_enqueue_times(const schedule& s, const std::vector<kernel_plan>& plans,
                                 const gpu_spec& gpu, bool graphs) {
  host_timeline h;
  h.enqueue_us.resize(s.ops.size());
  // Costs are summed from the origin on, so that op i's time is exactly the sum of the costs of
  // ops 1..i (no subtraction rounding); op 0's own cost is the origin.
  double t = 0;
  for (const op& o : s.ops) {
    const double cost = host_cost(s, o, plans[o.id], gpu, graphs);
    if (o.id == 0)
      h.origin_us = cost;
    else
      t += cost;
    h.enqueue_us[o.id] = t;
  }
  return h;
}

}  // namespace ob::sim
