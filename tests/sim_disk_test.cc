// Goal: SimDisk loses exactly what a power cut may (unsynced bytes, undirsynced names), tears reproducibly, fails.
// Method: scripted writes, syncs and crashes on a SimDisk; then the real Wal on it, torn by crashes over many seeds.
#define BOOST_TEST_MODULE sim_disk_test
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/random.h"
#include "sim/sim_disk.h"
#include "storage/wal.h"
#include "tests/support/print.h"
#include "tests/support/temp_dir.h"

namespace keyval::sim {
namespace {

using Bytes = std::vector<uint8_t>;

void require_ok(const Status& status) {
  BOOST_REQUIRE_MESSAGE(status.is_ok(), status.to_string());
}

std::string text_of(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

std::unique_ptr<File> open(SimDisk& disk, const std::string& path, OpenMode mode) {
  auto opened = disk.open_file(path, mode);
  BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  return std::move(opened).value();
}

void write(File& file, uint64_t offset, const std::string& text) {
  require_ok(file.write_at(offset, reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Bytes read_all(File& file) {
  auto size = file.size();
  BOOST_REQUIRE_MESSAGE(size.is_ok(), size.status().to_string());
  Bytes bytes(size.value());
  auto read = file.read_at(0, bytes.data(), bytes.size());
  BOOST_REQUIRE_MESSAGE(read.is_ok(), read.status().to_string());
  BOOST_REQUIRE_EQUAL(read.value(), bytes.size());
  return bytes;
}

std::unique_ptr<FileLock> take_lock(SimDisk& disk, const std::string& path) {
  auto lock = disk.lock(path);
  BOOST_REQUIRE_MESSAGE(lock.is_ok(), lock.status().to_string());
  return std::move(lock).value();
}

std::string contents(SimDisk& disk, const std::string& path) {
  return text_of(read_all(*open(disk, path, OpenMode::read_only)));
}

void crash(SimDisk& disk, const std::string& prefix, uint64_t seed = 1, bool tear = false, bool garbage = false) {
  raft::SplitMix64 random(seed);
  disk.crash(prefix, random, tear, garbage);
}

// A disk with "/n1/f" holding `text`, durable in data and name.
std::unique_ptr<SimDisk> disk_with_durable_file(const std::string& text) {
  auto disk = std::make_unique<SimDisk>();
  require_ok(disk->create_dir("/n1"));
  auto file = open(*disk, "/n1/f", OpenMode::create_new);
  write(*file, 0, text);
  require_ok(file->sync_data());
  require_ok(disk->sync_dir("/n1"));
  return disk;
}

struct Write {
  uint64_t offset;
  std::string text;
};

void apply(std::string& data, const Write& write, size_t kept) {
  if (data.size() < write.offset + kept) data.resize(write.offset + kept, '\0');
  data.replace(write.offset, kept, write.text.substr(0, kept));
}

// Every state an in-order power cut can leave: `base`, then some writes whole and the next in part.
std::set<std::string> in_order_outcomes(const std::string& base, const std::vector<Write>& writes) {
  std::set<std::string> outcomes{base};
  std::string data = base;
  for (const Write& write : writes) {
    for (size_t kept = 1; kept <= write.text.size(); ++kept) {
      std::string torn = data;
      apply(torn, write, kept);
      outcomes.insert(torn);
    }
    apply(data, write, write.text.size());
  }
  return outcomes;
}

BOOST_AUTO_TEST_SUITE(sim_disk)

BOOST_AUTO_TEST_CASE(boot_id_changes_at_every_power_cut_and_only_then) {
  SimDisk disk;
  require_ok(disk.create_dir("/n1"));
  const std::string first = disk.boot_id();
  BOOST_TEST(!first.empty());
  auto file = open(disk, "/n1/f", OpenMode::create_new);
  write(*file, 0, "abc");
  require_ok(file->sync_data());
  BOOST_TEST(disk.boot_id() == first, "writes and syncs are no reboot");

  crash(disk, "/n1");
  const std::string second = disk.boot_id();
  BOOST_TEST(second != first);
  crash(disk, "/n2");  // another node's power cut: the shared disk cannot tell the nodes apart
  BOOST_TEST(disk.boot_id() != second);
  BOOST_TEST(disk.boot_id() != first);
}

BOOST_AUTO_TEST_CASE(each_machine_has_its_own_boot_id_changed_by_its_power_cuts_alone) {
  SimDisk disk;
  require_ok(disk.create_dir("/n1"));
  require_ok(disk.create_dir("/n2"));
  std::unique_ptr<Env> one = disk.machine("/n1");
  std::unique_ptr<Env> two = disk.machine("/n2");
  const std::string first = one->boot_id();
  BOOST_TEST(!first.empty());
  BOOST_TEST(two->boot_id() != first, "two machines never share a boot");
  disk.kill_process("/n1");
  BOOST_TEST(one->boot_id() == first, "a process crash is no reboot");
  crash(disk, "/n2");
  BOOST_TEST(one->boot_id() == first, "another machine's power cut is not this one's");
  crash(disk, "/n1");
  const std::string second = one->boot_id();
  BOOST_TEST(second != first);
  BOOST_TEST(disk.machine("/n1/")->boot_id() == second, "the prefix names the machine however it is spelled");
  // The machine's Env is the disk: a file written through it is the disk's.
  auto file = one->open_file("/n1/f", OpenMode::create_new);
  BOOST_REQUIRE(file.is_ok());
  write(*file.value(), 0, "same");
  BOOST_TEST(contents(disk, "/n1/f") == "same");
}

BOOST_AUTO_TEST_CASE(a_process_crash_kills_handles_and_locks_and_keeps_every_byte_and_name) {
  auto disk = disk_with_durable_file("old");
  auto file = open(*disk, "/n1/f", OpenMode::read_write);
  write(*file, 0, "new!");
  auto created = open(*disk, "/n1/g", OpenMode::create_new);  // its name never synced
  write(*created, 0, "fresh");
  auto lock = take_lock(*disk, "/n1/LOCK");
  disk->kill_process("/n1");
  uint8_t byte = 0;
  BOOST_TEST(file->write_at(0, &byte, 1).code() == Code::io_error, "the dead process's handles are dead");
  BOOST_TEST(created->sync_data().code() == Code::io_error);
  auto again = take_lock(*disk, "/n1/LOCK");  // the kernel released the lock with the process
  BOOST_TEST(contents(*disk, "/n1/f") == "new!", "the page cache keeps the unsynced bytes");
  BOOST_TEST(contents(*disk, "/n1/g") == "fresh", "and the unsynced name");
  BOOST_TEST(disk->unsynced_bytes("/n1") > 0u, "still volatile");
  again.reset();
  crash(*disk, "/n1");  // a power cut after it loses what no one synced
  BOOST_TEST(contents(*disk, "/n1/f") == "old");
  BOOST_TEST(!disk->exists("/n1/g"));
}

BOOST_AUTO_TEST_CASE(synced_bytes_survive_a_crash) {
  auto disk = disk_with_durable_file("hello");
  for (uint64_t seed = 0; seed < 20; ++seed) {
    crash(*disk, "/n1", seed, true, true);
    BOOST_TEST(contents(*disk, "/n1/f") == "hello");
  }
  BOOST_TEST(disk->syncs() == 1u);
}

BOOST_AUTO_TEST_CASE(unsynced_bytes_are_lost_without_tear) {
  auto disk = disk_with_durable_file("hello");
  auto file = open(*disk, "/n1/f", OpenMode::read_write);
  write(*file, 5, " world");
  require_ok(file->truncate(8));
  BOOST_TEST(contents(*disk, "/n1/f") == "hello wo");
  BOOST_TEST(disk->unsynced_bytes("/n1") == 6u);
  BOOST_TEST(disk->unsynced_bytes("/n2") == 0u);
  crash(*disk, "/n1");
  BOOST_TEST(contents(*disk, "/n1/f") == "hello");
  BOOST_TEST(disk->unsynced_bytes("/n1") == 0u);
}

BOOST_AUTO_TEST_CASE(tear_replays_an_in_order_prefix_of_the_journal) {
  std::vector<Write> writes{{5, "AAAAAAAA"}, {0, "bbb"}, {13, "CCCCCC"}, {2, "dddddddddd"}};
  std::set<std::string> possible = in_order_outcomes("01234", writes);
  std::set<std::string> at_boundaries{"01234"};
  std::string whole = "01234";
  for (const Write& write : writes) {
    apply(whole, write, write.text.size());
    at_boundaries.insert(whole);
  }
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    auto disk = disk_with_durable_file("01234");
    auto file = open(*disk, "/n1/f", OpenMode::read_write);
    for (const Write& write_step : writes) write(*file, write_step.offset, write_step.text);
    crash(*disk, "/n1", seed, true, false);
    std::string after = contents(*disk, "/n1/f");
    BOOST_TEST_REQUIRE(possible.count(after) == 1u, "seed " << seed << " left " << after);
    seen.insert(after);
  }
  BOOST_TEST(seen.count("01234") == 1u);  // nothing replayed
  BOOST_TEST(seen.count(whole) == 1u);    // everything replayed
  size_t cut_inside_a_write = 0;
  for (const std::string& outcome : seen) cut_inside_a_write += at_boundaries.count(outcome) == 0 ? 1 : 0;
  BOOST_TEST(cut_inside_a_write > 5u);
}

BOOST_AUTO_TEST_CASE(same_seed_gives_the_same_torn_result) {
  auto run = [](uint64_t seed) {
    auto disk = disk_with_durable_file("base");
    auto first = open(*disk, "/n1/f", OpenMode::read_write);
    auto second = open(*disk, "/n1/g", OpenMode::create_new);
    require_ok(disk->sync_dir("/n1"));
    write(*first, 4, std::string(100, 'x'));
    write(*second, 0, std::string(100, 'y'));
    crash(*disk, "/n1", seed, true, true);
    return contents(*disk, "/n1/f") + "|" + contents(*disk, "/n1/g");
  };
  std::set<std::string> results;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::string result = run(seed);
    BOOST_TEST(run(seed) == result, "seed " << seed);
    results.insert(result);
  }
  BOOST_TEST(results.size() > 10u);
}

BOOST_AUTO_TEST_CASE(garbage_fills_the_lost_part_of_the_torn_write) {
  const size_t length = 1000;
  size_t torn = 0;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    for (bool garbage : {false, true}) {
      auto disk = disk_with_durable_file(std::string(length, '\0'));  // like a preallocated segment
      auto file = open(*disk, "/n1/f", OpenMode::read_write);
      write(*file, 0, std::string(length, 'x'));
      crash(*disk, "/n1", seed, true, garbage);
      std::string after = contents(*disk, "/n1/f");
      BOOST_TEST_REQUIRE(after.size() == length);
      size_t kept = after.find_first_not_of('x');
      if (kept == std::string::npos || kept == 0) continue;  // replayed whole, or not at all
      if (garbage) ++torn;
      bool rest_is_old = after.find_first_not_of('\0', kept) == std::string::npos;
      BOOST_TEST(rest_is_old == !garbage, "seed " << seed << " cut at " << kept << " garbage " << garbage);
    }
  }
  BOOST_TEST(torn > 20u);
}

BOOST_AUTO_TEST_CASE(file_created_without_sync_dir_disappears_in_a_crash) {
  SimDisk disk;
  require_ok(disk.create_dir("/n1/wal"));
  auto file = open(disk, "/n1/wal/f", OpenMode::create_new);
  write(*file, 0, "data");
  require_ok(file->sync_data());  // the bytes are durable, the name is not
  crash(disk, "/n1");
  BOOST_TEST(!disk.exists("/n1/wal/f"));
  BOOST_TEST(disk.exists("/n1/wal"));  // directories are durable at once
  BOOST_TEST(disk.list("/n1/wal").value().empty());
}

BOOST_AUTO_TEST_CASE(file_created_with_sync_dir_survives_a_crash) {
  SimDisk disk;
  require_ok(disk.create_dir("/n1/wal"));
  auto file = open(disk, "/n1/wal/f", OpenMode::create_new);
  write(*file, 0, "data");
  require_ok(file->sync_data());
  require_ok(disk.sync_dir("/n1/wal"));
  crash(disk, "/n1");
  BOOST_TEST(contents(disk, "/n1/wal/f") == "data");
}

BOOST_AUTO_TEST_CASE(rename_before_sync_dir_reverts_in_a_crash) {
  auto disk = disk_with_durable_file("data");
  require_ok(disk->rename("/n1/f", "/n1/g"));
  BOOST_TEST(!disk->exists("/n1/f"));
  BOOST_TEST(contents(*disk, "/n1/g") == "data");
  crash(*disk, "/n1");
  BOOST_TEST(contents(*disk, "/n1/f") == "data");
  BOOST_TEST(!disk->exists("/n1/g"));
}

BOOST_AUTO_TEST_CASE(rename_after_sync_dir_survives_a_crash) {
  auto disk = disk_with_durable_file("data");
  require_ok(disk->rename("/n1/f", "/n1/g"));
  require_ok(disk->sync_dir("/n1"));
  crash(*disk, "/n1");
  BOOST_TEST(!disk->exists("/n1/f"));
  BOOST_TEST(contents(*disk, "/n1/g") == "data");
}

BOOST_AUTO_TEST_CASE(remove_before_sync_dir_reverts_in_a_crash) {
  auto disk = disk_with_durable_file("data");
  require_ok(disk->remove("/n1/f"));
  BOOST_TEST(!disk->exists("/n1/f"));
  crash(*disk, "/n1");
  BOOST_TEST(contents(*disk, "/n1/f") == "data");
  require_ok(disk->remove("/n1/f"));
  require_ok(disk->sync_dir("/n1"));
  crash(*disk, "/n1");
  BOOST_TEST(!disk->exists("/n1/f"));
}

BOOST_AUTO_TEST_CASE(removed_file_keeps_its_data_for_open_handles) {
  auto disk = disk_with_durable_file("data");
  auto file = open(*disk, "/n1/f", OpenMode::read_write);
  require_ok(disk->remove("/n1/f"));
  write(*file, 4, "+more");
  BOOST_TEST(text_of(read_all(*file)) == "data+more");
  BOOST_TEST(disk->used_bytes() == 9u);  // an unlinked file takes space until closed
  file.reset();
  BOOST_TEST(disk->used_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(handles_are_dead_after_a_crash) {
  auto disk = disk_with_durable_file("data");
  require_ok(disk->create_dir("/n2"));
  auto crashed = open(*disk, "/n1/f", OpenMode::read_write);
  auto other_node = open(*disk, "/n2/f", OpenMode::create_new);
  crash(*disk, "/n1");
  uint8_t byte = 0;
  BOOST_TEST(crashed->read_at(0, &byte, 1).status().code() == Code::io_error);
  BOOST_TEST(crashed->write_at(0, &byte, 1).code() == Code::io_error);
  BOOST_TEST(crashed->sync_data().code() == Code::io_error);
  BOOST_TEST(crashed->size().status().code() == Code::io_error);
  BOOST_TEST(crashed->truncate(0).code() == Code::io_error);
  BOOST_TEST(crashed->preallocate(10).code() == Code::io_error);
  write(*other_node, 0, "alive");                  // a crash of /n1 leaves /n2 running
  BOOST_TEST(contents(*disk, "/n1/f") == "data");  // a new handle works
}

BOOST_AUTO_TEST_CASE(failed_syncs_give_io_error_until_cleared) {
  auto disk = disk_with_durable_file("data");
  require_ok(disk->create_dir("/n2"));
  auto file = open(*disk, "/n1/f", OpenMode::read_write);
  auto other_node = open(*disk, "/n2/f", OpenMode::create_new);
  write(*file, 0, "DATA");
  disk->fail_syncs("/n1", true);
  uint64_t syncs_before = disk->syncs();
  Status failed = file->sync_data();
  BOOST_TEST(failed.code() == Code::io_error);
  BOOST_TEST(failed.message().find("/n1/f") != std::string::npos, failed.message());
  BOOST_TEST(disk->sync_dir("/n1").code() == Code::io_error);
  require_ok(other_node->sync_data());
  require_ok(disk->sync_dir("/n2"));
  BOOST_TEST(disk->syncs() == syncs_before + 1);
  crash(*disk, "/n1");  // the failed sync made nothing durable
  BOOST_TEST(contents(*disk, "/n1/f") == "data");

  disk->fail_syncs("/n1", false);
  file = open(*disk, "/n1/f", OpenMode::read_write);
  write(*file, 0, "DATA");
  require_ok(file->sync_data());
  crash(*disk, "/n1");
  BOOST_TEST(contents(*disk, "/n1/f") == "DATA");
}

BOOST_AUTO_TEST_CASE(capacity_gives_no_space_and_leaves_the_file_unchanged) {
  SimDisk disk;
  require_ok(disk.create_dir("/n1"));
  disk.set_capacity(100);
  auto file = open(disk, "/n1/f", OpenMode::create_new);
  write(*file, 0, std::string(60, 'a'));
  BOOST_TEST(disk.used_bytes() == 60u);
  Bytes too_much(41, 'b');
  Status full = file->write_at(60, too_much.data(), too_much.size());
  BOOST_TEST(full.code() == Code::no_space);
  BOOST_TEST(full.message().find("/n1/f") != std::string::npos, full.message());
  BOOST_TEST(file->preallocate(101).code() == Code::no_space);
  BOOST_TEST(file->truncate(101).code() == Code::no_space);
  BOOST_TEST(text_of(read_all(*file)) == std::string(60, 'a'));
  BOOST_TEST(disk.unsynced_bytes("/n1") == 60u);  // the refused write left no journal either
  write(*file, 0, std::string(100, 'c'));         // growing to exactly the capacity fits
  disk.set_capacity(0);
  write(*file, 100, "unlimited");
  BOOST_TEST(disk.used_bytes() == 109u);
}

// The simulator blames a node's fail-stop on an injected fault only when one reached that
// node's disk: every injected error returned is counted under the file's node, and so is the
// damage placed on a file while that file exists; nothing else is.
BOOST_AUTO_TEST_CASE(faults_met_and_damage_present_count_injected_faults_per_node) {
  SimDisk disk;
  require_ok(disk.create_dir("/n1"));
  require_ok(disk.create_dir("/n10"));
  auto file = open(disk, "/n1/f", OpenMode::create_new);
  auto other = open(disk, "/n10/f", OpenMode::create_new);
  write(*file, 0, "data");
  require_ok(file->sync_data());
  require_ok(disk.sync_dir("/n1"));
  BOOST_TEST(disk.faults_met("/n1") == 0u);  // plain calls that succeed count nothing

  disk.fail_syncs("/n1", true);
  BOOST_TEST(file->sync_data().code() == Code::io_error);
  BOOST_TEST(disk.sync_dir("/n1").code() == Code::io_error);
  disk.fail_syncs("/n1", false);
  BOOST_TEST(disk.faults_met("/n1") == 2u);
  disk.set_full("/n1", true);
  Bytes more(8, 'x');
  BOOST_TEST(file->write_at(4, more.data(), more.size()).code() == Code::no_space);
  disk.set_full("/n1", false);
  BOOST_TEST(disk.faults_met("/n1") == 3u);
  require_ok(disk.add_read_error("/n1/f", 0, 2));
  Bytes buffer(4);
  BOOST_TEST(!file->read_at(0, buffer.data(), buffer.size()).is_ok());
  BOOST_TEST(disk.faults_met("/n1") == 4u);
  BOOST_TEST(disk.faults_met("/n10") == 0u);  // "/n1" is not a prefix of node 10's files
  BOOST_TEST(disk.damage_present("/n10") == 0u);

  BOOST_TEST(disk.damage_present("/n1") == 1u);  // the unreadable range
  require_ok(disk.flip_at_rest("/n1/f", 3, 0x01));
  BOOST_TEST(disk.damage_present("/n1") == 2u);
  write(*other, 0, "other");
  BOOST_TEST(disk.faults_met("/n10") == 0u);

  raft::SplitMix64 random(1);
  disk.crash("/n1", random, false, false);  // kept across a power cut
  BOOST_TEST(disk.faults_met("/n1") == 4u);
  BOOST_TEST(disk.damage_present("/n1") == 2u);

  // A misdirected write damages the file it lands in; the damage goes with the file.
  auto segment = open(disk, "/n1/1.wal", OpenMode::create_new);
  disk.misdirect_next_write("/n1", 4);
  write(*segment, 0, "record");
  BOOST_TEST(disk.misdirected_writes() == 1u);
  BOOST_TEST(disk.damage_present("/n1") == 3u);
  require_ok(disk.remove("/n1/1.wal"));
  BOOST_TEST(disk.damage_present("/n1") == 3u);  // removed but still open: still readable
  segment.reset();
  BOOST_TEST(disk.damage_present("/n1") == 2u);

  disk.wipe("/n1");                          // a replaced disk starts clean
  BOOST_TEST(disk.faults_met("/n1") == 0u);
  BOOST_TEST(disk.damage_present("/n1") == 0u);
}

BOOST_AUTO_TEST_CASE(lock_is_exclusive_until_released) {
  SimDisk disk;
  require_ok(disk.create_dir("/n1"));
  std::unique_ptr<FileLock> held = take_lock(disk, "/n1/LOCK");
  BOOST_TEST(disk.exists("/n1/LOCK"));  // created, as flock's open does
  BOOST_TEST(disk.lock("/n1/LOCK").status().code() == Code::locked);
  held.reset();
  std::unique_ptr<FileLock> dead_holder = take_lock(disk, "/n1/LOCK");
  crash(disk, "/n1");  // the holder's process died: its lock goes with it
  std::unique_ptr<FileLock> after_crash = take_lock(disk, "/n1/LOCK");
  dead_holder.reset();  // must not free the new holder's lock
  BOOST_TEST(disk.lock("/n1/LOCK").status().code() == Code::locked);
}

BOOST_AUTO_TEST_CASE(open_modes_and_names_fail_as_values) {
  auto disk = disk_with_durable_file("data");
  auto missing = disk->open_file("/n1/missing", OpenMode::read_only);
  BOOST_TEST(missing.status().code() == Code::not_found);
  BOOST_TEST(missing.status().message().find("/n1/missing") != std::string::npos);
  BOOST_TEST(disk->open_file("/n1/missing", OpenMode::read_write).status().code() == Code::not_found);
  BOOST_TEST(!disk->open_file("/n1/f", OpenMode::create_new).is_ok());
  BOOST_TEST(disk->open_file("/nowhere/f", OpenMode::create_or_open).status().code() == Code::not_found);
  BOOST_TEST(disk->remove("/n1/missing").code() == Code::not_found);
  BOOST_TEST(disk->rename("/n1/missing", "/n1/g").code() == Code::not_found);
  BOOST_TEST(disk->list("/nowhere").status().code() == Code::not_found);
  uint8_t byte = 'x';
  BOOST_TEST(open(*disk, "/n1/f", OpenMode::read_only)->write_at(0, &byte, 1).code() == Code::io_error);
  BOOST_TEST(open(*disk, "/n1/f", OpenMode::create_or_open)->size().value() == 4u);
}

BOOST_AUTO_TEST_CASE(list_gives_sorted_names_of_files_and_subdirectories) {
  SimDisk disk;
  require_ok(disk.create_dir("/n1/wal"));
  require_ok(disk.create_dir("/n1//lmdb/"));
  open(disk, "/n1/zeta", OpenMode::create_new);
  open(disk, "/n1/alpha", OpenMode::create_new);
  open(disk, "/n1/wal/inner", OpenMode::create_new);
  open(disk, "/n10", OpenMode::create_new);
  std::vector<std::string> expected{"alpha", "lmdb", "wal", "zeta"};
  BOOST_TEST(disk.list("/n1").value() == expected, boost::test_tools::per_element());
  BOOST_TEST(disk.list("/n1/").value() == expected, boost::test_tools::per_element());
  BOOST_TEST(disk.list("/n1/lmdb").value().empty());
}

// ---------------------------------------------------------------------------------
// The real WAL on the simulated disk.

const std::string wal_directory = "/n1/wal";

Entry make_entry(uint64_t index, size_t payload_bytes) {
  return Entry{index, 1 + index / 50, testing::make_payload(index, payload_bytes)};
}

std::unique_ptr<Wal> open_wal(SimDisk& disk, const WalOptions& options) {
  auto opened = Wal::open(disk, wal_directory, options);
  BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  return std::move(opened).value();
}

// Appends entries next_index() .. `last`; flushes every `flush_every` so that they reach the disk's
// journal (a crash can only tear what was written) without syncing them.
void append_through(Wal& wal, uint64_t last, size_t payload_bytes, uint64_t flush_every) {
  while (wal.next_index() <= last) {
    require_ok(wal.append(make_entry(wal.next_index(), payload_bytes)));
    if (wal.last_index() % flush_every == 0) require_ok(wal.flush());
  }
  require_ok(wal.flush());
}

// Every synced entry is back, and what is there is exactly a prefix of what was appended.
void check_reopened(Wal& wal, uint64_t synced, uint64_t appended, size_t payload_bytes) {
  BOOST_TEST_REQUIRE(wal.last_index() >= synced);
  BOOST_TEST_REQUIRE(wal.last_index() <= appended);
  auto entries = wal.read_range(wal.first_index(), wal.last_index());
  BOOST_REQUIRE_MESSAGE(entries.is_ok(), entries.status().to_string());
  for (const Entry& entry : entries.value()) {
    BOOST_TEST_REQUIRE((entry == make_entry(entry.index, payload_bytes)), "entry " << entry.index << " differs");
  }
}

BOOST_AUTO_TEST_CASE(wal_keeps_every_synced_entry_through_a_torn_crash) {
  WalOptions options;
  options.segment_bytes = 1 << 20;
  std::set<uint64_t> last_indexes;
  uint64_t torn_opens = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    bool garbage = seed % 2 == 1;
    SimDisk disk;
    auto wal = open_wal(disk, options);
    append_through(*wal, 20, 100, 5);
    require_ok(wal->sync());
    append_through(*wal, 45, 100, 5);  // five unsynced writes to tear
    BOOST_TEST(disk.unsynced_bytes("/n1") > 0u);
    crash(disk, "/n1", seed, true, garbage);
    wal.reset();  // the dead process's objects go away after the power cut
    wal = open_wal(disk, options);
    check_reopened(*wal, 20, 45, 100);
    last_indexes.insert(wal->last_index());
    torn_opens += wal->open_report().torn_bytes > 0 ? 1 : 0;
    // The repaired WAL takes appends and keeps them through a clean crash.
    append_through(*wal, wal->last_index() + 3, 100, 1);
    require_ok(wal->sync());
    uint64_t synced = wal->last_index();
    crash(disk, "/n1", seed, true, garbage);
    wal.reset();
    wal = open_wal(disk, options);
    BOOST_TEST(wal->last_index() == synced);
    check_reopened(*wal, synced, synced, 100);
  }
  BOOST_TEST(last_indexes.size() > 5u);
  BOOST_TEST(torn_opens > 10u);
}

// A process crash keeps the unsynced tail in the page cache, and the reopened WAL reads it and
// reports it synced (votes and acknowledgements rest on that): it must then be durable, so a
// power cut right after the reopen loses none of it. Across a rotation half the time.
BOOST_AUTO_TEST_CASE(wal_reopened_after_a_process_crash_makes_what_it_read_durable) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    WalOptions options;
    options.segment_bytes = seed % 2 == 0 ? 4096 : 1 << 20;
    SimDisk disk;
    auto wal = open_wal(disk, options);
    append_through(*wal, 20, 200, 5);
    require_ok(wal->sync());
    append_through(*wal, 45, 200, 5);  // written, never synced
    BOOST_TEST_REQUIRE(disk.unsynced_bytes("/n1") > 0u);
    disk.kill_process("/n1");
    wal.reset();
    wal = open_wal(disk, options);
    BOOST_TEST_REQUIRE(wal->last_index() == 45u, "the page cache kept the tail");
    BOOST_TEST_REQUIRE(wal->synced_index() == 45u);
    BOOST_TEST(disk.unsynced_bytes("/n1") == 0u, "seed " << seed << ": what the reopened WAL read is durable");
    crash(disk, "/n1", seed, true, seed % 4 < 2);
    wal.reset();
    wal = open_wal(disk, options);
    BOOST_TEST(wal->last_index() == 45u, "seed " << seed << ": entries a power cut took after the reopen");
    check_reopened(*wal, 45, 45, 200);
  }
}

// SIGKILL can stop a write(2) part way: the kernel copies a write into the page cache a page at
// a time and gives up at a page boundary once a fatal signal is pending, so the page cache keeps
// a page-aligned prefix of the last write and the old bytes past it (here: the segment's zeros).
// A WAL reopened in the same boot then finds whole records up to the cut and a torn one at it:
// it keeps the former, drops the latter, makes what it kept durable, and appends after it.
BOOST_AUTO_TEST_CASE(wal_reopened_after_a_process_killed_inside_a_write_keeps_the_whole_records) {
  constexpr uint64_t page = 4096;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    WalOptions options;
    options.segment_bytes = 1 << 20;
    SimDisk disk;
    // Each seed its own sizes, so the write and its page boundaries fall elsewhere.
    const size_t payload = 120 + 53 * seed;
    const uint64_t synced = 10 + seed, written = synced + 20 + 2 * seed;
    auto wal = open_wal(disk, options);
    append_through(*wal, synced, payload, 5);
    require_ok(wal->sync());
    std::string segment;
    for (const std::string& name : disk.list(wal_directory).value()) {
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".wal") == 0) segment = wal_directory + "/" + name;
    }
    BOOST_TEST_REQUIRE(!segment.empty());
    const std::string before = contents(disk, segment);
    append_through(*wal, written, payload, written);  // one write, never synced
    const std::string after = contents(disk, segment);
    BOOST_TEST_REQUIRE(after.size() == before.size(), "the segment is preallocated");
    uint64_t low = 0, high = after.size();
    while (low < high && before[low] == after[low]) ++low;
    while (high > low && before[high - 1] == after[high - 1]) --high;
    const uint64_t first_boundary = (low / page + 1) * page;
    BOOST_TEST_REQUIRE(first_boundary < high, "the write spans a page boundary");
    const uint64_t boundaries = (high - 1 - first_boundary) / page + 1;
    const uint64_t cut = first_boundary + (seed % boundaries) * page;
    // What the page cache holds when the copy stopped at `cut`: the old bytes past it.
    write(*open(disk, segment, OpenMode::read_write), cut, before.substr(cut, high - cut));
    disk.kill_process("/n1");
    wal.reset();
    wal = open_wal(disk, options);
    const uint64_t kept = wal->last_index();
    BOOST_TEST_MESSAGE("seed " << seed << ": cut at byte " << cut << " of the write " << low << ".." << high << ", kept " << kept);
    BOOST_TEST_REQUIRE(kept >= synced, "seed " << seed << ": a synced entry lost");
    BOOST_TEST_REQUIRE(kept < written, "seed " << seed << ": entries past the cut read back");
    check_reopened(*wal, synced, written, payload);
    BOOST_TEST(wal->synced_index() == kept);
    BOOST_TEST(disk.unsynced_bytes("/n1") == 0u, "seed " << seed << ": what the reopened WAL kept is durable");
    append_through(*wal, kept + 10, payload, 5);
    require_ok(wal->sync());
    crash(disk, "/n1", seed, true, seed % 2 == 0);
    wal.reset();
    wal = open_wal(disk, options);
    BOOST_TEST(wal->last_index() == kept + 10, "seed " << seed << ": the entries appended after the torn one");
    check_reopened(*wal, kept + 10, kept + 10, payload);
  }
}

