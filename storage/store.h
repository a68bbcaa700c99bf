// The LMDB store: one environment per node with six named databases.
//
//   meta      current_term/voted_for (Metadata), and the positions the indexer
//             and the state machine have reached (indexed_index, applied_index/_term)
//   log       Raft entries keyed by big-endian index (so LMDB's order is log order),
//             each its frame (storage/entry_frame.h) with a CRC32C checked on every load
//   snapshot  snapshot metadata
//   kv        the state machine's keys and values (used by the state machine)
//   sessions       the state machine's client session table, by client id
//   session_order  the same sessions ordered least recently used first
//
// The map grows (doubling, up to map_bytes_max) when a write finds it full,
// instead of failing. LMDB return codes become Status values in lmdb_error.cc.
//
// Durability: with sync_mode::durable every commit is fsynced; with
// sync_mode::relaxed (MDB_NOSYNC, the indexer's mode behind the WAL) commits
// stay atomic but the last ones may be lost at a power cut until sync().
// Threads: two writers share the environment, each with its own databases: the
// store_indexer (meta's metadata and indexed_index, log, snapshot) and the state machine
// actor (kv, sessions, session_order, meta's applied index and term); the snapshotter only
// reads. LMDB runs one write transaction at a time and gives each read a fixed MVCC view. A
// writer changes only its own fields of the shared `positions` record, reading and rewriting
// it inside its own write transaction (save_indexed_index, KvWriter::set_applied), so
// neither undoes the other's. The environment is opened with MDB_NOTLS (an actor may move
// between threads); every transaction holds a shared lock that map growth (which LMDB allows
// only while no transaction is open in the process) takes exclusively. Other calls
// (save_entries, write_kv, ...) must not be made by two threads on the same databases.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"
#include "storage/types.h"

