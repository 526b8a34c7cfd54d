#include "analysis/step_metrics.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace ob {
namespace {

enum class part { compute, tp, cp, dp, pp, bubble, optimizer, other, ep };

double& slot_of(step_breakdown& b, part p) {
  switch (p) {
    case part::compute:
      return b.compute;
    case part::tp:
      return b.tp_exposed;
    case part::cp:
      return b.cp_exposed;
    case part::dp:
      return b.dp_exposed;
    case part::pp:
      return b.pp_exposed;
    case part::bubble:
      return b.bubble;
    case part::optimizer:
      return b.optimizer;
    case part::ep:
      return b.ep_exposed;
    case part::other:
      break;
  }
  return b.other;
}

part part_of_group(comm_group g) {
  switch (g) {
    case comm_group::tp:
      return part::tp;
    case comm_group::cp:
      return part::cp;
    case comm_group::dp:
    case comm_group::edp:  // the experts' gradient buckets (docs/MOE.md §5)
      return part::dp;
    case comm_group::pp:
      return part::pp;
    case comm_group::ep:
      return part::ep;
  }
  return part::other;
}

const char* name_of(part p) {
  static constexpr const char* names[] = {"compute", "tp",        "cp",    "dp", "pp",
                                          "bubble",  "optimizer", "other", "ep"};
  return names[static_cast<int>(p)];
}

bool is_exposed(part p) { return p != part::compute && p != part::optimizer; }

// The parallel dimension a part's time belongs to, so the diagnosis splits as the breakdown does
// (the bubble is the pipeline's); "" for other.
std::string dimension_of(part p) {
  switch (p) {
    case part::tp:
      return "tp";
    case part::cp:
      return "cp";
    case part::dp:
      return "dp";
    case part::ep:
      return "ep";
    case part::pp:
    case part::bubble:
      return "pp";
    default:
      return "";
  }
}

// What an op's own time counts as.
part part_of(const op& o) {
  if (o.slot == "optimizer") return part::optimizer;
  if (o.slot == "grad_reduce" || o.slot == "param_gather" || o.slot == "embedding_grad")
    return part::dp;
  if (o.kind() == op_kind::collective) return part_of_group(o.as<collective_params>().group);
  if (o.kind() == op_kind::p2p) return part_of_group(o.as<p2p_params>().group);
  return part::compute;
}

struct span {
  double start = -1, end = -1;
};

// Merged busy intervals of each communication part on one stage, for "what was in flight".
class in_flight {
 public:
  in_flight(const schedule& s, const std::vector<span>& t) {
    // Compute on a stream of its own (the shared expert under moe_shared_expert_overlap) counts
    // as compute in flight: the compute stream stood still beside it, not unexplained.
    for (const op& o : s.ops)
      if ((o.is_comm() || (o.stream != 0 && s.streams[o.stream].role == stream_role::compute)) &&
          t[o.id].end > t[o.id].start)
        raw_[static_cast<int>(part_of(o))].push_back({t[o.id].start, t[o.id].end});
    for (auto& v : raw_) merge(v);
  }

  // The part whose ops were in flight longest during [a, b]; other when none was.
  part most_during(double a, double b) const {
    part best = part::other;
    double best_len = 0;
    for (int p = 0; p < static_cast<int>(raw_.size()); ++p) {
      const double len = overlap(raw_[p], a, b);
      if (len > best_len) best_len = len, best = static_cast<part>(p);
    }
    return best;
  }

 private:
  static void merge(std::vector<span>& v) {
    std::sort(v.begin(), v.end(), [](const span& x, const span& y) { return x.start < y.start; });
    std::vector<span> out;
    for (const span& x : v) {
      if (!out.empty() && x.start <= out.back().end)
        out.back().end = std::max(out.back().end, x.end);
      else
        out.push_back(x);
    }
    v = std::move(out);
  }

  static double overlap(const std::vector<span>& v, double a, double b) {
    auto it =
        std::lower_bound(v.begin(), v.end(), a, [](const span& x, double t) { return x.end < t; });
    double len = 0;
    for (; it != v.end() && it->start < b; ++it)
      len += std::max(0.0, std::min(b, it->end) - std::max(a, it->start));
    return len;
  }

  std::array<std::vector<span>, 9> raw_;
};

class attributor {
 public:
  attributor(const program& p, const std::vector<std::vector<span>>& times, int stage,
             double hottest_share)
      : s_(p.stages[stage]),
        t_(times[stage]),
        flight_(s_, t_),
        partner_start_(s_.ops.size(), -1),
        hottest_share_(hottest_share) {
    for (const stage_link& l : p.links) {
      if (l.recv_stage == stage) partner_start_[l.recv_op] = times[l.send_stage][l.send_op].start;
      if (l.send_stage == stage) partner_start_[l.send_op] = times[l.recv_stage][l.recv_op].start;
    }
  }

