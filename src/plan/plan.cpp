#include "plan/plan.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "base/error.hpp"

namespace ob {

namespace {}  // namespace

// Appends layers step by step. Keeps the bookkeeping that links ops across steps: the last op
// on the compute stream (what a side-stream op issued "now" must wait for), the reduce-scatters
// whose output a later LayerNorm consumes, and the bulk all-gather a wgrad needs.
class layer_planner {
 public:
  layer_planner(const layer_workload& w, const slot_overlap_map& methods, const gpu_spec& gpu,
                const plan_knobs& knobs, const layer_target& t)
      : w_(w),
        methods_(methods),
        gpu_(gpu),
        knobs_(knobs),
        s_(*t.s),
        t_(t),
        compute_(t.compute),
        comm_(t.comm),
        p2p_(t.p2p) {}

  void pass(bool backward, const std::string& prefix, bool with_mlp,
            const layer_workload* variant) {
    prefix_ = prefix;
    for (const layer_step& step : (variant ? variant->steps : w_.steps)) {
      if (const auto* e = std::get_if<layer_elementwise>(&step)) {
        if (e->backward == backward && (with_mlp || !is_mlp_slot(e->slot))) add_elementwise(*e);
      } else {
        const auto& g = std::get<layer_gemm>(step);
        if (g.backward == backward && (with_mlp || !is_mlp_slot(g.slot))) add_gemm(g);
      }
    }
  }

  // The dense MLP's GEMMs and activation, which a MoE layer replaces (plan.hpp).
  static bool is_mlp_slot(const std::string& slot) {
    return slot.starts_with("fc1_") || slot.starts_with("fc2_") || slot.starts_with("act_");
  }

  int last_compute() const { return last_compute_; }
  void set_last_compute(int id) { last_compute_ = id; }
  void wait_before_next_compute(std::vector<int> ops) {
    next_waits_.insert(next_waits_.end(), ops.begin(), ops.end());
  }
  std::vector<int> take_pending_outputs() { return std::exchange(pending_rs_, {}); }

 private:
  gemm_overlap_cfg cfg_for(const std::string& slot) const {
    auto it = methods_.find(slot);
    return it == methods_.end() ? gemm_overlap_cfg{} : it->second;
  }

  int overlapped_sm_margin(const gemm_overlap_cfg& cfg) const {
    const int margin = knobs_.sm_margin ? *knobs_.sm_margin : (cfg.set_sm_margin ? cfg.num_sm : 0);
    if (margin <= 0) return 0;
    if (margin >= gpu_.sm_count)
      throw config_error("sm_margin " + std::to_string(margin) + " leaves no SM for the GEMM (" +
                         gpu_.name + " has " + std::to_string(gpu_.sm_count) + ")");
    return margin;
  }

  int coll_ctas(const gemm_overlap_cfg& cfg) const {
    if (knobs_.comm_ctas > 0) return knobs_.comm_ctas;
    return cfg.num_sm;  // 0 = library default
  }

  collective_params coll(const layer_gemm& g, std::uint64_t bytes, int ctas) const {
    collective_params c;
    c.op = g.comm;
    c.bytes = bytes;
    c.type = g.comm_type;
    c.group = comm_group::tp;
    c.group_size = w_.layout.tp;
    c.ctas = ctas;
    c.nodes = t_.tp_nodes;
    return with_nccl_knobs(c, knobs_);
  }

  // One step of a ring exchange: send to the next rank, receive from the previous one, through
  // the copy engines (TE's userbuffers default).
  p2p_params ring_step(const layer_gemm& g, std::uint64_t bytes) const {
    p2p_params p;
    p.send_peer = 1;
    p.recv_peer = -1;
    p.bytes = bytes;
    p.type = g.comm_type;
    p.group = comm_group::tp;
    p.group_size = w_.layout.tp;
    return p;
  }

  std::vector<int> after_compute() const {
    return last_compute_ >= 0 ? std::vector<int>{last_compute_} : std::vector<int>{};
  }

  int add_compute(std::string name, op_params p, std::vector<int> waits, const std::string& slot) {
    if (!next_waits_.empty()) {
      waits.insert(waits.end(), next_waits_.begin(), next_waits_.end());
      next_waits_.clear();
    }
    // Same-stream order is implicit; keep only cross-stream waits.
    std::erase_if(waits, [&](int id) { return s_.ops[id].stream == compute_; });
    last_compute_ = s_.add_op(prefix_ + name, compute_, std::move(p), std::move(waits), slot);
    return last_compute_;
  }

