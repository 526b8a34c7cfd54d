#include "trace/kineto_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <istream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "base/error.hpp"
#include "trace/trace_input.hpp"

namespace ob::trace {

std::int64_t microseconds_text_to_ns(const std::string& text) {
  const std::size_t dot = text.find('.');
  const bool plain = text.find_first_of("eE") == std::string::npos;
  if (!plain) return std::llround(std::stod(text) * 1000.0);
  std::int64_t whole = 0;
  const std::string_view w(text.data(), dot == std::string::npos ? text.size() : dot);
  std::from_chars(w.data(), w.data() + w.size(), whole);
  std::int64_t frac = 0;
  if (dot != std::string::npos) {
    std::string digits = text.substr(dot + 1, 3);
    digits.resize(3, '0');
    std::from_chars(digits.data(), digits.data() + 3, frac);
  }
  const bool negative = !text.empty() && text[0] == '-';
  return whole * 1000 + (negative ? -frac : frac);
}

namespace {

// The fields of one trace event that `analyze` uses.
struct raw_event {
  std::string ph, cat, name, collective, group_text;
  std::int64_t ts_ns = 0, dur_ns = -1, pid = -1, tid = -1, device = -1, stream = -1;
  std::int64_t correlation = -1;
  std::vector<int> group;
  void reset() {
    ph.clear(), cat.clear(), name.clear(), collective.clear(), group_text.clear(), group.clear();
    ts_ns = 0, dur_ns = -1, pid = tid = device = stream = correlation = -1;
  }
};

std::int64_t trailing_integer(const std::string& s) {
  std::size_t i = s.size();
  while (i > 0 && std::isdigit(static_cast<unsigned char>(s[i - 1]))) --i;
  std::int64_t v = -1;
  if (i < s.size()) std::from_chars(s.data() + i, s.data() + s.size(), v);
  return v;
}

std::vector<int> integers_in(const std::string& s) {
  std::vector<int> out;
  for (std::size_t i = 0; i < s.size();) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    int v = 0;
    const auto r = std::from_chars(s.data() + i, s.data() + s.size(), v);
    out.push_back(v);
    i = static_cast<std::size_t>(r.ptr - s.data());
  }
  return out;
}

// A SAX handler with a small state machine: the root (object or array), "traceEvents", one event
// object, its "args", and "distributedInfo". Everything else is skipped by depth.
class kineto_sax {
 public:
  using json = nlohmann::json;
  kineto_sax(rank_trace& out, std::string marker) : out_(out), marker_(std::move(marker)) {}

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t v) { return on_number(v, nullptr); }
  bool number_unsigned(json::number_unsigned_t v) {
    return on_number(static_cast<std::int64_t>(v), nullptr);
  }
  bool number_float(json::number_float_t v, const std::string& text) {
    return on_number(std::llround(v), &text);
  }
  bool string(std::string& v) { return on_string(v); }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return open('{'); }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open('['); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    const int d = depth();
    if (d == 1) top_key_ = k;
    if (d == event_depth()) event_key_ = k;
    if (d == event_depth() + 1) arg_key_ = k;
    if (d == 2 && in_dist_) dist_key_ = k;
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) {
    throw config_error(out_.file + ": not a Kineto/Chrome trace (JSON error at byte " +
                       std::to_string(pos) + ": " + e.what() + ")");
  }

  bool saw_events() const { return events_depth_ > 0; }
  std::int64_t base_ns = 0;  // "baseTimeNanoseconds": newer traces' times count from it
  std::vector<step_range> cpu_steps, gpu_steps;

 private:
  int depth() const { return static_cast<int>(stack_.size()); }
  int event_depth() const { return events_depth_ + 1; }
  bool in_event() const { return events_depth_ > 0 && depth() >= event_depth(); }

  bool open(char kind) {
    stack_.push_back(kind);
    const int d = depth();
    if (d == 1 && kind == '[') events_depth_ = 1;  // the JSON Array Format: events at the root
    if (d == 2 && kind == '[' && top_key_ == "traceEvents" && stack_[0] == '{') events_depth_ = 2;
    if (d == 2 && kind == '{' && top_key_ == "distributedInfo") in_dist_ = true;
    if (events_depth_ > 0 && d == event_depth() && kind == '{') ev_.reset();
    return true;
  }
  bool close() {
    const int d = depth();
    if (events_depth_ > 0 && d == event_depth() && stack_.back() == '{') commit();
    if (d == 2) in_dist_ = false;
    stack_.pop_back();
    return true;
  }
  // An event field, an args field (one level down), or an entry of an args array such as a
  // "Process Group Ranks" list written as JSON.
  bool on_number(std::int64_t v, const std::string* text) {
    const int d = depth();
    if (in_dist_ && d == 2) {
      if (dist_key_ == "rank") out_.rank = static_cast<int>(v);
      if (dist_key_ == "world_size") out_.world_size = static_cast<int>(v);
      return true;
    }
    if (d == 1 && top_key_ == "baseTimeNanoseconds") base_ns = v;
    if (!in_event()) return true;
    if (d == event_depth()) {
      if (event_key_ == "ts")
        ev_.ts_ns = text ? microseconds_text_to_ns(*text) : v * 1000;
      else if (event_key_ == "dur")
        ev_.dur_ns = text ? microseconds_text_to_ns(*text) : v * 1000;
      else if (event_key_ == "pid")
        ev_.pid = v;
      else if (event_key_ == "tid")
        ev_.tid = v;
    } else if (d == event_depth() + 1 && event_key_ == "args") {
      if (arg_key_ == "device")
        ev_.device = v;
      else if (arg_key_ == "stream")
        ev_.stream = v;
      else if (arg_key_ == "correlation")
        ev_.correlation = v;
    } else if (d == event_depth() + 2 && arg_key_ == "Process Group Ranks") {
      ev_.group.push_back(static_cast<int>(v));
    }
    return true;
  }
  bool on_string(std::string& v) {
    const int d = depth();
    if (!in_event()) return true;
    if (d == event_depth()) {
      if (event_key_ == "ph")
        ev_.ph = v;
      else if (event_key_ == "cat")
        ev_.cat = v;
      else if (event_key_ == "name")
        ev_.name.swap(v);
      else if (event_key_ == "pid")
        ev_.pid = trailing_integer(v);
      else if (event_key_ == "tid")
        ev_.tid = trailing_integer(v);
      else if (event_key_ == "ts")
        ev_.ts_ns = microseconds_text_to_ns(v);
      else if (event_key_ == "dur")
        ev_.dur_ns = microseconds_text_to_ns(v);
    } else if (d == event_depth() + 1 && event_key_ == "args") {
      if (arg_key_ == "Collective name")
        ev_.collective = v;
      else if (arg_key_ == "Process Group Ranks")
        ev_.group_text = v;
    }
    return true;
  }
  void commit();
  void commit_gpu(kernel_class cls);

 public:
  void attach_launches();

 private:
  int intern_name(std::string& name);
  int intern_group(std::vector<int> ranks);

  rank_trace& out_;
  std::string marker_;
  std::vector<char> stack_;
  int events_depth_ = 0;
  bool in_dist_ = false;
  std::string top_key_, event_key_, arg_key_, dist_key_;
  raw_event ev_;
  std::unordered_map<std::string, int> name_ids_;
  std::map<std::vector<int>, int> group_ids_;
  struct call {
    std::int64_t start = 0, end = 0, tid = -1;
    bool launch = false;  // a kernel launch (not a memcpy or memset call)
  };
  // A CPU op with process-group args (PyTorch's record_param_comms around each c10d call).
  struct comm_op {
    std::int64_t start = 0, end = 0;
    int group_id = -1;
    std::string collective;
  };
  std::map<std::int64_t, std::vector<comm_op>> comm_ops_;  // by thread
  void keep_comm_op();
  void group_from_comm_op(gpu_event& e, const call& c);
  std::unordered_map<std::int64_t, call> calls_;  // by correlation id
};

