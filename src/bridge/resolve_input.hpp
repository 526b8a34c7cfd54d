#pragma once
// The input sections of a Bridge-style config as `resolve` reads them (resolve.hpp describes the
// format), before any Bridge rule is applied. Internal to the resolver (resolve*.cpp).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json_util.hpp"
#include "bridge/resolve.hpp"
#include "spec/diagnostics.hpp"
#include "spec/presets.hpp"

namespace ob::resolve_detail {

// Collects warnings and errors in the order they are found; every message starts with
// "<file>: <JSON path>: ", so a user can find the value that caused it.
struct report {
  std::string file;
  std::vector<diagnostic> warnings, errors;

  std::string at(const std::string& path) const { return file + ": " + path + ": "; }
  void warn(diag_code code, const std::string& path, const std::string& msg) {
    warnings.push_back({code, at(path) + msg});
  }
  void error(diag_code code, const std::string& path, const std::string& msg) {
    errors.push_back({code, at(path) + msg});
  }
};

// A tp_comm_overlap_cfg value: a preset name or path, an object keyed by GEMM, or null.
struct overlap_cfg_value {
  bool given = false;    // not null
  bool invalid = false;  // unknown preset (already reported)
  std::string path;      // JSON path, for messages
  std::optional<userbuffers_preset> preset;
  std::optional<tp_overlap_layer> layer;  // nullopt when not given or invalid
};

// The model fields beyond its shape: those Bridge's comm_overlap setup writes over (unset: the
// user left Megatron-Core's default), and gradient_accumulation_fusion, which an error reads.
struct model_in {
  bool gradient_accumulation_fusion = false;  // Megatron-Core's default
  std::optional<bool> tp_comm_overlap, overlap_p2p_comm, batch_p2p_comm, defer;
  std::optional<std::int64_t> wgrad_deferral_limit;
  bool backend_set = false;  // null is a value here: Bridge writes None onto the model
  std::optional<std::string> backend;
  overlap_cfg_value cfg;
};

// Bridge's CommOverlapConfig; unset optionals are None, which Bridge's own defaults replace.
struct comm_in {
  bool tp_comm_overlap = false;
  overlap_cfg_value cfg;
  std::optional<std::string> backend = "nccl";  // Bridge default since PR #1395; never None
  std::optional<bool> overlap_p2p_comm, batch_p2p_comm, overlap_grad_reduce, overlap_param_gather,
      opg_with_step, align_param_gather, defer;
  std::optional<std::int64_t> bucket_size, data_parallel_size, wgrad_deferral_limit;
};

struct ddp_in {
  std::optional<bool> use_dist_opt, overlap_grad_reduce, overlap_param_gather, align_param_gather;
  std::optional<std::int64_t> bucket_size, num_buckets;
  bool use_megatron_fsdp = false;
  std::optional<std::string> sharding_strategy;  // data_parallel_sharding_strategy
};

// Bridge's DistributedInitConfig: the FSDP switches (the rest of a pasted one is unused).
struct dist_in {
  bool use_megatron_fsdp = false, use_torch_fsdp2 = false;
};

struct optimizer_in {
  std::optional<bool> use_dist_opt, overlap_param_gather, opg_with_step;
};

struct platform_in {
  std::optional<std::string> gpu;
  bool have_te = true;
  std::optional<std::int64_t> num_gpus;
};

// PerfEnvPlugin generation (B)'s settings, with its defaults.
struct launcher_in {
  bool enable_ln_margin = true;
  std::int64_t ln_margin = 16;
  std::optional<std::string> dispatcher;
  bool a2a_overlap = false;
  std::optional<std::int64_t> pp_chunksize;
};

struct bridge_input {
  bridge_model_input shape;  // model's shape and layout, train.micro_batch_size
  model_in model;
  std::optional<comm_in> comm_overlap;  // nullopt: absent or null, Bridge skips its setup
  ddp_in ddp;
  dist_in dist;
  optimizer_in optimizer;
  platform_in platform;
  launcher_in launcher;
};

// Reads every section (config_error on malformed input); fields a pasted Megatron config carries
// but the resolver does not model, and an unknown preset, are reported to `r`.
bridge_input read_bridge_input(const json& input, report& r);

}  // namespace ob::resolve_detail
