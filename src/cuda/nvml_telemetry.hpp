#pragma once
// Optional NVML clock telemetry, loaded with dlopen("libnvidia-ml.so.1") so that the binary
// neither links NVML nor needs it: on a machine without it every query answers "unknown".
#include <memory>
#include <optional>
#include <string>

namespace ob::cuda {

class nvml_telemetry {
 public:
  // nullptr when the library or its init is unavailable.
  static std::shared_ptr<nvml_telemetry> open();
  ~nvml_telemetry();
  nvml_telemetry(const nvml_telemetry&) = delete;
  nvml_telemetry& operator=(const nvml_telemetry&) = delete;

  // Devices are found by PCI bus id: NVML's indices need not match CUDA's ordinals.
  std::optional<unsigned> sm_clock_mhz(const std::string& pci_bus_id) const;
  // The default applications clock, or the max clock where that is not reported.
  std::optional<unsigned> default_sm_clock_mhz(const std::string& pci_bus_id) const;
  std::optional<unsigned> max_sm_clock_mhz(const std::string& pci_bus_id) const;
  std::string driver_version() const;

 private:
  struct api;
  explicit nvml_telemetry(std::unique_ptr<api> a);
  std::unique_ptr<api> api_;
};

// Below this fraction of the default SM clock a sample is flagged (docs/ARCHITECTURE.md §6).
inline constexpr double clock_warning_fraction = 0.75;

// A warning for a clock sample under 75 % of the default clock, or nullopt.
std::optional<std::string> clock_warning(const std::string& who, const std::string& when,
                                         std::optional<unsigned> sample_mhz,
                                         std::optional<unsigned> default_mhz);

}  // namespace ob::cuda
