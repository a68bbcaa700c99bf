// Goal: the LMDB store keeps metadata, positions, snapshots and entries exactly, grows its map, reports failures as values.
// Method: real LMDB in temporary directories, reopened to show durability; damage planted by flipping stored bytes.
#define BOOST_TEST_MODULE store_test
#include <boost/test/unit_test.hpp>

#include <lmdb.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "storage/store.h"
#include "tests/support/temp_dir.h"

namespace keyval {
namespace {

using testing::TempDir;
using testing::make_payload;

constexpr uint64_t mebibyte = 1ull << 20;

std::string store_dir(const TempDir& temp) { return temp.file("store"); }

std::unique_ptr<Store> open_store(const std::string& directory, const StoreOptions& options = {}) {
  auto opened = Store::open(directory, options);
  BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  return std::move(opened).value();
}

StoreOptions relaxed_options() {
  StoreOptions options;
  options.sync_mode = SyncMode::relaxed;
  return options;
}

void require_ok(const Status& status) { BOOST_REQUIRE_MESSAGE(status.is_ok(), status.to_string()); }

Entry make_entry(uint64_t index, uint64_t term, size_t payload_bytes = 40) {
  return Entry{index, term, make_payload(index * 1000 + term, payload_bytes)};
}

std::vector<Entry> make_entries(uint64_t first, uint64_t count, uint64_t term, size_t payload_bytes = 40) {
  std::vector<Entry> entries;
  for (uint64_t index = first; index < first + count; ++index) entries.push_back(make_entry(index, term, payload_bytes));
  return entries;
}

Entry load(Store& store, uint64_t index) {
  auto loaded = store.load_entry(index);
  BOOST_REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  return loaded.value();
}

std::vector<Entry> load_range(Store& store, uint64_t first, uint64_t last, uint64_t bytes_max = UINT64_MAX) {
  auto loaded = store.load_range(first, last, bytes_max);
  BOOST_REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  return loaded.value();
}

uint64_t first_index(Store& store) {
  auto index = store.first_index();
  BOOST_REQUIRE_MESSAGE(index.is_ok(), index.status().to_string());
  return index.value();
}

uint64_t last_index(Store& store) {
  auto index = store.last_index();
  BOOST_REQUIRE_MESSAGE(index.is_ok(), index.status().to_string());
  return index.value();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Flips one byte inside every copy of `marker` in `path` (old page versions may hold copies
// too); returns how many copies it damaged.
size_t damage_every_copy(const std::string& path, const std::vector<uint8_t>& marker) {
  std::vector<uint8_t> bytes = testing::read_file(path);
  size_t copies = 0;
  auto position = bytes.begin();
  while ((position = std::search(position, bytes.end(), marker.begin(), marker.end())) != bytes.end()) {
    position[marker.size() / 2] ^= 0xFF;
    position += static_cast<std::ptrdiff_t>(marker.size());
    ++copies;
  }
  testing::write_file(path, bytes);
  return copies;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(store)

BOOST_AUTO_TEST_CASE(metadata_round_trips_and_survives_reopen) {
  TempDir temp;
  {
    auto store = open_store(store_dir(temp));
    require_ok(store->save_metadata(Metadata{3, 2}));
    require_ok(store->save_metadata(Metadata{7, 5}));  // the later save wins
  }
  auto store = open_store(store_dir(temp));
  auto metadata = store->load_metadata();
  BOOST_REQUIRE_MESSAGE(metadata.is_ok(), metadata.status().to_string());
  BOOST_REQUIRE(metadata.value().has_value());
  BOOST_TEST(metadata.value()->current_term == 7u);
  BOOST_TEST(metadata.value()->voted_for == 5u);
}

BOOST_AUTO_TEST_CASE(missing_metadata_is_nullopt) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  auto metadata = store->load_metadata();
  BOOST_REQUIRE_MESSAGE(metadata.is_ok(), metadata.status().to_string());
  BOOST_TEST(!metadata.value().has_value());
  auto snapshot = store->load_snapshot_metadata();
  BOOST_REQUIRE_MESSAGE(snapshot.is_ok(), snapshot.status().to_string());
  BOOST_TEST(!snapshot.value().has_value());
}

BOOST_AUTO_TEST_CASE(single_entry_save_and_load) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  Entry entry = make_entry(1, 4);
  require_ok(store->save_entry(entry));
  BOOST_TEST((load(*store, 1) == entry));
}

BOOST_AUTO_TEST_CASE(batch_of_entries_saved_in_one_transaction) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  std::vector<Entry> batch = make_entries(1, 50, 2);
  require_ok(store->save_entries(batch));
  BOOST_TEST((load_range(*store, 1, 50) == batch));

  // A batch whose last entry is out of order is refused as a whole: the entries before it,
  // already put inside the transaction, must not be visible afterwards.
  std::vector<Entry> bad_batch = make_entries(51, 10, 3);
  bad_batch.push_back(make_entry(55, 3));
  Status status = store->save_entries(bad_batch);
  BOOST_TEST((status.code() == Code::invalid_argument), status.to_string());
  BOOST_TEST(last_index(*store) == 50u);
  BOOST_TEST((store->load_entry(51).status().code() == Code::not_found));

  Status zero = store->save_entry(make_entry(0, 3));
  BOOST_TEST((zero.code() == Code::invalid_argument), zero.to_string());
}

BOOST_AUTO_TEST_CASE(configuration_entries_keep_their_type_in_the_log_database) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 6, 2);
  entries[0].type = EntryType::configuration;
  entries[3].type = EntryType::configuration;
  {
    auto store = open_store(store_dir(temp));
    require_ok(store->save_entries(entries));
  }
  auto store = open_store(store_dir(temp));
  BOOST_TEST((load_range(*store, 1, 6) == entries));
  BOOST_TEST((load(*store, 4).type == EntryType::configuration));
  BOOST_TEST((load(*store, 5).type == EntryType::log));
}

BOOST_AUTO_TEST_CASE(load_range_returns_entries_in_order) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  std::vector<Entry> entries = make_entries(10, 30, 1);
  require_ok(store->save_entries(entries));
  std::vector<Entry> middle = load_range(*store, 15, 24);
  BOOST_REQUIRE(middle.size() == 10u);
  for (size_t i = 0; i < middle.size(); ++i) BOOST_TEST((middle[i] == entries[5 + i]));
  BOOST_TEST(load_range(*store, 20, 19).empty());  // first after last: nothing
  BOOST_TEST(load_range(*store, 35, 1000).size() == 5u);  // ends with the log
}

BOOST_AUTO_TEST_CASE(load_range_stops_at_gap) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  require_ok(store->save_entries(make_entries(1, 5, 1)));
  require_ok(store->save_entries(make_entries(8, 5, 1)));  // 6 and 7 are missing
  std::vector<Entry> loaded = load_range(*store, 1, 12);
  BOOST_REQUIRE(loaded.size() == 5u);
  BOOST_TEST(loaded.back().index == 5u);
  BOOST_TEST(load_range(*store, 6, 12).empty());  // the first index itself is missing
}

BOOST_AUTO_TEST_CASE(load_range_respects_byte_limit) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  require_ok(store->save_entries(make_entries(1, 20, 1, 100)));
  BOOST_TEST(load_range(*store, 1, 20, 350).size() == 3u);  // a fourth would make 400 bytes
  BOOST_TEST(load_range(*store, 1, 20, 400).size() == 4u);  // the limit itself is allowed
  std::vector<Entry> one = load_range(*store, 7, 20, 10);  // smaller than one entry
  BOOST_REQUIRE(one.size() == 1u);
  BOOST_TEST(one.front().index == 7u);
}

BOOST_AUTO_TEST_CASE(first_and_last_index_of_empty_store_are_zero) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  BOOST_TEST(first_index(*store) == 0u);
  BOOST_TEST(last_index(*store) == 0u);
  BOOST_TEST(load_range(*store, 1, 100).empty());
}

BOOST_AUTO_TEST_CASE(first_and_last_index_track_saves_and_deletes) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  require_ok(store->save_entries(make_entries(5, 10, 1)));
  BOOST_TEST(first_index(*store) == 5u);
  BOOST_TEST(last_index(*store) == 14u);
  require_ok(store->save_entry(make_entry(15, 2)));
  BOOST_TEST(last_index(*store) == 15u);
  require_ok(store->delete_prefix_through(7));
  BOOST_TEST(first_index(*store) == 8u);
  require_ok(store->delete_suffix_after(12));
  BOOST_TEST(last_index(*store) == 12u);
  require_ok(store->delete_prefix_through(12));
  BOOST_TEST(first_index(*store) == 0u);
  BOOST_TEST(last_index(*store) == 0u);
}

BOOST_AUTO_TEST_CASE(delete_suffix_after_removes_later_entries) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  std::vector<Entry> entries = make_entries(1, 20, 1);
  require_ok(store->save_entries(entries));
  require_ok(store->delete_suffix_after(12));
  BOOST_TEST((load_range(*store, 1, 20) == std::vector<Entry>(entries.begin(), entries.begin() + 12)));
  BOOST_TEST((store->load_entry(13).status().code() == Code::not_found));
  require_ok(store->delete_suffix_after(100));  // nothing after it: a no-op
  BOOST_TEST(last_index(*store) == 12u);
  // After a conflict the log continues from the cut with the new term.
  require_ok(store->save_entry(make_entry(13, 2)));
  BOOST_TEST(load(*store, 13).term == 2u);
}

BOOST_AUTO_TEST_CASE(delete_prefix_through_removes_earlier_entries) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  std::vector<Entry> entries = make_entries(1, 20, 1);
  require_ok(store->save_entries(entries));
  require_ok(store->delete_prefix_through(9));
  BOOST_TEST((store->load_entry(9).status().code() == Code::not_found));
  BOOST_TEST((load_range(*store, 10, 20) == std::vector<Entry>(entries.begin() + 9, entries.end())));
  require_ok(store->delete_prefix_through(3));  // already gone: a no-op
  BOOST_TEST(first_index(*store) == 10u);
}

BOOST_AUTO_TEST_CASE(deletes_spanning_many_transactions_leave_exactly_the_rest) {
  TempDir temp;
  auto store = open_store(store_dir(temp), relaxed_options());
  constexpr uint64_t count = 50000;  // several delete chunks each way
  for (uint64_t first = 1; first <= count; first += 1000) require_ok(store->save_entries(make_entries(first, 1000, 1, 16)));
  require_ok(store->delete_prefix_through(40000));
  require_ok(store->delete_suffix_after(40010));
  BOOST_TEST(first_index(*store) == 40001u);
  BOOST_TEST(last_index(*store) == 40010u);
  BOOST_TEST(load_range(*store, 1, count).empty());
  BOOST_TEST(load_range(*store, 40001, count).size() == 10u);
}

