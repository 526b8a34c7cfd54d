#include "cuda/kernel_grid_probe.hpp"

#include <cupti.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>

namespace ob::cuda {

sm_target_check check_sm_target(const std::vector<launched_kernel>& kernels, int sm_count,
                                int sm_target) {
  sm_target_check c;
  c.sm_count = sm_count;
  c.sm_target = sm_target;
  for (const launched_kernel& k : kernels) c.largest_grid = std::max(c.largest_grid, k.grid_ctas);
  const int limit = sm_target > 0 ? sm_target : sm_count;
  if (kernels.empty()) {
    c.verdict = "no kernel recorded";
    return c;
  }
  c.respected = c.largest_grid <= limit;
  const std::string grid = std::to_string(c.largest_grid) + " CTAs";
  if (sm_target <= 0)
    c.verdict = grid + " on " + std::to_string(sm_count) + " SMs (no target)";
  else if (c.respected)
    c.verdict = grid + " <= target " + std::to_string(sm_target) + ": the margin of " +
                std::to_string(sm_count - sm_target) + " SMs stays free";
  else
    c.verdict = grid + " > target " + std::to_string(sm_target) +
                ": the hint was not a cap; the margin holds only while the hardware scheduler "
                "leaves SMs to the other stream";
  return c;
}

namespace {

using fn_enable = decltype(&cuptiActivityEnable);
using fn_register = decltype(&cuptiActivityRegisterCallbacks);
using fn_next = decltype(&cuptiActivityGetNextRecord);
using fn_flush = decltype(&cuptiActivityFlushAll);

// CUPTI hands finished buffers to a plain C callback with no user pointer, so the records of the
// one recording probe go through this sink (kernel_grid_probe::record is not re-entrant).
struct record_sink {
  std::mutex mu;
  std::vector<launched_kernel> kernels;
  fn_next next = nullptr;
};

record_sink& sink() {
  static record_sink s;
  return s;
}

constexpr std::size_t buffer_bytes = std::size_t{1} << 20;

void CUPTIAPI on_buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  // CUPTI requires 8-byte alignment.
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, buffer_bytes));
  *size = *buffer ? buffer_bytes : 0;
  *max_records = 0;
}

void CUPTIAPI on_buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  record_sink& s = sink();
  std::lock_guard<std::mutex> lock(s.mu);
  CUpti_Activity* rec = nullptr;
  while (s.next && s.next(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL &&
        rec->kind != CUPTI_ACTIVITY_KIND_KERNEL)
      continue;
    // A CUPTI returns its own newest kernel record: CUpti_ActivityKernel10 for CUDA 13, the
    // headers this is built with (the device must run a CUDA 13 CUPTI too).
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    launched_kernel out;
    out.name = k->name ? k->name : "?";
    out.grid_ctas = std::int64_t{k->gridX} * k->gridY * k->gridZ;
    out.block_threads = k->blockX * k->blockY * k->blockZ;
    out.cluster_ctas = std::int64_t{k->clusterX} * k->clusterY * k->clusterZ;
    s.kernels.push_back(std::move(out));
  }
  std::free(buffer);
}

void* load_cupti() {
  // The toolkit keeps CUPTI under extras/ on some installs; wheels put it on LD_LIBRARY_PATH.
  for (const char* name :
       {"libcupti.so.13", "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13",
        "/usr/local/cuda/lib64/libcupti.so.13", "/usr/local/cuda/lib/libcupti.so.13"})
    if (void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return h;
  return nullptr;
}

}  // namespace

struct kernel_grid_probe::api {
  void* lib = nullptr;
  fn_enable enable = nullptr;
  fn_enable disable = nullptr;
  fn_flush flush = nullptr;
  ~api() {
    // CUPTI stays loaded: unloading it while the driver holds its callbacks is unsafe.
    if (disable) (void)disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  }
};

std::unique_ptr<kernel_grid_probe> kernel_grid_probe::open(std::string* why) {
  auto a = std::make_unique<api>();
  a->lib = load_cupti();
  if (!a->lib) {
    if (why) *why = "libcupti.so.13 not found (add its folder to LD_LIBRARY_PATH)";
    return nullptr;
  }
  auto reg = reinterpret_cast<fn_register>(dlsym(a->lib, "cuptiActivityRegisterCallbacks"));
  a->enable = reinterpret_cast<fn_enable>(dlsym(a->lib, "cuptiActivityEnable"));
  a->flush = reinterpret_cast<fn_flush>(dlsym(a->lib, "cuptiActivityFlushAll"));
  auto disable = reinterpret_cast<fn_enable>(dlsym(a->lib, "cuptiActivityDisable"));
  auto next = reinterpret_cast<fn_next>(dlsym(a->lib, "cuptiActivityGetNextRecord"));
  if (!reg || !a->enable || !a->flush || !disable || !next) {
    if (why) *why = "libcupti lacks the activity API";
    return nullptr;
  }
  sink().next = next;
  if (reg(on_buffer_requested, on_buffer_completed) != CUPTI_SUCCESS) {
    if (why) *why = "cuptiActivityRegisterCallbacks refused (another profiler attached?)";
    return nullptr;
  }
  a->disable = disable;
  return std::unique_ptr<kernel_grid_probe>(new kernel_grid_probe(std::move(a)));
}

kernel_grid_probe::kernel_grid_probe(std::unique_ptr<api> a) : api_(std::move(a)) {}
kernel_grid_probe::~kernel_grid_probe() = default;

std::vector<launched_kernel> kernel_grid_probe::record(const std::function<void()>& launch,
                                                       cudaStream_t stream) {
  {
    std::lock_guard<std::mutex> lock(sink().mu);
    sink().kernels.clear();
  }
  if (api_->enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) return {};
  launch();
  (void)cudaStreamSynchronize(stream);
  (void)api_->disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  (void)api_->flush(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  std::lock_guard<std::mutex> lock(sink().mu);
  return std::move(sink().kernels);
}

}  // namespace ob::cuda
