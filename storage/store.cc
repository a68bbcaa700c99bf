// The LMDB store (store.h): one environment, <directory>/data.mdb, six named databases.
//
//   meta      "metadata"  -> encode_metadata(Metadata)
//             "positions" -> 24 bytes: indexed_index, applied_index, applied_term, each a u64
//                            big-endian (16 bytes, without applied_term, from older builds: read
//                            with applied_term 0)
//   log       8-byte big-endian index (so LMDB's byte order is log order) -> the entry's frame
//             (storage/entry_frame.h, the bytes its WAL record holds), whose CRC32C and index
//             are checked on every load; a store written before frames holds a Cap'n Proto
//             WalEntry instead, read as before (decode_entry tells the two apart)
//   snapshot  "metadata"  -> encode_snapshot_metadata(SnapshotMetadata)
//   kv        the state machine's keys and values (opened here, written by the state machine)
//   sessions       8-byte big-endian client id -> 8-byte big-endian last used index, then the
//                  state machine's record (encode_session, kv_command.h)
//   session_order  last used index then client id, each 8 bytes big-endian -> empty: LMDB's
//                  order is least recently used first, so eviction reads one key
// Both session databases change only in write_kv transactions, each session row together
// with its order key, so they always describe the same sessions.
//
// Crash behaviour: each change is one LMDB transaction, and LMDB's copy-on-write B-tree with
// its meta page written last leaves either the state before a commit or the state after it.
// In durable mode a commit that returned ok survives a power cut. In relaxed mode
// (MDB_NOSYNC) a process crash loses nothing (the page cache keeps every commit), but a power
// cut or an OS crash may tear the environment: its meta page may point at pages that never
// reached the disk (LMDB's documentation of MDB_NOSYNC says so, and ext4 gives no ordering
// that would prevent it). Such an LMDB is never trusted after a power cut: DATA/LMDB_STATE
// (storage/lmdb_state.h) tells the two crashes apart, and recovery rebuilds LMDB from the
// base snapshot and the WAL (storage/recovery.h). Relaxed mode writes pages through the map
// (MDB_WRITEMAP, open_environment), into a file whose blocks are reserved (reserve_map_file);
// sync() is then LMDB's msync of the map.
// The two deletes run in chunks of delete_chunk_entries_max entries, one transaction each,
// removing the entries farthest from those kept first (the suffix from the last index down,
// the prefix from the first index up): a crash between chunks leaves a contiguous log with
// part of the range removed, and repeating the call finishes the job.
#include "storage/store.h"

#include <lmdb.h>
#include <fcntl.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <climits>
#include <cstring>
#include <exception>
#include <functional>
#include <atomic>
#include <mutex>
#include <set>
#include <shared_mutex>

#include "storage/codec.h"
#include "storage/env.h"
#include "storage/lmdb_error.h"

namespace keyval {
namespace {

constexpr unsigned databases_max = 6;  // meta, log, snapshot, kv, sessions, session_order
// Each attempt doubles the map, so 64 attempts reach any 64-bit size; the bound only guards
// against a map that refuses to grow.
constexpr int map_growth_attempts_max = 64;
// Bounds the pages one delete transaction dirties: LMDB fails a transaction that dirties more
// than 128 Ki pages (MDB_TXN_FULL), and a leaf holds at least two entries.
constexpr uint64_t delete_chunk_entries_max = 16384;
constexpr size_t index_key_bytes = 8;
constexpr size_t positions_bytes = 24;
constexpr size_t positions_bytes_old = 16;  // before applied_term
constexpr size_t session_order_key_bytes = 16;
constexpr mdb_mode_t file_mode = 0644;
const char* const metadata_key = "metadata";
const char* const positions_key = "positions";
const char* const snapshot_key = "metadata";

using IndexKey = std::array<uint8_t, index_key_bytes>;

void store_big_endian(uint8_t* out, uint64_t value) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(value);
    value >>= 8;
  }
}

uint64_t load_big_endian(const uint8_t* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | in[i];
  return value;
}

IndexKey encode_index_key(uint64_t index) {
  IndexKey key;
  store_big_endian(key.data(), index);
  return key;
}

std::vector<uint8_t> encode_positions(const StorePositions& positions) {
  std::vector<uint8_t> bytes(positions_bytes);
  store_big_endian(bytes.data(), positions.indexed_index);
  store_big_endian(bytes.data() + 8, positions.applied_index);
  store_big_endian(bytes.data() + 16, positions.applied_term);
  return bytes;
}

Result<StorePositions> decode_positions(const uint8_t* bytes, size_t size, const std::string& where) {
  if (size != positions_bytes && size != positions_bytes_old) {
    return Status::corruption(where + ": value has " + std::to_string(size) + " bytes, expected " +
                              std::to_string(positions_bytes) + " (or " + std::to_string(positions_bytes_old) +
                              " from an older build)");
  }
  StorePositions positions;
  positions.indexed_index = load_big_endian(bytes);
  positions.applied_index = load_big_endian(bytes + 8);
  if (size == positions_bytes) positions.applied_term = load_big_endian(bytes + 16);
  return positions;
}

using SessionOrderKey = std::array<uint8_t, session_order_key_bytes>;

SessionOrderKey encode_session_order_key(uint64_t last_used_index, uint64_t client_id) {
  SessionOrderKey key;
  store_big_endian(key.data(), last_used_index);
  store_big_endian(key.data() + 8, client_id);
  return key;
}

MDB_val as_val(const void* data, size_t bytes) {
  MDB_val value;
  value.mv_size = bytes;
  value.mv_data = const_cast<void*>(data);  // LMDB's API is not const-correct; it never writes input
  return value;
}

