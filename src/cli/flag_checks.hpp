#pragma once
// Validators for numeric flags. CLI11's own (PositiveNumber, Range on doubles) run before the
// conversion and print their bounds in full, so `--iters 0` used to answer with a 300-digit
// range; these say what is expected in words, and reject NaN and infinities.
#include <CLI/CLI.hpp>

namespace ob::cli {

// An integer from `lo` to `hi`: "expected an integer from 1 to 1048576, got 'abc'".
CLI::Validator int_in(long long lo, long long hi);
// A finite number from `lo` to `hi` (above `lo` when `lo_open`).
CLI::Validator number_in(double lo, double hi, bool lo_open = false);
// A path or name that is not empty.
CLI::Validator not_empty();

}  // namespace ob::cli
