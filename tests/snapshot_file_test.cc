// Goal: snapshot files round-trip the state machine in bounded chunks, every truncation or flipped byte is
// reported with file and offset, and take/load/hash snapshot a live store exactly.
// Method: real files in temporary directories (a SimDisk for power cuts, FaultEnv for ENOSPC), real LMDB.
#define BOOST_TEST_MODULE snapshot_file_test
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "raft/random.h"
#include "sim/sim_disk.h"
#include "storage/snapshot.h"
#include "storage/crc32c.h"
#include "storage/snapshot_file.h"
#include "storage/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/temp_dir.h"

namespace keyval {
namespace {

using testing::TempDir;

constexpr uint64_t small_chunk_bytes = 4096;

void require_ok(const Status& status) { BOOST_REQUIRE_MESSAGE(status.is_ok(), status.to_string()); }
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// What a snapshot holds, as plain maps (kv by key, sessions by client id).
struct Contents {
  std::map<std::string, std::string> pairs;
  std::map<uint64_t, StoredSession> sessions;
};

bool same_sessions(const std::map<uint64_t, StoredSession>& a, const std::map<uint64_t, StoredSession>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [id, session] : a) {
    auto found = b.find(id);
    if (found == b.end() || found->second.last_used_index != session.last_used_index ||
        found->second.record != session.record) {
      return false;
    }
  }
  return true;
}

Contents make_contents(uint64_t keys, uint64_t sessions, uint64_t seed) {
  raft::SplitMix64 random(seed);
  Contents contents;
  for (uint64_t i = 0; i < keys; ++i) {
    std::string key = "key-" + std::to_string(i);
    contents.pairs[key] = std::string(random.between(0, 300), static_cast<char>('a' + i % 26));
  }
  for (uint64_t id = 1; id <= sessions; ++id) {
    contents.sessions[id * 7] = StoredSession{id * 3, testing::make_payload(id, random.between(0, 200))};
  }
  return contents;
}

SnapshotSummary write_snapshot(Env& env, const std::string& path, const SnapshotHeader& header,
                               const Contents& contents, uint64_t chunk_bytes = small_chunk_bytes) {
  auto writer = SnapshotWriter::create(env, path, header, chunk_bytes);
  BOOST_REQUIRE_MESSAGE(writer.is_ok(), writer.status().to_string());
  for (const auto& [key, value] : contents.pairs) require_ok(writer.value()->add_kv(key, value));
  for (const auto& [id, session] : contents.sessions) require_ok(writer.value()->add_session(id, session));
  auto summary = writer.value()->finish();
  BOOST_REQUIRE_MESSAGE(summary.is_ok(), summary.status().to_string());
  return summary.value();
}

// Reads the whole file; the Status of the read (open or read_all).
Status read_snapshot(Env& env, const std::string& path, Contents* contents, SnapshotSummary* summary = nullptr) {
  KV_ASSIGN_OR_RETURN(auto reader, SnapshotReader::open(env, path));
  return reader->read_all(
      [&](std::string_view key, std::string_view value) {
        contents->pairs[std::string(key)] = std::string(value);
        return Status::ok();
      },
      [&](uint64_t id, const StoredSession& session) {
        contents->sessions[id] = session;
        return Status::ok();
      },
      summary);
}

// Offsets where each chunk (and then the end record) starts, walking the 16-byte chunk headers.
std::vector<uint64_t> record_starts(const std::vector<uint8_t>& bytes) {
  auto u32 = [&](uint64_t at) {
    return uint32_t{bytes[at]} | uint32_t{bytes[at + 1]} << 8 | uint32_t{bytes[at + 2]} << 16 |
           uint32_t{bytes[at + 3]} << 24;
  };
  std::vector<uint64_t> starts;
  uint64_t at = u32(12);  // the header's length
  while (at < bytes.size()) {
    starts.push_back(at);
    at += 16 + u32(at + 4);
  }
  return starts;
}

const SnapshotHeader header_at_42{42, 3, {Member{1, "a:1"}, Member{2, "b:2"}, Member{3, "c:3"}}};

BOOST_AUTO_TEST_SUITE(snapshot_file)

BOOST_AUTO_TEST_CASE(many_keys_and_sessions_round_trip_over_several_chunks) {
  TempDir temp;
  const Contents written = make_contents(3000, 150, 1);
  const std::string path = temp.file("snap");
  SnapshotSummary summary = write_snapshot(posix_env(), path, header_at_42, written);
  BOOST_TEST(summary.chunks > 10u, "4 KiB chunks");
  BOOST_TEST(summary.keys == 3000u);
  BOOST_TEST(summary.sessions == 150u);
  BOOST_TEST(summary.file_bytes == testing::file_size(path));

  Contents read;
  SnapshotSummary read_summary;
  require_ok(read_snapshot(posix_env(), path, &read, &read_summary));
  BOOST_TEST((read.pairs == written.pairs));
  BOOST_TEST(same_sessions(read.sessions, written.sessions));
  BOOST_TEST((read_summary.header == header_at_42));
  BOOST_TEST(read_summary.chunks == summary.chunks);
  BOOST_TEST(read_summary.checksum == summary.checksum);
  BOOST_TEST(read_summary.file_bytes == summary.file_bytes);

  auto verified = verify_snapshot_file(posix_env(), path);
  BOOST_REQUIRE_MESSAGE(verified.is_ok(), verified.status().to_string());
  BOOST_TEST(verified->keys == 3000u);
  // Every chunk but the last respects the bound: the reader never needs more than one.
  std::vector<uint8_t> bytes = testing::read_file(path);
  std::vector<uint64_t> starts = record_starts(bytes);
  for (size_t i = 0; i + 1 < starts.size(); ++i) BOOST_TEST(starts[i + 1] - starts[i] - 16 <= small_chunk_bytes);
}

BOOST_AUTO_TEST_CASE(empty_state_and_a_record_bigger_than_a_chunk_round_trip) {
  TempDir temp;
  SnapshotSummary empty = write_snapshot(posix_env(), temp.file("empty"), SnapshotHeader{1, 1, {}}, Contents{});
  BOOST_TEST(empty.chunks == 0u);
  Contents read;
  require_ok(read_snapshot(posix_env(), temp.file("empty"), &read));
  BOOST_TEST(read.pairs.empty());

  Contents big;
  big.pairs["a"] = "small";
  big.pairs["big"] = std::string(3 * small_chunk_bytes, 'x');
  big.pairs["z"] = "small";
  SnapshotSummary summary = write_snapshot(posix_env(), temp.file("big"), header_at_42, big);
  BOOST_TEST(summary.chunks == 3u, "the big record goes alone in its chunk");
  Contents read_big;
  require_ok(read_snapshot(posix_env(), temp.file("big"), &read_big));
  BOOST_TEST((read_big.pairs == big.pairs));
}

BOOST_AUTO_TEST_CASE(truncation_at_every_chunk_boundary_and_inside_chunks_names_the_offset) {
  TempDir temp;
  const std::string path = temp.file("snap");
  write_snapshot(posix_env(), path, header_at_42, make_contents(400, 20, 2));
  const std::vector<uint8_t> bytes = testing::read_file(path);
  std::vector<uint64_t> cuts = {0, 5, 30, 60};  // inside the header record
  for (uint64_t start : record_starts(bytes)) {
    cuts.push_back(start);       // at the boundary
    cuts.push_back(start + 9);   // inside a chunk header
    cuts.push_back(start + 40);  // inside its payload
  }
  cuts.push_back(bytes.size() - 1);
  for (uint64_t cut : cuts) {
    if (cut >= bytes.size()) continue;
    const std::string cut_path = temp.file("cut-" + std::to_string(cut));
    testing::write_file(cut_path, std::vector<uint8_t>(bytes.begin(), bytes.begin() + cut));
    Contents read;
    Status status = read_snapshot(posix_env(), cut_path, &read);
    BOOST_TEST_CONTEXT("cut at " << cut) {
      BOOST_TEST((status.code() == Code::corruption), status.to_string());
      BOOST_TEST(contains(status.message(), "snapshot " + cut_path + " truncated at offset " + std::to_string(cut)),
                 status.message());
      BOOST_TEST(!verify_snapshot_file(posix_env(), cut_path).is_ok());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_flipped_byte_anywhere_is_reported_with_the_offset_of_its_record) {
  TempDir temp;
  const std::string path = temp.file("snap");
  write_snapshot(posix_env(), path, header_at_42, make_contents(400, 20, 3));
  const std::vector<uint8_t> bytes = testing::read_file(path);
  const std::vector<uint64_t> starts = record_starts(bytes);
  const uint64_t end_start = starts.back();
  struct Case {
    uint64_t at;
    uint64_t reported;
    std::string what;
  };
  const std::vector<Case> cases = {
      {0, 0, "bad magic"},
      {20, 0, "header checksum mismatch"},       // the index
      {50, 0, "header checksum mismatch"},       // a member
      {starts[1] + 30, starts[1], "chunk checksum mismatch"},
      {starts[2] + 8, starts[2], "chunk checksum mismatch"},  // its record count
      {starts[2] + 14, starts[2], "chunk checksum mismatch"},  // its checksum
      {end_start + 20, end_start, "end record checksum mismatch"},
      {end_start + 50, end_start, "end record checksum mismatch"},  // the file checksum
  };
  for (const Case& planted : cases) {
    std::vector<uint8_t> damaged = bytes;
    damaged[planted.at] ^= 0x10;
    const std::string damaged_path = temp.file("flip-" + std::to_string(planted.at));
    testing::write_file(damaged_path, damaged);
    Contents read;
    Status status = read_snapshot(posix_env(), damaged_path, &read);
    BOOST_TEST_CONTEXT("byte " << planted.at) {
      BOOST_TEST((status.code() == Code::corruption), status.to_string());
      BOOST_TEST(contains(status.message(), "snapshot " + damaged_path + " at offset " +
                                                std::to_string(planted.reported) + ": " + planted.what),
                 status.message());
    }
  }
  // Bytes after the end record: not a file the writer wrote.
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  testing::write_file(temp.file("longer"), longer);
  Contents read;
  Status status = read_snapshot(posix_env(), temp.file("longer"), &read);
  BOOST_TEST(contains(status.message(), "at offset " + std::to_string(bytes.size()) + ": 1 bytes after the end record"),
             status.message());
}

BOOST_AUTO_TEST_CASE(the_header_keeps_learners_and_client_addresses) {
  // A snapshot sent to a follower carries the configuration it installs: a learner read back
  // as a voter would count toward a quorum it is not part of (the simulator found exactly that).
  TempDir temp;
  const std::string path = temp.file("snap");
  Member learner{4, "d:4", "d:104", true};
  const SnapshotHeader header{42, 3, {Member{1, "a:1", "a:101", false}, Member{2, "b:2", "", false}, learner}};
  write_snapshot(posix_env(), path, header, make_contents(10, 1, 5));
  auto reader = SnapshotReader::open(posix_env(), path);
  BOOST_REQUIRE_MESSAGE(reader.is_ok(), reader.status().to_string());
  BOOST_TEST(((*reader)->header() == header));
  BOOST_TEST((*reader)->header().configuration.back().learner);
  BOOST_TEST((*reader)->header().configuration.front().client_address == "a:101");
}

BOOST_AUTO_TEST_CASE(a_key_of_zero_bytes_with_a_valid_checksum_is_refused_with_its_offset) {
  // The writer never writes one; a file that holds one anyway (checksums recomputed) must not
  // reach the state machine, whose LMDB would refuse the key only in the middle of an install.
  TempDir temp;
  const std::string path = temp.file("snap");
  Contents one;
  one.pairs["k"] = "vv";
  write_snapshot(posix_env(), path, header_at_42, one);
  std::vector<uint8_t> bytes = testing::read_file(path);
  const uint64_t chunk = record_starts(bytes).front();
  const uint64_t record = chunk + 16;
  BOOST_REQUIRE_EQUAL(bytes[record], 1);  // a kv record: type, key bytes, value bytes, key, value
  auto store = [&](uint64_t at, uint32_t value) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<uint8_t>(value >> (8 * i));
  };
  store(record + 1, 0);  // no key: the key's byte becomes the value's first
  store(record + 5, 3);
  const uint32_t payload_bytes = uint32_t{bytes[chunk + 4]} | uint32_t{bytes[chunk + 5]} << 8 |
                                 uint32_t{bytes[chunk + 6]} << 16 | uint32_t{bytes[chunk + 7]} << 24;
  store(chunk + 12, crc32c_extend(crc32c(bytes.data() + chunk, 12), bytes.data() + chunk + 16, payload_bytes));
  testing::write_file(path, bytes);
  Contents read;
  Status status = read_snapshot(posix_env(), path, &read);
  BOOST_TEST((status.code() == Code::corruption), status.to_string());
  BOOST_TEST(contains(status.message(), "at offset " + std::to_string(record) + ": kv record has a key of 0 bytes"),
             status.message());
  BOOST_TEST(read.pairs.empty());
}

BOOST_AUTO_TEST_CASE(writer_refuses_bad_keys_and_bounds) {
  TempDir temp;
  BOOST_TEST((SnapshotWriter::create(posix_env(), temp.file("s"), header_at_42, 10).status().code() ==
              Code::invalid_argument));
  auto writer = SnapshotWriter::create(posix_env(), temp.file("s"), header_at_42, small_chunk_bytes);
  BOOST_REQUIRE(writer.is_ok());
  BOOST_TEST((writer.value()->add_kv("", "v").code() == Code::invalid_argument));
  BOOST_TEST((writer.value()->add_kv(std::string(600, 'k'), "v").code() == Code::invalid_argument));
  BOOST_TEST(writer.value()->finish().is_ok());
  BOOST_TEST((writer.value()->add_kv("k", "v").code() == Code::invalid_argument), "nothing after finish");
}

BOOST_AUTO_TEST_CASE(directory_names_lists_publishes_retains_and_removes_temporaries) {
  TempDir temp;
  SnapshotDirectory directory(posix_env(), temp.file("snapshots"));
  require_ok(directory.create());
  BOOST_TEST(SnapshotDirectory::file_name(42, 3) == "snap-00000000000000000042-00000000000000000003.snap");
  BOOST_TEST(directory.path_for(42, 3) == temp.file("snapshots/snap-00000000000000000042-00000000000000000003.snap"));
  BOOST_TEST(directory.temp_path_for(42, 3, "take") == directory.path_for(42, 3) + ".take.tmp");
  uint64_t index = 0, term = 0;
  BOOST_TEST(!SnapshotDirectory::parse_file_name("snap-42-3.snap", &index, &term));
  BOOST_TEST(!SnapshotDirectory::parse_file_name(SnapshotDirectory::file_name(42, 3) + ".take.tmp", &index, &term));

  for (uint64_t i : {30, 10, 20}) {
    const std::string tmp = directory.temp_path_for(i, 2, "take");
    write_snapshot(posix_env(), tmp, SnapshotHeader{i, 2, {}}, Contents{});
    require_ok(directory.publish(tmp, i, 2));
    BOOST_TEST(!posix_env().exists(tmp));
  }
  write_snapshot(posix_env(), directory.temp_path_for(40, 2, "receive"), SnapshotHeader{40, 2, {}}, Contents{});
  testing::write_file(temp.file("snapshots/notes.txt"), {'x'});
  auto listed = directory.list();
  BOOST_REQUIRE(listed.is_ok());
  BOOST_TEST((listed.value() == std::vector<std::pair<uint64_t, uint64_t>>{{10, 2}, {20, 2}, {30, 2}}));

  require_ok(directory.retain_newest(2));
  BOOST_TEST((directory.list().value() == std::vector<std::pair<uint64_t, uint64_t>>{{20, 2}, {30, 2}}));
  require_ok(directory.remove_temporaries());
  BOOST_TEST(!posix_env().exists(directory.temp_path_for(40, 2, "receive")));
  BOOST_TEST(posix_env().exists(temp.file("snapshots/notes.txt")), "foreign names are left alone");
  BOOST_TEST(directory.list().value().size() == 2u);
  SnapshotDirectory missing(posix_env(), temp.file("none"));
  BOOST_TEST(missing.list().value().empty());
}

BOOST_AUTO_TEST_CASE(a_damaged_snapshot_moved_aside_keeps_its_bytes_and_leaves_the_listing) {
  TempDir temp;
  SnapshotDirectory directory(posix_env(), temp.file("snapshots"));
  require_ok(directory.create());
  for (uint64_t i : {10, 20}) {
    const std::string tmp = directory.temp_path_for(i, 2, "take");
    write_snapshot(posix_env(), tmp, SnapshotHeader{i, 2, {}}, make_contents(5, 1, i));
    require_ok(directory.publish(tmp, i, 2));
  }
  const std::vector<uint8_t> bytes = testing::read_file(directory.path_for(20, 2));
  require_ok(directory.move_aside(20, 2));
  BOOST_TEST(directory.damaged_path_for(20, 2) == temp.file("snapshots/damaged-" + SnapshotDirectory::file_name(20, 2)));
  BOOST_TEST(!posix_env().exists(directory.path_for(20, 2)));
  BOOST_TEST(testing::read_file(directory.damaged_path_for(20, 2)) == bytes, "kept for the operator, unchanged");
  BOOST_TEST((directory.list().value() == std::vector<std::pair<uint64_t, uint64_t>>{{10, 2}}));
  require_ok(directory.retain_newest(0));
  require_ok(directory.remove_temporaries());
  BOOST_TEST(posix_env().exists(directory.damaged_path_for(20, 2)), "neither retain nor cleanup removes it");
  BOOST_TEST(!directory.move_aside(20, 2).is_ok(), "nothing left under the old name");
}

BOOST_AUTO_TEST_CASE(a_published_snapshot_survives_a_power_cut_and_an_unfinished_one_leaves_no_snapshot) {
  sim::SimDisk disk;
  SnapshotDirectory directory(disk, "/n1/snapshots");
  require_ok(directory.create());
  const Contents contents = make_contents(300, 10, 4);
  const std::string done = directory.temp_path_for(10, 1, "take");
  write_snapshot(disk, done, SnapshotHeader{10, 1, {}}, contents);
  require_ok(directory.publish(done, 10, 1));
  // A second one, cut by the power before it is finished.
  auto writer = SnapshotWriter::create(disk, directory.temp_path_for(20, 1, "take"), SnapshotHeader{20, 1, {}},
                                       small_chunk_bytes);
  BOOST_REQUIRE(writer.is_ok());
  for (const auto& [key, value] : contents.pairs) require_ok(writer.value()->add_kv(key, value));
  raft::SplitMix64 random(5);
  disk.crash("/n1", random, /*tear=*/true, /*garbage=*/true);

  BOOST_TEST((directory.list().value() == std::vector<std::pair<uint64_t, uint64_t>>{{10, 1}}));
  Contents read;
  require_ok(read_snapshot(disk, directory.path_for(10, 1), &read));
  BOOST_TEST((read.pairs == contents.pairs));
  require_ok(directory.remove_temporaries());
  BOOST_TEST(!disk.exists(directory.temp_path_for(20, 1, "take")));
}

// --- take_snapshot, load_snapshot, hash_state_machine over a real store -------------------

std::unique_ptr<Store> open_store(const std::string& directory, uint64_t map_bytes_initial = 64ull << 20) {
  StoreOptions options;
  options.sync_mode = SyncMode::relaxed;
  options.map_bytes_initial = map_bytes_initial;
  auto opened = Store::open(directory, options);
  BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  return std::move(opened).value();
}

// Transaction i of the writer: key "k<i % 97>" = "v<i>", a session for client i % 13, applied (i, term i/100+1).
Status write_step(KvWriter& writer, uint64_t i) {
  KV_RETURN_IF_ERROR(writer.put("k" + std::to_string(i % 97), "v" + std::to_string(i)));
  KV_RETURN_IF_ERROR(writer.save_session(i % 13 + 1, StoredSession{i, {static_cast<uint8_t>(i)}}));
  return writer.set_applied(i, i / 100 + 1);
}

// The state after write steps 1..n.
Contents expected_after(uint64_t n) {
  Contents contents;
  for (uint64_t i = 1; i <= n; ++i) {
    contents.pairs["k" + std::to_string(i % 97)] = "v" + std::to_string(i);
    contents.sessions[i % 13 + 1] = StoredSession{i, {static_cast<uint8_t>(i)}};
  }
  return contents;
}

void apply_steps(Store& store, uint64_t first, uint64_t last) {
  for (uint64_t i = first; i <= last; ++i) require_ok(store.write_kv([&](KvWriter& writer) { return write_step(writer, i); }));
}

BOOST_AUTO_TEST_CASE(take_snapshot_while_another_thread_writes_holds_exactly_the_state_at_its_index) {
  TempDir temp;
  auto store = open_store(temp.file("lmdb"), 1ull << 20);  // small: the writer grows the map meanwhile
  apply_steps(*store, 1, 50);
  SnapshotDirectory directory(posix_env(), temp.file("snapshots"));
  constexpr uint64_t steps = 3000;
  std::atomic<bool> done{false};
  const std::string filler(16 * 1024, 'f');
  std::thread owner([&] {
    for (uint64_t i = 51; i <= steps; ++i) {
      Status status = store->write_kv([&](KvWriter& writer) -> Status {
        KV_RETURN_IF_ERROR(writer.put("filler" + std::to_string(i % 500), filler));
        return write_step(writer, i);
      });
      if (!status.is_ok()) BOOST_ERROR(status.to_string());
    }
    done = true;
  });
  std::vector<SnapshotSummary> taken;
  while (!done.load() || taken.empty()) {
    auto summary = take_snapshot(posix_env(), *store, directory, {Member{1, "a:1"}});
    BOOST_REQUIRE_MESSAGE(summary.is_ok(), summary.status().to_string());
    taken.push_back(summary.value());
  }
  owner.join();
  BOOST_TEST_MESSAGE(taken.size() << " snapshots taken while the owner wrote");
  for (const SnapshotSummary& summary : taken) {
    const uint64_t index = summary.header.index;
    BOOST_TEST_CONTEXT("snapshot at " << index) {
      BOOST_TEST(summary.header.term == index / 100 + 1);
      Contents read;
      require_ok(read_snapshot(posix_env(), directory.path_for(index, summary.header.term), &read));
      Contents expected = expected_after(index);
      for (auto it = read.pairs.begin(); it != read.pairs.end();) {
        it = it->first.rfind("filler", 0) == 0 ? read.pairs.erase(it) : std::next(it);
      }
      BOOST_TEST((read.pairs == expected.pairs));
      BOOST_TEST(same_sessions(read.sessions, expected.sessions));
    }
  }
  BOOST_TEST(store->map_bytes() > (1ull << 20));
  auto temporaries = posix_env().list(temp.file("snapshots")).value();
  for (const std::string& name : temporaries) BOOST_TEST(!contains(name, ".tmp"), name);
}

BOOST_AUTO_TEST_CASE(take_snapshot_that_runs_out_of_space_leaves_the_previous_snapshot_and_no_temporary) {
  TempDir temp;
  auto store = open_store(temp.file("lmdb"));
  apply_steps(*store, 1, 200);
  testing::FaultEnv env(posix_env());
  SnapshotDirectory directory(env, temp.file("snapshots"));
  auto first = take_snapshot(env, *store, directory, {});
  BOOST_REQUIRE_MESSAGE(first.is_ok(), first.status().to_string());
  apply_steps(*store, 201, 400);
  env.limit_space(600);  // the header fits, the first chunk does not
  auto second = take_snapshot(env, *store, directory, {});
  BOOST_TEST((second.status().code() == Code::no_space), second.status().to_string());
  BOOST_TEST((directory.list().value() == std::vector<std::pair<uint64_t, uint64_t>>{{200, 3}}));
  for (const std::string& name : posix_env().list(temp.file("snapshots")).value()) {
    BOOST_TEST(!contains(name, ".tmp"), name);
  }
  BOOST_TEST(verify_snapshot_file(env, directory.path_for(200, 3)).is_ok());
}

BOOST_AUTO_TEST_CASE(take_snapshot_of_a_store_with_nothing_applied_is_refused) {
  TempDir temp;
  auto store = open_store(temp.file("lmdb"));
  SnapshotDirectory directory(posix_env(), temp.file("snapshots"));
  auto taken = take_snapshot(posix_env(), *store, directory, {});
  BOOST_TEST((taken.status().code() == Code::invalid_argument), taken.status().to_string());
  BOOST_TEST(directory.list().value().empty());
}

BOOST_AUTO_TEST_CASE(load_snapshot_replaces_the_state_and_the_applied_position) {
  TempDir temp;
  auto source = open_store(temp.file("a"));
  apply_steps(*source, 1, 321);
  SnapshotDirectory directory(posix_env(), temp.file("snapshots"));
  auto taken = take_snapshot(posix_env(), *source, directory, {});
  BOOST_REQUIRE(taken.is_ok());

  auto target = open_store(temp.file("b"), 1ull << 20);
  require_ok(target->save_positions(StorePositions{900, 0, 0}));
  apply_steps(*target, 1, 5);
  require_ok(target->write_kv([](KvWriter& writer) { return writer.put("only-in-b", "x"); }));
  auto loaded = load_snapshot(posix_env(), directory.path_for(321, 4), *target);
  BOOST_REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  BOOST_TEST(loaded->keys == 97u);
  BOOST_TEST(loaded->sessions == 13u);
  auto positions = target->load_positions().value();
  BOOST_TEST(positions.applied_index == 321u);
  BOOST_TEST(positions.applied_term == 4u);
  BOOST_TEST(positions.indexed_index == 900u, "the log's position is not the snapshot's business");
  BOOST_TEST((hash_state_machine(*target).value() == hash_state_machine(*source).value()));
  // The sessions came along with their least-recently-used order.
  require_ok(target->read_kv([](KvReader& reader) -> Status {
    auto oldest = reader.least_recently_used_session().value();
    BOOST_TEST((oldest == std::optional<uint64_t>(309 % 13 + 1)));
    return Status::ok();
  }));
}

BOOST_AUTO_TEST_CASE(load_of_a_damaged_snapshot_leaves_the_store_as_it_was) {
  TempDir temp;
  auto source = open_store(temp.file("a"));
  apply_steps(*source, 1, 300);
  SnapshotDirectory directory(posix_env(), temp.file("snapshots"));
  BOOST_REQUIRE(take_snapshot(posix_env(), *source, directory, {}).is_ok());
  const std::string path = directory.path_for(300, 4);
  std::vector<uint8_t> bytes = testing::read_file(path);
  bytes[bytes.size() - 10] ^= 1;  // the end record: every chunk before it was read and applied
  testing::write_file(path, bytes);

  auto target = open_store(temp.file("b"));
  apply_steps(*target, 1, 5);
  const auto before = hash_state_machine(*target).value();
  auto loaded = load_snapshot(posix_env(), path, *target);
  BOOST_TEST((loaded.status().code() == Code::corruption), loaded.status().to_string());
  BOOST_TEST((hash_state_machine(*target).value() == before));
}

BOOST_AUTO_TEST_CASE(hash_is_equal_for_equal_states_and_differs_otherwise) {
  TempDir temp;
  auto hash_of = [&](const std::string& name, const std::vector<std::pair<std::string, std::string>>& pairs) {
    auto store = open_store(temp.file(name));
    require_ok(store->write_kv([&](KvWriter& writer) -> Status {
      for (const auto& [key, value] : pairs) KV_RETURN_IF_ERROR(writer.put(key, value));
      return writer.set_applied(9, 1);
    }));
    auto hashed = hash_state_machine(*store);
    BOOST_REQUIRE(hashed.is_ok());
    BOOST_TEST(hashed->first == 9u);
    return hashed->second;
  };
  const uint64_t base = hash_of("a", {{"x", "1"}, {"y", "2"}});
  BOOST_TEST(hash_of("b", {{"y", "2"}, {"x", "1"}}) == base, "insertion order does not matter");
  BOOST_TEST(hash_of("c", {{"x", "1"}, {"y", "3"}}) != base);
  BOOST_TEST(hash_of("d", {{"x", "1"}}) != base);
  BOOST_TEST(hash_of("e", {{"ab", "c"}}) != hash_of("f", {{"a", "bc"}}), "lengths separate the fields");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace keyval
