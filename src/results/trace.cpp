#include "results/trace.hpp"

#include <string>
#include <type_traits>
#include <variant>

#include "base/error.hpp"

namespace ob {

namespace {

json op_args(const op& o) {
  json args{{"op_id", o.id}, {"kind", std::string(to_string(o.kind()))}};
  if (!o.slot.empty()) args["slot"] = o.slot;
  std::visit(
      [&args](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, gemm_params>) {
          args["shape"] =
              std::to_string(x.m) + "x" + std::to_string(x.n) + "x" + std::to_string(x.k);
          args["dtype"] = std::string(to_string(x.type));
          args["sm_margin"] = x.sm_margin;
          if (x.group > 1) args["group"] = x.group;
        } else if constexpr (std::is_same_v<T, collective_params>) {
          args["op"] = std::string(to_string(x.op));
          args["bytes"] = x.bytes;
          args["group"] = std::string(to_string(x.group));
          args["group_size"] = x.group_size;
          args["ctas"] = x.ctas;
        } else if constexpr (std::is_same_v<T, p2p_params>) {
          args["bytes"] = x.bytes;
          args["send_peer"] = x.send_peer;
          args["recv_peer"] = x.recv_peer;
          args["ctas"] = x.ctas;
        } else if constexpr (std::is_same_v<T, elementwise_params>) {
          args["bytes"] = x.bytes;
          args["flops"] = x.flops;
          args["sm_margin"] = x.sm_margin;
          args["persistent"] = x.persistent;
          args["math"] = to_string(x.math);
          if (x.dropout) args["dropout"] = true;  // a fused attention kernel applying dropout
        } else if constexpr (std::is_same_v<T, delay_params>) {
          args["us"] = x.us;
          args["ctas"] = x.ctas;
        } else if constexpr (std::is_same_v<T, host_sync_params>) {
          args["bytes"] = x.bytes;
          args["device"] = x.device;
        }
      },
      o.params);
  return args;
}

}  // namespace

void trace_writer::add(const schedule& s, const std::vector<op_interval>& ops, int pid,
                       const std::string& process_name) {
  events_.push_back(
      {{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"args", {{"name", process_name}}}});
  events_.push_back(
      {{"ph", "M"}, {"name", "process_sort_index"}, {"pid", pid}, {"args", {{"sort_index", pid}}}});
  for (const stream& st : s.streams) {
    const std::string track = st.name + " (" + std::string(to_string(st.role)) + ")";
    events_.push_back({{"ph", "M"},
                       {"name", "thread_name"},
                       {"pid", pid},
                       {"tid", st.id},
                       {"args", {{"name", track}}}});
    // Perfetto orders tracks by this index: keep creation order (it decides hardware queues).
    events_.push_back({{"ph", "M"},
                       {"name", "thread_sort_index"},
                       {"pid", pid},
                       {"tid", st.id},
                       {"args", {{"sort_index", st.id}}}});
  }
  for (const op_interval& iv : ops) {
    if (iv.op_id < 0 || iv.op_id >= static_cast<int>(s.ops.size()))
      throw runtime_failure("trace: schedule '" + s.name + "' has no op " +
                            std::to_string(iv.op_id));
    const op& o = s.ops[iv.op_id];
    events_.push_back({{"ph", "X"},
                       {"name", o.name},
                       {"cat", std::string(to_string(o.kind()))},
                       {"pid", pid},
                       {"tid", o.stream},
                       {"ts", iv.start_us},
                       {"dur", iv.end_us - iv.start_us},
                       {"args", op_args(o)}});
  }
}

json trace_writer::to_json() const {
  json out{{"traceEvents", events_}};
  if (!metadata_.is_null()) out["otherData"] = metadata_;
  return out;
}

void trace_writer::write(const std::string& path) const {
  write_file_atomic(path, dump_json(to_json(), 1) + "\n");
}

}  // namespace ob
