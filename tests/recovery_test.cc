// Goal: start-up recovery restores exactly the WAL's durable log into LMDB, repairs what a crash
// explains (lagging or stale LMDB, a torn tail) and refuses, naming where, what it cannot.
// Method: real WALs and LMDB stores in temporary directories, built or damaged directly, then recovered.
#define BOOST_TEST_MODULE recovery_test
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "storage/codec.h"
#include "storage/env.h"
#include "storage/kv_state_machine.h"
#include "storage/lmdb_state.h"
#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "storage/wal.h"
#include "storage/wal_format.h"
#include <lmdb.h>
#include "tests/support/fault_env.h"
#include "tests/support/print.h"
#include "tests/support/temp_dir.h"

namespace keyval {

// Printers for Boost.Test's failure messages (found by argument-dependent lookup).
static std::ostream& operator<<(std::ostream& out, const Metadata& metadata) {
  out << "{term " << metadata.current_term << ", voted_for " << metadata.voted_for << ", counted";
  for (uint64_t id : metadata.counted) out << " " << id;
  return out << (metadata.probation ? ", probation}" : "}");
}

namespace {

using testing::TempDir;

constexpr size_t payload_bytes = 100;

void require_ok(const Status& status) {
  BOOST_REQUIRE_MESSAGE(status.is_ok(), status.to_string());
}
bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string node_dir(const TempDir& temp) {
  return temp.file("node");
}
std::string wal_dir(const TempDir& temp) {
  return node_dir(temp) + "/wal";
}
std::string lmdb_dir(const TempDir& temp) {
  return node_dir(temp) + "/lmdb";
}

// Payloads depend on index and term, so an entry of another term never compares equal.
Entry make_entry(uint64_t index, uint64_t term) {
  return Entry{index, term, testing::make_payload(index * 1000 + term, payload_bytes)};
}

std::unique_ptr<Wal> open_wal(const TempDir& temp, const WalOptions& options = {}) {
  auto wal = Wal::open(posix_env(), wal_dir(temp), options);
  BOOST_REQUIRE_MESSAGE(wal.is_ok(), wal.status().to_string());
  return std::move(wal).value();
}

std::unique_ptr<Store> open_store(const TempDir& temp) {
  auto store = Store::open(lmdb_dir(temp), StoreOptions{SyncMode::relaxed});
  BOOST_REQUIRE_MESSAGE(store.is_ok(), store.status().to_string());
  return std::move(store).value();
}

void append(Wal& wal, uint64_t first, uint64_t last, uint64_t term) {
  for (uint64_t index = first; index <= last; ++index) require_ok(wal.append(make_entry(index, term)));
}

// Saves entries first..last of `term` into LMDB and records them as indexed.
void index_into(Store& store, uint64_t first, uint64_t last, uint64_t term) {
  std::vector<Entry> entries;
  for (uint64_t index = first; index <= last; ++index) entries.push_back(make_entry(index, term));
  require_ok(store.save_entries(entries));
  require_ok(store.save_positions(StorePositions{last, 0}));
  require_ok(store.sync());
}

Recovered recover_ok(const TempDir& temp, const RecoveryOptions& options = {}) {
  auto recovered = recover(posix_env(), node_dir(temp), options);
  BOOST_REQUIRE_MESSAGE(recovered.is_ok(), recovered.status().to_string());
  return std::move(recovered).value();
}

Status recover_status(const TempDir& temp, const RecoveryOptions& options = {}) {
  return recover(posix_env(), node_dir(temp), options).status();
}

std::vector<Entry> lmdb_log(Store& store) {
  uint64_t first = store.first_index().value();
  uint64_t last = store.last_index().value();
  if (last == 0) return {};
  return store.load_range(first, last).value();
}

// Every LMDB entry is the one of `term_at(index)` and the log spans first..last.
template <class TermAt>
void require_lmdb_holds(Store& store, uint64_t first, uint64_t last, TermAt term_at) {
  std::vector<Entry> entries = lmdb_log(store);
  BOOST_REQUIRE_EQUAL(entries.size(), last - first + 1);
  for (const Entry& entry : entries) {
    BOOST_REQUIRE_MESSAGE(entry == make_entry(entry.index, term_at(entry.index)), "LMDB entry " << entry.index);
  }
  BOOST_TEST(entries.front().index == first);
}

// Where open() met the record of log entry `index` (segment file, offset).
WalRecordInfo locate(const TempDir& temp, uint64_t index) {
  WalRecordInfo found;
  WalOptions options;
  options.read_only = true;
  auto wal = Wal::open(posix_env(), wal_dir(temp), options, [&](const WalRecordInfo& record) {
    if (record.type == EntryType::log && record.index == index) found = record;
  });
  BOOST_REQUIRE_MESSAGE(wal.is_ok(), wal.status().to_string());
  BOOST_REQUIRE_MESSAGE(!found.segment.empty(), "no record for entry " << index);
  return found;
}

// Where the last write to `segment` ends: after the seal the last sync wrote (storage/FORMAT.md,
// "Seals"). A crash tears that write in order, the seal with it.
uint64_t written_end(const TempDir& temp, const std::string& segment) {
  uint64_t end = 0;
  WalOptions options;
  options.read_only = true;
  auto wal = Wal::open(posix_env(), wal_dir(temp), options, [&](const WalRecordInfo& record) {
    if (record.segment == segment) end = record.offset + wal_format::record_bytes(record.payload_bytes);
  });
  BOOST_REQUIRE_MESSAGE(wal.is_ok(), wal.status().to_string());
  return end;
}

// A snapshot file of an empty state at (index, term) in the node's snapshot directory: the
// base snapshot a WAL snapshot record names.
void write_base_snapshot(const TempDir& temp, uint64_t index, uint64_t term) {
  SnapshotDirectory directory(posix_env(), node_dir(temp) + "/snapshots");
  require_ok(directory.create());
  const std::string tmp = directory.temp_path_for(index, term, "test");
  auto writer = SnapshotWriter::create(posix_env(), tmp, SnapshotHeader{index, term, {}});
  BOOST_REQUIRE(writer.is_ok());
  BOOST_REQUIRE(writer.value()->finish().is_ok());
  require_ok(directory.publish(tmp, index, term));
}

void damage(const std::string& path, uint64_t from, uint64_t to, uint8_t mask) {
  std::vector<uint8_t> bytes = testing::read_file(path);
  BOOST_REQUIRE(to <= bytes.size());
  for (uint64_t i = from; i < to; ++i) bytes[i] = mask == 0 ? 0 : bytes[i] ^ mask;
  testing::write_file(path, bytes);
}

// Flips a byte of the value LMDB's `log` database holds for `index`, below the store's API (as
// a bad sector or a stray write would): the entry then fails its checksum (or its decoding).
void damage_lmdb_entry(const TempDir& temp, uint64_t index) {
  MDB_env* env = nullptr;
  BOOST_REQUIRE(mdb_env_create(&env) == 0);
  BOOST_REQUIRE(mdb_env_set_maxdbs(env, 16) == 0);
  BOOST_REQUIRE(mdb_env_set_mapsize(env, 1ull << 30) == 0);
  BOOST_REQUIRE(mdb_env_open(env, lmdb_dir(temp).c_str(), MDB_NOTLS, 0644) == 0);
  MDB_txn* txn = nullptr;
  BOOST_REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi log;
  BOOST_REQUIRE(mdb_dbi_open(txn, "log", 0, &log) == 0);
  uint8_t key_bytes[8];
  for (int i = 0; i < 8; ++i) key_bytes[i] = static_cast<uint8_t>(index >> (56 - 8 * i));  // big-endian
  MDB_val key{sizeof key_bytes, key_bytes};
  MDB_val value;
  BOOST_REQUIRE(mdb_get(txn, log, &key, &value) == 0);
  std::vector<uint8_t> bytes(static_cast<uint8_t*>(value.mv_data), static_cast<uint8_t*>(value.mv_data) + value.mv_size);
  bytes[bytes.size() - 16] ^= 0x20;  // inside the payload
  MDB_val changed{bytes.size(), bytes.data()};
  BOOST_REQUIRE(mdb_put(txn, log, &key, &changed, 0) == 0);
  BOOST_REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_sync(env, 1);
  mdb_env_close(env);
}

RecoveryOptions repairing_options() {
  RecoveryOptions options;
  options.repair_corruption = true;
  return options;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(recovery)

BOOST_AUTO_TEST_CASE(fresh_directory_recovers_empty_state) {
  TempDir temp;
  for (int run = 0; run < 2; ++run) {  // the second run finds what the first created
    Recovered recovered = recover_ok(temp);
    BOOST_TEST((recovered.state.metadata == Metadata{}));
    BOOST_TEST(!recovered.state.snapshot.has_value());
    BOOST_TEST(recovered.state.first_index == 1u);
    BOOST_TEST(recovered.state.last_index == 0u);
    BOOST_TEST(recovered.state.last_term == 0u);
    BOOST_TEST(recovered.report.entries_recovered == 0u);
    BOOST_TEST(recovered.report.torn_bytes_cut == 0u);
    BOOST_TEST(recovered.wal->next_index() == 1u);
    BOOST_TEST(recovered.store->last_index().value() == 0u);
  }
  BOOST_TEST(posix_env().exists(wal_dir(temp)));
  BOOST_TEST(posix_env().exists(lmdb_dir(temp) + "/data.mdb"));
}

// A power cut in the first start must not leave LMDB (written without sync, maybe torn) beside
// a WAL without segments: that pair reads as a lost WAL and is refused at every start.
BOOST_AUTO_TEST_CASE(new_directory_has_a_durable_wal_segment_before_lmdb_exists) {
  TempDir temp;
  testing::FaultEnv env(posix_env());
  bool segment_durable = false;
  bool lmdb_existed = true;
  env.arm(testing::FaultPoint::directory_synced, 1, [&](testing::FaultPoint) {
    segment_durable = true;
    lmdb_existed = posix_env().exists(lmdb_dir(temp) + "/data.mdb");
  });
  auto recovered = recover(env, node_dir(temp), RecoveryOptions{});
  BOOST_REQUIRE_MESSAGE(recovered.is_ok(), recovered.status().to_string());
  BOOST_TEST(segment_durable, "the first segment was renamed into place and its directory synced");
  BOOST_TEST(!lmdb_existed, "LMDB was created before the WAL had a durable segment");
  BOOST_TEST(posix_env().exists(lmdb_dir(temp) + "/data.mdb"));
}

// keyval node --bootstrap: a log never written to starts with the bootstrap configuration
// entry at index 1, term 1, durably; a log that holds anything is left as it is.
BOOST_AUTO_TEST_CASE(bootstrap_starts_an_untouched_log_with_the_configuration_entry_once) {
  TempDir temp;
  RecoveryOptions options;
  ConfigurationEntry bootstrap;
  bootstrap.kind = ConfChangeKind::bootstrap;
  bootstrap.members = {Member{1, "127.0.0.1:7201"}, Member{2, "127.0.0.1:7202"}, Member{3, "127.0.0.1:7203"}};
  options.bootstrap = bootstrap;
  {
    Recovered first = recover_ok(temp, options);
    BOOST_TEST(first.report.bootstrapped);
    BOOST_TEST(contains(first.report.summary(), "bootstrapped"), first.report.summary());
    Metadata on_probation{1, 0};
    on_probation.probation = true;  // raft/probation.cc: until every other voter answered
    BOOST_TEST(first.state.metadata == on_probation);
    BOOST_TEST(first.state.last_index == 1u);
    BOOST_TEST(first.state.last_term == 1u);
    Entry entry = first.wal->read(1).value();
    BOOST_TEST((entry.type == EntryType::configuration));
    BOOST_TEST(entry.term == 1u);
    auto decoded = decode_configuration_entry(entry.payload().data(), entry.payload().size(), "test");
    BOOST_TEST_REQUIRE(decoded.is_ok(), decoded.status().to_string());
    BOOST_TEST((decoded.value() == bootstrap));
    append(*first.wal, 2, 10, 1);
    require_ok(first.wal->sync());
  }
  Recovered again = recover_ok(temp, options);  // the same command line at a restart
  BOOST_TEST(!again.report.bootstrapped);
  BOOST_TEST(again.state.last_index == 10u);
  BOOST_TEST((again.wal->read(1).value().type == EntryType::configuration));
  BOOST_TEST((lmdb_log(*again.store).front().type == EntryType::configuration));
}

BOOST_AUTO_TEST_CASE(metadata_and_entries_survive_restart) {
  TempDir temp;
  {
    Recovered recovered = recover_ok(temp);
    require_ok(recovered.wal->save_metadata(Metadata{5, 3}));
    append(*recovered.wal, 1, 120, 2);
    append(*recovered.wal, 121, 200, 5);
    require_ok(recovered.wal->sync());
  }
  Recovered first = recover_ok(temp);
  BOOST_TEST(first.state.metadata == (Metadata{5, 3}));
  BOOST_TEST(first.state.first_index == 1u);
  BOOST_TEST(first.state.last_index == 200u);
  BOOST_TEST(first.state.last_term == 5u);
  BOOST_TEST(first.report.entries_replayed == 200u);
  BOOST_TEST(first.report.entries_recovered == 200u);
  BOOST_TEST((first.store->load_metadata().value() == std::optional<Metadata>(Metadata{5, 3})));
  BOOST_TEST(first.store->load_positions().value().indexed_index == 200u);
  require_lmdb_holds(*first.store, 1, 200, [](uint64_t index) { return index <= 120 ? 2 : 5; });
  first = Recovered{};  // close both before the next start
  Recovered second = recover_ok(temp);
  BOOST_TEST(second.report.entries_replayed == 0u, "LMDB already holds everything");
  BOOST_TEST(second.report.lmdb_entries_checked == 200u);
  BOOST_TEST(second.state.last_index == 200u);
  BOOST_TEST(second.state.metadata == (Metadata{5, 3}));
  BOOST_TEST(contains(second.report.summary(), "recovered 200 entries"), second.report.summary());
}

BOOST_AUTO_TEST_CASE(lmdb_metadata_is_used_when_the_wal_has_none) {
  TempDir temp;
  {
    auto store = open_store(temp);
    require_ok(store->save_metadata(Metadata{9, 4}));
    require_ok(store->save_snapshot_metadata(SnapshotMetadata{0, 0, {Member{4, "h:1"}}}));
    require_ok(store->sync());
  }
  open_wal(temp);  // a WAL with no metadata record
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(recovered.state.metadata == (Metadata{9, 4}));
  BOOST_REQUIRE(recovered.state.snapshot.has_value());
  BOOST_TEST(recovered.state.snapshot->configuration.size() == 1u);
}

BOOST_AUTO_TEST_CASE(lmdb_behind_wal_is_caught_up) {
  for (uint64_t batch : {uint64_t{1}, uint64_t{7}, uint64_t{4096}}) {
    BOOST_TEST_CONTEXT("batch_entries_max " << batch) {
      TempDir temp;
      {
        auto wal = open_wal(temp);
        append(*wal, 1, 1000, 1);
        require_ok(wal->sync());
      }
      index_into(*open_store(temp), 1, 300, 1);
      RecoveryOptions options;
      options.batch_entries_max = batch;
      Recovered recovered = recover_ok(temp, options);
      BOOST_TEST(recovered.report.lmdb_entries_checked == 300u);
      BOOST_TEST(recovered.report.entries_replayed == 700u);
      BOOST_TEST(recovered.report.lmdb_entries_replaced == 0u);
      BOOST_TEST(recovered.state.last_index == 1000u);
      BOOST_TEST(recovered.store->load_positions().value().indexed_index == 1000u);
      require_lmdb_holds(*recovered.store, 1, 1000, [](uint64_t) { return 1; });
    }
  }
}

BOOST_AUTO_TEST_CASE(lmdb_ahead_of_truncated_wal_is_corrected) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    append(*wal, 1, 100, 1);
    require_ok(wal->truncate_suffix_after(50));
    append(*wal, 51, 60, 2);
    require_ok(wal->sync());
  }
  index_into(*open_store(temp), 1, 100, 1);  // indexed before the truncation reached LMDB
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(recovered.report.lmdb_entries_replaced == 50u);
  BOOST_TEST(recovered.report.entries_replayed == 10u);
  BOOST_TEST(recovered.state.last_index == 60u);
  BOOST_TEST(recovered.state.last_term == 2u);
  require_lmdb_holds(*recovered.store, 1, 60, [](uint64_t index) { return index <= 50 ? 1 : 2; });
  BOOST_TEST(recovered.store->load_entry(61).status().code() == Code::not_found);
}

BOOST_AUTO_TEST_CASE(snapshot_that_reset_the_wal_drops_stale_lmdb_entries) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    append(*wal, 1, 100, 1);
    // A leader's snapshot through 150 (term 3) that this log does not hold: the WAL's log resets.
    require_ok(wal->save_snapshot(SnapshotMetadata{150, 3, {Member{1, "a:1"}}}));
    append(*wal, 151, 160, 3);
    require_ok(wal->sync());
  }
  write_base_snapshot(temp, 150, 3);
  index_into(*open_store(temp), 1, 100, 1);
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(recovered.report.lmdb_entries_replaced == 100u);
  BOOST_TEST(recovered.report.entries_replayed == 10u);
  BOOST_TEST(recovered.state.first_index == 151u);
  BOOST_TEST(recovered.state.last_index == 160u);
  BOOST_TEST(recovered.state.last_term == 3u);
  require_lmdb_holds(*recovered.store, 151, 160, [](uint64_t) { return 3; });
  auto saved = recovered.store->load_snapshot_metadata().value();
  BOOST_REQUIRE(saved.has_value());
  BOOST_TEST(saved->last_included_index == 150u);
}

