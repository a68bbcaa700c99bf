// Goal: the state machine actor applies committed entries to the node's LMDB itself and
// answers a proposal batch's wait (wait_many) and a batch of gets (kv_get_many) exactly as it
// answers one wait or one get each: a result per entry once applied, `lost` where another
// term's entry applied at an index, `forgotten` where a snapshot replaced results still
// awaited, and values read at the read index. It also checks the clean-stop mark the state
// machine shares with the store_indexer (LMDB's other writer): written only once both have
// stopped cleanly.
// Method: a real actor system and a real LMDB store in a temporary directory, applied through
// 10 at start; each entry appends its text to the key "log", so its result (the value's new
// length) and the stored value trace back to the entries applied.
#define BOOST_TEST_MODULE state_machine_test
#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/lmdb_clean_stop.h"
#include "actors/record_batch.h"
#include "actors/state_machine.h"
#include "storage/kv_command.h"
#include "storage/lmdb_state.h"
#include "storage/env.h"
#include "storage/snapshot.h"
#include "tests/support/temp_dir.h"

using namespace keyval;

namespace {

void require_ok(const Status& status) { BOOST_REQUIRE_MESSAGE(status.is_ok(), status.to_string()); }

std::shared_ptr<Store> open_store(const std::string& directory) {
  auto opened = Store::open(directory);
  BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  return std::shared_ptr<Store>(std::move(opened).value());
}

// The entry at (index, term) appends `text` to the key "log".
Entry entry(uint64_t index, uint64_t term, const std::string& text) {
  Command command;
  command.kind = CommandKind::append;
  command.key = "log";
  command.value = text;
  return Entry{index, term, encode_command(command)};
}

struct WaitAnswer {
  bool answered = false;
  std::vector<CommandResult> results;
  std::vector<uint8_t> outcomes;
};

struct Fixture {
  // on_network_thread: the placement's behaviour (hashes and installs on helpers); there is no
  // network thread in these tests, so the machine runs on the scheduler either way.
  explicit Fixture(bool on_network_thread = false) {
    store = open_store(dir.file("lmdb"));
    // Applied through (10, 2), with two keys the gets find.
    require_ok(store->write_kv([](KvWriter& writer) -> Status {
      KV_RETURN_IF_ERROR(writer.put("k1", "v:k1"));
      KV_RETURN_IF_ERROR(writer.put("k3", "v:k3"));
      return writer.set_applied(10, 2);
    }));
    add_message_types(config);
    system = std::make_unique<caf::actor_system>(config);
    StateMachineConfig machine_config;
    machine_config.persistence = SharedStore{store, nullptr, &posix_env(), dir.file("snapshots")};
    machine_config.detached = false;
    machine_config.on_network_thread = on_network_thread;
    machine = spawn_state_machine(*system, machine_config);
    self = std::make_unique<caf::scoped_actor>(*system);
  }
  ~Fixture() { caf::anon_send_exit(machine, caf::exit_reason::user_shutdown); }

  // The value of "log" in LMDB now.
  std::string stored_log() {
    std::string value;
    require_ok(store->read_kv([&](KvReader& reader) -> Status {
      KV_ASSIGN_OR_RETURN(auto found, reader.get("log"));
      if (found) value = *found;
      return Status::ok();
    }));
    return value;
  }

  void apply(const std::vector<Entry>& entries) { caf::anon_send(machine, apply_atom_v, Frame{encode_entries(entries)}); }

  // Asks wait_many; the answer is collected by collect().
  void wait_many(uint64_t first, uint64_t count, uint64_t term) {
    (*self)->send(machine, wait_many_atom_v, first, count, term);
  }

  // The next wait_many answer within 2 s (answered false: none came).
  WaitAnswer collect() {
    WaitAnswer answer;
    (*self)->receive(
        [&](Frame& frame, std::vector<uint8_t>& outcomes) {
          auto results = decode_results(frame.bytes.data(), frame.bytes.size(), "test");
          BOOST_REQUIRE_MESSAGE(results.is_ok(), results.status().to_string());
          answer.answered = true;
          answer.results = std::move(*results);
          answer.outcomes = std::move(outcomes);
        },
        [&](caf::error& error) { BOOST_FAIL("wait_many failed: " + system->render(error)); },
        caf::after(std::chrono::seconds(2)) >> [] {});
    return answer;
  }

