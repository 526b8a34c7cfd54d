#include "model/cluster.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "base/json_util.hpp"

namespace ob {
namespace {

json_object sourced(const json_object& obj, const std::string& key) {
  json_object v = obj.get_object(key);
  if (v.get_string("source").empty()) v.fail("source", "must name where the value comes from");
  return v;
}
double positive(const json_object& obj, const std::string& key) {
  json_object v = sourced(obj, key);
  const double x = v.get_positive_number("value");
  v.finish();
  return x;
}
int count(const json_object& obj, const std::string& key) {
  json_object v = sourced(obj, key);
  const auto x = v.get_positive_int("value");
  v.finish();
  if (x > 1024) obj.fail(key, "expected at most 1024, got " + std::to_string(x));
  return static_cast<int>(x);
}
bool flag(const json_object& obj, const std::string& key) {
  json_object v = sourced(obj, key);
  const bool x = v.get_bool("value");
  v.finish();
  return x;
}

// NCCL's tuning model across nodes, the defaults without a cluster file (figures and sources in
// docs/CALIBRATION.md §2.6).
void nccl_network_latencies(cluster_spec& c) {
  c.net_ring_hop_us_ll = 2.7;
  c.net_ring_hop_us_ll128 = 4.0;
  c.net_ring_hop_us_simple = 14.0;
  c.net_tree_hop_us_ll = 5.0;
  c.net_tree_hop_us_ll128 = 8.5;
  c.net_tree_hop_us_simple = 14.0;
  c.proxy_post_us_ll = 1.0;
  c.proxy_post_us_ll128 = 1.0;
  c.proxy_post_us_simple = 3.0;
  c.ll_max_busbw_gbps_2_nodes = 39.0;
  c.ll_max_busbw_gbps_more = 20.4;
  c.ring_simple_plateau = 1.4;
  c.tree_bw_factor = 0.92;
  c.tree_nvlink_hop_us_ll = 0.6;
  c.tree_nvlink_hop_us_ll128 = 1.25;
  c.tree_nvlink_hop_us_simple = 4.0;
  c.tree_pattern_factor = 0.85;
}

// The optional "nccl_net_tuning" object of a cluster file; absent keys keep NCCL's defaults.
void nccl_net_tuning(const json_object& top, cluster_spec& c) {
  const std::optional<json_object> t = top.get_optional_object("nccl_net_tuning");
  if (!t) return;
  auto opt = [&](const char* key, double& out) {
    if (t->has(key)) out = positive(*t, key);
  };
  opt("proxy_post_us_ll", c.proxy_post_us_ll);
  opt("proxy_post_us_ll128", c.proxy_post_us_ll128);
  opt("proxy_post_us_simple", c.proxy_post_us_simple);
  opt("ll_max_busbw_gbps_2_nodes", c.ll_max_busbw_gbps_2_nodes);
  opt("ll_max_busbw_gbps_more", c.ll_max_busbw_gbps_more);
  opt("ring_simple_plateau", c.ring_simple_plateau);
  opt("tree_bw_factor", c.tree_bw_factor);
  opt("tree_nvlink_hop_us_ll", c.tree_nvlink_hop_us_ll);
  opt("tree_nvlink_hop_us_ll128", c.tree_nvlink_hop_us_ll128);
  opt("tree_nvlink_hop_us_simple", c.tree_nvlink_hop_us_simple);
  opt("tree_pattern_factor", c.tree_pattern_factor);
  t->finish();
}

// The optional host link (host_link_gbps) and the share of it a copy reaches each way
// ("host_link_efficiency": d2h, h2d fractions; absent: 1).
void host_link(const json_object& top, cluster_spec& c) {
  if (top.has("host_link_gbps")) c.host_link_gbps = positive(top, "host_link_gbps");
  const std::optional<json_object> e = top.get_optional_object("host_link_efficiency");
  if (!e) return;
  for (auto [key, out] : {std::pair{"d2h", &c.host_link_d2h_efficiency},
                          std::pair{"h2d", &c.host_link_h2d_efficiency}}) {
    *out = positive(*e, key);
    if (*out > 1) e->fail(key, "expected a fraction in (0, 1]");
  }
  e->finish();
}

}  // namespace

cluster_spec load_cluster(const std::string& ref, const std::string& field) {
  const std::string path = find_config("clusters", ref, field);
  const json doc = load_json_file(path);
  const json_object top(doc, path, "");
  cluster_spec c;
  nccl_network_latencies(c);
  c.name = std::filesystem::path(path).stem().string();
  top.get_string("comment", "");
  c.display_name = top.get_string("display_name");
  c.gpu = top.get_string("gpu");
  c.gpus_per_node = count(top, "gpus_per_node");
  c.nvlink_domain = c.gpus_per_node;
  // Multi-node NVLink (NVL72): several hosts share one NVLink domain.
  if (top.has("nvlink_domain"))
    set_nvlink_domain(c, count(top, "nvlink_domain"), path + ": nvlink_domain");
  c.nics_per_node = count(top, "nics_per_node");
  c.nic_gbps = positive(top, "nic_gbps");
  c.nic_efficiency = positive(top, "nic_efficiency");
  if (c.nic_efficiency > 1) top.fail("nic_efficiency", "expected a fraction in (0, 1]");
  c.rail_optimized = flag(top, "rail_optimized");
  host_link(top, c);
  json_object ring = top.get_object("net_ring_hop_us");
  c.net_ring_hop_us_ll = positive(ring, "ll");
  c.net_ring_hop_us_ll128 = positive(ring, "ll128");
  c.net_ring_hop_us_simple = positive(ring, "simple");
  ring.finish();
  json_object tree = top.get_object("net_tree_hop_us");
  c.net_tree_hop_us_ll = positive(tree, "ll");
  c.net_tree_hop_us_ll128 = positive(tree, "ll128");
  c.net_tree_hop_us_simple = positive(tree, "simple");
  tree.finish();
  nccl_net_tuning(top, c);
  top.finish();
  return c;
}

void set_nvlink_domain(cluster_spec& c, int domain, const std::string& field) {
  if (domain < c.gpus_per_node || domain % c.gpus_per_node != 0)
    throw config_error(field + " " + std::to_string(domain) +
                       ": an NVLink domain is a whole number of nodes of " +
                       std::to_string(c.gpus_per_node) + " GPUs (gpus_per_node)");
  c.nvlink_domain = domain;
}

cluster_spec default_cluster(const gpu_spec& gpu, int gpus_per_node, double nic_gbps) {
  cluster_spec c;
  c.name = "flags";
  c.gpu = gpu.name;
  c.gpus_per_node = gpus_per_node;
  c.nvlink_domain = gpus_per_node;
  c.nics_per_node = gpus_per_node;
  c.nic_gbps = nic_gbps > 0 ? nic_gbps : gpu.nic_gbps;
  // nccl-tests issue #290: 46-48 of 50 GB/s achievable on NDR; taken for any NIC.
  c.nic_efficiency = 0.94;
  c.display_name = std::to_string(gpus_per_node) + " GPUs per node, one " +
                   std::to_string(static_cast<int>(c.nic_gbps * 8)) + " Gb/s NIC per GPU";
  nccl_network_latencies(c);
  return c;
}

int rank_grid::stride(comm_group g) const {
  switch (g) {
    case comm_group::tp:
      return 1;
    case comm_group::cp:
      return tp;
    case comm_group::dp:
      return tp * cp;
    case comm_group::pp:
      return tp * cp * dp;
    case comm_group::ep:  // the expert grid's own order (expert_grid, ep_span)
      return etp;
    case comm_group::edp:  // the expert grid's data parallel ranks, etp x ep apart
      return etp * ep;
  }
  return 1;
}

int rank_grid::size(comm_group g) const {
  switch (g) {
    case comm_group::tp:
      return tp;
    case comm_group::cp:
      return cp;
    case comm_group::dp:
      return dp;
    case comm_group::pp:
      return pp;
    case comm_group::ep:
      return ep;
    case comm_group::edp:  // a stage's tp x cp x dp ranks in whole expert groups
      return std::max(1, tp * cp * dp / std::max(etp * ep, 1));
  }
  return 1;
}

group_span span_of(comm_group g, const rank_grid& grid, int domain) {
  group_span s;
  s.size = grid.size(g);
  const int stride = grid.stride(g);
  // Members sit `stride` ranks apart; a domain of `domain` consecutive ranks holds
  // domain / stride of them (at least one).
  s.ranks_per_node = std::clamp(domain / std::max(stride, 1), 1, s.size);
  s.nodes = (s.size + s.ranks_per_node - 1) / s.ranks_per_node;
  return s;
}

expert_grid::coords expert_grid::of(int rank) const {
  coords c;
  c.etp = rank % etp;
  c.ep = rank / etp % ep;
  c.edp = rank / (etp * ep) % edp;
  c.pp = rank / (etp * ep * edp);
  return c;
}

group_span ep_span(const expert_grid& g, int gpus_per_node) {
  group_span s;
  s.size = g.ep;
  s.ranks_per_node = std::clamp(gpus_per_node / std::max(g.etp, 1), 1, s.size);
  s.nodes = (s.size + s.ranks_per_node - 1) / s.ranks_per_node;
  return s;
}

int nodes_for(int ranks, const cluster_spec& cluster) {
  const int per_node = std::max(cluster.nvlink_domain, 1);
  return std::max(1, (ranks + per_node - 1) / per_node);
}

}  // namespace ob