BOOST_AUTO_TEST_CASE(saving_existing_index_replaces_it) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  std::vector<Entry> entries = make_entries(1, 5, 1);
  require_ok(store->save_entries(entries));
  Entry replacement = make_entry(3, 2, 77);
  require_ok(store->save_entry(replacement));
  BOOST_TEST((load(*store, 3) == replacement));
  BOOST_TEST((load(*store, 4) == entries[3]));  // neighbours untouched
  BOOST_TEST(last_index(*store) == 5u);
  // A batch that overlaps the end replaces the overlap and appends the rest.
  std::vector<Entry> overlap = make_entries(4, 4, 3);
  require_ok(store->save_entries(overlap));
  BOOST_TEST((load_range(*store, 4, 7) == overlap));
}

BOOST_AUTO_TEST_CASE(missing_entry_is_not_found) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  require_ok(store->save_entries(make_entries(1, 3, 1)));
  Status missing = store->load_entry(42).status();
  BOOST_TEST((missing.code() == Code::not_found), missing.to_string());
  BOOST_TEST(contains(missing.message(), "index 42"), missing.message());
  BOOST_TEST(contains(missing.message(), "database log"), missing.message());
}

BOOST_AUTO_TEST_CASE(map_grows_when_full) {
  TempDir temp;
  StoreOptions options = relaxed_options();
  options.map_bytes_initial = 1 * mebibyte;
  auto store = open_store(store_dir(temp), options);
  BOOST_TEST(store->map_bytes() == 1 * mebibyte);
  constexpr uint64_t count = 384;  // 384 x 64 KiB = 24 MiB
  for (uint64_t first = 1; first <= count; first += 16) {
    require_ok(store->save_entries(make_entries(first, 16, 1, 64 * 1024)));
  }
  BOOST_TEST(store->map_bytes() >= 24 * mebibyte);
  std::vector<Entry> loaded = load_range(*store, 1, count);
  BOOST_REQUIRE(loaded.size() == count);
  for (uint64_t index = 1; index <= count; ++index) {
    BOOST_TEST((loaded[index - 1] == make_entry(index, 1, 64 * 1024)));
  }
}

// Relaxed mode writes LMDB's pages through its map (MDB_WRITEMAP): a store into a page with no
// block behind it would fail inside a page fault (SIGBUS) on a full disk. The map's whole size
// is reserved on disk at open and before each growth instead.
BOOST_AUTO_TEST_CASE(relaxed_store_reserves_its_whole_map_on_disk) {
  TempDir temp;
  StoreOptions options = relaxed_options();
  options.map_bytes_initial = 1 * mebibyte;
  auto store = open_store(store_dir(temp), options);
  auto reserved = [&]() {
    struct stat info {};
    BOOST_REQUIRE(::stat((store_dir(temp) + "/data.mdb").c_str(), &info) == 0);
    return static_cast<uint64_t>(info.st_blocks) * 512;
  };
  BOOST_TEST(reserved() >= 1 * mebibyte);
  for (uint64_t first = 1; first <= 64; first += 16) require_ok(store->save_entries(make_entries(first, 16, 1, 64 * 1024)));
  BOOST_TEST(store->map_bytes() >= 4 * mebibyte);
  BOOST_TEST(reserved() >= store->map_bytes());
}

// The simulator's relaxed store copies pages with pwrite (StoreOptions::write_through_map
// off): nothing is reserved, so data.mdb holds only the pages written, and what was saved,
// across the map's growth, is all there after a reopen.
BOOST_AUTO_TEST_CASE(relaxed_store_without_the_shared_map_reserves_nothing_and_keeps_everything) {
  TempDir temp;
  StoreOptions options = relaxed_options();
  options.map_bytes_initial = 1 * mebibyte;
  options.write_through_map = false;
  auto allocated = [&]() {
    struct stat info {};
    BOOST_REQUIRE(::stat((store_dir(temp) + "/data.mdb").c_str(), &info) == 0);
    return static_cast<uint64_t>(info.st_blocks) * 512;
  };
  {
    auto store = open_store(store_dir(temp), options);
    BOOST_TEST(allocated() < 1 * mebibyte);  // through the map it would be the whole map (above)
    for (uint64_t first = 1; first <= 64; first += 16) require_ok(store->save_entries(make_entries(first, 16, 1, 64 * 1024)));
    BOOST_TEST(store->map_bytes() >= 4 * mebibyte);
    require_ok(store->sync());
  }
  auto reopened = open_store(store_dir(temp), options);
  std::vector<Entry> loaded = load_range(*reopened, 1, 64);
  BOOST_REQUIRE(loaded.size() == 64u);
  for (uint64_t index = 1; index <= 64; ++index) BOOST_TEST((loaded[index - 1] == make_entry(index, 1, 64 * 1024)));
}

