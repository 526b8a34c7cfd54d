#include "core/ir.hpp"

#include <algorithm>
#include <functional>
#include <set>

#include "core/error.hpp"

namespace ob {

std::size_t dtype_bytes(dtype v) { return v == dtype::fp8 ? 1 : 2; }

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

schedule derive_variant(const schedule& planned, variant v) {
  auto keep = [v](const op& o) {
    switch (v) {
      case variant::compute_only:
      case variant::compute_with_margin:
        return !o.is_comm();
      case variant::comm_only:
        return o.is_comm();
      case variant::serial:
      case variant::overlapped:
        return true;
    }
    return true;
  };
  if (v == variant::overlapped) return planned;

  schedule out;
  out.name = planned.name + "/" + std::string(to_string(v));
  std::vector<int> remap(planned.ops.size(), -1);
  // Each dropped op's nearest kept ancestors (through its waits and its stream predecessor), so
  // a kept op that waited on a dropped one still waits on what the dropped one waited on.
  std::vector<std::set<int>> kept_ancestors(planned.ops.size());
  std::vector<int> last_on_stream(planned.streams.size(), -1);

  if (v == variant::serial) {
    out.add_stream("serial", stream_role::compute, 0);
  } else {
    out.streams = planned.streams;
  }
  for (const op& o : planned.ops) {
    std::set<int> deps;  // planned ids this op depends on
    for (int w : o.waits) deps.insert(w);
    if (last_on_stream[o.stream] >= 0) deps.insert(last_on_stream[o.stream]);
    last_on_stream[o.stream] = o.id;
    std::set<int> kept_deps;
    for (int d : deps) {
      if (remap[d] >= 0)
        kept_deps.insert(d);
      else
        kept_deps.insert(kept_ancestors[d].begin(), kept_ancestors[d].end());
    }
    if (!keep(o)) {
      kept_ancestors[o.id] = std::move(kept_deps);
      continue;
    }
    op copy = o;
    if (v == variant::serial) copy.stream = 0;
    if (v == variant::compute_only) {
      if (copy.kind() == op_kind::gemm) copy.as<gemm_params>().sm_target = 0;
      if (copy.kind() == op_kind::elementwise) copy.as<elementwise_params>().sm_margin = 0;
    }
    std::vector<int> waits;
    for (int d : kept_deps) {
      const op& dep = planned.ops[d];
      const int new_stream = v == variant::serial ? 0 : dep.stream;
      // Same-stream order is implicit; only cross-stream dependencies become events.
      if (new_stream != copy.stream) waits.push_back(remap[d]);
    }
    std::sort(waits.begin(), waits.end());
    // A launch-ordering edge matters only while its target still runs on another stream.
    std::vector<int> started;
    for (int d : o.waits_started)
      if (remap[d] >= 0 && v != variant::serial && planned.ops[d].stream != copy.stream)
        started.push_back(remap[d]);
    remap[o.id] = out.add_op(copy.name, copy.stream, copy.params, std::move(waits), copy.slot);
    out.ops.back().waits_started = std::move(started);
  }
  // Streams that carry no op are kept: stream creation order decides hardware queues.
  return out;
}

}  // namespace ob