BOOST_AUTO_TEST_CASE(snapshot_inside_lmdb_with_another_term_drops_the_lmdb_prefix) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    append(*wal, 1, 100, 1);
    // Through 50 at term 2: the log's entry 50 has term 1, so the WAL's log resets to start at 51.
    require_ok(wal->save_snapshot(SnapshotMetadata{50, 2, {}}));
    append(*wal, 51, 60, 2);
    require_ok(wal->sync());
  }
  write_base_snapshot(temp, 50, 2);
  index_into(*open_store(temp), 1, 100, 1);
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(recovered.state.first_index == 51u, "LMDB's 1..50 do not lead to the snapshot");
  BOOST_TEST(recovered.state.last_index == 60u);
  BOOST_TEST(recovered.report.lmdb_entries_replaced == 100u);
  require_lmdb_holds(*recovered.store, 51, 60, [](uint64_t) { return 2; });
}

BOOST_AUTO_TEST_CASE(torn_wal_tail_is_cut_and_reported) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    append(*wal, 1, 50, 1);
    require_ok(wal->sync());
  }
  WalRecordInfo last = locate(temp, 50);
  uint64_t end = last.offset + wal_format::record_bytes(last.payload_bytes);
  // The write of entry 50 cut short: its end and the seal after it never landed.
  damage(wal_dir(temp) + "/" + last.segment, end - 40, written_end(temp, last.segment), 0);
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(recovered.report.torn_bytes_cut > 0u);
  BOOST_TEST(recovered.report.torn_segment == last.segment);
  BOOST_TEST(recovered.report.torn_offset == last.offset);
  BOOST_TEST(contains(recovered.report.summary(), last.segment), recovered.report.summary());
  BOOST_TEST(recovered.state.last_index == 49u);
  require_lmdb_holds(*recovered.store, 1, 49, [](uint64_t) { return 1; });
}