// A growth the file system refuses (here the file-size limit, as a full disk would) is a
// no_space naming the reservation, before the map covers a single unreserved page: the store
// keeps what it had and goes on serving it.
BOOST_AUTO_TEST_CASE(a_refused_reservation_is_no_space_and_loses_nothing) {
  TempDir temp;
  StoreOptions options = relaxed_options();
  options.map_bytes_initial = 1 * mebibyte;
  auto store = open_store(store_dir(temp), options);
  struct rlimit before {};
  BOOST_REQUIRE(getrlimit(RLIMIT_FSIZE, &before) == 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);  // the limit's signal: EFBIG instead
  struct rlimit limited = before;
  limited.rlim_cur = 3 * mebibyte;
  BOOST_REQUIRE(setrlimit(RLIMIT_FSIZE, &limited) == 0);
  uint64_t saved = 0;
  Status failure;
  for (int attempt = 0; attempt < 100 && failure.is_ok(); ++attempt) {
    failure = store->save_entries(make_entries(saved + 1, 8, 1, 64 * 1024));
    if (failure.is_ok()) saved += 8;
  }
  BOOST_REQUIRE(setrlimit(RLIMIT_FSIZE, &before) == 0);
  signal(SIGXFSZ, old_handler);
  BOOST_TEST((failure.code() == Code::no_space), failure.to_string());
  BOOST_TEST(contains(failure.message(), "cannot reserve"), failure.message());
  BOOST_TEST(contains(failure.message(), store_dir(temp) + "/data.mdb"), failure.message());
  BOOST_TEST(store->map_bytes() == 2 * mebibyte);  // not grown over what it could not reserve
  BOOST_TEST(saved >= 8u);
  BOOST_TEST(last_index(*store) == saved);
  std::vector<Entry> loaded = load_range(*store, 1, saved);
  BOOST_REQUIRE(loaded.size() == saved);
  BOOST_TEST((loaded.back() == make_entry(saved, 1, 64 * 1024)));
}

BOOST_AUTO_TEST_CASE(map_at_maximum_reports_no_space) {
  TempDir temp;
  StoreOptions options = relaxed_options();
  options.map_bytes_initial = 1 * mebibyte;
  options.map_bytes_max = 4 * mebibyte;
  uint64_t saved = 0;
  Status failure;
  {
    auto store = open_store(store_dir(temp), options);
    for (int attempt = 0; attempt < 100 && failure.is_ok(); ++attempt) {
      failure = store->save_entries(make_entries(saved + 1, 8, 1, 64 * 1024));
      if (failure.is_ok()) saved += 8;
    }
    BOOST_TEST((failure.code() == Code::no_space), failure.to_string());
    BOOST_TEST(contains(failure.message(), store_dir(temp)), failure.message());
    BOOST_TEST(contains(failure.message(), std::to_string(4 * mebibyte)), failure.message());
    BOOST_TEST(store->map_bytes() == 4 * mebibyte);
    BOOST_TEST(saved >= 24u);  // the map did grow past its first mebibyte before giving up
    BOOST_TEST(last_index(*store) == saved);  // the failed batch left nothing
  }
  auto store = open_store(store_dir(temp), options);
  std::vector<Entry> loaded = load_range(*store, 1, saved + 8);
  BOOST_REQUIRE(loaded.size() == saved);
  for (uint64_t index = 1; index <= saved; ++index) {
    BOOST_TEST((loaded[index - 1] == make_entry(index, 1, 64 * 1024)));
  }
}

BOOST_AUTO_TEST_CASE(snapshot_metadata_round_trips) {
  TempDir temp;
  SnapshotMetadata snapshot{120, 6, {Member{1, "10.0.0.1:7000"}, Member{2, "10.0.0.2:7000"}, Member{5, "node5:7001"}}};
  {
    auto store = open_store(store_dir(temp));
    require_ok(store->save_snapshot_metadata(SnapshotMetadata{10, 1, {Member{1, "a:1"}}}));
    require_ok(store->save_snapshot_metadata(snapshot));
  }
  auto store = open_store(store_dir(temp));
  auto loaded = store->load_snapshot_metadata();
  BOOST_REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  BOOST_REQUIRE(loaded.value().has_value());
  BOOST_TEST((*loaded.value() == snapshot));
}

BOOST_AUTO_TEST_CASE(positions_round_trip) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  auto initial = store->load_positions();
  BOOST_REQUIRE_MESSAGE(initial.is_ok(), initial.status().to_string());
  BOOST_TEST(initial.value().indexed_index == 0u);
  BOOST_TEST(initial.value().applied_index == 0u);
  StorePositions positions{0x0102030405060708ull, 99, 7};
  require_ok(store->save_positions(positions));
  auto loaded = store->load_positions();
  BOOST_REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  BOOST_TEST(loaded.value().indexed_index == positions.indexed_index);
  BOOST_TEST(loaded.value().applied_index == positions.applied_index);
  BOOST_TEST(loaded.value().applied_term == 7u);
}

