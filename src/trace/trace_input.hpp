#pragma once
// Reading a profile file: which format it is, and a buffered stream over it that inflates gzip
// on the fly (zlib reads plain files through the same calls), so a trace is never held whole.
#include <cstdint>
#include <optional>
#include <streambuf>
#include <string>
#include <vector>

namespace ob::trace {

enum class file_format { kineto_json, nsys_sqlite };

// By the first bytes: "SQLite format 3" is an nsys export, anything else (plain or gzip) is read
// as Kineto JSON. config_error (exit 2) naming the file when it cannot be opened or is empty.
file_format sniff_format(const std::string& path);

// A range's step number when it marks a step. Without `marker`: `ProfilerStep#12`,
// `iteration 12`, `iteration_12`, `step 12`, `step_12` (any case). With `marker` (--step-marker):
// any range whose name starts with it, numbered by the first integer after it, else by
// `next_index` (the count of steps so far). nullopt when the range marks no step.
std::optional<long long> step_marker_number(const std::string& range_text,
                                            const std::string& marker, long long next_index);

// A read-only streambuf over a plain or gzip file. A corrupt or truncated gzip stream throws
// config_error naming the file, from inside the parser's read.
class gz_streambuf final : public std::streambuf {
 public:
  explicit gz_streambuf(std::string path, std::size_t buffer_bytes = 1 << 18);
  ~gz_streambuf() override;
  gz_streambuf(const gz_streambuf&) = delete;
  gz_streambuf& operator=(const gz_streambuf&) = delete;
  std::uint64_t bytes_inflated() const { return inflated_; }

 protected:
  int_type underflow() override;

 private:
  std::string path_;
  void* file_ = nullptr;  // gzFile, kept opaque so zlib.h stays out of the header
  std::vector<char> buf_;
  std::uint64_t inflated_ = 0;
};

}  // namespace ob::trace
