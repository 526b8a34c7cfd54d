#include "run/sweep_engine.hpp"

#include <charconv>

namespace ob {

int agree_on_stop(const std::function<int()>& should_stop, communicator& comm) {
  int reason = comm.is_root() && should_stop ? should_stop() : 0;
  if (comm.size() == 1) return reason;
  std::string text = std::to_string(reason);
  comm.broadcast(text, 0);
  std::from_chars(text.data(), text.data() + text.size(), reason);
  return reason;
}

std::set<std::string> agree_on_finished(const std::vector<std::string>& root_ids,
                                        communicator& comm) {
  std::string joined;
  for (const std::string& id : root_ids) joined += id + "\n";
  if (comm.size() > 1) comm.broadcast(joined, 0);
  std::set<std::string> ids;
  for (std::size_t start = 0, cut; (cut = joined.find('\n', start)) != std::string::npos;
       start = cut + 1)
    ids.insert(joined.substr(start, cut - start));
  return ids;
}

}  // namespace ob
