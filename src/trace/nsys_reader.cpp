#include "trace/nsys_reader.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "base/error.hpp"
#include "trace/trace_input.hpp"

namespace ob::trace {

namespace {

using json = nlohmann::json;

struct db_closer {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct stmt_closer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using db_ptr = std::unique_ptr<sqlite3, db_closer>;
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_closer>;

// Runs `sql`, calling `row` per result row. A failing statement is the file's fault (a column
// this export lacks): config_error naming the file and SQLite's message.
template <typename Row>
void query(sqlite3* db, const std::string& path, const std::string& sql, Row&& row) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
    throw config_error(path + ": not an nsys export this reader knows (" + sqlite3_errmsg(db) +
                       ")");
  const stmt_ptr st(raw);
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) row(st.get());
  if (rc != SQLITE_DONE)
    throw config_error(path + ": reading the SQLite file failed (" + sqlite3_errmsg(db) + ")");
}

std::set<std::string> table_names(sqlite3* db, const std::string& path) {
  std::set<std::string> names;
  query(db, path, "SELECT name FROM sqlite_master WHERE type IN ('table','view')",
        [&](sqlite3_stmt* s) {
          names.insert(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
        });
  return names;
}

// The ranks of one file, keyed by deviceId, and the names interned per rank.
struct nsys_state {
  std::string path;
  std::map<int, rank_trace> by_device;
  std::map<int, std::map<std::string, int>> name_ids;

  rank_trace& rank_of(int device) {
    rank_trace& r = by_device[device];
    if (r.file.empty()) r.file = path, r.format = "nsys";
    return r;
  }
  // Communication kernels' and peer copies' issuing calls (thread, time), to find their NCCL
  // range.
  struct launch {
    int device;
    std::size_t index;
    std::int64_t tid, at;
  };
  std::vector<launch> launches;
  std::map<int, std::int64_t> device_process;  // the process whose kernels a GPU ran

  void add(int device, std::int64_t start, std::int64_t end, std::int64_t stream,
           const std::string& name, kernel_class cls) {
    rank_trace& r = rank_of(device);
    auto& ids = name_ids[device];
    const auto [it, added] = ids.try_emplace(name, static_cast<int>(r.names.size()));
    if (added) r.names.push_back(name);
    gpu_event e;
    e.start_ns = start, e.end_ns = end, e.stream = stream, e.device = device;
    e.name_id = it->second, e.cls = cls;
    r.events.push_back(e);
  }
};

std::string text_at(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

std::set<std::string> columns_of(sqlite3* db, const std::string& path, const std::string& table) {
  std::set<std::string> cols;
  query(db, path, "PRAGMA table_info(" + table + ")",
        [&](sqlite3_stmt* s) { cols.insert(text_at(s, 1)); });
  return cols;
}

// nsys's global ids put the process id above the low 24 bits (the thread's): a kernel's
// globalPid and an NVTX range's globalTid name the same process when these bits agree.
std::int64_t process_of(std::int64_t global_id) { return global_id >> 24; }

// The SQL that joins `table`'s rows (alias t) with the CUPTI_ACTIVITY_KIND_RUNTIME call that
// issued them, by correlationId: its columns r.start, r.globalTid, r.end and the join, or NULLs
// where the export has no such table or column.
std::pair<std::string, std::string> call_join(sqlite3* db, const std::string& path,
                                              const std::string& table, bool runtime) {
  if (!runtime || !columns_of(db, path, table).count("correlationId"))
    return {", NULL, NULL, NULL", ""};
  return {", r.start, r.globalTid, r.end",
          " LEFT JOIN CUPTI_ACTIVITY_KIND_RUNTIME r ON r.correlationId = t.correlationId"};
}

// The issuing call's start (column `col`); with calls recorded but not this one's, the activity
// was issued before the capture began (trace_types.hpp).
std::int64_t issued_at(sqlite3_stmt* s, int col, bool calls) {
  if (sqlite3_column_type(s, col) != SQLITE_NULL) return sqlite3_column_int64(s, col);
  return calls ? issued_before_trace : -1;
}

void read_activity(sqlite3* db, nsys_state& st, const std::set<std::string>& tables) {
  const bool runtime = tables.count("CUPTI_ACTIVITY_KIND_RUNTIME") > 0;
  const auto [cols, join] = call_join(db, st.path, "CUPTI_ACTIVITY_KIND_KERNEL", runtime);
  const std::string pid = columns_of(db, st.path, "CUPTI_ACTIVITY_KIND_KERNEL").count("globalPid")
                              ? ", t.globalPid"
                              : ", NULL";
  query(db, st.path,
        "SELECT t.start, t.end, t.deviceId, t.streamId, s.value" + cols + pid +
            " FROM CUPTI_ACTIVITY_KIND_KERNEL t JOIN StringIds s ON s.id = t.demangledName" + join,
        [&, calls = !join.empty()](sqlite3_stmt* s) {
          const std::string name = text_at(s, 4);
          const kernel_class cls = classify_kernel(name);
          const int device = sqlite3_column_int(s, 2);
          st.add(device, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                 sqlite3_column_int64(s, 3), name, cls);
          std::vector<gpu_event>& evs = st.by_device[device].events;
          evs.back().issued_ns = issued_at(s, 5, calls);
          if (sqlite3_column_type(s, 8) != SQLITE_NULL)
            st.device_process.try_emplace(device, process_of(sqlite3_column_int64(s, 8)));
          if (cls.cat == category::comm && sqlite3_column_type(s, 5) != SQLITE_NULL) {
            evs.back().launch_ns = sqlite3_column_int64(s, 7);
            st.launches.push_back(
                {device, evs.size() - 1, sqlite3_column_int64(s, 6), sqlite3_column_int64(s, 5)});
          }
        });
  // CUPTI's copy kind 10 is peer-to-peer (CUpti_ActivityMemcpyKind).
  for (const bool copy : {true, false}) {
    const std::string table = copy ? "CUPTI_ACTIVITY_KIND_MEMCPY" : "CUPTI_ACTIVITY_KIND_MEMSET";
    if (!tables.count(table)) continue;
    const auto [ccols, cjoin] = call_join(db, st.path, table, runtime);
    query(db, st.path,
          "SELECT t.start, t.end, t.deviceId, t.streamId, " +
              std::string(copy ? "t.copyKind" : "0") + ccols + " FROM " + table + " t" + cjoin,
          [&, calls = !cjoin.empty()](sqlite3_stmt* s) {
            const bool peer = copy && sqlite3_column_int(s, 4) == 10;
            const int device = sqlite3_column_int(s, 2);
            st.add(device, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                   sqlite3_column_int64(s, 3), copy ? (peer ? "Memcpy PtoP" : "Memcpy") : "Memset",
                   copy ? classify_copy(peer) : classify_memset());
            std::vector<gpu_event>& evs = st.by_device[device].events;
            evs.back().issued_ns = issued_at(s, 5, calls);
            // A peer copy (a copy-engine collective or p2p) joins its NCCL range as kernels do.
            if (peer && sqlite3_column_type(s, 5) != SQLITE_NULL)
              st.launches.push_back(
                  {device, evs.size() - 1, sqlite3_column_int64(s, 6), sqlite3_column_int64(s, 5)});
          });
  }
}

// An NVTX step range and the process that opened it (-1: the export does not say).
struct process_step {
  std::int64_t process = -1;
  step_range step;
};

std::vector<process_step> read_steps(sqlite3* db, const std::string& path,
                                     const std::string& marker) {
  std::vector<process_step> steps;
  const std::string tid =
      columns_of(db, path, "NVTX_EVENTS").count("globalTid") ? "n.globalTid" : "NULL";
  query(db, path,
        "SELECT n.start, n.end, COALESCE(n.text, s.value, ''), " + tid +
            " FROM NVTX_EVENTS n LEFT JOIN StringIds s ON s.id = n.textId WHERE n.end IS NOT "
            "NULL AND n.end > n.start ORDER BY n.start",
        [&](sqlite3_stmt* s) {
          const auto number =
              step_marker_number(text_at(s, 2), marker, static_cast<long long>(steps.size()));
          if (!number) return;
          const bool known = sqlite3_column_type(s, 3) != SQLITE_NULL;
          steps.push_back({known ? process_of(sqlite3_column_int64(s, 3)) : -1,
                           {*number, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1)}});
        });
  return steps;
}

// A GPU's steps: those its own process marked, in an export of several processes; every step
// where the export cannot tell which process ran the GPU or marked the steps.
std::vector<step_range> steps_of(const std::vector<process_step>& all, const nsys_state& st,
                                 int device) {
  std::vector<step_range> mine, every;
  const auto owner = st.device_process.find(device);
  for (const process_step& p : all) {
    every.push_back(p.step);
    if (owner != st.device_process.end() && p.process == owner->second) mine.push_back(p.step);
  }
  std::vector<step_range>& out = mine.empty() ? every : mine;
  std::sort(out.begin(), out.end(),
            [](const step_range& a, const step_range& b) { return a.start_ns < b.start_ns; });
  return out;
}

std::int64_t session_start(sqlite3* db, const std::string& path) {
  std::int64_t t = 0;
  query(db, path, "SELECT utcEpochNs FROM TARGET_INFO_SESSION_START_TIME LIMIT 1",
        [&](sqlite3_stmt* s) { t = sqlite3_column_int64(s, 0); });
  return t;
}

db_ptr open_db(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  db_ptr db(raw);
  if (rc != SQLITE_OK)
    throw config_error(path + ": cannot open as SQLite (" +
                       (raw ? sqlite3_errmsg(raw) : "out of memory") + ")");
  return db;
}

// One NCCL NVTX range with its payload's communicator (NCCL's nvtx_payload_schemas.h names the
// payload fields; nsys exports a payload as JSON text).
struct nccl_range {
  std::int64_t start = 0, end = 0, tid = 0;
  bool init = false;  // ncclCommInit* or ncclCommSplit: nranks and rank are set
  nsys_comm comm;
};

// The JSON text of each NVTX row's payload: the column(s) this export has, or "" for none.
std::string payload_sql(sqlite3* db, const std::string& path) {
  const std::set<std::string> cols = columns_of(db, path, "NVTX_EVENTS");
  if (cols.count("jsonText") && cols.count("jsonTextId")) return "COALESCE(n.jsonText, j.value)";
  if (cols.count("jsonText")) return "n.jsonText";
  if (cols.count("jsonTextId")) return "j.value";
  return "";
}

// The first value named `key` anywhere in `j` (nsys may nest a payload's fields).
const json* find_key(const json& j, const std::string& key) {
  if (j.is_object()) {
    if (const auto it = j.find(key); it != j.end()) return &*it;
    for (const auto& [k, v] : j.items())
      if (const json* f = find_key(v, key)) return f;
  } else if (j.is_array()) {
    for (const json& v : j)
      if (const json* f = find_key(v, key)) return f;
  }
  return nullptr;
}

std::optional<std::uint64_t> unsigned_at(const json& payload, const std::string& key) {
  const json* v = find_key(payload, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_unsigned()) return v->get<std::uint64_t>();
  if (v->is_number_integer()) return static_cast<std::uint64_t>(v->get<std::int64_t>());
  if (v->is_string()) {
    std::uint64_t out = 0;
    const std::string& t = v->get_ref<const std::string&>();
    if (std::from_chars(t.data(), t.data() + t.size(), out).ec == std::errc()) return out;
  }
  return std::nullopt;
}

std::vector<nccl_range> read_nccl_ranges(sqlite3* db, const std::string& path) {
  std::vector<nccl_range> out;
  const std::string payload = payload_sql(db, path);
  if (payload.empty()) return out;
  const std::string join = payload.find("j.value") != std::string::npos
                               ? " LEFT JOIN StringIds j ON j.id = n.jsonTextId"
                               : "";
  query(db, path,
        "SELECT n.start, n.end, n.globalTid, COALESCE(n.text, s.value, ''), " + payload +
            " FROM NVTX_EVENTS n LEFT JOIN StringIds s ON s.id = n.textId" + join +
            " WHERE n.end IS NOT NULL",
        [&](sqlite3_stmt* s) {
          const std::string name = text_at(s, 3);
          if (name.rfind("nccl", 0) != 0) return;
          const json p = json::parse(text_at(s, 4), nullptr, false);
          const auto comm = unsigned_at(p, "NCCL communicator ID");
          if (p.is_discarded() || !comm) return;
          nccl_range r{sqlite3_column_int64(s, 0),
                       sqlite3_column_int64(s, 1),
                       sqlite3_column_int64(s, 2),
                       false,
                       {*comm, 0, -1}};
          const auto nranks = unsigned_at(p, "No. of ranks"), rank = unsigned_at(p, "Rank");
          r.init = (name.rfind("ncclCommInit", 0) == 0 || name.rfind("ncclCommSplit", 0) == 0) &&
                   nranks && rank;
          if (r.init)
            r.comm.nranks = static_cast<int>(*nranks), r.comm.rank = static_cast<int>(*rank);
          out.push_back(r);
        });
  return out;
}

// Gives each communication kernel launched inside an NCCL range (the innermost on its thread)
// that range's communicator's ranks as its group.
void attach_groups(nsys_state& st, const std::vector<nccl_range>& ranges,
                   const comm_groups& groups) {
  std::map<std::int64_t, std::vector<const nccl_range*>> by_tid;
  for (const nccl_range& r : ranges) by_tid[r.tid].push_back(&r);
  std::map<int, std::map<std::vector<int>, int>> group_ids;
  for (const nsys_state::launch& l : st.launches) {
    const nccl_range* inner = nullptr;
    for (const nccl_range* r : by_tid[l.tid])
      if (r->start <= l.at && l.at <= r->end && (!inner || r->start >= inner->start)) inner = r;
    const auto g = inner ? groups.find(inner->comm.id) : groups.end();
    if (g == groups.end()) continue;
    rank_trace& t = st.by_device[l.device];
    const auto [it, added] =
        group_ids[l.device].try_emplace(g->second, static_cast<int>(t.groups.size()));
    if (added) t.groups.push_back(g->second);
    t.events[l.index].group_id = it->second;
  }
}

std::vector<nsys_comm> communicators_in(const std::vector<nccl_range>& ranges) {
  std::vector<nsys_comm> out;
  for (const nccl_range& r : ranges)
    if (r.init) out.push_back(r.comm);
  return out;
}

void check_tables(const std::set<std::string>& tables, const std::string& path) {
  if (!tables.count("StringIds"))
    throw config_error(path + ": a SQLite file but not an nsys export (no table StringIds)");
  if (!tables.count("CUPTI_ACTIVITY_KIND_KERNEL"))
    throw config_error(path +
                       ": nsys export without table CUPTI_ACTIVITY_KIND_KERNEL (no GPU kernels; "
                       "profile with --trace=cuda)");
}

}  // namespace

std::vector<nsys_comm> read_nsys_communicators(const std::string& path) {
  const db_ptr db = open_db(path);
  const std::set<std::string> tables = table_names(db.get(), path);
  check_tables(tables, path);
  if (!tables.count("NVTX_EVENTS")) return {};
  return communicators_in(read_nccl_ranges(db.get(), path));
}

int world_rank_of(const std::vector<nsys_comm>& comms) {
  const nsys_comm* world = nullptr;
  for (const nsys_comm& c : comms)
    if (!world || c.nranks > world->nranks) world = &c;
  return world ? world->rank : -1;
}

comm_groups communicator_groups(const std::vector<std::vector<nsys_comm>>& per_file) {
  comm_groups out;
  for (const std::vector<nsys_comm>& comms : per_file) {
    const int me = world_rank_of(comms);
    if (me < 0) continue;
    for (const nsys_comm& c : comms) out[c.id].push_back(me);
  }
  for (auto& [id, ranks] : out) {
    std::sort(ranks.begin(), ranks.end());
    ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  }
  return out;
}

std::vector<rank_trace> read_nsys(const std::string& path, const std::string& step_marker,
                                  const comm_groups* groups) {
  const db_ptr db = open_db(path);
  const std::set<std::string> tables = table_names(db.get(), path);
  check_tables(tables, path);
  nsys_state st{path, {}, {}, {}, {}};
  read_activity(db.get(), st, tables);
  if (st.by_device.empty()) throw config_error(path + ": no GPU kernels in the nsys export");
  int world_rank = -1, world_size = 0;
  if (groups && tables.count("NVTX_EVENTS")) {
    const std::vector<nccl_range> ranges = read_nccl_ranges(db.get(), path);
    attach_groups(st, ranges, *groups);
    const std::vector<nsys_comm> comms = communicators_in(ranges);
    world_rank = world_rank_of(comms);
    for (const nsys_comm& c : comms) world_size = std::max(world_size, c.nranks);
  }
  const std::vector<process_step> steps = tables.count("NVTX_EVENTS")
                                              ? read_steps(db.get(), path, step_marker)
                                              : std::vector<process_step>{};
  const bool aligned = tables.count("TARGET_INFO_SESSION_START_TIME") > 0;
  const std::int64_t origin = aligned ? session_start(db.get(), path) : 0;
  std::vector<rank_trace> out;
  for (auto& [device, r] : st.by_device) {
    r.steps = steps_of(steps, st, device);
    if (st.by_device.size() == 1) r.rank = world_rank;
    r.world_size = world_size;
    r.clock_origin_ns = origin;
    r.clock_known = aligned;
    for (gpu_event& e : r.events) {
      e.start_ns += origin, e.end_ns += origin;
      if (e.launch_ns >= 0) e.launch_ns += origin;
      if (e.issued_ns >= 0) e.issued_ns += origin;
    }
    for (step_range& s : r.steps) s.start_ns += origin, s.end_ns += origin;
    std::sort(r.events.begin(), r.events.end(),
              [](const gpu_event& a, const gpu_event& b) { return a.start_ns < b.start_ns; });
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ob::trace