  int add_side(std::string name, int stream, op_params p, std::vector<int> waits,
               const std::string& slot) {
    return s_.add_op(prefix_ + name, stream, std::move(p), std::move(waits), slot);
  }

  // Ring attention (context parallelism): the attention core runs in cp chunks, each on the KV
  // block already here while send/recv brings the next one from the ring neighbours; the
  // backward also sends the KV gradients back, twice the bytes.
  bool is_attention(const layer_elementwise& e) const {
    return t_.cp >= 0 && w_.layout.cp > 1 && e.slot.rfind("attn_", 0) == 0;
  }

  // Under a2a+p2p the ring runs over the p2p level, cp / cp_a2a ranks cp_a2a apart, after the
  // all-to-all has given each rank cp_a2a times the tokens with 1 / cp_a2a of the heads (the
  // same K/V bytes).
  void add_ring_attention(const layer_elementwise& e) {
    const bool hier = hierarchical();
    const int cp = w_.layout.cp / (hier ? t_.cp_a2a : 1);
    const model_spec& m = w_.model;
    const auto kv_bytes = static_cast<std::uint64_t>(w_.tokens) * 2 *
                          static_cast<std::uint64_t>(m.kv_heads / w_.layout.tp * m.head_dim()) *
                          dtype_bytes(dtype::bf16) * (e.backward ? 2 : 1);
    p2p_params x;
    x.send_peer = 1;
    x.recv_peer = -1;
    x.bytes = kv_bytes;
    x.group = comm_group::cp;
    x.group_size = cp;
    x.level_stride = hier ? level_stride(cp, t_.cp_a2a) : 0;
    x.ctas = t_.cp_ctas;
    x.nodes = hier ? t_.cp_p2p_nodes : t_.cp_nodes;
    elementwise_params part = e.params;
    part.bytes /= static_cast<std::uint64_t>(cp);
    part.flops /= cp;
    const std::vector<int> producer = after_compute();
    int prev = -1;
    for (int j = 0; j < cp; ++j) {
      const std::string base = e.slot + ".cp" + std::to_string(j);
      const int recv = j + 1 < cp ? add_side(base + ".kv", t_.cp, x, producer, e.slot) : -1;
      add_compute(base, part, prev >= 0 ? std::vector<int>{prev} : std::vector<int>{}, e.slot);
      prev = recv;
    }
  }

  // The attention core itself (not the copies around it): "attn_fwd", "attn_bwd", or the
  // forward run again by selective recomputation ("attn_recompute").
  static bool is_core(const layer_elementwise& e) {
    return e.slot == "attn_fwd" || e.slot == "attn_bwd" || e.slot == "attn_recompute";
  }
  static bool core_backward(const layer_elementwise& e) { return e.slot == "attn_bwd"; }

  // One K or V (or its gradient) of this rank's chunk: tokens x heads / tp x width, 16-bit.
  // `heads` is the KV heads under GQA (MLA's K and V have every head).
  std::uint64_t head_bytes(std::int64_t heads, std::int64_t width) const {
    return static_cast<std::uint64_t>(w_.tokens) *
           static_cast<std::uint64_t>(heads / w_.layout.tp) * static_cast<std::uint64_t>(width) *
           dtype_bytes(dtype::bf16);
  }
  std::int64_t kv_heads() const {
    return w_.model.mla.enabled ? w_.model.heads : w_.model.kv_heads;
  }

  // A collective over the CP group on the compute stream: Transformer Engine issues these
  // synchronously (all_gather, reduce-scatter) or waits for them at once (a2a), so the core
  // waits and nothing overlaps them (docs/ARCHITECTURE.md §9.3).
  int cp_coll(const std::string& name, coll_op op, std::uint64_t bytes, const std::string& slot) {
    collective_params c;
    c.op = op;
    c.bytes = bytes;
    c.group = comm_group::cp;
    c.group_size = hierarchical() ? t_.cp_a2a : w_.layout.cp;
    c.level_stride = hierarchical() ? level_stride(t_.cp_a2a, 1) : 0;
    c.nodes = hierarchical() ? t_.cp_a2a_nodes : t_.cp_nodes;
    return add_compute(name, with_nccl_knobs(c, knobs_), {}, slot);
  }
  // a2a+p2p: the all-to-alls run over the first level only, the ring over the second.
  bool hierarchical() const { return t_.cp_type == cp_comm::a2a_p2p; }
  // An a2a+p2p level's ranks for the cuda backend's communicators (Megatron-Core's
  // create_hierarchical_groups: the a2a level's CP neighbours, the ring's ranks cp_a2a apart);
  // 0 where the level is the whole CP group.
  int level_stride(int size, int stride) const { return size < w_.layout.cp ? stride : 0; }
  // A layout copy TE makes around an exchange (reorder of sequence chunks, head split): every
  // byte read and written once.
  void cp_copy(const std::string& name, std::uint64_t bytes, const std::string& slot) {
    cp_pass(name, 2 * bytes, slot);
  }
  // A memory pass of `bytes` (read + written) on the compute stream, or on TE's cp_stream when
  // `side` (after `waits`).
  int cp_pass(const std::string& name, std::uint64_t bytes, const std::string& slot,
              bool side = false, std::vector<int> waits = {}) {
    elementwise_params p;
    p.bytes = bytes;
    if (side) return add_side(name, t_.cp, p, std::move(waits), slot);
    return add_compute(name, p, std::move(waits), slot);
  }

