#include "cuda/lowering.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "base/error.hpp"
#include "cuda/step_groups.hpp"
#include "model/collective_traits.hpp"

namespace ob::cuda {

gemm_tolerance chunked_gemm_tolerance(std::int64_t k, dtype t) {
  const float typical = std::sqrt(static_cast<float>(std::max<std::int64_t>(k, 1))) / 3.0f;
  // FP8 with fast accumulation, and the block-scaled types, differ more between algorithms than
  // bf16/fp16 do.
  const float ulps = is_low_precision(t) ? 4.0f : 2.0f;
  const float ulp = t == dtype::fp16 ? 1.0f / 1024 : 1.0f / 128;
  return {ulps * ulp, ulps * ulp * typical};
}

namespace {

// Every integer up to this is exact in the type: 2^(significand bits); 0 where the pattern
// kernels have no path for the type (kernels/pattern.hpp).
int exact_integers(dtype t) {
  switch (t) {
    case dtype::bf16:
      return 256;
    case dtype::fp16:
      return 2048;
    case dtype::fp32:
      return 1 << 24;
    case dtype::fp8:
    case dtype::mxfp8:
    case dtype::nvfp4:
      return 0;
  }
  return 0;
}

}  // namespace

bool pattern_verifiable(verify_kind kind, dtype type, int group_size, std::string* why) {
  const int exact = exact_integers(type);
  std::string reason;
  if (exact == 0)
    reason =
        "the check patterns exist for bf16, fp16 and fp32, not " + std::string(to_string(type));
  else if (kernels::pattern_max_abs(kind, group_size) > exact)
    reason = "sums over " + std::to_string(group_size) + " ranks exceed the integers " +
             std::string(to_string(type)) + " holds exactly";
  if (why) *why = reason;
  return reason.empty();
}

std::vector<a2a_transfer> all_to_all_transfers(const lowered_action& a) {
  const std::size_t shard = a.count * dtype_bytes(a.type);
  std::vector<a2a_transfer> out;
  for (int peer = 0; peer < a.member.group_size; ++peer) {
    const std::size_t at = static_cast<std::size_t>(peer) * shard;
    out.push_back({peer, at, at});
  }
  return out;
}

bool uses_launch_ordering(const variant_schedules& variants, const measure_options& m) {
  for (variant v : all_variants)
    if (m.measures(v))
      for (const op& o : variants[static_cast<int>(v)].ops)
        if (!o.waits_started.empty()) return true;
  return false;
}

namespace {

std::uint64_t seed_of(const std::string& key, int rank) {
  return std::hash<std::string>{}(key) ^ (static_cast<std::uint64_t>(rank + 1) << 48);
}

std::uint64_t comm_bytes(const op& o) {
  return o.kind() == op_kind::p2p ? o.as<p2p_params>().bytes : o.as<collective_params>().bytes;
}

dtype comm_type(const op& o) {
  return o.kind() == op_kind::p2p ? o.as<p2p_params>().type : o.as<collective_params>().type;
}

// The pattern fill has bf16, fp16 and fp32 paths; an fp8 send buffer starts random, and its
// output goes unverified (pattern_verifiable says so).
buffer_init send_init(dtype t) {
  return exact_integers(t) > 0 ? buffer_init::pattern : buffer_init::random;
}

std::vector<bool> waited_ops(const schedule& s) {
  std::vector<bool> waited(s.ops.size(), false);
  for (const op& o : s.ops)
    for (int w : o.waits) waited[static_cast<std::size_t>(w)] = true;
  return waited;
}

// A GEMM group's buffers, shared by every variant that runs the group.
struct group_buffers {
  gemm_group group;
  bool needs_ref = false;
  buffer_ref x, w, d, ref, x_scale, w_scale;
};

class lowerer {
 public:
  lowerer(const variant_schedules& variants, const measure_options& m,
          const cuda_backend_options& backend, const lowering_target& target)
      : variants_(variants), m_(m), b_(backend), t_(target) {}

  case_lowering run() {
    if (!b_.loopback()) out_.comms = comm_keys_needed(measured());
    plan_gemm_buffers();
    for (int v = 0; v < 5; ++v) lower_variant(v);
    return std::move(out_);
  }

 private:
  std::string prefix() const { return "rank " + std::to_string(t_.global_rank) + ": "; }

  std::vector<const schedule*> measured() const {
    std::vector<const schedule*> out;
    for (int v = 0; v < 5; ++v)
      if (m_.variants[static_cast<std::size_t>(v)]) out.push_back(&variants_[v]);
    return out;
  }

  buffer_ref buffer(const std::string& key, std::size_t bytes, buffer_init init, dtype type,
                    int pattern_rank = 0, std::uint8_t fill_byte = 0) {
    buffer_request r{key, bytes, init, type, 0, pattern_rank, fill_byte, false, {}};
    if (init == buffer_init::random) r.seed = seed_of(key, t_.global_rank);
    auto [it, fresh] = buffer_index_.try_emplace(key, static_cast<int>(out_.buffers.size()));
    if (fresh) {
      out_.buffers.push_back(r);
      return {it->second, 0};
    }
    buffer_request& have = out_.buffers[static_cast<std::size_t>(it->second)];
    r.bytes = have.bytes;
    r.symmetric = have.symmetric;  // set by the collective after the request
    r.window = have.window;
    if (!(r == have))
      throw runtime_failure(prefix() + "buffer '" + key +
                            "' starts differently in different variants (internal error)");
    have.bytes = std::max(have.bytes, bytes);
    return {it->second, 0};
  }

  // --- GEMMs --------------------------------------------------------------------------------
  const gemm_params* gemm_of(const op& o, int v) {
    if (o.kind() == op_kind::gemm) return &o.as<gemm_params>();
    if (o.kind() != op_kind::elementwise) return nullptr;
    auto& plans = ew_[static_cast<std::size_t>(v)];
    auto it = plans.find(o.id);
    if (it == plans.end())
      it = plans.emplace(o.id, plan_elementwise(o.as<elementwise_params>(), t_.sm_count)).first;
    return it->second.as_gemm ? &it->second.gemm : nullptr;
  }

  // Pass 1: the GEMM groups of every measured variant, their buffers and reference GEMMs.
  void plan_gemm_buffers() {
    for (int v = 0; v < 5; ++v) {
      if (!m_.variants[static_cast<std::size_t>(v)]) continue;
      auto& layout = layouts_[static_cast<std::size_t>(v)];
      layout = plan_gemm_groups(variants_[v], [&](const op& o) { return gemm_of(o, v); });
      for (const gemm_group& g : layout.groups) merge_group(g);
    }
    for (auto& [key, b] : groups_) request_group_buffers(b);
  }

  // The passes of one slot share their buffers (gemm_group::buffer_key): one reference and one
  // check per shared output.
  bool first_of_buffers(const gemm_group& g) { return referenced_.insert(g.buffer_key).second; }

  void merge_group(const gemm_group& g) {
    auto [it, fresh] = groups_.try_emplace(g.key);
    if (fresh) it->second.group = g;
    if (it->second.group.total_m != g.total_m)
      throw runtime_failure(prefix() + "GEMM group '" + g.key +
                            "' has different chunk totals in different variants");
    it->second.needs_ref = it->second.needs_ref || (m_.verify && g.chunks > 1);
  }