// The directory too: a process killed between removing a segment (as a drop of compacted
// segments does) and syncing the directory leaves the removal in the page cache only. The
// reopened WAL goes by the directory as it reads it, so that reading must be made durable, or
// a power cut brings back a segment the reopened WAL no longer counts.
BOOST_AUTO_TEST_CASE(wal_reopened_after_a_process_crash_makes_its_directory_durable) {
  WalOptions options;
  options.segment_bytes = 4096;
  SimDisk disk;
  auto wal = open_wal(disk, options);
  append_through(*wal, 60, 200, 5);
  require_ok(wal->sync());
  BOOST_TEST_REQUIRE(wal->segment_count() > 2u);
  auto listed = disk.list(wal_directory);
  BOOST_REQUIRE(listed.is_ok());
  std::string first;
  for (const std::string& name : listed.value()) {
    if (first.empty() && name.size() > 4 && name.compare(name.size() - 4, 4, ".wal") == 0) first = name;
  }
  BOOST_TEST_REQUIRE(!first.empty());
  require_ok(disk.remove(wal_directory + "/" + first));  // the directory is not synced after it
  disk.kill_process("/n1");
  wal.reset();
  wal = open_wal(disk, options);
  const std::vector<std::string> seen = disk.list(wal_directory).value();
  crash(disk, "/n1");
  BOOST_TEST(!disk.exists(wal_directory + "/" + first), first << " came back after the power cut");
  BOOST_TEST(disk.list(wal_directory).value() == seen, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(wal_keeps_every_synced_entry_through_crashes_across_rotation) {
  WalOptions options;
  options.segment_bytes = 4096;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    SimDisk disk;
    auto wal = open_wal(disk, options);
    uint64_t synced = 0;
    for (int round = 0; round < 4; ++round) {
      append_through(*wal, wal->last_index() + 30, 200, 7);  // ~27 records a segment: rotates
      require_ok(wal->sync());
      synced = wal->last_index();
      if (seed % 2 == 0) require_ok(wal->prepare_next_segment());
      append_through(*wal, synced + 25, 200, 4);  // unsynced, across a rotation half the time
      crash(disk, "/n1", seed * 10 + static_cast<uint64_t>(round), true, seed % 4 < 2);
      wal.reset();
      wal = open_wal(disk, options);
      check_reopened(*wal, synced, synced + 25, 200);
    }
    BOOST_TEST(wal->segment_count() > 2u);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace keyval::sim