  // cp_comm_type all_gather (TE's AttnFuncWithCPAndKVAllGather, docs/ARCHITECTURE.md §9.3): K
  // and V of every CP rank gathered on the compute stream, reordered into sequence order, and
  // the core run for the rank's two query chunks; the backward zero-fills dK and dV, gathers K
  // and V again, runs the two chunks' backward and reduce-scatters dK and dV after them.
  void add_gathered_attention(const layer_elementwise& e) {
    const int cp = w_.layout.cp;
    const std::uint64_t k = head_bytes(kv_heads(), w_.model.qk_dim()) * cp;
    const std::uint64_t v = head_bytes(kv_heads(), w_.model.v_dim()) * cp;
    if (core_backward(e)) cp_pass(e.slot + ".dkv_zero", k + v, e.slot);
    cp_coll(e.slot + ".ag_k", coll_op::all_gather, k, e.slot);
    cp_coll(e.slot + ".ag_v", coll_op::all_gather, v, e.slot);
    cp_copy(e.slot + ".kv_reorder", k + v, e.slot);
    add_chunked_core(e, k + v);  // CP runs fused attention only (docs/ARCHITECTURE.md §9.3)
    if (!core_backward(e)) return;
    cp_copy(e.slot + ".dkv_reorder", k + v, e.slot);
    cp_coll(e.slot + ".rs_dk", coll_op::reduce_scatter, k, e.slot);
    cp_coll(e.slot + ".rs_dv", coll_op::reduce_scatter, v, e.slot);
  }

  // The sequence chunks of the load-balanced split that CP rank 0, the representative rank,
  // holds: 0 and 2 cp - 1 of 2 cp.
  std::array<int, 2> local_chunks() const { return {0, 2 * w_.layout.cp - 1}; }
  // The keys chunk `id` attends to, in chunks: causal, every chunk up to its own (the last
  // one half, on the diagonal); else all 2 cp. A sliding window is not taken into account.
  double chunk_keys(int id) const { return w_.model.causal ? id + 0.5 : 2.0 * w_.layout.cp; }
  // The gathered K/V rows chunk `id` reads (and whose gradient it adds), in chunks.
  int chunk_kv_range(int id) const { return w_.model.causal ? id + 1 : 2 * w_.layout.cp; }

  // TE runs the two query chunks' attention at once, the first on the current stream, the
  // second on its cp_stream after the gathered K/V are ready; each chunk's output (forward) or
  // dQ (backward) is copied into the rank's tensor on its own stream, and in the backward each
  // chunk adds its dK, dV into the gathered-length gradients, the second after the first. The
  // compute stream then waits for the cp_stream. `kv`: the gathered K and V bytes.
  void add_chunked_core(const layer_elementwise& e, std::uint64_t kv) {
    const bool bwd = core_backward(e);
    // The rank's output (forward) or dQ (backward): each chunk copies its half, read and written.
    const std::uint64_t out =
        head_bytes(w_.model.heads, bwd ? w_.model.qk_dim() : w_.model.v_dim());
    const int ready = last_compute_;  // the reorder: what cp_stream waits for
    // TE v2.18 allocates a zero-filled output besides the one it returns (used for THD only).
    if (!bwd) cp_pass(e.slot + ".out_zero", out, e.slot);
    const std::array<int, 2> ids = local_chunks();
    const double all = chunk_keys(ids[0]) + chunk_keys(ids[1]);
    const auto part = [&](int i) {
      elementwise_params p = e.params;
      p.flops = e.params.flops * chunk_keys(ids[i]) / all;
      p.bytes = e.params.bytes / 2;
      return p;
    };
    add_compute(e.slot + ".chunk0", part(0), {}, e.slot);
    // The cp_stream's last op, which the compute stream waits for.
    int last_side = add_side(e.slot + ".chunk1", t_.cp, part(1), {ready}, e.slot);
    int prev_add = -1;
    for (int i = 0; i < 2; ++i) {
      const bool side = i == 1;
      const std::string tag = e.slot + ".chunk" + std::to_string(i);
      int last = cp_pass(tag + (bwd ? ".dq_copy" : ".out_copy"), out, e.slot, side);
      if (bwd) {
        const std::uint64_t range = kv / (2 * static_cast<std::uint64_t>(w_.layout.cp)) *
                                    static_cast<std::uint64_t>(chunk_kv_range(ids[i]));
        last = cp_pass(tag + ".dkv_add", 3 * range, e.slot, side,
                       side ? std::vector<int>{prev_add} : std::vector<int>{});
        prev_add = last;
      }
      if (side) last_side = last;
    }
    wait_before_next_compute({last_side});
  }

