#pragma once
// The whole flow from a scenario to a result, in order. Every subcommand that measures goes
// through these stages; the CLI parses flags, calls them, and prints. docs/ARCHITECTURE.md §2
// walks through the same flow with the types each stage hands to the next.
//
//  1. Load       layer_scenario load_layer_scenario(path)            core/scenario.hpp
//                void apply_override(layer_scenario&, "key=v1,v2")     (`--set`)
//  2. Resolve    run_spec resolve_run(const layer_scenario&)         core/run_spec.hpp
//                  - bridge_resolution resolve_bridge(config)        core/resolve.hpp
//                  - layer_workload make_layer_workload(model, layout) core/workload.hpp
//                  - slot_overlap_map te_effective_overlap(preset)   core/presets.hpp
//                  - std::vector<sweep_case> expand_axes(axes)        core/sweep_axes.hpp
//                sweep_request pair_sweep(...), coll_request          core/micro_sweeps.hpp
//  3. Plan       schedule plan_case(const run_spec&, const sweep_case&) -> plan_layer,
//                plan_pair, plan_collective                           core/plan.hpp
//                variant_schedules make_variant_schedules(schedule)   core/executor.hpp
//  4. Execute    variant_measurements executor::measure(variants)     core/executor.hpp
//                  sim: src/sim; cuda and loopback: the src/cuda plugin
//                variant_measurements measure_variants(...)           core/sweep.hpp
//                  (max over ranks per iteration, sum of #wrong)
//  5. Metrics    case_metrics compute_metrics(variants, measurements) core/metrics.hpp
//  6. Result     sweep_result run_sweep(request, executor, ranks, ...) core/sweep.hpp
//                result_doc -> table, JSON, CSV, trace                core/result.hpp,
//                                                                     core/report_table.hpp
#include "core/executor.hpp"
#include "core/metrics.hpp"
#include "core/micro_sweeps.hpp"
#include "core/plan.hpp"
#include "core/result.hpp"
#include "core/run_spec.hpp"
#include "core/scenario.hpp"
#include "core/sweep.hpp"