  // mxfp8 and nvfp4 run through cuBLASLt's block scaling, which only compute capability 10.x
  // (B200, GB200, B300, GB300) has, and only cuBLASLt 12.8 on (docs/MOE.md §15).
  void check_block_scaled(const gemm_group& g) const {
    if (scale_block(g.type) == 0) return;
    const std::string what = prefix() + "GEMM '" + g.key + "' in " + std::string(to_string(g.type));
    const std::string device = (t_.device_name.empty() ? std::string("this GPU") : t_.device_name) +
                               " (compute capability " + std::to_string(t_.cc_major) + "." +
                               std::to_string(t_.cc_minor) + ")";
    if (t_.cc_major != 10)
      throw config_error(what + " needs a compute capability 10.x GPU (B200, GB200, B300, " +
                         "GB300); this is " + device +
                         ": use --dtype fp8 or bf16, or --backend sim");
    if (!t_.block_scaled_gemms)
      throw config_error(what +
                         " needs cuBLASLt's block scaling (CUBLASLT_MATMUL_DESC_A_SCALE_MODE" +
                         ", cuBLAS >= 12.8) in the headers built against and the library loaded; " +
                         device + " has the GPU but not the library");
    if (g.k % 32 != 0)
      throw config_error(what + ": K = " + std::to_string(g.k) +
                         " must be a multiple of 32 for block-scaled operands");
  }

  // Each member's operands and output follow the previous member's (gemm_key::batch).
  std::size_t bytes_x(const gemm_group& g) const {
    return operand_bytes(g.type, g.total_m * g.k) * static_cast<std::size_t>(g.members);
  }
  std::size_t bytes_w(const gemm_group& g) const {
    return operand_bytes(g.type, g.n * g.k) * static_cast<std::size_t>(g.members);
  }
  // Scales of X for every chunk: 128 rows more than the total, so a chunk that starts inside a
  // 128-row tile still finds its padded tiles (lower_gemm rounds its start down to one).
  std::size_t bytes_x_scale(const gemm_group& g) const {
    const std::int64_t rows = g.total_m + (g.chunks > 1 ? 128 : 0);
    return scale_bytes(g.type, rows, g.k) * static_cast<std::size_t>(g.members);
  }

  void request_group_buffers(group_buffers& b) {
    const gemm_group& g = b.group;
    check_block_scaled(g);
    const auto out_bytes = static_cast<std::size_t>(g.total_m * g.n) * dtype_bytes(g.out) *
                           static_cast<std::size_t>(g.members);
    const dtype out_type = g.out;
    const std::string& key = g.buffer_key;
    b.x = buffer(key + "|x", bytes_x(g), buffer_init::random, g.type);
    b.w = buffer(key + "|w", bytes_w(g), buffer_init::random, g.type);
    // An accumulating GEMM reads D before it writes it: start it from finite values.
    b.d = buffer(key + "|d", out_bytes, g.accumulate ? buffer_init::random : buffer_init::none,
                 out_type);
    if (scale_block(g.type) > 0) {
      b.x_scale = scale_buffer(key + "|x_scale", bytes_x_scale(g), g.type);
      b.w_scale =
          scale_buffer(key + "|w_scale",
                       scale_bytes(g.type, g.n, g.k) * static_cast<std::size_t>(g.members), g.type);
    }
    // An accumulating GEMM's D depends on every earlier run into it: no reference to compare.
    b.needs_ref = b.needs_ref && first_of_buffers(g) && !g.accumulate;
    if (!b.needs_ref) return;
    b.ref = buffer(key + "|ref", out_bytes, buffer_init::none, out_type);
    gemm_key ref{g.total_m, g.n, g.k, g.type, 0};
    ref.batch = g.members;
    out_.references.push_back({key, ref, b.x, b.w, b.ref, b.x_scale, b.w_scale});
  }

  // Every scale 1.0: the GEMM reads the scales' bytes as a trained model's would; their values
  // do not change its time.
  buffer_ref scale_buffer(const std::string& key, std::size_t bytes, dtype t) {
    return buffer(key, bytes, buffer_init::constant, t, 0,
                  t == dtype::mxfp8 ? ue8m0_one : ue4m3_one);
  }

