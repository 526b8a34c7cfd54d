#include "base/error.hpp"
#include "base/units.hpp"
#include "cli/command.hpp"
#include "cli/flag_checks.hpp"
#include "cli/harness.hpp"
#include "cli/sweep_driver.hpp"
#include "run/pipeline.hpp"

namespace ob::cli {
namespace {

// One GEMM and one collective, independent, in --order. List-valued flags (--cdmc 1,8,32)
// sweep like a scenario's axes.
class pair_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand("pair", "one GEMM beside one collective");
    app->add_option("--gemm", gemm_, "GEMM shape MxNxK")->required();
    app->add_option("--dtype", dtype_, "bf16 | fp16 | fp8 | mxfp8 | nvfp4 (Blackwell)")
        ->capture_default_str();
    app->add_option("--coll", coll_, enum_choices<coll_op>())->capture_default_str();
    app->add_option("--bytes", bytes_,
                    "collective size, nccl-tests convention (AG: gathered total, RS: input "
                    "total, AR: buffer), e.g. 64MiB")
        ->required();
    app->add_option("--ranks", ranks_, "ranks in the collective's group")
        ->check(int_in(1, 1 << 16))
        ->capture_default_str();
    app->add_option("--sm-margin", sm_margin_, "GEMM SM margin(s), comma list sweeps");
    app->add_option("--comm-ctas", comm_ctas_, "collective CTAs (0 = library default)");
    app->add_option("--cdmc", cdmc_, "CUDA_DEVICE_MAX_CONNECTIONS value(s)");
    app->add_option("--order", order_, "comm_first | gemm_first (comma list sweeps)");
    app->add_option("--priority", priority_, "comm_high | equal | compute_high");
    app->add_option("--comm-waits-on-producer", producer_us_,
                    "a producer kernel of US microseconds runs first; the collective waits on it")
        ->check(number_in(0, 1e7));
    add_common_flags(*app, flags_);
    add_answer_flags(*app, flags_.answers);
    add_sweep_flags(*app, flags_);
    add_network_flags(*app, flags_);
    add_nccl_flags(*app, flags_);
    gpu_given_ = app->get_option("--gpu");
    return app;
  }

  int run(const process_args& args) override {
    prepare_answers(flags_.answers);
    const gpu_spec gpu = gpu_from(flags_, gpu_given_->count() > 0);
    pair_spec p = spec();
    p.coll.nodes = nodes_for(ranks_, cluster_from(flags_, gpu));
    collective_params checked = p.coll;
    apply_nccl_axes(nccl_axes_given(flags_.nccl), gpu, checked);  // refused before any case
    sweep_request req = pair_sweep(p, axes(), "pair --", gpu);
    req.source = "pair --sm-margin/--comm-ctas/--cdmc/--order/--priority";
    return drive_sweep(std::move(req), flags_, gpu, args,
                       {{"--gpu", flags_.gpu}, {"--cluster", flags_.cluster}});
  }

 private:
  pair_spec spec() const {
    pair_spec p;
    const gemm_shape shape = parse_gemm_shape(gemm_, "--gemm");
    p.gemm = gemm_params{shape.m, shape.n, shape.k, parse_enum<dtype>(dtype_, "--dtype"), 0};
    p.coll.op = parse_enum<coll_op>(coll_, "--coll");
    p.coll.bytes = parse_size(bytes_, "--bytes");
    p.coll.group_size = ranks_;
    p.producer_us = producer_us_;
    return p;
  }

  std::vector<sweep_axis> axes() const {
    const std::vector<std::string> cdmc =
        cdmc_.empty() ? std::vector<std::string>{std::to_string(process_cdmc())} : cdmc_;
    std::vector<sweep_axis> out = {{"cdmc", values(cdmc, "--cdmc")},
                                   {"order", values(order_, "--order")},
                                   {"sm_margin", values(sm_margin_, "--sm-margin")},
                                   {"comm_ctas", values(comm_ctas_, "--comm-ctas")},
                                   {"priority", values(priority_, "--priority")}};
    // NCCL's settings only where given, so the other pair sweeps keep their case ids.
    for (sweep_axis& a : nccl_axes_given(flags_.nccl)) out.push_back(std::move(a));
    return out;
  }

  // Comma lists, split here rather than by CLI11, which drops the empty item of "0,,16".
  static std::vector<std::string> values(const std::vector<std::string>& given,
                                         const std::string& flag) {
    std::vector<std::string> out;
    for (const std::string& list : given)
      for (std::size_t start = 0;;) {
        const std::size_t cut = list.find(',', start);
        out.push_back(list.substr(start, cut - start));
        if (out.back().empty()) throw config_error(flag + " " + list + ": empty value in list");
        if (cut == std::string::npos) break;
        start = cut + 1;
      }
    return out;
  }

  std::string gemm_, dtype_ = "bf16", coll_ = "all_gather", bytes_;
  int ranks_ = 8;
  std::vector<std::string> sm_margin_{"0"}, comm_ctas_{"0"}, cdmc_, order_{"comm_first"},
      priority_{"comm_high"};
  double producer_us_ = 0;
  common_flags flags_;
  CLI::Option* gpu_given_ = nullptr;
};

}  // namespace

std::unique_ptr<command> make_pair_command() { return std::make_unique<pair_command>(); }

}  // namespace ob::cli
