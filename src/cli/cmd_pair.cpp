#include <cmath>

#include "cli/command.hpp"
#include "cli/harness.hpp"
#include "cli/sweep_driver.hpp"
#include "core/error.hpp"
#include "core/plan.hpp"
#include "core/units.hpp"

namespace ob::cli {
namespace {

// One GEMM and one collective, independent, in --order (DESIGN §10). List-valued flags
// (--cdmc 1,8,32) sweep like a scenario's axes.
class pair_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand("pair", "one GEMM beside one collective");
    app->add_option("--gemm", gemm_, "GEMM shape MxNxK")->required();
    app->add_option("--dtype", dtype_, "bf16 | fp16 | fp8")->capture_default_str();
    app->add_option("--coll", coll_, "all_gather | reduce_scatter | all_reduce")
        ->capture_default_str();
    app->add_option("--bytes", bytes_,
                    "collective size, nccl-tests convention (AG: gathered total, RS: input "
                    "total, AR: buffer), e.g. 64MiB")
        ->required();
    app->add_option("--ranks", ranks_, "ranks in the collective's group")
        ->check(CLI::Range(1, 1 << 16))
        ->capture_default_str();
    app->add_option("--sm-margin", sm_margin_, "GEMM SM margin(s), comma list sweeps")
        ->delimiter(',');
    app->add_option("--comm-ctas", comm_ctas_, "collective CTAs (0 = library default)")
        ->delimiter(',');
    app->add_option("--cdmc", cdmc_, "CUDA_DEVICE_MAX_CONNECTIONS value(s)")->delimiter(',');
    app->add_option("--order", order_, "comm_first | gemm_first (comma list sweeps)")
        ->delimiter(',');
    app->add_option("--priority", priority_, "comm_high | equal | compute_high")->delimiter(',');
    app->add_option("--comm-waits-on-producer", producer_us_,
                    "a producer kernel of US microseconds runs first; the collective waits on it")
        ->check(CLI::Range(0.0, 1e7));
    add_common_flags(*app, flags_);
    return app;
  }

  int run(const process_args& args) override {
    // CLI11's range check lets NaN through (every comparison with NaN is false).
    if (!std::isfinite(producer_us_))
      throw config_error("--comm-waits-on-producer: expected microseconds in [0, 1e7], got " +
                         std::to_string(producer_us_));
    const gpu_spec gpu = load_gpu_spec(flags_.gpu, "--gpu");
    pair_spec p;
    const gemm_shape shape = parse_gemm_shape(gemm_, "--gemm");
    p.gemm = gemm_params{shape.m, shape.n, shape.k, parse_enum<dtype>(dtype_, "--dtype"), 0};
    p.coll.op = parse_enum<coll_op>(coll_, "--coll");
    p.coll.bytes = parse_size(bytes_, "--bytes");
    p.coll.group_size = ranks_;
    p.producer_us = producer_us_;
    const std::uint64_t unit = static_cast<std::uint64_t>(ranks_) * 2;  // bf16 elements per rank
    if (p.coll.op != coll_op::all_reduce && p.coll.bytes % unit != 0)
      throw config_error("--bytes: " + std::to_string(p.coll.bytes) +
                         " is not divisible by ranks x element size (" + std::to_string(unit) +
                         ")");

    const std::vector<sweep_axis> axes = {
        {"cdmc",
         cdmc_.empty() ? std::vector<std::string>{std::to_string(process_cdmc(gpu))} : cdmc_},
        {"order", order_},
        {"sm_margin", sm_margin_},
        {"comm_ctas", comm_ctas_},
        {"priority", priority_}};
    sweep_request req;
    req.scenario = "pair";
    req.source = "pair --sm-margin/--comm-ctas/--cdmc/--order/--priority";
    if (ranks_ > 8)
      req.warnings.push_back("not_modelled: --ranks " + std::to_string(ranks_) +
                             " is simulated as one NVLink domain; the network (nic_gbps) is "
                             "not modelled yet");
    req.cases = expand_axes(axes, "pair --", plan_knobs{});
    req.plan = [&](const layer_case& c) { return plan_pair(p, gpu, c.knobs); };
    req.measure.warmup = flags_.warmup >= 0 ? flags_.warmup : 5;
    req.measure.iters = flags_.iters > 0 ? flags_.iters : 20;
    req.measure.graphs = flags_.graphs;
    req.measure.timeout_s = flags_.timeout_s;
    req.config = {
        {"scenario", "pair"},
        {"gpu", gpu.name},
        {"gemm", {{"m", shape.m}, {"n", shape.n}, {"k", shape.k}, {"dtype", dtype_}}},
        {"collective", {{"op", to_string(p.coll.op)}, {"bytes", p.coll.bytes}, {"ranks", ranks_}}},
        {"comm_waits_on_producer_us", producer_us_}};
    return drive_sweep(req, flags_, gpu, args);
  }

 private:
  std::string gemm_, dtype_ = "bf16", coll_ = "all_gather", bytes_;
  int ranks_ = 8;
  std::vector<std::string> sm_margin_{"0"}, comm_ctas_{"0"}, cdmc_, order_{"comm_first"},
      priority_{"comm_high"};
  double producer_us_ = 0;
  common_flags flags_;
};

}  // namespace

std::unique_ptr<command> make_pair_command() { return std::make_unique<pair_command>(); }

}  // namespace ob::cli