// A transaction that is aborted when it goes out of scope without a commit, so every early
// return (an error, an exception) leaves LMDB as it was.
class Transaction {
 public:
  explicit Transaction(MDB_txn* txn) : txn_(txn) {}
  Transaction(Transaction&& other) noexcept : txn_(other.txn_) { other.txn_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  MDB_txn* get() const { return txn_; }
  // LMDB frees the transaction whether or not the commit succeeds.
  int commit() {
    MDB_txn* txn = txn_;
    txn_ = nullptr;
    return mdb_txn_commit(txn);
  }

 private:
  MDB_txn* txn_;
};

// A cursor closed when it goes out of scope, always before its transaction ends.
class Cursor {
 public:
  Cursor() = default;
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  Status open(MDB_txn* txn, MDB_dbi dbi, const std::string& what) {
    return lmdb_status(mdb_cursor_open(txn, dbi, &cursor_), "open cursor on " + what);
  }
  MDB_cursor* get() const { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
};

// LMDB forbids opening one environment twice in one process: closing either copy drops the
// other's locks (lmdb.h, "Caveats"). Stores record here which directories are open.
std::mutex& open_directories_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::set<std::string>& open_directories() {
  static std::set<std::string> directories;
  return directories;
}

Status claim_directory(const std::string& canonical) {
  std::lock_guard<std::mutex> lock(open_directories_mutex());
  if (!open_directories().insert(canonical).second) {
    return Status::locked("LMDB environment " + canonical + " is already open in this process");
  }
  return Status::ok();
}

void release_directory(const std::string& canonical) {
  std::lock_guard<std::mutex> lock(open_directories_mutex());
  open_directories().erase(canonical);
}

Result<std::string> canonical_path(const std::string& directory) {
  char buffer[PATH_MAX];
  if (::realpath(directory.c_str(), buffer) == nullptr) return Status::from_errno("resolve", directory, errno);
  return std::string(buffer);
}

Status check_options(const std::string& directory, const StoreOptions& options) {
  if (directory.empty()) return Status::invalid_argument("open store: empty directory");
  if (options.map_bytes_initial == 0 || options.map_bytes_initial > options.map_bytes_max) {
    return Status::invalid_argument("open store " + directory + ": map_bytes_initial " +
                                    std::to_string(options.map_bytes_initial) + " must be in [1, map_bytes_max " +
                                    std::to_string(options.map_bytes_max) + "]");
  }
  return Status::ok();
}

// Runs `body`, turning any exception (allocation failure, an encoder refusing an oversized
// payload) into a Status: no exception leaves the store.
Status run_guarded(const std::string& what, const std::function<Status()>& body) {
  try {
    return body();
  } catch (const std::exception& exception) {
    return Status::io_error(what + ": unexpected exception: " + exception.what());
  } catch (...) {
    return Status::io_error(what + ": unexpected exception");
  }
}

}  // namespace

using TransactionBody = std::function<Status(MDB_txn*)>;

struct Store::Impl {
  std::string directory;
  std::string canonical_directory;  // claimed in open_directories() while non-empty
  StoreOptions options;
  MDB_env* env = nullptr;
  MDB_dbi meta = 0;
  MDB_dbi log = 0;
  MDB_dbi snapshot = 0;
  MDB_dbi kv = 0;
  MDB_dbi sessions = 0;
  MDB_dbi session_order = 0;
  // Read-only over an environment whose databases were never created (open_databases makes
  // all of them in one transaction, so none exists): every read finds nothing.
  bool databases_missing = false;
  // Read-only over an environment written before the session databases existed: the session
  // table reads as empty.
  bool sessions_missing = false;
  // Read by map_bytes() on any thread; changed only under map_mutex held exclusively.
  std::atomic<uint64_t> map_bytes{0};
  bool writemap = false;  // MDB_WRITEMAP: pages written through the map (open_environment)
  // mdb_env_set_mapsize needs no transaction open in the process: growth holds this
  // exclusively, every transaction (read or write, on any thread) shared for its whole life.
  // Two actors write this environment (the indexer its log, the state machine its keys) and
  // others read it (the snapshotter), so any of them may be mid-transaction when another
  // finds the map full.
  std::shared_mutex map_mutex;

  ~Impl() {
    if (env != nullptr) mdb_env_close(env);  // also required after a failed mdb_env_open
    if (!canonical_directory.empty()) release_directory(canonical_directory);
  }

  Status open_environment();
  Status open_databases();
  Status open_databases_read_only();
  void refresh_map_bytes();
  Result<Transaction> begin(unsigned flags, const std::string& what);
  // Doubles the map, unless another writer grew it past `full_at` (the size that was full).
  Status grow_map(const std::string& what, uint64_t full_at);
  Status reserve_map_file(uint64_t bytes, const std::string& what);
  Status write(const std::string& what, const TransactionBody& body);
  Status write_once(const std::string& what, const TransactionBody& body);
  Status read(const std::string& what, const TransactionBody& body);

  Status put(MDB_txn* txn, MDB_dbi dbi, const std::string& key, const std::vector<uint8_t>& value,
             const std::string& where);
  Result<std::optional<std::vector<uint8_t>>> get(MDB_dbi dbi, const std::string& key, const std::string& where);
  Status put_entries(MDB_txn* txn, const std::vector<Entry>& entries);
  Status collect_range(MDB_txn* txn, uint64_t first, uint64_t last, uint64_t bytes_max, std::vector<Entry>* entries);
  Result<uint64_t> cursor_edge_index(MDB_cursor* cursor, MDB_cursor_op op);
  Result<uint64_t> edge_index(MDB_cursor_op op);
  Status delete_chunk(MDB_txn* txn, bool from_end, uint64_t index, uint64_t* deleted);
  Status delete_in_chunks(bool from_end, uint64_t index, const std::string& what);
  // Visits every row of `dbi` in LMDB's order; stops at the first error the visitor returns.
  Status scan(MDB_txn* txn, MDB_dbi dbi, const char* database,
              const std::function<Status(const MDB_val& key, const MDB_val& value)>& visit);
  class KvTransaction;  // the KvReader/KvWriter over one transaction (below)