  void lower_gemm(const op& o, const gemm_params& g, int v, lowered_action& a,
                  lowered_variant& lv) {
    const auto& layout = layouts_[static_cast<std::size_t>(v)];
    const gemm_slice& sl = layout.slices.at(o.id);
    const gemm_group& grp = layout.groups[static_cast<std::size_t>(sl.group)];
    const group_buffers& b = groups_.at(grp.key);
    const int target = sm_target_for(g.sm_margin, t_.sm_count);
    const auto row = static_cast<std::size_t>(sl.row_offset);
    const std::size_t x_off = operand_bytes(g.type, sl.row_offset * g.k);
    const std::size_t out_elem = dtype_bytes(grp.out);
    const std::size_t d_off = row * static_cast<std::size_t>(g.n) * out_elem;
    // A grouped GEMM's later members start one member further on: their alignment counts too.
    const std::size_t later = grp.members > 1 ? 1 : 0;
    const std::size_t x_step = later * operand_bytes(g.type, grp.total_m * g.k);
    const std::size_t w_step = later * operand_bytes(g.type, g.n * g.k);
    const std::size_t d_step = later * static_cast<std::size_t>(grp.total_m * g.n) * out_elem;
    a.kind = action_kind::gemm;
    a.gemm = {g.m,    g.n,    g.k,
              g.type, target, offset_alignment(x_off | x_step, w_step, d_off | d_step)};
    a.gemm.batch = grp.members;
    a.gemm.accumulate = grp.accumulate;
    if (grp.accumulate) a.gemm.accumulate_type = grp.out;
    a.x = {b.x.buffer, x_off};
    a.w = b.w;
    a.dst = {b.d.buffer, d_off};
    if (b.x_scale) {
      // The chunk's scales start at the 128-row tile holding its first row.
      a.x_scale = {b.x_scale.buffer, scale_bytes(g.type, sl.row_offset / 128 * 128, g.k)};
      a.w_scale = b.w_scale;
    }
    a.what = "gemm " + to_string(a.gemm);
    if (grp.chunks > 1 && b.needs_ref && checked_groups_.insert(grp.buffer_key).second)
      lv.verifies.push_back(close_check(o, grp, b));
  }

  verify_job close_check(const op& o, const gemm_group& grp, const group_buffers& b) const {
    verify_job j;
    j.kind = check_kind::close;
    j.op = o.slot.empty() ? o.name : o.slot;
    j.out = b.d;
    j.out_bytes = out_.buffer(b.d).bytes;
    j.ref = b.ref;
    j.n = static_cast<std::size_t>(grp.total_m * grp.n);
    j.type = grp.out;
    j.tol = chunked_gemm_tolerance(grp.k, grp.type);
    return j;
  }

  // --- other compute ------------------------------------------------------------------------
  void lower_layernorm(const elementwise_plan& ep, const std::string& key, lowered_action& a) {
    const std::size_t bytes = static_cast<std::size_t>(ep.elems) * dtype_bytes(elementwise_type);
    a.kind = action_kind::layernorm;
    a.count = ep.elems;
    a.repeat = ep.repeat;
    a.row_elems = ep.row_elems;
    a.ctas = ep.ctas;
    a.src = buffer(key + "|ln_in", bytes, buffer_init::random, elementwise_type);
    a.dst = buffer(key + "|ln_out", bytes, buffer_init::none, elementwise_type);
    a.what = "layernorm on " + std::to_string(ep.ctas) + " CTAs" +
             (ep.repeat > 1 ? ", " + std::to_string(ep.repeat) + " passes" : "");
  }

  static void lower_delay(const delay_params& d, lowered_action& a) {
    a.kind = action_kind::delay;
    a.us = d.us;
    a.ctas = std::max(1, d.ctas);
    a.what = "delay " + std::to_string(d.us) + " us";
  }

  // --- communication ------------------------------------------------------------------------
  // Loopback: same bytes, same CTAs, one GPU: SM, HBM and queue contention without NVLink.
  void lower_loopback(const op& o, const std::string& key, lowered_action& a, lowered_variant& lv) {
    const auto bytes = static_cast<std::size_t>(comm_bytes(o));
    a.type = comm_type(o);
    a.ctas = proxy_ctas(o, b_.default_ctas);
    a.kind = a.ctas > 0 ? action_kind::proxy_copy : action_kind::ce_copy;
    a.bytes = bytes;
    a.src = buffer(key + "|src", bytes, buffer_init::random, a.type);
    a.dst = buffer(key + "|dst", bytes, buffer_init::none, a.type);
    a.what = a.ctas > 0 ? "copy proxy, " + std::to_string(a.ctas) + " CTAs" : "copy-engine memcpy";
    if (!m_.verify) return;
    verify_job j;
    j.kind = check_kind::same_bytes;
    j.op = o.name;
    j.out = a.dst;
    j.out_bytes = bytes;
    j.ref = a.src;
    j.n = bytes;
    lv.verifies.push_back(j);
  }

