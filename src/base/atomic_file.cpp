#include "base/atomic_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/error.hpp"

namespace ob {
namespace {

namespace fs = std::filesystem;

// A rename would replace a device or a pipe (as root, /dev/null itself) with a plain file.
std::string not_a_file(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::exists(st) && !fs::is_regular_file(st) && !fs::is_directory(st))
    return "is not a regular file";
  return "";
}

// The folders a file at `path` needs; "" or why they cannot be made.
std::string make_parent(const fs::path& target) {
  if (!target.has_parent_path()) return "";
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) return "cannot create folder " + target.parent_path().string() + ": " + ec.message();
  return "";
}

}  // namespace

std::string temporary_path_for(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

atomic_file::atomic_file(std::string path)
    : path_(std::move(path)), tmp_(temporary_path_for(path_)) {
  if (const std::string why = not_a_file(path_); !why.empty())
    throw runtime_failure(path_ + ": " + why);
  if (const std::string why = make_parent(path_); !why.empty())
    throw runtime_failure(path_ + ": " + why);
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) throw runtime_failure(path_ + ": cannot write: " + std::strerror(errno));
}

atomic_file::~atomic_file() {
  if (committed_) return;
  out_.close();
  std::remove(tmp_.c_str());
}

void atomic_file::write(std::string_view text) {
  out_.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out_) throw runtime_failure(path_ + ": write failed: " + std::strerror(errno));
}

void atomic_file::commit() {
  out_.flush();
  out_.close();
  if (!out_) throw runtime_failure(path_ + ": write failed: " + std::strerror(errno));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw runtime_failure(path_ + ": rename failed: " + std::strerror(errno));
  committed_ = true;
}

std::string why_not_writable(const std::string& path) {
  if (path.empty()) return "empty path";
  std::error_code ec;
  if (fs::is_directory(path, ec)) return "is a folder";
  if (const std::string why = not_a_file(path); !why.empty()) return why;
  if (const std::string why = make_parent(path); !why.empty()) return why;
  // Not the name atomic_file writes through: a temporary seen on disk is always a result.
  const std::string tmp = path + ".probe." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return std::string("cannot create a file there: ") + std::strerror(errno);
  std::fclose(f);
  std::remove(tmp.c_str());
  return "";
}

}  // namespace ob
