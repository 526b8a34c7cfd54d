#include "sim/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iomanip>
#include <iterator>
#include <sstream>

#include "base/enum_names.hpp"
#include "base/error.hpp"
#include "base/json_util.hpp"
#include "base/units.hpp"
#include "model/cluster.hpp"
#include "model/collective_traits.hpp"
#include "sim/nccl_model.hpp"
#include "sim/simulator.hpp"

namespace ob::sim {

namespace {

double op_us(const op_params& params, const gpu_spec& gpu, const cluster_spec* net = nullptr) {
  schedule s;
  s.name = "calibrate";
  s.add_stream("s", stream_role::compute, 0);
  s.add_op("op", 0, params);
  sim_options o;
  o.cluster = net;
  const sim_result r = simulate(s, gpu, o);
  return r.ops[0].end_us - r.ops[0].start_us;
}

double gemm_tflops(const gemm_params& g, const gpu_spec& gpu) {
  return g.flops() / op_us(g, gpu) / 1e6;
}

int domain_of(const coll_point& p) { return p.nvlink_domain > 0 ? p.nvlink_domain : 8; }

collective_params as_params(const coll_point& p, const gpu_spec& gpu) {
  collective_params c;
  c.op = p.op;
  c.bytes = p.bytes;
  c.group_size = p.ranks;
  c.algorithm = p.algorithm;
  // nccl-tests across nodes: 8 GPUs an NVLink domain, unless the input says (`# nvlink-domain`).
  const int domain = domain_of(p);
  c.nodes = std::max(1, (p.ranks + domain - 1) / domain);
  (void)gpu;
  return c;
}

// The cluster a point ran on: NVLink domains of its size, one NIC per GPU (the GPU file's).
cluster_spec cluster_of(const coll_point& p, const gpu_spec& gpu) {
  return default_cluster(gpu, domain_of(p));
}

double busbw(const coll_point& p, double us) {
  return traits_of(p.op).bytes_moved(static_cast<double>(p.bytes), p.ranks) / us / 1e3;
}

double coll_busbw(const coll_point& p, const gpu_spec& gpu) {
  const cluster_spec net = cluster_of(p, gpu);
  return busbw(p, op_us(as_params(p, gpu), gpu, &net));
}

// Sum of squared log errors over the points `use` selects.
double loss(const calib_points& pts, const gpu_spec& gpu,
            const std::function<bool(const gemm_point&)>& use_gemm,
            const std::function<bool(const coll_point&)>& use_coll) {
  double sum = 0;
  for (const gemm_point& g : pts.gemms)
    if (use_gemm(g)) sum += std::pow(std::log(gemm_tflops(g.shape, gpu) / g.tflops), 2);
  for (const coll_point& c : pts.colls)
    if (use_coll(c)) sum += std::pow(std::log(coll_busbw(c, gpu) / busbw(c, c.time_us)), 2);
  return sum;
}

struct constant_def {
  std::string key;
  double gpu_spec::*member;
  double lo, hi;
  std::function<bool(const gemm_point&)> gemm;
  std::function<bool(const coll_point&)> coll;
};

bool single_node(const coll_point& c) { return c.ranks <= domain_of(c); }
bool is_nvls(const coll_point& c) { return c.algorithm == "nvls"; }

std::vector<constant_def> definitions(const gpu_spec& gpu) {
  auto none_g = [](const gemm_point&) { return false; };
  auto none_c = [](const coll_point&) { return false; };
  auto of_type = [](dtype t) { return [t](const gemm_point& g) { return g.shape.type == t; }; };
  std::vector<constant_def> d = {
      {"sim.gemm_efficiency.bf16", &gpu_spec::gemm_efficiency_bf16, 0.3, 1.0, of_type(dtype::bf16),
       none_c},
      {"sim.gemm_efficiency.fp16", &gpu_spec::gemm_efficiency_fp16, 0.3, 1.0, of_type(dtype::fp16),
       none_c},
      {"sim.gemm_setup_us", &gpu_spec::gemm_setup_us, 0.1, 30,
       [](const gemm_point&) { return true; }, none_c},
      {"sim.nccl_link_efficiency", &gpu_spec::nccl_link_efficiency, 0.3, 1.0, none_g,
       [](const coll_point& c) { return single_node(c) && !is_nvls(c); }},
      {"sim.nccl_fill_fraction", &gpu_spec::nccl_fill_fraction, 0.01, 3.0, none_g, single_node}};
  if (gpu.supports(dtype::fp8))
    d.push_back({"sim.gemm_efficiency.fp8", &gpu_spec::gemm_efficiency_fp8, 0.3, 1.0,
                 of_type(dtype::fp8), none_c});
  if (gpu.has_nvls()) {
    d.push_back({"sim.nvls.bw_factor", &gpu_spec::nvls_bw_factor, 0.5, 2.5, none_g, is_nvls});
    d.push_back({"sim.nvls.latency_us", &gpu_spec::nvls_latency_us, 1, 150, none_g, is_nvls});
  }
  return d;
}

// Golden-section search of `member` in [lo, hi] (the loss is unimodal in each constant).
void fit_one(const calib_points& pts, gpu_spec& gpu, const constant_def& d) {
  const double phi = (std::sqrt(5.0) - 1) / 2;
  double a = d.lo, b = d.hi;
  auto f = [&](double x) {
    gpu.*d.member = x;
    return loss(pts, gpu, d.gemm, d.coll);
  };
  double x1 = b - phi * (b - a), x2 = a + phi * (b - a);
  double f1 = f(x1), f2 = f(x2);
  for (int i = 0; i < 40 && b - a > 1e-4 * (d.hi - d.lo); ++i) {
    if (f1 < f2) {
      b = x2, x2 = x1, f2 = f1, x1 = b - phi * (b - a), f1 = f(x1);
    } else {
      a = x1, x1 = x2, f1 = f2, x2 = a + phi * (b - a), f2 = f(x2);
    }
  }
  gpu.*d.member = (a + b) / 2;
}

int governed(const calib_points& pts, const constant_def& d) {
  const auto g = std::count_if(pts.gemms.begin(), pts.gemms.end(), d.gemm);
  const auto c = std::count_if(pts.colls.begin(), pts.colls.end(), d.coll);
  return static_cast<int>(g + c);
}

std::string size_text(std::uint64_t bytes) { return format_size(bytes); }

}  // namespace

std::vector<check_row> check_points(const calib_points& pts, const gpu_spec& gpu) {
  std::vector<check_row> rows;
  for (const gemm_point& g : pts.gemms) {
    const double model = gemm_tflops(g.shape, gpu);
    const std::string members =
        g.shape.group > 1 ? std::to_string(g.shape.group) + " x " : std::string();
    rows.push_back({"gemm " + members + std::to_string(g.shape.m) + "x" +
                        std::to_string(g.shape.n) + "x" + std::to_string(g.shape.k) + " " +
                        std::string(to_string(g.shape.type)),
                    "TFLOP/s", g.where, g.tflops, model, "gemm", g.shape.flops() / g.tflops / 1e6,
                    g.shape.flops() / model / 1e6});
  }
  for (const coll_point& c : pts.colls) {
    const cluster_spec net = cluster_of(c, gpu);
    const double model_us = op_us(as_params(c, gpu), gpu, &net);
    const comm_plan plan = plan_nccl_collective(as_params(c, gpu), gpu, net);
    rows.push_back({std::string(to_string(c.op)) + " " + std::to_string(c.ranks) + " ranks " +
                        size_text(c.bytes) + (c.algorithm.empty() ? "" : " " + c.algorithm),
                    "GB/s busbw", c.where, busbw(c, c.time_us), busbw(c, model_us),
                    single_node(c) ? "collective, one node" : "collective, across nodes", c.time_us,
                    model_us,
                    std::string(to_string(plan.algorithm)) + "/" + to_string(plan.protocol)});
  }
  return rows;
}

fit_result fit_constants(const calib_points& pts, const gpu_spec& start) {
  fit_result out;
  out.gpu = start;
  const std::vector<constant_def> defs = definitions(start);
  constexpr int rounds = 3;
  for (int r = 0; r < rounds; ++r)
    for (const constant_def& d : defs)
      if (governed(pts, d) > 0) fit_one(pts, out.gpu, d);
  for (const constant_def& d : defs) {
    const int n = governed(pts, d);
    if (n > 0) out.constants.push_back({d.key, start.*d.member, out.gpu.*d.member, n});
  }
  return out;
}

std::string fitted_gpu_file(const std::string& base_path, const fit_result& fit,
                            const std::vector<std::string>& inputs) {
  ordered_json doc = ordered_json::parse(load_json_file(base_path).dump());
  std::string files;
  for (const std::string& f : inputs) files += (files.empty() ? "" : ", ") + f;
  for (const fitted_constant& c : fit.constants) {
    ordered_json* node = &doc;
    std::stringstream ss(c.key);
    for (std::string part; std::getline(ss, part, '.');) node = &(*node)[part];
    (*node)["value"] = std::round(c.after * 1e4) / 1e4;
    (*node)["source"] = "fitted by overlap-bench calibrate to " + std::to_string(c.points) +
                        " measured points (" + files + "); was " + std::to_string(c.before);
  }
  doc["comment"] = doc.value("comment", std::string()) +
                   " Constants refitted by overlap-bench calibrate (docs/CALIBRATION.md §4).";
  return doc.dump(2) + "\n";
}

namespace {

void summary_line(std::ostream& o, const std::string& label, const std::vector<check_row>& rows) {
  double sum = 0, worst = 0;
  for (const check_row& r : rows) {
    sum += std::abs(r.error());
    worst = std::max(worst, std::abs(r.error()));
  }
  o << std::fixed << std::setprecision(1) << label << rows.size() << " points: mean |error| "
    << sum / static_cast<double>(rows.size()) * 100 << " %, worst " << worst * 100 << " %\n";
}

}  // namespace

std::string format_check(const std::vector<check_row>& rows) {
  std::ostringstream o;
  o << std::left << std::setw(44) << "SIMULATED model vs measured point" << std::right
    << std::setw(12) << "measured" << std::setw(12) << "model" << std::setw(9) << "error"
    << "  unit        measured us    model us  runs         input\n";
  std::vector<std::string> families;
  for (const check_row& r : rows) {
    o << std::left << std::setw(44) << r.what << std::right << std::fixed << std::setprecision(2)
      << std::setw(12) << r.measured << std::setw(12) << r.model << std::setw(8) << std::showpos
      << r.error() * 100 << std::noshowpos << "%  " << std::left << std::setw(12) << r.unit
      << std::right << std::setw(11) << r.measured_us << std::setw(12) << r.model_us << "  "
      << std::left << std::setw(13) << (r.runs.empty() ? "-" : r.runs) << r.where << "\n";
    if (std::find(families.begin(), families.end(), r.family) == families.end())
      families.push_back(r.family);
  }
  if (rows.empty()) return o.str();
  if (families.size() > 1)
    for (const std::string& f : families) {
      std::vector<check_row> of;
      std::copy_if(rows.begin(), rows.end(), std::back_inserter(of),
                   [&](const check_row& r) { return r.family == f; });
      summary_line(o, f + ": ", of);
    }
  summary_line(o, "", rows);
  return o.str();
}

check_summary summarize_check(const std::vector<check_row>& rows) {
  check_summary c;
  double sum = 0;
  for (const check_row& r : rows) {
    const double e = std::abs(r.error()) * 100;
    sum += e;
    if (e >= c.worst_abs_pct) {
      c.worst_abs_pct = e;
      c.worst_what = r.what + ", " + r.where;
    }
  }
  if (!rows.empty()) c.mean_abs_pct = sum / static_cast<double>(rows.size());
  return c;
}

namespace {

std::string fixed1(double v) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << v;
  return o.str();
}

}  // namespace

