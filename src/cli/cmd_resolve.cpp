#include <iostream>

#include "base/error.hpp"
#include "bridge/resolve.hpp"
#include "cli/command.hpp"

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
    const bridge_resolution res = resolve_bridge_file(input_);
    std::cout << dump_json(res.to_json(), 2) << "\n";
    if (!res.has_errors()) return 0;
    for (const diagnostic& e : res.errors)
      std::cerr << "overlap-bench: error: " << e.message << " [" << e.name() << "]\n";
    return static_cast<int>(exit_code::usage);
  }

 private:
  std::string input_;
};

}  // namespace

std::unique_ptr<command> make_resolve_command() { return std::make_unique<resolve_command>(); }

}  // namespace ob::cli
