#include "core/plan.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace ob {

std::string_view to_string(launch_order o) {
  return o == launch_order::comm_first ? "comm_first" : "gemm_first";
}
std::string_view to_string(priority_mode p) {
  switch (p) {
    case priority_mode::comm_high:
      return "comm_high";
    case priority_mode::equal:
      return "equal";
    case priority_mode::compute_high:
      return "compute_high";
  }
  return "?";
}
launch_order parse_launch_order(std::string_view s, std::string_view field) {
  if (s == "comm_first") return launch_order::comm_first;
  if (s == "gemm_first") return launch_order::gemm_first;
  throw config_error(std::string(field) + ": unknown order '" + std::string(s) +
                     "' (expected comm_first or gemm_first)");
}
priority_mode parse_priority_mode(std::string_view s, std::string_view field) {
  for (priority_mode p :
       {priority_mode::comm_high, priority_mode::equal, priority_mode::compute_high})
    if (to_string(p) == s) return p;
  throw config_error(std::string(field) + ": unknown priority '" + std::string(s) +
                     "' (expected comm_high, equal or compute_high)");
}

namespace {

// CUDA convention: lower number = higher priority. TE gives comm streams the highest priority.
struct stream_priorities {
  int compute = 0, comm = 0;
};
stream_priorities priorities(priority_mode p) {
  switch (p) {
    case priority_mode::comm_high:
      return {0, -1};
    case priority_mode::equal:
      return {0, 0};
    case priority_mode::compute_high:
      return {-1, 0};
  }
  return {};
}

// Builds one layer's schedule step by step. Keeps the bookkeeping that links ops across steps:
// the last op on the compute stream (what a side-stream op issued "now" must wait for), the
// reduce-scatters whose output a later LayerNorm consumes, and the bulk all-gather a wgrad needs.
class layer_planner {
 public:
  layer_planner(const layer_workload& w, const slot_overlap_map& methods, const gpu_spec& gpu,
                const plan_knobs& knobs)
      : w_(w), methods_(methods), gpu_(gpu), knobs_(knobs) {
    s_.name = "layer/" + w.model.name + "/tp" + std::to_string(w.layout.tp);
    const auto prio = priorities(knobs.priority);
    // Creation order decides hardware queues under CDMC: compute first, then comm, then p2p.
    compute_ = s_.add_stream("compute", stream_role::compute, prio.compute);
    comm_ = s_.add_stream("comm", stream_role::comm, prio.comm);
    p2p_ = s_.add_stream("p2p", stream_role::p2p, prio.comm);
  }

  schedule build() {
    for (const layer_step& step : w_.steps) {
      if (const auto* e = std::get_if<layer_elementwise>(&step)) {
        if ((e->backward ? knobs_.backward : knobs_.forward)) add_elementwise(*e);
      } else {
        const auto& g = std::get<layer_gemm>(step);
        if ((g.backward ? knobs_.backward : knobs_.forward)) add_gemm(g);
      }
    }
    s_.validate();
    return std::move(s_);
  }

 private:
  gemm_overlap_cfg cfg_for(const std::string& slot) const {
    auto it = methods_.find(slot);
    return it == methods_.end() ? gemm_overlap_cfg{} : it->second;
  }

  int overlapped_sm_target(const gemm_overlap_cfg& cfg) const {
    const int margin = knobs_.sm_margin ? *knobs_.sm_margin : (cfg.set_sm_margin ? cfg.num_sm : 0);
    if (margin <= 0) return 0;
    if (margin >= gpu_.sm_count)
      throw config_error("sm_margin " + std::to_string(margin) + " leaves no SM for the GEMM (" +
                         gpu_.name + " has " + std::to_string(gpu_.sm_count) + ")");
    return gpu_.sm_count - margin;
  }

  int coll_ctas(const gemm_overlap_cfg& cfg) const {
    if (knobs_.comm_ctas > 0) return knobs_.comm_ctas;
    return cfg.num_sm;  // 0 = library default
  }

  collective_params coll(const layer_gemm& g, std::uint64_t bytes, int ctas) const {
    collective_params c;
    c.op = g.comm;
    c.bytes = bytes;
    c.group = comm_group::tp;
    c.group_size = w_.layout.tp;
    c.ctas = ctas;
    return c;
  }

  std::vector<int> after_compute() const {
    return last_compute_ >= 0 ? std::vector<int>{last_compute_} : std::vector<int>{};
  }

  int add_compute(std::string name, op_params p, std::vector<int> waits, const std::string& slot) {
    // Same-stream order is implicit; keep only cross-stream waits.
    std::erase_if(waits, [&](int id) { return s_.ops[id].stream == compute_; });
    last_compute_ = s_.add_op(std::move(name), compute_, std::move(p), std::move(waits), slot);
    return last_compute_;
  }