void kineto_sax::commit() {
  if (ev_.ph != "X" || ev_.dur_ns < 0) return;
  const bool gpu_side = ev_.cat == "gpu_user_annotation";
  const bool annotation = gpu_side || ev_.cat == "user_annotation" || ev_.cat == "cpu_op" ||
                          ev_.cat == "python_function";
  if (annotation) {
    if (ev_.cat == "cpu_op" && (!ev_.group.empty() || !ev_.group_text.empty())) keep_comm_op();
    std::vector<step_range>& steps = gpu_side ? gpu_steps : cpu_steps;
    const auto n = step_marker_number(ev_.name, marker_, static_cast<long long>(steps.size()));
    if (n) steps.push_back({*n, ev_.ts_ns, ev_.ts_ns + ev_.dur_ns});
    return;
  }
  if (ev_.cat == "cuda_runtime" || ev_.cat == "cuda_driver") {
    const bool launch = ev_.name.find("Launch") != std::string::npos;
    if (ev_.correlation >= 0 && (launch || ev_.name.find("Memcpy") != std::string::npos ||
                                 ev_.name.find("Memset") != std::string::npos))
      calls_[ev_.correlation] = {ev_.ts_ns, ev_.ts_ns + ev_.dur_ns, ev_.tid, launch};
    return;
  }
  if (ev_.cat == "kernel" || ev_.cat == "Kernel")
    commit_gpu(refine_by_collective(classify_kernel(ev_.name), ev_.collective));
  else if (ev_.cat == "gpu_memcpy" || ev_.cat == "Memcpy")
    commit_gpu(classify_copy(ev_.name.find("PtoP") != std::string::npos));
  else if (ev_.cat == "gpu_memset" || ev_.cat == "Memset")
    commit_gpu(classify_memset());
}

