#include "cli/cuda_loader.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/error.hpp"

namespace ob::cli {

int probe_cuda_devices() noexcept {
  // The driver API's C entry points, declared here with plain types (CUresult is an int enum,
  // CUDA_SUCCESS == 0) so this file needs no CUDA header.
  void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return 0;
  using init_fn = int (*)(unsigned);
  using count_fn = int (*)(int*);
  auto init = reinterpret_cast<init_fn>(::dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<count_fn>(::dlsym(lib, "cuDeviceGetCount"));
  int n = 0;
  if (!init || !count || init(0) != 0 || count(&n) != 0) n = 0;
  // Kept loaded: unloading the driver library after cuInit is not supported.
  return n;
}

const cuda_backend_plugin& load_cuda_backend(const std::string& backend) {
  namespace fs = std::filesystem;
  std::string path;
  if (const char* env = std::getenv("OVERLAP_BENCH_CUDA_PLUGIN"); env && *env) {
    path = env;
  } else {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    path = (exe.parent_path() / "libob_cuda_backend.so").string();
  }
  const std::string prefix = "--backend " + backend + ": ";
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw runtime_failure(prefix + "this overlap-bench was built without CUDA (no " + path +
                          "); no CUDA device found; use --backend sim");
  void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    throw runtime_failure(prefix + "cannot load the CUDA backend " + path + ": " + ::dlerror() +
                          "; use --backend sim");
  using entry_fn = const cuda_backend_plugin* (*)();
  auto entry = reinterpret_cast<entry_fn>(::dlsym(lib, "ob_cuda_backend_plugin"));
  const cuda_backend_plugin* table = entry ? entry() : nullptr;
  if (!table || table->abi != cuda_backend_plugin_abi || !table->make_executor)
    throw runtime_failure(prefix + path + " is not a matching CUDA backend (rebuild)");
  return *table;
}

}  // namespace ob::cli