BOOST_AUTO_TEST_CASE(corrupted_wal_record_refuses_start_naming_file_and_offset) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    append(*wal, 1, 50, 1);
    require_ok(wal->sync());
  }
  WalRecordInfo tenth = locate(temp, 10);
  uint64_t payload = tenth.offset + wal_format::record_header_bytes;
  damage(wal_dir(temp) + "/" + tenth.segment, payload + 5, payload + 6, 0x10);  // good records follow
  Status status = recover_status(temp);
  BOOST_TEST(status.code() == Code::corruption, status.to_string());
  BOOST_TEST(contains(status.message(), tenth.segment), status.to_string());
  BOOST_TEST(contains(status.message(), "offset " + std::to_string(tenth.offset)), status.to_string());
  BOOST_TEST(open_store(temp)->last_index().value() == 0u, "a refused start changes nothing in LMDB");
}

BOOST_AUTO_TEST_CASE(flipped_byte_in_committed_wal_record_mid_log_is_salvaged_and_the_node_repairs) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    require_ok(wal->save_metadata(Metadata{3, 2}));
    append(*wal, 1, 50, 3);
    require_ok(wal->sync());
  }
  WalRecordInfo thirtieth = locate(temp, 30);
  uint64_t payload = thirtieth.offset + wal_format::record_header_bytes;
  damage(wal_dir(temp) + "/" + thirtieth.segment, payload + 5, payload + 6, 0x10);  // good records follow
  // Without repair it is refused as before; nothing changes.
  BOOST_TEST(recover_status(temp).code() == Code::corruption);
  Recovered recovered = recover_ok(temp, repairing_options());
  const RecoveryReport& report = recovered.report;
  BOOST_TEST(report.wal_damage.damaged);
  BOOST_TEST(report.wal_damage.damaged_segment == thirtieth.segment);
  BOOST_TEST(report.wal_damage.damaged_offset == thirtieth.offset);
  BOOST_TEST(report.wal_damage.damaged_last_index == 50u, "records after the damage still name their indexes");
  BOOST_TEST(recovered.state.last_index == 29u);
  BOOST_TEST(recovered.state.metadata.repairing);
  BOOST_TEST(recovered.state.metadata.repair_last_index == 50u);
  BOOST_TEST(recovered.state.metadata.current_term == 3u);
  BOOST_TEST(recovered.state.metadata.voted_for == 2u);
  BOOST_TEST(report.repairing);
  const std::string copy = node_dir(temp) + "/damaged-1";
  BOOST_TEST(report.wal_damage.damaged_copy == copy);
  BOOST_TEST(contains(report.summary(), copy), report.summary());
  BOOST_TEST(contains(report.summary(), "repairing"), report.summary());
  require_lmdb_holds(*recovered.store, 1, 29, [](uint64_t) { return 3; });
  // The copy kept for the operator still shows the damage where it was.
  WalOptions read_only;
  read_only.read_only = true;
  auto kept = Wal::open(posix_env(), copy + "/wal", read_only);
  BOOST_REQUIRE(!kept.is_ok());
  BOOST_TEST(kept.status().code() == Code::corruption);
  BOOST_TEST(contains(kept.status().message(), "offset " + std::to_string(thirtieth.offset)), kept.status().to_string());
  // The WAL itself now reads clean and ends before the damage.
  recovered = Recovered{};
  auto verified = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_REQUIRE_MESSAGE(verified.is_ok(), verified.status().to_string());
  BOOST_TEST(verified->wal_last_index == 29u);
}

// A term and vote recorded after the damage are kept from the discarded part: forgetting them
// would let the node vote a second time in a term it voted in.
BOOST_AUTO_TEST_CASE(a_vote_recorded_after_the_damage_is_not_forgotten) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    require_ok(wal->save_metadata(Metadata{3, 2}));
    append(*wal, 1, 50, 3);
    require_ok(wal->save_metadata(Metadata{5, 3}));  // voted for node 3 in term 5, after entry 50
    require_ok(wal->sync());
  }
  WalRecordInfo thirtieth = locate(temp, 30);
  uint64_t payload = thirtieth.offset + wal_format::record_header_bytes;
  damage(wal_dir(temp) + "/" + thirtieth.segment, payload + 5, payload + 6, 0x10);
  Recovered recovered = recover_ok(temp, repairing_options());
  BOOST_TEST(recovered.report.wal_damage.damaged);
  BOOST_TEST(recovered.state.last_index == 29u);
  BOOST_REQUIRE(recovered.report.wal_damage.damaged_metadata.has_value());
  BOOST_TEST(recovered.state.metadata.current_term == 5u);
  BOOST_TEST(recovered.state.metadata.voted_for == 3u);
  BOOST_TEST(recovered.state.metadata.repairing);
  // And it stays so across a restart (written durably, not only reported).
  recovered = Recovered{};
  Recovered again = recover_ok(temp, repairing_options());
  BOOST_TEST(again.state.metadata.current_term == 5u);
  BOOST_TEST(again.state.metadata.voted_for == 3u);
}

BOOST_AUTO_TEST_CASE(crash_while_repairing_restarts_repairing) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    require_ok(wal->save_metadata(Metadata{2, 1}));
    append(*wal, 1, 40, 2);
    require_ok(wal->sync());
  }
  WalRecordInfo twentieth = locate(temp, 20);
  damage(wal_dir(temp) + "/" + twentieth.segment, twentieth.offset + 40, twentieth.offset + 41, 0x01);
  { Recovered first = recover_ok(temp, repairing_options()); BOOST_REQUIRE(first.state.metadata.repairing); }
  // The process dies here (before any leader repaired it): the next start is still repairing,
  // although its WAL is now clean, and salvages nothing twice.
  Recovered again = recover_ok(temp, repairing_options());
  BOOST_TEST(!again.report.wal_damage.damaged);
  BOOST_TEST(again.state.metadata.repairing);
  BOOST_TEST(again.state.metadata.repair_last_index == 40u);
  BOOST_TEST(again.state.last_index == 19u);
  BOOST_TEST(contains(again.report.summary(), "repairing"), again.report.summary());
  BOOST_TEST(!posix_env().exists(node_dir(temp) + "/damaged-2"));
}

BOOST_AUTO_TEST_CASE(unreadable_lmdb_log_entry_is_replaced_from_the_wal) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    require_ok(wal->save_metadata(Metadata{1, 0}));
    append(*wal, 1, 20, 1);
    require_ok(wal->sync());
  }
  { Recovered first = recover_ok(temp); require_lmdb_holds(*first.store, 1, 20, [](uint64_t) { return 1; }); }
  damage_lmdb_entry(temp, 7);
  Status refused = recover_status(temp);
  BOOST_TEST(refused.code() == Code::corruption, refused.to_string());
  BOOST_TEST(contains(refused.message(), "database log, index 7"), refused.to_string());
  Recovered recovered = recover_ok(temp, repairing_options());
  BOOST_TEST(recovered.report.lmdb_damaged_index == 7u);
  BOOST_TEST(contains(recovered.report.summary(), "LMDB log entry 7 unreadable"), recovered.report.summary());
  BOOST_TEST(!recovered.state.metadata.repairing, "the WAL held the entry: nothing was lost");
  require_lmdb_holds(*recovered.store, 1, 20, [](uint64_t) { return 1; });
}

BOOST_AUTO_TEST_CASE(wal_damage_below_the_applied_index_is_refilled_from_lmdb) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    require_ok(wal->save_metadata(Metadata{1, 0}));
    append(*wal, 1, 30, 1);
    require_ok(wal->sync());
  }
  {
    Recovered first = recover_ok(temp);
    require_ok(first.store->save_positions(StorePositions{30, 25, 1}));  // the state machine applied 1..25
    require_ok(first.store->sync());
  }
  WalRecordInfo tenth = locate(temp, 10);
  damage(wal_dir(temp) + "/" + tenth.segment, tenth.offset + 40, tenth.offset + 41, 0x04);
  Recovered recovered = recover_ok(temp, repairing_options());
  BOOST_TEST(recovered.report.entries_refilled == 16u);  // 10..25 from LMDB: committed, applied
  BOOST_TEST(recovered.state.last_index == 25u);
  BOOST_TEST(recovered.state.metadata.repairing);
  require_lmdb_holds(*recovered.store, 1, 25, [](uint64_t) { return 1; });
  recovered = Recovered{};
  auto verified = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_REQUIRE_MESSAGE(verified.is_ok(), verified.status().to_string());
  BOOST_TEST(verified->wal_last_index == 25u);
}

// A start that salvaged the WAL and stopped before it wrote the repairing state leaves a clean
// WAL that ends below the applied index: the next start refills it and repairs all the same
// (entries after the applied index may have been acknowledged and are gone).
BOOST_AUTO_TEST_CASE(a_wal_salvaged_by_an_earlier_start_below_the_applied_index_still_repairs) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    require_ok(wal->save_metadata(Metadata{1, 0}));
    append(*wal, 1, 30, 1);
    require_ok(wal->sync());
  }
  {
    Recovered first = recover_ok(temp);
    require_ok(first.store->save_positions(StorePositions{30, 25, 1}));  // the state machine applied 1..25
    require_ok(first.store->sync());
  }
  WalRecordInfo tenth = locate(temp, 10);
  damage(wal_dir(temp) + "/" + tenth.segment, tenth.offset + 40, tenth.offset + 41, 0x04);
  {
    WalOptions salvage;  // what that start's Wal::open did before it stopped
    salvage.salvage = true;
    salvage.salvage_directory = node_dir(temp);
    auto salvaged = open_wal(temp, salvage);
    BOOST_REQUIRE(salvaged->open_report().damaged);
    BOOST_REQUIRE_EQUAL(salvaged->last_index(), 9u);
  }
  Recovered recovered = recover_ok(temp, repairing_options());
  BOOST_TEST(!recovered.report.wal_damage.damaged, "salvaged already");
  BOOST_TEST(recovered.report.entries_refilled == 16u);
  BOOST_TEST(recovered.state.metadata.repairing);
  BOOST_TEST(recovered.state.metadata.repair_last_index == 30u);
  BOOST_TEST(recovered.report.repairing);
}