// Edits one database of a closed store's environment directly, as damage would.
void edit_raw(const TempDir& temp, const char* database, const std::function<void(MDB_txn*, MDB_dbi)>& edit) {
  MDB_env* env = nullptr;
  BOOST_REQUIRE(mdb_env_create(&env) == 0);
  BOOST_REQUIRE(mdb_env_set_maxdbs(env, 8) == 0);
  BOOST_REQUIRE(mdb_env_open(env, store_dir(temp).c_str(), 0, 0644) == 0);
  MDB_txn* txn = nullptr;
  BOOST_REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi dbi = 0;
  BOOST_REQUIRE(mdb_dbi_open(txn, database, 0, &dbi) == 0);
  edit(txn, dbi);
  BOOST_REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

BOOST_AUTO_TEST_CASE(positions_of_sixteen_bytes_from_an_older_build_read_with_applied_term_zero) {
  TempDir temp;
  open_store(store_dir(temp)).reset();  // creates the environment and its databases
  // The value an older build wrote: indexed_index then applied_index, 8 bytes big-endian each.
  edit_raw(temp, "meta", [](MDB_txn* txn, MDB_dbi meta) {
    uint8_t value[16] = {0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 30};
    MDB_val key_val{9, const_cast<char*>("positions")};
    MDB_val value_val{sizeof(value), value};
    BOOST_REQUIRE(mdb_put(txn, meta, &key_val, &value_val, 0) == 0);
  });
  auto store = open_store(store_dir(temp));
  auto loaded = store->load_positions();
  BOOST_REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  BOOST_TEST(loaded.value().indexed_index == 40u);
  BOOST_TEST(loaded.value().applied_index == 30u);
  BOOST_TEST(loaded.value().applied_term == 0u);
  // Written back in today's form, still read the same.
  require_ok(store->write_kv([](KvWriter& writer) { return writer.set_applied(31, 2); }));
  loaded = store->load_positions();
  BOOST_TEST(loaded.value().indexed_index == 40u);
  BOOST_TEST(loaded.value().applied_index == 31u);
  BOOST_TEST(loaded.value().applied_term == 2u);
}

// The state a test wrote: kv pairs and sessions, as read_state_machine reports them.
struct StateMachineContents {
  uint64_t applied_index = 0, applied_term = 0;
  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<std::pair<uint64_t, uint64_t>> sessions;  // client id, last used index
  std::vector<std::string> order;                     // "applied", "kv", "session" as reported
};

StateMachineContents read_contents(Store& store) {
  StateMachineContents contents;
  StateMachineVisitor visitor;
  visitor.applied = [&](uint64_t index, uint64_t term) {
    contents.applied_index = index;
    contents.applied_term = term;
    contents.order.push_back("applied");
    return Status::ok();
  };
  visitor.kv = [&](std::string_view key, std::string_view value) {
    contents.pairs.emplace_back(std::string(key), std::string(value));
    if (contents.order.back() != "kv") contents.order.push_back("kv");
    return Status::ok();
  };
  visitor.session = [&](uint64_t client_id, const StoredSession& session) {
    contents.sessions.emplace_back(client_id, session.last_used_index);
    if (contents.order.back() != "session") contents.order.push_back("session");
    return Status::ok();
  };
  require_ok(store.read_state_machine(visitor));
  return contents;
}

BOOST_AUTO_TEST_CASE(read_state_machine_reports_applied_then_pairs_in_key_order_then_sessions) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  require_ok(store->write_kv([](KvWriter& writer) -> Status {
    KV_RETURN_IF_ERROR(writer.put("b", "2"));
    KV_RETURN_IF_ERROR(writer.put("a", "1"));
    KV_RETURN_IF_ERROR(writer.put("c", "3"));
    KV_RETURN_IF_ERROR(writer.save_session(9, StoredSession{12, {1, 2}}));
    KV_RETURN_IF_ERROR(writer.save_session(4, StoredSession{11, {3}}));
    return writer.set_applied(12, 3);
  }));
  StateMachineContents contents = read_contents(*store);
  BOOST_TEST(contents.applied_index == 12u);
  BOOST_TEST(contents.applied_term == 3u);
  BOOST_TEST((contents.order == std::vector<std::string>{"applied", "kv", "session"}));
  BOOST_TEST((contents.pairs == std::vector<std::pair<std::string, std::string>>{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  BOOST_TEST((contents.sessions == std::vector<std::pair<uint64_t, uint64_t>>{{4, 11}, {9, 12}}));
}

std::vector<uint8_t> big_endian_key(std::initializer_list<uint64_t> parts) {
  std::vector<uint8_t> key;
  for (uint64_t part : parts) {
    for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<uint8_t>(part >> shift));
  }
  return key;
}

std::optional<uint64_t> oldest_session(Store& store) {
  std::optional<uint64_t> oldest;
  require_ok(store.read_kv([&](KvReader& reader) -> Status {
    KV_ASSIGN_OR_RETURN(oldest, reader.least_recently_used_session());
    return Status::ok();
  }));
  return oldest;
}

// A saved session replaces the row in place and moves its place in the least-recently-used
// order; a save at the same index keeps it; an erase removes both rows.
BOOST_AUTO_TEST_CASE(saving_a_session_again_replaces_it_and_moves_its_place_in_the_order) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  require_ok(store->write_kv([](KvWriter& writer) -> Status {
    KV_RETURN_IF_ERROR(writer.save_session(1, StoredSession{10, {1}}));
    return writer.save_session(2, StoredSession{11, {2}});
  }));
  BOOST_TEST((oldest_session(*store) == std::optional<uint64_t>(1)));
  require_ok(store->write_kv([](KvWriter& writer) { return writer.save_session(1, StoredSession{12, {3, 4}}); }));
  BOOST_TEST((oldest_session(*store) == std::optional<uint64_t>(2)));
  require_ok(store->write_kv([](KvWriter& writer) { return writer.save_session(1, StoredSession{12, {5}}); }));
  require_ok(store->read_kv([](KvReader& reader) -> Status {
    KV_ASSIGN_OR_RETURN(std::optional<StoredSession> one, reader.load_session(1));
    BOOST_TEST_REQUIRE(one.has_value());
    BOOST_TEST(one->last_used_index == 12u);
    BOOST_TEST((one->record == std::vector<uint8_t>{5}));
    KV_ASSIGN_OR_RETURN(uint64_t count, reader.session_count());
    BOOST_TEST(count == 2u);
    return Status::ok();
  }));
  require_ok(store->write_kv([](KvWriter& writer) { return writer.erase_session(2); }));
  BOOST_TEST((oldest_session(*store) == std::optional<uint64_t>(1)));
  require_ok(store->write_kv([](KvWriter& writer) { return writer.erase_session(1); }));
  BOOST_TEST(!oldest_session(*store).has_value());
  StateMachineContents contents = read_contents(*store);
  BOOST_TEST(contents.sessions.empty());
}

// A session row too short to hold its index, or a row whose place in the order is missing, is
// damage: every use of it names the database and the client, and nothing is written.
BOOST_AUTO_TEST_CASE(a_damaged_session_row_or_order_key_is_a_clear_corruption_error) {
  TempDir temp;
  {
    auto store = open_store(store_dir(temp));
    require_ok(store->write_kv([](KvWriter& writer) -> Status {
      KV_RETURN_IF_ERROR(writer.save_session(5, StoredSession{20, {1}}));
      return writer.save_session(6, StoredSession{21, {2}});
    }));
  }
  edit_raw(temp, "sessions", [](MDB_txn* txn, MDB_dbi dbi) {
    std::vector<uint8_t> key = big_endian_key({5});
    uint8_t short_row[3] = {0, 0, 1};
    MDB_val key_val{key.size(), key.data()};
    MDB_val value_val{sizeof(short_row), short_row};
    BOOST_REQUIRE(mdb_put(txn, dbi, &key_val, &value_val, 0) == 0);
  });
  edit_raw(temp, "session_order", [](MDB_txn* txn, MDB_dbi dbi) {
    std::vector<uint8_t> key = big_endian_key({21, 6});
    MDB_val key_val{key.size(), key.data()};
    BOOST_REQUIRE(mdb_del(txn, dbi, &key_val, nullptr) == 0);
  });
  auto store = open_store(store_dir(temp));
  auto expect_corruption = [&](const std::function<Status(KvWriter&)>& use, const std::string& names) {
    Status status = store->write_kv(use);
    BOOST_TEST((status.code() == Code::corruption), status.to_string());
    BOOST_TEST(status.message().find(names) != std::string::npos, status.to_string());
  };
  const std::string short_row = "database sessions, client 5: value has 3 bytes, fewer than the 8 of its index";
  expect_corruption([](KvWriter& writer) { return writer.load_session(5).status(); }, short_row);
  expect_corruption([](KvWriter& writer) { return writer.save_session(5, StoredSession{30, {9}}); }, short_row);
  expect_corruption([](KvWriter& writer) { return writer.erase_session(5); }, short_row);
  const std::string no_order = "database session_order, client 6: order key missing";
  expect_corruption([](KvWriter& writer) { return writer.save_session(6, StoredSession{31, {9}}); }, no_order);
  expect_corruption([](KvWriter& writer) { return writer.erase_session(6); }, no_order);
  // Nothing was written: client 6's row is as it was.
  require_ok(store->read_kv([](KvReader& reader) -> Status {
    KV_ASSIGN_OR_RETURN(std::optional<StoredSession> six, reader.load_session(6));
    BOOST_TEST_REQUIRE(six.has_value());
    BOOST_TEST(six->last_used_index == 21u);
    return Status::ok();
  }));
}

BOOST_AUTO_TEST_CASE(replace_state_machine_clears_everything_and_sets_the_applied_position) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  require_ok(store->save_positions(StorePositions{50, 40, 2}));
  require_ok(store->write_kv([](KvWriter& writer) -> Status {
    KV_RETURN_IF_ERROR(writer.put("old", "x"));
    return writer.save_session(1, StoredSession{40, {7}});
  }));
  require_ok(store->replace_state_machine(100, 5, [](KvWriter& writer) -> Status {
    KV_RETURN_IF_ERROR(writer.put("new", "y"));
    return writer.save_session(2, StoredSession{99, {8}});
  }));
  StateMachineContents contents = read_contents(*store);
  BOOST_TEST(contents.applied_index == 100u);
  BOOST_TEST(contents.applied_term == 5u);
  BOOST_TEST((contents.pairs == std::vector<std::pair<std::string, std::string>>{{"new", "y"}}));
  BOOST_TEST((contents.sessions == std::vector<std::pair<uint64_t, uint64_t>>{{2, 99}}));
  BOOST_TEST(store->load_positions().value().indexed_index == 50u, "the log's position is kept");
  // session_order was cleared with sessions: the oldest session is the new one.
  require_ok(store->read_kv([](KvReader& reader) -> Status {
    auto oldest = reader.least_recently_used_session();
    BOOST_TEST((oldest.is_ok() && oldest.value() == std::optional<uint64_t>(2)));
    BOOST_TEST(reader.session_count().value() == 1u);
    return Status::ok();
  }));
}