  // "/dir/data.mdb, database log, index 42": where a key lives, for error messages.
  std::string where(const char* database, const std::string& key) const {
    return directory + "/data.mdb, database " + database + ", " + key;
  }
  std::string where_index(uint64_t index) const { return where("log", "index " + std::to_string(index)); }
  Result<uint64_t> decode_index_key(const MDB_val& key) const {
    if (key.mv_size != index_key_bytes) {
      return Status::corruption(where("log", "a key") + " has " + std::to_string(key.mv_size) + " bytes, expected " +
                                std::to_string(index_key_bytes));
    }
    return load_big_endian(static_cast<const uint8_t*>(key.mv_data));
  }
};

Status Store::Impl::open_environment() {
  KV_RETURN_IF_ERROR(check_options(directory, options));
  if (!options.read_only) KV_RETURN_IF_ERROR(posix_env().create_dir(directory));
  KV_ASSIGN_OR_RETURN(std::string canonical, canonical_path(directory));
  KV_RETURN_IF_ERROR(claim_directory(canonical));
  canonical_directory = canonical;
  int rc = mdb_env_create(&env);
  if (rc != 0) {
    env = nullptr;
    return lmdb_status(rc, "create environment for " + directory);
  }
  rc = mdb_env_set_maxdbs(env, databases_max);
  if (rc != 0) return lmdb_status(rc, "set maxdbs for " + directory);
  rc = mdb_env_set_mapsize(env, options.map_bytes_initial);
  if (rc != 0) return lmdb_status(rc, "set map size " + std::to_string(options.map_bytes_initial) + " for " + directory);
  // MDB_NOTLS: the owning actor may run on a different thread for each message.
  // MDB_NOSYNC (relaxed): the WAL holds the durable copy; MDB_NOMETASYNC stays off because it
  // would weaken durable mode without helping relaxed mode.
  unsigned flags = MDB_NOTLS;
  // MDB_WRITEMAP (relaxed, writable): LMDB writes its pages in place through a shared map
  // instead of copying each dirty page into the file with pwrite at commit. Under random-key
  // puts a commit dirties about one leaf per put, and on this kernel's ext4 the pwrite path
  // (ext4_block_write_begin) was the largest single cost of the indexer's thread; in place,
  // Redis SET throughput rose about 15 % (docs/BENCHMARKS.md). Durable mode keeps pwrite:
  // its fsync per commit is what it is for. A process crash loses nothing either way (the
  // page cache holds what the map wrote); a power cut in relaxed mode was already never
  // trusted (DATA/LMDB_STATE). The file is reserved to the map's size (reserve_map_file).
  writemap = options.sync_mode == SyncMode::relaxed && !options.read_only && options.write_through_map;
  if (options.sync_mode == SyncMode::relaxed) flags |= MDB_NOSYNC;
  if (writemap) flags |= MDB_WRITEMAP;
  if (options.read_only) flags |= MDB_RDONLY;
  rc = mdb_env_open(env, directory.c_str(), flags, file_mode);
  if (rc != 0) return lmdb_status(rc, "open environment " + directory + "/data.mdb");
  refresh_map_bytes();
  KV_RETURN_IF_ERROR(reserve_map_file(map_bytes, "open " + directory));
  // LMDB never syncs its directory: data.mdb's name (new, or replaced by a rebuild) would be
  // durable only by chance, and a power cut after LMDB's first sync (a clean stop, marked
  // "clean") could leave no data.mdb behind. Found by the crash-state tests.
  if (!options.read_only) KV_RETURN_IF_ERROR(posix_env().sync_dir(directory));
  return options.read_only ? open_databases_read_only() : open_databases();
}

// Named database handles stay valid for the environment's life once their transaction commits.
Status Store::Impl::open_databases() {
  return write("open databases of " + directory, [this](MDB_txn* txn) -> Status {
    const std::pair<const char*, MDB_dbi*> databases[] = {
        {"meta", &meta}, {"log", &log}, {"snapshot", &snapshot}, {"kv", &kv},
        {"sessions", &sessions}, {"session_order", &session_order}};
    for (const auto& [name, handle] : databases) {
      int rc = mdb_dbi_open(txn, name, MDB_CREATE, handle);
      if (rc != 0) return lmdb_status(rc, "open " + where(name, "(database)"));
    }
    return Status::ok();
  });
}

// Without MDB_CREATE; the read transaction is committed (not aborted) so the handles outlive it.
Status Store::Impl::open_databases_read_only() {
  return run_guarded("open databases of " + directory, [this]() -> Status {
    KV_ASSIGN_OR_RETURN(Transaction txn, begin(MDB_RDONLY, "open databases of " + directory));
    const std::pair<const char*, MDB_dbi*> databases[] = {
        {"meta", &meta}, {"log", &log}, {"snapshot", &snapshot}, {"kv", &kv}};
    for (const auto& [name, handle] : databases) {
      int rc = mdb_dbi_open(txn.get(), name, 0, handle);
      if (rc == MDB_NOTFOUND) {
        databases_missing = true;
        return Status::ok();  // aborting the transaction closes the handles opened so far
      }
      if (rc != 0) return lmdb_status(rc, "open " + where(name, "(database)"));
    }
    // Added after the first four: an older environment may lack them, and still verifies.
    for (const auto& [name, handle] : {std::pair<const char*, MDB_dbi*>{"sessions", &sessions},
                                       std::pair<const char*, MDB_dbi*>{"session_order", &session_order}}) {
      int rc = mdb_dbi_open(txn.get(), name, 0, handle);
      if (rc == MDB_NOTFOUND) {
        sessions_missing = true;
        continue;
      }
      if (rc != 0) return lmdb_status(rc, "open " + where(name, "(database)"));
    }
    int rc = txn.commit();
    if (rc != 0) return lmdb_status(rc, "commit the opening of the databases of " + directory);
    return Status::ok();
  });
}

void Store::Impl::refresh_map_bytes() {
  MDB_envinfo info{};
  if (mdb_env_info(env, &info) == 0) map_bytes = info.me_mapsize;
}

Result<Transaction> Store::Impl::begin(unsigned flags, const std::string& what) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env, nullptr, flags, &txn);
  if (rc == MDB_MAP_RESIZED) {
    // Another process grew the map: LMDB requires adopting its size before going on.
    rc = mdb_env_set_mapsize(env, 0);
    if (rc == 0) {
      refresh_map_bytes();
      rc = mdb_txn_begin(env, nullptr, flags, &txn);
    }
  }
  if (rc != 0) return lmdb_status(rc, "begin transaction for " + what);
  return Transaction(txn);
}

