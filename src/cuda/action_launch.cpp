#include "cuda/action_launch.hpp"

#include "base/error.hpp"
#include "cuda/rank_engine.hpp"
#include "kernels/kernels.cuh"
#include "model/collective_traits.hpp"

namespace ob::cuda {

ncclDataType_t nccl_data_type(dtype t, const error_context& ctx) {
  switch (t) {
    case dtype::bf16:
      return ncclBfloat16;
    case dtype::fp16:
      return ncclHalf;
    case dtype::fp8:
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 24, 0)
      if (nccl_runtime_version() >= NCCL_VERSION(2, 24, 0)) return ncclFloat8e4m3;
#endif
      break;
    case dtype::fp32:
      return ncclFloat32;
    case dtype::mxfp8:  // moved as bytes: the lowering refuses to reduce them
    case dtype::nvfp4:
      return ncclUint8;
  }
  throw config_error(ctx.prefix() + std::string(to_string(t)) +
                     " communication needs NCCL >= 2.24 (ncclFloat8e4m3); built against " +
                     nccl_version_string(NCCL_VERSION_CODE) + ", loaded " +
                     nccl_version_string(nccl_runtime_version()));
}

void require_nccl_types(const case_lowering& low, const error_context& ctx) {
  for (const lowered_variant& lv : low.variants)
    for (const lowered_action& a : lv.actions)
      if (a.kind == action_kind::nccl_collective || a.kind == action_kind::nccl_p2p)
        (void)nccl_data_type(a.type, ctx.with_op(a.name));
}

bound_action action_launcher::bind(const lowered_action& a, const case_resources& res) const {
  const error_context c = e_.context(a.name);
  bound_action b;
  b.a = &a;
  b.x = res.address(a.x);
  b.w = res.address(a.w);
  b.src = res.address(a.src);
  b.dst = res.address(a.dst);
  b.x_scale = res.address(a.x_scale);
  b.w_scale = res.address(a.w_scale);
  if (a.kind == action_kind::gemm) {
    e_.gemm().prepare(a.gemm, c);
    (void)e_.workspace(static_cast<std::size_t>(a.stream));
  }
  if (a.kind == action_kind::nccl_collective || a.kind == action_kind::nccl_p2p) {
    b.nccl_type = nccl_data_type(a.type, c);
    b.comm = e_.comms().get(a.comm, a.name, timeout_s_, &abort_, c);
  }
  return b;
}

void action_launcher::finish_nccl(ncclResult_t rc, const bound_action& b,
                                  std::string_view call) const {
  if (rc != ncclInProgress) {
    check_nccl(rc, call, e_.context(b.a->name), b.comm);
    return;
  }
  try {
    wait_comm_ready(b.comm, timeout_s_, &abort_, "enqueuing " + std::string(call),
                    e_.context(b.a->name), /*abort_on_timeout=*/false);
  } catch (const hang_error&) {
    e_.abort_comms();
    throw;
  }
}

// Grouped send/recv to every peer (nccl-tests' alltoall; ncclAlltoAll only exists from NCCL
// 2.28): the group is ended whatever a call returned, and the first failure is reported.
ncclResult_t action_launcher::all_to_all(const bound_action& b, cudaStream_t s) const {
  const lowered_action& a = *b.a;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 28, 0)
  // NCCL's copy-engine AlltoAll is behind ncclAlltoAll only: grouped send/recv stay on SMs.
  // require_nccl_features has checked the loaded NCCL has it (policy zero needs 2.28).
  if (a.comm.policy == cta_policy::zero)
    return ncclAlltoAll(b.src, b.dst, a.count, b.nccl_type, b.comm, s);
#endif
  ncclResult_t rc = ncclGroupStart();
  if (rc != ncclSuccess) return rc;
  const auto* src = static_cast<const char*>(b.src);
  auto* dst = static_cast<char*>(b.dst);
  for (const a2a_transfer& t : all_to_all_transfers(a)) {
    const ncclResult_t r1 = ncclSend(src + t.send_offset, a.count, b.nccl_type, t.peer, b.comm, s);
    const ncclResult_t r2 = ncclRecv(dst + t.recv_offset, a.count, b.nccl_type, t.peer, b.comm, s);
    for (ncclResult_t r : {r1, r2})
      if (rc == ncclSuccess && r != ncclInProgress) rc = r;
  }
  const ncclResult_t end = ncclGroupEnd();
  return rc != ncclSuccess ? rc : end;
}

ncclResult_t action_launcher::configured_collective(const bound_action& b, cudaStream_t s) const {
  const lowered_action& a = *b.a;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 31, 0)
  // Initialised as NCCL requires, the same on every rank (docs/ARCHITECTURE.md §5.5).
  ncclCollConfig_t config = NCCL_COLLCONFIG_INITIALIZER;
  config.maxCTAs = a.comm.call_max_ctas;
  switch (a.coll) {
    case coll_op::all_gather:
      return ncclAllGatherConfig(b.src, b.dst, a.count, b.nccl_type, b.comm, s, &config);
    case coll_op::reduce_scatter:
      return ncclReduceScatterConfig(b.src, b.dst, a.count, b.nccl_type, ncclSum, b.comm, s,
                                     &config);
    case coll_op::all_reduce:
      return ncclAllReduceConfig(b.src, b.dst, a.count, b.nccl_type, ncclSum, b.comm, s, &config);
    case coll_op::all_to_all:
      return ncclAlltoAllConfig(b.src, b.dst, a.count, b.nccl_type, b.comm, s, &config);
  }
  return ncclInvalidArgument;
