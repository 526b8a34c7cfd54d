// The Bridge config resolver (`resolve`, and `run` with overlap.bridge_config).
#include "bridge/resolve.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ob::fuzz::use_source_configs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ob::fuzz::input_file file("bridge.json");
  const std::string& path = file.write(data, size);
  ob::fuzz::expect_clean([&] { ob::resolve_bridge_file(path); });
  return 0;
}
