// The scenario loader `run --config` uses: layer scenarios (with their sweep expanded) and step
// scenarios.
#include "fuzz_common.hpp"
#include "spec/scenario.hpp"
#include "spec/step_config.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ob::fuzz::use_source_configs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ob::fuzz::input_file file("scenario.json");
  const std::string& path = file.write(data, size);
  ob::fuzz::expect_clean([&] { ob::expand_cases(ob::load_layer_scenario(path)); });
  ob::fuzz::expect_clean([&] { ob::expand_step_cases(ob::load_step_scenario(path)); });
  return 0;
}
