#include <iostream>

#include "base/error.hpp"
#include "base/units.hpp"
#include "cli/command.hpp"
#include "cli/flag_checks.hpp"
#include "cli/harness.hpp"
#include "cli/sweep_outputs.hpp"
#include "dist/communicator.hpp"
#include "results/report_table.hpp"
#include "run/pipeline.hpp"
#include "sim/ep_dispatch.hpp"
#include "spec/sweep_axes.hpp"

namespace ob::cli {
namespace {

// A nccl-tests-style table of one collective over a size range, on any backend.
class coll_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand("coll", "one collective alone over sizes (nccl-tests style)");
    app->add_option("--op", op_, enum_choices<coll_op>())->capture_default_str();
    auto* bytes = app->add_option("--bytes", bytes_, "one size (nccl-tests convention)");
    app->add_option("--min", min_, "smallest size")->excludes(bytes);
    app->add_option("--max", max_, "largest size")->excludes(bytes);
    app->add_option("--factor", factor_, "size multiplier between rows")
        ->check(int_in(2, 1024))
        ->excludes(bytes)
        ->capture_default_str();
    app->add_option("--ranks", ranks_, "ranks in the group")
        ->check(int_in(1, 1 << 16))
        ->capture_default_str();
    app->add_option("--ctas", ctas_, "CTAs (0 = library default; NCCL runs at most 64)")
        ->check(int_in(0, nccl_max_ctas))
        ->capture_default_str();
    app->add_option("--algo", algo_,
                    "sim: auto (NCCL's choice) | ring | nvls | tree | nvls_tree; real backends: "
                    "set NCCL_ALGO")
        ->check(CLI::IsMember({"auto", "ring", "nvls", "tree", "nvls_tree"}))
        ->capture_default_str();
    attach_dispatch(*app);
    add_common_flags(*app, flags_);
    app->get_option("--json")->description("write the rows as JSON (overlap-bench/coll/v1)");
    add_network_flags(*app, flags_);
    add_nccl_flags(*app, flags_, false);
    gpu_given_ = app->get_option("--gpu");
    return app;
  }

  int run(const process_args& args) override {
    // A collective alone has no overlap to look at, and nothing records its op intervals.
    if (!flags_.trace_path.empty())
      throw config_error("--trace " + flags_.trace_path +
                         ": coll writes no trace (a collective alone has no overlap to show); "
                         "use pair --trace for one beside a GEMM");
    const gpu_spec gpu = gpu_from(flags_, gpu_given_->count() > 0);
    coll_request r;
    r.c.op = parse_enum<coll_op>(op_, "--op");
    r.c.group_size = ranks_;
    r.c.ctas = ctas_;
    r.c.algorithm = algo_ == "auto" ? "" : algo_;
    r.c.nodes = nodes_for(ranks_, cluster_from(flags_, gpu));
    apply_nccl_axes(nccl_axes_given(flags_.nccl), gpu, r.c);
    if (dispatcher_ == "nccl") {
      r.sizes = sizes();
      check_coll_sizes(r, bytes_.empty() ? "--min/--max" : "--bytes");
    } else {
      r.sizes = {dispatch(r.c, gpu, cluster_from(flags_, gpu))};
    }
    auto comm = make_communicator(args.argc, args.argv, flags_.timeout_s);
    if (comm->is_root())
      check_output_paths(flags_, {{"--gpu", flags_.gpu}, {"--cluster", flags_.cluster}});
    auto exec = make_executor(flags_, gpu, *comm);
    if (dispatcher_ != "nccl" && !exec->simulated())
      throw config_error("--dispatcher " + dispatcher_ +
                         ": only the simulator runs DeepEP and HybridEP (the CUDA backend has "
                         "NCCL's all-to-all; use --dispatcher nccl)");
    r.inject = injected_fault(flags_, *comm, exec->backend(), r.sizes.size());
    r.measure = measure_from(flags_, measure_options{});
    r.measure.cdmc = process_cdmc();
    const std::vector<coll_row> rows = run_coll(r, *exec, *comm);
    if (!comm->is_root()) return 0;
    if (!flags_.quiet) std::cout << format_coll_table(rows, exec->simulated(), exec->label());
    if (!flags_.json_path.empty() || !flags_.csv_path.empty())
      write_files(rows, r.c, *exec, gpu, *comm);
    for (const auto& row : rows)
      if (row.wrong > 0) return static_cast<int>(exit_code::runtime);
    return 0;
  }