  void join_group(const op& o, lowered_action& a) const {
    if (!t_.grid) {
      a.comm = comm_key_for(o);
      // Which ranks form a level depends on the step's rank grid (cuda/step_groups.hpp).
      if (a.comm.level_stride > 0)
        throw config_error("op '" + o.name + "' runs over a level of a hierarchical " +
                           std::string(to_string(a.comm.group)) +
                           " group, which only a training step (overlap-bench step) lowers");
      a.member =
          comm_membership(a.comm.group, a.comm.group_size, t_.global_rank, t_.world_size, o.name);
      return;
    }
    const rank_grid& g = *t_.grid;
    a.comm = step_comm_key(o, stage_of(g, t_.global_rank), g.pp);
    a.member = step_membership(a.comm, g, t_.global_rank, o.name);
    if (a.member.color < 0)
      throw runtime_failure(prefix() + "op '" + o.name + "' of this rank's stage needs " +
                            to_string(a.comm) + ", which does not hold this rank (internal error)");
  }

  void comm_buffers(const std::string& key, std::uint64_t send_elems, std::uint64_t recv_elems,
                    lowered_action& a) {
    const std::size_t size = dtype_bytes(a.type);
    a.src = buffer(key + "|send", send_elems * size, send_init(a.type), a.type, a.member.position);
    a.dst = buffer(key + "|recv", recv_elems * size, buffer_init::none, a.type);
  }

  void lower_collective(const op& o, const std::string& key, lowered_action& a,
                        lowered_variant& lv) {
    const auto& cp = o.as<collective_params>();
    check_collective_nccl(cp, nullptr, prefix() + "collective '" + o.name + "'");
    const collective_traits& traits = traits_of(cp.op);
    // NCCL moves block-scaled data as bytes (ncclUint8); it cannot add them.
    if (scale_block(cp.type) > 0 && traits.redop != "none")
      throw config_error(prefix() + "collective '" + o.name +
                         "': " + std::string(to_string(cp.op)) + " cannot reduce " +
                         std::string(to_string(cp.type)) + " data; reductions run in bf16 or fp32");
    join_group(o, a);
    const collective_counts c = traits.counts(cp.bytes, a.member.group_size, cp.type);
    a.kind = action_kind::nccl_collective;
    a.coll = cp.op;
    a.type = cp.type;
    a.count = c.per_rank;
    comm_buffers(key, c.send_elems, c.recv_elems, a);
    if (a.comm.symmetric) {
      // Both buffers of the collective go into its communicator's symmetric window.
      for (const buffer_ref r : {a.src, a.dst}) {
        buffer_request& b = out_.buffers.at(static_cast<std::size_t>(r.buffer));
        b.symmetric = true;
        b.window = a.comm;
      }
    }
    a.what = std::string(to_string(cp.op)) + " over " + std::string(to_string(cp.group)) + " (" +
             std::to_string(a.member.group_size) + " ranks)";
    add_pattern_check(o, a, {traits.verify, a.member.group_size, a.member.position, 0, a.count},
                      c.recv_elems, lv);
  }

