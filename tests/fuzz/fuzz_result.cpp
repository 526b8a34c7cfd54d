// The result reader `compare` uses.
#include "fuzz_common.hpp"
#include "results/result.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ob::fuzz::input_file file("result.json");
  const std::string& path = file.write(data, size);
  ob::fuzz::expect_clean([&] { ob::load_result(path); });
  return 0;
}