  void add_elementwise(const layer_elementwise& e) {
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

  gemm_params chunk(const layer_gemm& g, int parts, int i, int sm_target) const {
    gemm_params c = g.gemm;
    c.m = chunk_rows(g.gemm.m, parts, i);
    c.sm_target = sm_target;
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

  void add_gemm(const layer_gemm& g) {
    const gemm_overlap_cfg cfg = cfg_for(g.slot);
    overlap_method method = g.comm_bytes == 0 ? overlap_method::none : cfg.method;
    if (g.relation == comm_relation::external) method = overlap_method::none;
    const bool gemm_first = knobs_.order == launch_order::gemm_first;
    const std::string& slot = g.slot;
    auto plain_gemm = [&](std::vector<int> waits = {}) {
      gemm_params p = g.gemm;
      return add_compute(slot, p, std::move(waits), slot);
    };
    // Without overlap the collective sits on the compute stream, in dependency order.
    auto serial_coll = [&](const std::string& name, std::uint64_t bytes) {
      return add_compute(name, coll(g, bytes, knobs_.comm_ctas), {}, slot);
    };
    const int tp = w_.layout.tp;

    switch (g.relation) {
      case comm_relation::ar_output:
        // TE's userbuffers overlap needs sequence parallelism (Bridge gates it off without);
        // MCore's async dgrad all-reduce is not modelled, so the all-reduce is serial.
        plain_gemm(take_pending_ag());
        serial_coll(slot + ".ar", g.comm_bytes);
        return;
      case comm_relation::external:
        plain_gemm(take_pending_ag());
        return;

      case comm_relation::ag_input:
        if (method == overlap_method::none) {
          serial_coll(slot + ".ag", g.comm_bytes);
          plain_gemm();
        } else if (method == overlap_method::ring_exchange) {
          // Step j multiplies the chunk already here while send/recv brings chunk j+1.
          const int sm = overlapped_sm_target(cfg);
          const std::uint64_t step_bytes = g.comm_bytes / static_cast<std::uint64_t>(tp);
          // Every exchange needs the producer's output, never the chunk GEMMs.
          const std::vector<int> producer = after_compute();
          int prev_recv = -1;
          for (int j = 0; j < tp; ++j) {
            const std::string base = slot + ".step" + std::to_string(j);
            auto send = [&] {
              if (j + 1 >= tp) return -1;
              p2p_params p{1, -1, step_bytes, comm_group::tp, tp, 0};
              return s_.add_op(base + ".sendrecv", p2p_, p, producer, slot);
            };
            int recv = -1;
            if (!gemm_first) recv = send();
            add_compute(base + ".gemm", chunk(g, tp, j, sm),
                        prev_recv >= 0 ? std::vector<int>{prev_recv} : std::vector<int>{}, slot);
            if (gemm_first) recv = send();
            prev_recv = recv;
          }
        } else if (method == overlap_method::bulk) {
          const int ag = s_.add_op(slot + ".ag", comm_, coll(g, g.comm_bytes, coll_ctas(cfg)),
                                   after_compute(), slot);
          add_compute(slot, with_sm(g.gemm, overlapped_sm_target(cfg)), {ag}, slot);
        } else {
          throw config_error(slot + ": method " + std::string(to_string(method)) +
                             " cannot overlap an all-gather (Transformer Engine rejects it)");
        }
        return;

      case comm_relation::rs_output:
        if (method == overlap_method::none) {
          plain_gemm();
          serial_coll(slot + ".rs", g.comm_bytes);
        } else if (method == overlap_method::pipeline || method == overlap_method::ring_exchange) {
          const bool ring = method == overlap_method::ring_exchange;
          const int parts = ring ? tp : std::max(1, cfg.num_splits);
          if (parts > g.gemm.m)
            throw config_error(slot + ".num_splits: " + std::to_string(parts) +
                               " chunks of a GEMM with only " + std::to_string(g.gemm.m) + " rows");
          const int sm = overlapped_sm_target(cfg);
          std::vector<int> chunks;
          auto comm_for = [&](int i) {
            const std::uint64_t part_bytes = chunk_bytes(g.comm_bytes, g.gemm.m, parts, i);
            const std::string name =
                slot + ".chunk" + std::to_string(i) + (ring ? ".sendrecv" : ".rs");
            op_params p;
            if (ring)
              p = p2p_params{1, -1, part_bytes, comm_group::tp, tp, 0};
            else
              p = coll(g, part_bytes, coll_ctas(cfg));
            pending_rs_.push_back(s_.add_op(name, ring ? p2p_ : comm_, p, {chunks[i]}, slot));
          };
          // comm_first: each chunk's RS right behind its GEMM (TE's order); gemm_first: every
          // chunk GEMM first, then the RSs.
          for (int i = 0; i < parts; ++i) {
            chunks.push_back(add_compute(slot + ".chunk" + std::to_string(i) + ".gemm",
                                         chunk(g, parts, i, sm), {}, slot));
            if (i > 0 && !gemm_first && !ring)
              order_after_launch(chunks.back(), pending_rs_.back());
            if (!gemm_first) comm_for(i);
          }
          if (gemm_first)
            for (int i = 0; i < parts; ++i) comm_for(i);
        } else {  // bulk: the RS leaves the stream but waits on the whole GEMM
          const int gemm = plain_gemm();
          pending_rs_.push_back(
              s_.add_op(slot + ".rs", comm_, coll(g, g.comm_bytes, coll_ctas(cfg)), {gemm}, slot));
        }
        return;

      case comm_relation::independent_ag: {
        if (method == overlap_method::pipeline || method == overlap_method::ring_exchange) {
          // TE moves this dgrad off bulk: it reduce-scatters its own output with that method
          // (dgrad_reduce_scatter_overlap), and the paired wgrad then has no comm beside it.
          layer_gemm as_rs = g;
          as_rs.relation = comm_relation::rs_output;
          as_rs.comm = coll_op::reduce_scatter;
          as_rs.comm_bytes = static_cast<std::uint64_t>(g.gemm.m) * g.gemm.n * 2;
          add_gemm(as_rs);
          dgrad_did_rs_ = true;
          return;
        }
        if (method == overlap_method::none) {
          // Unoverlapped TE gathers the LN output for wgrad right before the dgrad GEMM.
          pending_ag_ = serial_coll(slot + ".ag", g.comm_bytes);
          last_dgrad_ = plain_gemm();
          return;
        }
        // Bulk: the gather is issued at this point of the backward (so it waits on the last
        // compute op) and runs beside the dgrad GEMM.
        const int sm = overlapped_sm_target(cfg);
        const std::vector<int> issued_after = after_compute();
        auto issue = [&] {
          pending_ag_ = s_.add_op(slot + ".ag", comm_, coll(g, g.comm_bytes, coll_ctas(cfg)),
                                  issued_after, slot);
        };
        if (!gemm_first) issue();
        last_dgrad_ = add_compute(slot, with_sm(g.gemm, sm), {}, slot);
        if (gemm_first)
          issue();
        else
          order_after_launch(last_dgrad_, pending_ag_);
        return;
      }

      case comm_relation::independent_rs: {
        const std::vector<int> need_ag = take_pending_ag();
        const int dgrad = last_dgrad_;
        if (std::exchange(dgrad_did_rs_, false)) {
          plain_gemm(need_ag);
          return;
        }
        if (method == overlap_method::none || dgrad < 0) {
          if (dgrad >= 0) serial_coll(slot + ".rs", g.comm_bytes);
          plain_gemm(need_ag);
          return;
        }
        const int sm = overlapped_sm_target(cfg);
        auto issue = [&] {
          pending_rs_.push_back(
              s_.add_op(slot + ".rs", comm_, coll(g, g.comm_bytes, coll_ctas(cfg)), {dgrad}, slot));
        };
        if (!gemm_first) issue();
        const int wgrad = add_compute(slot, with_sm(g.gemm, sm), need_ag, slot);
        if (gemm_first)
          issue();
        else
          order_after_launch(wgrad, pending_rs_.back());
        return;
      }
    }
  }

  // TE's launch-ordering event: the GEMM may not dispatch before the comm kernel is resident.
  void order_after_launch(int gemm, int comm) {
    if (knobs_.te_launch_ordering && comm >= 0 && comm < gemm)
      s_.ops[gemm].waits_started.push_back(comm);
  }

  static gemm_params with_sm(gemm_params p, int sm_target) {
    p.sm_target = sm_target;
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
  schedule s_;
  int compute_ = 0, comm_ = 0, p2p_ = 0;
  int last_compute_ = -1;
  int last_dgrad_ = -1;
  int pending_ag_ = -1;
  bool dgrad_did_rs_ = false;
  std::vector<int> pending_rs_;
};

}  // namespace

schedule plan_layer(const layer_workload& w, const slot_overlap_map& methods, const gpu_spec& gpu,
                    const plan_knobs& knobs) {
  return layer_planner(w, methods, gpu, knobs).build();
}

schedule plan_pair(const pair_spec& p, const gpu_spec& gpu, const plan_knobs& knobs) {
  schedule s;
  s.name = "pair";
  const auto prio = priorities(knobs.priority);
  const int compute = s.add_stream("compute", stream_role::compute, prio.compute);
  const int comm = s.add_stream("comm", stream_role::comm, prio.comm);
  gemm_params g = p.gemm;
  if (knobs.sm_margin && *knobs.sm_margin > 0) {
    if (*knobs.sm_margin >= gpu.sm_count)
      throw config_error("--sm-margin " + std::to_string(*knobs.sm_margin) +
                         " leaves no SM for "
                         "the GEMM (" +
                         gpu.name + " has " + std::to_string(gpu.sm_count) + ")");
    g.sm_target = gpu.sm_count - *knobs.sm_margin;
  }
  collective_params c = p.coll;
  if (knobs.comm_ctas > 0) c.ctas = knobs.comm_ctas;
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
