#pragma once
// The device side of one lowered case: the buffers it asks for, its streams and events, owned for
// exactly as long as the case is measured, and the data the buffers start with.
#include <array>
#include <string>
#include <vector>

#include "cuda/cublaslt_gemm.hpp"
#include "cuda/cuda_raii.hpp"
#include "cuda/lowering.hpp"
#include "cuda/nccl_comms.hpp"

namespace ob::cuda {

struct stream_set {
  std::vector<stream_handle> streams;  // IR stream i is streams[i]
  std::vector<std::string> names;
};

// Events of one variant: cross-stream dependencies, fork and join, the brackets of every round
// (warm-up included) and the per-op pairs of the instrumented iteration.
struct variant_events {
  event_handle fork;
  std::vector<event_handle> done;         // per op; empty unless a later op waits on it
  std::vector<event_handle> stream_done;  // per stream: joins the iteration back
  std::vector<event_handle> round_start, round_end;
  event_handle instr_ref;
  std::vector<event_handle> op_start, op_end;  // per op
};

class case_resources {
 public:
  // Allocates every requested buffer and creates the stream sets, then the join stream (at
  // `join_priority`), then the events of every measured variant for `rounds` rounds.
  case_resources(const case_lowering& low, int rounds, int join_priority, const error_context& ctx);

  void* address(buffer_ref r) const;
  // The start of requested buffer `i` (lowering order).
  void* buffer_start(std::size_t i) const { return starts_.at(i); }
  const stream_set& streams(int set) const { return sets_.at(static_cast<std::size_t>(set)); }
  cudaStream_t join() const { return join_.get(); }
  variant_events& events(std::size_t v) { return events_.at(v); }
  // One #wrong counter per variant, indexed like variant_schedules.
  unsigned long long* counters() const { return counters_.as<unsigned long long>(); }
  std::size_t counter_bytes() const { return counters_.bytes(); }

  // Enqueues on the join stream: every buffer that starts with data zeroed and filled, then the
  // unchunked reference GEMMs (at full SMs, on `workspace`).
  void initialise(const case_lowering& low, cublaslt_gemm& gemm, void* workspace,
                  const error_context& ctx);

 private:
  void make_events(const lowered_variant& lv, int rounds, const error_context& ctx);
  void fill(const buffer_request& b, void* p, const error_context& ctx);

  std::vector<device_buffer> buffers_;
  std::vector<nccl_mem_buffer> symmetric_;  // buffers in a symmetric window
  std::vector<void*> starts_;               // every requested buffer, wherever it lives
  std::vector<stream_set> sets_;
  stream_handle join_;
  std::array<variant_events, 5> events_;
  device_buffer counters_;
};

}  // namespace ob::cuda
