// The fault-injecting Env (fault_env.h).
#include "tests/support/fault_env.h"

#include <algorithm>

namespace keyval::testing {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_prepared(const std::string& path) {
  return ends_with(path, ".wal.tmp");
}
bool is_segment(const std::string& path) {
  return ends_with(path, ".wal");
}
// A File keeps the path it was opened with: the active segment, created as a prepared file
// and renamed, still says ".wal.tmp". Records start after the 32-byte segment header.
bool is_record_write(const std::string& path, uint64_t offset) {
  return (is_segment(path) || is_prepared(path)) && offset >= 32;
}

class FaultFile final : public ForwardingFile {
 public:
  FaultFile(FaultEnv& env, std::unique_ptr<File> base) : ForwardingFile(std::move(base)), env_(env) {}

  Status write_at(uint64_t offset, const uint8_t* source, size_t bytes) override {
    KV_RETURN_IF_ERROR(take_growth(offset + bytes));
    // Zeros the WAL writes ahead of its records (WalOptions::zero_ahead_bytes) are no records:
    // torn_write tears writes of records, as it says.
    const bool zeros = std::all_of(source, source + bytes, [](uint8_t byte) { return byte == 0; });
    if (is_record_write(path(), offset) && bytes > 0 && !zeros && env_.reached(FaultPoint::torn_write)) {
      // Half of the write reaches the file; the process dies before the rest does.
      KV_RETURN_IF_ERROR(file_->write_at(offset, source, std::max<size_t>(1, bytes / 2)));
      env_.fire(FaultPoint::torn_write);
      return Status::io_error("write " + path() + ": torn by the fault injector");
    }
    KV_RETURN_IF_ERROR(file_->write_at(offset, source, bytes));
    if (is_prepared(path()) && offset == 0) {
      header_written_ = true;
      if (env_.reached(FaultPoint::header_written)) env_.fire(FaultPoint::header_written);
    }
    return Status::ok();
  }

  Status sync_data() override {
    KV_RETURN_IF_ERROR(file_->sync_data());
    if (is_prepared(path()) && header_written_ && env_.reached(FaultPoint::header_synced)) {
      env_.fire(FaultPoint::header_synced);
    }
    return Status::ok();
  }

  Status truncate(uint64_t size_bytes) override {
    KV_RETURN_IF_ERROR(take_growth(size_bytes));
    return file_->truncate(size_bytes);
  }

  Status preallocate(uint64_t size_bytes) override {
    KV_RETURN_IF_ERROR(take_growth(size_bytes));
    KV_RETURN_IF_ERROR(file_->preallocate(size_bytes));
    if (is_prepared(path()) && env_.reached(FaultPoint::prepared_allocated)) env_.fire(FaultPoint::prepared_allocated);
    return Status::ok();
  }

 private:
  // Space the file needs to grow to `end` bytes, taken from the budget.
  Status take_growth(uint64_t end) {
    KV_ASSIGN_OR_RETURN(uint64_t current, file_->size());
    if (end <= current) return Status::ok();
    return env_.take_space(path(), end - current);
  }

  FaultEnv& env_;
  bool header_written_ = false;
};

}  // namespace

const char* fault_point_name(FaultPoint point) {
  switch (point) {
    case FaultPoint::none: return "none";
    case FaultPoint::prepared_created: return "prepared_created";
    case FaultPoint::prepared_allocated: return "prepared_allocated";
    case FaultPoint::header_written: return "header_written";
    case FaultPoint::header_synced: return "header_synced";
    case FaultPoint::renamed: return "renamed";
    case FaultPoint::directory_synced: return "directory_synced";
    case FaultPoint::segment_removed: return "segment_removed";
    case FaultPoint::torn_write: return "torn_write";
  }
  return "unknown";
}

std::vector<FaultPoint> all_fault_points() {
  return {FaultPoint::prepared_created, FaultPoint::prepared_allocated,
          FaultPoint::header_written,   FaultPoint::header_synced,
          FaultPoint::renamed,          FaultPoint::directory_synced,
          FaultPoint::segment_removed,  FaultPoint::torn_write};
}

void FaultEnv::arm(FaultPoint point, uint64_t hit, Hook hook) {
  std::lock_guard<std::mutex> guard(mutex_);
  armed_ = point;
  armed_hit_ = hits_[static_cast<size_t>(point)].load() + hit;
  hook_ = std::move(hook);
}

void FaultEnv::limit_space(uint64_t bytes) {
  space_left_bytes_ = static_cast<int64_t>(bytes);
  space_limited_ = true;
}

bool FaultEnv::reached(FaultPoint point) {
  uint64_t hit = ++hits_[static_cast<size_t>(point)];
  std::lock_guard<std::mutex> guard(mutex_);
  return point == armed_ && hit == armed_hit_;
}

void FaultEnv::fire(FaultPoint point) {
  Hook hook;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    hook = hook_;
  }
  if (hook) hook(point);
}

Status FaultEnv::take_space(const std::string& path, uint64_t bytes) {
  if (!space_limited_) return Status::ok();
  if (space_left_bytes_.fetch_sub(static_cast<int64_t>(bytes)) < static_cast<int64_t>(bytes)) {
    space_left_bytes_ = 0;
    return Status::no_space("write " + path + ": No space left on device (ENOSPC, injected by FaultEnv)");
  }
  return Status::ok();
}

Result<std::unique_ptr<File>> FaultEnv::open_file(const std::string& path, OpenMode mode) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, base_.open_file(path, mode));
  std::unique_ptr<File> wrapped(new FaultFile(*this, std::move(file)));
  if (is_prepared(path) && mode != OpenMode::read_only && reached(FaultPoint::prepared_created)) {
    fire(FaultPoint::prepared_created);
  }
  return wrapped;
}

Status FaultEnv::sync_dir(const std::string& directory) {
  KV_RETURN_IF_ERROR(base_.sync_dir(directory));
  if (rename_pending_.exchange(false) && reached(FaultPoint::directory_synced)) fire(FaultPoint::directory_synced);
  return Status::ok();
}

Status FaultEnv::rename(const std::string& from, const std::string& to) {
  KV_RETURN_IF_ERROR(base_.rename(from, to));
  if (is_prepared(from)) {
    rename_pending_ = true;
    if (reached(FaultPoint::renamed)) fire(FaultPoint::renamed);
  }
  return Status::ok();
}

Status FaultEnv::remove(const std::string& path) {
  KV_RETURN_IF_ERROR(base_.remove(path));
  if (is_segment(path) && reached(FaultPoint::segment_removed)) fire(FaultPoint::segment_removed);
  return Status::ok();
}

}  // namespace keyval::testing
