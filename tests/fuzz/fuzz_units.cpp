// The size parser (--bytes, --min, --max, sizes in scenarios) and the GEMM shape parser (--gemm).
#include <string_view>

#include "base/units.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ob::fuzz::expect_clean([&] { ob::format_size(ob::parse_size(text, "--bytes")); });
  ob::fuzz::expect_clean([&] { ob::parse_gemm_shape(text, "--gemm"); });
  return 0;
}
