// Enqueueing: one iteration of a variant, its CUDA graph, and naming what a stuck one waits on.
#include "cuda/case_run.hpp"

namespace ob::cuda {

void case_run::enqueue_action(const bound_variant& p, const bound_action& b, bool instrument) {
  const lowered_action& a = *b.a;
  const error_context c = ctx(a.name);
  const cudaStream_t s = p.set->streams[static_cast<std::size_t>(a.stream)].get();
  const auto id = static_cast<std::size_t>(a.op_id);
  for (int w : a.waits)
    OB_CUDA_CHECK(c, cudaStreamWaitEvent(s, p.ev->done[static_cast<std::size_t>(w)].get(), 0));
  if (instrument) OB_CUDA_CHECK(c, cudaEventRecord(p.ev->op_start[id].get(), s));
  launcher_.launch(b, s);
  if (instrument) OB_CUDA_CHECK(c, cudaEventRecord(p.ev->op_end[id].get(), s));
  if (const event_handle& done = p.ev->done[id]) OB_CUDA_CHECK(c, cudaEventRecord(done.get(), s));
}

// One iteration of a variant on the join stream: fork every IR stream off it, enqueue the ops in
// IR (host) order with their cross-stream waits as events, join every stream back.
void case_run::enqueue_body(const bound_variant& p, bool instrument) {
  const cudaStream_t join = res_.join();
  const error_context c = ctx(p.name());
  OB_CUDA_CHECK(c, cudaEventRecord(p.ev->fork.get(), join));
  for (const stream_handle& st : p.set->streams)
    OB_CUDA_CHECK(c, cudaStreamWaitEvent(st.get(), p.ev->fork.get(), 0));
  for (const bound_action& b : p.actions) enqueue_action(p, b, instrument);
  for (std::size_t i = 0; i < p.set->streams.size(); ++i) {
    OB_CUDA_CHECK(c, cudaEventRecord(p.ev->stream_done[i].get(), p.set->streams[i].get()));
    OB_CUDA_CHECK(c, cudaStreamWaitEvent(join, p.ev->stream_done[i].get(), 0));
  }
}

void case_run::capture(bound_variant& p) {
  const cudaStream_t join = res_.join();
  const error_context c = ctx("capture " + p.name());
  dog_.beat("capturing the " + p.name() + " graph");
  OB_CUDA_CHECK(c, cudaStreamBeginCapture(join, cudaStreamCaptureModeThreadLocal));
  try {
    enqueue_body(p, false);
  } catch (...) {
    cudaGraph_t broken = nullptr;
    (void)cudaStreamEndCapture(join, &broken);
    if (broken) (void)cudaGraphDestroy(broken);
    throw;
  }
  cudaGraph_t g = nullptr;
  OB_CUDA_CHECK(c, cudaStreamEndCapture(join, &g));
  const graph_handle graph(g);
  cudaGraphExec_t exec = nullptr;
  // Node priorities come from the capturing streams; without this flag a replay would run every
  // node at the launch stream's priority and lose the comm streams' precedence.
  OB_CUDA_CHECK(c,
                cudaGraphInstantiateWithFlags(&exec, g, cudaGraphInstantiateFlagUseNodePriority));
  p.graph = graph_exec_handle(exec);
  OB_CUDA_CHECK(c, cudaGraphUpload(exec, join));
}

void case_run::capture_graphs() {
  // One eager iteration first: NCCL connects lazily on a communicator's first collective, and
  // that setup belongs outside the captured graph.
  for (const bound_variant& p : plans_) enqueue_body(p, false);
  wait_.wait_for_stream(res_.join(), "the eager iteration before graph capture");
  for (bound_variant& p : plans_) capture(p);
}

// Names the op a stuck iteration is most likely waiting on: the first communication op on a
// stream that has not finished (collectives are what hang), else the first op on such a stream.
std::string case_run::describe_stuck(const bound_variant& p, int round) const {
  const std::string where = "variant " + p.name() + " iteration " + std::to_string(round);
  if (p.graph) return "the graph replay of " + where;
  std::vector<bool> busy(p.set->streams.size(), false);
  std::string busy_names;
  for (std::size_t i = 0; i < busy.size(); ++i) {
    busy[i] = cudaStreamQuery(p.set->streams[i].get()) == cudaErrorNotReady;
    if (busy[i]) busy_names += (busy_names.empty() ? "" : ", ") + p.set->names[i];
  }
  const lowered_action* pick = nullptr;
  for (const bound_action& b : p.actions) {
    if (!busy[static_cast<std::size_t>(b.a->stream)]) continue;
    if (!pick || (b.a->is_comm && !pick->is_comm)) pick = b.a;
    if (pick->is_comm) break;
  }
  if (!pick) return where;
  return "op '" + pick->name + "' (" + pick->what + ") in " + where +
         (busy_names.empty() ? "" : "; streams still busy: " + busy_names);
}

}  // namespace ob::cuda