  // A pipeline transfer: one side of a link (sender at position 0, receiver at 1). Only the
  // receiver has an output to check: the sender's pattern.
  void lower_transfer(const op& o, const std::string& key, lowered_action& a, lowered_variant& lv) {
    const auto& pp = o.as<p2p_params>();
    join_group(o, a);
    const bool sends = pp.direction == p2p_direction::send;
    a.kind = action_kind::nccl_p2p;
    a.direction = pp.direction;
    a.type = pp.type;
    a.count = pp.bytes / dtype_bytes(pp.type);
    a.send_peer = a.recv_peer = 1 - a.member.position;
    const std::size_t bytes = a.count * dtype_bytes(a.type);
    if (sends) {
      a.src = buffer(key + "|send", bytes, send_init(a.type), a.type, a.member.position);
      a.what = "send to stage " +
               std::to_string(ring_peer(a.comm.link_from, a.comm.link_step, t_.grid->pp));
      return;
    }
    a.dst = buffer(key + "|recv", bytes, buffer_init::none, a.type);
    a.what = "receive from stage " + std::to_string(a.comm.link_from);
    add_pattern_check(o, a, {verify_kind::recv_from, 2, a.member.position, a.recv_peer, a.count},
                      a.count, lv);
  }

  void lower_p2p(const op& o, const std::string& key, lowered_action& a, lowered_variant& lv) {
    const auto& pp = o.as<p2p_params>();
    if (pp.direction != p2p_direction::exchange) {
      if (!t_.grid)
        throw config_error("op '" + o.name + "': a one-way pipeline transfer runs only in a " +
                           "training step (overlap-bench step)");
      return lower_transfer(o, key, a, lv);
    }
    join_group(o, a);
    // Checked here, before any rank calls NCCL: a mismatch is a config error on every rank
    // rather than a hang.
    if (ring_peer(0, pp.send_peer + pp.recv_peer, pp.group_size) != 0)
      throw config_error("op '" + o.name + "': send_peer " + std::to_string(pp.send_peer) +
                         " and recv_peer " + std::to_string(pp.recv_peer) +
                         " do not form a ring (their sum must be 0 modulo the group)");
    const int position = a.member.position, size = a.member.group_size;
    a.kind = action_kind::nccl_p2p;
    a.type = pp.type;
    a.count = pp.bytes / dtype_bytes(pp.type);
    a.send_peer = ring_peer(position, pp.send_peer, size);
    a.recv_peer = ring_peer(position, pp.recv_peer, size);
    comm_buffers(key, a.count, a.count, a);
    a.what = "send/recv (to " + std::to_string(a.send_peer) + ", from " +
             std::to_string(a.recv_peer) + ")";
    add_pattern_check(o, a, {verify_kind::recv_from, size, position, a.recv_peer, a.count}, a.count,
                      lv);
  }

  void add_pattern_check(const op& o, const lowered_action& a, const kernels::verify_spec& spec,
                         std::uint64_t out_elems, lowered_variant& lv) {
    if (!m_.verify) return;
    std::string why;
    if (!pattern_verifiable(spec.kind, a.type, spec.group_size, &why)) {
      // Said, so that its #wrong of 0 is not read as a check that passed.
      if (unverified_.insert(o.name).second)
        out_.warnings.push_back("op '" + o.name + "' (" + a.what + ", " +
                                std::string(to_string(a.type)) + ") is not verified: " + why);
      return;
    }
    verify_job j;
    j.kind = check_kind::pattern;
    j.op = o.name;
    j.out = a.dst;
    j.out_bytes = static_cast<std::size_t>(out_elems) * dtype_bytes(a.type);
    j.type = a.type;
    j.spec = spec;
    lv.verifies.push_back(j);
  }

  // --- variants -----------------------------------------------------------------------------
  int stream_set_for(const schedule& s) {
    std::string sig;
    for (const stream& st : s.streams)
      sig +=
          st.name + "/" + std::string(to_string(st.role)) + "/" + std::to_string(st.priority) + ";";
    for (std::size_t i = 0; i < out_.stream_sets.size(); ++i)
      if (out_.stream_sets[i].signature == sig) return static_cast<int>(i);
    stream_set_request set;
    set.signature = sig;
    for (const stream& st : s.streams) set.names.push_back(st.name);
    set.priorities = map_stream_priorities(s, t_.priority_least, t_.priority_greatest);
    out_.stream_sets.push_back(std::move(set));
    return static_cast<int>(out_.stream_sets.size() - 1);
  }

