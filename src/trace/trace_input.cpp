#include "trace/trace_input.hpp"

#include <zlib.h>

#include <array>
#include <cstring>
#include <fstream>
#include <regex>

#include "base/error.hpp"

namespace ob::trace {

file_format sniff_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path + ": cannot open the trace file");
  std::array<char, 16> head{};
  in.read(head.data(), head.size());
  if (in.gcount() == 0) throw config_error(path + ": empty file, not a trace");
  if (in.gcount() == 16 && std::memcmp(head.data(), "SQLite format 3", 16) == 0)
    return file_format::nsys_sqlite;
  return file_format::kineto_json;
}

std::optional<long long> step_marker_number(const std::string& range_text,
                                            const std::string& marker, long long next_index) {
  if (marker.empty()) {
    static const std::regex builtin(R"(^\s*(profilerstep#|iteration[ _#]?|step[ _#]?)(\d+)\s*$)",
                                    std::regex::icase);
    std::smatch m;
    if (!std::regex_match(range_text, m, builtin)) return std::nullopt;
    return std::stoll(m[2].str());
  }
  if (range_text.rfind(marker, 0) != 0) return std::nullopt;
  const std::size_t digit = range_text.find_first_of("0123456789", marker.size());
  if (digit == std::string::npos) return next_index;
  const std::size_t end = range_text.find_first_not_of("0123456789", digit);
  return std::stoll(range_text.substr(digit, std::min<std::size_t>(end, digit + 18) - digit));
}

gz_streambuf::gz_streambuf(std::string path, std::size_t buffer_bytes)
    : path_(std::move(path)), buf_(buffer_bytes) {
  gzFile f = gzopen(path_.c_str(), "rb");
  if (f == nullptr) throw config_error(path_ + ": cannot open the trace file");
  gzbuffer(f, 1 << 17);
  file_ = f;
  setg(buf_.data(), buf_.data(), buf_.data());
}

gz_streambuf::~gz_streambuf() {
  if (file_ != nullptr) gzclose(static_cast<gzFile>(file_));
}

// zlib reports a gzip stream that ends early as Z_BUF_ERROR at end of input, and bad data as
// Z_DATA_ERROR; both are the file's fault (exit 2), not the machine's.
gz_streambuf::int_type gz_streambuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  auto* f = static_cast<gzFile>(file_);
  const int n = gzread(f, buf_.data(), static_cast<unsigned>(buf_.size()));
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    const bool truncated = err == Z_BUF_ERROR;
    throw config_error(path_ + ": " + (truncated ? "truncated gzip" : "corrupt gzip") + " (" +
                       (msg ? msg : "zlib error") + ") after " + std::to_string(inflated_) +
                       " bytes");
  }
  if (n == 0) return traits_type::eof();
  inflated_ += static_cast<std::uint64_t>(n);
  setg(buf_.data(), buf_.data(), buf_.data() + n);
  return traits_type::to_int_type(*gptr());
}

}  // namespace ob::trace