BOOST_AUTO_TEST_CASE(lmdb_gap_refuses_start) {
  for (uint64_t batch : {uint64_t{1}, uint64_t{5}, uint64_t{4096}}) {
    BOOST_TEST_CONTEXT("batch_entries_max " << batch) {
      TempDir temp;
      {
        auto store = open_store(temp);
        require_ok(store->save_entries({make_entry(1, 1), make_entry(2, 1), make_entry(3, 1), make_entry(4, 1),
                                        make_entry(5, 1), make_entry(6, 1), make_entry(7, 1), make_entry(8, 1),
                                        make_entry(9, 1), make_entry(10, 1)}));
        require_ok(store->save_entries({make_entry(12, 1), make_entry(13, 1)}));
        require_ok(store->sync());
      }
      RecoveryOptions options;
      options.batch_entries_max = batch;
      Status status = recover_status(temp, options);
      BOOST_TEST(status.code() == Code::corruption, status.to_string());
      BOOST_TEST(contains(status.message(), "LMDB log"), status.to_string());
      BOOST_TEST(contains(status.message(), "gap after index 10"), status.to_string());
    }
  }
}

BOOST_AUTO_TEST_CASE(decreasing_terms_refuse_start) {
  TempDir temp;
  {
    auto store = open_store(temp);
    require_ok(store->save_entries({make_entry(1, 3), make_entry(2, 3), make_entry(3, 2), make_entry(4, 2)}));
    require_ok(store->sync());
  }
  Status status = recover_status(temp);
  BOOST_TEST(status.code() == Code::corruption, status.to_string());
  BOOST_TEST(contains(status.message(), "LMDB log"), status.to_string());
  BOOST_TEST(contains(status.message(), "from 3 at index 2 to 2 at index 3"), status.to_string());
}

BOOST_AUTO_TEST_CASE(wal_starting_after_lmdb_end_refuses_start) {
  TempDir temp;
  {
    WalOptions options;
    options.first_index = 500;
    auto wal = open_wal(temp, options);
    append(*wal, 500, 510, 1);
    require_ok(wal->sync());
  }
  Status status = recover_status(temp);
  BOOST_TEST(status.code() == Code::corruption, status.to_string());
  BOOST_TEST(contains(status.message(), "LMDB ends at 0 but the WAL starts at 500"), status.to_string());
  BOOST_TEST(contains(status.message(), "entries 1..499 exist nowhere"), status.to_string());
  BOOST_TEST(open_store(temp)->last_index().value() == 0u, "nothing was copied before refusing");
}

BOOST_AUTO_TEST_CASE(missing_wal_with_lmdb_entries_refuses_start_every_time) {
  TempDir temp;
  index_into(*open_store(temp), 1, 20, 1);
  for (int run = 0; run < 2; ++run) {  // refusing must not create a WAL that the next start trusts
    Status status = recover_status(temp);
    BOOST_TEST(status.code() == Code::corruption, status.to_string());
    BOOST_TEST(contains(status.message(), "holds no segments"), status.to_string());
  }
  BOOST_TEST(open_store(temp)->last_index().value() == 20u);
}

// A node that ran and then lost its WAL directory must not start as an empty voter (no log,
// no votes): anything showing the directory was used refuses the start, every time.
BOOST_AUTO_TEST_CASE(missing_wal_with_only_a_term_in_lmdb_refuses_start_every_time) {
  TempDir temp;
  {
    Recovered recovered = recover_ok(temp);
    require_ok(recovered.store->save_metadata(Metadata{7, 2}));
    require_ok(recovered.store->sync());
  }
  std::filesystem::remove_all(wal_dir(temp));
  for (int run = 0; run < 2; ++run) {
    Status status = recover_status(temp);
    BOOST_TEST(status.code() == Code::corruption, status.to_string());
    BOOST_TEST(contains(status.message(), "holds no segments but LMDB records term 7"), status.to_string());
    BOOST_TEST(contains(status.message(), "is missing"), status.to_string());
  }
}

BOOST_AUTO_TEST_CASE(missing_wal_and_lmdb_after_a_clean_stop_refuse_start_every_time) {
  TempDir temp;
  recover_ok(temp);
  require_ok(mark_lmdb_clean(posix_env(), node_dir(temp)));
  std::filesystem::remove_all(wal_dir(temp));
  std::filesystem::remove_all(lmdb_dir(temp));
  for (int run = 0; run < 2; ++run) {
    Status status = recover_status(temp);
    BOOST_TEST(status.code() == Code::corruption, status.to_string());
    BOOST_TEST(contains(status.message(), "LMDB_STATE records a clean stop"), status.to_string());
  }
}

BOOST_AUTO_TEST_CASE(missing_wal_and_lmdb_beside_a_snapshot_refuse_start_every_time) {
  TempDir temp;
  recover_ok(temp);
  std::filesystem::create_directories(node_dir(temp) + "/snapshots");
  std::ofstream(node_dir(temp) + "/snapshots/snap-00000000000000000100-00000000000000000002.snap") << "x";
  std::filesystem::remove_all(wal_dir(temp));
  std::filesystem::remove_all(lmdb_dir(temp));
  for (int run = 0; run < 2; ++run) {
    Status status = recover_status(temp);
    BOOST_TEST(status.code() == Code::corruption, status.to_string());
    BOOST_TEST(contains(status.message(), "the snapshot directory holds snapshots"), status.to_string());
  }
}

// A crash during a directory's very first start (its "open" marker written, no WAL segment
// yet) is not a lost WAL: nothing was ever acknowledged, and the node starts.
BOOST_AUTO_TEST_CASE(a_crash_during_the_first_start_is_not_a_lost_wal) {
  TempDir temp;
  require_ok(posix_env().create_dir(node_dir(temp)));
  require_ok(mark_lmdb_open(posix_env(), node_dir(temp)));
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(recovered.wal->last_index() == 0u);
}

BOOST_AUTO_TEST_CASE(checkpoint_drops_segments_lmdb_holds) {
  TempDir temp;
  RecoveryOptions options;
  options.wal.segment_bytes = 16 * 1024;
  uint64_t segments_before = 0;
  {
    Recovered recovered = recover_ok(temp, options);
    append(*recovered.wal, 1, 1000, 1);
    require_ok(recovered.wal->sync());
    index_into(*recovered.store, 1, 1000, 1);
    segments_before = recovered.wal->segment_count();
    BOOST_REQUIRE(segments_before > 3u);
    auto durable = checkpoint(*recovered.wal, *recovered.store);
    BOOST_REQUIRE_MESSAGE(durable.is_ok(), durable.status().to_string());
    BOOST_TEST(*durable == 1000u);
    BOOST_TEST(recovered.wal->segment_count() < segments_before);
    BOOST_TEST(recovered.wal->first_index() > 1u);
    BOOST_TEST(recovered.store->load_positions().value().indexed_index == 1000u);
  }
  Recovered again = recover_ok(temp, options);
  BOOST_TEST(again.wal->segment_count() < segments_before);
  BOOST_TEST(again.state.first_index == 1u, "LMDB still holds the entries the dropped segments had");
  BOOST_TEST(again.state.last_index == 1000u);
  BOOST_TEST(again.report.entries_replayed == 0u);
  require_lmdb_holds(*again.store, 1, 1000, [](uint64_t) { return 1; });
}

BOOST_AUTO_TEST_CASE(checkpoint_refuses_while_lmdb_contradicts_the_wal) {
  TempDir temp;
  WalOptions wal_options;
  wal_options.segment_bytes = 16 * 1024;
  auto wal = open_wal(temp, wal_options);
  append(*wal, 1, 100, 1);
  require_ok(wal->truncate_suffix_after(50));
  append(*wal, 51, 60, 2);
  require_ok(wal->sync());
  auto store = open_store(temp);
  index_into(*store, 1, 100, 1);  // the truncation has not reached LMDB
  uint64_t segments = wal->segment_count();
  auto durable = checkpoint(*wal, *store);
  BOOST_TEST(durable.status().code() == Code::invalid_argument, durable.status().to_string());
  BOOST_TEST(contains(durable.status().message(), "index 60"), durable.status().to_string());
  BOOST_TEST(wal->segment_count() == segments, "no segment dropped");
}