  // `of` answers hash_atom with applied_index and the hash of the store's applied state.
  void expect_hash_of_store(const state_machine_actor& of, uint64_t applied_index) {
    uint64_t at = 0, hash = 0;
    (*self)->request(of, std::chrono::seconds(5), hash_atom_v)
        .receive([&](uint64_t applied, uint64_t hashed) { at = applied, hash = hashed; },
                 [&](caf::error& error) { BOOST_FAIL("hash failed: " + system->render(error)); });
    auto expected = hash_state_machine(*store);
    BOOST_REQUIRE(expected.is_ok());
    BOOST_CHECK_EQUAL(at, applied_index);
    BOOST_CHECK_EQUAL(at, expected->first);
    BOOST_CHECK_EQUAL(hash, expected->second);
  }

  // Nothing arrives within 200 ms.
  bool quiet() {
    bool got = false;
    (*self)->receive([&](caf::message&) { got = true; }, caf::after(std::chrono::milliseconds(200)) >> [] {});
    return !got;
  }

  testing::TempDir dir;
  std::shared_ptr<Store> store;
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  state_machine_actor machine;
  std::unique_ptr<caf::scoped_actor> self;
};

struct NetworkFixture : Fixture {
  NetworkFixture() : Fixture(true) {}
};

// Publishes snapshot (20, 3) in the fixture's snapshot directory: another store's state,
// "log" = "snap".
void publish_snapshot(testing::TempDir& dir) {
  auto source = open_store(dir.file("source"));
  require_ok(source->write_kv([](KvWriter& writer) -> Status {
    KV_RETURN_IF_ERROR(writer.put("log", "snap"));
    return writer.set_applied(20, 3);
  }));
  SnapshotDirectory snapshots(posix_env(), dir.file("snapshots"));
  auto taken = take_snapshot(posix_env(), *source, snapshots, {});
  BOOST_REQUIRE_MESSAGE(taken.is_ok(), taken.status().to_string());
}

const auto applied = static_cast<uint8_t>(WaitOutcome::applied);
const auto lost = static_cast<uint8_t>(WaitOutcome::lost);
const auto forgotten = static_cast<uint8_t>(WaitOutcome::forgotten);

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_batch_wait_is_answered_once_every_entry_applied_each_with_its_result, Fixture) {
  wait_many(11, 3, 2);
  apply({entry(11, 2, "a"), entry(12, 2, "b")});
  BOOST_CHECK_MESSAGE(quiet(), "answered before entry 13 applied");
  apply({entry(13, 2, "c")});
  WaitAnswer answer = collect();
  BOOST_REQUIRE(answer.answered);
  BOOST_REQUIRE_EQUAL(answer.results.size(), 3u);
  BOOST_CHECK((answer.outcomes == std::vector<uint8_t>{applied, applied, applied}));
  for (size_t i = 0; i < 3; ++i) {
    BOOST_CHECK_EQUAL(answer.results[i].number, static_cast<int64_t>(i + 1));  // "a", "ab", "abc"
    BOOST_CHECK_EQUAL(answer.results[i].index, 11 + i);
  }
  BOOST_CHECK_EQUAL(stored_log(), "abc");
}

BOOST_FIXTURE_TEST_CASE(entries_another_term_replaced_are_lost_the_rest_applied, Fixture) {
  wait_many(11, 3, 2);
  // A new leader (term 3) kept entry 11 of term 2 and replaced 12 and 13.
  apply({entry(11, 2, "a"), entry(12, 3, "x"), entry(13, 3, "y")});
  WaitAnswer answer = collect();
  BOOST_REQUIRE(answer.answered);
  BOOST_CHECK((answer.outcomes == std::vector<uint8_t>{applied, lost, lost}));
  BOOST_CHECK_EQUAL(answer.results[0].number, 1);
  BOOST_CHECK_EQUAL(answer.results[1].index, 0u);  // never another entry's result
  BOOST_CHECK_EQUAL(answer.results[1].number, 0);
  BOOST_CHECK_EQUAL(stored_log(), "axy");
}

