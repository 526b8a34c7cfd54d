#include "cuda/rank_engine.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "core/error.hpp"
#include "cuda/schedule_prep.hpp"
#include "cuda/watchdog.hpp"
#include "kernels/kernels.cuh"

namespace ob::cuda {

gemm_tolerance chunked_gemm_tolerance(std::int64_t k, dtype t) {
  const float typical = std::sqrt(static_cast<float>(std::max<std::int64_t>(k, 1))) / 3.0f;
  // FP8 with fast accumulation differs more between algorithms than bf16/fp16 do.
  const float ulps = t == dtype::fp8 ? 4.0f : 2.0f;
  const float ulp = t == dtype::fp16 ? 1.0f / 1024 : 1.0f / 128;
  return {ulps * ulp, ulps * ulp * typical};
}

namespace {

enum class action_kind { gemm, nccl_collective, nccl_p2p, proxy_copy, ce_copy, layernorm, delay };

// One op, resolved to what the GPU runs and with which buffers.
struct action {
  action_kind kind = action_kind::delay;
  int op_id = 0;
  std::string name;
  std::string what;  // "all_gather tp", "gemm 8192x8192x8192 bf16", for messages
  int stream = 0;
  std::vector<int> waits;
  bool is_comm = false;
  // gemm
  gemm_key gk;
  const void* x = nullptr;
  const void* w = nullptr;
  void* d = nullptr;
  // communication, copies, layernorm: src -> dst
  ncclComm_t comm = nullptr;
  coll_op cop = coll_op::all_gather;
  std::uint64_t count = 0;
  const void* src = nullptr;
  void* dst = nullptr;
  int send_peer = 0, recv_peer = 0;
  std::size_t bytes = 0;
  int ctas = 0;
  std::uint64_t elems = 0;
  int row_elems = 0;
  double us = 0;
};

enum class verify_kind { collective, bytes, close };

struct verify_job {
  verify_kind kind = verify_kind::bytes;
  std::string op;  // for messages
  const void* out = nullptr;
  const void* ref = nullptr;  // bytes: the source; close: the unchunked output
  std::size_t n = 0;          // bytes (bytes) or elements (close)
  kernels::verify_spec spec;
  kernels::elem_type type = kernels::elem_type::bf16;
  gemm_tolerance tol;
  void* poison = nullptr;  // filled with 0xFF (bf16 NaN) before the checked iteration
  std::size_t poison_bytes = 0;
};

struct stream_set {
  std::string signature;
  std::vector<stream_handle> streams;
  std::vector<std::string> names;
};

struct variant_plan {
  variant v = variant::overlapped;
  const schedule* sched = nullptr;
  int stream_set = 0;
  std::vector<action> actions;
  std::vector<event_handle> done;         // per op; empty unless a later op waits on it
  std::vector<event_handle> stream_done;  // per stream: joins the iteration back
  event_handle fork;
  std::vector<event_handle> it_start, it_end;
  event_handle instr_ref;
  std::vector<event_handle> op_start, op_end;
  graph_exec_handle graph;
  std::vector<verify_job> verifies;
};

struct gemm_buffers {
  gemm_group group;
  bool needs_ref = false;
  device_buffer x, w, d, ref;
};

std::string variant_name(variant v) { return std::string(to_string(v)); }

std::uint64_t seed_of(const std::string& key, int rank) {
  return std::hash<std::string>{}(key) ^ (static_cast<std::uint64_t>(rank + 1) << 48);
}

kernels::verify_kind verify_kind_of(coll_op op) {
  switch (op) {
    case coll_op::all_gather:
      return kernels::verify_kind::all_gather;
    case coll_op::reduce_scatter:
      return kernels::verify_kind::reduce_scatter;
    case coll_op::all_reduce:
      return kernels::verify_kind::all_reduce;
  }
  return kernels::verify_kind::all_reduce;
}

std::string gemm_text(const gemm_key& g) {
  return "gemm " + std::to_string(g.m) + "x" + std::to_string(g.n) + "x" + std::to_string(g.k) +
         " " + std::string(to_string(g.type));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One case: streams, buffers, events and graphs live exactly as long as the measurement.

class rank_engine::case_run {
 public:
  case_run(rank_engine& e, const variant_schedules& variants, const run_settings& rs,
           const std::string* world_id, abort_signal& abort)
      : e_(e),
        variants_(variants),
        rs_(rs),
        world_id_(world_id),
        abort_(abort),
        dog_(rs.timeout_s, "rank " + std::to_string(e.id_.global_rank),
             [this] { e_.abort_comms(); }) {}

  rank_result run() {
    setup_comms();
    allocate_and_plan();
    initialise();
    if (rs_.graphs) capture_graphs();
    timed_rounds();
    instrumented_pass();
    return std::move(result_);
  }

 private:
  error_context ctx(const std::string& op = {}) const { return e_.context(op); }

  // --- communicators --------------------------------------------------------------------------
  void setup_comms() {
    if (e_.settings_.loopback) return;
    std::vector<const schedule*> all;
    for (const schedule& s : variants_) all.push_back(&s);
    const std::vector<comm_key> keys = comm_keys_needed(all);
    if (keys.empty()) return;
    // Group sizes are checked before any collective call, so a mismatch is a config error on
    // every rank rather than a hang.
    for (const schedule& s : variants_)
      for (const op& o : s.ops)
        if (o.is_comm()) {
          const comm_key k = comm_key_for(o);
          (void)comm_membership(k.group, k.group_size, e_.id_.global_rank, e_.id_.world_size,
                                o.name);
          if (o.kind() == op_kind::p2p) {
            const auto& p = o.as<p2p_params>();
            if (ring_peer(0, p.send_peer + p.recv_peer, p.group_size) != 0)
              throw config_error("op '" + o.name + "': send_peer " + std::to_string(p.send_peer) +
                                 " and recv_peer " + std::to_string(p.recv_peer) +
                                 " do not form a ring (their sum must be 0 modulo the group)");
          }
        }
    if (!e_.comms_)
      e_.comms_ = std::make_unique<nccl_comm_cache>(e_.id_.global_rank, e_.id_.world_size,
                                                    e_.settings_.cta_policy);
    if (!e_.comms_->has_world()) {
      if (!world_id_ || world_id_->size() != sizeof(ncclUniqueId))
        throw runtime_failure(ctx().prefix() + "no NCCL unique id for the world communicator");
      ncclUniqueId id;
      std::memcpy(&id, world_id_->data(), sizeof id);
      dog_.beat("creating the world NCCL communicator");
      e_.comms_->init_world(id, rs_.timeout_s, &abort_, ctx("setup"));
    }
    for (const comm_key& k : keys) {
      dog_.beat("creating NCCL communicator " + to_string(k));
      (void)e_.comms_->get(k, "setup", rs_.timeout_s, &abort_, ctx("setup"));
    }
  }

  // --- buffers and per-variant plans ----------------------------------------------------------
  const gemm_params* gemm_of(const op& o, std::map<int, elementwise_plan>& ew) {
    if (o.kind() == op_kind::gemm) return &o.as<gemm_params>();
    if (o.kind() != op_kind::elementwise) return nullptr;
    auto it = ew.find(o.id);
    if (it == ew.end())
      it = ew.emplace(o.id, plan_elementwise(o.as<elementwise_params>(), e_.facts_.sm_count)).first;
    return it->second.as_gemm ? &it->second.gemm : nullptr;
  }

  // The plan's sm_target is "SMs - margin" for the GPU file's SM count; on a device with another
  // count the margin, not the absolute number, is what TE would keep.
  int device_sm_target(int planned) const {
    const int sms = e_.facts_.sm_count, hint = e_.settings_.sm_count_hint;
    if (planned > 0 && hint > 0 && hint != sms) planned = std::max(1, planned + sms - hint);
    return effective_sm_target(planned, sms);
  }

  int stream_set_for(const schedule& s) {
    std::string sig;
    for (const stream& st : s.streams)
      sig +=
          st.name + "/" + std::string(to_string(st.role)) + "/" + std::to_string(st.priority) + ";";
    for (std::size_t i = 0; i < sets_.size(); ++i)
      if (sets_[i].signature == sig) return static_cast<int>(i);
    // Created in IR order, consecutively: the driver hands hardware queues to streams in
    // creation order, so IR stream i and j share a queue exactly when the sim says they do.
    stream_set set;
    set.signature = sig;
    const std::vector<int> prio =
        map_stream_priorities(s, e_.facts_.priority_least, e_.facts_.priority_greatest);
    for (std::size_t i = 0; i < s.streams.size(); ++i) {
      set.streams.push_back(make_stream(prio[i], ctx("setup")));
      set.names.push_back(s.streams[i].name);
    }
    sets_.push_back(std::move(set));
    return static_cast<int>(sets_.size() - 1);
  }

  device_buffer& comm_buffer(const std::string& key, std::size_t bytes) {
    auto it = comm_bufs_.find(key);
    if (it == comm_bufs_.end())
      it = comm_bufs_.emplace(key, device_buffer(std::max<std::size_t>(bytes, 16), ctx("setup")))
               .first;
    if (it->second.bytes() < bytes)
      throw runtime_failure(ctx().prefix() + "buffer '" + key + "' changed size between variants");
    return it->second;
  }

  void allocate_and_plan() {
    const int sms = e_.facts_.sm_count;
    if (e_.settings_.sm_count_hint > 0 && e_.settings_.sm_count_hint != sms &&
        !e_.warned_sm_hint_) {
      result_.warnings.push_back(ctx().prefix() + "the plan assumed " +
                                 std::to_string(e_.settings_.sm_count_hint) +
                                 " SMs but this GPU has " + std::to_string(sms) +
                                 "; GEMM SM targets keep their margin (SMs - target) on the "
                                 "real count");
      e_.warned_sm_hint_ = true;
    }
    // TE's launch-ordering event (op::waits_started) needs a launch-completion event on the comm
    // kernel; NCCL's kernels cannot carry one and the copy proxy does not yet, so the GPU runs
    // without it while the simulator models it. Said, so a sim-vs-GPU gap is not misread.
    bool launch_ordered = false;
    for (const schedule& s : variants_)
      for (const op& o : s.ops) launch_ordered = launch_ordered || !o.waits_started.empty();
    if (launch_ordered && !e_.warned_launch_order_) {
      result_.warnings.push_back(ctx().prefix() +
                                 "launch-ordering dependencies (te_launch_ordering) are not "
                                 "enforced on the GPU: a GEMM may take SMs before its comm kernel "
                                 "is resident, which the simulator does not allow");
      e_.warned_launch_order_ = true;
    }

    // Pass 1: GEMM groups (and which need an unchunked reference) across all variants.
    std::array<std::map<int, elementwise_plan>, 5> ew;
    std::array<gemm_layout, 5> layouts;
    for (int v = 0; v < 5; ++v) {
      layouts[v] = plan_gemm_groups(variants_[v], [&](const op& o) { return gemm_of(o, ew[v]); });
      for (const gemm_group& g : layouts[v].groups) {
        auto [it, fresh] = gemm_bufs_.try_emplace(g.key);
        if (fresh) it->second.group = g;
        if (it->second.group.total_m != g.total_m)
          throw runtime_failure(ctx().prefix() + "GEMM group '" + g.key +
                                "' has different chunk totals in different variants");
        it->second.needs_ref = it->second.needs_ref || (rs_.verify && g.chunks > 1);
      }
    }
    for (auto& [key, b] : gemm_bufs_) {
      const gemm_group& g = b.group;
      const std::size_t in = dtype_bytes(g.type);
      b.x = device_buffer(static_cast<std::size_t>(g.total_m * g.k) * in, ctx("setup"));
      b.w = device_buffer(static_cast<std::size_t>(g.n * g.k) * in, ctx("setup"));
      b.d = device_buffer(static_cast<std::size_t>(g.total_m * g.n) * output_bytes_per_elem(g.type),
                          ctx("setup"));
      if (b.needs_ref) b.ref = device_buffer(b.d.bytes(), ctx("setup"));
    }

    // Pass 2: actions per variant.
    for (int v = 0; v < 5; ++v) {
      const schedule& s = variants_[v];
      variant_plan& p = plans_[v];
      p.v = all_variants[v];
      p.sched = &s;
      p.stream_set = stream_set_for(s);
      const std::vector<std::string> keys = buffer_keys(s);
      std::vector<bool> waited(s.ops.size(), false);
      for (const op& o : s.ops)
        for (int w : o.waits) waited[static_cast<std::size_t>(w)] = true;
      std::map<int, bool> group_checked;

      for (const op& o : s.ops) {
        action a;
        a.op_id = o.id;
        a.name = o.name;
        a.stream = o.stream;
        a.waits = o.waits;
        a.is_comm = o.is_comm();
        switch (o.kind()) {
          case op_kind::gemm:
          case op_kind::elementwise: {
            const gemm_params* g = gemm_of(o, ew[v]);
            if (g) {
              const gemm_slice& sl = layouts[v].slices.at(o.id);
              const gemm_group& grp = layouts[v].groups[static_cast<std::size_t>(sl.group)];
              gemm_buffers& b = gemm_bufs_.at(grp.key);
              a.kind = action_kind::gemm;
              // Stand-ins for elementwise ops already count SMs on this device.
              const int target = o.kind() == op_kind::gemm ? device_sm_target(g->sm_target)
                                                           : effective_sm_target(g->sm_target, sms);
              a.gk = {g->m, g->n, g->k, g->type, target};
              a.x = b.x.as<char>() + sl.row_offset * g->k * dtype_bytes(g->type);
              a.w = b.w.get();
              a.d = b.d.as<char>() + sl.row_offset * g->n * output_bytes_per_elem(g->type);
              a.gk.alignment = pointer_alignment(a.x, a.w, a.d);
              a.what = gemm_text(a.gk);
              // Plans and workspaces exist before timing starts: a heuristic query or a
              // cudaMalloc inside the loop would stall it (and cannot run inside a capture).
              e_.gemm_->prepare(a.gk, ctx(o.name));
              (void)e_.workspace(static_cast<std::size_t>(o.stream));
              if (grp.chunks > 1 && b.needs_ref && !group_checked[sl.group]) {
                group_checked[sl.group] = true;
                verify_job j;
                j.kind = verify_kind::close;
                j.op = o.slot.empty() ? o.name : o.slot;
                j.out = b.d.get();
                j.ref = b.ref.get();
                j.n = static_cast<std::size_t>(grp.total_m * grp.n);
                j.type = output_elem(grp.type);
                j.tol = chunked_gemm_tolerance(grp.k, grp.type);
                j.poison = b.d.get();
                j.poison_bytes = b.d.bytes();
                p.verifies.push_back(j);
              }
            } else {
              const elementwise_plan& ep = ew[v].at(o.id);
              const std::size_t half = static_cast<std::size_t>(ep.elems) * 2;
              a.kind = action_kind::layernorm;
              a.elems = ep.elems;
              a.row_elems = ep.row_elems;
              a.ctas = ep.ctas;
              a.src = comm_buffer(keys[o.id] + "|ln_in", half).get();
              a.dst = comm_buffer(keys[o.id] + "|ln_out", half).get();
              a.what = "layernorm on " + std::to_string(ep.ctas) + " CTAs";
              ln_inputs_.emplace(keys[o.id] + "|ln_in", ep.elems);
            }
            break;
          }
          case op_kind::delay: {
            const auto& d = o.as<delay_params>();
            a.kind = action_kind::delay;
            a.us = d.us;
            a.ctas = std::max(1, d.ctas);
            a.what = "delay " + std::to_string(d.us) + " us";
            break;
          }
          case op_kind::collective:
          case op_kind::p2p:
            plan_comm(o, keys[o.id], a, p);
            break;
        }
        p.actions.push_back(std::move(a));
      }

      // Events: dependencies, fork/join, per-iteration brackets, per-op instrumentation.
      const auto& set = sets_[static_cast<std::size_t>(p.stream_set)];
      p.done.resize(s.ops.size());
      for (std::size_t i = 0; i < s.ops.size(); ++i)
        if (waited[i]) p.done[i] = make_event(false, ctx("setup"));
      for (std::size_t i = 0; i < set.streams.size(); ++i)
        p.stream_done.push_back(make_event(false, ctx("setup")));
      p.fork = make_event(false, ctx("setup"));
      const int total = rs_.warmup + rs_.iters;
      for (int i = 0; i < total; ++i) {
        p.it_start.push_back(make_event(true, ctx("setup")));
        p.it_end.push_back(make_event(true, ctx("setup")));
      }
      p.instr_ref = make_event(true, ctx("setup"));
      for (std::size_t i = 0; i < s.ops.size(); ++i) {
        p.op_start.push_back(make_event(true, ctx("setup")));
        p.op_end.push_back(make_event(true, ctx("setup")));
      }
    }
    // The join stream is created after every IR stream, so it never shifts their queues.
    join_ = make_stream(e_.facts_.priority_least, ctx("setup"));
    counters_ = device_buffer(5 * sizeof(unsigned long long), ctx("setup"));
  }

  void plan_comm(const op& o, const std::string& key, action& a, variant_plan& p) {
    const bool loopback = e_.settings_.loopback;
    const bool is_p2p = o.kind() == op_kind::p2p;
    const std::uint64_t bytes = is_p2p ? o.as<p2p_params>().bytes : o.as<collective_params>().bytes;
    if (loopback) {
      // Same bytes, same CTAs, one GPU: SM, HBM and queue contention without NVLink.
      const int ctas = proxy_ctas(o, e_.settings_.default_ctas);
      a.kind = ctas > 0 ? action_kind::proxy_copy : action_kind::ce_copy;
      a.ctas = ctas;
      a.bytes = static_cast<std::size_t>(bytes);
      a.src = comm_buffer(key + "|src", a.bytes).get();
      a.dst = comm_buffer(key + "|dst", a.bytes).get();
      a.what = ctas > 0 ? "copy proxy, " + std::to_string(ctas) + " CTAs" : "copy-engine memcpy";
      proxy_sources_.emplace(key + "|src", a.bytes);
      if (rs_.verify) {
        verify_job j;
        j.kind = verify_kind::bytes;
        j.op = o.name;
        j.out = a.dst;
        j.ref = a.src;
        j.n = a.bytes;
        j.poison = a.dst;
        j.poison_bytes = a.bytes;
        p.verifies.push_back(j);
      }
      return;
    }
    const comm_key k = comm_key_for(o);
    a.comm = e_.comms_->get(k, o.name, rs_.timeout_s, &abort_, ctx(o.name));
    const group_membership m = e_.comms_->membership(k, o.name);
    kernels::verify_spec spec;
    spec.group_size = m.group_size;
    spec.position = m.position;
    std::uint64_t send_elems = 0, recv_elems = 0;
    if (is_p2p) {
      const auto& pp = o.as<p2p_params>();
      a.kind = action_kind::nccl_p2p;
      a.count = bytes / 2;
      a.send_peer = ring_peer(m.position, pp.send_peer, m.group_size);
      a.recv_peer = ring_peer(m.position, pp.recv_peer, m.group_size);
      send_elems = recv_elems = a.count;
      spec.kind = kernels::verify_kind::recv_from;
      spec.peer = a.recv_peer;
      spec.count = a.count;
      a.what = "send/recv (to " + std::to_string(a.send_peer) + ", from " +
               std::to_string(a.recv_peer) + ")";
    } else {
      const auto& cp = o.as<collective_params>();
      const collective_counts c = counts_for(cp.op, bytes, m.group_size);
      a.kind = action_kind::nccl_collective;
      a.cop = cp.op;
      a.count = c.per_rank;
      send_elems = c.send_elems;
      recv_elems = c.recv_elems;
      spec.kind = verify_kind_of(cp.op);
      spec.count = c.per_rank;
      a.what = std::string(to_string(cp.op)) + " over " + std::string(to_string(cp.group)) + " (" +
               std::to_string(m.group_size) + " ranks)";
    }
    a.src = comm_buffer(key + "|send", send_elems * 2).get();
    a.dst = comm_buffer(key + "|recv", recv_elems * 2).get();
    pattern_sources_.emplace(key + "|send", std::make_pair(send_elems, m.position));
    if (rs_.verify) {
      verify_job j;
      j.kind = verify_kind::collective;
      j.op = o.name;
      j.out = a.dst;
      j.spec = spec;
      j.poison = a.dst;
      j.poison_bytes = recv_elems * 2;
      p.verifies.push_back(j);
    }
  }

  // --- data -----------------------------------------------------------------------------------
  void initialise() {
    dog_.beat("initialising buffers");
    const cudaStream_t s = join_.get();
    const int rank = e_.id_.global_rank;
    for (auto& [key, b] : gemm_bufs_) {
      const auto t = operand_elem(b.group.type);
      const error_context c = ctx("init " + key);
      OB_CUDA_CHECK(
          c, kernels::launch_fill_random(b.x.get(), b.x.bytes() / dtype_bytes(b.group.type), t,
                                         seed_of(key + "/x", rank), 1.0f, s));
      OB_CUDA_CHECK(
          c, kernels::launch_fill_random(b.w.get(), b.w.bytes() / dtype_bytes(b.group.type), t,
                                         seed_of(key + "/w", rank), 1.0f, s));
    }
    for (const auto& [key, elems] : ln_inputs_)
      OB_CUDA_CHECK(ctx("init " + key), kernels::launch_fill_random(comm_bufs_.at(key).get(), elems,
                                                                    kernels::elem_type::bf16,
                                                                    seed_of(key, rank), 1.0f, s));
    for (const auto& [key, bytes] : proxy_sources_) {
      void* p = comm_bufs_.at(key).get();
      OB_CUDA_CHECK(ctx("init " + key), cudaMemsetAsync(p, 0, bytes, s));
      OB_CUDA_CHECK(ctx("init " + key), kernels::launch_fill_pattern(p, bytes / 2, 0, 0, s));
    }
    for (const auto& [key, info] : pattern_sources_)
      OB_CUDA_CHECK(
          ctx("init " + key),
          kernels::launch_fill_pattern(comm_bufs_.at(key).get(), info.first, info.second, 0, s));
    // The unchunked reference of every chunked GEMM, once, at full SMs.
    for (auto& [key, b] : gemm_bufs_) {
      if (!b.needs_ref) continue;
      const gemm_group& g = b.group;
      e_.gemm_->run({g.total_m, g.n, g.k, g.type, 0}, b.x.get(), b.w.get(), b.ref.get(),
                    e_.workspace(0), s, ctx("reference " + key));
    }
    OB_CUDA_CHECK(ctx("init"), cudaGetLastError());
    wait_for_stream(s, "initialising buffers");
  }

  // --- enqueueing -----------------------------------------------------------------------------
  void finish_nccl(ncclResult_t rc, const action& a, const char* call) {
    if (rc == ncclInProgress) {
      try {
        wait_comm_ready(a.comm, rs_.timeout_s, &abort_, std::string("enqueuing ") + call,
                        ctx(a.name),
                        /*abort_on_timeout=*/false);
      } catch (const hang_error&) {
        e_.abort_comms();
        throw;
      }
      return;
    }
    check_nccl(rc, call, ctx(a.name), a.comm);
  }

  void launch(const action& a, cudaStream_t s) {
    const error_context c = ctx(a.name);
    switch (a.kind) {
      case action_kind::gemm:
        e_.gemm_->run(a.gk, a.x, a.w, a.d, e_.workspace(static_cast<std::size_t>(a.stream)), s, c);
        return;
      case action_kind::nccl_collective: {
        if (e_.comms_->aborted()) throw runtime_failure(c.prefix() + "NCCL communicators aborted");
        ncclResult_t rc = ncclSuccess;
        const char* call = "";
        switch (a.cop) {
          case coll_op::all_gather:
            call = "ncclAllGather";
            rc = ncclAllGather(a.src, a.dst, a.count, ncclBfloat16, a.comm, s);
            break;
          case coll_op::reduce_scatter:
            call = "ncclReduceScatter";
            rc = ncclReduceScatter(a.src, a.dst, a.count, ncclBfloat16, ncclSum, a.comm, s);
            break;
          case coll_op::all_reduce:
            call = "ncclAllReduce";
            rc = ncclAllReduce(a.src, a.dst, a.count, ncclBfloat16, ncclSum, a.comm, s);
            break;
        }
        finish_nccl(rc, a, call);
        return;
      }
      case action_kind::nccl_p2p: {
        if (e_.comms_->aborted()) throw runtime_failure(c.prefix() + "NCCL communicators aborted");
        // Ring exchange: send to the next rank and receive from the previous one, as one group
        // so neither side waits for the other to be posted first.
        OB_NCCL_CHECK(c, a.comm, ncclGroupStart());
        ncclResult_t rc = ncclSend(a.src, a.count, ncclBfloat16, a.send_peer, a.comm, s);
        const ncclResult_t rc2 = ncclRecv(a.dst, a.count, ncclBfloat16, a.recv_peer, a.comm, s);
        const ncclResult_t end = ncclGroupEnd();
        if (rc != ncclSuccess && rc != ncclInProgress) check_nccl(rc, "ncclSend", c, a.comm);
        if (rc2 != ncclSuccess && rc2 != ncclInProgress) check_nccl(rc2, "ncclRecv", c, a.comm);
        finish_nccl(end, a, "ncclGroupEnd(send/recv)");
        return;
      }
      case action_kind::proxy_copy:
        OB_CUDA_CHECK(c, kernels::launch_copy_proxy(a.dst, a.src, a.bytes, a.ctas, s));
        return;
      case action_kind::ce_copy:
        OB_CUDA_CHECK(c, cudaMemcpyAsync(a.dst, a.src, a.bytes, cudaMemcpyDeviceToDevice, s));
        return;
      case action_kind::layernorm:
        OB_CUDA_CHECK(c, kernels::launch_layernorm(a.dst, a.src, a.elems, a.row_elems, a.ctas, s));
        return;
      case action_kind::delay:
        OB_CUDA_CHECK(c, kernels::launch_delay(a.us, a.ctas, s));
        return;
    }
  }

  // One iteration of a variant on the join stream: fork every IR stream off it, enqueue the ops
  // in IR (host) order with their cross-stream waits as events, join every stream back.
  void enqueue_body(variant_plan& p, bool instrument) {
    const auto& set = sets_[static_cast<std::size_t>(p.stream_set)];
    const cudaStream_t join = join_.get();
    const error_context c = ctx(variant_name(p.v));
    OB_CUDA_CHECK(c, cudaEventRecord(p.fork.get(), join));
    for (const auto& st : set.streams)
      OB_CUDA_CHECK(c, cudaStreamWaitEvent(st.get(), p.fork.get(), 0));
    for (const action& a : p.actions) {
      const cudaStream_t s = set.streams[static_cast<std::size_t>(a.stream)].get();
      for (int w : a.waits)
        OB_CUDA_CHECK(ctx(a.name),
                      cudaStreamWaitEvent(s, p.done[static_cast<std::size_t>(w)].get(), 0));
      if (instrument)
        OB_CUDA_CHECK(ctx(a.name),
                      cudaEventRecord(p.op_start[static_cast<std::size_t>(a.op_id)].get(), s));
      launch(a, s);
      if (instrument)
        OB_CUDA_CHECK(ctx(a.name),
                      cudaEventRecord(p.op_end[static_cast<std::size_t>(a.op_id)].get(), s));
      if (const auto& d = p.done[static_cast<std::size_t>(a.op_id)])
        OB_CUDA_CHECK(ctx(a.name), cudaEventRecord(d.get(), s));
    }
    for (std::size_t i = 0; i < set.streams.size(); ++i) {
      OB_CUDA_CHECK(c, cudaEventRecord(p.stream_done[i].get(), set.streams[i].get()));
      OB_CUDA_CHECK(c, cudaStreamWaitEvent(join, p.stream_done[i].get(), 0));
    }
  }

  void capture_graphs() {
    const cudaStream_t join = join_.get();
    // One eager iteration first: NCCL connects lazily on a communicator's first collective, and
    // that setup belongs outside the captured graph.
    for (variant_plan& p : plans_) enqueue_body(p, false);
    wait_for_stream(join, "the eager iteration before graph capture");
    for (variant_plan& p : plans_) {
      const error_context c = ctx("capture " + variant_name(p.v));
      dog_.beat("capturing the " + variant_name(p.v) + " graph");
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
      graph_handle graph(g);
      cudaGraphExec_t exec = nullptr;
      // Node priorities come from the capturing streams; without this flag a replay would run
      // every node at the launch stream's priority and lose the comm streams' precedence.
      OB_CUDA_CHECK(
          c, cudaGraphInstantiateWithFlags(&exec, g, cudaGraphInstantiateFlagUseNodePriority));
      p.graph = graph_exec_handle(exec);
      OB_CUDA_CHECK(c, cudaGraphUpload(exec, join));
    }
  }

  // --- waiting with a watchdog ----------------------------------------------------------------
  // Polls instead of blocking, so a hang becomes hang_error (exit 4) and an NCCL async error a
  // runtime_failure, both naming what was waited on.
  template <class Query, class Describe>
  void poll_until(Query query, Describe describe) {
    int step = 0;
    auto last_nccl_check = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t rc = query();
      if (rc == cudaSuccess) return;
      if (rc != cudaErrorNotReady) throw_cuda(rc, "waiting on " + describe(), ctx());
      if (abort_.raised()) {
        e_.abort_comms();
        throw runtime_failure(ctx().prefix() + "stopped waiting on " + describe() +
                              " because another rank failed: " + abort_.reason());
      }
      const auto now = std::chrono::steady_clock::now();
      if (e_.comms_ && now - last_nccl_check > std::chrono::milliseconds(20)) {
        last_nccl_check = now;
        e_.comms_->check_async_errors(ctx());
      }
      if (dog_.fired() || dog_.seconds_since_beat() > rs_.timeout_s) {
        const std::string what = describe();
        e_.abort_comms();
        throw hang_error(ctx().prefix() + "timed out after " +
                         std::to_string(static_cast<int>(rs_.timeout_s)) + " s waiting on " + what +
                         "; NCCL communicators aborted");
      }
      std::this_thread::sleep_for(
          std::chrono::microseconds(std::min(2000, 20 << std::min(step, 7))));
      ++step;
    }
  }

  void wait_for_stream(cudaStream_t s, const std::string& what) {
    poll_until([&] { return cudaStreamQuery(s); }, [&] { return what; });
    dog_.beat();
  }

  // Names the op a stuck iteration is most likely waiting on: the first communication op on a
  // stream that has not finished (collectives are what hang), else the first op on such a stream.
  std::string describe_stuck(const variant_plan& p, int iteration) const {
    std::string where = "variant " + variant_name(p.v) + " iteration " + std::to_string(iteration);
    if (p.graph) return "the graph replay of " + where;
    const auto& set = sets_[static_cast<std::size_t>(p.stream_set)];
    std::vector<bool> busy(set.streams.size(), false);
    std::string busy_names;
    for (std::size_t i = 0; i < set.streams.size(); ++i) {
      busy[i] = cudaStreamQuery(set.streams[i].get()) == cudaErrorNotReady;
      if (busy[i]) busy_names += (busy_names.empty() ? "" : ", ") + set.names[i];
    }
    const action* pick = nullptr;
    for (const action& a : p.actions)
      if (busy[static_cast<std::size_t>(a.stream)] && a.is_comm) {
        pick = &a;
        break;
      }
    if (!pick)
      for (const action& a : p.actions)
        if (busy[static_cast<std::size_t>(a.stream)]) {
          pick = &a;
          break;
        }
    if (!pick) return where;
    return "op '" + pick->name + "' (" + pick->what + ") in " + where +
           (busy_names.empty() ? "" : "; streams still busy: " + busy_names);
  }

  // --- measurement ----------------------------------------------------------------------------
  std::optional<unsigned> sample_clock() const {
    if (!e_.nvml_) return std::nullopt;
    return e_.nvml_->sm_clock_mhz(e_.facts_.pci_bus_id);
  }

  void timed_rounds() {
    const cudaStream_t join = join_.get();
    const int total = rs_.warmup + rs_.iters;
    std::optional<unsigned> clock_during_warmup_end, clock_at_end;
    // Variants interleaved in rounds (A B C D E, A B C D E, ...) so drift hits all alike; no
    // host synchronisation inside the loop, so the host runs ahead as it does in training.
    for (int it = 0; it < total; ++it) {
      for (variant_plan& p : plans_) {
        const error_context c = ctx(variant_name(p.v));
        OB_CUDA_CHECK(c, cudaEventRecord(p.it_start[static_cast<std::size_t>(it)].get(), join));
        if (p.graph)
          OB_CUDA_CHECK(c, cudaGraphLaunch(p.graph.get(), join));
        else
          enqueue_body(p, false);
        OB_CUDA_CHECK(c, cudaEventRecord(p.it_end[static_cast<std::size_t>(it)].get(), join));
      }
      dog_.beat("enqueuing round " + std::to_string(it + 1) + " of " + std::to_string(total));
      if (it == rs_.warmup) clock_during_warmup_end = sample_clock();
    }
    clock_at_end = sample_clock();

    for (int it = 0; it < total; ++it)
      for (variant_plan& p : plans_) {
        cudaEvent_t end = p.it_end[static_cast<std::size_t>(it)].get();
        poll_until([&] { return cudaEventQuery(end); }, [&] { return describe_stuck(p, it); });
        dog_.beat("waiting for round " + std::to_string(it + 1));
      }

    for (std::size_t v = 0; v < plans_.size(); ++v) {
      auto& out = result_.variants[v].iter_ms;
      for (int it = rs_.warmup; it < total; ++it) {
        float ms = 0;
        OB_CUDA_CHECK(
            ctx(variant_name(plans_[v].v)),
            cudaEventElapsedTime(&ms, plans_[v].it_start[static_cast<std::size_t>(it)].get(),
                                 plans_[v].it_end[static_cast<std::size_t>(it)].get()));
        out.push_back(ms);
      }
    }

    if (e_.nvml_) {
      const auto def = e_.nvml_->default_sm_clock_mhz(e_.facts_.pci_bus_id);
      const std::string who = "rank " + std::to_string(e_.id_.global_rank) + " (GPU " +
                              std::to_string(e_.id_.device) + ")";
      for (const auto& [when, sample] :
           {std::pair{"at the start of the timed iterations", clock_during_warmup_end},
            std::pair{"at the end of the timed iterations", clock_at_end}})
        if (auto w = clock_warning(who, when, sample, def)) result_.warnings.push_back(*w);
    }
  }

  // One more iteration per variant, eager, with an event pair around every op: the op
  // intervals of DESIGN §7. With verification on, outputs are poisoned first and checked after.
  void instrumented_pass() {
    const cudaStream_t join = join_.get();
    const error_context c = ctx("verify");
    if (rs_.verify) OB_CUDA_CHECK(c, cudaMemsetAsync(counters_.get(), 0, counters_.bytes(), join));
    auto* counters = counters_.as<unsigned long long>();
    for (std::size_t v = 0; v < plans_.size(); ++v) {
      variant_plan& p = plans_[v];
      if (rs_.verify)
        for (const verify_job& j : p.verifies)
          OB_CUDA_CHECK(ctx(j.op), cudaMemsetAsync(j.poison, 0xFF, j.poison_bytes, join));
      OB_CUDA_CHECK(c, cudaEventRecord(p.instr_ref.get(), join));
      enqueue_body(p, true);
      if (!rs_.verify) continue;
      for (const verify_job& j : p.verifies) {
        const error_context jc = ctx(j.op);
        switch (j.kind) {
          case verify_kind::collective:
            OB_CUDA_CHECK(jc, kernels::launch_verify_collective(j.out, j.spec, counters + v, join));
            break;
          case verify_kind::bytes:
            OB_CUDA_CHECK(jc, kernels::launch_compare_bytes(j.out, j.ref, j.n, counters + v, join));
            break;
          case verify_kind::close:
            OB_CUDA_CHECK(jc, kernels::launch_compare_close(j.out, j.ref, j.n, j.type, j.tol.rtol,
                                                            j.tol.atol, counters + v, join));
            break;
        }
      }
    }
    dog_.beat("instrumented iteration");
    wait_for_stream(join, "the instrumented and verification iteration");

    unsigned long long wrong[5] = {0, 0, 0, 0, 0};
    if (rs_.verify)
      OB_CUDA_CHECK(c, cudaMemcpy(wrong, counters_.get(), sizeof wrong, cudaMemcpyDeviceToHost));
    for (std::size_t v = 0; v < plans_.size(); ++v) {
      variant_plan& p = plans_[v];
      rank_variant_result& r = result_.variants[v];
      r.wrong = static_cast<std::int64_t>(wrong[v]);
      for (const action& a : p.actions) {
        float s_ms = 0, e_ms = 0;
        OB_CUDA_CHECK(ctx(a.name),
                      cudaEventElapsedTime(&s_ms, p.instr_ref.get(),
                                           p.op_start[static_cast<std::size_t>(a.op_id)].get()));
        OB_CUDA_CHECK(ctx(a.name),
                      cudaEventElapsedTime(&e_ms, p.instr_ref.get(),
                                           p.op_end[static_cast<std::size_t>(a.op_id)].get()));
        r.ops.push_back({a.op_id, s_ms * 1000.0, e_ms * 1000.0});
      }
      if (r.wrong > 0)
        result_.warnings.push_back(ctx().prefix() + variant_name(p.v) + ": " +
                                   std::to_string(r.wrong) + " wrong elements");
    }
  }

  rank_engine& e_;
  const variant_schedules& variants_;
  const run_settings rs_;
  const std::string* world_id_;
  abort_signal& abort_;
  // Declared first among the owned resources so it outlives them: if freeing them blocks on a
  // wedged GPU, the watchdog still reports the hang and exits.
  watchdog dog_;
  std::map<std::string, gemm_buffers> gemm_bufs_;
  std::map<std::string, device_buffer> comm_bufs_;
  std::map<std::string, std::uint64_t> ln_inputs_;                        // key -> bf16 elements
  std::map<std::string, std::size_t> proxy_sources_;                      // key -> bytes
  std::map<std::string, std::pair<std::uint64_t, int>> pattern_sources_;  // key -> (elems, rank)
  std::vector<stream_set> sets_;
  stream_handle join_;
  device_buffer counters_;
  std::array<variant_plan, 5> plans_;
  rank_result result_;
};

// ---------------------------------------------------------------------------------------------

rank_engine::rank_engine(engine_identity id, engine_settings settings,
                         std::shared_ptr<nvml_telemetry> nvml)
    : id_(id), settings_(std::move(settings)), nvml_(std::move(nvml)) {
  scoped_device dev(id_.device);
  const error_context c = context("setup");
  OB_CUDA_CHECK(c, cudaSetDevice(id_.device));
  cudaDeviceProp prop{};
  OB_CUDA_CHECK(c, cudaGetDeviceProperties(&prop, id_.device));
  facts_.name = prop.name;
  facts_.sm_count = prop.multiProcessorCount;
  facts_.cc_major = prop.major;
  facts_.cc_minor = prop.minor;
  facts_.l2_bytes = static_cast<std::size_t>(prop.l2CacheSize);
  facts_.memory_bytes = prop.totalGlobalMem;
  char pci[64] = {0};
  if (cudaDeviceGetPCIBusId(pci, sizeof pci, id_.device) == cudaSuccess) facts_.pci_bus_id = pci;
  OB_CUDA_CHECK(
      c, cudaDeviceGetStreamPriorityRange(&facts_.priority_least, &facts_.priority_greatest));
  gemm_ = std::make_unique<cublaslt_gemm>(c);
}

rank_engine::~rank_engine() {
  scoped_device dev(id_.device);
  comms_.reset();
  gemm_.reset();
  workspaces_.clear();
}

error_context rank_engine::context(std::string op) const {
  return {id_.global_rank, id_.device, std::move(op)};
}

void* rank_engine::workspace(std::size_t slot) {
  while (workspaces_.size() <= slot)
    workspaces_.emplace_back(cublaslt_gemm::workspace_bytes, context("workspace"));
  return workspaces_[slot].get();
}

void rank_engine::abort_comms() noexcept {
  if (comms_) comms_->abort_all();
}

rank_result rank_engine::run(const variant_schedules& variants, const run_settings& rs,
                             const std::string* world_id, abort_signal& abort) {
  OB_CUDA_CHECK(context("setup"), cudaSetDevice(id_.device));
  if (rs.iters < 1) throw config_error("iterations must be at least 1");
  if (rs.warmup < 0) throw config_error("warm-up iterations must not be negative");
  case_run c(*this, variants, rs, world_id, abort);
  return c.run();
}

}  // namespace ob::cuda