#else
  (void)s;
  // require_nccl_features refuses this before any communicator; kept for a direct caller.
  throw config_error(e_.context(a.name).prefix() +
                     "a per-collective CTA limit needs NCCL >= 2.31 headers; built against " +
                     nccl_version_string(NCCL_VERSION_CODE));
#endif
}

void action_launcher::launch_collective(const bound_action& b, cudaStream_t s) const {
  const lowered_action& a = *b.a;
  if (a.comm.call_max_ctas > 0)
    return finish_nccl(configured_collective(b, s), b,
                       std::string(traits_of(a.coll).nccl_call) + " (ncclCollConfig_t)");
  ncclResult_t rc = ncclSuccess;
  switch (a.coll) {
    case coll_op::all_gather:
      rc = ncclAllGather(b.src, b.dst, a.count, b.nccl_type, b.comm, s);
      break;
    case coll_op::reduce_scatter:
      rc = ncclReduceScatter(b.src, b.dst, a.count, b.nccl_type, ncclSum, b.comm, s);
      break;
    case coll_op::all_reduce:
      rc = ncclAllReduce(b.src, b.dst, a.count, b.nccl_type, ncclSum, b.comm, s);
      break;
    case coll_op::all_to_all:
      rc = all_to_all(b, s);
      break;
  }
  finish_nccl(rc, b, traits_of(a.coll).nccl_call);
}

void action_launcher::launch_p2p(const bound_action& b, cudaStream_t s) const {
  const lowered_action& a = *b.a;
  const error_context c = e_.context(a.name);
  // A pipeline transfer is one side of a link; the peer stage posts the other.
  if (a.direction == p2p_direction::send)
    return finish_nccl(ncclSend(b.src, a.count, b.nccl_type, a.send_peer, b.comm, s), b,
                       "ncclSend");
  if (a.direction == p2p_direction::recv)
    return finish_nccl(ncclRecv(b.dst, a.count, b.nccl_type, a.recv_peer, b.comm, s), b,
                       "ncclRecv");
  // Ring exchange: send to the next rank and receive from the previous one, as one group so
  // neither side waits for the other to be posted first.
  OB_NCCL_CHECK(c, b.comm, ncclGroupStart());
  const ncclResult_t rc = ncclSend(b.src, a.count, b.nccl_type, a.send_peer, b.comm, s);
  const ncclResult_t rc2 = ncclRecv(b.dst, a.count, b.nccl_type, a.recv_peer, b.comm, s);
  const ncclResult_t end = ncclGroupEnd();
  if (rc != ncclSuccess && rc != ncclInProgress) check_nccl(rc, "ncclSend", c, b.comm);
  if (rc2 != ncclSuccess && rc2 != ncclInProgress) check_nccl(rc2, "ncclRecv", c, b.comm);
  finish_nccl(end, b, "ncclGroupEnd(send/recv)");
}

// The host waits for everything before it on the stream (its waits included), as `.cpu()` on a
// token count does; the few bytes of the copy itself are left out. A graph cannot hold a host
// wait, so under capture it is skipped (the replayed graph has no sync, as a CUDA-graphed scope
// in Megatron has none).
void action_launcher::host_sync(cudaStream_t s, const error_context& c) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  OB_CUDA_CHECK(c, cudaStreamIsCapturing(s, &capture));
  if (capture == cudaStreamCaptureStatusNone) OB_CUDA_CHECK(c, cudaStreamSynchronize(s));
}

void action_launcher::launch(const bound_action& b, cudaStream_t s) const {
  const lowered_action& a = *b.a;
  const error_context c = e_.context(a.name);
  const bool nccl = a.kind == action_kind::nccl_collective || a.kind == action_kind::nccl_p2p;
  if (nccl && e_.comms().aborted())
    throw runtime_failure(c.prefix() + "NCCL communicators aborted");
  switch (a.kind) {
    case action_kind::gemm:
      e_.gemm().run(a.gemm, {b.x, b.w, b.dst, b.x_scale, b.w_scale},
                    e_.workspace(static_cast<std::size_t>(a.stream)), s, c);
      return;
    case action_kind::nccl_collective:
      return launch_collective(b, s);
    case action_kind::nccl_p2p:
      return launch_p2p(b, s);
    case action_kind::proxy_copy:
      OB_CUDA_CHECK(c, kernels::launch_copy_proxy(b.dst, b.src, a.bytes, a.ctas, s));
      return;
    case action_kind::ce_copy:
      OB_CUDA_CHECK(c, cudaMemcpyAsync(b.dst, b.src, a.bytes, cudaMemcpyDeviceToDevice, s));
      return;
    case action_kind::layernorm:
      for (int i = 0; i < a.repeat; ++i)
        OB_CUDA_CHECK(c, kernels::launch_layernorm(b.dst, b.src, a.count, a.row_elems, a.ctas, s));
      return;
    case action_kind::delay:
      OB_CUDA_CHECK(c, kernels::launch_delay(a.us, a.ctas, s));
      return;
    case action_kind::host_sync:
      return host_sync(s, c);
  }
}

}  // namespace ob::cuda
