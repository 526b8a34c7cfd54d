// The model file loader (configs/models/, `--set model=FILE`).
#include "fuzz_common.hpp"
#include "model/model_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ob::fuzz::input_file file("model.json");
  const std::string& path = file.write(data, size);
  ob::fuzz::expect_clean([&] { ob::load_model_spec(path); });
  return 0;
}
