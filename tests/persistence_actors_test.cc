// Goal: the wal_writer, store_indexer and recovery_coordinator keep the durability contract as actors;
// the snapshotter drops an incoming snapshot its sender gave up.
// Method: a real actor system over real files in a temporary directory, driven through BlockingPersistence.
#define BOOST_TEST_MODULE persistence_actors_test
#include <boost/test/unit_test.hpp>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/persistence.h"
#include "actors/record_batch.h"
#include "actors/snapshotter.h"
#include "storage/env.h"
#include "tests/support/forwarding_env.h"
#include "tests/support/temp_dir.h"

using namespace keyval;
using keyval::testing::TempDir;

namespace {

// Passes everything to the real file system but fails fdatasync once `fail_syncs` is set,
// and makes each fdatasync take `sync_delay_ms` longer.
class FailingSyncEnv final : public keyval::testing::ForwardingEnv {
 public:
  std::atomic<bool> fail_syncs{false};
  std::atomic<int> sync_delay_ms{0};

  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override {
    KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, base_.open_file(path, mode));
    return std::unique_ptr<File>(new FailingFile(std::move(file), fail_syncs, sync_delay_ms));
  }

 private:
  class FailingFile final : public keyval::testing::ForwardingFile {
   public:
    FailingFile(std::unique_ptr<File> file, std::atomic<bool>& fail, std::atomic<int>& delay_ms)
        : ForwardingFile(std::move(file)), fail_(fail), delay_ms_(delay_ms) {}
    Status sync_data() override {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_.load()));
      if (fail_) return Status::io_error("fdatasync " + file_->path() + ": Input/output error (injected)");
      return file_->sync_data();
    }

   private:
    std::atomic<bool>& fail_;
    std::atomic<int>& delay_ms_;
  };
};

struct Node {
  explicit Node(const std::string& directory, Env* env = &posix_env(), uint64_t sync_every_entries = 100000,
                uint64_t segment_bytes = 64ull << 20, uint64_t queue_bytes_max = 64ull << 20) {
    add_message_types(config);
    system = std::make_unique<caf::actor_system>(config);
    PersistenceConfig persistence_config;
    persistence_config.env = env;
    persistence_config.data_directory = directory;
    persistence_config.writer.queue_bytes_max = queue_bytes_max;
    persistence_config.indexer.sync_every_entries = sync_every_entries;
    persistence_config.recovery.wal.segment_bytes = segment_bytes;
    persistence_config.log = [this](const std::string& line) { log.push_back(line); };
    auto started = BlockingPersistence::start(*system, persistence_config);
    status = started.status();
    if (started.is_ok()) persistence = std::move(started).value();
  }
  ~Node() {
    if (persistence) persistence->stop();
  }

  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  std::unique_ptr<BlockingPersistence> persistence;
  Status status;
  std::vector<std::string> log;
};