  step_attribution run(double stage_end) {
    double t = 0;
    for (const op& o : s_.ops) {
      if (s_.streams[o.stream].role != stream_role::compute || o.stream != 0) continue;
      const span x = t_[o.id];
      if (x.start > t) gap(t, x.start, &o);
      const part p = part_of(o);
      double len = x.end - x.start;
      if (o.slot == "moe_experts" && hottest_share_ > 0) {
        add(part::ep, len * hottest_share_, exposure_cause::hottest_expert, "moe_combine");
        len -= len * hottest_share_;
      }
      add(p, len, exposure_cause::serialized_same_stream, where_of(o, p));
      t = std::max(t, x.end);
    }
    if (stage_end > t) gap(t, stage_end, nullptr);
    return out_;
  }

 private:
  static std::string where_of(const op& o, part p) { return o.slot.empty() ? name_of(p) : o.slot; }

  void add(part p, double us, exposure_cause c, const std::string& where) {
    if (!(us > 0)) return;
    slot_of(out_.breakdown, p) += us / 1000.0;
    if (is_exposed(p))
      out_.causes.push_back({c, us / 1000.0, where, std::nullopt, dimension_of(p)});
  }

  // Compute waiting for `d` (or, d == nullptr, for what part p had in flight), after the backward
  // when `after_backward`.
  static exposure_cause waited_for(part p, const op* d, bool after_backward) {
    if (p == part::other) return exposure_cause::other;
    const bool bucket = d ? d->slot == "grad_reduce" || d->slot == "embedding_grad"
                          : p == part::dp && after_backward;
    return bucket ? exposure_cause::late_bucket : exposure_cause::tail_not_overlapped;
  }

  void in_flight_gap(double a, double b, const op* next) {
    const part p = flight_.most_during(a, b);
    const bool after_backward = !next || next->slot == "optimizer";
    add(p, b - a, waited_for(p, nullptr, after_backward), name_of(p));
  }

  // [a, b] with the compute stream idle before op `o` (nullptr: after its last op).
  void gap(double a, double b, const op* o) {
    const int dep = o ? binding_wait(*o) : -1;
    if (dep < 0 || t_[dep].end <= a) return in_flight_gap(a, b, o);
    const double explained = std::min(b, t_[dep].end);
    const op& d = s_.ops[dep];
    if (d.kind() == op_kind::p2p && partner_start_[dep] >= 0) {
      // Waiting for the other stage to reach its side of the transfer is the pipeline's bubble;
      // the transfer itself is exposed pipeline communication.
      const double sent = std::clamp(partner_start_[dep], a, explained);
      add(part::bubble, sent - a, exposure_cause::bubble, where_of(d, part::pp));
      add(part::pp, explained - sent, exposure_cause::tail_not_overlapped, where_of(d, part::pp));
    } else {
      // A compute op on a stream of its own (the shared expert under moe_shared_expert_overlap)
      // is compute the step waits for, not exposed time.
      const bool side_compute = s_.streams[d.stream].role == stream_role::compute;
      const part p = d.is_comm() ? part_of(d) : side_compute ? part::compute : part::other;
      add(p, explained - a, waited_for(p, &d, false), where_of(d, p));
    }
    if (b > explained) in_flight_gap(explained, b, o);
  }

  // The cross-stream wait that finished last.
  int binding_wait(const op& o) const {
    int best = -1;
    for (int w : o.waits)
      if (best < 0 || t_[w].end > t_[best].end) best = w;
    return best;
  }

  const schedule& s_;
  const std::vector<span>& t_;
  in_flight flight_;
  std::vector<double> partner_start_;  // the linked op's start on the other stage
  const double hottest_share_;         // attribute_step's
  step_attribution out_;
};

}  // namespace

double step_breakdown::total() const {
  return compute + tp_exposed + cp_exposed + dp_exposed + pp_exposed + ep_exposed + bubble +
         optimizer + other;
}

double step_attribution::exposed_ms() const {
  return breakdown.total() - breakdown.compute - breakdown.optimizer;
}

step_attribution attribute_step(const program& p,
                                const std::vector<std::vector<op_interval>>& intervals,
                                double hottest_share) {
  std::vector<std::vector<span>> times(p.stages.size());
  std::vector<double> ends(p.stages.size(), 0);
  for (std::size_t s = 0; s < p.stages.size(); ++s) {
    times[s].assign(p.stages[s].ops.size(), span{});
    for (const op_interval& i : intervals[s]) {
      times[s][i.op_id] = {i.start_us, i.end_us};
      ends[s] = std::max(ends[s], i.end_us);
    }
  }
  const int critical = static_cast<int>(std::max_element(ends.begin(), ends.end()) - ends.begin());
  step_attribution out = attributor(p, times, critical, hottest_share).run(ends[critical]);
  out.critical_stage = critical;
  return out;
}