// With MDB_WRITEMAP, LMDB extends data.mdb to the map's size with ftruncate: a sparse file
// whose blocks the kernel allocates only when a store through the map first dirties a page.
// On a full disk that allocation fails inside a page fault, and the process would get SIGBUS
// instead of an error. Reserving the map's blocks (posix_fallocate) at open and before each
// growth turns a full disk into a clear no_space there, as pwrite's ENOSPC was before; the
// file then takes the map's size on disk (StoreOptions::map_bytes_initial at first, doubling).
Status Store::Impl::reserve_map_file(uint64_t bytes, const std::string& what) {
  if (!writemap || !options.reserve_map) return Status::ok();
  mdb_filehandle_t fd = -1;
  int rc = mdb_env_get_fd(env, &fd);
  if (rc != 0) return lmdb_status(rc, what + ": the descriptor of " + directory + "/data.mdb");
  rc = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (rc == 0) return Status::ok();
  std::string why = what + ": cannot reserve " + std::to_string(bytes) + " bytes for the LMDB map in " + directory +
                    "/data.mdb: " + std::strerror(rc);
  if (rc == ENOSPC || rc == EFBIG || rc == EDQUOT) return Status::no_space(why);
  return Status::io_error(why);
}

Status Store::Impl::grow_map(const std::string& what, uint64_t full_at) {
  std::unique_lock<std::shared_mutex> no_transaction(map_mutex);
  if (map_bytes > full_at) return Status::ok();  // another writer grew it meanwhile: retry
  if (map_bytes >= options.map_bytes_max) {
    return Status::no_space(what + ": the LMDB map of " + directory + " is full at " +
                            std::to_string(map_bytes.load()) + " bytes, its configured maximum (map_bytes_max " +
                            std::to_string(options.map_bytes_max) + ")");
  }
  uint64_t grown = map_bytes > options.map_bytes_max / 2 ? options.map_bytes_max : map_bytes * 2;
  KV_RETURN_IF_ERROR(reserve_map_file(grown, what));  // before the map covers it
  int rc = mdb_env_set_mapsize(env, grown);
  if (rc != 0) return lmdb_status(rc, "grow the map of " + directory + " to " + std::to_string(grown) + " bytes");
  refresh_map_bytes();
  return Status::ok();
}

// A full map is not an error the caller should see: the failed transaction is gone (aborted),
// so the map can be remapped larger and the whole operation run again.
Status Store::Impl::write(const std::string& what, const TransactionBody& body) {
  if (options.read_only) return Status::invalid_argument(what + ": the store " + directory + " is open read-only");
  for (int attempt = 0; attempt < map_growth_attempts_max; ++attempt) {
    const uint64_t size = map_bytes;
    Status status = write_once(what, body);
    if (!is_map_full(status)) return status;
    KV_RETURN_IF_ERROR(grow_map(what, size));
  }
  return Status::no_space(what + ": the LMDB map of " + directory + " is still full after " +
                          std::to_string(map_growth_attempts_max) + " growths, at " + std::to_string(map_bytes.load()) +
                          " bytes");
}

Status Store::Impl::write_once(const std::string& what, const TransactionBody& body) {
  return run_guarded(what, [&]() -> Status {
    std::shared_lock<std::shared_mutex> no_growth(map_mutex);  // released after the commit
    KV_ASSIGN_OR_RETURN(Transaction txn, begin(0, what));
    KV_RETURN_IF_ERROR(body(txn.get()));
    int rc = txn.commit();
    if (rc != 0) return lmdb_status(rc, "commit " + what);
    return Status::ok();
  });
}

// Read transactions are only aborted: they changed nothing and that frees the reader slot.
Status Store::Impl::read(const std::string& what, const TransactionBody& body) {
  if (databases_missing) return Status::ok();  // the body's result stays "nothing found"
  return run_guarded(what, [&]() -> Status {
    std::shared_lock<std::shared_mutex> no_growth(map_mutex);  // released after the abort
    KV_ASSIGN_OR_RETURN(Transaction txn, begin(MDB_RDONLY, what));
    return body(txn.get());
  });
}

Status Store::Impl::put(MDB_txn* txn, MDB_dbi dbi, const std::string& key, const std::vector<uint8_t>& value,
                        const std::string& where) {
  MDB_val key_val = as_val(key.data(), key.size());
  MDB_val value_val = as_val(value.data(), value.size());
  int rc = mdb_put(txn, dbi, &key_val, &value_val, 0);
  if (rc != 0) return lmdb_status(rc, "put " + where);
  return Status::ok();
}

// A copy of the value, since LMDB's pointer dies with the transaction; nullopt when absent.
Result<std::optional<std::vector<uint8_t>>> Store::Impl::get(MDB_dbi dbi, const std::string& key,
                                                             const std::string& where) {
  std::optional<std::vector<uint8_t>> value;
  Status status = read("get " + where, [&](MDB_txn* txn) -> Status {
    MDB_val key_val = as_val(key.data(), key.size());
    MDB_val value_val;
    int rc = mdb_get(txn, dbi, &key_val, &value_val);
    if (rc == MDB_NOTFOUND) return Status::ok();
    if (rc != 0) return lmdb_status(rc, "get " + where);
    const auto* bytes = static_cast<const uint8_t*>(value_val.mv_data);
    value.emplace(bytes, bytes + value_val.mv_size);
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return value;
}

Status Store::Impl::put_entries(MDB_txn* txn, const std::vector<Entry>& entries) {
  Cursor cursor;
  KV_RETURN_IF_ERROR(cursor.open(txn, log, where("log", "(save entries)")));
  KV_ASSIGN_OR_RETURN(uint64_t last, cursor_edge_index(cursor.get(), MDB_LAST));
  uint64_t previous = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& entry = entries[i];
    // Index 0 means "no entry" (first_index/last_index of an empty log) and disables the
    // index check on load; an unordered batch would defeat MDB_APPEND. Both are caller bugs
    // reported as values, and returning aborts the whole batch.
    if (entry.index == 0 || entry.index <= previous) {
      return Status::invalid_argument("save entries in " + directory + ": entry " + std::to_string(i) +
                                      " of the batch has index " + std::to_string(entry.index) + " after index " +
                                      std::to_string(previous) + "; indices must be positive and increasing");
    }
    KV_ASSERT(entry.type == EntryType::log || entry.type == EntryType::configuration);
    const std::vector<uint8_t>& value = entry.frame();  // the bytes the WAL holds (storage/entry_frame.h)
    IndexKey key = encode_index_key(entry.index);
    MDB_val key_val = as_val(key.data(), key.size());
    MDB_val value_val = as_val(value.data(), value.size());
    // Past the last key LMDB may append without a search (and fills pages completely);
    // anything else replaces or inserts through a normal put.
    unsigned flags = entry.index > last ? MDB_APPEND : 0;
    int rc = mdb_cursor_put(cursor.get(), &key_val, &value_val, flags);
    if (rc != 0) return lmdb_status(rc, "put " + where_index(entry.index));
    last = std::max(last, entry.index);
    previous = entry.index;
  }
  return Status::ok();
}

Status Store::Impl::collect_range(MDB_txn* txn, uint64_t first, uint64_t last, uint64_t bytes_max,
                                  std::vector<Entry>* entries) {
  Cursor cursor;
  KV_RETURN_IF_ERROR(cursor.open(txn, log, where("log", "(load range)")));
  IndexKey first_key = encode_index_key(first);
  MDB_val key = as_val(first_key.data(), first_key.size());
  MDB_val value;
  uint64_t payload_bytes = 0;
  int rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_SET_RANGE);
  for (uint64_t expected = first; rc != MDB_NOTFOUND && expected <= last; ++expected) {
    if (rc != 0) return lmdb_status(rc, "read " + where_index(expected));
    KV_ASSIGN_OR_RETURN(uint64_t index, decode_index_key(key));
    if (index != expected) break;  // a gap: the result ends before it
    const uint8_t* bytes = static_cast<const uint8_t*>(value.mv_data);
    // The location string is built only on failure: this loop streams every entry at recovery.
    auto decoded = decode_entry(bytes, value.mv_size, index, std::string());
    if (!decoded.is_ok()) return decode_entry(bytes, value.mv_size, index, where_index(index)).status();
    Entry entry = std::move(decoded).value();
    if (!entries->empty() && payload_bytes + entry.payload().size() > bytes_max) break;
    payload_bytes += entry.payload().size();
    entries->push_back(std::move(entry));
    if (expected == UINT64_MAX) break;  // the next expected index would wrap around
    rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT);
  }
  return Status::ok();
}