std::vector<Entry> make_entries(uint64_t first, uint64_t count, uint64_t term) {
  std::vector<Entry> entries;
  for (uint64_t index = first; index < first + count; ++index) {
    entries.push_back(Entry{index, term, keyval::testing::make_payload(index * 7 + term, 64)});
  }
  return entries;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(persistence_actors)

BOOST_AUTO_TEST_CASE(recovered_state_carries_the_probation_records_to_the_raft_node) {
  // A node restarted while on probation must stay on it, and keep the peers it counted
  // (raft/probation.cc): the recovered state the coordinator hands over carries both.
  RecoveredState state;
  state.metadata = Metadata{4, 2};
  state.metadata.counted = {2, 3};
  state.metadata.probation = true;
  state.first_index = 3;
  state.last_index = 9;
  state.last_term = 4;
  state.snapshot = SnapshotMetadata{2, 1, {Member{1, "a:1"}, Member{2, "b:1", "c:1", true}}};
  std::string summary;
  auto decoded = decode_recovered_state(encode_recovered_state(state, "recovered 7 entries"), &summary);
  BOOST_TEST_REQUIRE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST((decoded->metadata == state.metadata));
  BOOST_TEST(decoded->first_index == 3u);
  BOOST_TEST(decoded->last_index == 9u);
  BOOST_TEST(decoded->last_term == 4u);
  BOOST_TEST_REQUIRE(decoded->snapshot.has_value());
  BOOST_TEST((*decoded->snapshot == *state.snapshot));
  BOOST_TEST(summary == "recovered 7 entries");
}

// The figures the simulator and the experiment tables read travel as fields, not as words
// of the summary line.
BOOST_AUTO_TEST_CASE(recovered_state_carries_the_recovery_figures) {
  RecoveryReport report;
  report.entries_recovered = 41;
  report.torn_bytes_cut = 17;
  report.lmdb_rebuilt = true;
  report.lmdb_rebuild_reason = "a power cut since it was last synced";
  RecoveryFigures figures;
  std::string summary;
  auto decoded = decode_recovered_state(encode_recovered_state(RecoveredState{}, report.summary(), report.figures()),
                                        &summary, &figures);
  BOOST_TEST_REQUIRE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST(figures.entries_recovered == 41u);
  BOOST_TEST(figures.torn_bytes_cut == 17u);
  BOOST_TEST(figures.lmdb_rebuilt);
  BOOST_TEST(summary == report.summary());
  report.lmdb_rebuilt = false;
  decoded = decode_recovered_state(encode_recovered_state(RecoveredState{}, report.summary(), report.figures()),
                                   nullptr, &figures);
  BOOST_TEST_REQUIRE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST(!figures.lmdb_rebuilt);
}

BOOST_AUTO_TEST_CASE(entries_and_metadata_are_durable_when_acknowledged) {
  TempDir dir;
  {
    Node node(dir.path());
    BOOST_REQUIRE_MESSAGE(node.status.is_ok(), node.status.to_string());
    BOOST_TEST(node.persistence->recovered().last_index == 0u);
    auto durable = node.persistence->persist_metadata(Metadata{4, 2});
    BOOST_REQUIRE(durable.is_ok());
    auto entries = node.persistence->persist_entries(make_entries(1, 100, 4));
    BOOST_REQUIRE_MESSAGE(entries.is_ok(), entries.status().to_string());
    BOOST_TEST(*entries == 100u);
  }
  Node restarted(dir.path());
  BOOST_REQUIRE_MESSAGE(restarted.status.is_ok(), restarted.status.to_string());
  const RecoveredState& state = restarted.persistence->recovered();
  BOOST_TEST(state.metadata.current_term == 4u);
  BOOST_TEST(state.metadata.voted_for == 2u);
  BOOST_TEST(state.last_index == 100u);
  BOOST_TEST(state.last_term == 4u);
  auto loaded = restarted.persistence->load_entries(1, 100);
  BOOST_REQUIRE(loaded.is_ok());
  BOOST_TEST((*loaded == make_entries(1, 100, 4)));
  BOOST_REQUIRE(!restarted.log.empty());
  BOOST_TEST(restarted.log.back().find("recovered") != std::string::npos, restarted.log.back());
}

BOOST_AUTO_TEST_CASE(index_zero_gets_the_next_index_assigned) {
  TempDir dir;
  Node node(dir.path());
  BOOST_REQUIRE(node.status.is_ok());
  auto first = node.persistence->persist({Record::log(0, 1, {1, 2, 3}), Record::log(0, 1, {4})});
  BOOST_REQUIRE(first.is_ok());
  BOOST_TEST(*first == 2u);
  auto second = node.persistence->persist({Record::log(0, 1, {5})});
  BOOST_REQUIRE(second.is_ok());
  BOOST_TEST(*second == 3u);
}

BOOST_AUTO_TEST_CASE(wrong_index_is_refused_and_leaves_no_trace) {
  TempDir dir;
  Node node(dir.path());
  BOOST_REQUIRE(node.status.is_ok());
  BOOST_REQUIRE(node.persistence->persist_entries(make_entries(1, 3, 1)).is_ok());
  // The batch's first entry is fine, its second skips an index: nothing of it may land.
  auto refused = node.persistence->persist({Record::log(4, 1, {9}), Record::log(6, 1, {9})});
  BOOST_REQUIRE(!refused.is_ok());
  BOOST_TEST((refused.status().code() == Code::invalid_argument));
  BOOST_TEST(refused.status().message().find("expected 5") != std::string::npos, refused.status().message());
  auto synced = node.persistence->sync();
  BOOST_REQUIRE(synced.is_ok());
  BOOST_TEST(*synced == 3u);
}

BOOST_AUTO_TEST_CASE(truncation_then_new_entries_survive_restart) {
  TempDir dir;
  {
    Node node(dir.path());
    BOOST_REQUIRE(node.status.is_ok());
    BOOST_REQUIRE(node.persistence->persist_entries(make_entries(1, 20, 1)).is_ok());
    auto replaced = node.persistence->persist(
        Persistence::batch(10, Metadata{2, 3}, make_entries(11, 5, 2)));
    BOOST_REQUIRE_MESSAGE(replaced.is_ok(), replaced.status().to_string());
    BOOST_TEST(*replaced == 15u);
  }
  Node restarted(dir.path());
  BOOST_REQUIRE(restarted.status.is_ok());
  BOOST_TEST(restarted.persistence->recovered().last_index == 15u);
  BOOST_TEST(restarted.persistence->recovered().metadata.current_term == 2u);
  auto loaded = restarted.persistence->load_entries(1, 15);
  BOOST_REQUIRE(loaded.is_ok());
  std::vector<Entry> expected = make_entries(1, 10, 1);
  for (Entry& entry : make_entries(11, 5, 2)) expected.push_back(entry);
  BOOST_TEST((*loaded == expected));
}

BOOST_AUTO_TEST_CASE(concurrent_requests_share_group_commits) {
  TempDir dir;
  Node node(dir.path());
  BOOST_REQUIRE(node.status.is_ok());
  constexpr int threads = 16;
  constexpr int requests_per_thread = 50;
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&]() {
      for (int i = 0; i < requests_per_thread; ++i) {
        if (!node.persistence->persist({Record::log(0, 1, std::vector<uint8_t>(128, 7))}).is_ok()) ++failures;
      }
    });
  }
  for (auto& client : clients) client.join();
  BOOST_TEST(failures.load() == 0);
  caf::scoped_actor self{*node.system};
  uint64_t last = 0, synced = 0, commits = 0, records = 0;
  self->request(node.persistence->persistence().writer(), caf::infinite, stats_atom_v)
      .receive([&](uint64_t a, uint64_t b, uint64_t c, uint64_t d) { last = a, synced = b, commits = c, records = d; },
               [&](caf::error&) {});
  BOOST_TEST(last == uint64_t{threads * requests_per_thread});
  BOOST_TEST(synced == last);
  BOOST_TEST(records == last);
  BOOST_TEST_MESSAGE(records << " records in " << commits << " group commits");
  BOOST_TEST(commits < records, "concurrent requests must share fdatasyncs");
}