void kineto_sax::commit_gpu(kernel_class cls) {
  gpu_event e;
  e.start_ns = ev_.ts_ns;
  e.end_ns = ev_.ts_ns + ev_.dur_ns;
  e.device =
      static_cast<std::int32_t>(ev_.device >= 0 ? ev_.device : std::max<std::int64_t>(ev_.pid, 0));
  e.stream = ev_.stream >= 0 ? ev_.stream : ev_.tid;
  e.cls = cls;
  e.name_id = intern_name(ev_.name);
  if (!ev_.group_text.empty()) ev_.group = integers_in(ev_.group_text);
  if (!ev_.group.empty()) e.group_id = intern_group(std::move(ev_.group));
  // Until attach_launches, issued_ns holds the correlation id (-1: none), which costs no memory
  // of its own in a trace of millions of kernels.
  e.issued_ns = ev_.correlation;
  out_.events.push_back(e);
}

// The CPU call that issued each GPU activity, by CUPTI's correlation id (either may come first in
// the file): its start places the activity in a step, and a communication kernel's launch end
// is where its queue wait begins (docs/ANALYZE.md §6). A trace that records calls but not an
// activity's issued it before the profile's window.
void kineto_sax::attach_launches() {
  for (auto& [tid, ops] : comm_ops_)
    std::sort(ops.begin(), ops.end(),
              [](const comm_op& a, const comm_op& b) { return a.start < b.start; });
  for (gpu_event& e : out_.events) {
    if (e.issued_ns < 0) continue;  // no correlation: issued_ns stays "unknown"
    const auto it = calls_.find(e.issued_ns);
    if (it == calls_.end()) {
      e.issued_ns = calls_.empty() ? -1 : issued_before_trace;
      continue;
    }
    e.issued_ns = it->second.start;
    if (e.cls.cat == category::comm && it->second.launch) e.launch_ns = it->second.end;
    if (e.cls.cat == category::comm && e.group_id < 0) group_from_comm_op(e, it->second);
  }
}

