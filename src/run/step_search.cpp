#include "run/step_search.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "analysis/step_metrics.hpp"
#include "base/error.hpp"
#include "model/model_spec.hpp"
#include "plan/step_plan.hpp"
#include "results/document.hpp"
#include "run/step_run.hpp"
#include "run/sweep.hpp"

namespace ob {
namespace {

// The values each searched axis takes (docs/ARCHITECTURE.md §9.6): TP inside an 8-GPU NVLink
// domain, CP and micro-batches in powers of two, every pipeline depth and chunk count that
// check_step accepts.
constexpr int tp_values[] = {1, 2, 4, 8};
constexpr int cp_values[] = {1, 2, 4, 8, 16};
constexpr int mbs_values[] = {1, 2, 4, 8};
constexpr int max_vp = 16;
constexpr recompute_mode recompute_values[] = {recompute_mode::none, recompute_mode::selective,
                                               recompute_mode::full};

void check_search_scenario(const step_scenario& sc) {
  for (const sweep_axis& a : sc.axes) {
    const bool searched = std::find(std::begin(searched_axes), std::end(searched_axes), a.name) !=
                          std::end(searched_axes);
    if (searched)
      throw config_error(axis_label(sc, a.name) + ": --search chooses " + a.name +
                         " itself; leave it out (it keeps the model, GPU, cluster, gpus, gbs, "
                         "seq, dtype and the overlap settings fixed)");
    if (a.values.size() > 1)
      throw config_error(axis_label(sc, a.name) + ": --search keeps " + a.name +
                         " fixed; give one value");
  }
  const bool gbs = std::any_of(sc.axes.begin(), sc.axes.end(),
                               [](const sweep_axis& a) { return a.name == "gbs"; });
  if (!gbs && sc.base.gbs <= 0)
    throw config_error(axis_label(sc, "gbs") +
                       ": --search needs the global batch (it stays fixed while the layout "
                       "changes)");
}

struct layout_point {
  int tp, cp, pp, vp, mbs;
  recompute_mode recompute;
};

step_case candidate(const step_case& base, const layout_point& p) {
  step_case c = base;
  c.cfg.tp = p.tp;
  c.cfg.cp = p.cp;
  c.cfg.pp = p.pp;
  c.cfg.vp = p.vp;
  c.cfg.mbs = p.mbs;
  c.cfg.recompute = p.recompute;
  const ordered_json searched = {{"tp", p.tp},   {"pp", p.pp},
                                 {"vp", p.vp},   {"cp", p.cp},
                                 {"mbs", p.mbs}, {"recompute", to_string(p.recompute)}};
  c.id.clear();
  for (auto it = searched.begin(); it != searched.end(); ++it) {
    c.params[it.key()] = it.value();
    c.id += (c.id.empty() ? "" : ",") + it.key() + "=" +
            (it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
  }
  return c;
}

// Whether pp x vp virtual stages can hold the layers: a given --pipeline-layout fixes their
// count (docs/MOE.md §14.2); otherwise an even split, or one that leaves a layer's room to the
// embedding and the loss.
bool stages_fit(const step_case& base, int layers, int pp, int vp) {
  if (base.cfg.stage_layout)
    return static_cast<std::size_t>(pp * vp) == base.cfg.stage_layout->stages.size();
  return layers % (pp * vp) == 0 || (layers + 2) % (pp * vp) == 0;
}

// Every point of the searched axes whose counts divide the job; check_step refuses the rest.
std::vector<step_case> enumerate(const step_case& base, int layers) {
  std::vector<step_case> out;
  const int gpus = base.cfg.gpus;
  for (int tp : tp_values)
    for (int cp : cp_values) {
      if (gpus % (tp * cp) != 0) continue;
      for (int pp = 1; pp <= std::min(layers, gpus / (tp * cp)); ++pp) {
        if ((gpus / (tp * cp)) % pp != 0) continue;
        for (int vp = 1; vp <= (pp > 1 ? max_vp : 1); ++vp) {
          if (!stages_fit(base, layers, pp, vp)) continue;
          for (int mbs : mbs_values)
            for (recompute_mode r : recompute_values)
              out.push_back(candidate(base, {tp, cp, pp, vp, mbs, r}));
        }
      }
    }
  return out;
}

}  // namespace

std::vector<step_case> search_candidates(const step_scenario& sc) {
  check_search_scenario(sc);
  const step_case base = expand_step_cases(sc).front();
  const model_spec model = load_model_spec(sc.model, axis_label(sc, "model"));
  return enumerate(base, base.cfg.layers > 0 ? base.cfg.layers : static_cast<int>(model.layers));
}

namespace {

// 1F1B's idle share of the busy time: (p - 1) / (m v).
double bubble_fraction(const step_config& c) {
  return static_cast<double>(c.pp - 1) / (static_cast<double>(c.microbatches) * c.vp);
}

}  // namespace

double step_time_bound_ms(const model_spec& m, const gpu_spec& gpu, const step_config& cfg) {
  const double total = model_flops_per_step(m, cfg.gbs, m.seq_length, cfg.layers_used);
  // The logits' share of Megatron's formula, 6 gbs s h V: not recomputed.
  const double logits = 6.0 * static_cast<double>(cfg.gbs) * static_cast<double>(m.seq_length) *
                        static_cast<double>(m.hidden) * static_cast<double>(m.vocab_size);
  // Full recompute runs each layer's forward again: a third of its forward-and-backward FLOPs.
  const double recomputed = cfg.recompute == recompute_mode::full ? (total - logits) / 3 : 0;
  const double per_gpu_s = (total + recomputed) / cfg.gpus / (gpu.peak_tflops(m.type) * 1e12);
  return per_gpu_s * (1 + bubble_fraction(cfg)) * 1e3;
}

namespace {

// A case's layout without its recompute mode: the key dominance compares under.
std::string layout_key(const step_config& c) {
  return std::to_string(c.tp) + "," + std::to_string(c.pp) + "," + std::to_string(c.vp) + "," +
         std::to_string(c.cp) + "," + std::to_string(c.mbs);
}

// The cases worth simulating: those that fit, in the lightest recompute mode that fits (a
// heavier one only adds work). TP beyond a node is refused with the invalid layouts.
std::vector<std::size_t> survivors(const step_spec& spec, search_counts& n) {
  std::map<std::string, recompute_mode> lightest;
  for (const step_run_case& rc : spec.cases) {
    if (rc.memory.over() || rc.c.cfg.tp > rc.cluster.nvlink_domain) continue;
    const auto [it, added] = lightest.emplace(layout_key(rc.c.cfg), rc.c.cfg.recompute);
    if (!added) it->second = std::min(it->second, rc.c.cfg.recompute);
  }
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < spec.cases.size(); ++i) {
    const step_config& c = spec.cases[i].c.cfg;
    if (c.tp > spec.cases[i].cluster.nvlink_domain)
      ++n.refused;
    else if (spec.cases[i].memory.over())
      ++n.pruned_oom;
    else if (lightest.at(layout_key(c)) != c.recompute)
      ++n.pruned_dominated;
    else
      out.push_back(i);
  }
  return out;
}

using search_clock = std::chrono::steady_clock;

// When --budget-s runs out (none: no budget). Each thread looks at it before it starts a case,
// so a spent budget stops the search within about one case's time, however many threads share
// how few cores; the stages before the first case look at it too.
struct search_deadline {
  std::optional<search_clock::time_point> at;
  bool passed() const { return at && search_clock::now() >= *at; }
};

// What the search keeps of each simulated case.
struct search_state {
  std::vector<std::pair<double, std::string>> times;  // step median, id; every rank
  std::map<std::string, step_record> records;         // the cases this rank simulated
  double best_ms = std::numeric_limits<double>::infinity();
};

// This rank's share of `batch` (indices into spec.cases), `threads` at a time, each with its
// own executor; every rank learns every case's step median. A case whose thread found the
// deadline passed is not simulated (0 on every rank after the reduction); returns how many were.
std::size_t simulate_batch(const step_spec& spec, const std::vector<std::size_t>& batch,
                           const search_options& o, int threads, communicator& comm,
                           search_state& st, const search_deadline& deadline) {
  std::vector<std::optional<step_record>> got(batch.size());
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&] {
    try {
      const std::unique_ptr<executor> exec = o.make_executor(spec.gpu);
      for (std::size_t k; (k = next++) < batch.size();)
        if (static_cast<int>(k % static_cast<std::size_t>(comm.size())) == comm.rank() &&
            !deadline.passed())
          got[k] = predict_step_case(spec, spec.cases[batch[k]], *exec);
    } catch (...) {
      const std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  {
    std::vector<std::jthread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  }
  if (failure) std::rethrow_exception(failure);
  std::vector<double> ms(batch.size(), 0.0);
  for (std::size_t k = 0; k < batch.size(); ++k)
    if (got[k]) {
      ms[k] = got[k]->step_ms.median;
      st.records.emplace(got[k]->id, std::move(*got[k]));
    }
  comm.max_reduce(ms);
  std::size_t done = 0;
  for (std::size_t k = 0; k < batch.size(); ++k) {
    if (ms[k] <= 0) continue;  // skipped at the deadline
    ++done;
    st.times.emplace_back(ms[k], spec.cases[batch[k]].c.id);
    st.best_ms = std::min(st.best_ms, ms[k]);
  }
  return done;
}

// Rank 0's answer to `stop`, on every rank (clocks differ between ranks).
bool agreed(bool stop, communicator& comm) {
  std::string s = stop ? "1" : "0";
  comm.broadcast(s, 0);
  return s == "1";
}

}  // namespace

namespace {

double seconds_since(search_clock::time_point t0) {
  return std::chrono::duration<double>(search_clock::now() - t0).count();
}

std::string best_id(const search_state& st) {
  const auto it = std::min_element(st.times.begin(), st.times.end());
  return it == st.times.end() ? "" : it->second;
}

// The layouts in bound order, batch by batch, until the next bound cannot beat the best step
// found (the best is then exact) or the budget is spent.
void search_layouts(const step_spec& spec, const std::vector<std::size_t>& order,
                    const std::vector<double>& bound, const search_options& o, int threads,
                    communicator& comm, search_state& st, search_counts& n,
                    const search_deadline& deadline) {
  const std::size_t per_batch = static_cast<std::size_t>(threads * comm.size());
  n.stopped_by = "exhausted";
  for (std::size_t i = 0; i < order.size();) {
    if (bound[order[i]] >= st.best_ms) {
      n.stopped_by = "bound";
      n.pruned_bound = order.size() - i;
      return;
    }
    if (agreed(deadline.passed(), comm)) {
      n.stopped_by = "budget";
      n.skipped_budget += order.size() - i;
      return;
    }
    std::vector<std::size_t> batch;
    for (; i < order.size() && batch.size() < per_batch && bound[order[i]] < st.best_ms; ++i)
      batch.push_back(order[i]);
    if (batch.empty()) break;  // unreachable: the first bound was below the best
    const std::size_t done = simulate_batch(spec, batch, o, threads, comm, st, deadline);
    n.simulated += done;
    if (o.progress) o.progress(n.simulated, order.size(), best_id(st));
    if (done < batch.size()) {  // the deadline passed inside the batch
      n.stopped_by = "budget";
      n.skipped_budget += batch.size() - done + (order.size() - i);
      return;
    }
  }
}

bool axis_given(const step_scenario& sc, std::string_view name) {
  return std::any_of(sc.axes.begin(), sc.axes.end(),
                     [name](const sweep_axis& a) { return a.name == name; });
}

// The best layout with one overlap setting changed: each CDMC Bridge's launcher picks among, and
// each overlap Bridge's defaults switch on, switched off. A setting the user fixed stays fixed.
std::vector<step_case> overlap_variants(const step_scenario& sc, const step_run_case& best) {
  std::vector<step_case> out;
  const auto add = [&](const std::string& key, const ordered_json& value, const std::string& text,
                       const std::function<void(step_config&)>& set) {
    step_case c = best.c;
    set(c.cfg);
    c.params[key] = value;
    c.id += "," + key + "=" + text;
    out.push_back(std::move(c));
  };
  const step_config& cfg = best.c.cfg;
  if (!axis_given(sc, "cdmc"))
    for (int v : {1, 8, 32})
      if (v != best.cdmc) add("cdmc", v, std::to_string(v), [v](step_config& c) { c.cdmc = v; });
  const auto off = [](bool step_config::*flag) {
    return [flag](step_config& c) { c.*flag = false; };
  };
  if (!axis_given(sc, "tp_overlap") && cfg.tp_overlap && cfg.tp > 1)
    add("tp_overlap", false, "off", off(&step_config::tp_overlap));
  if (!axis_given(sc, "dp_overlap") && cfg.dp_overlap && cfg.dp * cfg.cp > 1)
    add("dp_overlap", false, "off", off(&step_config::dp_overlap));
  if (!axis_given(sc, "pp_overlap") && cfg.pp_overlap && cfg.vp > 1)
    add("pp_overlap", false, "off", off(&step_config::pp_overlap));
  return out;
}

const step_run_case* find_case(const std::vector<const step_spec*>& specs, const std::string& id) {
  for (const step_spec* s : specs)
    for (const step_run_case& rc : s->cases)
      if (rc.c.id == id) return &rc;
  return nullptr;
}

// The `top` fastest, every one a full record on every rank (a case another rank simulated is
// predicted again here: the sim is deterministic).
std::vector<step_record> top_records(search_state& st, const std::vector<const step_spec*>& specs,
                                     const search_options& o) {
  std::stable_sort(st.times.begin(), st.times.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<step_record> out;
  std::unique_ptr<executor> exec;
  for (std::size_t k = 0; k < st.times.size() && out.size() < static_cast<std::size_t>(o.top);
       ++k) {
    const std::string& id = st.times[k].second;
    if (const auto it = st.records.find(id); it != st.records.end()) {
      out.push_back(it->second);
      continue;
    }
    if (!exec) exec = o.make_executor(specs.front()->gpu);
    const step_run_case* rc = find_case(specs, id);
    out.push_back(predict_step_case(*specs.front(), *rc, *exec));
  }
  return out;
}

ordered_json counts_json(const search_counts& n, int threads, const communicator& comm) {
  return {{"candidates", n.candidates},
          {"refused", n.refused},
          {"evaluated", n.candidates - n.refused},
          {"pruned_oom", n.pruned_oom},
          {"pruned_dominated", n.pruned_dominated},
          {"pruned_bound", n.pruned_bound},
          {"skipped_budget", n.skipped_budget},
          {"simulated", n.simulated},
          {"variants", n.variants},
          {"seconds", n.seconds},
          {"stopped_by", n.stopped_by},
          {"threads", threads},
          {"ranks", comm.size()}};
}

}  // namespace

namespace {

// The per-layer shape: what sets one layer's kernels (the layout's pp and vp do not).
std::string shape_key(const step_config& c) {
  return std::to_string(c.tp) + "," + std::to_string(c.cp) + "," + std::to_string(c.mbs) + "," +
         std::string(to_string(c.recompute));
}

// One layer's forward and backward with no communication (ms), per layer shape: the compute
// (the optimizer's step not counted: it grows with the layers) of two one-micro-batch steps of
// one and two layers on tp x cp GPUs, compute-only, differenced so the embedding and the loss
// drop out. Every shape's small steps are resolved in one pass; a shape whose small step cannot
// be built is left out.
std::map<std::string, double> layer_compute_ms(
    const step_scenario& sc, const std::map<std::string, const step_run_case*>& shapes,
    executor& exec) {
  std::vector<step_case> tiny;
  for (const auto& [key, rc] : shapes)
    for (int layers : {1, 2}) {
      step_case t = rc->c;
      t.id = key + "/layers=" + std::to_string(layers);
      t.cfg.pp = t.cfg.vp = 1;
      t.cfg.gpus = t.cfg.tp * t.cfg.cp;
      t.cfg.gbs = t.cfg.mbs;
      t.cfg.layers = layers;
      tiny.push_back(std::move(t));
    }
  std::size_t refused = 0;
  const step_spec spec = resolve_step_cases(sc, tiny, refused);
  std::map<std::string, double> busy;
  for (const step_run_case& rc : spec.cases) busy[rc.c.id] = compute_only_busy_ms(spec, rc, exec);
  std::map<std::string, double> out;
  for (const auto& [key, rc] : shapes) {
    const auto one = busy.find(key + "/layers=1"), two = busy.find(key + "/layers=2");
    if (one != busy.end() && two != busy.end()) out[key] = two->second - one->second;
  }
  return out;
}

// The transformer layers on the most loaded stage.
int most_stage_layers(const step_config& c) {
  int most = 0;
  for (int stage : {0, c.pp / 2, c.pp - 1}) {
    int n = 0;
    for (int l : stage_chunk_layers(c, stage)) n += l;
    most = std::max(most, n);
  }
  return most;
}

}  // namespace

std::vector<double> search_bounds(const step_scenario& sc, const step_spec& spec,
                                  const std::vector<std::size_t>& order, const search_options& o) {
  std::map<std::string, const step_run_case*> shapes;
  for (std::size_t i : order) shapes.emplace(shape_key(spec.cases[i].c.cfg), &spec.cases[i]);
  const std::unique_ptr<executor> exec = o.make_executor(spec.gpu);
  const std::map<std::string, double> per_layer = layer_compute_ms(sc, shapes, *exec);
  std::vector<double> out(spec.cases.size(), 0.0);
  for (std::size_t i : order) {
    const step_run_case& rc = spec.cases[i];
    const step_config& c = rc.c.cfg;
    out[i] = step_time_bound_ms(rc.model, spec.gpu, c);
    if (const auto it = per_layer.find(shape_key(c)); it != per_layer.end())
      out[i] = std::max(
          out[i], it->second * most_stage_layers(c) * c.microbatches * (1 + bubble_fraction(c)));
  }
  return out;
}

namespace {

// The candidates resolved (check_step, the memory estimate) a slice at a time: resolving every
// layout is most of a small search's time, so a spent budget stops it too and what is left
// unresolved counts as skipped. Returns whether the budget cut it short.
bool resolve_within_budget(const step_scenario& sc, const std::vector<step_case>& all,
                           const search_deadline& deadline, communicator& comm, step_spec& spec,
                           search_counts& n) {
  constexpr std::size_t slice = 16;
  for (std::size_t i = 0; i < all.size(); i += slice) {
    if (i > 0 && agreed(deadline.passed(), comm)) {
      n.skipped_budget += all.size() - i;
      return true;
    }
    const auto last = all.begin() + static_cast<std::ptrdiff_t>(std::min(i + slice, all.size()));
    step_spec part =
        resolve_step_cases(sc, {all.begin() + static_cast<std::ptrdiff_t>(i), last}, n.refused);
    if (i == 0) {
      spec = std::move(part);
      continue;
    }
    for (step_run_case& rc : part.cases) spec.cases.push_back(std::move(rc));
  }
  return false;
}

// The best layout's overlap variants, unless the budget is spent; how many were simulated.
std::size_t search_variants(const step_scenario& sc, const search_options& o, int threads,
                            communicator& comm, search_state& st, const search_deadline& deadline,
                            std::vector<const step_spec*>& specs, step_spec& variants) {
  if (st.times.empty() || agreed(deadline.passed(), comm)) return 0;
  std::size_t none = 0;
  variants = resolve_step_cases(sc, overlap_variants(sc, *find_case(specs, best_id(st))), none);
  specs.push_back(&variants);
  std::vector<std::size_t> all_variants(variants.cases.size());
  for (std::size_t i = 0; i < all_variants.size(); ++i) all_variants[i] = i;
  if (all_variants.empty()) return 0;
  return simulate_batch(variants, all_variants, o, threads, comm, st, deadline);
}

}  // namespace

step_doc search_step(const step_scenario& sc, const search_options& o, communicator& comm) {
  check_search_scenario(sc);
  const auto t0 = search_clock::now();
  search_deadline deadline;
  if (o.budget_s > 0)
    deadline.at = t0 + std::chrono::duration_cast<search_clock::duration>(
                           std::chrono::duration<double>(o.budget_s));
  search_counts n;
  const std::vector<step_case> all = search_candidates(sc);
  n.candidates = all.size();
  step_spec spec;
  const bool cut = resolve_within_budget(sc, all, deadline, comm, spec, n);
  std::vector<std::size_t> order = survivors(spec, n);
  // No bound is worth computing once the budget is spent: the layouts' loop stops at once.
  const std::vector<double> bound = agreed(deadline.passed(), comm)
                                        ? std::vector<double>(spec.cases.size(), 0.0)
                                        : search_bounds(sc, spec, order, o);
  std::stable_sort(order.begin(), order.end(),
                   [&bound](std::size_t a, std::size_t b) { return bound[a] < bound[b]; });
  const int threads = o.threads > 0
                          ? o.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  search_state st;
  search_layouts(spec, order, bound, o, threads, comm, st, n, deadline);
  if (cut) n.stopped_by = "budget";
  std::vector<const step_spec*> specs = {&spec};
  step_spec variants;
  n.variants = search_variants(sc, o, threads, comm, st, deadline, specs, variants);
  step_doc doc;
  const std::unique_ptr<executor> exec = o.make_executor(spec.gpu);
  ordered_json config = spec.config;
  config["warnings"] = spec.warnings;
  static_cast<doc_header&>(doc) = new_doc_header(*exec, spec.gpu, comm, config);
  doc.cases = top_records(st, specs, o);
  n.seconds = seconds_since(t0);
  doc.search = counts_json(n, threads, comm);
  doc.rec = recommend(doc);
  return doc;
}

}  // namespace ob