void check_plausible(const calib_points& pts, const gpu_spec& gpu) {
  // 2 % over the datasheet covers boost-clock rounding in published peaks.
  for (const gemm_point& g : pts.gemms) {
    const double peak = gpu.peak_tflops(g.shape.type);
    if (peak <= 0)
      throw config_error(g.where + ": the " + gpu.display_name + " file has no " +
                         std::string(to_string(g.shape.type)) +
                         " peak, so a GEMM of that type cannot run on it (the wrong --gpu?)");
    if (g.tflops > peak * 1.02)
      throw config_error(g.where + ": " + fixed1(g.tflops) + " TFLOP/s is above the " +
                         gpu.display_name + " dense " + std::string(to_string(g.shape.type)) +
                         " peak of " + fixed1(peak) +
                         " TFLOP/s (wrong units, or the wrong --gpu?)");
  }
  for (const coll_point& c : pts.colls) {
    const double bw = busbw(c, c.time_us);
    if (gpu.nvlink_gbps > 0 && bw > 2 * gpu.nvlink_gbps)
      throw config_error(c.where + ": a bus bandwidth of " + fixed1(bw) +
                         " GB/s is over twice the " + gpu.display_name + "'s NVLink " +
                         fixed1(gpu.nvlink_gbps) +
                         " GB/s (time in the wrong units, or the wrong --gpu?)");
  }
}

}  // namespace ob::sim
