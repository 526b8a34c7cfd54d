#pragma once
// The whole flow from a scenario to a result, in order. Every subcommand that measures goes
// through these stages; the CLI parses flags, calls them, and prints. docs/ARCHITECTURE.md §2
// walks through the same flow with the types each stage hands to the next.
//
//  1. Load       layer_scenario load_layer_scenario(path)            spec/scenario.hpp
//                void apply_override(layer_scenario&, "key=v1,v2")     (`--set`)
//  2. Resolve    run_spec resolve_run(const layer_scenario&)         run/run_spec.hpp
//                  - bridge_resolution resolve_bridge(config)        bridge/resolve.hpp
//                  - layer_workload make_layer_workload(model, layout) model/workload.hpp
//                  - slot_overlap_map te_effective_overlap(preset)   spec/presets.hpp
//                  - std::vector<sweep_case> expand_axes(axes)        spec/sweep_axes.hpp
//                sweep_request pair_sweep(...), coll_request          run/micro_sweeps.hpp
//  3. Plan       schedule plan_case(const run_spec&, const sweep_case&) -> plan_layer,
//                plan_pair, plan_collective                           plan/plan.hpp
//                variant_schedules make_variant_schedules(schedule)   model/executor.hpp
//  4. Execute    variant_measurements executor::measure(variants)     model/executor.hpp
//                  sim: src/sim; cuda and loopback: the src/cuda plugin
//                variant_measurements measure_variants(...)           run/sweep.hpp
//                  (max over ranks per iteration, sum of #wrong)
//  5. Metrics    case_metrics compute_metrics(variants, measurements) analysis/metrics.hpp
//  6. Result     sweep_result run_sweep(request, executor, ranks, ...) run/sweep.hpp
//                result_doc -> table, JSON, CSV, trace                results/result.hpp,
//                                                                     results/report_table.hpp
#include "analysis/metrics.hpp"
#include "model/executor.hpp"
#include "plan/plan.hpp"
#include "results/result.hpp"
#include "run/micro_sweeps.hpp"
#include "run/run_spec.hpp"
#include "run/sweep.hpp"
#include "spec/scenario.hpp"