BOOST_AUTO_TEST_CASE(verify_reports_clean_torn_and_corrupt_directories) {
  TempDir temp;
  {
    Recovered recovered = recover_ok(temp);
    require_ok(recovered.wal->save_metadata(Metadata{4, 2}));
    append(*recovered.wal, 1, 80, 1);
    require_ok(recovered.wal->sync());
    index_into(*recovered.store, 1, 60, 1);  // LMDB behind, as while running
  }
  std::vector<uint8_t> lmdb_before = testing::read_file(lmdb_dir(temp) + "/data.mdb");
  auto clean = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_REQUIRE_MESSAGE(clean.is_ok(), clean.status().to_string());
  BOOST_TEST(clean->wal.torn_bytes == 0u);
  BOOST_TEST(clean->wal_last_index == 80u);
  BOOST_TEST(clean->lmdb_first_index == 1u);
  BOOST_TEST(clean->lmdb_last_index == 60u);
  BOOST_TEST(clean->lmdb_entries_checked == 60u);
  BOOST_TEST(clean->compared_index == 60u);
  BOOST_TEST((clean->metadata == std::optional<Metadata>(Metadata{4, 2})));

  WalRecordInfo last = locate(temp, 80);
  std::string segment = wal_dir(temp) + "/" + last.segment;
  uint64_t end = last.offset + wal_format::record_bytes(last.payload_bytes);
  damage(segment, end - 40, written_end(temp, last.segment), 0);  // entry 80's write torn, its seal lost
  std::vector<uint8_t> torn_bytes = testing::read_file(segment);
  auto torn = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_REQUIRE_MESSAGE(torn.is_ok(), torn.status().to_string());
  BOOST_TEST(torn->wal.torn_bytes > 0u);
  BOOST_TEST(torn->wal.torn_offset == last.offset);
  BOOST_TEST((testing::read_file(segment) == torn_bytes), "verify leaves the torn tail in place");
  BOOST_TEST((testing::read_file(lmdb_dir(temp) + "/data.mdb") == lmdb_before), "verify changes nothing in LMDB");

  WalRecordInfo tenth = locate(temp, 10);
  uint64_t payload = tenth.offset + wal_format::record_header_bytes;
  damage(wal_dir(temp) + "/" + tenth.segment, payload, payload + 1, 0x01);
  auto corrupt = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_TEST(corrupt.status().code() == Code::corruption, corrupt.status().to_string());
  BOOST_TEST(contains(corrupt.status().message(), "offset " + std::to_string(tenth.offset)));
}

BOOST_AUTO_TEST_CASE(verify_checks_lmdb_against_the_wal_up_to_the_indexed_position) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    append(*wal, 1, 40, 1);
    append(*wal, 41, 50, 2);
    require_ok(wal->sync());
  }
  {
    auto store = open_store(temp);
    index_into(*store, 1, 50, 1);  // 41..50 hold term 1 in LMDB, term 2 in the WAL
    require_ok(store->save_positions(StorePositions{40, 0}));
    require_ok(store->sync());
  }
  auto lagging = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_REQUIRE_MESSAGE(lagging.is_ok(),
                        "a mismatch above the indexed position is LMDB lagging: " << lagging.status().to_string());
  BOOST_TEST(lagging->compared_index == 40u);
  {
    auto store = open_store(temp);
    require_ok(store->save_positions(StorePositions{45, 0}));
    require_ok(store->sync());
  }
  auto contradicted = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_TEST(contradicted.status().code() == Code::corruption, contradicted.status().to_string());
  BOOST_TEST(contains(contradicted.status().message(), "index 45"), contradicted.status().to_string());
}

BOOST_AUTO_TEST_CASE(verify_reads_a_missing_lmdb_as_empty_and_checks_lmdb_terms) {
  TempDir temp;
  {
    auto wal = open_wal(temp);
    append(*wal, 1, 10, 1);
    require_ok(wal->sync());
  }
  auto wal_only = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_REQUIRE_MESSAGE(wal_only.is_ok(), wal_only.status().to_string());
  BOOST_TEST(wal_only->lmdb_last_index == 0u);
  BOOST_TEST(!posix_env().exists(lmdb_dir(temp)), "verify creates no LMDB environment");
  {
    auto store = open_store(temp);
    require_ok(store->save_entries({make_entry(1, 2), make_entry(2, 1)}));
    require_ok(store->sync());
  }
  auto decreasing = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_TEST(decreasing.status().code() == Code::corruption, decreasing.status().to_string());
  BOOST_TEST(contains(decreasing.status().message(), "term decreases"), decreasing.status().to_string());
}

BOOST_AUTO_TEST_CASE(read_only_store_reads_and_refuses_writes) {
  TempDir temp;
  index_into(*open_store(temp), 1, 5, 1);
  StoreOptions options;
  options.read_only = true;
  auto store = Store::open(lmdb_dir(temp), options);
  BOOST_REQUIRE_MESSAGE(store.is_ok(), store.status().to_string());
  BOOST_TEST((*store)->last_index().value() == 5u);
  BOOST_TEST(((*store)->load_entry(3).value() == make_entry(3, 1)));
  Status write = (*store)->save_entry(make_entry(6, 1));
  BOOST_TEST(write.code() == Code::invalid_argument, write.to_string());
  BOOST_TEST((*store)->save_metadata(Metadata{1, 1}).code() == Code::invalid_argument);
  BOOST_TEST(!Store::open(temp.file("nowhere"), options).is_ok());
  BOOST_TEST(!posix_env().exists(temp.file("nowhere")), "a read-only open creates nothing");
}


// --- LMDB trust and rebuild ------------------------------------------------------------------

// Sets KEYVAL_BOOT_ID (posix_env().boot_id()) for the life of the guard: a reboot in a test.
class BootId {
 public:
  explicit BootId(const std::string& id) { set(id); }
  ~BootId() { ::unsetenv("KEYVAL_BOOT_ID"); }
  void set(const std::string& id) { ::setenv("KEYVAL_BOOT_ID", id.c_str(), 1); }
};

Entry put_entry(uint64_t index, uint64_t term) {
  Command command;
  command.client_id = index % 5 + 1;
  command.sequence = index / 5 + 1;
  command.kind = CommandKind::put;
  command.key = "key" + std::to_string(index % 37);
  command.value = "value" + std::to_string(index);
  return Entry{index, term, encode_command(command)};
}

uint64_t hash_of(Store& store) {
  auto hashed = hash_state_machine(store);
  BOOST_REQUIRE_MESSAGE(hashed.is_ok(), hashed.status().to_string());
  return hashed->second;
}

// Applies LMDB's log entries from..to to the state machine (what the node's state machine
// actor does once Raft says they are committed).
void apply_from_log(Store& store, uint64_t from, uint64_t to) {
  KvStateMachine machine(store);
  auto entries = store.load_range(from, to);
  BOOST_REQUIRE(entries.is_ok());
  BOOST_REQUIRE_EQUAL(entries->size(), to - from + 1);
  BOOST_REQUIRE(machine.apply(entries.value()).is_ok());
}

std::string snapshots_dir(const TempDir& temp) { return node_dir(temp) + "/snapshots"; }
std::string base_snapshot_path(const TempDir& temp) {
  return SnapshotDirectory(posix_env(), snapshots_dir(temp)).path_for(150, 2);
}

// A node as the snapshot plan runs it: entries 1..200 (terms 1, then 2 from 101) in the WAL
// and LMDB, applied through 200; a snapshot at 150 is the base (the WAL's snapshot record).
// Returns the hash of the state at 200.
uint64_t build_node_with_base_snapshot(const TempDir& temp) {
  Recovered recovered = recover_ok(temp);
  Wal& wal = *recovered.wal;
  Store& store = *recovered.store;
  std::vector<Entry> entries;
  for (uint64_t index = 1; index <= 200; ++index) entries.push_back(put_entry(index, index <= 100 ? 1 : 2));
  require_ok(wal.append_batch(entries));
  require_ok(wal.sync());
  require_ok(store.save_entries(entries));
  apply_from_log(store, 1, 150);
  SnapshotDirectory directory(posix_env(), snapshots_dir(temp));
  auto taken = take_snapshot(posix_env(), store, directory, {Member{1, "a:1"}});
  BOOST_REQUIRE_MESSAGE(taken.is_ok(), taken.status().to_string());
  BOOST_REQUIRE_EQUAL(taken->header.index, 150u);
  BOOST_REQUIRE_EQUAL(taken->header.term, 2u);
  require_ok(wal.save_snapshot(SnapshotMetadata{150, 2, {Member{1, "a:1"}}}));
  require_ok(wal.sync());
  apply_from_log(store, 151, 200);
  return hash_of(store);
}

BOOST_AUTO_TEST_CASE(lmdb_opened_in_this_boot_is_trusted_after_a_process_crash) {
  TempDir temp;
  BootId boot("boot-1");
  const uint64_t before = build_node_with_base_snapshot(temp);
  Recovered recovered = recover_ok(temp);  // same boot: a process crash kept the page cache
  BOOST_TEST(!recovered.report.lmdb_rebuilt);
  BOOST_TEST(recovered.report.lmdb_rebuild_reason.empty(), recovered.report.lmdb_rebuild_reason);
  BOOST_TEST(recovered.report.snapshot_index == 150u);
  BOOST_TEST(!recovered.report.snapshot_loaded);
  BOOST_TEST(hash_of(*recovered.store) == before);
}

BOOST_AUTO_TEST_CASE(lmdb_is_rebuilt_from_the_base_snapshot_and_the_wal_after_a_boot_change) {
  TempDir temp;
  BootId boot("boot-1");
  const uint64_t before = build_node_with_base_snapshot(temp);
  boot.set("boot-2");  // a power cut: LMDB, written without sync, may be torn
  Recovered recovered = recover_ok(temp);
  const RecoveryReport& report = recovered.report;
  BOOST_TEST(report.lmdb_rebuilt);
  BOOST_TEST(contains(report.lmdb_rebuild_reason, "boot-1"), report.lmdb_rebuild_reason);
  BOOST_TEST(contains(report.lmdb_rebuild_reason, "boot-2"), report.lmdb_rebuild_reason);
  BOOST_TEST(report.snapshot_loaded);
  BOOST_TEST(report.snapshot_index == 150u);
  BOOST_TEST(report.snapshot_keys_loaded == 37u);
  BOOST_TEST(report.entries_replayed == 200u, "the WAL's whole log, into a fresh LMDB");
  BOOST_TEST(contains(report.summary(), "LMDB rebuilt"), report.summary());
  Store& store = *recovered.store;
  auto positions = store.load_positions().value();
  BOOST_TEST(positions.applied_index == 150u);
  BOOST_TEST(positions.applied_term == 2u);
  BOOST_TEST(recovered.state.last_index == 200u);
  BOOST_REQUIRE(recovered.state.snapshot.has_value());
  BOOST_TEST(recovered.state.snapshot->last_included_index == 150u);
  apply_from_log(store, 151, 200);  // the state machine catches up from the log, as the node does
  BOOST_TEST(hash_of(store) == before);
  // LMDB_STATE now names boot-2: a process crash in it keeps the rebuilt LMDB.
  recovered = Recovered{};
  Recovered again = recover_ok(temp);
  BOOST_TEST(!again.report.lmdb_rebuilt);
  BOOST_TEST(hash_of(*again.store) == before);
}