  lowered_action lower_op(const op& o, int v, const std::string& key, lowered_variant& lv) {
    lowered_action a;
    a.op_id = o.id;
    a.name = o.name;
    a.stream = o.stream;
    a.waits = o.waits;
    a.is_comm = o.is_comm();
    // A per-layer CUDA graph scope is the simulator's (docs/MOE.md §17): run eagerly here, the
    // result would carry a scope it did not run.
    if (o.graphed)
      throw config_error(prefix() + "op '" + o.name +
                         "': cuda_graph_scope is simulated only; the CUDA backend runs every op "
                         "eagerly (leave --cuda-graph-scope out)");
    switch (o.kind()) {
      case op_kind::gemm:
      case op_kind::elementwise:
        if (const gemm_params* g = gemm_of(o, v))
          lower_gemm(o, *g, v, a, lv);
        else
          lower_layernorm(ew_[static_cast<std::size_t>(v)].at(o.id), key, a);
        break;
      case op_kind::delay:
        lower_delay(o.as<delay_params>(), a);
        break;
      case op_kind::host_sync:
        a.kind = action_kind::host_sync;
        a.bytes = o.as<host_sync_params>().bytes;
        a.what = o.as<host_sync_params>().device ? "device synchronize" : "host sync";
        break;
      case op_kind::collective:
      case op_kind::p2p:
        if (b_.loopback())
          lower_loopback(o, key, a, lv);
        else if (o.kind() == op_kind::p2p)
          lower_p2p(o, key, a, lv);
        else
          lower_collective(o, key, a, lv);
        break;
    }
    return a;
  }

  void lower_variant(int v) {
    lowered_variant& lv = out_.variants[static_cast<std::size_t>(v)];
    lv.v = all_variants[v];
    lv.measured = m_.variants[static_cast<std::size_t>(v)];
    if (!lv.measured) return;
    const schedule& s = variants_[v];
    lv.stream_set = stream_set_for(s);
    lv.op_count = s.ops.size();
    const std::vector<std::string> keys = buffer_keys(s);
    const std::vector<bool> waited = waited_ops(s);
    checked_groups_.clear();
    for (const op& o : s.ops) {
      lowered_action a = lower_op(o, v, keys[static_cast<std::size_t>(o.id)], lv);
      a.signals = waited[static_cast<std::size_t>(o.id)];
      lv.actions.push_back(std::move(a));
    }
  }

  const variant_schedules& variants_;
  const measure_options& m_;
  const cuda_backend_options& b_;
  const lowering_target& t_;
  case_lowering out_;
  std::map<std::string, int> buffer_index_;
  std::array<std::map<int, elementwise_plan>, 5> ew_;
  std::array<gemm_layout, 5> layouts_;
  std::map<std::string, group_buffers> groups_;
  std::set<std::string> checked_groups_;  // per variant: one close check per chunked group
  std::set<std::string> referenced_;      // GEMM buffer keys with a reference GEMM
  std::set<std::string> unverified_;      // ops already warned about
};

}  // namespace

case_lowering lower_case(const variant_schedules& variants, const measure_options& m,
                         const cuda_backend_options& backend, const lowering_target& target) {
  return lowerer(variants, m, backend, target).run();
}

case_lowering lower_stage(const program_variants& program, const measure_options& m,
                          const cuda_backend_options& backend, const lowering_target& target) {
  if (!target.grid) throw runtime_failure("lower_stage needs the step's layout (internal error)");
  const int stage = stage_of(*target.grid, target.global_rank);
  const variant_schedules stages = stage_schedules(program, m, stage);
  case_lowering out = lowerer(stages, m, backend, target).run();
  out.grid = target.grid;
  if (!backend.loopback()) out.comms = program_comm_keys(program, m);
  return out;
}

std::size_t lowered_bytes(const case_lowering& low) {
  std::size_t total = 0;
  for (const buffer_request& b : low.buffers) total += std::max<std::size_t>(b.bytes, 16);
  return total;
}

}  // namespace ob::cuda