  // cp_comm_type a2a (TE's AttnFuncWithCPAndQKVOA2A, DeepSpeed Ulysses): Q, K and V trade
  // sequence chunks for heads in one all-to-all each, so the core runs over the whole sequence
  // with heads / cp; its output trades back. The backward exchanges dO before its core and dQ,
  // dK, dV after it. Each side's tensors are copied into the exchange's layout and reordered out.
  // a2a+p2p (TE's AttnFuncWithCPAndKVP2P with two CP groups): the same exchanges over the a2a
  // level only (none when it is one rank), and the ring over the p2p level in place of the core.
  void add_a2a_attention(const layer_elementwise& e) {
    const model_spec& m = w_.model;
    const std::uint64_t q = head_bytes(m.heads, m.qk_dim()), k = head_bytes(kv_heads(), m.qk_dim());
    const std::uint64_t v = head_bytes(kv_heads(), m.v_dim()), o = head_bytes(m.heads, m.v_dim());
    const auto exchange = [&](const std::string& tag,
                              std::vector<std::pair<const char*, std::uint64_t>> parts) {
      if (hierarchical() && t_.cp_a2a == 1) return;
      std::uint64_t all = 0;
      for (const auto& part : parts) all += part.second;
      cp_copy(e.slot + "." + tag + "_split", all, e.slot);
      for (const auto& [name, bytes] : parts)
        cp_coll(e.slot + ".a2a_" + name, coll_op::all_to_all, bytes, e.slot);
      cp_copy(e.slot + "." + tag + "_reorder", all, e.slot);
    };
    const auto core = [&] {
      if (hierarchical()) return add_ring_attention(e);
      add_compute(e.slot, e.params, {}, e.slot);
    };
    if (core_backward(e)) {
      exchange("dout", {{"dout", o}});
      core();
      exchange("dqkv", {{"dq", q}, {"dk", k}, {"dv", v}});
      return;
    }
    exchange("qkv", {{"q", q}, {"k", k}, {"v", v}});
    core();
    exchange("out", {{"out", o}});
  }

  void add_elementwise(const layer_elementwise& e) {
    if (is_attention(e)) {
      switch (t_.cp_type) {
        case cp_comm::p2p:
          return add_ring_attention(e);
        case cp_comm::all_gather:
          if (is_core(e)) return add_gathered_attention(e);
          break;
        case cp_comm::a2a:
        case cp_comm::a2a_p2p:
          if (is_core(e)) return add_a2a_attention(e);
          break;
      }
    }
    elementwise_params p = e.params;
    if (p.persistent) p.sm_margin = knobs_.layernorm_sm_margin;
    std::vector<int> waits;
    if (e.consumes_pending_rs) {
      waits = pending_rs_;
      pending_rs_.clear();
    }
    add_compute(e.slot, p, std::move(waits), e.slot);
  }

  // Balanced split along M: the first m % parts chunks get one extra row.
  static std::int64_t chunk_rows(std::int64_t m, int parts, int i) {
    return m / parts + (i < m % parts ? 1 : 0);
  }

  gemm_params chunk(const layer_gemm& g, int parts, int i, int sm_margin) const {
    gemm_params c = g.gemm;
    c.m = chunk_rows(g.gemm.m, parts, i);
    c.sm_margin = sm_margin;
    return c;
  }