namespace keyval {

enum class SyncMode : uint8_t { durable, relaxed };

struct StoreOptions {
  SyncMode sync_mode = SyncMode::durable;
  // First map size. A relaxed store reserves its map on disk (store.cc reserve_map_file), so
  // the first map is small and doubles as the data grows.
  uint64_t map_bytes_initial = 8ull << 20;
  uint64_t map_bytes_max = 64ull << 30;      // growth stops here: no_space beyond
  // Read-only (MDB_RDONLY, for `keyval wal verify`): nothing is created or changed; the
  // environment must exist; databases never created read as empty; writes return
  // invalid_argument and sync() does nothing.
  bool read_only = false;
  // Relaxed mode writes pages through a shared map: reserve the map's blocks on disk at open
  // and before each growth, so a full disk is a no_space error, not a SIGBUS in a page fault.
  // Off only in the simulator, whose LMDB files live in RAM (/dev/shm) and whose full disks
  // are simulated: there the reservation (zeroed tmpfs pages at every node start) halved the
  // simulated seconds per wall second.
  bool reserve_map = true;
  // Relaxed mode writes pages through the shared map (MDB_WRITEMAP, store.cc open_environment)
  // when set; otherwise LMDB copies each dirty page into the file with pwrite at commit, as
  // durable mode does. Off only in the simulator: its LMDB files are rebuilt in RAM (/dev/shm)
  // at every simulated restart, and on a virtual machine each fresh page first written through
  // a shared map costs a page-table trap, about 12 us against 2-4 us for pwrite and a read
  // fault (docs/BENCHMARKS.md, "Simulator speed"). The data and every rule are the same.
  bool write_through_map = true;
};

// Positions recorded in `meta`.
struct StorePositions {
  uint64_t indexed_index = 0;  // every WAL entry <= this is in the `log` database
  uint64_t applied_index = 0;  // every entry <= this is applied to `kv`
  uint64_t applied_term = 0;   // the term of entry applied_index (0: unknown, written by an older build)
};

// A stored client session: the index of the last entry that used it (its place in the
// least-recently-used order) and the state machine's opaque record (kv_command.h Session).
struct StoredSession {
  uint64_t last_used_index = 0;
  std::vector<uint8_t> record;
};

// The state machine's view of one LMDB transaction (Store::read_kv / write_kv): its data
// (`kv`), its session table and its applied index, nothing else. Keys must hold 1 to
// kv_key_bytes_max (kv_command.h) bytes, or LMDB refuses them with an io_error.
class KvReader {
 public:
  virtual ~KvReader() = default;
  virtual Result<std::optional<std::string>> get(const std::string& key) = 0;
  // Every pair with from <= key < to (`to` empty: no upper bound), in key order (LMDB's:
  // bytewise, a prefix before its extensions), until `visit` returns false. The views die
  // when visit returns.
  virtual Status scan(const std::string& from, const std::string& to,
                      const std::function<bool(std::string_view key, std::string_view value)>& visit) = 0;
  virtual Result<std::optional<StoredSession>> load_session(uint64_t client_id) = 0;
  virtual Result<uint64_t> session_count() = 0;
  // The client id whose session has the lowest last_used_index (ties: lowest client id).
  virtual Result<std::optional<uint64_t>> least_recently_used_session() = 0;
  virtual Result<uint64_t> applied_index() = 0;  // positions.applied_index
  virtual Result<uint64_t> applied_term() = 0;   // positions.applied_term
};

class KvWriter : public KvReader {
 public:
  virtual Status put(const std::string& key, const std::string& value) = 0;
  virtual Status erase(const std::string& key) = 0;  // ok when absent
  // Replaces the client's session and moves it in the least-recently-used order.
  virtual Status save_session(uint64_t client_id, const StoredSession& session) = 0;
  virtual Status erase_session(uint64_t client_id) = 0;  // ok when absent
  // Sets positions.applied_index and applied_term (the term of that entry), keeping indexed_index.
  virtual Status set_applied(uint64_t index, uint64_t term) = 0;
};

// What read_state_machine reports, in this order: the applied position, then every kv pair in
// key order, then every session by client id. The views die when the visitor returns.
struct StateMachineVisitor {
  std::function<Status(uint64_t applied_index, uint64_t applied_term)> applied;
  std::function<Status(std::string_view key, std::string_view value)> kv;
  std::function<Status(uint64_t client_id, const StoredSession& session)> session;
};

class Store {
 public:
  // Opens (creating if needed) the environment in `directory` (a file data.mdb inside it).
  // `locked` when this process already has a Store open on that directory (LMDB forbids it).
  static Result<std::unique_ptr<Store>> open(const std::string& directory, const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // --- meta ---
  Status save_metadata(const Metadata& metadata);
  // nullopt when never saved.
  Result<std::optional<Metadata>> load_metadata();
  // Replaces the whole record: for a store no other thread writes (recovery, tools).
  Status save_positions(const StorePositions& positions);
  // Sets positions.indexed_index, keeping the applied index and term, in one transaction.
  Status save_indexed_index(uint64_t indexed_index);
  Result<StorePositions> load_positions();  // zeros when never saved

  // --- log ---
  Status save_entry(const Entry& entry);
  // One transaction for the whole batch; entries must have positive, increasing indices
  // (invalid_argument otherwise, and nothing of the batch is saved).
  // An entry whose index already exists replaces it.
  Status save_entries(const std::vector<Entry>& entries);
  // not_found when absent.
  Result<Entry> load_entry(uint64_t index);
  // Entries with first <= index <= last, in order; stops early at a gap (the result
  // then ends before `last`), and at `bytes_max` of payload (always at least one entry).
  Result<std::vector<Entry>> load_range(uint64_t first, uint64_t last, uint64_t bytes_max = UINT64_MAX);
  // 0 when the log database is empty.
  Result<uint64_t> first_index();
  Result<uint64_t> last_index();
  // The two deletes commit in transactions of a bounded number of entries, removing the entries
  // farthest from those kept first: a crash part-way leaves a contiguous log, and repeating the
  // call finishes the job.
  // Deletes every entry with index > `index` (Raft conflict).
  Status delete_suffix_after(uint64_t index);
  // Deletes every entry with index <= `index` (compaction).
  Status delete_prefix_through(uint64_t index);

  // --- snapshot ---
  Status save_snapshot_metadata(const SnapshotMetadata& snapshot);
  Result<std::optional<SnapshotMetadata>> load_snapshot_metadata();

  // --- kv, sessions (the state machine) ---
  // One read-only transaction; a read-only store whose databases were never created runs
  // nothing and returns ok (every read finds nothing).
  Status read_kv(const std::function<Status(KvReader&)>& body);
  // One write transaction: everything `body` does commits together, or nothing does when
  // it returns an error. `body` may run more than once (a full map is grown and the whole
  // transaction retried), so it must start from scratch each time.
  Status write_kv(const std::function<Status(KvWriter&)>& body);
  // The whole state machine from one read-only transaction (a consistent view at one applied
  // index), streamed to `visitor` (the snapshotter's thread, while both writers go on); map
  // growth waits until it returns, so keep the visitor's work bounded.
  Status read_state_machine(const StateMachineVisitor& visitor);
  // One write transaction: clears kv, sessions and session_order, runs `fill` (which writes
  // the new pairs and sessions through the KvWriter), then sets the applied position to
  // (index, term), keeping indexed_index. Like write_kv, `fill` may run more than once (the
  // map is grown and the whole transaction retried) and must start from scratch each time.
  Status replace_state_machine(uint64_t index, uint64_t term, const std::function<Status(KvWriter&)>& fill);

  // Forces everything committed so far to disk (needed in relaxed mode).
  Status sync();

  // Current map size in bytes (grows when full).
  uint64_t map_bytes() const;
  const std::string& directory() const;

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyval
