// Goal: the keyval binary's storage tools keep their contracts (exit codes, one line per record, JSON last line).
// Method: build real WALs in temporary directories, damage them, run the built binary and read its output.
#define BOOST_TEST_MODULE tools_test
#include <sys/wait.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <sstream>

#include "storage/codec.h"
#include "storage/env.h"
#include "storage/wal.h"
#include "storage/wal_format.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using namespace keyval;
using keyval::testing::TempDir;
using keyval::testing::Run;
using keyval::testing::run_keyval;

namespace {

// Writes `count` entries of 100 bytes into a WAL in `directory` and syncs.
void write_wal(const std::string& directory, uint64_t count, uint64_t segment_bytes = 64 * 1024) {
  WalOptions options;
  options.segment_bytes = segment_bytes;
  auto wal = Wal::open(posix_env(), directory, options);
  BOOST_REQUIRE_MESSAGE(wal.is_ok(), wal.status().to_string());
  BOOST_REQUIRE((*wal)->save_metadata(Metadata{7, 2}).is_ok());
  for (uint64_t index = 1; index <= count; ++index) {
    BOOST_REQUIRE((*wal)->append(index, 7, keyval::testing::make_payload(index, 100).data(), 100).is_ok());
  }
  BOOST_REQUIRE((*wal)->sync().is_ok());
}

std::vector<std::string> segment_paths(const std::string& directory) {
  std::vector<std::string> paths;
  for (const std::string& name : keyval::testing::segment_files(directory)) paths.push_back(directory + "/" + name);
  return paths;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tools)

BOOST_AUTO_TEST_CASE(verify_clean_wal_exits_zero_with_json_summary) {
  TempDir dir;
  write_wal(dir.path(), 500);
  Run run = run_keyval("wal verify " + dir.path());
  BOOST_TEST(run.exit_code == 0, run.output);
  std::string json = run.last_line();
  BOOST_TEST(json.find("\"status\":\"clean\"") != std::string::npos, json);
  BOOST_TEST(json.find("\"entries\":500") != std::string::npos, json);
  BOOST_TEST(json.find("\"first_index\":1") != std::string::npos, json);
  BOOST_TEST(json.find("\"last_index\":500") != std::string::npos, json);
  BOOST_TEST(json.find("\"segments\":") != std::string::npos, json);
  BOOST_TEST(json.find("\"current_term\":7") != std::string::npos, json);
}

BOOST_AUTO_TEST_CASE(verify_torn_tail_exits_one_and_names_bytes_without_changing_files) {
  TempDir dir;
  write_wal(dir.path(), 50, 1 << 20);
  std::string segment = segment_paths(dir.path()).back();
  std::vector<uint8_t> bytes = keyval::testing::read_file(segment);
  uint64_t record = wal_format::record_bytes(100);
  uint64_t end = wal_format::segment_header_bytes + wal_format::record_bytes(encode_metadata(Metadata{7, 2}).size()) + 50 * record;
  // The one write cut short: the second half of the last record, and the seals after it, never landed.
  BOOST_TEST_REQUIRE(bytes[end + 8] == static_cast<uint8_t>(EntryType::seal), "a seal follows the last entry");
  for (uint64_t i = end - record / 2; i < bytes.size(); ++i) bytes[i] = 0;
  keyval::testing::write_file(segment, bytes);
  Run run = run_keyval("wal verify " + dir.path());
  BOOST_TEST(run.exit_code == 1, run.output);
  BOOST_TEST(run.last_line().find("\"status\":\"torn\"") != std::string::npos, run.output);
  BOOST_TEST(run.last_line().find("\"last_index\":49") != std::string::npos, run.output);
  BOOST_TEST(run.output.find("torn tail:") != std::string::npos, run.output);
  BOOST_TEST((keyval::testing::read_file(segment) == bytes), "verify must not change the segment");
}

BOOST_AUTO_TEST_CASE(verify_corruption_exits_three_naming_file_and_offset) {
  TempDir dir;
  write_wal(dir.path(), 50, 1 << 20);
  std::string segment = segment_paths(dir.path()).back();
  std::vector<uint8_t> bytes = keyval::testing::read_file(segment);
  uint64_t record = wal_format::record_bytes(100);
  uint64_t tenth = wal_format::segment_header_bytes + wal_format::record_bytes(encode_metadata(Metadata{7, 2}).size()) + 9 * record;
  bytes[tenth + wal_format::record_header_bytes + 5] ^= 0x10;  // a payload bit of entry 10
  keyval::testing::write_file(segment, bytes);
  Run run = run_keyval("wal verify " + dir.path());
  BOOST_TEST(run.exit_code == 3, run.output);
  std::string name = segment.substr(segment.rfind('/') + 1);
  BOOST_TEST(run.output.find(name) != std::string::npos, run.output);
  BOOST_TEST(run.output.find("offset " + std::to_string(tenth)) != std::string::npos, run.output);
  BOOST_TEST(run.last_line().find("\"status\":\"corruption\"") != std::string::npos, run.output);
}

BOOST_AUTO_TEST_CASE(verify_missing_directory_and_bad_usage_exit_two) {
  TempDir dir;
  Run missing = run_keyval("wal verify " + dir.path() + "/nothing-here");
  BOOST_TEST(missing.exit_code == 2, missing.output);
  BOOST_TEST(missing.output.find("nothing-here") != std::string::npos, missing.output);
  Run no_directory = run_keyval("wal verify");
  BOOST_TEST(no_directory.exit_code == 2, no_directory.output);
  Run bad_flag = run_keyval("wal verify " + dir.path() + " --bogus");
  BOOST_TEST(bad_flag.exit_code == 2, bad_flag.output);
  BOOST_TEST(bad_flag.output.find("--bogus") != std::string::npos, bad_flag.output);
}

BOOST_AUTO_TEST_CASE(member_commands_are_listed_and_bad_usage_exits_two) {
  Run help = run_keyval("help");
  BOOST_TEST(help.exit_code == 0, help.output);
  for (const char* line : {"member list", "member add ID --peer H:P --client H:P [--learner]", "member promote ID",
                           "member remove ID", "--bootstrap", "--join"}) {
    BOOST_TEST(help.output.find(line) != std::string::npos, line << "\n" << help.output);
  }
  for (const char* arguments : {"member", "member frobnicate", "member add", "member add 0 --peer 127.0.0.1:1 --client 127.0.0.1:2",
                                "member add 4 --peer 127.0.0.1:1", "member add 4 --peer nocolon --client 127.0.0.1:2",
                                "member promote", "member remove 1 2", "member list extra", "member remove 1 --bogus 1"}) {
    Run run = run_keyval(arguments);
    BOOST_TEST(run.exit_code == 2, arguments << ": " << run.output);
    BOOST_TEST(run.output.find("keyval member") != std::string::npos, arguments << ": " << run.output);
  }
}

BOOST_AUTO_TEST_CASE(dump_prints_one_line_per_record_in_range) {
  TempDir dir;
  write_wal(dir.path(), 300, 16 * 1024);  // several 16 KiB segments, each starting with carried metadata
  Run all = run_keyval("wal dump " + dir.path());
  BOOST_TEST(all.exit_code == 0, all.output);
  std::istringstream lines(all.output);
  std::string line;
  uint64_t log_lines = 0;
  uint64_t metadata_lines = 0;
  while (std::getline(lines, line)) {
    if (line.find("type=log") != std::string::npos) {
      ++log_lines;
      BOOST_TEST(line.find("segment=") == 0, line);
      BOOST_TEST(line.find(" offset=") != std::string::npos, line);
      BOOST_TEST(line.find(" term=7 ") != std::string::npos, line);
      BOOST_TEST(line.find(" payload_bytes=100") != std::string::npos, line);
    }
    if (line.find("type=metadata") != std::string::npos) ++metadata_lines;
  }
  BOOST_TEST(log_lines == 300u);
  BOOST_TEST(metadata_lines > 1u, "each segment starts with the carried metadata record");
  Run range = run_keyval("wal dump " + dir.path() + " --from 10 --to 19");
  BOOST_TEST(range.exit_code == 0, range.output);
  uint64_t in_range = 0;
  std::istringstream range_lines(range.output);
  while (std::getline(range_lines, line)) in_range += line.find("type=log") != std::string::npos;
  BOOST_TEST(in_range == 10u, range.output);
  BOOST_TEST(range.output.find(" index=10 ") != std::string::npos);
  BOOST_TEST(range.output.find(" index=20 ") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(bench_wal_prints_json_with_required_fields) {
  TempDir dir;
  Run run = run_keyval("bench wal --entries 2000 --value-bytes 128 --sync batch:100 --dir " + dir.path() + "/b --keep");
  BOOST_TEST(run.exit_code == 0, run.output);
  std::string json = run.last_line();
  for (const char* key : {"\"entries\":2000", "\"seconds\":", "\"entries_per_s\":", "\"us_per_entry\":",
                          "\"syncs\":21", "\"replay_entries_per_s\":"}) {
    BOOST_TEST(json.find(key) != std::string::npos, key << " in " << json);
  }
  BOOST_TEST(posix_env().exists(dir.path() + "/b/wal/LOCK"), "--keep leaves the WAL in place");
  Run verify = run_keyval("wal verify " + dir.path() + "/b/wal");
  BOOST_TEST(verify.exit_code == 0, verify.output);
  BOOST_TEST(verify.last_line().find("\"last_index\":2000") != std::string::npos, verify.output);
}

BOOST_AUTO_TEST_CASE(bench_wal_rejects_bad_sync_mode) {
  Run run = run_keyval("bench wal --entries 10 --sync sometimes");
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(run.output.find("--sync") != std::string::npos, run.output);
}

BOOST_AUTO_TEST_CASE(bench_names_the_benchmarks_it_knows) {
  Run run = run_keyval("bench");
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(run.output.find("keyval bench: expects a benchmark: wal, store, recovery, kv, snapshot, size, transfer or replace") != std::string::npos, run.output);
  run = run_keyval("bench disk");
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(run.output.find("unknown benchmark 'disk' (expected wal, store, recovery, kv, snapshot, size, transfer or replace)") != std::string::npos,
             run.output);
}

BOOST_AUTO_TEST_CASE(bench_snapshot_and_size_refuse_bad_flags_naming_them) {
  Run run = run_keyval("bench snapshot --keys 0");
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(run.output.find("--keys must be at least 1") != std::string::npos, run.output);
  run = run_keyval("bench size --puts 10 --checkpoints 5,20");
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(run.output.find("--checkpoints must lie in 1..--puts") != std::string::npos, run.output);
  run = run_keyval("bench size --clients 0");
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(run.output.find("--clients expects 1..1024") != std::string::npos, run.output);
}

BOOST_AUTO_TEST_CASE(demo_writes_reopens_and_verifies) {
  TempDir dir;
  Run run = run_keyval("demo --entries 3000 --dir " + dir.path() + "/demo");
  BOOST_TEST(run.exit_code == 0, run.output);
  BOOST_TEST(run.output.find("all match") != std::string::npos, run.output);
  BOOST_TEST(run.output.find("demo passed") != std::string::npos, run.output);
}

BOOST_AUTO_TEST_CASE(verify_data_directory_checks_wal_and_lmdb_together) {
  TempDir dir;
  std::string data = dir.path() + "/node";
  Run bench = run_keyval("bench recovery --entries 2000 --value-bytes 64 --indexed-percent 50 --dir " + data + " --keep");
  BOOST_TEST(bench.exit_code == 0, bench.output);
  for (const char* key : {"\"entries\":2000", "\"value_bytes\":64", "\"recovery_ms\":", "\"entries_per_s\":",
                          "\"entries_replayed\":1000", "\"lmdb_entries_checked\":1000", "\"max_rss_kib\":"}) {
    BOOST_TEST(bench.last_line().find(key) != std::string::npos, key << " in " << bench.last_line());
  }
  Run run = run_keyval("wal verify " + data);
  BOOST_TEST(run.exit_code == 0, run.output);
  std::string json = run.last_line();
  for (const char* key : {"\"status\":\"clean\"", "\"data_directory\":true", "\"last_index\":2000",
                          "\"lmdb_first_index\":1", "\"lmdb_last_index\":2000", "\"lmdb_entries_checked\":2000"}) {
    BOOST_TEST(json.find(key) != std::string::npos, key << " in " << json);
  }
  // The WAL alone, given as before, is still a plain WAL directory.
  Run wal_only = run_keyval("wal verify " + data + "/wal");
  BOOST_TEST(wal_only.exit_code == 0, wal_only.output);
  BOOST_TEST(wal_only.last_line().find("lmdb_") == std::string::npos, wal_only.output);
}

BOOST_AUTO_TEST_CASE(a_directory_without_a_wal_is_an_error_not_clean) {
  TempDir dir;  // exists, empty: most likely not the directory meant
  for (const char* command : {"wal verify ", "wal dump "}) {
    Run run = run_keyval(command + dir.path());
    BOOST_TEST(run.exit_code == 2, command << ": " << run.output);
    BOOST_TEST(run.output.find("holds no WAL") != std::string::npos, command << ": " << run.output);
    BOOST_TEST(run.last_line().find("\"status\":\"error\"") != std::string::npos, run.output);
    BOOST_TEST(run.output.find("\"status\":\"clean\"") == std::string::npos, run.output);
  }
}

BOOST_AUTO_TEST_CASE(dump_of_a_data_directory_lists_its_wal) {
  TempDir dir;
  std::string data = dir.path() + "/node";
  Run bench = run_keyval("bench recovery --entries 300 --value-bytes 64 --indexed-percent 0 --dir " + data + " --keep");
  BOOST_REQUIRE_MESSAGE(bench.exit_code == 0, bench.output);
  Run run = run_keyval("wal dump " + data);
  BOOST_TEST(run.exit_code == 0, run.output);
  uint64_t log_lines = 0;
  std::istringstream lines(run.output);
  std::string line;
  while (std::getline(lines, line)) log_lines += line.find("type=log") != std::string::npos;
  BOOST_TEST(log_lines == 300u, run.output);
  BOOST_TEST(run.output.find("listing " + data + "/wal") != std::string::npos, run.output);
  BOOST_TEST(run.last_line().find("\"last_index\":300") != std::string::npos, run.last_line());
}

// keyval --version names the allocator the binary was linked with, and it is the one that
// allocates: jemalloc prints its statistics at exit when MALLOC_CONF asks, glibc never does.
BOOST_AUTO_TEST_CASE(the_binary_allocates_with_the_allocator_its_version_names) {
  Run version = run_keyval("--version");
  BOOST_REQUIRE(version.exit_code == 0);
  const bool jemalloc = version.output.find("allocator: jemalloc") != std::string::npos;
  const char* binary = std::getenv("KEYVAL_BINARY");  // run_keyval above required it
  BOOST_REQUIRE(binary != nullptr);
  Run stats = keyval::testing::run_shell(std::string("MALLOC_CONF=stats_print:true ") + binary + " --version");
  BOOST_TEST(stats.exit_code == 0, stats.output);
  BOOST_TEST((stats.output.find("jemalloc statistics") != std::string::npos) == jemalloc,
             version.output << "---\n" << stats.output.substr(0, 400));
}

// Every command and subcommand answers --help (exit 0) with its usage and every flag with its
// default; keyval --version names the version.
BOOST_AUTO_TEST_CASE(every_command_has_help_listing_flags_with_defaults) {
  Run version = run_keyval("--version");
  BOOST_TEST(version.exit_code == 0, version.output);
  BOOST_TEST(version.output.find("keyval ") == 0, version.output);
  BOOST_TEST(version.output.find('.') != std::string::npos, version.output);
  BOOST_TEST(version.output.find("\nallocator: ") != std::string::npos, version.output);
  for (const char* command :
       {"demo", "wal dump", "wal verify", "bench wal", "bench store", "bench recovery", "bench kv", "bench snapshot",
        "bench size", "bench transfer", "bench replace", "sim", "node", "cluster start", "cluster demo",
        "experiment run", "experiment check", "put", "get", "del", "cas", "range", "status", "snapshot save",
        "snapshot status", "snapshot restore", "leader transfer", "member list", "member add", "member promote",
        "member remove"}) {
    Run help = run_keyval(std::string(command) + " --help");
    BOOST_TEST(help.exit_code == 0, command << ": " << help.output);
    BOOST_TEST(help.output.find(std::string("usage: keyval ") + command) != std::string::npos, help.output);
  }
  for (const char* group : {"wal", "bench", "cluster", "experiment", "snapshot", "leader", "member"}) {
    Run help = run_keyval(std::string(group) + " --help");
    BOOST_TEST(help.exit_code == 0, group << ": " << help.output);
  }
  Run member_add = run_keyval("member add --help");
  for (const char* line : {"--peer", "--client", "--learner", "--catch-up-timeout-ms VALUE=60000",
                           "--endpoints VALUE=127.0.0.1:7101", "--timeout-ms VALUE=5000", "-w,--write-out VALUE=text"}) {
    BOOST_TEST(member_add.output.find(line) != std::string::npos, line << " in\n" << member_add.output);
  }
  Run node = run_keyval("node --help");
  for (const char* line : {"--id", "--data-dir", "--tick-ms VALUE=10", "--snapshot-entries VALUE=10000", "--config",
                           "--bootstrap", "--join", "--cluster-secret-file"}) {
    BOOST_TEST(node.output.find(line) != std::string::npos, line << " in\n" << node.output);
  }
  Run bad = run_keyval("wal dump /nonexistent --from");
  BOOST_TEST(bad.exit_code == 2, bad.output);
  BOOST_TEST(bad.output.find("keyval wal dump: --from") != std::string::npos, bad.output);
}

BOOST_AUTO_TEST_SUITE_END()
