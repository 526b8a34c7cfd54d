// Measuring: warm-up and timed rounds, the instrumented iteration, and verification
// (docs/ARCHITECTURE.md §6).
#include <array>
#include <tuple>

#include "cuda/case_run.hpp"
#include "kernels/kernels.cuh"

namespace ob::cuda {

namespace {

void CUDART_CB sample_clock_on_stream(void* arg) {
  // Runs on CUDA's callback thread when the stream gets here; NVML is not a CUDA call, so it is
  // allowed inside a host function.
  auto* probe = static_cast<stream_clock_probe*>(arg);
  probe->mhz = probe->nvml->sm_clock_mhz(probe->pci_bus_id);
}

}  // namespace

void case_run::enqueue_clock_probe(stream_clock_probe& probe) {
  probe.mhz.reset();
  probe.nvml = e_.nvml();
  probe.pci_bus_id = e_.facts().pci_bus_id;
  if (!probe.nvml) return;
  OB_CUDA_CHECK(ctx("clock sample"),
                cudaLaunchHostFunc(res_.join(), sample_clock_on_stream, &probe));
}

// Variants interleaved in rounds (A B C D E, A B C D E, ...) so drift hits all alike; no host
// synchronisation inside the loop, so the host runs ahead as it does in training. The clock
// samples sit between rounds, outside every timed interval.
void case_run::enqueue_rounds(plan_span plans) {
  const cudaStream_t join = res_.join();
  for (int it = 0; it < rounds(); ++it) {
    const auto i = static_cast<std::size_t>(it);
    if (it == m_.warmup) enqueue_clock_probe(clocks_[0]);
    for (const bound_variant& p : plans) {
      const error_context c = ctx(p.name());
      OB_CUDA_CHECK(c, cudaEventRecord(p.ev->round_start[i].get(), join));
      if (p.graph)
        OB_CUDA_CHECK(c, cudaGraphLaunch(p.graph.get(), join));
      else
        enqueue_body(p, false);
      OB_CUDA_CHECK(c, cudaEventRecord(p.ev->round_end[i].get(), join));
    }
    dog_.beat("enqueuing round " + std::to_string(it + 1) + " of " + std::to_string(rounds()));
  }
  enqueue_clock_probe(clocks_[1]);
}

void case_run::wait_rounds(plan_span plans) {
  for (int it = 0; it < rounds(); ++it)
    for (const bound_variant& p : plans) {
      cudaEvent_t end = p.ev->round_end[static_cast<std::size_t>(it)].get();
      wait_.poll_until([&] { return cudaEventQuery(end); }, [&] { return describe_stuck(p, it); });
      dog_.beat("waiting for round " + std::to_string(it + 1));
    }
}

void case_run::collect_round_times(plan_span plans, rank_result& out) const {
  for (const bound_variant& p : plans) {
    auto& times = out.variants[static_cast<std::size_t>(p.low->v)].iter_ms;
    for (int it = m_.warmup; it < rounds(); ++it) {
      const auto i = static_cast<std::size_t>(it);
      float ms = 0;
      OB_CUDA_CHECK(ctx(p.name()), cudaEventElapsedTime(&ms, p.ev->round_start[i].get(),
                                                        p.ev->round_end[i].get()));
      times.push_back(ms);
    }
  }
}

void case_run::clock_warnings(std::vector<std::string>& out) const {
  const nvml_telemetry* nvml = e_.nvml();
  if (!nvml) return;
  const auto def = nvml->default_sm_clock_mhz(e_.facts().pci_bus_id);
  const std::string who = "rank " + std::to_string(e_.identity().global_rank) + " (GPU " +
                          std::to_string(e_.identity().device) + ")";
  const char* when[] = {"at the start of the timed iterations",
                        "at the end of the timed iterations"};
  for (std::size_t i = 0; i < clocks_.size(); ++i)
    if (auto w = clock_warning(who, when[i], clocks_[i].mhz, def)) out.push_back(*w);
}

void case_run::measure_rounds(plan_span plans, rank_result& out) {
  enqueue_rounds(plans);
  wait_rounds(plans);
  // The closing clock sample runs after the last round's end event.
  wait_.wait_for_stream(res_.join(), "the clock sample after the timed rounds");
  collect_round_times(plans, out);
  clock_warnings(out.warnings);
}

void case_run::align_ranks(const std::string& before) {
  wait_.wait_for_stream(res_.join(), "the GPU's work before " + before);
  dog_.beat("waiting for the other ranks before " + before);
  sync_();
}

// A layer case interleaves its variants so that clock drift hits all alike. A step's ranks wait
// on each other, so a variant that takes longer on one stage would delay its peers' next one:
// there each variant runs its rounds alone, every rank starting it together
// (docs/ARCHITECTURE.md §5.2).
void case_run::timed_rounds(rank_result& out) {
  if (!sync_) return measure_rounds(plans_, out);
  for (const bound_variant& p : plans_) {
    align_ranks("the timed rounds of " + p.name());
    measure_rounds(plan_span(&p, 1), out);
  }
}

void case_run::poison_outputs(const bound_variant& p) {
  for (const verify_job& j : p.low->verifies)
    OB_CUDA_CHECK(ctx(j.op), cudaMemsetAsync(res_.address(j.out), 0xFF, j.out_bytes, res_.join()));
}

void case_run::launch_checks(const bound_variant& p) {
  const cudaStream_t join = res_.join();
  unsigned long long* wrong = res_.counters() + static_cast<std::size_t>(p.low->v);
  for (const verify_job& j : p.low->verifies) {
    const void* out = res_.address(j.out);
    const void* ref = res_.address(j.ref);
    const kernels::elem_type t = operand_elem(j.type);
    const error_context c = ctx(j.op);
    switch (j.kind) {
      case check_kind::pattern:
        OB_CUDA_CHECK(c, kernels::launch_verify_collective(out, j.spec, t, wrong, join));
        break;
      case check_kind::same_bytes:
        OB_CUDA_CHECK(c, kernels::launch_compare_bytes(out, ref, j.n, wrong, join));
        break;
      case check_kind::close:
        OB_CUDA_CHECK(c, kernels::launch_compare_close(out, ref, j.n, t, j.tol.rtol, j.tol.atol,
                                                       wrong, join));
        break;
    }
  }
}

void case_run::collect_instrumented(rank_result& out) const {
  std::array<unsigned long long, std::tuple_size_v<variant_measurements>> wrong{};
  if (m_.verify)
    OB_CUDA_CHECK(ctx("verify"),
                  cudaMemcpy(wrong.data(), res_.counters(), sizeof wrong, cudaMemcpyDeviceToHost));
  for (const bound_variant& p : plans_) {
    const auto v = static_cast<std::size_t>(p.low->v);
    variant_measurement& r = out.variants[v];
    r.wrong = static_cast<std::int64_t>(wrong[v]);
    for (const bound_action& b : p.actions) {
      const auto id = static_cast<std::size_t>(b.a->op_id);
      float s_ms = 0, e_ms = 0;
      const error_context c = ctx(b.a->name);
      OB_CUDA_CHECK(c,
                    cudaEventElapsedTime(&s_ms, p.ev->instr_ref.get(), p.ev->op_start[id].get()));
      OB_CUDA_CHECK(c, cudaEventElapsedTime(&e_ms, p.ev->instr_ref.get(), p.ev->op_end[id].get()));
      r.ops.push_back({b.a->op_id, s_ms * 1000.0, e_ms * 1000.0});
    }
    if (r.wrong > 0)
      out.warnings.push_back(ctx().prefix() + p.name() + ": " + std::to_string(r.wrong) +
                             " wrong elements");
  }
}

// One more iteration per variant, eager, with an event pair around every op: the op intervals of
// docs/ARCHITECTURE.md §6. With verification on, outputs are poisoned first and checked after.
void case_run::instrumented_pass(rank_result& out) {
  const cudaStream_t join = res_.join();
  if (m_.verify)
    OB_CUDA_CHECK(ctx("verify"), cudaMemsetAsync(res_.counters(), 0, res_.counter_bytes(), join));
  for (const bound_variant& p : plans_) {
    if (m_.verify) poison_outputs(p);
    // A step's stages share one clock: their reference events fire together (to the skew of
    // the barrier), on idle GPUs.
    if (sync_) align_ranks("the instrumented " + p.name() + " iteration");
    OB_CUDA_CHECK(ctx(p.name()), cudaEventRecord(p.ev->instr_ref.get(), join));
    enqueue_body(p, true);
    if (m_.verify) launch_checks(p);
  }
  dog_.beat("instrumented iteration");
  wait_.wait_for_stream(join, "the instrumented and verification iteration");
  collect_instrumented(out);
}

}  // namespace ob::cuda