BOOST_AUTO_TEST_CASE(failed_replace_state_machine_leaves_the_state_as_it_was) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  require_ok(store->write_kv([](KvWriter& writer) -> Status {
    KV_RETURN_IF_ERROR(writer.put("old", "x"));
    return writer.set_applied(7, 1);
  }));
  Status status = store->replace_state_machine(100, 5, [](KvWriter& writer) -> Status {
    KV_RETURN_IF_ERROR(writer.put("new", "y"));
    return Status::corruption("the snapshot file is damaged");
  });
  BOOST_TEST((status.code() == Code::corruption));
  StateMachineContents contents = read_contents(*store);
  BOOST_TEST(contents.applied_index == 7u);
  BOOST_TEST((contents.pairs == std::vector<std::pair<std::string, std::string>>{{"old", "x"}}));
}

BOOST_AUTO_TEST_CASE(replace_state_machine_larger_than_the_map_grows_it_and_runs_fill_again) {
  TempDir temp;
  StoreOptions options;
  options.map_bytes_initial = 1 * mebibyte;
  auto store = open_store(store_dir(temp), options);
  const std::string value(64 * 1024, 'v');
  int runs = 0;
  require_ok(store->replace_state_machine(64, 2, [&](KvWriter& writer) -> Status {
    ++runs;
    for (int i = 0; i < 64; ++i) KV_RETURN_IF_ERROR(writer.put("key" + std::to_string(i), value));
    return Status::ok();
  }));
  BOOST_TEST(runs > 1, "the first run filled the 1 MiB map");
  BOOST_TEST(store->map_bytes() > 1 * mebibyte);
  StateMachineContents contents = read_contents(*store);
  BOOST_TEST(contents.pairs.size() == 64u);
  BOOST_TEST(contents.applied_index == 64u);
}

