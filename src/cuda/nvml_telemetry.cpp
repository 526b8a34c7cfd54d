#include "cuda/nvml_telemetry.hpp"

#include <dlfcn.h>

namespace ob::cuda {
namespace {

// The few NVML entry points used, declared here from NVML's documented C API so that no NVML
// header is needed at build time.
using nvml_return = int;  // nvmlReturn_t; 0 = NVML_SUCCESS
using nvml_device = void*;
constexpr int nvml_clock_sm = 1;  // NVML_CLOCK_SM

using fn_init = nvml_return (*)();
using fn_shutdown = nvml_return (*)();
using fn_by_pci = nvml_return (*)(const char*, nvml_device*);
using fn_clock = nvml_return (*)(nvml_device, int, unsigned*);
using fn_driver = nvml_return (*)(char*, unsigned);

}  // namespace

struct nvml_telemetry::api {
  void* lib = nullptr;
  fn_shutdown shutdown = nullptr;
  fn_by_pci by_pci = nullptr;
  fn_clock clock = nullptr;          // nvmlDeviceGetClockInfo
  fn_clock default_clock = nullptr;  // nvmlDeviceGetDefaultApplicationsClock (may be absent)
  fn_clock max_clock = nullptr;      // nvmlDeviceGetMaxClockInfo
  fn_driver driver = nullptr;

  ~api() {
    if (shutdown) (void)shutdown();
    if (lib) dlclose(lib);
  }
  std::optional<nvml_device> device(const std::string& pci) const {
    nvml_device d = nullptr;
    if (!by_pci || by_pci(pci.c_str(), &d) != 0) return std::nullopt;
    return d;
  }
  std::optional<unsigned> query(fn_clock f, const std::string& pci) const {
    const auto d = device(pci);
    unsigned mhz = 0;
    if (!f || !d || f(*d, nvml_clock_sm, &mhz) != 0 || mhz == 0) return std::nullopt;
    return mhz;
  }
};

std::shared_ptr<nvml_telemetry> nvml_telemetry::open() {
  auto a = std::make_unique<api>();
  a->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!a->lib) return nullptr;
  auto sym = [&](const char* name) { return dlsym(a->lib, name); };
  auto init = reinterpret_cast<fn_init>(sym("nvmlInit_v2"));
  if (!init || init() != 0) return nullptr;  // ~api closes the library
  a->shutdown = reinterpret_cast<fn_shutdown>(sym("nvmlShutdown"));
  a->by_pci = reinterpret_cast<fn_by_pci>(sym("nvmlDeviceGetHandleByPciBusId_v2"));
  a->clock = reinterpret_cast<fn_clock>(sym("nvmlDeviceGetClockInfo"));
  a->default_clock = reinterpret_cast<fn_clock>(sym("nvmlDeviceGetDefaultApplicationsClock"));
  a->max_clock = reinterpret_cast<fn_clock>(sym("nvmlDeviceGetMaxClockInfo"));
  a->driver = reinterpret_cast<fn_driver>(sym("nvmlSystemGetDriverVersion"));
  return std::shared_ptr<nvml_telemetry>(new nvml_telemetry(std::move(a)));
}

nvml_telemetry::nvml_telemetry(std::unique_ptr<api> a) : api_(std::move(a)) {}
nvml_telemetry::~nvml_telemetry() = default;

std::optional<unsigned> nvml_telemetry::sm_clock_mhz(const std::string& pci) const {
  return api_->query(api_->clock, pci);
}

std::optional<unsigned> nvml_telemetry::default_sm_clock_mhz(const std::string& pci) const {
  if (auto v = api_->query(api_->default_clock, pci)) return v;
  return max_sm_clock_mhz(pci);
}

std::optional<unsigned> nvml_telemetry::max_sm_clock_mhz(const std::string& pci) const {
  return api_->query(api_->max_clock, pci);
}

std::string nvml_telemetry::driver_version() const {
  char buf[96] = {0};
  if (!api_->driver || api_->driver(buf, sizeof buf) != 0) return {};
  return buf;
}

std::optional<std::string> clock_warning(const std::string& who, const std::string& when,
                                         std::optional<unsigned> sample_mhz,
                                         std::optional<unsigned> default_mhz) {
  if (!sample_mhz || !default_mhz || *default_mhz == 0) return std::nullopt;
  if (*sample_mhz >= clock_warning_fraction * *default_mhz) return std::nullopt;
  return who + ": SM clock " + std::to_string(*sample_mhz) + " MHz " + when + " is under 75% of " +
         "its default " + std::to_string(*default_mhz) +
         " MHz (power or thermal throttling? timings may be low)";
}

}  // namespace ob::cuda
