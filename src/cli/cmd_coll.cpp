#include <iostream>

#include "cli/command.hpp"
#include "cli/harness.hpp"
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/plan.hpp"
#include "core/report_table.hpp"
#include "core/result.hpp"
#include "core/stats.hpp"
#include "core/units.hpp"

namespace ob::cli {
namespace {

// A nccl-tests-style table of one collective over a size range, on any backend.
class coll_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand("coll", "one collective alone over sizes (nccl-tests style)");
    app->add_option("--op", op_, "all_gather | reduce_scatter | all_reduce")->capture_default_str();
    auto* bytes = app->add_option("--bytes", bytes_, "one size (nccl-tests convention)");
    app->add_option("--min", min_, "smallest size")->excludes(bytes);
    app->add_option("--max", max_, "largest size")->excludes(bytes);
    app->add_option("--factor", factor_, "size multiplier between rows")
        ->check(CLI::Range(2, 1024))
        ->capture_default_str();
    app->add_option("--ranks", ranks_, "ranks in the group")
        ->check(CLI::Range(1, 1 << 16))
        ->capture_default_str();
    app->add_option("--ctas", ctas_, "CTAs (0 = library default)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    add_common_flags(*app, flags_);
    return app;
  }

  int run(const process_args& args) override {
    const gpu_spec gpu = load_gpu_spec(flags_.gpu, "--gpu");
    collective_params c;
    c.op = parse_enum<coll_op>(op_, "--op");
    c.group_size = ranks_;
    c.ctas = ctas_;
    std::vector<std::uint64_t> sizes;
    if (!bytes_.empty()) {
      sizes.push_back(parse_size(bytes_, "--bytes"));
    } else {
      if (min_.empty() || max_.empty())
        throw config_error("coll: give --bytes SIZE, or --min and --max (with --factor)");
      const std::uint64_t lo = parse_size(min_, "--min"), hi = parse_size(max_, "--max");
      if (lo > hi) throw config_error("--min: " + min_ + " is larger than --max " + max_);
      for (std::uint64_t s = lo; s <= hi; s *= static_cast<std::uint64_t>(factor_))
        sizes.push_back(s);
    }
    const std::uint64_t unit =
        c.op == coll_op::all_reduce ? 2 : 2 * static_cast<std::uint64_t>(ranks_);
    for (auto s : sizes)
      if (s % unit != 0)
        throw config_error((bytes_.empty() ? "--min/--max" : "--bytes") + std::string(": size ") +
                           std::to_string(s) + " is not a multiple of " + std::to_string(unit) +
                           " (bf16 elements x ranks)");

    auto comm = make_communicator(args.argc, args.argv);
    auto exec = make_executor(flags_, gpu, *comm);
    measure_options opts;
    opts.warmup = flags_.warmup >= 0 ? flags_.warmup : 5;
    opts.iters = flags_.iters > 0 ? flags_.iters : 20;
    opts.graphs = flags_.graphs;
    opts.timeout_s = flags_.timeout_s;
    opts.cdmc = process_cdmc(gpu);
    std::vector<coll_row> rows;
    for (auto s : sizes) {
      c.bytes = s;
      const auto variants = make_variant_schedules(plan_collective(c));
      auto m = exec->measure(variants, opts);
      auto& v = m[static_cast<int>(variant::comm_only)];
      comm->max_reduce(v.iter_ms);
      std::vector<long long> wrong{v.wrong};
      comm->sum_reduce(wrong);
      rows.push_back(make_coll_row(c, compute_stats(v.iter_ms), wrong[0]));
    }
    if (!comm->is_root()) return 0;
    if (!flags_.quiet) std::cout << format_coll_table(rows, exec->simulated(), exec->label());
    if (!flags_.json_path.empty()) {
      const result_doc env = make_result_doc(*exec, gpu, *comm, ordered_json::object());
      coll_doc doc;
      doc.tool = env.tool;
      doc.env = env.env;
      doc.config = {{"op", to_string(c.op)}, {"ranks", ranks_}, {"ctas", ctas_}};
      doc.rows = rows;
      write_coll_json(flags_.json_path, doc);
    }
    for (const auto& r : rows)
      if (r.wrong > 0) return static_cast<int>(exit_code::runtime);
    return 0;
  }

 private:
  std::string op_ = "all_gather", bytes_, min_, max_;
  int factor_ = 2, ranks_ = 8, ctas_ = 0;
  common_flags flags_;
};

}  // namespace

std::unique_ptr<command> make_coll_command() { return std::make_unique<coll_command>(); }

}  // namespace ob::cli
