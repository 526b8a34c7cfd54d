#include "spec/pipeline_layout.hpp"

#include <algorithm>
#include <cctype>

#include "base/error.hpp"

namespace ob {
namespace {

// Longer than any model's layers and stages by far; a typo like "t*99999999" stops here.
constexpr std::size_t max_unrolled = 1 << 16;

// The count after the '*' at `star`; where it ends goes to `end`.
std::size_t repeat_count(const std::string& s, std::size_t star, std::size_t& end,
                         const std::string& where) {
  end = star + 1;
  while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end]))) ++end;
  if (end == star + 1 || end - star > 7)
    throw config_error(where + ": '*' at " + std::to_string(star) +
                       " needs a repeat count (as in t*3 or (tt|)*29)");
  return std::stoul(s.substr(star + 1, end - star - 1));
}

std::string repeated(const std::string& what, std::size_t n, const std::string& where) {
  if (what.size() * n > max_unrolled)
    throw config_error(where + ": unrolls to more than " + std::to_string(max_unrolled) +
                       " characters");
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += what;
  return out;
}

// Megatron unrolls every "(..)*N" first, then every "x*N".
std::string unroll(std::string s, const std::string& where) {
  for (std::size_t open = s.find('('); open != std::string::npos; open = s.find('(')) {
    const std::size_t close = s.find(')', open);
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != '*' ||
        close == open + 1)
      throw config_error(where + ": '(' at " + std::to_string(open) +
                         " needs a non-empty group closed by ')*N'");
    std::size_t end = 0;
    const std::size_t n = repeat_count(s, close + 1, end, where);
    s = s.substr(0, open) + repeated(s.substr(open + 1, close - open - 1), n, where) +
        s.substr(end);
  }
  for (std::size_t star = s.find('*'); star != std::string::npos; star = s.find('*')) {
    if (star == 0) throw config_error(where + ": '*' at 0 repeats nothing");
    std::size_t end = 0;
    const std::size_t n = repeat_count(s, star, end, where);
    s = s.substr(0, star - 1) + repeated(s.substr(star - 1, 1), n, where) + s.substr(end);
  }
  return s;
}

std::string n(std::size_t v) { return std::to_string(v); }

}  // namespace

int pipeline_layout::count(std::size_t stage, char what) const {
  return static_cast<int>(std::count(stages[stage].begin(), stages[stage].end(), what));
}

int pipeline_layout::count(char what) const {
  int total = 0;
  for (std::size_t v = 0; v < stages.size(); ++v) total += count(v, what);
  return total;
}

pipeline_layout parse_pipeline_layout(const std::string& text, const std::string& where) {
  pipeline_layout out;
  out.text = text;
  std::string s = unroll(text, where);
  out.stages.emplace_back();
  for (char c : s) {
    if (c == '|') {
      out.stages.emplace_back();
    } else if (c == 'E' || c == 't' || c == 'm' || c == 'L') {
      out.stages.back() += c;
    } else {
      throw config_error(where + ": '" + std::string(1, c) +
                         "' is not a layer (E embedding, t transformer layer, m MTP layer, "
                         "L loss; '|' ends a virtual stage; commas separate sweep values)");
    }
  }
  return out;
}

void check_pipeline_layout(const pipeline_layout& l, int pp, int vp, int layers, int mtp_layers,
                           const std::string& where) {
  const auto fail = [&](const std::string& why) { throw config_error(where + ": " + why); };
  const std::size_t chunks = static_cast<std::size_t>(pp) * static_cast<std::size_t>(vp);
  if (l.stages.size() != chunks)
    fail(n(l.stages.size()) + " virtual stages, but pp x vp = " + n(pp) + " x " + n(vp) + " = " +
         n(chunks));
  if (l.count('E') != 1 || l.stages.front().rfind('E', 0) != 0)
    fail("the embedding (E) must appear once, first in the first virtual stage");
  const std::string& last = l.stages.back();
  if (l.count('L') != 1 || last.empty() || last.back() != 'L')
    fail("the loss (L) must appear once, last in the last virtual stage");
  if (l.count('t') != layers)
    fail(n(l.count('t')) + " transformer layers (t), but the model has " + n(layers));
  if (l.count('m') != mtp_layers)
    fail(n(l.count('m')) + " MTP layers (m), but the model has " + n(mtp_layers) +
         " (mtp_num_layers)");
  if (mtp_layers > 0 && l.count(chunks - 1, 'm') != mtp_layers)
    fail(
        "the MTP layers (m) must share the loss's virtual stage: the planner runs them beside "
        "the loss (Megatron's standalone MTP stage is not modelled)");
  if (mtp_layers > 0 && last.find('t', last.find('m')) != std::string::npos)
    fail("every transformer layer (t) must come before the MTP layers (m)");
}

}  // namespace ob
