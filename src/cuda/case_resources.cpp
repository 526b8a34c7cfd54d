#include "cuda/case_resources.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "kernels/kernels.cuh"

namespace ob::cuda {

case_resources::case_resources(const case_lowering& low, int rounds, int join_priority,
                               const error_context& ctx) {
  buffers_.reserve(low.buffers.size());
  // Never empty: a zero-byte request still gets a distinct, valid pointer (NCCL and the kernels
  // are handed real addresses even for empty transfers).
  for (const buffer_request& b : low.buffers) {
    const std::size_t bytes = std::max<std::size_t>(b.bytes, 16);
    if (b.symmetric) {
      symmetric_.emplace_back(bytes, ctx.with_op("allocate " + b.key));
      buffers_.emplace_back();
      starts_.push_back(symmetric_.back().get());
    } else {
      buffers_.emplace_back(bytes, ctx.with_op("allocate " + b.key));
      starts_.push_back(buffers_.back().get());
    }
  }
  // Created in IR order, consecutively: the driver hands hardware queues to streams in creation
  // order, so IR stream i and j share a queue exactly when the sim says they do.
  for (const stream_set_request& r : low.stream_sets) {
    stream_set set;
    for (int priority : r.priorities) set.streams.push_back(make_stream(priority, ctx));
    set.names = r.names;
    sets_.push_back(std::move(set));
  }
  // The join stream is created after every IR stream, so it never shifts their queues.
  join_ = make_stream(join_priority, ctx);
  for (const lowered_variant& lv : low.variants)
    if (lv.measured) make_events(lv, rounds, ctx);
  counters_ = device_buffer(low.variants.size() * sizeof(unsigned long long), ctx);
}

void case_resources::make_events(const lowered_variant& lv, int rounds, const error_context& ctx) {
  variant_events& ev = events_.at(static_cast<std::size_t>(lv.v));
  ev.done.resize(lv.op_count);
  for (const lowered_action& a : lv.actions)
    if (a.signals) ev.done[static_cast<std::size_t>(a.op_id)] = make_event(false, ctx);
  for (std::size_t i = 0; i < streams(lv.stream_set).streams.size(); ++i)
    ev.stream_done.push_back(make_event(false, ctx));
  ev.fork = make_event(false, ctx);
  for (int i = 0; i < rounds; ++i) {
    ev.round_start.push_back(make_event(true, ctx));
    ev.round_end.push_back(make_event(true, ctx));
  }
  ev.instr_ref = make_event(true, ctx);
  for (std::size_t i = 0; i < lv.op_count; ++i) {
    ev.op_start.push_back(make_event(true, ctx));
    ev.op_end.push_back(make_event(true, ctx));
  }
}

void* case_resources::address(buffer_ref r) const {
  if (!r) return nullptr;
  return static_cast<char*>(starts_.at(static_cast<std::size_t>(r.buffer))) + r.offset;
}

void case_resources::fill(const buffer_request& b, void* p, const error_context& ctx) {
  const cudaStream_t s = join_.get();
  const std::size_t elems = b.bytes / dtype_bytes(b.type);
  if (b.init == buffer_init::constant) {
    OB_CUDA_CHECK(ctx, cudaMemsetAsync(p, b.fill_byte, b.bytes, s));
    return;
  }
  OB_CUDA_CHECK(ctx, cudaMemsetAsync(p, 0, b.bytes, s));
  if (b.init == buffer_init::random)
    OB_CUDA_CHECK(ctx,
                  kernels::launch_fill_random(p, elems, operand_elem(b.type), b.seed, 1.0f, s));
  else
    OB_CUDA_CHECK(
        ctx, kernels::launch_fill_pattern(p, elems, operand_elem(b.type), b.pattern_rank, 0, s));
}

void case_resources::initialise(const case_lowering& low, cublaslt_gemm& gemm, void* workspace,
                                const error_context& ctx) {
  for (std::size_t i = 0; i < low.buffers.size(); ++i) {
    const buffer_request& b = low.buffers[i];
    if (b.init != buffer_init::none) fill(b, starts_[i], ctx.with_op("init " + b.key));
  }
  for (const reference_gemm& r : low.references)
    gemm.run(r.gemm,
             {address(r.x), address(r.w), address(r.d), address(r.x_scale), address(r.w_scale)},
             workspace, join_.get(), ctx.with_op("reference " + r.key));
  OB_CUDA_CHECK(ctx.with_op("init"), cudaGetLastError());
}

}  // namespace ob::cuda
