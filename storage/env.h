// The file-system seam (in the spirit of leveldb's Env).
//
// The WAL and every other on-disk structure reach files only through Env, so
// the simulator can replace the disk with an in-memory one that loses unsynced
// bytes, tears writes and fails syncs. posix_env() is the real one.
//
// Durability rules the callers rely on:
//   * File::sync_data() (fdatasync) makes written bytes and the file size durable.
//   * Env::sync_dir() makes created, renamed and removed names durable.
//   * A failed sync is reported once; the caller must stop (fail-stop), not retry.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/status.h"

namespace keyval {

class File {
 public:
  virtual ~File() = default;

  // Reads up to `bytes` at `offset`; returns how many were read (fewer only at end of file).
  virtual Result<size_t> read_at(uint64_t offset, uint8_t* destination, size_t bytes) = 0;
  // Writes all `bytes` at `offset` (pwrite): the WAL's append, at a position it tracks.
  virtual Status write_at(uint64_t offset, const uint8_t* source, size_t bytes) = 0;
  // fdatasync: the written bytes (and size) survive a power cut once this returns ok.
  virtual Status sync_data() = 0;
  // Sets the file size; bytes past it are gone, new bytes read as zero.
  virtual Status truncate(uint64_t size_bytes) = 0;
  // Allocates blocks so the file is at least `size_bytes` long, reading as zeros, so that
  // later writes inside it need no allocation (cheaper fdatasync, ENOSPC surfaces early).
  virtual Status preallocate(uint64_t size_bytes) = 0;
  virtual Result<uint64_t> size() = 0;
  virtual const std::string& path() const = 0;
  // The first offset >= `offset` that may hold data: bytes before it are a hole or
  // allocated-but-unwritten space and read as zeros. The file size when nothing follows.
  // The default knows nothing and answers `offset` (readers then read and look).
  virtual Result<uint64_t> next_data_offset(uint64_t offset) { return offset; }
};

// Holds a directory for one process; released when destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

enum class OpenMode : uint8_t {
  read_only,        // must exist
  read_write,       // must exist
  create_or_open,   // read-write, created if missing
  create_new,       // read-write, fails if it exists
};

class Env {
 public:
  virtual ~Env() = default;

  virtual Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) = 0;
  virtual Status sync_dir(const std::string& directory) = 0;
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  virtual Status remove(const std::string& path) = 0;
  // Names (not paths) of the entries in `directory`, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> list(const std::string& directory) = 0;
  // Creates `directory` (and its parents); ok if it exists.
  virtual Status create_dir(const std::string& directory) = 0;
  virtual bool exists(const std::string& path) = 0;
  // Exclusive lock on `path` (created if missing); `locked` when another holder has it.
  virtual Result<std::unique_ptr<FileLock>> lock(const std::string& path) = 0;
  // Names the current boot of the machine whose page cache holds this Env's unsynced writes:
  // it changes when a power cut (or OS crash) may have lost them, and stays the same across a
  // process crash. Recovery trusts an LMDB written without sync only within one boot
  // (storage/recovery.h). "" means unknown, and is never taken to be the same boot.
  virtual std::string boot_id() { return ""; }
};

// The real file system. One instance serves the whole process.
Env& posix_env();

// "dir/name", without doubling the separator.
std::string join_path(const std::string& directory, const std::string& name);
// The directory holding `path` (trailing slashes ignored): "." for a bare name, "/" at the root.
std::string parent_directory(const std::string& path);

}  // namespace keyval