// The first or last index under `cursor` (MDB_FIRST / MDB_LAST), 0 when the log is empty.
Result<uint64_t> Store::Impl::cursor_edge_index(MDB_cursor* cursor, MDB_cursor_op op) {
  MDB_val key;
  MDB_val value;
  int rc = mdb_cursor_get(cursor, &key, &value, op);
  if (rc == MDB_NOTFOUND) return uint64_t{0};
  if (rc != 0) return lmdb_status(rc, std::string("read the ") + (op == MDB_FIRST ? "first" : "last") + " key of " +
                                          where("log", "(edge)"));
  return decode_index_key(key);
}

Result<uint64_t> Store::Impl::edge_index(MDB_cursor_op op) {
  uint64_t index = 0;
  Status status = read("find the edge of " + where("log", "(edge)"), [&](MDB_txn* txn) -> Status {
    Cursor cursor;
    KV_RETURN_IF_ERROR(cursor.open(txn, log, where("log", "(edge)")));
    KV_ASSIGN_OR_RETURN(index, cursor_edge_index(cursor.get(), op));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return index;
}

// Deletes up to delete_chunk_entries_max entries from one end of the log: from the end while
// the last index is > `index`, or from the start while the first index is <= `index`.
// Re-seeking the end after each delete keeps the cursor logic obviously right.
Status Store::Impl::delete_chunk(MDB_txn* txn, bool from_end, uint64_t index, uint64_t* deleted) {
  Cursor cursor;
  KV_RETURN_IF_ERROR(cursor.open(txn, log, where("log", "(delete)")));
  *deleted = 0;
  while (*deleted < delete_chunk_entries_max) {
    KV_ASSIGN_OR_RETURN(uint64_t edge, cursor_edge_index(cursor.get(), from_end ? MDB_LAST : MDB_FIRST));
    bool doomed = edge != 0 && (from_end ? edge > index : edge <= index);
    if (!doomed) return Status::ok();
    int rc = mdb_cursor_del(cursor.get(), 0);
    if (rc != 0) return lmdb_status(rc, "delete " + where_index(edge));
    ++*deleted;
  }
  return Status::ok();
}

Status Store::Impl::delete_in_chunks(bool from_end, uint64_t index, const std::string& what) {
  // Ends: every pass but the last deletes a full chunk, and the log is finite.
  for (;;) {
    uint64_t deleted = 0;
    KV_RETURN_IF_ERROR(write(what, [&](MDB_txn* txn) { return delete_chunk(txn, from_end, index, &deleted); }));
    if (deleted < delete_chunk_entries_max) return Status::ok();
  }
}

Status Store::Impl::scan(MDB_txn* txn, MDB_dbi dbi, const char* database,
                         const std::function<Status(const MDB_val& key, const MDB_val& value)>& visit) {
  Cursor cursor;
  KV_RETURN_IF_ERROR(cursor.open(txn, dbi, where(database, "(scan)")));
  MDB_val key;
  MDB_val value;
  int rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST);
  for (; rc == 0; rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT)) KV_RETURN_IF_ERROR(visit(key, value));
  if (rc != MDB_NOTFOUND) return lmdb_status(rc, "scan " + where(database, "(next row)"));
  return Status::ok();
}

// --- KvTransaction: the state machine's databases inside one transaction --------------------

class Store::Impl::KvTransaction final : public KvWriter {
 public:
  KvTransaction(Impl& impl, MDB_txn* txn) : impl_(impl), txn_(txn) {}

  Result<std::optional<std::string>> get(const std::string& key) override {
    KV_ASSIGN_OR_RETURN(auto bytes, lookup(impl_.kv, as_val(key.data(), key.size()), "kv", "a key"));
    if (!bytes) return std::optional<std::string>();
    return std::optional<std::string>(std::string(bytes->begin(), bytes->end()));
  }

  Status scan(const std::string& from, const std::string& to,
              const std::function<bool(std::string_view key, std::string_view value)>& visit) override {
    Cursor cursor;
    KV_RETURN_IF_ERROR(cursor.open(txn_, impl_.kv, impl_.where("kv", "(scan)")));
    MDB_val key = as_val(from.data(), from.size());
    MDB_val value{};
    int rc = mdb_cursor_get(cursor.get(), &key, &value, from.empty() ? MDB_FIRST : MDB_SET_RANGE);
    while (rc == 0) {
      std::string_view key_view(static_cast<const char*>(key.mv_data), key.mv_size);
      if (!to.empty() && key_view >= std::string_view(to)) return Status::ok();
      if (!visit(key_view, std::string_view(static_cast<const char*>(value.mv_data), value.mv_size))) {
        return Status::ok();
      }
      rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) return Status::ok();
    return lmdb_status(rc, "scan " + impl_.where("kv", "keys"));
  }