  // The share of `total` bytes that belongs to chunk i (bytes follow rows; exact in sum).
  static std::uint64_t chunk_bytes(std::uint64_t total, std::int64_t m, int parts, int i) {
    std::int64_t before = 0;
    for (int j = 0; j < i; ++j) before += chunk_rows(m, parts, j);
    const auto um = static_cast<std::uint64_t>(m);
    const auto lo = static_cast<std::uint64_t>(before);
    const auto hi = lo + static_cast<std::uint64_t>(chunk_rows(m, parts, i));
    return total / um * (hi - lo) + (total % um) * hi / um - (total % um) * lo / um;
  }

  bool gemm_first() const { return knobs_.order == launch_order::gemm_first; }

  int plain_gemm(const layer_gemm& g, std::vector<int> waits = {}) {
    return add_compute(g.slot, g.gemm, std::move(waits), g.slot);
  }

  // Without overlap the collective sits on the compute stream, in dependency order.
  int serial_coll(const layer_gemm& g, const std::string& name, std::uint64_t bytes) {
    return add_compute(name, coll(g, bytes, knobs_.comm_ctas), {}, g.slot);
  }

  void add_gemm(const layer_gemm& g) {
    const gemm_overlap_cfg cfg = cfg_for(g.slot);
    overlap_method method = g.comm_bytes == 0 ? overlap_method::none : cfg.method;
    if (g.relation == comm_relation::external) method = overlap_method::none;
    switch (g.relation) {
      case comm_relation::ar_output:
        // TE's userbuffers overlap needs sequence parallelism (Bridge gates it off without);
        // MCore's async dgrad all-reduce is not modelled, so the all-reduce is serial.
        plain_gemm(g, take_pending_ag());
        serial_coll(g, g.slot + ".ar", g.comm_bytes);
        return;
      case comm_relation::external:
        plain_gemm(g, take_pending_ag());
        return;
      case comm_relation::ag_input:
      case comm_relation::rs_output:
      case comm_relation::independent_ag:
      case comm_relation::independent_rs:
        return lay_out(g, cfg, method);
    }
  }

  // How each overlap method lays out a GEMM and the communication it relates to
  // (docs/ARCHITECTURE.md §3.3, §10.3): one row per pair Transformer Engine accepts.
  using layout_fn = void (layer_planner::*)(const layer_gemm&, const gemm_overlap_cfg&);
  struct method_row {
    comm_relation relation;
    overlap_method method;
    layout_fn lay;
  };
  static std::span<const method_row> method_table() {
    using r = comm_relation;
    using m = overlap_method;
    using p = layer_planner;
    static constexpr method_row rows[] = {
        {r::ag_input, m::none, &p::serial_ag_then_gemm},
        {r::ag_input, m::ring_exchange, &p::add_ring_gather},
        {r::ag_input, m::bulk, &p::bulk_ag_beside_gemm},
        {r::rs_output, m::none, &p::gemm_then_serial_rs},
        {r::rs_output, m::pipeline, &p::pipelined_scatter},
        {r::rs_output, m::ring_exchange, &p::ring_scatter},
        {r::rs_output, m::bulk, &p::bulk_rs_after_gemm},
        {r::independent_ag, m::none, &p::serial_ag_before_dgrad},
        {r::independent_ag, m::bulk, &p::bulk_ag_beside_dgrad},
        {r::independent_ag, m::pipeline, &p::dgrad_scatters_itself},
        {r::independent_ag, m::ring_exchange, &p::dgrad_scatters_itself},
        {r::independent_rs, m::none, &p::serial_rs_before_wgrad},
        {r::independent_rs, m::bulk, &p::rs_beside_wgrad},
        {r::independent_rs, m::pipeline, &p::rs_beside_wgrad},
        {r::independent_rs, m::ring_exchange, &p::rs_beside_wgrad},
    };
    return rows;
  }

  void lay_out(const layer_gemm& g, const gemm_overlap_cfg& cfg, overlap_method method) {
    for (const method_row& row : method_table())
      if (row.relation == g.relation && row.method == method) return (this->*row.lay)(g, cfg);
    throw config_error(g.slot + ": method " + std::string(to_string(method)) +
                       " cannot overlap an all-gather (Transformer Engine rejects it)");
  }

  // An all-gather produces the GEMM's input: unoverlapped, it runs on the compute stream first.
  void serial_ag_then_gemm(const layer_gemm& g, const gemm_overlap_cfg&) {
    serial_coll(g, g.slot + ".ag", g.comm_bytes);
    plain_gemm(g);
  }

  // Bulk: the whole gather on the comm stream, the GEMM waiting for it on fewer SMs.
  void bulk_ag_beside_gemm(const layer_gemm& g, const gemm_overlap_cfg& cfg) {
    const int ag = add_side(g.slot + ".ag", comm_, coll(g, g.comm_bytes, coll_ctas(cfg)),
                            after_compute(), g.slot);
    add_compute(g.slot, with_sm(g.gemm, overlapped_sm_margin(cfg)), {ag}, g.slot);
  }

  // Step j multiplies the chunk already here while send/recv brings chunk j+1.
  void add_ring_gather(const layer_gemm& g, const gemm_overlap_cfg& cfg) {
    const int tp = w_.layout.tp;
    const int margin = overlapped_sm_margin(cfg);
    const std::uint64_t step_bytes = g.comm_bytes / static_cast<std::uint64_t>(tp);
    // Every exchange needs the producer's output, never the chunk GEMMs.
    const std::vector<int> producer = after_compute();
    int prev_recv = -1;
    for (int j = 0; j < tp; ++j) {
      const std::string base = g.slot + ".step" + std::to_string(j);
      auto send = [&] {
        if (j + 1 >= tp) return -1;
        return add_side(base + ".sendrecv", p2p_, ring_step(g, step_bytes), producer, g.slot);
      };
      int recv = -1;
      if (!gemm_first()) recv = send();
      add_compute(base + ".gemm", chunk(g, tp, j, margin),
                  prev_recv >= 0 ? std::vector<int>{prev_recv} : std::vector<int>{}, g.slot);
      if (gemm_first()) recv = send();
      prev_recv = recv;
    }
  }

  // A reduce-scatter consumes the GEMM's output: unoverlapped, it follows on the compute stream.
  void gemm_then_serial_rs(const layer_gemm& g, const gemm_overlap_cfg&) {
    plain_gemm(g);
    serial_coll(g, g.slot + ".rs", g.comm_bytes);
  }

  void pipelined_scatter(const layer_gemm& g, const gemm_overlap_cfg& cfg) {
    add_chunked_scatter(g, cfg, false);
  }
  void ring_scatter(const layer_gemm& g, const gemm_overlap_cfg& cfg) {
    add_chunked_scatter(g, cfg, true);
  }

  // Bulk: the RS leaves the stream but waits on the whole GEMM.
  void bulk_rs_after_gemm(const layer_gemm& g, const gemm_overlap_cfg& cfg) {
    const int gemm = plain_gemm(g);
    pending_rs_.push_back(
        add_side(g.slot + ".rs", comm_, coll(g, g.comm_bytes, coll_ctas(cfg)), {gemm}, g.slot));
  }

  // Pipeline (num_splits chunks, an RS each) or ring exchange (tp chunks, a send/recv each).
  void add_chunked_scatter(const layer_gemm& g, const gemm_overlap_cfg& cfg, bool ring) {
    const int parts = ring ? w_.layout.tp : std::max(1, cfg.num_splits);
    if (parts > g.gemm.m)
      throw config_error(g.slot + ".num_splits: " + std::to_string(parts) +
                         " chunks of a GEMM with only " + std::to_string(g.gemm.m) + " rows");
    const int margin = overlapped_sm_margin(cfg);
    std::vector<int> chunks;
    auto comm_for = [&](int i) {
      const std::uint64_t part_bytes = chunk_bytes(g.comm_bytes, g.gemm.m, parts, i);
      const std::string name = g.slot + ".chunk" + std::to_string(i) + (ring ? ".sendrecv" : ".rs");
      const op_params p = ring ? op_params(ring_step(g, part_bytes))
                               : op_params(coll(g, part_bytes, coll_ctas(cfg)));
      pending_rs_.push_back(add_side(name, ring ? p2p_ : comm_, p, {chunks[i]}, g.slot));
    };
    // comm_first: each chunk's RS right behind its GEMM (TE's order); gemm_first: every chunk
    // GEMM first, then the RSs.
    for (int i = 0; i < parts; ++i) {
      chunks.push_back(add_compute(g.slot + ".chunk" + std::to_string(i) + ".gemm",
                                   chunk(g, parts, i, margin), {}, g.slot));
      if (i > 0 && !gemm_first() && !ring) order_after_launch(chunks.back(), pending_rs_.back());
      if (!gemm_first()) comm_for(i);
    }
    if (gemm_first())
      for (int i = 0; i < parts; ++i) comm_for(i);
  }

  // An unrelated all-gather (LN output for the wgrad) runs beside the dgrad GEMM. With pipeline
  // or ring exchange TE moves this dgrad off bulk: it reduce-scatters its own output with that
  // method (dgrad_reduce_scatter_overlap), and the paired wgrad then has no comm beside it.
  void dgrad_scatters_itself(const layer_gemm& g, const gemm_overlap_cfg&) {
    layer_gemm as_rs = g;
    as_rs.relation = comm_relation::rs_output;
    as_rs.comm = coll_op::reduce_scatter;
    as_rs.comm_type = dtype::bf16;
    as_rs.comm_bytes = static_cast<std::uint64_t>(g.gemm.m) * g.gemm.n * dtype_bytes(dtype::bf16);
    add_gemm(as_rs);
    dgrad_did_rs_ = true;
  }

  // Unoverlapped TE gathers the LN output for wgrad right before the dgrad GEMM.
  void serial_ag_before_dgrad(const layer_gemm& g, const gemm_overlap_cfg&) {
    pending_ag_ = serial_coll(g, g.slot + ".ag", g.comm_bytes);
    last_dgrad_ = plain_gemm(g);
  }

  // Bulk: the gather is issued at this point of the backward (so it waits on the last compute
  // op) and runs beside the dgrad GEMM.
  void bulk_ag_beside_dgrad(const layer_gemm& g, const gemm_overlap_cfg& cfg) {
    const int margin = overlapped_sm_margin(cfg);
    const std::vector<int> issued_after = after_compute();
    auto issue = [&] {
      pending_ag_ = add_side(g.slot + ".ag", comm_, coll(g, g.comm_bytes, coll_ctas(cfg)),
                             issued_after, g.slot);
    };
    if (!gemm_first()) issue();
    last_dgrad_ = add_compute(g.slot, with_sm(g.gemm, margin), {}, g.slot);
    if (gemm_first())
      issue();
    else
      order_after_launch(last_dgrad_, pending_ag_);
  }

  // An unrelated reduce-scatter (of the dgrad's output) runs beside the wgrad GEMM: the wgrad
  // waits for the LN gather; a dgrad that scattered itself, or none, leaves nothing beside it.
  // True when the wgrad was laid out here.
  bool wgrad_alone(const layer_gemm& g, const std::vector<int>& need_ag) {
    if (!std::exchange(dgrad_did_rs_, false) && last_dgrad_ >= 0) return false;
    plain_gemm(g, need_ag);
    return true;
  }

  void serial_rs_before_wgrad(const layer_gemm& g, const gemm_overlap_cfg&) {
    const std::vector<int> need_ag = take_pending_ag();
    if (wgrad_alone(g, need_ag)) return;
    serial_coll(g, g.slot + ".rs", g.comm_bytes);
    plain_gemm(g, need_ag);
  }

  void rs_beside_wgrad(const layer_gemm& g, const gemm_overlap_cfg& cfg) {
    const std::vector<int> need_ag = take_pending_ag();
    if (wgrad_alone(g, need_ag)) return;
    const int dgrad = last_dgrad_;
    const int margin = overlapped_sm_margin(cfg);
    auto issue = [&] {
      pending_rs_.push_back(
          s_.add_op(g.slot + ".rs", comm_, coll(g, g.comm_bytes, coll_ctas(cfg)), {dgrad}, g.slot));
    };
    if (!gemm_first()) issue();
    const int wgrad = add_compute(g.slot, with_sm(g.gemm, margin), need_ag, g.slot);
    if (gemm_first())
      issue();
    else
      order_after_launch(wgrad, pending_rs_.back());
  }

  // TE's launch-ordering event: the GEMM may not dispatch before the comm kernel is resident.
  void order_after_launch(int gemm, int comm) {
    if (knobs_.te_launch_ordering && comm >= 0 && comm < gemm)
      s_.ops[gemm].waits_started.push_back(comm);
  }

  static gemm_params with_sm(gemm_params p, int sm_margin) {
    p.sm_margin = sm_margin;
    return p;
  }

  std::vector<int> take_pending_ag() {
    std::vector<int> out;
    if (pending_ag_ >= 0) out.push_back(pending_ag_);
    pending_ag_ = -1;
    return out;
  }

  const layer_workload& w_;
  const slot_overlap_map& methods_;
  const gpu_spec& gpu_;
  const plan_knobs& knobs_;
  schedule& s_;
  const layer_target t_;
  int compute_ = 0, comm_ = 0, p2p_ = 0;
  std::string prefix_;
  std::vector<int> next_waits_;
  int last_compute_ = -1;
  int last_dgrad_ = -1;
  int pending_ag_ = -1;
  bool dgrad_did_rs_ = false;
  std::vector<int> pending_rs_;
};

layer_appender::layer_appender(const layer_workload& w, const slot_overlap_map& methods,
                               const gpu_spec& gpu, const plan_knobs& knobs, const layer_target& t)
    : impl_(std::make_unique<layer_planner>(w, methods, gpu, knobs, t)) {}
layer_appender::~layer_appender() = default;
layer_appender::layer_appender(layer_appender&&) noexcept = default;
void layer_appender::forward(const std::string& prefix, bool with_mlp,
                             const layer_workload* variant) {
  impl_->pass(false, prefix, with_mlp, variant);
}
void layer_appender::backward(const std::string& prefix, bool with_mlp,
                              const layer_workload* variant) {
  impl_->pass(true, prefix, with_mlp, variant);
}
int layer_appender::last_compute() const { return impl_->last_compute(); }
void layer_appender::set_last_compute(int op) { impl_->set_last_compute(op); }
void layer_appender::wait_before_next_compute(std::vector<int> ops) {
  impl_->wait_before_next_compute(std::move(ops));
}
std::vector<int> layer_appender::take_pending_outputs() { return impl_->take_pending_outputs(); }

schedule plan_layer(const layer_workload& w, const slot_overlap_map& methods, const gpu_spec& gpu,
                    const plan_knobs& knobs) {
  schedule s;
  s.name = "layer/" + w.model.name + "/tp" + std::to_string(w.layout.tp);
  const auto prio = priorities_for(knobs.priority);
  // Creation order decides hardware queues under CDMC: compute first, then comm, then p2p.
  layer_target t;
  t.s = &s;
  t.compute = s.add_stream("compute", stream_role::compute, prio.compute);
  t.comm = s.add_stream("comm", stream_role::comm, prio.comm);
  t.p2p = s.add_stream("p2p", stream_role::p2p, prio.comm);
  layer_appender a(w, methods, gpu, knobs, t);
  if (knobs.forward) a.forward("");
  if (knobs.backward) a.backward("");
  s.validate();
  return s;
}

collective_params with_nccl_knobs(collective_params c, const plan_knobs& knobs) {
  c.nccl = knobs.nccl;
  if (!knobs.nccl_algorithm.empty()) c.algorithm = knobs.nccl_algorithm;
  // Copy engines cannot reduce, nor (before NCCL 2.30) leave the NVLink domain.
  if (c.nccl.policy == cta_policy::zero && !zero_sm_possible(c))
    c.nccl.policy = cta_policy::standard;
  return c;
}

schedule plan_pair(const pair_spec& p, const gpu_spec& gpu, const plan_knobs& knobs) {
  schedule s;
  s.name = "pair";
  const auto prio = priorities_for(knobs.priority);
  const int compute = s.add_stream("compute", stream_role::compute, prio.compute);
  const int comm = s.add_stream("comm", stream_role::comm, prio.comm);
  gemm_params g = p.gemm;
  if (knobs.sm_margin && *knobs.sm_margin > 0) {
    if (*knobs.sm_margin >= gpu.sm_count)
      throw config_error("--sm-margin " + std::to_string(*knobs.sm_margin) +
                         " leaves no SM for "
                         "the GEMM (" +
                         gpu.name + " has " + std::to_string(gpu.sm_count) + ")");
    g.sm_margin = *knobs.sm_margin;
  }
  collective_params c = p.coll;
  if (knobs.comm_ctas > 0) c.ctas = knobs.comm_ctas;
  if (!knobs.nccl.is_default()) c.nccl = knobs.nccl;
  if (!knobs.nccl_algorithm.empty()) c.algorithm = knobs.nccl_algorithm;
  std::vector<int> comm_waits;
  if (p.producer_us > 0) {
    // A LayerNorm-like producer covering the GPU; the collective consumes its output.
    comm_waits.push_back(
        s.add_op("producer", compute, delay_params{p.producer_us, gpu.sm_count}, {}, "producer"));
  }
  if (knobs.order == launch_order::comm_first) {
    s.add_op(std::string(to_string(c.op)), comm, c, comm_waits, "coll");
    s.add_op("gemm", compute, g, {}, "gemm");
  } else {
    s.add_op("gemm", compute, g, {}, "gemm");
    s.add_op(std::string(to_string(c.op)), comm, c, comm_waits, "coll");
  }
  s.validate();
  return s;
}

schedule plan_collective(const collective_params& c) {
  schedule s;
  s.name = "collective";
  const int comm = s.add_stream("comm", stream_role::comm, 0);
  s.add_op(std::string(to_string(c.op)), comm, c, {}, "coll");
  return s;
}

}  // namespace ob
