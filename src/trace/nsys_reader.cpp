#include "trace/nsys_reader.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <set>

#include "base/error.hpp"
#include "trace/trace_input.hpp"

namespace ob::trace {

namespace {

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

void read_activity(sqlite3* db, nsys_state& st, const std::set<std::string>& tables) {
  query(db, st.path,
        "SELECT k.start, k.end, k.deviceId, k.streamId, s.value FROM CUPTI_ACTIVITY_KIND_KERNEL k "
        "JOIN StringIds s ON s.id = k.demangledName",
        [&](sqlite3_stmt* s) {
          const std::string name = text_at(s, 4);
          st.add(sqlite3_column_int(s, 2), sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                 sqlite3_column_int64(s, 3), name, classify_kernel(name));
        });
  // CUPTI's copy kind 10 is peer-to-peer (CUpti_ActivityMemcpyKind).
  if (tables.count("CUPTI_ACTIVITY_KIND_MEMCPY"))
    query(db, st.path,
          "SELECT start, end, deviceId, streamId, copyKind FROM CUPTI_ACTIVITY_KIND_MEMCPY",
          [&](sqlite3_stmt* s) {
            const bool peer = sqlite3_column_int(s, 4) == 10;
            st.add(sqlite3_column_int(s, 2), sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                   sqlite3_column_int64(s, 3), peer ? "Memcpy PtoP" : "Memcpy",
                   classify_copy(peer));
          });
  if (tables.count("CUPTI_ACTIVITY_KIND_MEMSET"))
    query(db, st.path, "SELECT start, end, deviceId, streamId FROM CUPTI_ACTIVITY_KIND_MEMSET",
          [&](sqlite3_stmt* s) {
            st.add(sqlite3_column_int(s, 2), sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                   sqlite3_column_int64(s, 3), "Memset", classify_memset());
          });
}

std::vector<step_range> read_steps(sqlite3* db, const std::string& path,
                                   const std::string& marker) {
  std::vector<step_range> steps;
  query(db, path,
        "SELECT n.start, n.end, COALESCE(n.text, s.value, '') FROM NVTX_EVENTS n "
        "LEFT JOIN StringIds s ON s.id = n.textId WHERE n.end IS NOT NULL AND n.end > n.start "
        "ORDER BY n.start",
        [&](sqlite3_stmt* s) {
          const auto number =
              step_marker_number(text_at(s, 2), marker, static_cast<long long>(steps.size()));
          if (number)
            steps.push_back({*number, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1)});
        });
  std::sort(steps.begin(), steps.end(),
            [](const step_range& a, const step_range& b) { return a.start_ns < b.start_ns; });
  return steps;
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

void check_tables(const std::set<std::string>& tables, const std::string& path) {
  if (!tables.count("StringIds"))
    throw config_error(path + ": a SQLite file but not an nsys export (no table StringIds)");
  if (!tables.count("CUPTI_ACTIVITY_KIND_KERNEL"))
    throw config_error(path +
                       ": nsys export without table CUPTI_ACTIVITY_KIND_KERNEL (no GPU kernels; "
                       "profile with --trace=cuda)");
}

}  // namespace

std::vector<rank_trace> read_nsys(const std::string& path, const std::string& step_marker) {
  const db_ptr db = open_db(path);
  const std::set<std::string> tables = table_names(db.get(), path);
  check_tables(tables, path);
  nsys_state st{path, {}, {}};
  read_activity(db.get(), st, tables);
  if (st.by_device.empty()) throw config_error(path + ": no GPU kernels in the nsys export");
  const std::vector<step_range> steps = tables.count("NVTX_EVENTS")
                                            ? read_steps(db.get(), path, step_marker)
                                            : std::vector<step_range>{};
  const bool aligned = tables.count("TARGET_INFO_SESSION_START_TIME") > 0;
  const std::int64_t origin = aligned ? session_start(db.get(), path) : 0;
  std::vector<rank_trace> out;
  for (auto& [device, r] : st.by_device) {
    r.steps = steps;
    r.clock_origin_ns = origin;
    r.clock_known = aligned;
    for (gpu_event& e : r.events) e.start_ns += origin, e.end_ns += origin;
    for (step_range& s : r.steps) s.start_ns += origin, s.end_ns += origin;
    std::sort(r.events.begin(), r.events.end(),
              [](const gpu_event& a, const gpu_event& b) { return a.start_ns < b.start_ns; });
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ob::trace
