#pragma once
// Helpers the host-side lowering tests share: a lowered action's stream name, and the actions of
// the overlapped variant whose names contain a part.
#include <string>
#include <vector>

#include "cuda/lowering.hpp"

namespace ob::cuda::test {

inline constexpr auto overlapped_variant = static_cast<std::size_t>(variant::overlapped);

inline const std::string& stream_of(const case_lowering& low, const lowered_action& a) {
  const lowered_variant& lv = low.variants[overlapped_variant];
  return low.stream_sets.at(static_cast<std::size_t>(lv.stream_set)).names.at(a.stream);
}

inline std::vector<const lowered_action*> actions_with(const case_lowering& low,
                                                       const std::string& part) {
  std::vector<const lowered_action*> out;
  for (const lowered_action& a : low.variants[overlapped_variant].actions)
    if (a.name.find(part) != std::string::npos) out.push_back(&a);
  return out;
}

}  // namespace ob::cuda::test