BOOST_AUTO_TEST_CASE(lmdb_full_of_garbage_after_a_boot_change_is_rebuilt) {
  TempDir temp;
  BootId boot("boot-1");
  const uint64_t before = build_node_with_base_snapshot(temp);
  const std::string data = lmdb_dir(temp) + "/data.mdb";
  testing::write_file(data, testing::make_payload(99, testing::file_size(data)));
  boot.set("boot-2");
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(recovered.report.lmdb_rebuilt);
  apply_from_log(*recovered.store, 151, 200);
  BOOST_TEST(hash_of(*recovered.store) == before);
}

BOOST_AUTO_TEST_CASE(missing_or_damaged_base_snapshot_refuses_a_rebuild_and_leaves_lmdb_alone) {
  TempDir temp;
  BootId boot("boot-1");
  build_node_with_base_snapshot(temp);
  const std::string snapshot = base_snapshot_path(temp);
  const std::vector<uint8_t> good = testing::read_file(snapshot);
  boot.set("boot-2");
  // The second pass runs in the same boot as the refused first one: a refused start must not
  // have marked the torn LMDB as opened in this boot.
  for (bool missing : {true, false}) {
    BOOST_TEST_CONTEXT((missing ? "missing" : "damaged")) {
      if (missing) {
        require_ok(posix_env().remove(snapshot));
      } else {
        std::vector<uint8_t> bad = good;
        bad[bad.size() / 2] ^= 1;
        testing::write_file(snapshot, bad);
      }
      const uint64_t lmdb_bytes = testing::file_size(lmdb_dir(temp) + "/data.mdb");
      Status status = recover_status(temp);
      BOOST_TEST((status.code() == Code::corruption), status.to_string());
      BOOST_TEST(contains(status.message(), snapshot), status.message());
      BOOST_TEST(contains(status.message(), "restore this node from a peer or a backup"), status.message());
      BOOST_TEST(testing::file_size(lmdb_dir(temp) + "/data.mdb") == lmdb_bytes, "LMDB is left for a post-mortem");
    }
  }
}

// Simulator seed 6632: a newer snapshot (200) taken, its WAL record durable, the old base file
// (150) released; then a damaged WAL record before that snapshot record, and a power cut. The
// salvage keeps the WAL up to the damage, so the surviving record names the released file,
// and LMDB, distrusted, cannot give the newer record. The newer file beside it is adopted.
BOOST_AUTO_TEST_CASE(a_salvage_that_lost_the_newer_snapshot_record_adopts_the_newer_snapshot_file) {
  TempDir temp;
  BootId boot("boot-1");
  const uint64_t before = build_node_with_base_snapshot(temp);
  {
    Recovered recovered = recover_ok(temp);  // same boot: LMDB trusted
    // A term, and entries past the applied index, before the newer snapshot's record: the
    // damage lands among them (a salvage needs the metadata before the damage).
    require_ok(recovered.wal->save_metadata(Metadata{2, 1}));
    std::vector<Entry> entries;
    for (uint64_t index = 201; index <= 210; ++index) entries.push_back(put_entry(index, 2));
    require_ok(recovered.wal->append_batch(entries));
    require_ok(recovered.wal->sync());
    require_ok(recovered.store->save_entries(entries));
    SnapshotDirectory directory(posix_env(), snapshots_dir(temp));
    auto taken = take_snapshot(posix_env(), *recovered.store, directory, {Member{1, "a:1"}});
    BOOST_REQUIRE_MESSAGE(taken.is_ok(), taken.status().to_string());
    BOOST_REQUIRE_EQUAL(taken->header.index, 200u);
    require_ok(recovered.wal->save_snapshot(SnapshotMetadata{200, 2, {Member{1, "a:1"}}}));
    require_ok(recovered.wal->sync());
    require_ok(directory.retain_newest(1));  // the old base is released once the newer record is durable
  }
  BOOST_REQUIRE(!posix_env().exists(base_snapshot_path(temp)));
  WalRecordInfo record = locate(temp, 205);
  const uint64_t payload = record.offset + wal_format::record_header_bytes;
  damage(wal_dir(temp) + "/" + record.segment, payload + 5, payload + 6, 0x10);
  boot.set("boot-2");  // a power cut: LMDB distrusted
  Recovered recovered = recover_ok(temp, repairing_options());
  const RecoveryReport& report = recovered.report;
  BOOST_TEST(report.wal_damage.damaged);
  BOOST_TEST(report.lmdb_rebuilt);
  BOOST_TEST(contains(report.snapshot_adopted, "base snapshot 150"), report.snapshot_adopted);
  BOOST_TEST(contains(report.snapshot_adopted, "newer complete snapshot 200"), report.snapshot_adopted);
  BOOST_TEST(contains(report.summary(), report.snapshot_adopted), report.summary());
  BOOST_TEST(report.snapshot_loaded);
  BOOST_TEST(report.snapshot_index == 200u);
  BOOST_TEST(report.repairing, "entries after the damage were lost: the node repairs");
  BOOST_REQUIRE(recovered.state.snapshot.has_value());
  BOOST_TEST(recovered.state.snapshot->last_included_index == 200u);
  BOOST_TEST(recovered.wal->snapshot()->last_included_index == 200u, "the record is in the WAL again");
  BOOST_TEST(hash_of(*recovered.store) == before, "the state at 200, from the adopted file");
  // The next start, in the same boot, finds everything in place.
  recovered = Recovered{};
  Recovered again = recover_ok(temp, repairing_options());
  BOOST_TEST(again.report.snapshot_adopted.empty(), again.report.snapshot_adopted);
  BOOST_TEST(hash_of(*again.store) == before);
}

BOOST_AUTO_TEST_CASE(trusted_lmdb_behind_the_base_snapshot_gets_it_loaded) {
  TempDir temp;
  BootId boot("boot-1");
  build_node_with_base_snapshot(temp);
  // A leader's snapshot at 300 (term 3), received and made the base (the WAL record is the
  // commit point); the crash came before the state machine replaced its state.
  uint64_t leader_hash = 0;
  {
    TempDir leader_temp;
    auto leader = Store::open(leader_temp.file("lmdb"), StoreOptions{SyncMode::relaxed}).value();
    std::vector<Entry> entries;
    for (uint64_t index = 1; index <= 300; ++index) entries.push_back(put_entry(index, index <= 250 ? 2 : 3));
    require_ok(leader->save_entries(entries));
    apply_from_log(*leader, 1, 300);
    SnapshotDirectory directory(posix_env(), snapshots_dir(temp));
    auto taken = take_snapshot(posix_env(), *leader, directory, {});
    BOOST_REQUIRE(taken.is_ok());
    BOOST_REQUIRE_EQUAL(taken->header.index, 300u);
    leader_hash = hash_of(*leader);
    auto wal = open_wal(temp);
    require_ok(wal->save_snapshot(SnapshotMetadata{300, 3, {}}));
    require_ok(wal->sync());
  }
  Recovered recovered = recover_ok(temp);  // same boot: LMDB is trusted, but behind the snapshot
  BOOST_TEST(!recovered.report.lmdb_rebuilt);
  BOOST_TEST(recovered.report.snapshot_loaded);
  BOOST_TEST(contains(recovered.report.summary(), "snapshot at index 300 loaded"), recovered.report.summary());
  BOOST_TEST(recovered.store->load_positions().value().applied_index == 300u);
  BOOST_TEST(hash_of(*recovered.store) == leader_hash);
  BOOST_TEST(recovered.state.first_index == 301u, "the snapshot reset the log");
}

BOOST_AUTO_TEST_CASE(lmdb_closed_cleanly_is_trusted_across_a_reboot) {
  TempDir temp;
  BootId boot("boot-1");
  const uint64_t before = build_node_with_base_snapshot(temp);
  require_ok(mark_lmdb_clean(posix_env(), node_dir(temp)));  // the indexer's last act at a clean stop
  boot.set("boot-2");
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(!recovered.report.lmdb_rebuilt);
  BOOST_TEST(recovered.report.lmdb_rebuild_reason.empty());
  BOOST_TEST(hash_of(*recovered.store) == before, "nothing to catch up: LMDB kept everything");
  BOOST_TEST(contains(testing::read_text(node_dir(temp) + "/LMDB_STATE"), "open boot-2"));
}

BOOST_AUTO_TEST_CASE(unknown_boot_id_never_counts_as_the_same_boot) {
  TempDir temp;
  BootId boot("");  // set but empty: the boot is unknown
  const uint64_t before = build_node_with_base_snapshot(temp);
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(recovered.report.lmdb_rebuilt, "it cannot tell a process crash from a power cut");
  BOOST_TEST(contains(recovered.report.lmdb_rebuild_reason, "(unknown)"), recovered.report.lmdb_rebuild_reason);
  apply_from_log(*recovered.store, 151, 200);
  BOOST_TEST(hash_of(*recovered.store) == before);
}

