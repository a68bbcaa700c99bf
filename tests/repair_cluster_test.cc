// Goal: a node whose WAL holds a flipped byte in a committed record repairs from its peers
// (docs/PERSISTENCE.md, "Corruption repaired from peers") instead of refusing to start.
// Method: three real `keyval node` processes on 127.0.0.1; one is killed, a byte of a committed
// WAL record in its data directory flipped, and it is restarted under a new boot id (so its
// LMDB, which also holds the entry, is rebuilt from the WAL: the WAL's damage is what counts).
// Its log, a leadership transfer to it and reads through it, and `keyval wal verify` on the copy
// it kept aside are checked. A second case damages its LMDB log too, so that nothing local holds
// the entries its state machine applied past the damage: it rebuilds the state machine under
// the log (back to an empty state: no snapshot yet) and applies everything again.
#define BOOST_TEST_MODULE repair_cluster_test
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <vector>

#include "client/kv_client.h"
#include "apps/local_cluster.h"
#include "storage/env.h"
#include "storage/wal.h"
#include "storage/wal_format.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/run_keyval.h"
#include <lmdb.h>

namespace keyval {
namespace {

using testing::contains;
using testing::load_options;
using testing::read_text;
using testing::run_keyval;

// The WAL records of log entries in `data_directory`, in order.
std::vector<WalRecordInfo> log_records(const std::string& data_directory) {
  std::vector<WalRecordInfo> records;
  WalOptions read_only;
  read_only.read_only = true;
  auto wal = Wal::open(posix_env(), data_directory + "/wal", read_only, [&](const WalRecordInfo& record) {
    if (record.type == EntryType::log && record.payload_bytes > 0) records.push_back(record);
  });
  BOOST_REQUIRE_MESSAGE(wal.is_ok(), wal.status().to_string());
  return records;
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  BOOST_REQUIRE(file.good());
  file.seekg(static_cast<std::streamoff>(offset));
  char byte = 0;
  file.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x40);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(&byte, 1);
  file.flush();
  BOOST_REQUIRE(file.good());
}

// Waits up to timeout_ms for a line holding `needle` in node id's log after byte `from`.
std::string wait_for_line(const LocalCluster& cluster, uint64_t id, const std::string& needle, uint64_t from,
                          uint64_t timeout_ms) {
  const uint64_t deadline = steady_now_ms() + timeout_ms;
  std::string line;
  while ((line = cluster.last_log_line(id, needle, from)).empty() && steady_now_ms() < deadline) ::usleep(20000);
  return line;
}

// Flips a byte of the value LMDB's `log` database holds for `index` in `lmdb_directory`, below
// the store (a bad sector): the entry then fails its checksum. The node must be stopped.
void damage_lmdb_entry(const std::string& lmdb_directory, uint64_t index) {
  MDB_env* env = nullptr;
  BOOST_REQUIRE(mdb_env_create(&env) == 0);
  BOOST_REQUIRE(mdb_env_set_maxdbs(env, 16) == 0);
  BOOST_REQUIRE(mdb_env_set_mapsize(env, 1ull << 30) == 0);
  BOOST_REQUIRE(mdb_env_open(env, lmdb_directory.c_str(), MDB_NOTLS, 0644) == 0);
  MDB_txn* txn = nullptr;
  BOOST_REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi log;
  BOOST_REQUIRE(mdb_dbi_open(txn, "log", 0, &log) == 0);
  uint8_t key_bytes[8];
  for (int i = 0; i < 8; ++i) key_bytes[i] = static_cast<uint8_t>(index >> (56 - 8 * i));  // big-endian
  MDB_val key{sizeof key_bytes, key_bytes};
  MDB_val value;
  BOOST_REQUIRE_MESSAGE(mdb_get(txn, log, &key, &value) == 0, "LMDB holds no entry " << index);
  std::vector<uint8_t> bytes(static_cast<uint8_t*>(value.mv_data), static_cast<uint8_t*>(value.mv_data) + value.mv_size);
  bytes[bytes.size() - 8] ^= 0x20;  // inside the payload
  MDB_val changed{bytes.size(), bytes.data()};
  BOOST_REQUIRE(mdb_put(txn, log, &key, &changed, 0) == 0);
  BOOST_REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_sync(env, 1);
  mdb_env_close(env);
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(flipped_byte_in_a_committed_wal_record_is_repaired_from_the_peers,
                        testing::ClusterFixture) {
  const uint64_t first_leader = leader();
  const uint64_t victim = first_leader % 3 + 1;
  KvClient client(cluster->client_endpoints(), load_options());
  const int keys = 300;
  auto value_of = [](int i) { return "value-" + std::to_string(i) + std::string(64, 'x'); };
  for (int i = 0; i < keys; ++i) {
    auto put = client.put("key-" + std::to_string(i), value_of(i));
    BOOST_REQUIRE_MESSAGE(put.is_ok() && put->status == ClientStatus::ok, "put " << i << "\n" << logs());
  }
  expect_caught_up();

  cluster->signal(victim, SIGKILL);
  const std::string data = cluster->data_directory(victim);
  const std::vector<WalRecordInfo> records = log_records(data);
  BOOST_REQUIRE(records.size() > 100u);
  const WalRecordInfo& damaged = records[records.size() / 2];  // committed: every put was acknowledged
  flip_byte(data + "/wal/" + damaged.segment, damaged.offset + wal_format::record_header_bytes + 10);
  BOOST_TEST_MESSAGE("flipped a byte of entry " << damaged.index << " in " << damaged.segment << " at offset "
                                                << damaged.offset << " of node " << victim);

  // Restarted as after a power cut: LMDB is distrusted and rebuilt from the WAL alone.
  const uint64_t from = cluster->log_bytes(victim);
  ::setenv("KEYVAL_BOOT_ID", "repair-cluster-test-new-boot", 1);
  Status started = cluster->start(victim);
  ::unsetenv("KEYVAL_BOOT_ID");
  BOOST_REQUIRE_MESSAGE(started.is_ok(), started.to_string());
  const std::string salvaged = wait_for_line(*cluster, victim, "WAL damaged at segment", from, 10000);
  BOOST_REQUIRE_MESSAGE(!salvaged.empty(), "no salvage logged\n" << logs());
  BOOST_TEST(contains(salvaged, damaged.segment), salvaged);
  BOOST_TEST(contains(salvaged, "offset " + std::to_string(damaged.offset)), salvaged);
  BOOST_TEST(contains(salvaged, data + "/damaged-1"), salvaged);
  BOOST_TEST(contains(salvaged, "repairing"), salvaged);
  const std::string repaired = wait_for_line(*cluster, victim, "repaired from leader", from, 10000);
  BOOST_TEST_REQUIRE(!repaired.empty(), "the node never left repair\n" << logs());
  expect_caught_up();

  // Every acknowledged key, served by the repaired node as leader from its own state.
  auto moved = client.leader_transfer(victim);
  BOOST_REQUIRE_MESSAGE(moved.is_ok(), moved.status().message() + "\n" + logs());
  BOOST_REQUIRE(leader() == victim);
  for (int i = 0; i < keys; ++i) {
    auto got = client.get("key-" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(got.is_ok() && got->status == ClientStatus::ok, "get " << i << "\n" << logs());
    BOOST_TEST(got->node_id == victim);
    BOOST_TEST(got->found);
    BOOST_TEST(got->value == value_of(i));
  }

  // The copy kept aside still shows the damage where it was.
  auto verify = run_keyval("wal verify " + data + "/damaged-1");
  BOOST_TEST(verify.exit_code == 3, verify.output);
  BOOST_TEST(contains(verify.output, damaged.segment), verify.output);
  BOOST_TEST(contains(verify.output, "offset " + std::to_string(damaged.offset)), verify.output);
  for (const auto& [id, exit] : cluster->stop_all(10000)) {
    BOOST_TEST((exit.exited && exit.code == 0), "node " << id << ": " << exit.describe() << "\n" << logs());
  }
}


BOOST_FIXTURE_TEST_CASE(damage_below_the_applied_index_that_lmdb_cannot_refill_rebuilds_the_state_machine,
                        testing::ClusterFixture) {
  const uint64_t first_leader = leader();
  const uint64_t victim = first_leader % 3 + 1;
  KvClient client(cluster->client_endpoints(), load_options());
  const int keys = 300;
  auto value_of = [](int i) { return "value-" + std::to_string(i) + std::string(64, 'y'); };
  for (int i = 0; i < keys; ++i) {
    auto put = client.put("key-" + std::to_string(i), value_of(i));
    BOOST_REQUIRE_MESSAGE(put.is_ok() && put->status == ClientStatus::ok, "put " << i << "\n" << logs());
  }
  expect_caught_up();  // the victim applied every put: its state machine is past any damage below

  // Killed (the same boot: LMDB is trusted at the restart), then a WAL record in the middle of
  // its log flipped, and LMDB's copy of the entry after it too: the salvaged WAL ends below the
  // applied index and LMDB's readable log ends at the damaged WAL record, so neither refills it.
  cluster->signal(victim, SIGKILL);
  const std::string data = cluster->data_directory(victim);
  const std::vector<WalRecordInfo> records = log_records(data);
  BOOST_REQUIRE(records.size() > 100u);
  const WalRecordInfo& damaged = records[records.size() / 2];
  flip_byte(data + "/wal/" + damaged.segment, damaged.offset + wal_format::record_header_bytes + 10);
  damage_lmdb_entry(data + "/lmdb", damaged.index + 1);
  BOOST_TEST_MESSAGE("flipped a byte of entry " << damaged.index << " in the WAL and of entry " << damaged.index + 1
                                                << " in LMDB, node " << victim);

  const uint64_t from = cluster->log_bytes(victim);
  Status started = cluster->start(victim);
  BOOST_REQUIRE_MESSAGE(started.is_ok(), started.to_string());
  const std::string rebuilt = wait_for_line(*cluster, victim, "state machine rebuilt", from, 10000);
  BOOST_REQUIRE_MESSAGE(!rebuilt.empty(), "no rebuild logged\n" << logs());
  BOOST_TEST_MESSAGE(rebuilt);
  BOOST_TEST(contains(rebuilt, "WAL damaged at segment " + damaged.segment), rebuilt);
  BOOST_TEST(contains(rebuilt, "LMDB log entry " + std::to_string(damaged.index + 1) + " unreadable"), rebuilt);
  BOOST_TEST(contains(rebuilt, "from an empty state (no base snapshot)"), rebuilt);
  BOOST_TEST(contains(rebuilt, "applied index went back from"), rebuilt);
  BOOST_TEST(contains(rebuilt, "repairing"), rebuilt);
  const std::string repaired = wait_for_line(*cluster, victim, "repaired from leader", from, 10000);
  BOOST_TEST_REQUIRE(!repaired.empty(), "the node never left repair\n" << logs());
  expect_caught_up();

  // Every acknowledged key, served by the rebuilt node as leader from its own state machine.
  auto moved = client.leader_transfer(victim);
  BOOST_REQUIRE_MESSAGE(moved.is_ok(), moved.status().message() + "\n" + logs());
  BOOST_REQUIRE(leader() == victim);
  for (int i = 0; i < keys; ++i) {
    auto got = client.get("key-" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(got.is_ok() && got->status == ClientStatus::ok, "get " << i << "\n" << logs());
    BOOST_TEST(got->node_id == victim);
    BOOST_TEST(got->found);
    BOOST_TEST(got->value == value_of(i));
  }
  for (const auto& [id, exit] : cluster->stop_all(10000)) {
    BOOST_TEST((exit.exited && exit.code == 0), "node " << id << ": " << exit.describe() << "\n" << logs());
  }
}

}  // namespace keyval
