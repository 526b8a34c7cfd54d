#pragma once
// Chrome-trace / Perfetto JSON: one process per rank (or variant), one thread track per stream.
#include <string>
#include <vector>

#include "model/executor.hpp"
#include "model/ir.hpp"

namespace ob {

class trace_writer {
 public:
  // Adds one schedule's op intervals as process `pid` named `process_name`.
  void add(const schedule& s, const std::vector<op_interval>& ops, int pid,
           const std::string& process_name);
  // Trace-level facts (Perfetto shows "otherData"): backend, and "simulated": true for the sim,
  // so a trace is never mistaken for a measurement.
  void set_metadata(json metadata) { metadata_ = std::move(metadata); }
  json to_json() const;
  void write(const std::string& path) const;  // atomic

 private:
  json events_ = json::array();
  json metadata_;
};

}  // namespace ob