BOOST_AUTO_TEST_CASE(trust_rule_decides_from_the_marker_the_boot_and_the_wal) {
  auto decide = [](LmdbMarkerKind kind, const std::string& recorded, const std::string& now, bool wal) {
    return decide_lmdb_trust(LmdbMarker{kind, recorded, ""}, now, wal).trusted;
  };
  BOOST_TEST(decide(LmdbMarkerKind::clean, "a", "b", true));
  BOOST_TEST(decide(LmdbMarkerKind::open, "a", "a", true));
  BOOST_TEST(!decide(LmdbMarkerKind::open, "a", "b", true));
  BOOST_TEST(!decide(LmdbMarkerKind::open, "", "", true));
  BOOST_TEST(!decide(LmdbMarkerKind::open, "a", "", true));
  BOOST_TEST(!decide(LmdbMarkerKind::unreadable, "", "a", true));
  BOOST_TEST(!decide(LmdbMarkerKind::discarding, "a", "a", true), "a state machine rebuild was under way");
  BOOST_TEST(decide(LmdbMarkerKind::missing, "", "a", false), "a brand-new directory");
  BOOST_TEST(decide(LmdbMarkerKind::missing, "", "a", true), "a directory of an older build");
}

BOOST_AUTO_TEST_CASE(without_a_base_snapshot_a_wal_from_index_one_rebuilds_lmdb_alone) {
  TempDir temp;
  BootId boot("boot-1");
  {
    Recovered recovered = recover_ok(temp);
    append(*recovered.wal, 1, 80, 1);
    require_ok(recovered.wal->sync());
  }
  boot.set("boot-2");
  Recovered recovered = recover_ok(temp);
  BOOST_TEST(recovered.report.lmdb_rebuilt);
  BOOST_TEST(!recovered.report.snapshot_loaded);
  BOOST_TEST(recovered.report.entries_replayed == 80u);
  require_lmdb_holds(*recovered.store, 1, 80, [](uint64_t) { return 1; });
}

BOOST_AUTO_TEST_CASE(lmdb_holding_the_only_copy_of_dropped_entries_is_kept_and_the_report_says_why) {
  TempDir temp;
  BootId boot("boot-1");
  RecoveryOptions options;
  options.wal.segment_bytes = 16 * 1024;
  {
    Recovered recovered = recover_ok(temp, options);
    append(*recovered.wal, 1, 400, 1);
    require_ok(recovered.wal->sync());
    index_into(*recovered.store, 1, 400, 1);
    auto durable = checkpoint(*recovered.wal, *recovered.store);  // the pre-snapshot rule: drops segments
    BOOST_REQUIRE(durable.is_ok());
    BOOST_REQUIRE(recovered.wal->first_index() > 1u);
  }
  boot.set("boot-2");
  Recovered recovered = recover_ok(temp, options);
  BOOST_TEST(!recovered.report.lmdb_rebuilt);
  BOOST_TEST(contains(recovered.report.lmdb_rebuild_reason, "not rebuilt"), recovered.report.lmdb_rebuild_reason);
  BOOST_TEST(recovered.state.first_index == 1u);
  BOOST_TEST(recovered.state.last_index == 400u);
}

BOOST_AUTO_TEST_CASE(recovery_removes_stale_snapshot_temporaries) {
  TempDir temp;
  SnapshotDirectory directory(posix_env(), snapshots_dir(temp));
  require_ok(directory.create());
  const std::string stale = directory.temp_path_for(10, 1, "receive");
  testing::write_file(stale, {1, 2, 3});
  recover_ok(temp);
  BOOST_TEST(!posix_env().exists(stale));
}

BOOST_AUTO_TEST_CASE(verify_reads_and_checks_the_base_snapshot_file) {
  TempDir temp;
  BootId boot("boot-1");
  build_node_with_base_snapshot(temp);
  auto report = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_REQUIRE_MESSAGE(report.is_ok(), report.status().to_string());
  BOOST_REQUIRE(report->snapshot_file.has_value());
  BOOST_TEST(report->snapshot_file->keys == 37u);
  const std::string snapshot = base_snapshot_path(temp);
  std::vector<uint8_t> bytes = testing::read_file(snapshot);
  bytes[bytes.size() / 2] ^= 1;
  testing::write_file(snapshot, bytes);
  auto damaged = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_TEST((damaged.status().code() == Code::corruption), damaged.status().to_string());
  BOOST_TEST(contains(damaged.status().message(), snapshot));
}

// --- damage below the applied index: the state machine rebuilt under the log -----------------

// A node whose base snapshot (150) was recorded in the WAL before its last entries: entries
// 1..200 (terms 1, then 2 from 101) in the WAL and LMDB, the snapshot record after entry 160,
// the state machine applied through 200. Returns the hash of the state at 150 (the snapshot's).
uint64_t build_node_with_snapshot_inside_the_wal(const TempDir& temp) {
  Recovered recovered = recover_ok(temp);
  Wal& wal = *recovered.wal;
  Store& store = *recovered.store;
  std::vector<Entry> entries;
  for (uint64_t index = 1; index <= 200; ++index) entries.push_back(put_entry(index, index <= 100 ? 1 : 2));
  require_ok(wal.save_metadata(Metadata{2, 1}));
  const std::vector<Entry> first(entries.begin(), entries.begin() + 160);
  const std::vector<Entry> rest(entries.begin() + 160, entries.end());
  require_ok(wal.append_batch(first));
  require_ok(wal.sync());
  require_ok(store.save_entries(first));
  apply_from_log(store, 1, 150);
  const uint64_t at_snapshot = hash_of(store);
  SnapshotDirectory directory(posix_env(), snapshots_dir(temp));
  auto taken = take_snapshot(posix_env(), store, directory, {Member{1, "a:1"}});
  BOOST_REQUIRE_MESSAGE(taken.is_ok(), taken.status().to_string());
  BOOST_REQUIRE_EQUAL(taken->header.index, 150u);
  require_ok(wal.save_snapshot(SnapshotMetadata{150, 2, {Member{1, "a:1"}}}));
  require_ok(wal.append_batch(rest));
  require_ok(wal.sync());
  require_ok(store.save_entries(rest));
  apply_from_log(store, 151, 200);
  require_ok(store.sync());
  BOOST_REQUIRE_EQUAL(store.load_positions().value().applied_index, 200u);
  return at_snapshot;
}

// Damage below the applied index that LMDB's log cannot refill: the WAL's record of entry 180
// flipped (entries after it follow: salvaged, the WAL ends at 179), and LMDB's entry 170
// unreadable too (its log then ends at 169), while the state machine applied through 200.
void damage_below_the_applied_index(const TempDir& temp) {
  WalRecordInfo record = locate(temp, 180);
  uint64_t payload = record.offset + wal_format::record_header_bytes;
  damage(wal_dir(temp) + "/" + record.segment, payload + 5, payload + 6, 0x10);
  damage_lmdb_entry(temp, 170);
}

// What a rebuilt node must hold: the WAL's log 1..179 in LMDB, the state machine exactly the
// snapshot's (nothing applied past 150), the repairing state durable in the WAL.
void require_rebuilt_under_the_log(const Recovered& recovered, uint64_t at_snapshot) {
  Store& store = *recovered.store;
  const StorePositions positions = store.load_positions().value();
  BOOST_TEST(positions.applied_index == 150u);
  BOOST_TEST(positions.applied_term == 2u);
  BOOST_TEST(hash_of(store) == at_snapshot, "the state machine holds the snapshot's contents and nothing after");
  std::vector<Entry> log = lmdb_log(store);
  BOOST_REQUIRE_EQUAL(log.size(), 179u);
  for (const Entry& entry : log) {
    BOOST_REQUIRE_MESSAGE(entry == put_entry(entry.index, entry.index <= 100 ? 1 : 2), "LMDB entry " << entry.index);
  }
  BOOST_TEST(recovered.state.last_index == 179u);
  BOOST_TEST(recovered.state.last_term == 2u);
  BOOST_REQUIRE(recovered.state.snapshot.has_value());
  BOOST_TEST(recovered.state.snapshot->last_included_index == 150u);
  BOOST_TEST(recovered.state.metadata.repairing);
  BOOST_TEST(recovered.state.metadata.repair_last_index >= 200u, "it held at least 200 before the damage");
  BOOST_TEST(recovered.report.repairing);
}

BOOST_AUTO_TEST_CASE(wal_damage_below_the_applied_index_without_lmdb_entries_rebuilds_the_state_machine) {
  TempDir temp;
  BootId boot("boot-1");
  const uint64_t at_snapshot = build_node_with_snapshot_inside_the_wal(temp);
  damage_below_the_applied_index(temp);
  Recovered recovered = recover_ok(temp, repairing_options());
  const RecoveryReport& report = recovered.report;
  BOOST_TEST(report.wal_damage.damaged);
  BOOST_TEST(report.lmdb_damaged_index == 170u);
  BOOST_TEST(report.entries_refilled == 0u);
  BOOST_TEST(!report.lmdb_rebuilt, "LMDB was trusted: only the damage made it go");
  BOOST_TEST(report.state_machine_rebuilt);
  BOOST_TEST(report.applied_index_before == 200u);
  BOOST_TEST(report.snapshot_index == 150u);
  BOOST_TEST(report.snapshot_loaded);
  BOOST_TEST(report.snapshot_keys_loaded == 37u);
  BOOST_TEST(report.entries_replayed == 179u, "the WAL's whole log, into the fresh LMDB");
  BOOST_TEST(contains(report.summary(), "state machine rebuilt from snapshot 150 (37 keys)"), report.summary());
  BOOST_TEST(contains(report.summary(), "applied index went back from 200 to 150"), report.summary());
  BOOST_TEST(contains(report.summary(), "repairing"), report.summary());
  require_rebuilt_under_the_log(recovered, at_snapshot);
  // The leader's entries come back and are applied again, as the node does once they commit.
  apply_from_log(*recovered.store, 151, 179);
  BOOST_TEST(recovered.store->load_positions().value().applied_index == 179u);
  // A restart (a process crash) keeps all of it, repairing still, and rebuilds nothing again.
  recovered = Recovered{};
  Recovered again = recover_ok(temp, repairing_options());
  BOOST_TEST(!again.report.state_machine_rebuilt);
  BOOST_TEST(!again.report.lmdb_rebuilt);
  BOOST_TEST(again.state.metadata.repairing);
  BOOST_TEST(again.store->load_positions().value().applied_index == 179u);
  again = Recovered{};
  auto verified = verify_data_directory(posix_env(), node_dir(temp));
  BOOST_REQUIRE_MESSAGE(verified.is_ok(), verified.status().to_string());
  BOOST_TEST(verified->wal_last_index == 179u);
}

