// An Env and a File that pass every call on to another (posix_env() by default): a class
// that watches or changes a few calls derives and overrides only those (the simulator's
// per-machine view of its disk, sim/sim_disk.cc; the tests' fault-injecting Envs).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "storage/env.h"

namespace keyval {

class ForwardingFile : public File {
 public:
  explicit ForwardingFile(std::unique_ptr<File> file) : file_(std::move(file)) {}
  Result<size_t> read_at(uint64_t offset, uint8_t* destination, size_t bytes) override {
    return file_->read_at(offset, destination, bytes);
  }
  Status write_at(uint64_t offset, const uint8_t* source, size_t bytes) override {
    return file_->write_at(offset, source, bytes);
  }
  Status sync_data() override { return file_->sync_data(); }
  Status truncate(uint64_t size_bytes) override { return file_->truncate(size_bytes); }
  Status preallocate(uint64_t size_bytes) override { return file_->preallocate(size_bytes); }
  Result<uint64_t> size() override { return file_->size(); }
  const std::string& path() const override { return file_->path(); }
  Result<uint64_t> next_data_offset(uint64_t offset) override { return file_->next_data_offset(offset); }

 protected:
  std::unique_ptr<File> file_;
};

class ForwardingEnv : public Env {
 public:
  explicit ForwardingEnv(Env& base = posix_env()) : base_(base) {}
  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override {
    return base_.open_file(path, mode);
  }
  Status sync_dir(const std::string& directory) override { return base_.sync_dir(directory); }
  Status rename(const std::string& from, const std::string& to) override { return base_.rename(from, to); }
  Status remove(const std::string& path) override { return base_.remove(path); }
  Result<std::vector<std::string>> list(const std::string& directory) override { return base_.list(directory); }
  Status create_dir(const std::string& directory) override { return base_.create_dir(directory); }
  bool exists(const std::string& path) override { return base_.exists(path); }
  Result<std::unique_ptr<FileLock>> lock(const std::string& path) override { return base_.lock(path); }
  std::string boot_id() override { return base_.boot_id(); }

 protected:
  Env& base_;
};

}  // namespace keyval