BOOST_FIXTURE_TEST_CASE(a_batch_wait_for_entries_already_applied_is_answered_at_once, Fixture) {
  apply({entry(11, 2, "a"), entry(12, 2, "b")});
  wait_many(11, 2, 2);
  WaitAnswer answer = collect();
  BOOST_REQUIRE(answer.answered);
  BOOST_CHECK((answer.outcomes == std::vector<uint8_t>{applied, applied}));
  BOOST_CHECK_EQUAL(answer.results[1].number, 2);
  BOOST_CHECK_EQUAL(answer.results[1].index, 12u);
}

BOOST_FIXTURE_TEST_CASE(a_snapshot_over_awaited_entries_answers_them_forgotten, Fixture) {
  publish_snapshot(dir);
  wait_many(11, 2, 2);
  apply({entry(11, 2, "a")});
  uint64_t keys = 0;
  (*self)->request(machine, caf::infinite, snapshot_install_atom_v, uint64_t{20}, uint64_t{3})
      .receive([&](uint64_t loaded) { keys = loaded; },
               [&](caf::error& error) { BOOST_FAIL("install failed: " + system->render(error)); });
  BOOST_CHECK_EQUAL(keys, 1u);
  BOOST_CHECK_EQUAL(stored_log(), "snap");  // the snapshot replaced k1, k3 and "a"
  WaitAnswer answer = collect();
  BOOST_REQUIRE(answer.answered);
  BOOST_CHECK((answer.outcomes == std::vector<uint8_t>{applied, forgotten}));
  // Below the snapshot, no result is held any more: forgotten at once.
  wait_many(12, 1, 2);
  WaitAnswer late = collect();
  BOOST_REQUIRE(late.answered);
  BOOST_CHECK((late.outcomes == std::vector<uint8_t>{forgotten}));
  // Applying goes on from the snapshot.
  wait_many(21, 1, 3);
  apply({entry(21, 3, "!")});
  WaitAnswer next = collect();
  BOOST_REQUIRE(next.answered);
  BOOST_CHECK_EQUAL(next.results[0].number, 5);
  BOOST_CHECK_EQUAL(stored_log(), "snap!");
}

// Placed on the network thread, the state machine loads a snapshot on a helper's thread; an
// entry committed after the snapshot and sent while the load runs applies after it, on top of
// the snapshot's state, never before it (the load would then erase it).
BOOST_FIXTURE_TEST_CASE(an_install_on_a_helper_holds_back_the_entries_after_it, NetworkFixture) {
  publish_snapshot(dir);
  wait_many(21, 1, 3);
  (*self)->send(machine, snapshot_install_atom_v, uint64_t{20}, uint64_t{3});
  apply({entry(21, 3, "!")});  // queued while the install is under way
  uint64_t keys = 0;
  (*self)->receive([&](uint64_t loaded) { keys = loaded; },
                   [&](caf::error& error) { BOOST_FAIL("install failed: " + system->render(error)); },
                   caf::after(std::chrono::seconds(5)) >> [] { BOOST_FAIL("no install answer"); });
  BOOST_CHECK_EQUAL(keys, 1u);
  WaitAnswer next = collect();
  BOOST_REQUIRE(next.answered);
  BOOST_CHECK((next.outcomes == std::vector<uint8_t>{applied}));
  BOOST_CHECK_EQUAL(next.results[0].number, 5);  // "snap!": appended to the snapshot's value
  BOOST_CHECK_EQUAL(stored_log(), "snap!");
}

BOOST_FIXTURE_TEST_CASE(a_batch_wait_beyond_the_pending_bound_is_refused_busy, Fixture) {
  (*self)->request(machine, caf::infinite, wait_many_atom_v, uint64_t{11}, uint64_t{70000}, uint64_t{2})
      .receive([](Frame&, std::vector<uint8_t>&) { BOOST_FAIL("70,000 waits exceed waits_max (65,536)"); },
               [](caf::error& error) { BOOST_CHECK(to_status(error).code() == Code::busy); });
}

