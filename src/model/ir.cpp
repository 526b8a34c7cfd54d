#include "model/ir.hpp"

#include <algorithm>
#include <functional>
#include <set>

#include "base/error.hpp"

namespace ob {

std::size_t dtype_bytes(dtype v) {
  switch (v) {
    case dtype::fp8:
    case dtype::mxfp8:
    case dtype::nvfp4:
      return 1;
    case dtype::fp32:
      return 4;
    default:
      return 2;
  }
}

double dtype_operand_bytes(dtype v) {
  // One 8-bit scale per block: 32 elements for MXFP8, 16 for NVFP4 (OCP MX spec; NVIDIA's
  // NVFP4 format), so the scales add 1/32 and 1/16 byte per element.
  switch (v) {
    case dtype::mxfp8:
      return 1.0 + 1.0 / 32;
    case dtype::nvfp4:
      return 0.5 + 1.0 / 16;
    default:
      return static_cast<double>(dtype_bytes(v));
  }
}

bool is_low_precision(dtype v) { return v == dtype::fp8 || v == dtype::mxfp8 || v == dtype::nvfp4; }

int schedule::add_stream(std::string stream_name, stream_role role, int priority) {
  const int id = static_cast<int>(streams.size());
  streams.push_back({id, std::move(stream_name), role, priority});
  return id;
}

int schedule::add_op(std::string op_name, int stream_id, op_params params, std::vector<int> waits,
                     std::string slot) {
  const int id = static_cast<int>(ops.size());
  op o;
  o.id = id;
  o.name = std::move(op_name);
  o.stream = stream_id;
  o.waits = std::move(waits);
  o.params = std::move(params);
  o.slot = std::move(slot);
  ops.push_back(std::move(o));
  return id;
}

void schedule::validate() const {
  for (std::size_t i = 0; i < streams.size(); ++i)
    if (streams[i].id != static_cast<int>(i))
      throw config_error("schedule '" + name + "': stream ids must equal their index");
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const op& o = ops[i];
    const std::string where = "schedule '" + name + "': op '" + o.name + "'";
    if (o.id != static_cast<int>(i)) throw config_error(where + ": id must equal its index");
    if (o.stream < 0 || o.stream >= static_cast<int>(streams.size()))
      throw config_error(where + ": unknown stream " + std::to_string(o.stream));
    for (const auto* list : {&o.waits, &o.waits_started})
      for (int w : *list)
        if (w < 0 || w >= o.id)
          throw config_error(where + ": waits on op " + std::to_string(w) +
                             ", which is not enqueued before it");
  }
}

double schedule::gemm_flops() const {
  double total = 0;
  for (const op& o : ops)
    if (o.kind() == op_kind::gemm) total += o.as<gemm_params>().flops();
  return total;
}

namespace {

bool kept_in(variant v, const op& o) {
  switch (v) {
    case variant::compute_only:
    case variant::compute_with_margin:
      return !o.is_comm();
    case variant::comm_only:
      return o.is_comm();
    case variant::serial:
    case variant::overlapped:
      break;
  }
  return true;
}

// The op as the variant runs it: one stream for serial, all SMs and no LayerNorm margin for
// compute-only.
op adapted(const op& o, variant v) {
  op copy = o;
  if (v == variant::serial) copy.stream = 0;
  if (v == variant::compute_only) {
    if (copy.kind() == op_kind::gemm) copy.as<gemm_params>().sm_margin = 0;
    if (copy.kind() == op_kind::elementwise) copy.as<elementwise_params>().sm_margin = 0;
  }
  return copy;
}

// Drops the ops a variant does not keep and rewires the dependencies of the rest: each dropped
// op's nearest kept ancestors (through its waits and its stream predecessor) stand in for it, so
// a kept op that waited on a dropped one still waits on what the dropped one waited on.
class variant_builder {
 public:
  variant_builder(const schedule& planned, variant v)
      : planned_(planned),
        v_(v),
        remap_(planned.ops.size(), -1),
        kept_ancestors_(planned.ops.size()),
        last_on_stream_(planned.streams.size(), -1) {
    out_.name = planned.name + "/" + std::string(to_string(v));
    out_.eager_framework = planned.eager_framework;  // the same host issues every variant
    // Streams that carry no op are kept: stream creation order decides hardware queues.
    if (v == variant::serial)
      out_.add_stream("serial", stream_role::compute, 0);
    else
      out_.streams = planned.streams;
  }

  schedule build() {
    for (const op& o : planned_.ops) add(o);
    return std::move(out_);
  }

 private:
  // Keeps only the latest op of each stream: a stream's ops complete in order, so waiting on its
  // latest op implies its earlier ones (and keeps the sets small on long schedules).
  void keep_latest(std::vector<int>& set, int id) const {
    const int stream = planned_.ops[id].stream;
    for (int& x : set)
      if (planned_.ops[x].stream == stream) {
        x = std::max(x, id);
        return;
      }
    set.push_back(id);
  }

  // Kept planned ids this op depends on, directly or through dropped ops, sorted.
  std::vector<int> kept_deps(const op& o) {
    std::vector<int> kept;
    const auto take = [&](int d) {
      if (remap_[d] >= 0)
        keep_latest(kept, d);
      else
        for (int a : kept_ancestors_[d]) keep_latest(kept, a);
    };
    for (int w : o.waits) take(w);
    if (last_on_stream_[o.stream] >= 0) take(last_on_stream_[o.stream]);
    last_on_stream_[o.stream] = o.id;
    std::sort(kept.begin(), kept.end());
    return kept;
  }

  void add(const op& o) {
    std::vector<int> deps = kept_deps(o);
    if (!kept_in(v_, o)) {
      kept_ancestors_[o.id] = std::move(deps);
      return;
    }
    const op copy = adapted(o, v_);
    std::vector<int> waits;
    for (int d : deps) {
      const int dep_stream = v_ == variant::serial ? 0 : planned_.ops[d].stream;
      // Same-stream order is implicit; only cross-stream dependencies become events.
      if (dep_stream != copy.stream) waits.push_back(remap_[d]);
    }
    std::sort(waits.begin(), waits.end());
    // A launch-ordering edge matters only while its target still runs on another stream.
    std::vector<int> started;
    for (int d : o.waits_started)
      if (remap_[d] >= 0 && v_ != variant::serial && planned_.ops[d].stream != copy.stream)
        started.push_back(remap_[d]);
    remap_[o.id] = out_.add_op(copy.name, copy.stream, copy.params, std::move(waits), copy.slot);
    out_.ops.back().waits_started = std::move(started);
    out_.ops.back().host_ops = copy.host_ops;  // the host still issues the framework's ops
    out_.ops.back().graphed = copy.graphed;
  }

  const schedule& planned_;
  const variant v_;
  schedule out_;
  std::vector<int> remap_;
  std::vector<std::vector<int>> kept_ancestors_;
  std::vector<int> last_on_stream_;
};

}  // namespace

schedule derive_variant(const schedule& planned, variant v) {
  if (v == variant::overlapped) return planned;
  return variant_builder(planned, v).build();
}

}  // namespace ob
