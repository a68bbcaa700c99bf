// Snapshot files: the state machine (kv pairs and client sessions) at one applied index,
// written and read as a stream through Env, and the directory that holds them.
//
// Format (little-endian; storage/FORMAT.md "Snapshot files" has the tables):
//
//   header record  magic "KVSNAPSH", format version, header bytes, index, term,
//                  chunk_bytes_max, configuration (members), CRC32C of the record
//   chunk *        kind 1, payload bytes, record count, CRC32C over the first 12 header
//                  bytes and the payload; then the payload: whole records, each
//                    kv:      type 1, key bytes (u32), value bytes (u32), key, value
//                    session: type 2, client id, last used index, record bytes (u32), record
//   end record     kind 2, payload bytes (36), 0, CRC32C as a chunk's; payload: chunk count,
//                  key count, session count, file bytes (the whole file, end record included),
//                  CRC32C of every byte before the end record
//
// A chunk holds at most chunk_bytes_max payload bytes, except a single record bigger than
// that, which gets a chunk of its own. Writer and reader hold one chunk at a time, never the
// file: memory is bounded by max(chunk_bytes_max, the largest record) whatever the snapshot's size.
//
// What a crash leaves behind: the writer writes "<final name>.<purpose>.tmp"; finish() writes
// the last chunk and the end record and fdatasyncs; SnapshotDirectory::publish renames it to
// its final name and fsyncs the directory. A crash before the rename leaves only a .tmp file
// (removed at the next recovery, never read); after it, a complete synced file. The file is
// not yet the node's base snapshot: the WAL's snapshot record naming (index, term) is the
// commit point (docs/PERSISTENCE.md). A file torn or damaged later is reported by the reader
// as corruption naming the file and the byte offset, or as "truncated at offset N".
//
// Not thread-safe: one writer or reader per object; different objects may run on different
// threads (Env is thread-safe).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/env.h"
#include "storage/status.h"
#include "storage/store.h"
#include "storage/types.h"

namespace keyval {

struct SnapshotHeader {
  uint64_t index = 0;  // the applied index the state is at
  uint64_t term = 0;   // the term of that entry
  std::vector<Member> configuration;

  bool operator==(const SnapshotHeader& other) const {
    return index == other.index && term == other.term && configuration == other.configuration;
  }
};

struct SnapshotSummary {
  SnapshotHeader header;
  uint64_t keys = 0, sessions = 0, file_bytes = 0, chunks = 0;
  uint32_t checksum = 0;  // CRC32C of every byte before the end record
};

class SnapshotWriter {
 public:
  // Creates (or empties) `path` and writes the header record. chunk_bytes_max must be in
  // [snapshot_chunk_bytes_min, snapshot_chunk_bytes_limit] (snapshot_file.cc).
  static Result<std::unique_ptr<SnapshotWriter>> create(Env& env, const std::string& path,
                                                        const SnapshotHeader& header,
                                                        uint64_t chunk_bytes_max = 1 << 20);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Keys in any order (take_snapshot gives LMDB's); a key holds 1 to kv_key_bytes_max bytes.
  Status add_kv(std::string_view key, std::string_view value);
  Status add_session(uint64_t client_id, const StoredSession& session);
  // Writes the last chunk and the end record, then fdatasyncs. Nothing may be added after.
  Result<SnapshotSummary> finish();

  const std::string& path() const;

 private:
  struct Impl;
  explicit SnapshotWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

using SnapshotKvVisitor = std::function<Status(std::string_view key, std::string_view value)>;
using SnapshotSessionVisitor = std::function<Status(uint64_t client_id, const StoredSession& session)>;

class SnapshotReader {
 public:
  // Opens `path` and checks its header record.
  static Result<std::unique_ptr<SnapshotReader>> open(Env& env, const std::string& path);
  ~SnapshotReader();
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  const SnapshotHeader& header() const;
  // Streams every record to the visitors in file order, checking every chunk and the end
  // record; stops at the first error (a visitor's, or corruption naming file and offset).
  // The visitors may have seen records of a file that turns out damaged further on: callers
  // that must not act on a damaged file apply inside a transaction they abort on error.
  // `out` (may be null) gets the summary. May be called again: it reads from the start.
  Status read_all(const SnapshotKvVisitor& kv, const SnapshotSessionVisitor& session, SnapshotSummary* out);

  const std::string& path() const;

 private:
  struct Impl;
  explicit SnapshotReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads and checks the whole file (one chunk in memory at a time).
Result<SnapshotSummary> verify_snapshot_file(Env& env, const std::string& path);

// DATA/snapshots: complete snapshots "snap-<index:020>-<term:020>.snap", and files being
// written "<that name>.<purpose>.tmp".
class SnapshotDirectory {
 public:
  SnapshotDirectory(Env& env, std::string directory);

  Status create();  // the directory (and parents); ok when it exists
  std::string path_for(uint64_t index, uint64_t term) const;
  std::string temp_path_for(uint64_t index, uint64_t term, const std::string& purpose) const;
  // Renames a finished (fdatasynced) temporary file to path_for(index, term), replacing a
  // file of that name, then fsyncs the directory.
  Status publish(const std::string& temp_path, uint64_t index, uint64_t term);
  // The complete snapshots, (index, term) ascending; .tmp files and foreign names are ignored.
  Result<std::vector<std::pair<uint64_t, uint64_t>>> list() const;
  // Removes every "snap-*.tmp" file (left by a crash or a failed write), then fsyncs the directory.
  Status remove_temporaries();
  // Removes all but the `count` newest complete snapshots, then fsyncs the directory. The
  // caller keeps the WAL's base snapshot among them (call it after the newest is the base).
  Status retain_newest(size_t count);
  // Renames the complete snapshot (index, term) to damaged_path_for(index, term), replacing an
  // older file of that name, then fsyncs the directory: a file that failed its checksums is
  // kept for the operator to inspect (no "snap-" prefix: list, retain_newest and
  // remove_temporaries never see it), and no reader opens it again under its old name.
  Status move_aside(uint64_t index, uint64_t term);
  std::string damaged_path_for(uint64_t index, uint64_t term) const;

  const std::string& directory() const { return directory_; }

  // "snap-<index:020>-<term:020>.snap"; parse is false for any other name.
  static std::string file_name(uint64_t index, uint64_t term);
  static bool parse_file_name(const std::string& name, uint64_t* index, uint64_t* term);

 private:
  Env& env_;
  std::string directory_;
};

}  // namespace keyval