BOOST_FIXTURE_TEST_CASE(a_batch_of_gets_waits_for_its_read_index_and_answers_each_key, Fixture) {
  std::vector<std::string> values;
  std::vector<uint8_t> found;
  uint64_t served_at = 0;
  bool answered = false;
  (*self)->send(machine, kv_get_many_atom_v, std::vector<std::string>{"k1", "absent", "k3"}, uint64_t{12});
  BOOST_CHECK_MESSAGE(quiet(), "served before the read index was applied");
  apply({entry(11, 2, "a"), entry(12, 2, "b")});
  (*self)->receive(
      [&](std::vector<std::string>& v, std::vector<uint8_t>& f, uint64_t at) {
        values = std::move(v);
        found = std::move(f);
        served_at = at;
        answered = true;
      },
      caf::after(std::chrono::seconds(2)) >> [] {});
  BOOST_REQUIRE(answered);
  BOOST_CHECK((values == std::vector<std::string>{"v:k1", "", "v:k3"}));  // from LMDB
  BOOST_CHECK((found == std::vector<uint8_t>{1, 0, 1}));
  BOOST_CHECK_GE(served_at, 12u);
}

BOOST_FIXTURE_TEST_CASE(a_range_is_read_from_what_was_applied_at_its_read_index, Fixture) {
  ClientRequest request;
  request.op = ClientOp::range;
  request.request_id = 7;
  request.key = "k";
  request.range_end = "l";
  (*self)->send(machine, kv_range_atom_v, Frame{encode_client_request(request)}, uint64_t{11});
  BOOST_CHECK_MESSAGE(quiet(), "served before the read index was applied");
  apply({entry(11, 2, "a")});
  bool answered = false;
  (*self)->receive(
      [&](Frame& frame) {
        auto response = decode_client_response(frame.bytes.data(), frame.bytes.size());
        BOOST_REQUIRE_MESSAGE(response.is_ok(), response.status().to_string());
        answered = true;
        BOOST_CHECK_EQUAL(response->request_id, 7u);
        BOOST_CHECK((response->keys == std::vector<std::string>{"k1", "k3"}));
        BOOST_CHECK((response->values == std::vector<std::string>{"v:k1", "v:k3"}));
        BOOST_CHECK_GE(response->index, 11u);
      },
      [&](caf::error& error) { BOOST_FAIL("range failed: " + system->render(error)); },
      caf::after(std::chrono::seconds(2)) >> [] {});
  BOOST_CHECK(answered);
}

BOOST_FIXTURE_TEST_CASE(the_hash_is_of_the_applied_state_at_its_index, Fixture) {
  wait_many(11, 1, 2);
  apply({entry(11, 2, "a")});
  BOOST_REQUIRE(collect().answered);
  expect_hash_of_store(machine, 11);
}

// On the network thread (StateMachineConfig::on_network_thread) the state machine hands a hash
// to a helper on a thread of its own: the same answer, the hash of the applied state at its index.
BOOST_FIXTURE_TEST_CASE(a_hash_handed_to_a_helper_is_the_applied_state_at_its_index, Fixture) {
  StateMachineConfig config;
  config.persistence = SharedStore{store, nullptr, &posix_env(), dir.file("snapshots")};
  config.detached = false;
  config.on_network_thread = true;  // no network thread here: the hash still goes to the helper
  state_machine_actor on_network = spawn_state_machine(*system, config);
  expect_hash_of_store(on_network, 10);
  caf::anon_send_exit(on_network, caf::exit_reason::user_shutdown);
}

// The reader of large get batches (applied_reader_actor) reads a batch whose read index the
// published applied index has reached itself, at that index, and hands any other to the state
// machine, which answers once it applied that far.
BOOST_FIXTURE_TEST_CASE(the_reader_serves_an_applied_batch_and_hands_a_later_one_to_the_state_machine, Fixture) {
  // Published 11 while the state machine has applied 10: a read at 11 served at once can only
  // be the reader's (the state machine would wait for entry 11).
  auto reads = std::make_shared<AppliedReads>(store);
  reads->publish(11);
  applied_reader_actor reader = spawn_applied_reader(*system, reads, machine, false);
  const std::vector<std::string> keys{"k1", "absent", "k3"};
  auto ask = [&](uint64_t read_index, uint64_t* served_at) {
    std::vector<std::string> values;
    (*self)->request(reader, std::chrono::seconds(5), kv_get_many_atom_v, keys, read_index)
        .receive(
            [&](std::vector<std::string>& v, std::vector<uint8_t>& found, uint64_t at) {
              BOOST_CHECK((found == std::vector<uint8_t>{1, 0, 1}));
              values = std::move(v);
              *served_at = at;
            },
            [&](caf::error& error) { BOOST_FAIL("kv_get_many failed: " + system->render(error)); });
    return values;
  };
  uint64_t served_at = 0;
  BOOST_CHECK((ask(11, &served_at) == std::vector<std::string>{"v:k1", "", "v:k3"}));
  BOOST_CHECK_EQUAL(served_at, 11u);  // the published index: read by the reader
  // Read index 12, published 11: the state machine waits for entries 11 and 12.
  (*self)->send(reader, kv_get_many_atom_v, keys, uint64_t{12});
  BOOST_CHECK_MESSAGE(quiet(), "served before the read index was applied");
  apply({entry(11, 2, "a"), entry(12, 2, "b")});
  bool answered = false;
  (*self)->receive(
      [&](std::vector<std::string>& values, std::vector<uint8_t>&, uint64_t at) {
        answered = true;
        BOOST_CHECK((values == std::vector<std::string>{"v:k1", "", "v:k3"}));
        BOOST_CHECK_GE(at, 12u);  // the state machine's applied index (nothing published 12)
      },
      caf::after(std::chrono::seconds(2)) >> [] {});
  BOOST_CHECK(answered);
  caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
}

// --- the clean-stop mark LMDB's two writers share ---------------------------------------------

namespace {

LmdbMarkerKind marker_kind(const std::string& data_directory) {
  auto marker = read_lmdb_marker(posix_env(), data_directory);
  BOOST_REQUIRE_MESSAGE(marker.is_ok(), marker.status().to_string());
  return marker->kind;
}

}  // namespace

BOOST_AUTO_TEST_CASE(lmdb_is_marked_clean_only_after_both_writers_stopped_cleanly) {
  testing::TempDir dir;
  auto store = open_store(dir.file("lmdb"));
  LmdbCleanStop mark(store, &posix_env(), dir.path(), nullptr);
  mark.add_writer();  // the indexer
  mark.add_writer();  // the state machine
  mark.writer_stopped(caf::exit_reason::user_shutdown, false);
  BOOST_CHECK_MESSAGE(marker_kind(dir.path()) == LmdbMarkerKind::missing, "marked while a writer still ran");
  mark.writer_stopped(caf::exit_reason::user_shutdown, false);
  BOOST_CHECK(marker_kind(dir.path()) == LmdbMarkerKind::clean);
}

BOOST_AUTO_TEST_CASE(a_writer_that_failed_or_was_killed_leaves_lmdb_unmarked) {
  for (bool failed : {true, false}) {
    testing::TempDir dir;
    auto store = open_store(dir.file("lmdb"));
    LmdbCleanStop mark(store, &posix_env(), dir.path(), nullptr);
    mark.add_writer();
    mark.add_writer();
    // One writer fail-stopped (a clean exit reason, but its LMDB work failed), or was killed.
    mark.writer_stopped(failed ? caf::error(caf::exit_reason::user_shutdown) : caf::error(caf::exit_reason::kill), failed);
    mark.writer_stopped(caf::exit_reason::user_shutdown, false);
    BOOST_CHECK_MESSAGE(marker_kind(dir.path()) == LmdbMarkerKind::missing, (failed ? "failed" : "killed"));
  }
}