// Durable records go to LMDB's log in batches (WalWriterConfig::index_batch_records); a batch
// that never fills still goes, index_delay after its first record.
BOOST_AUTO_TEST_CASE(durable_records_reach_the_log_index_without_a_full_batch) {
  TempDir dir;
  Node node(dir.path());
  BOOST_REQUIRE(node.status.is_ok());
  BOOST_REQUIRE(node.persistence->persist_entries(make_entries(1, 10, 1)).is_ok());
  bool indexed = false;
  for (int attempt = 0; attempt < 200 && !indexed; ++attempt) {
    auto loaded = node.persistence->load_entries(1, 10);
    indexed = loaded.is_ok() && loaded->size() == 10u;
    if (!indexed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_TEST(indexed, "10 durable entries reach LMDB's log within 2 s");
}

BOOST_AUTO_TEST_CASE(checkpoint_releases_only_wal_segments_the_base_snapshot_covers) {
  TempDir dir;
  Node node(dir.path(), &posix_env(), 100000, 16 * 1024);
  BOOST_REQUIRE(node.status.is_ok());
  for (int i = 0; i < 20; ++i) BOOST_REQUIRE(node.persistence->persist_entries(make_entries(i * 50 + 1, 50, 1)).is_ok());
  auto segments_before = posix_env().list(dir.path() + "/wal").value().size();
  // LMDB synced is not enough: after a power cut LMDB is rebuilt from the base snapshot and
  // the WAL, so without a snapshot the WAL keeps everything.
  auto checkpointed = node.persistence->checkpoint();
  BOOST_REQUIRE_MESSAGE(checkpointed.is_ok(), checkpointed.status().to_string());
  BOOST_TEST(*checkpointed == 1000u);
  BOOST_TEST(posix_env().list(dir.path() + "/wal").value().size() == segments_before);
  // A snapshot record through 600 lets the segments below it go, and no later one.
  BOOST_REQUIRE(node.persistence->persist({Record::snapshot(SnapshotMetadata{600, 1, {}})}).is_ok());
  checkpointed = node.persistence->checkpoint();
  BOOST_REQUIRE_MESSAGE(checkpointed.is_ok(), checkpointed.status().to_string());
  auto segments_after = posix_env().list(dir.path() + "/wal").value().size();
  BOOST_TEST(segments_after < segments_before);
  auto loaded = node.persistence->load_entries(1, 1000);
  BOOST_REQUIRE(loaded.is_ok());
  BOOST_TEST(loaded->size() == 1000u, "entries of dropped segments are served from LMDB");
}

BOOST_AUTO_TEST_CASE(failed_fdatasync_stops_the_writer_and_acknowledges_nothing) {
  TempDir dir;
  FailingSyncEnv env;
  Node node(dir.path(), &env);
  BOOST_REQUIRE(node.status.is_ok());
  BOOST_REQUIRE(node.persistence->persist_entries(make_entries(1, 5, 1)).is_ok());
  env.fail_syncs = true;
  auto failed = node.persistence->persist_entries(make_entries(6, 1, 1));
  BOOST_REQUIRE(!failed.is_ok());
  BOOST_TEST(failed.status().message().find("injected") != std::string::npos, failed.status().to_string());
  env.fail_syncs = false;
  // Fail-stop: the writer is gone, later requests are refused rather than pretending.
  auto after = node.persistence->persist_entries(make_entries(6, 1, 1));
  BOOST_TEST(!after.is_ok());
}

BOOST_AUTO_TEST_CASE(a_log_ahead_of_the_recorded_term_refuses_start) {
  // The state a WAL segment drop could leave before 2026-12-06 (simulator seed 12662): entries
  // of a term whose record was lost. The raft core would assert; the coordinator refuses.
  TempDir dir;
  {
    Node node(dir.path());
    BOOST_REQUIRE_MESSAGE(node.status.is_ok(), node.status.to_string());
    BOOST_REQUIRE(node.persistence->persist_metadata(Metadata{3, 2}).is_ok());
    BOOST_REQUIRE(node.persistence->persist_entries(make_entries(1, 10, 5)).is_ok());
  }
  Node refused(dir.path());
  BOOST_REQUIRE(!refused.status.is_ok());
  BOOST_TEST((refused.status.code() == Code::corruption), refused.status.to_string());
  const std::string message = refused.status.message();
  BOOST_TEST(message.find("index 10 of term 5") != std::string::npos, message);
  BOOST_TEST(message.find("recorded current term is 3") != std::string::npos, message);
  BOOST_TEST(message.find("replace this node") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(corruption_refuses_start_naming_file_and_offset) {
  TempDir dir;
  {
    Node node(dir.path(), &posix_env(), 100000, 16 * 1024);
    BOOST_REQUIRE(node.status.is_ok());
    for (int i = 0; i < 10; ++i) BOOST_REQUIRE(node.persistence->persist_entries(make_entries(i * 50 + 1, 50, 1)).is_ok());
  }
  std::vector<std::string> names = posix_env().list(dir.path() + "/wal").value();
  std::string first_segment;
  for (const std::string& name : names) {
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".wal") == 0) {
      first_segment = name;
      break;
    }
  }
  BOOST_REQUIRE(!first_segment.empty());
  std::vector<uint8_t> bytes = keyval::testing::read_file(dir.path() + "/wal/" + first_segment);
  bytes[200] ^= 0x01;
  keyval::testing::write_file(dir.path() + "/wal/" + first_segment, bytes);
  Node refused(dir.path(), &posix_env(), 100000, 16 * 1024);
  BOOST_REQUIRE(!refused.status.is_ok());
  BOOST_TEST((refused.status.code() == Code::corruption), refused.status.to_string());
  BOOST_TEST(refused.status.message().find(first_segment) != std::string::npos, refused.status.message());
  BOOST_TEST(refused.status.message().find("offset") != std::string::npos, refused.status.message());
  BOOST_TEST(!refused.persistence, "nothing is served after refusing to start");
}

BOOST_AUTO_TEST_CASE(full_queue_refuses_requests_with_busy) {
  TempDir dir;
  FailingSyncEnv env;
  Node node(dir.path(), &env, 100000, 64ull << 20, /*queue_bytes_max=*/1);
  BOOST_REQUIRE(node.status.is_ok());
  env.sync_delay_ms = 200;
  // The first request starts a slow group commit; the next three queue up behind it. When it
  // returns, the second is accepted and the third and fourth find the queue over its bound.
  std::vector<Status> results(4);
  std::vector<std::thread> clients;
  clients.emplace_back([&]() { results[0] = node.persistence->persist({Record::log(0, 1, {1})}).status(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 1; i < 4; ++i) {
    clients.emplace_back([&, i]() { results[i] = node.persistence->persist({Record::log(0, 1, {1})}).status(); });
  }
  for (auto& client : clients) client.join();
  int accepted = 0;
  int busy = 0;
  for (const Status& result : results) {
    accepted += result.is_ok();
    busy += result.code() == Code::busy;
  }
  BOOST_TEST(accepted == 2);
  BOOST_TEST(busy == 2);
  env.sync_delay_ms = 0;
  BOOST_TEST(node.persistence->sync().is_ok(), "the writer keeps serving after refusing");
}

BOOST_AUTO_TEST_CASE(malformed_frame_is_refused_without_stopping_the_writer) {
  TempDir dir;
  Node node(dir.path());
  BOOST_REQUIRE(node.status.is_ok());
  caf::scoped_actor self{*node.system};
  bool refused = false;
  self->request(node.persistence->persistence().writer(), caf::infinite, persist_atom_v, Frame{{1, 2, 3}})
      .receive([&](uint64_t) {}, [&](caf::error& error) { refused = to_status(error).code() == Code::corruption; });
  BOOST_TEST(refused);
  BOOST_TEST(node.persistence->persist_entries(make_entries(1, 1, 1)).is_ok());
}

BOOST_AUTO_TEST_SUITE_END()

// A leader abandons a transfer that makes no progress and may never start another (a new
// leader catches the follower up with appends): the follower's partial file must not wait for
// a restart. The snapshotter drops an incoming snapshot idle past incoming_idle_max at its
// next message, and a late chunk of it is told to start over.
BOOST_AUTO_TEST_CASE(an_incoming_snapshot_its_sender_gave_up_is_dropped_at_the_next_message) {
  TempDir dir;
  auto store = Store::open(dir.path() + "/lmdb");
  BOOST_REQUIRE_MESSAGE(store.is_ok(), store.status().to_string());
  caf::actor_system_config system_config;
  add_message_types(system_config);
  caf::actor_system system{system_config};
  SnapshotterConfig config;
  config.directory = dir.path() + "/snapshots";
  config.incoming_idle_max = std::chrono::milliseconds(300);
  auto lines = std::make_shared<std::vector<std::string>>();
  auto lines_mutex = std::make_shared<std::mutex>();
  config.log = [lines, lines_mutex](const std::string& line) {
    std::lock_guard<std::mutex> lock(*lines_mutex);
    lines->push_back(line);
  };
  auto snapshotter = spawn_snapshotter(system, std::shared_ptr<Store>(std::move(store).value()), config, false);
  caf::scoped_actor self{system};
  auto write = [&](uint64_t offset, size_t bytes) {
    uint64_t next = UINT64_MAX;
    self->request(snapshotter, std::chrono::seconds(5), snapshot_write_atom_v, uint64_t{7}, uint64_t{2}, offset,
                  Frame{std::vector<uint8_t>(bytes, 0xab)})
        .receive([&](uint64_t reply) { next = reply; }, [&](caf::error& error) { BOOST_FAIL(to_string(error)); });
    return next;
  };
  auto release_nothing = [&] {
    self->request(snapshotter, std::chrono::seconds(5), compact_atom_v, uint64_t{0}, uint64_t{0})
        .receive([](uint64_t) {}, [&](caf::error& error) { BOOST_FAIL(to_string(error)); });
  };
  auto partial_files = [&] {
    size_t count = 0;
    auto names = posix_env().list(config.directory);
    BOOST_REQUIRE(names.is_ok());
    for (const std::string& name : *names) count += name.find(".receive.tmp") != std::string::npos ? 1 : 0;
    return count;
  };

  BOOST_TEST(write(0, 100) == 100u);
  BOOST_TEST(write(100, 50) == 150u);
  release_nothing();  // within the idle bound: kept
  BOOST_TEST(partial_files() == 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  BOOST_TEST(partial_files() == 1u);  // no timer: it goes at the next message
  release_nothing();
  BOOST_TEST(partial_files() == 0u);
  {
    std::lock_guard<std::mutex> lock(*lines_mutex);
    bool logged = false;
    for (const std::string& line : *lines) logged = logged || line.find("incoming snapshot 7 dropped: no chunk for 300 ms after 150 bytes") != std::string::npos;
    BOOST_TEST(logged);
  }
  BOOST_TEST(write(150, 10) == 0u);  // the sender starts over
  BOOST_TEST(partial_files() == 0u);
  caf::anon_send_exit(snapshotter, caf::exit_reason::user_shutdown);
}
