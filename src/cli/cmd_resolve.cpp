#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/json_util.hpp"
#include "core/resolve.hpp"

namespace ob::cli {
namespace {

class resolve_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand(
        "resolve", "print what Megatron-Bridge + Megatron would run for a Bridge-style config");
    app->add_option("--input", input_, "Bridge-style config JSON")->required();
    return app;
  }
  int run(const process_args&) override {
    const json in = load_json_file(input_);
    const ordered_json out = resolve_bridge_config(in, input_);
    std::cout << out.dump(2) << "\n";
    if (resolve_has_errors(out)) {
      for (const auto& e : out["errors"])
        std::cerr << "overlap-bench: error: " << e["message"].get<std::string>() << " ["
                  << e["code"].get<std::string>() << "]\n";
      return static_cast<int>(exit_code::usage);
    }
    return 0;
  }

 private:
  std::string input_;
};

}  // namespace

std::unique_ptr<command> make_resolve_command() { return std::make_unique<resolve_command>(); }

}  // namespace ob::cli