void kineto_sax::keep_comm_op() {
  if (!ev_.group_text.empty()) ev_.group = integers_in(ev_.group_text);
  if (ev_.group.empty()) return;
  comm_ops_[ev_.tid].push_back(
      {ev_.ts_ns, ev_.ts_ns + ev_.dur_ns, intern_group(std::move(ev_.group)), ev_.collective});
}

// Communication without process-group args of its own (a peer copy, or a kernel of a PyTorch
// that writes them on the CPU op only) takes those of the innermost CPU op with them that
// encloses its issuing call on the same thread; a kernel's kind follows that op's collective.
void kineto_sax::group_from_comm_op(gpu_event& e, const call& c) {
  const auto ops = comm_ops_.find(c.tid);
  if (ops == comm_ops_.end()) return;
  // Sorted by start (attach_launches): the latest-starting op that contains the call is the
  // innermost; ops nest only a few deep, so a short look back finds it.
  const std::vector<comm_op>& v = ops->second;
  auto it = std::upper_bound(v.begin(), v.end(), c.start,
                             [](std::int64_t t, const comm_op& op) { return t < op.start; });
  const comm_op* inner = nullptr;
  for (int back = 0; it != v.begin() && back < 8 && !inner; ++back)
    if (--it; c.start <= it->end) inner = &*it;
  if (!inner) return;
  e.group_id = inner->group_id;
  if (e.cls.kind != kernel_kind::p2p_copy) e.cls = refine_by_collective(e.cls, inner->collective);
}

int kineto_sax::intern_name(std::string& name) {
  const auto [it, added] = name_ids_.try_emplace(name, static_cast<int>(out_.names.size()));
  if (added) out_.names.push_back(name);
  return it->second;
}

int kineto_sax::intern_group(std::vector<int> ranks) {
  std::sort(ranks.begin(), ranks.end());
  const auto [it, added] = group_ids_.try_emplace(ranks, static_cast<int>(out_.groups.size()));
  if (added) out_.groups.push_back(std::move(ranks));
  return it->second;
}

// Newer Kineto traces write times from "baseTimeNanoseconds" (epoch ns); older ones epoch times
// already. Either way the rank's times end on the epoch clock, so that ranks line up.
void shift_clock(rank_trace& t, std::int64_t base) {
  if (base == 0) return;
  t.clock_origin_ns = base;
  for (gpu_event& e : t.events) {
    e.start_ns += base, e.end_ns += base;
    if (e.launch_ns >= 0) e.launch_ns += base;
    if (e.issued_ns >= 0) e.issued_ns += base;
  }
}

}  // namespace

rank_trace read_kineto(const std::string& path, const std::string& step_marker) {
  rank_trace out;
  out.file = path;
  out.format = "kineto";
  gz_streambuf buf(path);
  std::istream in(&buf);
  kineto_sax sax(out, step_marker);
  nlohmann::json::sax_parse(in, &sax);
  if (!sax.saw_events())
    throw config_error(path + ": not a Kineto/Chrome trace (no \"traceEvents\" array)");
  sax.attach_launches();
  shift_clock(out, sax.base_ns);
  if (out.events.empty())
    throw config_error(path +
                       ": no GPU kernels in the trace (was the profiler run with "
                       "ProfilerActivity.CUDA?)");
  out.steps_on_cpu = !sax.cpu_steps.empty() || sax.gpu_steps.empty();
  out.steps = out.steps_on_cpu ? std::move(sax.cpu_steps) : std::move(sax.gpu_steps);
  for (step_range& st : out.steps) st.start_ns += sax.base_ns, st.end_ns += sax.base_ns;
  std::sort(out.steps.begin(), out.steps.end(),
            [](const step_range& a, const step_range& b) { return a.start_ns < b.start_ns; });
  std::sort(out.events.begin(), out.events.end(),
            [](const gpu_event& a, const gpu_event& b) { return a.start_ns < b.start_ns; });
  return out;
}

}  // namespace ob::trace