  Status put(const std::string& key, const std::string& value) override {
    MDB_val key_val = as_val(key.data(), key.size());
    MDB_val value_val = as_val(value.data(), value.size());
    // The message is built only on failure: this runs once per key of every apply and load.
    const int rc = mdb_put(txn_, impl_.kv, &key_val, &value_val, 0);
    if (rc == 0) return Status::ok();
    return lmdb_status(rc, "put " + impl_.where("kv", "a key of " + std::to_string(key.size()) + " bytes"));
  }

  Status erase(const std::string& key) override {
    MDB_val key_val = as_val(key.data(), key.size());
    int rc = mdb_del(txn_, impl_.kv, &key_val, nullptr);
    if (rc == MDB_NOTFOUND || rc == 0) return Status::ok();
    return lmdb_status(rc, "delete " + impl_.where("kv", "a key of " + std::to_string(key.size()) + " bytes"));
  }

  Result<std::optional<StoredSession>> load_session(uint64_t client_id) override {
    if (impl_.sessions_missing) return std::optional<StoredSession>();
    IndexKey key = encode_index_key(client_id);
    KV_ASSIGN_OR_RETURN(std::optional<MDB_val> row, session_row(as_val(key.data(), key.size()), client_id));
    if (!row) return std::optional<StoredSession>();
    const auto* bytes = static_cast<const uint8_t*>(row->mv_data);
    StoredSession session;
    session.last_used_index = load_big_endian(bytes);
    session.record.assign(bytes + index_key_bytes, bytes + row->mv_size);
    return std::optional<StoredSession>(std::move(session));
  }

  Status save_session(uint64_t client_id, const StoredSession& session) override {
    // The row is replaced in place (a put overwrites); only its place in session_order moves,
    // found from the first 8 bytes of the row it replaces, read without copying the row.
    IndexKey key = encode_index_key(client_id);
    MDB_val key_val = as_val(key.data(), key.size());
    std::optional<MDB_val> old;
    if (!impl_.sessions_missing) {
      KV_ASSIGN_OR_RETURN(old, session_row(key_val, client_id));
    }
    const bool place_stays = old && last_used_of(*old) == session.last_used_index;
    if (old && !place_stays) KV_RETURN_IF_ERROR(delete_session_order(last_used_of(*old), client_id));
    std::vector<uint8_t> value(index_key_bytes + session.record.size());
    store_big_endian(value.data(), session.last_used_index);
    std::copy(session.record.begin(), session.record.end(), value.begin() + index_key_bytes);
    MDB_val value_val = as_val(value.data(), value.size());
    int rc = mdb_put(txn_, impl_.sessions, &key_val, &value_val, 0);
    if (rc != 0) return lmdb_status(rc, "put " + impl_.where("sessions", client_name(client_id)));
    if (place_stays) return Status::ok();
    SessionOrderKey order = encode_session_order_key(session.last_used_index, client_id);
    MDB_val order_val = as_val(order.data(), order.size());
    MDB_val empty{0, nullptr};
    rc = mdb_put(txn_, impl_.session_order, &order_val, &empty, 0);
    if (rc != 0) return lmdb_status(rc, "put " + impl_.where("session_order", client_name(client_id)));
    return Status::ok();
  }

  Status erase_session(uint64_t client_id) override {
    if (impl_.sessions_missing) return Status::ok();
    IndexKey key = encode_index_key(client_id);
    MDB_val key_val = as_val(key.data(), key.size());
    KV_ASSIGN_OR_RETURN(std::optional<MDB_val> old, session_row(key_val, client_id));
    if (!old) return Status::ok();
    const uint64_t last_used = last_used_of(*old);  // read before the delete frees the page
    KV_RETURN_IF_ERROR(lmdb_status(mdb_del(txn_, impl_.sessions, &key_val, nullptr),
                                   "delete " + impl_.where("sessions", client_name(client_id))));
    return delete_session_order(last_used, client_id);
  }

  Result<uint64_t> session_count() override {
    if (impl_.sessions_missing) return uint64_t{0};
    MDB_stat stat{};
    KV_RETURN_IF_ERROR(lmdb_status(mdb_stat(txn_, impl_.sessions, &stat), "count " + impl_.where("sessions", "")));
    return uint64_t{stat.ms_entries};
  }

  Result<std::optional<uint64_t>> least_recently_used_session() override {
    if (impl_.sessions_missing) return std::optional<uint64_t>();
    Cursor cursor;
    KV_RETURN_IF_ERROR(cursor.open(txn_, impl_.session_order, impl_.where("session_order", "(oldest)")));
    MDB_val key;
    MDB_val value;
    int rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST);
    if (rc == MDB_NOTFOUND) return std::optional<uint64_t>();
    if (rc != 0) return lmdb_status(rc, "read the first key of " + impl_.where("session_order", ""));
    if (key.mv_size != session_order_key_bytes) {
      return Status::corruption(impl_.where("session_order", "a key") + " has " + std::to_string(key.mv_size) +
                                " bytes, expected " + std::to_string(session_order_key_bytes));
    }
    return std::optional<uint64_t>(load_big_endian(static_cast<const uint8_t*>(key.mv_data) + 8));
  }

  Result<uint64_t> applied_index() override {
    KV_ASSIGN_OR_RETURN(StorePositions positions, load_positions());
    return positions.applied_index;
  }

  Result<uint64_t> applied_term() override {
    KV_ASSIGN_OR_RETURN(StorePositions positions, load_positions());
    return positions.applied_term;
  }

  Status set_applied(uint64_t index, uint64_t term) override {
    KV_ASSIGN_OR_RETURN(StorePositions positions, load_positions());
    positions.applied_index = index;
    positions.applied_term = term;
    return put_raw(impl_.meta, as_val(positions_key, std::strlen(positions_key)), encode_positions(positions), "meta",
                   positions_key);
  }

 private:
  Result<StorePositions> load_positions() {
    MDB_val key = as_val(positions_key, std::strlen(positions_key));
    KV_ASSIGN_OR_RETURN(auto bytes, lookup(impl_.meta, key, "meta", positions_key));
    if (!bytes) return StorePositions{};
    return decode_positions(bytes->data(), bytes->size(), impl_.where("meta", positions_key));
  }

  static std::string client_name(uint64_t client_id) { return "client " + std::to_string(client_id); }
  static uint64_t last_used_of(const MDB_val& row) { return load_big_endian(static_cast<const uint8_t*>(row.mv_data)); }

  // The client's session row as LMDB holds it (valid until the next write), checked to begin
  // with its 8-byte last used index; none when absent.
  Result<std::optional<MDB_val>> session_row(MDB_val key, uint64_t client_id) {
    MDB_val row;
    const int rc = mdb_get(txn_, impl_.sessions, &key, &row);
    if (rc == MDB_NOTFOUND) return std::optional<MDB_val>();
    if (rc != 0) return lmdb_status(rc, "get " + impl_.where("sessions", client_name(client_id)));
    if (row.mv_size < index_key_bytes) {
      return Status::corruption(impl_.where("sessions", client_name(client_id)) + ": value has " +
                                std::to_string(row.mv_size) + " bytes, fewer than the " +
                                std::to_string(index_key_bytes) + " of its index");
    }
    return std::optional<MDB_val>(row);
  }

  // Removes the client's place in the least-recently-used order.
  Status delete_session_order(uint64_t last_used_index, uint64_t client_id) {
    SessionOrderKey order = encode_session_order_key(last_used_index, client_id);
    MDB_val order_val = as_val(order.data(), order.size());
    const int rc = mdb_del(txn_, impl_.session_order, &order_val, nullptr);
    if (rc == 0) return Status::ok();
    // The two rows change together; one without the other is damage, not a crash.
    if (rc == MDB_NOTFOUND) {
      return Status::corruption(impl_.where("session_order", client_name(client_id)) + ": order key missing");
    }
    return lmdb_status(rc, "delete " + impl_.where("session_order", client_name(client_id)));
  }

  Result<std::optional<std::vector<uint8_t>>> lookup(MDB_dbi dbi, MDB_val key, const char* database,
                                                     const std::string& what) {
    MDB_val value;
    int rc = mdb_get(txn_, dbi, &key, &value);
    if (rc == MDB_NOTFOUND) return std::optional<std::vector<uint8_t>>();
    if (rc != 0) return lmdb_status(rc, "get " + impl_.where(database, what));
    const auto* bytes = static_cast<const uint8_t*>(value.mv_data);
    return std::optional<std::vector<uint8_t>>(std::vector<uint8_t>(bytes, bytes + value.mv_size));
  }

  Status put_raw(MDB_dbi dbi, MDB_val key, const std::vector<uint8_t>& value, const char* database,
                 const std::string& what) {
    MDB_val value_val = as_val(value.data(), value.size());
    const int rc = mdb_put(txn_, dbi, &key, &value_val, 0);
    if (rc == 0) return Status::ok();
    return lmdb_status(rc, "put " + impl_.where(database, what));
  }

  Impl& impl_;
  MDB_txn* txn_;
};

