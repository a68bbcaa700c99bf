// The segmented write-ahead log: the node's durable record of Raft log entries,
// metadata (current_term, voted_for) and snapshot metadata.
//
// Append-only. Appends are buffered in memory and reach the file on flush() or
// when the buffer fills; sync() makes everything appended so far durable (one
// write, one fdatasync). A Raft conflict is a truncate record, never an in-place
// cut, so a crash can never lose a metadata record written after the cut point.
// Each new segment starts with the current metadata and snapshot records, so
// dropping old segments (compaction) never loses them.
//
// Opening scans every segment and verifies every record. A torn or partly
// written last record is cut off and reported; a bad record followed by a good
// one, or a bad record in any segment but the last (which was synced before the
// next was created), is corruption: open refuses, naming file and offset.
// See storage/FORMAT.md for the layout and the crash analysis.
//
// Not thread-safe: one owner (the wal_writer actor). Files only through Env.
// After a failed write or sync every call returns that failure (fail-stop).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/env.h"
#include "storage/status.h"
#include "storage/types.h"

namespace keyval {

struct WalOptions {
  // Rotate when the next record would pass this. 8 MiB: an idle node holds two preallocated
  // segments (16 MiB), and segments are dropped only through the base snapshot.
  uint64_t segment_bytes = 8ull << 20;
  uint64_t write_buffer_bytes = 1ull << 20;  // buffered appends are written out when this fills
  bool preallocate = true;                   // allocate segments up front (cheaper fdatasync)
  // Zeros are written this far ahead of the records in the active segment (0: never). On ext4
  // an allocated but never written block is an "unwritten extent": the first write into it
  // changes the file's metadata, so an fdatasync after it commits the journal as well; over
  // blocks already written it flushes the data alone. A group commit of 8 KiB syncs in about
  // two thirds of the time (docs/BENCHMARKS.md, "Zeros ahead of the WAL's records").
  uint64_t zero_ahead_bytes = 256ull << 10;
  uint64_t first_index = 1;                  // index of the first entry of a brand-new WAL
  // Read-only: no lock, no repair, nothing created (for `keyval wal verify|dump`). A torn
  // tail is reported but left in place.
  bool read_only = false;
  // Salvage (docs/PERSISTENCE.md, "Corruption repaired from peers"): where open meets a record
  // it cannot read (corruption that is not a torn tail, or an I/O error), it keeps every
  // record before it and discards the WAL from there on, instead of refusing. The damaged
  // segment and every later one are first copied, as they were, to
  // `salvage_directory`/damaged-N/wal/ (N: the first unused number) for the operator; the
  // damaged segment is then cut at the last good record (removed when its header is bad) and
  // the later segments removed. Refused as without salvage when nothing readable holds the
  // Raft metadata (the damage is before the first metadata record). The caller (recovery)
  // must then make the node take the lost part from its peers.
  bool salvage = false;
  std::string salvage_directory;
};

// One record as open() met it, for `keyval wal dump`.
struct WalRecordInfo {
  std::string segment;  // file name
  uint64_t offset = 0;
  EntryType type = EntryType::log;
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t payload_bytes = 0;
};
using WalRecordObserver = std::function<void(const WalRecordInfo&)>;

// What open() found and did.
struct WalOpenReport {
  uint64_t segments = 0;
  uint64_t records = 0;           // valid records of every type
  uint64_t bytes = 0;             // bytes of valid records
  uint64_t torn_bytes = 0;        // bytes cut (or, read-only, that would be cut) from a torn tail
  std::string torn_segment;       // file holding the torn tail, empty when none
  uint64_t torn_offset = 0;       // where the torn tail began
  uint64_t segments_removed = 0;  // unfinished segment files removed (a crash while preparing one)
  // Salvage (WalOptions::salvage): set when open discarded the WAL from an unreadable record on.
  bool damaged = false;
  std::string damage;              // what open met there (the error salvage replaced)
  std::string damaged_segment;     // file name of the first damaged segment
  uint64_t damaged_offset = 0;     // where its readable records stop
  uint64_t damaged_segments = 0;   // segments copied aside (the damaged one and every later one)
  std::string damaged_copy;        // the directory holding the copies (DATA/damaged-N)
  uint64_t damaged_unreadable_bytes = 0;  // bytes that could not be read when copying (written as zeros)
  uint64_t damaged_last_index = 0;  // a lower bound on the last index the discarded part held (0: unknown)
  // The latest Raft metadata (highest term; in it, a vote over none) among the readable records
  // of the discarded part: a term or vote recorded after the damage must not be forgotten, or the
  // node could vote twice in one term. nullopt: none readable there.
  std::optional<Metadata> damaged_metadata;
};

// A log entry read in place; the bytes live until the next call on the Wal.
struct EntryView {
  uint64_t index = 0;
  uint64_t term = 0;
  const uint8_t* payload = nullptr;
  size_t payload_bytes = 0;
  EntryType type = EntryType::log;  // log or configuration: both are Raft log entries
};

class Wal {
 public:
  static Result<std::unique_ptr<Wal>> open(Env& env, const std::string& directory, const WalOptions& options = {},
                                           const WalRecordObserver& observer = nullptr);
  ~Wal();  // flushes nothing: what was not synced is as lost as in a crash
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  const WalOpenReport& open_report() const;

  // --- writing (buffered until flush/sync) ---
  // `entry.index` must be next_index().
  Status append(const Entry& entry);
  // `type`: log or configuration (both are Raft log entries and take the next index).
  Status append(uint64_t index, uint64_t term, const uint8_t* payload, size_t payload_bytes,
                EntryType type = EntryType::log);
  Status append_batch(const std::vector<Entry>& entries);
  Status save_metadata(const Metadata& metadata);
  // Records snapshot metadata. When the log does not hold the snapshot's last included entry
  // with its term, the log is discarded and continues at last_included_index + 1 (Raft §7).
  Status save_snapshot(const SnapshotMetadata& snapshot);
  // Discards every entry after `index` (Raft §5.3 conflict); the next append is index + 1.
  Status truncate_suffix_after(uint64_t index);
  // Writes buffered records to the file (no sync).
  Status flush();
  // flush() then fdatasync: everything appended so far is durable when this returns ok.
  Status sync();
  // Removes whole segments (never the active one) whose entries all have index <= `index`.
  // Returns how many were removed.
  Result<uint64_t> drop_segments_through(uint64_t index);
  // Creates and preallocates the next segment file now, so rotation does not wait for it.
  Status prepare_next_segment();

  // --- reading ---
  uint64_t first_index() const;  // first retained entry; last_index() + 1 when empty
  uint64_t last_index() const;   // 0 for a brand-new WAL
  uint64_t next_index() const { return last_index() + 1; }
  uint64_t synced_index() const;  // every entry <= this is durable
  std::optional<Metadata> metadata() const;
  std::optional<SnapshotMetadata> snapshot() const;
  Result<Entry> read(uint64_t index);
  Result<std::vector<Entry>> read_range(uint64_t first, uint64_t last);
  // Visits entries from..last_index() in order, checking each CRC; stops at the first
  // non-ok Status the visitor returns and returns it.
  Status replay(uint64_t from, const std::function<Status(const EntryView&)>& visit);

  uint64_t segment_count() const;
  const std::string& directory() const;

 private:
  struct Impl;
  explicit Wal(std::unique_ptr<Impl> impl);
  static Status open_impl(Impl& impl, const WalRecordObserver& observer);
  static Status salvage(Impl& impl, const Status& damage, WalOpenReport& out);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyval
