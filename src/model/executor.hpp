#pragma once
// The executor contract: both backends (sim, cuda/loopback) take the five variant schedules of a
// case and return per-iteration times and per-op intervals. Metrics never know which ran.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json_util.hpp"
#include "model/cdmc.hpp"
#include "model/cluster.hpp"
#include "model/ir.hpp"
#include "model/program.hpp"

namespace ob {

// One op's interval inside one iteration, µs from the iteration's start event. The optional
// times say why an op started when it did; the simulator knows them, a real backend sees only
// start and end and leaves them unset (the diagnosis then infers, docs/ARCHITECTURE.md §7.1).
struct op_interval {
  op_interval() = default;
  // What every executor knows; the optional times stay unset unless it fills them.
  op_interval(int id, double start, double end) : op_id(id), start_us(start), end_us(end) {}
  int op_id = 0;
  double start_us = 0;
  double end_us = 0;
  std::optional<double> enqueue_us;   // the host finished enqueuing it
  std::optional<double> deps_met_us;  // every dependency resolved (+ cross-queue event delay)
  std::optional<double> ready_us;     // also enqueued and at the head of its hardware queue
};

struct variant_measurement {
  std::vector<double> iter_ms;   // one per timed iteration (max over ranks)
  std::vector<op_interval> ops;  // one representative iteration; empty when not instrumented
  std::int64_t wrong = 0;        // elements that failed verification (collectives, chunked GEMMs)
  // Notes the case's result should carry: clock throttling, verification detail, SM mismatch.
  std::vector<std::string> warnings;
};

// Indexed by static_cast<int>(variant).
using variant_schedules = std::array<schedule, 5>;
using variant_measurements = std::array<variant_measurement, 5>;

variant_schedules make_variant_schedules(const schedule& planned);

// How one case is measured: the one options struct every backend reads (docs/ARCHITECTURE.md §6).
struct measure_options {
  int warmup = 5;
  int iters = 20;
  bool graphs = false;
  int cdmc = cdmc_default;  // the CDMC the case asks for; real backends refuse another
  double timeout_s = 300;   // a hung op aborts the run after this long (exit 4)
  bool verify = true;       // check collective and chunked-GEMM outputs (real backends)
  // The variants to measure; the others come back empty (no iterations, no intervals). `coll`
  // needs only comm_only.
  std::array<bool, 5> variants = {true, true, true, true, true};
  // The nodes and NICs of the case (the simulator costs inter-node communication on them);
  // nullptr: the executor's own.
  const cluster_spec* cluster = nullptr;
  bool measures(variant v) const { return variants[static_cast<int>(v)]; }
  // Test hook (run/fault_injection.hpp): this simulated rank never joins the case's first
  // collective, so the sim reports a hang; -1: none. Real backends never see it.
  int inject_skip_rank = -1;
};

// A multi-stage program's variants (only the measured ones are filled) and, per variant, one
// measurement per stage; iter_ms is the same on every stage: the program's time, the slowest
// stage's.
using program_variants = std::array<program, 5>;
using program_measurements = std::array<std::vector<variant_measurement>, 5>;
program_variants make_program_variants(const program& planned, const measure_options& opts);
// Whether the measured variants are a layer or pair case (program::one_stage_case), which
// backends run on their per-case path rather than as a training step.
bool is_one_stage_case(const program_variants& pv, const measure_options& opts);

class executor {
 public:
  virtual ~executor() = default;
  virtual std::string backend() const = 0;  // "sim", "cuda" or "loopback"
  virtual bool simulated() const = 0;
  // A human label for tables and JSON: "sim (model, not a measurement)", "loopback (no NVLink)".
  virtual std::string label() const = 0;
  // The one contract (docs/ARCHITECTURE.md §2): every case is a program. A training step is one
  // stage per pipeline stage with the transfers between them; a layer or pair case is one stage
  // (one_stage_case), whose ranks are its collectives' groups. Only the measured variants are
  // filled; each comes back with one measurement per stage.
  virtual program_measurements measure(const program_variants& variants,
                                       const measure_options& opts) = 0;
  // A layer or pair case's five schedules as a one-stage program, and its one stage back.
  variant_measurements measure(const variant_schedules& variants, const measure_options& opts);
  // Environment fingerprint for result JSON `env` (docs/ARCHITECTURE.md §7), backend-specific
  // fields only.
  virtual json environment() const = 0;
};

}  // namespace ob