namespace {

// The MLP width a token meets per layer, averaged over the first `layers`: ffn_hidden_size on a
// dense layer; top-k routed experts plus the shared expert on a MoE layer (Megatron's
// num_floating_point_operations counts the experts a token is routed to).
double mlp_width(const model_spec& m, std::int64_t layers) {
  const double dense = static_cast<double>(m.ffn_hidden);
  if (!m.moe.enabled() || layers <= 0) return dense;
  const double moe = static_cast<double>(m.moe.topk * m.moe.ffn_hidden + m.moe.shared_ffn_hidden);
  double sum = 0;
  for (std::int64_t l = 0; l < layers; ++l) {
    const auto i = static_cast<std::size_t>(l);
    sum += i >= m.moe.layers.size() || m.moe.layers[i] ? moe : dense;
  }
  return sum / static_cast<double>(layers);
}

}  // namespace

namespace {

// Megatron's MLA attention term per token (num_floating_point_operations with
// multi_latent_attention): the down- and up-projections with their norms, the rotary key, the
// output projection and the causal core, QK^T qk_dim wide and PV v_dim wide over `keys` keys.
double mla_attention_flops(const model_spec& m, double keys) {
  const mla_shape& a = m.mla;
  const double h = static_cast<double>(m.hidden), n = static_cast<double>(m.heads);
  const double qk = static_cast<double>(m.qk_dim()), v = static_cast<double>(m.v_dim());
  const double q_lora = static_cast<double>(a.q_lora_rank);
  const double q = a.q_lora_rank > 0 ? q_lora * (h + n * qk + 1) : h * n * qk;
  const double kv = static_cast<double>(a.kv_lora_rank) *
                    (h + n * static_cast<double>(a.qk_head_dim + a.v_head_dim) + 1);
  const double rope = h * static_cast<double>(a.qk_pos_emb_head_dim);
  return 6 * (q + kv + rope + n * v * h + keys * n * qk + keys * n * v);
}

// One layer's FLOPs per token, forward and backward: attention (MLA, or GQA counted over the
// whole sequence as the dense formula does, a sliding-window layer over its window instead) and
// the MLP (dense, or the routed top-k and the shared expert).
double layer_flops_per_token(const model_spec& m, std::int64_t seq, bool windowed, bool moe) {
  const double h = static_cast<double>(m.hidden);
  const double window =
      std::min<double>(static_cast<double>(seq), static_cast<double>(m.window_size));
  double attention = 0;
  if (m.mla.enabled) {
    attention = mla_attention_flops(m, windowed ? window : 0.5 * static_cast<double>(seq));
  } else {
    const double q = static_cast<double>(m.heads * m.head_dim());
    const double keys = windowed ? window : static_cast<double>(seq);
    attention = 12 * h * q * (1.0 + static_cast<double>(m.kv_heads) / m.heads) + 12 * q * keys;
  }
  const double width =
      moe ? static_cast<double>(m.moe.topk * m.moe.ffn_hidden + m.moe.shared_ffn_hidden)
          : static_cast<double>(m.ffn_hidden);
  return attention + 12 * h * width * (m.gated_mlp ? 1.5 : 1.0);
}

// The formula with MLA, sliding windows or MTP layers, layer by layer; each MTP layer counts as
// the model's last layer plus its norms (3h) and eh projection (2h^2), and its logits again.
double special_model_flops(const model_spec& m, std::int64_t global_batch, std::int64_t seq,
                           std::int64_t layers) {
  const double h = static_cast<double>(m.hidden);
  double per_token = 0;
  for (std::int64_t l = 0; l < layers; ++l) {
    const auto i = static_cast<std::size_t>(l);
    const bool moe = m.moe.enabled() && (i >= m.moe.layers.size() || m.moe.layers[i]);
    per_token += layer_flops_per_token(m, seq, m.windowed_layer(l), moe);
  }
  const double mtp = static_cast<double>(m.mtp_num_layers);
  per_token +=
      mtp * (layer_flops_per_token(m, seq, m.windowed_layer(m.layers), m.moe.last_is_moe()) +
             6 * (3 * h + 2 * h * h));
  per_token += 6 * h * static_cast<double>(m.vocab_size) * (1 + mtp);
  return static_cast<double>(global_batch) * static_cast<double>(seq) * per_token;
}

}  // namespace

double model_flops_per_step(const model_spec& m, std::int64_t global_batch, std::int64_t seq,
                            std::int64_t layers) {
  if (m.mla.enabled || m.window_size > 0 || m.mtp_num_layers > 0)
    return special_model_flops(m, global_batch, seq, layers);
  const double h = static_cast<double>(m.hidden);
  const double q_ratio = static_cast<double>(m.heads * m.head_dim()) / h;
  const double attention =
      (1.0 + static_cast<double>(m.kv_heads) / m.heads + static_cast<double>(seq) / h) * q_ratio;
  const double mlp = mlp_width(m, layers) / h * (m.gated_mlp ? 1.5 : 1.0);
  const double logits = static_cast<double>(m.vocab_size) / (2.0 * layers * h);
  return 12.0 * static_cast<double>(global_batch) * seq * layers * h * h *
         (attention + mlp + logits);
}

}  // namespace ob