 private:
  // One MoE dispatch or combine by DeepEP or HybridEP (docs/MOE.md §7), simulated only.
  void attach_dispatch(CLI::App& app) {
    app.add_option("--dispatcher", dispatcher_,
                   "all_to_all by: nccl | deepep | deepep_ll | hybridep (sim: one MoE dispatch "
                   "from --tokens/--hidden/--topk/--experts; the row's size is what a rank "
                   "receives, as DeepEP's tests count it)")
        ->check(CLI::IsMember({"nccl", "deepep", "deepep_ll", "hybridep"}))
        ->capture_default_str();
    app.add_option("--tokens", ep_.tokens, "--dispatcher: tokens a rank routes")
        ->capture_default_str();
    app.add_option("--hidden", ep_.hidden, "--dispatcher: hidden size")->capture_default_str();
    app.add_option("--topk", ep_.topk, "--dispatcher: experts per token")->capture_default_str();
    app.add_option("--experts", ep_.experts, "--dispatcher: routed experts (0 = 8 a rank)")
        ->capture_default_str();
    app.add_option("--ep-dtype", ep_dtype_, "--dispatcher: dispatch dtype (the combine is bf16)")
        ->check(CLI::IsMember({"bf16", "fp8"}))
        ->capture_default_str();
    app.add_flag("--combine", ep_.combine, "--dispatcher: the combine instead of the dispatch");
  }

  // The exchange on c and its one row size: the bytes a rank receives.
  std::uint64_t dispatch(collective_params& c, const gpu_spec& gpu, const cluster_spec& net) {
    if (c.op != coll_op::all_to_all)
      throw config_error("--dispatcher " + dispatcher_ + ": needs --op all_to_all");
    if (!bytes_.empty() || !min_.empty())
      throw config_error("--dispatcher " + dispatcher_ +
                         ": the size follows --tokens/--hidden/--topk; drop --bytes/--min/--max");
    c.ep = ep_;
    c.ep.backend = parse_enum<ep_backend>(dispatcher_, "--dispatcher");
    if (c.ep.experts == 0) c.ep.experts = 8 * c.group_size;
    if (c.ep.experts % c.group_size != 0 || c.ep.topk < 1 || c.ep.topk > c.ep.experts)
      throw config_error("--experts " + std::to_string(c.ep.experts) + " / --topk " +
                         std::to_string(c.ep.topk) + ": the experts must split evenly over " +
                         std::to_string(c.group_size) + " ranks (--ranks), top-k 1 to experts");
    if (c.ep.tokens < 1 || c.ep.hidden < 1)
      throw config_error("--tokens/--hidden: must be positive");
    c.type = parse_enum<dtype>(ep_dtype_, "--ep-dtype");
    const ep_dispatch_constants* k = sim::ep_constants(c, gpu);
    if (k == nullptr)
      throw config_error("--dispatcher " + dispatcher_ + ": configs/gpus/" + gpu.name +
                         ".json has no sim.ep_dispatch." + dispatcher_ + " constants");
    return static_cast<std::uint64_t>(sim::plan_ep_exchange(c, gpu, net).recv_bytes);
  }

  std::vector<std::uint64_t> sizes() const {
    if (!bytes_.empty()) return {parse_size(bytes_, "--bytes")};
    if (min_.empty() || max_.empty())
      throw config_error("coll: give --bytes SIZE, or --min and --max (with --factor)");
    const std::uint64_t lo = parse_size(min_, "--min"), hi = parse_size(max_, "--max");
    if (lo > hi) throw config_error("--min: " + min_ + " is larger than --max " + max_);
    return size_range(lo, hi, static_cast<std::uint64_t>(factor_));
  }

  void write_files(const std::vector<coll_row>& rows, const collective_params& c,
                   const executor& exec, const gpu_spec& gpu, const communicator& comm) const {
    coll_doc doc;
    ordered_json config{{"op", to_string(c.op)}, {"ranks", ranks_}, {"ctas", ctas_}};
    // A DeepEP/HybridEP exchange says so: its rows are not NCCL's all-to-all.
    if (c.ep.backend != ep_backend::nccl)
      config["dispatch"] = {{"dispatcher", dispatcher_}, {"combine", c.ep.combine},
                            {"tokens", c.ep.tokens},     {"hidden", c.ep.hidden},
                            {"topk", c.ep.topk},         {"experts", c.ep.experts},
                            {"dtype", to_string(c.type)}};
    static_cast<doc_header&>(doc) = new_doc_header(exec, gpu, comm, std::move(config));
    doc.rows = rows;
    if (!flags_.json_path.empty()) write_coll_json(flags_.json_path, doc);
    if (!flags_.csv_path.empty()) write_coll_csv(flags_.csv_path, doc);
  }

  std::string op_ = "all_gather", bytes_, min_, max_, algo_ = "auto";
  std::string dispatcher_ = "nccl", ep_dtype_ = "bf16";
  ep_exchange ep_{ep_backend::nccl, false, 4096, 7168, 8, 0, 1.0};
  int factor_ = 2, ranks_ = 8, ctas_ = 0;
  common_flags flags_;
  CLI::Option* gpu_given_ = nullptr;
};

}  // namespace

std::unique_ptr<command> make_coll_command() { return std::make_unique<coll_command>(); }

}  // namespace ob::cli
