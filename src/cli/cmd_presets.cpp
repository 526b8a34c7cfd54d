#include <iostream>

#include "cli/command.hpp"
#include "cli/flag_checks.hpp"
#include "spec/presets.hpp"

namespace ob::cli {
namespace {

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

std::unique_ptr<command> make_presets_command() { return std::make_unique<presets_command>(); }

}  // namespace ob::cli