// Passes every call to posix_env() but fails (Code::unsupported, which nothing salvages or
// retries) the `crash_at`-th call that changes a file or a name, or opens a snapshot file: the
// recovery stops there, with what it did before in place, as a process killed at that call.
class CrashingEnv final : public Env {
 public:
  CrashingEnv(uint64_t crash_at, std::string snapshot_directory)
      : crash_at_(crash_at), snapshot_directory_(std::move(snapshot_directory)) {}
  bool crashed() const { return crashed_; }

  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override {
    const bool snapshot = path.rfind(snapshot_directory_, 0) == 0;
    if (mode != OpenMode::read_only || snapshot) KV_RETURN_IF_ERROR(step("open " + path));
    return posix_env().open_file(path, mode);
  }
  Status sync_dir(const std::string& directory) override {
    KV_RETURN_IF_ERROR(step("sync_dir " + directory));
    return posix_env().sync_dir(directory);
  }
  Status rename(const std::string& from, const std::string& to) override {
    KV_RETURN_IF_ERROR(step("rename " + from));
    return posix_env().rename(from, to);
  }
  Status remove(const std::string& path) override {
    KV_RETURN_IF_ERROR(step("remove " + path));
    return posix_env().remove(path);
  }
  Status create_dir(const std::string& directory) override {
    KV_RETURN_IF_ERROR(step("create_dir " + directory));
    return posix_env().create_dir(directory);
  }
  Result<std::vector<std::string>> list(const std::string& directory) override { return posix_env().list(directory); }
  bool exists(const std::string& path) override { return posix_env().exists(path); }
  Result<std::unique_ptr<FileLock>> lock(const std::string& path) override { return posix_env().lock(path); }
  std::string boot_id() override { return posix_env().boot_id(); }

 private:
  Status step(const std::string& call) {
    if (++calls_ != crash_at_) return Status::ok();
    crashed_ = true;
    return Status::unsupported("simulated crash at call " + std::to_string(calls_) + ": " + call);
  }
  uint64_t crash_at_;
  std::string snapshot_directory_;
  uint64_t calls_ = 0;
  bool crashed_ = false;
};

// A crash at any point of the repair (salvage, repairing state, LMDB discarded, snapshot
// loaded, log indexed) leaves a directory the next start repairs the same way.
BOOST_AUTO_TEST_CASE(a_crash_anywhere_in_the_state_machine_rebuild_is_repaired_the_same_way_at_restart) {
  BootId boot("boot-1");
  uint64_t crash_points = 0, restarts_rebuilding_under_the_log = 0, restarts_rebuilding_untrusted_lmdb = 0;
  bool crashed_while_discarding = false;
  for (uint64_t crash_at = 1;; ++crash_at) {
    TempDir temp;
    const uint64_t at_snapshot = build_node_with_snapshot_inside_the_wal(temp);
    damage_below_the_applied_index(temp);
    std::string crash;
    {
      CrashingEnv crashing(crash_at, snapshots_dir(temp));
      auto first = recover(crashing, node_dir(temp), repairing_options());
      if (!crashing.crashed()) {
        BOOST_REQUIRE_MESSAGE(first.is_ok(), first.status().to_string());
        require_rebuilt_under_the_log(*first, at_snapshot);
        break;
      }
      BOOST_REQUIRE(!first.is_ok());
      crash = first.status().to_string();
    }  // the process is gone: files closed, nothing more written
    BOOST_TEST_CONTEXT("crash at call " << crash_at << ": " << crash) {
      ++crash_points;
      auto marker = read_lmdb_marker(posix_env(), node_dir(temp));
      if (marker.is_ok() && marker->kind == LmdbMarkerKind::discarding) crashed_while_discarding = true;
      Recovered recovered = recover_ok(temp, repairing_options());
      require_rebuilt_under_the_log(recovered, at_snapshot);
      // Rebuilt under the log again, or (after the discard marker) as an untrusted LMDB, or
      // nothing left to rebuild (the crash came after the fresh LMDB was marked open).
      if (recovered.report.state_machine_rebuilt) ++restarts_rebuilding_under_the_log;
      if (recovered.report.lmdb_rebuilt) ++restarts_rebuilding_untrusted_lmdb;
    }
  }
  BOOST_TEST_MESSAGE(crash_points << " crash points; the restart rebuilt under the log after "
                                   << restarts_rebuilding_under_the_log << ", an untrusted LMDB after "
                                   << restarts_rebuilding_untrusted_lmdb);
  BOOST_TEST(crash_points >= 5u);
  BOOST_TEST(restarts_rebuilding_under_the_log > 0u);
  BOOST_TEST(restarts_rebuilding_untrusted_lmdb > 0u);
  BOOST_TEST(crashed_while_discarding, "some crash fell between discarding LMDB and loading the snapshot");
}

// The remaining refusal: the base snapshot the rebuild needs is missing or damaged. Refused at
// every start, naming the file, with LMDB left as it was; with the file back it repairs.
BOOST_AUTO_TEST_CASE(damage_below_the_applied_index_without_a_usable_base_snapshot_is_refused_naming_the_file) {
  BootId boot("boot-1");
  for (bool missing : {true, false}) {
    BOOST_TEST_CONTEXT((missing ? "missing" : "damaged")) {
      TempDir temp;
      const uint64_t at_snapshot = build_node_with_snapshot_inside_the_wal(temp);
      damage_below_the_applied_index(temp);
      const std::string snapshot = base_snapshot_path(temp);
      const std::vector<uint8_t> good = testing::read_file(snapshot);
      if (missing) {
        require_ok(posix_env().remove(snapshot));
      } else {
        std::vector<uint8_t> bad = good;
        bad[bad.size() / 2] ^= 1;
        testing::write_file(snapshot, bad);
      }
      const uint64_t lmdb_bytes = testing::file_size(lmdb_dir(temp) + "/data.mdb");
      for (int start = 0; start < 2; ++start) {  // the second start finds the WAL already salvaged
        Status status = recover_status(temp, repairing_options());
        BOOST_TEST((status.code() == Code::corruption), status.to_string());
        BOOST_TEST(contains(status.message(), snapshot), status.message());
        BOOST_TEST(contains(status.message(), "applied through index 200"), status.message());
        BOOST_TEST(contains(status.message(), "cannot be rebuilt under the log"), status.message());
        BOOST_TEST(contains(status.message(), "not repaired: replace this node"), status.message());
        BOOST_TEST(testing::file_size(lmdb_dir(temp) + "/data.mdb") == lmdb_bytes, "LMDB is left as it was");
        auto marker = read_lmdb_marker(posix_env(), node_dir(temp));
        BOOST_TEST((marker.is_ok() && marker->kind == LmdbMarkerKind::open));
      }
      testing::write_file(snapshot, good);  // an operator puts the file back
      Recovered recovered = recover_ok(temp, repairing_options());
      BOOST_TEST(recovered.report.state_machine_rebuilt);
      require_rebuilt_under_the_log(recovered, at_snapshot);
    }
  }
}

// Without any snapshot (a WAL from index 1) the state machine goes back to empty: applied 0.
BOOST_AUTO_TEST_CASE(without_a_base_snapshot_the_state_machine_is_rebuilt_from_empty) {
  TempDir temp;
  BootId boot("boot-1");
  {
    Recovered recovered = recover_ok(temp);
    std::vector<Entry> entries;
    for (uint64_t index = 1; index <= 60; ++index) entries.push_back(put_entry(index, 1));
    require_ok(recovered.wal->save_metadata(Metadata{1, 0}));
    require_ok(recovered.wal->append_batch(entries));
    require_ok(recovered.wal->sync());
    require_ok(recovered.store->save_entries(entries));
    apply_from_log(*recovered.store, 1, 60);
    require_ok(recovered.store->sync());
  }
  WalRecordInfo record = locate(temp, 40);
  const uint64_t payload = record.offset + wal_format::record_header_bytes;
  damage(wal_dir(temp) + "/" + record.segment, payload + 2, payload + 3, 0x04);
  damage_lmdb_entry(temp, 30);
  Recovered recovered = recover_ok(temp, repairing_options());
  BOOST_TEST(recovered.report.state_machine_rebuilt);
  BOOST_TEST(!recovered.report.snapshot_loaded);
  BOOST_TEST(contains(recovered.report.summary(), "applied index went back from 60 to 0"), recovered.report.summary());
  BOOST_TEST(recovered.store->load_positions().value().applied_index == 0u);
  TempDir empty_temp;
  auto empty = Store::open(empty_temp.file("lmdb"), StoreOptions{SyncMode::relaxed});
  BOOST_REQUIRE(empty.is_ok());
  BOOST_TEST(hash_of(*recovered.store) == hash_of(**empty), "nothing applied: an empty state machine");
  BOOST_TEST(recovered.state.last_index == 39u);
  BOOST_TEST(recovered.state.metadata.repairing);
  std::vector<Entry> log = lmdb_log(*recovered.store);
  BOOST_REQUIRE_EQUAL(log.size(), 39u);
  for (const Entry& entry : log) BOOST_REQUIRE_MESSAGE(entry == put_entry(entry.index, 1), "LMDB entry " << entry.index);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
