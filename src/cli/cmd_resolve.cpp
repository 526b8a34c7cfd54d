// resolve and presets: what Megatron-Bridge would run, and the userbuffers presets it ships.
#include <iostream>

#include "base/error.hpp"
#include "bridge/resolve.hpp"
#include "cli/command.hpp"
#include "cli/flag_checks.hpp"
#include "spec/presets.hpp"

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

// `presets` lives here beside `resolve`, the other reader of Megatron-Bridge's settings, so
// that src/cli keeps its 30 files (docs/ARCHITECTURE.md §1).
class presets_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand("presets", "list the Megatron-Bridge userbuffers presets");
    app->add_option("--show", show_, "print one preset as JSON")->check(not_empty());
    return app;
  }
  int run(const process_args&) override {
    if (show_.empty())
      std::cout << format_preset_list();
    else
      std::cout << dump_json(preset_to_json(load_preset(show_, "--show")), 2) << "\n";
    return 0;
  }

 private:
  std::string show_;
};

}  // namespace

std::unique_ptr<command> make_resolve_command() { return std::make_unique<resolve_command>(); }
std::unique_ptr<command> make_presets_command() { return std::make_unique<presets_command>(); }

}  // namespace ob::cli
