// Goal: the state machine actor answers a proposal batch's wait (wait_many) and a batch of
// gets (kv_get_many) exactly as it answers one wait or one get each: a result per entry once
// applied, `lost` where another term's entry applied at an index, `forgotten` where a
// snapshot replaced results still awaited, and values read at the read index. It runs in a
// real actor system against a fake indexer whose apply answers each entry with its payload
// as the result's value, so every answer can be traced to its entry.
#define BOOST_TEST_MODULE state_machine_test
#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
#include <vector>

#include "actors/record_batch.h"
#include "actors/state_machine.h"
#include "storage/kv_command.h"

using namespace keyval;

namespace {

caf::error unused() { return to_error(Status::unsupported("not used by the state machine")); }

// Applies anything: each entry's result carries its payload (as text) and its index. Gets
// answer "v:" + key, found, for keys not starting with "absent".
store_indexer_actor::behavior_type echo_indexer(int) {
  return {
      [](index_atom, Frame&) -> caf::result<uint64_t> { return unused(); },
      [](read_atom, uint64_t, uint64_t) -> caf::result<Frame> { return unused(); },
      [](bounds_atom) -> caf::result<uint64_t, uint64_t> { return unused(); },
      [](checkpoint_atom) -> caf::result<uint64_t> { return unused(); },
      [](kv_apply_atom, Frame& frame) -> caf::result<Frame> {
        auto entries = decode_entries(frame.bytes, "test apply");
        if (!entries.is_ok()) return to_error(entries.status());
        std::vector<CommandResult> results;
        for (const Entry& entry : *entries) {
          CommandResult result;
          result.index = entry.index;
          result.value.assign(entry.payload.begin(), entry.payload.end());
          results.push_back(result);
        }
        return Frame{encode_results(results)};
      },
      [](kv_get_atom, std::string& key) -> caf::result<bool, std::string> {
        if (key.rfind("absent", 0) == 0) return {false, std::string()};
        return {true, "v:" + key};
      },
      [](kv_range_atom, Frame&) -> caf::result<Frame> { return unused(); },
      [](kv_applied_atom) -> caf::result<uint64_t> { return unused(); },
      [](compact_atom, uint64_t) -> caf::result<uint64_t> { return unused(); },
      [](snapshot_install_atom, uint64_t, uint64_t) -> caf::result<uint64_t> { return uint64_t{0}; },
      [](hash_atom) -> caf::result<uint64_t, uint64_t> { return unused(); },
  };
}

Entry entry(uint64_t index, uint64_t term, const std::string& text) {
  return Entry{index, term, std::vector<uint8_t>(text.begin(), text.end())};
}

struct WaitAnswer {
  bool answered = false;
  std::vector<CommandResult> results;
  std::vector<uint8_t> outcomes;
};

struct Fixture {
  Fixture() {
    add_message_types(config);
    system = std::make_unique<caf::actor_system>(config);
    indexer = system->spawn(echo_indexer, 0);
    StateMachineConfig machine_config;
    machine_config.applied_index = 10;  // no store: gets go to the indexer
    machine = spawn_state_machine(*system, indexer, machine_config);
    self = std::make_unique<caf::scoped_actor>(*system);
  }
  ~Fixture() {
    caf::anon_send_exit(machine, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(indexer, caf::exit_reason::user_shutdown);
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

  // Nothing arrives within 200 ms.
  bool quiet() {
    bool got = false;
    (*self)->receive([&](caf::message&) { got = true; }, caf::after(std::chrono::milliseconds(200)) >> [] {});
    return !got;
  }

  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  store_indexer_actor indexer;
  state_machine_actor machine;
  std::unique_ptr<caf::scoped_actor> self;
};

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
  const std::vector<std::string> values{"a", "b", "c"};
  for (size_t i = 0; i < 3; ++i) {
    BOOST_CHECK_EQUAL(answer.results[i].value, values[i]);
    BOOST_CHECK_EQUAL(answer.results[i].index, 11 + i);
  }
}

BOOST_FIXTURE_TEST_CASE(entries_another_term_replaced_are_lost_the_rest_applied, Fixture) {
  wait_many(11, 3, 2);
  // A new leader (term 3) kept entry 11 of term 2 and replaced 12 and 13.
  apply({entry(11, 2, "a"), entry(12, 3, "x"), entry(13, 3, "y")});
  WaitAnswer answer = collect();
  BOOST_REQUIRE(answer.answered);
  BOOST_CHECK((answer.outcomes == std::vector<uint8_t>{applied, lost, lost}));
  BOOST_CHECK_EQUAL(answer.results[0].value, "a");
  BOOST_CHECK_EQUAL(answer.results[1].value, "");  // never another entry's result
}

BOOST_FIXTURE_TEST_CASE(a_batch_wait_for_entries_already_applied_is_answered_at_once, Fixture) {
  apply({entry(11, 2, "a"), entry(12, 2, "b")});
  wait_many(11, 2, 2);
  WaitAnswer answer = collect();
  BOOST_REQUIRE(answer.answered);
  BOOST_CHECK((answer.outcomes == std::vector<uint8_t>{applied, applied}));
  BOOST_CHECK_EQUAL(answer.results[1].value, "b");
}

BOOST_FIXTURE_TEST_CASE(a_snapshot_over_awaited_entries_answers_them_forgotten, Fixture) {
  wait_many(11, 2, 2);
  apply({entry(11, 2, "a")});
  (*self)->request(machine, caf::infinite, snapshot_install_atom_v, uint64_t{20}, uint64_t{3})
      .receive([](uint64_t) {}, [&](caf::error& error) { BOOST_FAIL("install failed: " + system->render(error)); });
  WaitAnswer answer = collect();
  BOOST_REQUIRE(answer.answered);
  BOOST_CHECK((answer.outcomes == std::vector<uint8_t>{applied, forgotten}));
  // Below the snapshot, no result is held any more: forgotten at once.
  wait_many(12, 1, 2);
  WaitAnswer late = collect();
  BOOST_REQUIRE(late.answered);
  BOOST_CHECK((late.outcomes == std::vector<uint8_t>{forgotten}));
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
  BOOST_CHECK((values == std::vector<std::string>{"v:k1", "", "v:k3"}));
  BOOST_CHECK((found == std::vector<uint8_t>{1, 0, 1}));
  BOOST_CHECK_GE(served_at, 12u);
}
