#include "cli/flag_checks.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <string>

#include "base/error.hpp"
#include "cli/harness.hpp"

namespace ob::cli {
namespace {

// Shortest readable form of a bound: 1e+07 rather than 10000000.000000.
std::string bound(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

CLI::Validator int_in(long long lo, long long hi) {
  const std::string expected =
      "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, expected](std::string& text) -> std::string {
        long long v = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v < lo ||
            v > hi)
          return expected + ", got '" + text + "'";
        return "";
      },
      std::to_string(lo) + ".." + std::to_string(hi));
}

CLI::Validator number_in(double lo, double hi, bool lo_open) {
  const std::string expected =
      "expected a number " +
      (lo_open ? "above " + bound(lo) + " and up to " : "from " + bound(lo) + " to ") + bound(hi);
  return CLI::Validator(
      [lo, hi, lo_open, expected](std::string& text) -> std::string {
        double v = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        const bool parsed = !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
        if (!parsed || !std::isfinite(v) || v < lo || (lo_open && v == lo) || v > hi)
          return expected + ", got '" + text + "'";
        return "";
      },
      (lo_open ? "(" : "[") + bound(lo) + ", " + bound(hi) + "]");
}

CLI::Validator not_empty() {
  return CLI::Validator(
      [](std::string& text) -> std::string { return text.empty() ? "expected a value" : ""; }, "");
}

// The network and NCCL flags of pair and coll (declared in cli/harness.hpp).
void add_network_flags(CLI::App& app, common_flags& f) {
  app.add_option("--cluster", f.cluster, "nodes and NICs: a name in configs/clusters/ or a file");
  app.add_option("--gpus-per-node", f.gpus_per_node,
                 "GPUs per node (one NVLink domain); more ranks than this span nodes")
      ->check(int_in(1, 1024));
  app.add_option("--nvlink-domain", f.nvlink_domain,
                 "GPUs sharing NVLink, a multiple of the node (72: an NVL72 rack); default the "
                 "cluster's")
      ->check(int_in(1, 1 << 16));
  app.add_option("--nic-gbps", f.nic_gbps, "GB/s per NIC per direction")
      ->check(number_in(0.001, 1e5));
}

namespace {

std::string flag_of(std::string_view axis) {
  std::string flag = "--" + std::string(axis);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

}  // namespace

void add_nccl_flags(CLI::App& app, common_flags& f, bool with_algo) {
  for (std::size_t i = 0; i < std::size(nccl_axis_names); ++i)
    if (with_algo || nccl_axis_names[i] != "nccl_algo")
      app.add_option(flag_of(nccl_axis_names[i]), f.nccl[i], std::string(nccl_axis_help[i]));
}

namespace {

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// A network flag given beside --cluster must say what the file says (README: pair and coll
// across nodes: the flags describe a cluster without a file).
void check_against_cluster(const common_flags& f, const cluster_spec& c) {
  if (f.gpus_per_node > 0 && f.gpus_per_node != c.gpus_per_node)
    throw config_error("--gpus-per-node " + std::to_string(f.gpus_per_node) + " and --cluster " +
                       f.cluster + " disagree: the cluster file has gpus_per_node " +
                       std::to_string(c.gpus_per_node) +
                       " (give --cluster, or --gpus-per-node and --nic-gbps without it)");
  if (f.nic_gbps > 0 && std::abs(f.nic_gbps - c.nic_gbps) > 1e-9 * c.nic_gbps)
    throw config_error("--nic-gbps " + number_text(f.nic_gbps) + " and --cluster " + f.cluster +
                       " disagree: the cluster file has nic_gbps " + number_text(c.nic_gbps) +
                       " (give --cluster, or --gpus-per-node and --nic-gbps without it)");
}

}  // namespace

cluster_spec cluster_from(const common_flags& f, const gpu_spec& gpu) {
  if (!f.cluster.empty()) {
    cluster_spec c = load_cluster(f.cluster, "--cluster");
    check_against_cluster(f, c);
    if (f.nvlink_domain > 0) set_nvlink_domain(c, f.nvlink_domain, "--nvlink-domain");
    return c;
  }
  cluster_spec c = default_cluster(gpu);
  if (f.gpus_per_node > 0) c.gpus_per_node = c.nics_per_node = c.nvlink_domain = f.gpus_per_node;
  if (f.nic_gbps > 0) c.nic_gbps = f.nic_gbps;
  if (f.nvlink_domain > 0) set_nvlink_domain(c, f.nvlink_domain, "--nvlink-domain");
  return c;
}

}  // namespace ob::cli