// --- Store -----------------------------------------------------------------------------------

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::string& directory, const StoreOptions& options) {
  std::unique_ptr<Impl> impl;
  Status status = run_guarded("open store " + directory, [&]() -> Status {
    impl = std::make_unique<Impl>();
    impl->directory = directory;
    impl->options = options;
    return impl->open_environment();
  });
  if (!status.is_ok()) return status;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::save_metadata(const Metadata& metadata) {
  std::string where = impl_->where("meta", metadata_key);
  return impl_->write("save " + where, [&](MDB_txn* txn) {
    return impl_->put(txn, impl_->meta, metadata_key, encode_metadata(metadata), where);
  });
}

Result<std::optional<Metadata>> Store::load_metadata() {
  std::string where = impl_->where("meta", metadata_key);
  KV_ASSIGN_OR_RETURN(std::optional<std::vector<uint8_t>> bytes, impl_->get(impl_->meta, metadata_key, where));
  if (!bytes) return std::optional<Metadata>();
  KV_ASSIGN_OR_RETURN(Metadata metadata, decode_metadata(bytes->data(), bytes->size(), where));
  return std::optional<Metadata>(metadata);
}

Status Store::save_positions(const StorePositions& positions) {
  std::vector<uint8_t> bytes = encode_positions(positions);
  std::string where = impl_->where("meta", positions_key);
  return impl_->write("save " + where, [&](MDB_txn* txn) {
    return impl_->put(txn, impl_->meta, positions_key, bytes, where);
  });
}

Status Store::save_indexed_index(uint64_t indexed_index) {
  std::string where = impl_->where("meta", positions_key);
  return impl_->write("save the indexed index in " + where, [&](MDB_txn* txn) -> Status {
    StorePositions positions;
    MDB_val key = as_val(positions_key, std::strlen(positions_key));
    MDB_val value;
    int rc = mdb_get(txn, impl_->meta, &key, &value);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_status(rc, "get " + where);
    if (rc == 0) {
      KV_ASSIGN_OR_RETURN(positions, decode_positions(static_cast<const uint8_t*>(value.mv_data), value.mv_size, where));
    }
    positions.indexed_index = indexed_index;
    return impl_->put(txn, impl_->meta, positions_key, encode_positions(positions), where);
  });
}

Result<StorePositions> Store::load_positions() {
  std::string where = impl_->where("meta", positions_key);
  KV_ASSIGN_OR_RETURN(std::optional<std::vector<uint8_t>> bytes, impl_->get(impl_->meta, positions_key, where));
  if (!bytes) return StorePositions{};
  return decode_positions(bytes->data(), bytes->size(), where);
}

Status Store::save_entry(const Entry& entry) { return save_entries({entry}); }

Status Store::save_entries(const std::vector<Entry>& entries) {
  if (entries.empty()) return Status::ok();
  std::string what = "save " + std::to_string(entries.size()) + " entries from " +
                     impl_->where_index(entries.front().index);
  return impl_->write(what, [&](MDB_txn* txn) { return impl_->put_entries(txn, entries); });
}

Result<Entry> Store::load_entry(uint64_t index) {
  std::optional<Entry> entry;
  std::string where = impl_->where_index(index);
  Status status = impl_->read("load " + where, [&](MDB_txn* txn) -> Status {
    IndexKey key = encode_index_key(index);
    MDB_val key_val = as_val(key.data(), key.size());
    MDB_val value;
    int rc = mdb_get(txn, impl_->log, &key_val, &value);
    if (rc == MDB_NOTFOUND) return Status::not_found(where + ": no such entry");
    if (rc != 0) return lmdb_status(rc, "load " + where);
    KV_ASSIGN_OR_RETURN(entry, decode_entry(static_cast<const uint8_t*>(value.mv_data), value.mv_size, index, where));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  if (!entry) return Status::not_found(where + ": no such entry");  // read-only, databases never created
  return std::move(*entry);
}

Result<std::vector<Entry>> Store::load_range(uint64_t first, uint64_t last, uint64_t bytes_max) {
  std::vector<Entry> entries;
  if (first > last) return entries;
  std::string what = "load " + impl_->where("log", "indices " + std::to_string(first) + ".." + std::to_string(last));
  Status status = impl_->read(what, [&](MDB_txn* txn) {
    return impl_->collect_range(txn, first, last, bytes_max, &entries);
  });
  if (!status.is_ok()) return status;
  return entries;
}

Result<uint64_t> Store::first_index() { return impl_->edge_index(MDB_FIRST); }
Result<uint64_t> Store::last_index() { return impl_->edge_index(MDB_LAST); }

Status Store::delete_suffix_after(uint64_t index) {
  return impl_->delete_in_chunks(/*from_end=*/true, index,
                                 "delete entries after " + impl_->where_index(index));
}

Status Store::delete_prefix_through(uint64_t index) {
  return impl_->delete_in_chunks(/*from_end=*/false, index,
                                 "delete entries through " + impl_->where_index(index));
}

Status Store::save_snapshot_metadata(const SnapshotMetadata& snapshot) {
  std::string where = impl_->where("snapshot", snapshot_key);
  return impl_->write("save " + where, [&](MDB_txn* txn) -> Status {
    return impl_->put(txn, impl_->snapshot, snapshot_key, encode_snapshot_metadata(snapshot), where);
  });
}

Result<std::optional<SnapshotMetadata>> Store::load_snapshot_metadata() {
  std::string where = impl_->where("snapshot", snapshot_key);
  KV_ASSIGN_OR_RETURN(std::optional<std::vector<uint8_t>> bytes, impl_->get(impl_->snapshot, snapshot_key, where));
  if (!bytes) return std::optional<SnapshotMetadata>();
  KV_ASSIGN_OR_RETURN(SnapshotMetadata snapshot, decode_snapshot_metadata(bytes->data(), bytes->size(), where));
  return std::optional<SnapshotMetadata>(std::move(snapshot));
}

Status Store::read_kv(const std::function<Status(KvReader&)>& body) {
  return impl_->read("read " + impl_->where("kv", "(state machine)"), [&](MDB_txn* txn) {
    Impl::KvTransaction transaction(*impl_, txn);
    return body(transaction);
  });
}

Status Store::write_kv(const std::function<Status(KvWriter&)>& body) {
  return impl_->write("write " + impl_->where("kv", "(state machine)"), [&](MDB_txn* txn) {
    Impl::KvTransaction transaction(*impl_, txn);
    return body(transaction);
  });
}

// Every transaction holds the growth lock shared (Impl::read, Impl::write_once).
Status Store::read_state_machine(const StateMachineVisitor& visitor) {
  return impl_->read("read the state machine of " + impl_->directory, [&](MDB_txn* txn) -> Status {
    Impl::KvTransaction transaction(*impl_, txn);
    KV_ASSIGN_OR_RETURN(uint64_t index, transaction.applied_index());
    KV_ASSIGN_OR_RETURN(uint64_t term, transaction.applied_term());
    if (visitor.applied) KV_RETURN_IF_ERROR(visitor.applied(index, term));
    KV_RETURN_IF_ERROR(impl_->scan(txn, impl_->kv, "kv", [&](const MDB_val& key, const MDB_val& value) -> Status {
      if (!visitor.kv) return Status::ok();
      return visitor.kv(std::string_view(static_cast<const char*>(key.mv_data), key.mv_size),
                        std::string_view(static_cast<const char*>(value.mv_data), value.mv_size));
    }));
    if (impl_->sessions_missing) return Status::ok();
    StoredSession session;
    return impl_->scan(txn, impl_->sessions, "sessions", [&](const MDB_val& key, const MDB_val& value) -> Status {
      if (key.mv_size != index_key_bytes || value.mv_size < index_key_bytes) {
        return Status::corruption(impl_->where("sessions", "a row") + " has a key of " + std::to_string(key.mv_size) +
                                  " bytes and a value of " + std::to_string(value.mv_size) + " bytes");
      }
      if (!visitor.session) return Status::ok();
      const auto* bytes = static_cast<const uint8_t*>(value.mv_data);
      session.last_used_index = load_big_endian(bytes);
      session.record.assign(bytes + index_key_bytes, bytes + value.mv_size);
      return visitor.session(load_big_endian(static_cast<const uint8_t*>(key.mv_data)), session);
    });
  });
}

Status Store::replace_state_machine(uint64_t index, uint64_t term, const std::function<Status(KvWriter&)>& fill) {
  std::string what = "replace the state machine of " + impl_->directory + " with the state at index " +
                     std::to_string(index) + " term " + std::to_string(term);
  return impl_->write(what, [&](MDB_txn* txn) -> Status {
    for (auto [dbi, name] : {std::pair<MDB_dbi, const char*>{impl_->kv, "kv"}, {impl_->sessions, "sessions"},
                             {impl_->session_order, "session_order"}}) {
      KV_RETURN_IF_ERROR(lmdb_status(mdb_drop(txn, dbi, 0), "empty " + impl_->where(name, "(all keys)")));
    }
    Impl::KvTransaction transaction(*impl_, txn);
    KV_RETURN_IF_ERROR(fill(transaction));
    return transaction.set_applied(index, term);
  });
}

Status Store::sync() {
  if (impl_->options.read_only) return Status::ok();  // nothing written, nothing to flush
  // force = 1: flush even though the environment was opened with MDB_NOSYNC.
  return lmdb_status(mdb_env_sync(impl_->env, 1), "sync " + impl_->directory + "/data.mdb");
}

uint64_t Store::map_bytes() const { return impl_->map_bytes; }
const std::string& Store::directory() const { return impl_->directory; }

}  // namespace keyval