// A relaxed store whose first map (1 MiB) is small enough that a test's writes grow it.
std::unique_ptr<Store> open_growing_store(const TempDir& temp) {
  StoreOptions options;
  options.sync_mode = SyncMode::relaxed;
  options.map_bytes_initial = 1 * mebibyte;
  return open_store(store_dir(temp), options);
}

// Each write transaction i sets "counter" and "mirror" to i, adds a 64 KiB value (so the map
// must grow many times) and sets applied to (i, 1); a reader on another thread must always
// see counter == mirror == applied, and map growth must wait for it rather than break it.
BOOST_AUTO_TEST_CASE(read_state_machine_on_another_thread_sees_one_state_while_the_owner_writes_and_grows) {
  TempDir temp;
  auto store = open_growing_store(temp);
  const std::string filler(64 * 1024, 'f');
  constexpr uint64_t writes = 300;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> inconsistent{0};
  std::thread reader([&] {
    while (!done.load()) {
      uint64_t applied = 0;
      std::string counter, mirror;
      StateMachineVisitor visitor;
      visitor.applied = [&](uint64_t index, uint64_t) {
        applied = index;
        return Status::ok();
      };
      visitor.kv = [&](std::string_view key, std::string_view value) {
        if (key == "counter") counter = std::string(value);
        if (key == "mirror") mirror = std::string(value);
        return Status::ok();
      };
      Status status = store->read_state_machine(visitor);
      bool same = status.is_ok() && counter == mirror && counter == (applied == 0 ? "" : std::to_string(applied));
      if (!same) ++inconsistent;
      ++reads;
    }
  });
  for (uint64_t i = 1; i <= writes; ++i) {
    require_ok(store->write_kv([&](KvWriter& writer) -> Status {
      KV_RETURN_IF_ERROR(writer.put("counter", std::to_string(i)));
      KV_RETURN_IF_ERROR(writer.put("filler" + std::to_string(i), filler));
      KV_RETURN_IF_ERROR(writer.put("mirror", std::to_string(i)));
      return writer.set_applied(i, 1);
    }));
  }
  done = true;
  reader.join();
  BOOST_TEST(reads.load() > 0u);
  BOOST_TEST(inconsistent.load() == 0u);
  BOOST_TEST(store->map_bytes() >= 16 * mebibyte, "the map grew while the reader ran");
  BOOST_TEST(read_contents(*store).applied_index == writes);
}

// The shared positions record: the indexer's save_indexed_index keeps the applied index and
// term the state machine set, and the state machine's set_applied keeps the indexed index.
BOOST_AUTO_TEST_CASE(each_writer_changes_only_its_own_field_of_the_positions) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  require_ok(store->write_kv([](KvWriter& writer) { return writer.set_applied(40, 3); }));
  require_ok(store->save_indexed_index(55));
  auto after_index = store->load_positions();
  BOOST_REQUIRE_MESSAGE(after_index.is_ok(), after_index.status().to_string());
  BOOST_TEST(after_index->indexed_index == 55u);
  BOOST_TEST(after_index->applied_index == 40u);
  BOOST_TEST(after_index->applied_term == 3u);
  require_ok(store->write_kv([](KvWriter& writer) { return writer.set_applied(41, 4); }));
  auto after_apply = store->load_positions();
  BOOST_REQUIRE_MESSAGE(after_apply.is_ok(), after_apply.status().to_string());
  BOOST_TEST(after_apply->indexed_index == 55u);
  BOOST_TEST(after_apply->applied_index == 41u);
  BOOST_TEST(after_apply->applied_term == 4u);
}

