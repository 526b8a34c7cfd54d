#pragma once
// One table per enum names its values: to_string(), parse_enum() and the "expected a, b or c"
// text of an error all read it, so a name is written exactly once.
//
// Declaring a named enum:
//   template <> struct enum_names<dtype> {
//     static constexpr std::string_view noun = "dtype";  // for "unknown dtype 'x'"
//     static constexpr std::array names = {enum_entry{dtype::bf16, "bf16"}, ...};
//     static constexpr std::array aliases = {enum_entry{dtype::fp8, "fp8_e4m3"}};  // optional
//   };
// `names` holds one canonical name per value; `aliases` are extra spellings parse_enum accepts
// and messages do not list.
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.hpp"

namespace ob {

template <class E>
struct enum_entry {
  E value;
  std::string_view name;
};
// Spelled out for compilers without aggregate deduction (clang before 17, used for fuzzing).
template <class E>
enum_entry(E, const char*) -> enum_entry<E>;

template <class E>
struct enum_names;

template <class E>
concept named_enum = requires {
  enum_names<E>::noun;
  enum_names<E>::names;
};

template <named_enum E>
constexpr std::string_view to_string(E v) {
  for (const auto& e : enum_names<E>::names)
    if (e.value == v) return e.name;
  return "?";
}

// "bf16, fp16 or fp8": the canonical names, for messages and help texts.
template <named_enum E>
std::string enum_choices() {
  std::string out;
  const auto& names = enum_names<E>::names;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i].name;
  }
  return out;
}

template <named_enum E>
std::optional<E> try_parse_enum(std::string_view s) {
  for (const auto& e : enum_names<E>::names)
    if (e.name == s) return e.value;
  if constexpr (requires { enum_names<E>::aliases; })
    for (const auto& e : enum_names<E>::aliases)
      if (e.name == s) return e.value;
  return std::nullopt;
}

// Throws config_error "<field>: unknown <noun> '<s>' (expected a, b or c)" (exit 2).
template <named_enum E>
E parse_enum(std::string_view s, std::string_view field) {
  if (auto v = try_parse_enum<E>(s)) return *v;
  throw config_error(std::string(field) + ": unknown " + std::string(enum_names<E>::noun) + " '" +
                     std::string(s) + "' (expected " + enum_choices<E>() + ")");
}

}  // namespace ob
