// Crash states from an I/O trace (tests/support/io_trace_shim.c), as ALICE (OSDI '14) builds
// them: the files a power cut at a chosen point of a traced run could leave on disk.
//
// The model of the disk, conservative where POSIX is silent:
//   * A file's content is durable up to its last fsync/fdatasync (sync_data); the writes,
//     truncations and allocations after it are pending. A write through an O_SYNC/O_DSYNC
//     descriptor is durable at once. A crash keeps any subset of a file's pending changes,
//     applied in their order over the durable content (a kept write lands whole; the trace
//     has the page-sized writes LMDB and the WAL make; prefix states also tear one).
//   * A name (create, mkdir, rename, unlink, rmdir) is durable once its directory is fsynced;
//     the pending name changes reach the disk in the order they were made (a journaling file
//     system commits them so), so a crash keeps a prefix of them. A name whose directory did
//     not survive is lost with it.
//   * The traced directory itself exists before the run and survives every crash.
//
// A state is cut at a point of the trace (the calls before it happened) and is one of:
//   synced      only what was durable at the cut
//   everything  every call before the cut (what a process crash leaves: the page cache survives)
//   prefix      durable, plus a random prefix of each file's pending changes and of the names';
//               the first change left out of a file, when it is a write of more than a
//               sector, is torn at a sector boundary (its first sectors kept)
//   subset      durable, plus a random subset of each file's pending changes, a prefix of the names'
// The random choices come from the state's seed: a state is rebuilt exactly from (cut, kind, seed).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "storage/status.h"
#include "tests/support/io_trace_format.h"

namespace keyval::testing {

// One recorded call, its paths relative to the traced directory ("" is the directory itself).
struct TraceOp {
  IoTraceKind kind = io_trace_open;
  uint64_t sequence = 0;
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC, after the call returned
  int64_t fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t flags = 0;
  std::string path, path2;
  size_t data_offset = 0;  // into IoTrace::bytes()
  uint32_t data_bytes = 0;

  std::string describe() const;  // "fdatasync wal/00000002-101.wal"
};

class IoTrace {
 public:
  // Reads the trace of files under `traced_directory`, of one process or several one after
  // another (each numbers its records from 1); a torn last record (the process was killed
  // while writing it) is dropped and counted.
  static Result<IoTrace> read(const std::string& trace_path, const std::string& traced_directory);

  const std::vector<TraceOp>& ops() const { return ops_; }
  const uint8_t* data(const TraceOp& op) const { return bytes_.data() + op.data_offset; }
  uint64_t torn_bytes() const { return torn_bytes_; }
  uint64_t file_bytes() const { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
  std::vector<TraceOp> ops_;
  uint64_t torn_bytes_ = 0;
};

enum class StateKind : uint8_t { synced, everything, prefix, subset };
const char* state_kind_name(StateKind kind);

struct CrashStateSpec {
  size_t cut = 0;  // ops [0, cut) happened
  StateKind kind = StateKind::synced;
  uint64_t seed = 0;
  std::string category;  // why this cut was chosen ("before fdatasync wal segment")
};

struct CrashState {
  CrashStateSpec spec;
  std::map<std::string, std::vector<uint8_t>> files;  // relative path -> content
  std::set<std::string> directories;                  // relative paths, "" excluded
  // Time of the first call left out (UINT64_MAX: none): a reply the traced process sent
  // before it cannot depend on anything the state lacks.
  uint64_t cut_time_ns = 0;
  uint64_t pending_changes = 0, pending_changes_kept = 0;  // file content, every file
  uint64_t pending_names = 0, pending_names_kept = 0;
  std::vector<std::string> torn_files;  // prefix states: a write cut after a whole number of sectors

  std::string describe(const IoTrace& trace) const;  // one line: cut, the call there, kind, what was kept
};

// Points worth cutting at, by category: just before and just after each sync, rename, unlink,
// mkdir, truncation, allocation and file creation (category = the call and the kind of file),
// and a spread of points just after writes ("between syncs"). Cuts are unique within a category.
std::map<std::string, std::vector<size_t>> interesting_cuts(const IoTrace& trace);

// `count` states spread over the categories (round robin, then evenly within each) with the
// kinds taken in turn; always the end of the trace as `everything` and as `synced` first.
// Deterministic for a trace and a seed.
std::vector<CrashStateSpec> choose_states(const IoTrace& trace, size_t count, uint64_t seed);

// Builds the states of `specs` in one pass over the trace, calling `visit` for each in cut
// order. Fails (a Status naming the call) when the trace is not one the model can follow.
Status build_crash_states(const IoTrace& trace, std::vector<CrashStateSpec> specs,
                          const std::function<void(const CrashState&)>& visit);

// Writes the state's directories and files under `directory` (created; must not exist).
Status materialize(const CrashState& state, const std::string& directory);

// What differs between `state` and the files under `directory` (content compared but for
// names in `size_only`); empty when they agree. Checks the shim against what really happened.
std::vector<std::string> compare_with_directory(const CrashState& state, const std::string& directory,
                                                const std::set<std::string>& size_only);

}  // namespace keyval::testing