// The node's two writers (the indexer's log, the state machine's keys) on their own threads,
// with a map small enough that both make it grow: every write lands, and neither undoes the
// other's field of the shared positions record.
BOOST_AUTO_TEST_CASE(two_writers_on_two_threads_grow_the_map_and_keep_each_others_positions) {
  TempDir temp;
  auto store = open_growing_store(temp);
  constexpr uint64_t batches = 200, batch_entries = 10;
  const std::string filler(16 * 1024, 'k');
  Status indexer_status = Status::ok();  // Boost.Test checks only on the test's thread
  std::thread indexer([&] {
    for (uint64_t batch = 0; batch < batches && indexer_status.is_ok(); ++batch) {
      indexer_status = store->save_entries(make_entries(batch * batch_entries + 1, batch_entries, 1, 4096));
      if (indexer_status.is_ok()) indexer_status = store->save_indexed_index((batch + 1) * batch_entries);
    }
  });
  for (uint64_t i = 1; i <= batches * batch_entries; ++i) {
    require_ok(store->write_kv([&](KvWriter& writer) -> Status {
      KV_RETURN_IF_ERROR(writer.put("key" + std::to_string(i), filler));
      return writer.set_applied(i, 1);
    }));
  }
  indexer.join();
  require_ok(indexer_status);
  BOOST_TEST(store->map_bytes() >= 32 * mebibyte, "the map grew");
  auto positions = store->load_positions();
  BOOST_REQUIRE_MESSAGE(positions.is_ok(), positions.status().to_string());
  BOOST_TEST(positions->indexed_index == batches * batch_entries);
  BOOST_TEST(positions->applied_index == batches * batch_entries);
  BOOST_TEST(positions->applied_term == 1u);
  BOOST_TEST(load_range(*store, 1, batches * batch_entries).size() == batches * batch_entries);
  BOOST_TEST(read_contents(*store).pairs.size() == batches * batch_entries);
}

BOOST_AUTO_TEST_CASE(reopen_keeps_everything) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 200, 3);
  SnapshotMetadata snapshot{0, 0, {Member{1, "h:1"}}};
  {
    auto store = open_store(store_dir(temp), relaxed_options());
    require_ok(store->save_metadata(Metadata{3, 1}));
    require_ok(store->save_positions(StorePositions{200, 150}));
    require_ok(store->save_snapshot_metadata(snapshot));
    require_ok(store->save_entries(entries));
    require_ok(store->sync());
  }
  auto store = open_store(store_dir(temp));  // durable this time: the mode is per opening
  auto metadata = store->load_metadata();
  BOOST_REQUIRE(metadata.is_ok() && metadata.value().has_value());
  BOOST_TEST((*metadata.value() == Metadata{3, 1}));
  auto positions = store->load_positions();
  BOOST_REQUIRE(positions.is_ok());
  BOOST_TEST(positions.value().indexed_index == 200u);
  BOOST_TEST(positions.value().applied_index == 150u);
  auto loaded_snapshot = store->load_snapshot_metadata();
  BOOST_REQUIRE(loaded_snapshot.is_ok() && loaded_snapshot.value().has_value());
  BOOST_TEST((*loaded_snapshot.value() == snapshot));
  BOOST_TEST((load_range(*store, 1, 200) == entries));
}

BOOST_AUTO_TEST_CASE(corrupted_entry_value_is_reported) {
  TempDir temp;
  Entry victim = make_entry(7, 2, 512);
  {
    auto store = open_store(store_dir(temp));
    require_ok(store->save_entries(make_entries(1, 6, 2)));
    require_ok(store->save_entry(victim));
    require_ok(store->save_entry(make_entry(8, 2)));
  }
  std::vector<uint8_t> marker(victim.payload().begin() + 100, victim.payload().begin() + 164);
  BOOST_REQUIRE(damage_every_copy(temp.file("store/data.mdb"), marker) >= 1u);

  auto store = open_store(store_dir(temp));
  Status damaged = store->load_entry(7).status();
  BOOST_TEST((damaged.code() == Code::corruption), damaged.to_string());
  BOOST_TEST(contains(damaged.message(), "database log, index 7"), damaged.message());
  Status range = store->load_range(1, 8).status();
  BOOST_TEST((range.code() == Code::corruption), range.to_string());
  BOOST_TEST((load(*store, 6) == make_entry(6, 2)));  // the neighbours are intact
  BOOST_TEST((load(*store, 8) == make_entry(8, 2)));
}

BOOST_AUTO_TEST_CASE(large_payload_entry) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  Entry large = make_entry(2, 1, 1 * mebibyte);
  require_ok(store->save_entries({make_entry(1, 1), large, make_entry(3, 1)}));
  BOOST_TEST((load(*store, 2) == large));
  std::vector<Entry> loaded = load_range(*store, 1, 3);
  BOOST_REQUIRE(loaded.size() == 3u);
  BOOST_TEST((loaded[1] == large));
  BOOST_TEST(load_range(*store, 2, 3, 1024).size() == 1u);  // the large one alone exceeds the limit
}

BOOST_AUTO_TEST_CASE(opening_same_directory_twice_is_refused) {
  TempDir temp;
  auto store = open_store(store_dir(temp));
  auto second = Store::open(store_dir(temp) + "/.");  // another spelling of the same directory
  BOOST_TEST((second.status().code() == Code::locked), second.status().to_string());
  store.reset();
  auto reopened = Store::open(store_dir(temp));  // free again once the first one closed
  BOOST_TEST(reopened.is_ok(), reopened.status().to_string());
}

BOOST_AUTO_TEST_CASE(impossible_map_options_are_rejected) {
  TempDir temp;
  StoreOptions options;
  options.map_bytes_initial = 8 * mebibyte;
  options.map_bytes_max = 4 * mebibyte;
  auto opened = Store::open(store_dir(temp), options);
  BOOST_TEST((opened.status().code() == Code::invalid_argument), opened.status().to_string());
  BOOST_TEST((Store::open("").status().code() == Code::invalid_argument));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
