// A fault-injecting Env for crash tests: passes every call to another Env (normally
// posix_env()) and, at a chosen point of WAL segment preparation, rotation or compaction,
// calls a hook (the crash test's child raises SIGKILL on itself there); it can also tear a
// write in two, or refuse writes with no_space once a byte budget is spent.
//
// The points are recognised by the file names the WAL uses (storage/FORMAT.md): a prepared
// segment is "<id>.wal.tmp", a segment "<id>-<first>.wal". Thread-safe: the WAL moves
// between actor threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/env.h"
#include "tests/support/forwarding_env.h"

namespace keyval::testing {

enum class FaultPoint : uint8_t {
  none,
  prepared_created,    // a .wal.tmp file was just created (empty, not allocated)
  prepared_allocated,  // a .wal.tmp file was just preallocated (not synced)
  header_written,      // a segment header was written to the .wal.tmp file (not synced)
  header_synced,       // the .wal.tmp file with its header was fdatasynced (not renamed)
  renamed,             // the .wal.tmp file was renamed to its segment name (directory not synced)
  directory_synced,    // the directory was fsynced after that rename (carried records not written)
  segment_removed,     // an old segment was unlinked by compaction (directory not synced)
  torn_write,          // half of a write of records to a segment reached the file, the rest never will
};

const char* fault_point_name(FaultPoint point);
// Every point above but none, in order.
std::vector<FaultPoint> all_fault_points();

class FaultEnv final : public ForwardingEnv {
 public:
  // Called when the armed point is reached for the `hit`-th time; if it returns, the
  // operation goes on (a torn write then returns an io_error).
  using Hook = std::function<void(FaultPoint)>;

  explicit FaultEnv(Env& base) : ForwardingEnv(base) {}

  // Arms `point`: its `hit`-th occurrence (1 = the first) calls `hook`.
  void arm(FaultPoint point, uint64_t hit, Hook hook);
  // Writes and preallocations to segment files beyond `bytes` in total (counted from now)
  // fail with Code::no_space, as ENOSPC would.
  void limit_space(uint64_t bytes);
  uint64_t hits(FaultPoint point) const { return hits_[static_cast<size_t>(point)].load(); }

  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override;
  Status sync_dir(const std::string& directory) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;

  // Used by the file wrapper.
  // Counts an occurrence of `point`; true when it is the armed hit (the caller then fires).
  bool reached(FaultPoint point);
  // Runs the hook.
  void fire(FaultPoint point);
  // Takes `bytes` from the space budget; a no_space Status naming `path` when it is spent.
  Status take_space(const std::string& path, uint64_t bytes);

 private:
  std::atomic<uint64_t> hits_[static_cast<size_t>(FaultPoint::torn_write) + 1] = {};
  std::mutex mutex_;
  FaultPoint armed_ = FaultPoint::none;
  uint64_t armed_hit_ = 0;
  Hook hook_;
  std::atomic<bool> rename_pending_{false};  // a rename not yet followed by sync_dir
  std::atomic<bool> space_limited_{false};
  std::atomic<int64_t> space_left_bytes_{0};
};

}  // namespace keyval::testing
