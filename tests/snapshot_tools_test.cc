// Goal: `keyval snapshot status` and `keyval snapshot restore` keep their contracts: a valid backup
// is described (JSON last line), a truncated or flipped one is refused naming file and offset, and
// a restore writes nothing from a damaged file or into a non-empty directory, and otherwise seeds a
// data directory that recovery starts from.
// Method: write snapshot files with SnapshotWriter in temporary directories, damage them, run the
// built binary and read its output and the files it left.
#define BOOST_TEST_MODULE snapshot_tools_test
#include <boost/test/unit_test.hpp>
#include <optional>
#include <string>
#include <vector>

#include "storage/env.h"
#include "storage/node_identity.h"
#include "storage/recovery.h"
#include "storage/snapshot_file.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using namespace keyval;
using keyval::testing::json_field;
using keyval::testing::Run;
using keyval::testing::run_keyval;
using keyval::testing::TempDir;

namespace {

constexpr uint64_t backup_index = 1234, backup_term = 5, backup_keys = 300;
const char* const new_peers = "1=127.0.0.1:27201,2=127.0.0.1:27202,3=127.0.0.1:27203";

std::string key_of(uint64_t i) { return "key-" + std::to_string(i); }
std::string value_of(uint64_t i) { return "value-" + std::to_string(i * 7); }

// A backup of backup_keys keys and two sessions over several chunks, as a 3-node cluster on
// other ports would have taken it.
std::string write_backup(const TempDir& dir) {
  const std::string path = dir.file("backup.snap");
  SnapshotHeader header;
  header.index = backup_index;
  header.term = backup_term;
  header.configuration = {{1, "127.0.0.1:7201"}, {2, "127.0.0.1:7202"}, {3, "127.0.0.1:7203"}};
  auto writer = SnapshotWriter::create(posix_env(), path, header, 2048);
  BOOST_REQUIRE_MESSAGE(writer.is_ok(), writer.status().to_string());
  for (uint64_t i = 0; i < backup_keys; ++i) BOOST_REQUIRE((*writer)->add_kv(key_of(i), value_of(i)).is_ok());
  for (uint64_t client = 1; client <= 2; ++client) {
    BOOST_REQUIRE((*writer)->add_session(client, StoredSession{backup_index - client, {1, 2, 3}}).is_ok());
  }
  auto summary = (*writer)->finish();
  BOOST_REQUIRE_MESSAGE(summary.is_ok(), summary.status().to_string());
  BOOST_REQUIRE_GT(summary->chunks, 3u);
  return path;
}

std::string restore_arguments(const std::string& file, const std::string& data_directory, uint64_t id = 2) {
  return "snapshot restore " + file + " --data-dir " + data_directory + " --id " + std::to_string(id) + " --peers " +
         new_peers + " --cluster restored";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(snapshot_tools)

BOOST_AUTO_TEST_CASE(status_of_a_valid_backup_prints_its_index_term_keys_and_bytes) {
  TempDir dir;
  const std::string file = write_backup(dir);
  Run run = run_keyval("snapshot status " + file);
  BOOST_TEST(run.exit_code == 0, run.output);
  const std::string json = run.last_line();
  BOOST_TEST(json_field(json, "valid") == "true", json);
  BOOST_TEST(json_field(json, "index") == std::to_string(backup_index), json);
  BOOST_TEST(json_field(json, "term") == std::to_string(backup_term), json);
  BOOST_TEST(json_field(json, "keys") == std::to_string(backup_keys), json);
  BOOST_TEST(json_field(json, "sessions") == "2", json);
  BOOST_TEST(json_field(json, "bytes") == std::to_string(keyval::testing::file_size(file)), json);
  BOOST_TEST(contains(run.output, "checksum 0x"), run.output);
}

BOOST_AUTO_TEST_CASE(status_of_a_truncated_backup_exits_one_naming_file_and_offset) {
  TempDir dir;
  const std::string file = write_backup(dir);
  std::vector<uint8_t> bytes = keyval::testing::read_file(file);
  bytes.resize(bytes.size() * 2 / 3);
  keyval::testing::write_file(file, bytes);
  Run run = run_keyval("snapshot status " + file);
  BOOST_TEST(run.exit_code == 1, run.output);
  BOOST_TEST(contains(run.output, file), run.output);
  BOOST_TEST(contains(run.output, "offset"), run.output);
  BOOST_TEST(json_field(run.last_line(), "valid") == "false", run.output);
}

BOOST_AUTO_TEST_CASE(status_of_a_backup_with_a_flipped_byte_exits_one_naming_file_and_offset) {
  TempDir dir;
  const std::string file = write_backup(dir);
  std::vector<uint8_t> bytes = keyval::testing::read_file(file);
  bytes[bytes.size() / 2] ^= 0x10;
  keyval::testing::write_file(file, bytes);
  Run run = run_keyval("snapshot status " + file);
  BOOST_TEST(run.exit_code == 1, run.output);
  BOOST_TEST(contains(run.output, file), run.output);
  BOOST_TEST(contains(run.output, "offset"), run.output);
}

BOOST_AUTO_TEST_CASE(status_without_a_file_is_a_usage_error) {
  Run run = run_keyval("snapshot status");
  BOOST_TEST(run.exit_code == 2, run.output);
}

BOOST_AUTO_TEST_CASE(restore_from_a_damaged_backup_writes_nothing) {
  TempDir dir;
  const std::string file = write_backup(dir);
  std::vector<uint8_t> bytes = keyval::testing::read_file(file);
  for (bool truncate : {true, false}) {
    BOOST_TEST_CONTEXT((truncate ? "truncated" : "flipped byte")) {
      std::vector<uint8_t> damaged = bytes;
      if (truncate) damaged.resize(damaged.size() - 100);
      else damaged[damaged.size() / 3] ^= 0x01;
      keyval::testing::write_file(file, damaged);
      const std::string data = dir.file("node2");
      Run run = run_keyval(restore_arguments(file, data));
      BOOST_TEST(run.exit_code == 1, run.output);
      BOOST_TEST(contains(run.output, "nothing restored"), run.output);
      BOOST_TEST(contains(run.output, "offset"), run.output);
      BOOST_TEST(!posix_env().exists(data), run.output);
      BOOST_TEST(!posix_env().exists(data + ".restore.tmp"), run.output);
    }
  }
}

BOOST_AUTO_TEST_CASE(restore_into_a_non_empty_data_directory_is_refused_and_changes_nothing) {
  TempDir dir;
  const std::string file = write_backup(dir);
  const std::string data = dir.file("node2");
  BOOST_REQUIRE(posix_env().create_dir(data).is_ok());
  keyval::testing::write_file(data + "/notes.txt", {'h', 'i'});
  Run run = run_keyval(restore_arguments(file, data));
  BOOST_TEST(run.exit_code == 1, run.output);
  BOOST_TEST(contains(run.output, "not empty"), run.output);
  auto names = posix_env().list(data);
  BOOST_REQUIRE(names.is_ok());
  BOOST_TEST((names.value() == std::vector<std::string>{"notes.txt"}));
  BOOST_TEST(!posix_env().exists(data + ".restore.tmp"), run.output);
}

BOOST_AUTO_TEST_CASE(restore_with_an_id_the_peers_do_not_list_is_a_usage_error) {
  TempDir dir;
  const std::string file = write_backup(dir);
  Run run = run_keyval(restore_arguments(file, dir.file("node4"), 4));
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(!posix_env().exists(dir.file("node4")), run.output);
}

BOOST_AUTO_TEST_CASE(restore_seeds_a_new_clusters_node_that_recovery_starts_from) {
  TempDir dir;
  const std::string file = write_backup(dir);
  const std::string data = dir.file("node2");
  Run run = run_keyval(restore_arguments(file, data));
  BOOST_REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  BOOST_TEST(json_field(run.last_line(), "index") == std::to_string(backup_index), run.output);
  BOOST_TEST(json_field(run.last_line(), "keys") == std::to_string(backup_keys), run.output);

  auto identity = read_identity(posix_env(), data);
  BOOST_REQUIRE_MESSAGE(identity.is_ok(), identity.status().to_string());
  BOOST_TEST(identity->cluster == "restored");
  BOOST_TEST(identity->node_id == 2u);
  BOOST_TEST((identity->voters == std::vector<uint64_t>{1, 2, 3}));
  SnapshotDirectory snapshots(posix_env(), data + "/snapshots");
  auto listed = snapshots.list();
  BOOST_REQUIRE(listed.is_ok());
  BOOST_TEST((listed.value() == std::vector<std::pair<uint64_t, uint64_t>>{{backup_index, backup_term}}));

  // What `keyval node` does first: recovery. The new members replace the backup's.
  auto recovered = recover(posix_env(), data);
  BOOST_REQUIRE_MESSAGE(recovered.is_ok(), recovered.status().to_string());
  BOOST_TEST(!recovered->report.lmdb_rebuilt, recovered->report.summary());
  const RecoveredState& state = recovered->state;
  BOOST_TEST(state.metadata.current_term == backup_term);
  BOOST_TEST(state.metadata.voted_for == 0u);
  BOOST_REQUIRE(state.snapshot.has_value());
  BOOST_TEST(state.snapshot->last_included_index == backup_index);
  BOOST_TEST(state.snapshot->last_included_term == backup_term);
  BOOST_TEST((state.snapshot->configuration ==
              std::vector<Member>{{1, "127.0.0.1:27201"}, {2, "127.0.0.1:27202"}, {3, "127.0.0.1:27203"}}));
  BOOST_TEST(state.first_index == backup_index + 1);
  BOOST_TEST(state.last_index == backup_index);
  std::optional<std::string> value;
  uint64_t applied = 0;
  Status read = recovered->store->read_kv([&](KvReader& reader) -> Status {
    KV_ASSIGN_OR_RETURN(value, reader.get(key_of(17)));
    KV_ASSIGN_OR_RETURN(applied, reader.applied_index());
    return Status::ok();
  });
  BOOST_REQUIRE_MESSAGE(read.is_ok(), read.to_string());
  BOOST_TEST(applied == backup_index);
  BOOST_REQUIRE(value.has_value());
  BOOST_TEST(*value == value_of(17));
}

BOOST_AUTO_TEST_SUITE_END()
