#pragma once
// Chrome-trace / Perfetto JSON: one process per rank (or variant), one thread track per stream.
#include <string>
#include <vector>

#include "core/executor.hpp"
#include "core/ir.hpp"

namespace ob {

class trace_writer {
 public:
  // Adds one schedule's op intervals as process `pid` named `process_name`.
  void add(const schedule& s, const std::vector<op_interval>& ops, int pid,
           const std::string& process_name);
  json to_json() const;
  void write(const std::string& path) const;  // atomic

 private:
  json events_ = json::array();
};

}  // namespace ob
