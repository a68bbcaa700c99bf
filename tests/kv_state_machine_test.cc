// Goal: the key-value state machine applies committed entries exactly once, with put/delete/cas
// semantics, client sessions (retries answered with the first result) and a bounded session table.
// Method: real LMDB in temporary directories, reopened to simulate restarts; entries built by hand.
#define BOOST_TEST_MODULE kv_state_machine_test
#include <boost/test/unit_test.hpp>

#include <lmdb.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/kv_command.h"
#include "storage/kv_state_machine.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

namespace keyval {
namespace {

using testing::TempDir;

std::unique_ptr<Store> open_store(const std::string& directory, const StoreOptions& options = {}) {
  auto opened = Store::open(directory, options);
  BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  return std::move(opened).value();
}

void require_ok(const Status& status) { BOOST_REQUIRE_MESSAGE(status.is_ok(), status.to_string()); }

// A command of `kind`; the many-key and increment fields are set by their helpers below.
Command command_of(uint64_t client_id, uint64_t sequence, CommandKind kind, std::string key, std::string value,
                   std::optional<std::string> expected) {
  Command command;
  command.client_id = client_id;
  command.sequence = sequence;
  command.kind = kind;
  command.key = std::move(key);
  command.value = std::move(value);
  command.expected = std::move(expected);
  return command;
}

Command put(uint64_t client_id, uint64_t sequence, std::string key, std::string value) {
  return command_of(client_id, sequence, CommandKind::put, std::move(key), std::move(value), std::nullopt);
}

// A put that does not read the value it replaces (Redis SET without GET, KvClient::put).
Command blind_put(uint64_t client_id, uint64_t sequence, std::string key, std::string value) {
  Command command = put(client_id, sequence, std::move(key), std::move(value));
  command.blind = true;
  return command;
}

Command erase(uint64_t client_id, uint64_t sequence, std::string key) {
  return command_of(client_id, sequence, CommandKind::erase, std::move(key), "", std::nullopt);
}

Command cas(uint64_t client_id, uint64_t sequence, std::string key, std::optional<std::string> expected,
            std::string value) {
  return command_of(client_id, sequence, CommandKind::cas, std::move(key), std::move(value), std::move(expected));
}

Command put_many(std::vector<std::string> keys, std::vector<std::string> values, PutCondition condition,
                 uint64_t client_id = 0, uint64_t sequence = 0) {
  Command command = command_of(client_id, sequence, CommandKind::put_many, "", "", std::nullopt);
  command.keys = std::move(keys);
  command.values = std::move(values);
  command.condition = condition;
  return command;
}

Command erase_many(std::vector<std::string> keys) {
  Command command = command_of(0, 0, CommandKind::erase_many, "", "", std::nullopt);
  command.keys = std::move(keys);
  return command;
}

Command increment(std::string key, int64_t delta, uint64_t client_id = 0, uint64_t sequence = 0) {
  Command command = command_of(client_id, sequence, CommandKind::increment, std::move(key), "", std::nullopt);
  command.delta = delta;
  return command;
}

Command append(std::string key, std::string value) {
  return command_of(0, 0, CommandKind::append, std::move(key), std::move(value), std::nullopt);
}

Entry entry(uint64_t index, const Command& command) { return Entry{index, 1, encode_command(command)}; }

// A state machine over a store in `temp`, reopenable to simulate a restart.
class Fixture {
 public:
  explicit Fixture(KvStateMachineOptions options = {}, StoreOptions store_options = {})
      : options_(options), store_options_(store_options) {
    reopen();
  }

  void reopen() {
    machine_.reset();
    store_.reset();
    store_ = open_store(temp_.file("store"), store_options_);
    machine_ = std::make_unique<KvStateMachine>(*store_, options_);
  }

  std::vector<CommandResult> apply(const std::vector<Entry>& entries) {
    auto results = machine_->apply(entries);
    BOOST_REQUIRE_MESSAGE(results.is_ok(), results.status().to_string());
    BOOST_REQUIRE_EQUAL(results->size(), entries.size());
    return std::move(results).value();
  }

  CommandResult apply_one(const Entry& one) { return apply({one}).front(); }

  std::optional<std::string> get(const std::string& key) {
    auto value = machine_->get(key);
    BOOST_REQUIRE_MESSAGE(value.is_ok(), value.status().to_string());
    return value.value();
  }

  uint64_t applied_index() {
    auto index = machine_->applied_index();
    BOOST_REQUIRE_MESSAGE(index.is_ok(), index.status().to_string());
    return index.value();
  }

  uint64_t session_count() {
    uint64_t count = 0;
    require_ok(store_->read_kv([&](KvReader& reader) -> Status {
      KV_ASSIGN_OR_RETURN(count, reader.session_count());
      return Status::ok();
    }));
    return count;
  }

  Store& store() { return *store_; }
  KvStateMachine& machine() { return *machine_; }

 private:
  TempDir temp_;
  KvStateMachineOptions options_;
  StoreOptions store_options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<KvStateMachine> machine_;
};

std::string status_name(const CommandResult& result) { return command_status_name(result.status); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(kv_state_machine)

BOOST_AUTO_TEST_CASE(commands_round_trip_through_their_encoding) {
  const std::vector<Command> commands = {put(1, 2, "k", std::string("v\0w", 3)), erase(3, 4, "k"),
                                         cas(5, 6, "k", std::nullopt, "new"), cas(5, 7, "k", "", "new"),
                                         command_of(9, 1, CommandKind::noop, "", "", std::nullopt),
                                         put_many({"a", "b"}, {"1", std::string("\0", 1)}, PutCondition::all_absent, 3, 4),
                                         put_many({"a"}, {""}, PutCondition::all_present), erase_many({"a", "b", "c"}),
                                         increment("n", INT64_MIN), increment("n", 7, 2, 3), append("k", "tail"),
                                         blind_put(4, 5, "k", "v")};
  for (const Command& command : commands) {
    std::vector<uint8_t> bytes = encode_command(command);
    auto decoded = decode_command(bytes.data(), bytes.size(), "test");
    BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
    BOOST_CHECK(decoded.value() == command);
  }
  CommandResult result{CommandStatus::stale_request, "why", 42, true, "old", true, -17};
  std::vector<uint8_t> bytes = encode_result(result);
  auto decoded = decode_result(bytes.data(), bytes.size(), "test");
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_CHECK(decoded.value() == result);
}

BOOST_AUTO_TEST_CASE(put_then_get_returns_the_value_and_reports_the_previous_one) {
  Fixture fixture;
  CommandResult first = fixture.apply_one(entry(1, put(0, 0, "k", "a")));
  BOOST_CHECK_EQUAL(status_name(first), "ok");
  BOOST_CHECK(!first.found);
  BOOST_CHECK_EQUAL(first.index, 1u);
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("a"));
  CommandResult second = fixture.apply_one(entry(2, put(0, 0, "k", "b")));
  BOOST_CHECK(second.found);
  BOOST_CHECK_EQUAL(second.value, "a");
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("b"));
  BOOST_CHECK(!fixture.get("other").has_value());
}

BOOST_AUTO_TEST_CASE(a_blind_put_writes_without_reporting_the_value_it_replaced) {
  Fixture fixture;
  fixture.apply_one(entry(1, put(0, 0, "k", "a")));
  CommandResult blind = fixture.apply_one(entry(2, blind_put(0, 0, "k", "b")));
  BOOST_CHECK_EQUAL(status_name(blind), "ok");
  BOOST_CHECK_EQUAL(blind.index, 2u);
  BOOST_CHECK(!blind.found);  // "a" was there, but not read
  BOOST_CHECK(blind.value.empty());
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("b"));
  // A put that asks reads it as before.
  CommandResult seeing = fixture.apply_one(entry(3, put(0, 0, "k", "c")));
  BOOST_CHECK(seeing.found);
  BOOST_CHECK_EQUAL(seeing.value, "b");
  // With a session, a retry of a blind put is answered with its first result, not applied again.
  CommandResult first = fixture.apply_one(entry(4, blind_put(7, 1, "k", "d")));
  fixture.apply_one(entry(5, put(0, 0, "k", "e")));
  CommandResult retry = fixture.apply_one(entry(6, blind_put(7, 1, "k", "d")));
  BOOST_CHECK(retry == first);
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("e"));
}

// MSET, MSETNX, SET NX/XX (docs/REDIS.md): every key or none, under the condition.
BOOST_AUTO_TEST_CASE(put_many_writes_every_key_or_none_under_its_condition) {
  Fixture fixture;
  CommandResult all = fixture.apply_one(entry(1, put_many({"a", "b"}, {"1", "2"}, PutCondition::none)));
  BOOST_CHECK(all.cas_succeeded);
  BOOST_CHECK_EQUAL(all.number, 0);
  BOOST_CHECK(fixture.get("a") == std::optional<std::string>("1"));
  BOOST_CHECK(fixture.get("b") == std::optional<std::string>("2"));
  // One key of three exists: nothing of an all_absent put is written.
  CommandResult refused = fixture.apply_one(entry(2, put_many({"c", "a", "d"}, {"x", "y", "z"}, PutCondition::all_absent)));
  BOOST_CHECK_EQUAL(status_name(refused), "ok");
  BOOST_CHECK(!refused.cas_succeeded);
  BOOST_CHECK_EQUAL(refused.number, 1);
  BOOST_CHECK(!fixture.get("c").has_value());
  BOOST_CHECK(!fixture.get("d").has_value());
  BOOST_CHECK(fixture.get("a") == std::optional<std::string>("1"));
  // all_present: refused while one is absent, written once all exist; found/value are the first key's.
  BOOST_CHECK(!fixture.apply_one(entry(3, put_many({"a", "c"}, {"p", "q"}, PutCondition::all_present))).cas_succeeded);
  BOOST_CHECK(fixture.get("a") == std::optional<std::string>("1"));
  CommandResult present = fixture.apply_one(entry(4, put_many({"b", "a"}, {"p", "q"}, PutCondition::all_present)));
  BOOST_CHECK(present.cas_succeeded);
  BOOST_CHECK(present.found);
  BOOST_CHECK_EQUAL(present.value, "2");
  BOOST_CHECK_EQUAL(present.number, 2);
  BOOST_CHECK(fixture.get("b") == std::optional<std::string>("p"));
  BOOST_CHECK(fixture.get("a") == std::optional<std::string>("q"));
  // A bad key anywhere rejects the whole command.
  CommandResult bad = fixture.apply_one(entry(5, put_many({"e", ""}, {"1", "2"}, PutCondition::none)));
  BOOST_CHECK_EQUAL(status_name(bad), "rejected");
  BOOST_CHECK(!fixture.get("e").has_value());
  BOOST_CHECK_EQUAL(fixture.applied_index(), 5u);
}

BOOST_AUTO_TEST_CASE(erase_many_deletes_the_keys_and_counts_those_that_existed) {
  Fixture fixture;
  fixture.apply_one(entry(1, put_many({"a", "b"}, {"1", "2"}, PutCondition::none)));
  CommandResult erased = fixture.apply_one(entry(2, erase_many({"a", "missing", "b"})));
  BOOST_CHECK_EQUAL(erased.number, 2);
  BOOST_CHECK(erased.found);
  BOOST_CHECK_EQUAL(erased.value, "1");
  BOOST_CHECK(!fixture.get("a").has_value());
  BOOST_CHECK(!fixture.get("b").has_value());
}

// INCR/INCRBY/DECRBY: a signed 64-bit decimal, absent counts as 0; anything else is rejected
// and leaves the value as it was.
BOOST_AUTO_TEST_CASE(increment_adds_to_a_decimal_and_rejects_what_is_not_one) {
  Fixture fixture;
  CommandResult first = fixture.apply_one(entry(1, increment("n", 5)));
  BOOST_CHECK_EQUAL(status_name(first), "ok");
  BOOST_CHECK_EQUAL(first.number, 5);
  BOOST_CHECK(fixture.get("n") == std::optional<std::string>("5"));
  BOOST_CHECK_EQUAL(fixture.apply_one(entry(2, increment("n", -12))).number, -7);
  BOOST_CHECK(fixture.get("n") == std::optional<std::string>("-7"));
  uint64_t index = 3;
  for (const std::string& bad : {std::string("abc"), std::string("1.5"), std::string(" 1"), std::string("01"),
                                 std::string("-0"), std::string("+1"), std::string(""), std::string("99999999999999999999")}) {
    fixture.apply_one(entry(index++, put(0, 0, "s", bad)));
    CommandResult refused = fixture.apply_one(entry(index++, increment("s", 1)));
    BOOST_CHECK_MESSAGE(status_name(refused) == "rejected", "'" + bad + "' was incremented");
    BOOST_CHECK_EQUAL(refused.message, "value is not an integer or out of range");
    BOOST_CHECK(fixture.get("s") == std::optional<std::string>(bad));
  }
  fixture.apply_one(entry(index++, put(0, 0, "max", "9223372036854775807")));
  BOOST_CHECK_EQUAL(status_name(fixture.apply_one(entry(index++, increment("max", 1)))), "rejected");
  fixture.apply_one(entry(index++, put(0, 0, "min", "-9223372036854775808")));
  BOOST_CHECK_EQUAL(fixture.apply_one(entry(index++, increment("min", 0))).number, INT64_MIN);
  BOOST_CHECK_EQUAL(status_name(fixture.apply_one(entry(index++, increment("min", -1)))), "rejected");
}

// A retried INCR (same session sequence) answers its first result and adds once.
BOOST_AUTO_TEST_CASE(retried_increment_is_applied_once) {
  Fixture fixture;
  BOOST_CHECK_EQUAL(fixture.apply_one(entry(1, increment("n", 10, 7, 1))).number, 10);
  CommandResult retry = fixture.apply_one(entry(2, increment("n", 10, 7, 1)));
  BOOST_CHECK_EQUAL(retry.number, 10);
  BOOST_CHECK(fixture.get("n") == std::optional<std::string>("10"));
  BOOST_CHECK_EQUAL(fixture.apply_one(entry(3, increment("n", 10, 7, 2))).number, 20);
}

BOOST_AUTO_TEST_CASE(append_extends_the_value_and_answers_its_length) {
  Fixture fixture;
  CommandResult first = fixture.apply_one(entry(1, append("k", "ab")));
  BOOST_CHECK_EQUAL(first.number, 2);
  BOOST_CHECK(!first.found);
  CommandResult second = fixture.apply_one(entry(2, append("k", std::string("c\0d", 3))));
  BOOST_CHECK_EQUAL(second.number, 5);
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>(std::string("abc\0d", 5)));
  // Past the value bound: rejected, the value kept.
  CommandResult too_big = fixture.apply_one(entry(3, append("k", std::string(kv_value_bytes_max, 'x'))));
  BOOST_CHECK_EQUAL(status_name(too_big), "rejected");
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>(std::string("abc\0d", 5)));
}

// Range reads (keyval range, get --prefix): bounds, order, limit, byte bound, keys-only, count.
BOOST_AUTO_TEST_CASE(range_returns_the_pairs_in_key_order_within_its_bounds) {
  Fixture fixture;
  std::vector<Entry> entries;
  uint64_t index = 0;
  // Inserted out of order; "a/" < "a/1" < "a/10" < "a/2" < "a0" < "b" bytewise.
  for (const char* key : {"b", "a/2", "a/10", "a0", "a/", "a/1"}) {
    entries.push_back(entry(++index, put(0, 0, key, std::string("v-") + key)));
  }
  fixture.apply(entries);
  auto keys_of = [](const KvRangeResult& result) {
    std::string joined;
    for (const std::string& key : result.keys) joined += key + " ";
    return joined;
  };
  KvRange all;
  auto every = fixture.machine().range(all);
  BOOST_REQUIRE_MESSAGE(every.is_ok(), every.status().to_string());
  BOOST_TEST(keys_of(*every) == "a/ a/1 a/10 a/2 a0 b ");
  BOOST_TEST(every->count == 6u);
  BOOST_TEST(!every->more);
  BOOST_TEST(every->values.at(2) == "v-a/10");

  KvRange prefix;  // get --prefix a/
  prefix.from = "a/";
  prefix.to = prefix_end("a/");
  BOOST_TEST(prefix.to == "a0");
  auto under = fixture.machine().range(prefix);
  BOOST_REQUIRE(under.is_ok());
  BOOST_TEST(keys_of(*under) == "a/ a/1 a/10 a/2 ");

  KvRange limited = prefix;
  limited.limit = 2;
  auto two = fixture.machine().range(limited);
  BOOST_REQUIRE(two.is_ok());
  BOOST_TEST(keys_of(*two) == "a/ a/1 ");
  BOOST_TEST(two->more, "keys are left in the range past the limit");
  limited.limit = 4;
  BOOST_TEST(!fixture.machine().range(limited)->more, "a limit equal to what is there leaves nothing more");

  KvRange small = all;  // each pair is 2-4 key bytes + 4-6 value bytes: 12 bytes hold one or two
  small.bytes_max = 12;
  auto page = fixture.machine().range(small);
  BOOST_REQUIRE(page.is_ok());
  BOOST_TEST(page->count == 1u, keys_of(*page));
  BOOST_TEST(page->more);
  small.bytes_max = 1;  // smaller than any pair: still one, so paging always moves on
  BOOST_TEST(fixture.machine().range(small)->count == 1u);

  KvRange keys = all;
  keys.keys_only = true;
  keys.bytes_max = 6;  // keys only: "a/" "a/1" fit, "a/10" does not
  auto only_keys = fixture.machine().range(keys);
  BOOST_REQUIRE(only_keys.is_ok());
  BOOST_TEST(keys_of(*only_keys) == "a/ a/1 ");
  BOOST_TEST(only_keys->values.empty());

  KvRange count = all;
  count.count_only = true;
  count.from = "a/1";
  count.to = "b";
  auto counted = fixture.machine().range(count);
  BOOST_REQUIRE(counted.is_ok());
  BOOST_TEST(counted->count == 4u);
  BOOST_TEST(counted->keys.empty());

  KvRange empty;  // to <= from: nothing, not an error
  empty.from = "b";
  empty.to = "a";
  BOOST_TEST(fixture.machine().range(empty)->count == 0u);
  BOOST_TEST(prefix_end("a\xff\xff") == "b");
  BOOST_TEST(prefix_end("\xff").empty(), "no key follows every key starting with 0xff: no upper bound");
}

BOOST_AUTO_TEST_CASE(delete_removes_the_key_and_reports_whether_it_existed) {
  Fixture fixture;
  std::vector<CommandResult> results =
      fixture.apply({entry(1, put(0, 0, "k", "a")), entry(2, erase(0, 0, "k")), entry(3, erase(0, 0, "k"))});
  BOOST_CHECK(results[1].found);
  BOOST_CHECK_EQUAL(results[1].value, "a");
  BOOST_CHECK(!results[2].found);
  BOOST_CHECK_EQUAL(status_name(results[2]), "ok");
  BOOST_CHECK(!fixture.get("k").has_value());
}

BOOST_AUTO_TEST_CASE(cas_expected_absent_succeeds_only_when_the_key_is_absent) {
  Fixture fixture;
  std::vector<CommandResult> results = fixture.apply(
      {entry(1, cas(0, 0, "k", std::nullopt, "first")), entry(2, cas(0, 0, "k", std::nullopt, "second"))});
  BOOST_CHECK(results[0].cas_succeeded);
  BOOST_CHECK(!results[0].found);
  BOOST_CHECK(!results[1].cas_succeeded);
  BOOST_CHECK(results[1].found);
  BOOST_CHECK_EQUAL(results[1].value, "first");
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("first"));
}

BOOST_AUTO_TEST_CASE(cas_mismatch_leaves_the_value_and_a_match_replaces_it) {
  Fixture fixture;
  std::vector<CommandResult> results =
      fixture.apply({entry(1, put(0, 0, "k", "a")), entry(2, cas(0, 0, "k", "zzz", "b")),
                     entry(3, cas(0, 0, "absent", "a", "b")), entry(4, cas(0, 0, "absent", "", "b"))});
  BOOST_CHECK(!results[1].cas_succeeded);
  BOOST_CHECK_EQUAL(status_name(results[1]), "ok");
  BOOST_CHECK_EQUAL(results[1].value, "a");
  BOOST_CHECK(!results[2].cas_succeeded);
  BOOST_CHECK(!results[3].cas_succeeded);  // expecting "" is not expecting absence
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("a"));
  BOOST_CHECK(!fixture.get("absent").has_value());
  BOOST_CHECK(fixture.apply_one(entry(5, cas(0, 0, "k", "a", "b"))).cas_succeeded);
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("b"));
}

BOOST_AUTO_TEST_CASE(applied_index_is_stored_with_the_batch_and_keeps_the_indexed_index) {
  Fixture fixture;
  require_ok(fixture.store().save_positions(StorePositions{/*indexed_index=*/9, /*applied_index=*/0}));
  fixture.apply({entry(1, put(0, 0, "k", "a")), entry(2, put(0, 0, "j", "b"))});
  auto positions = fixture.store().load_positions();
  BOOST_REQUIRE(positions.is_ok());
  BOOST_CHECK_EQUAL(positions->applied_index, 2u);
  BOOST_CHECK_EQUAL(positions->indexed_index, 9u);
  fixture.reopen();
  BOOST_CHECK_EQUAL(fixture.applied_index(), 2u);
  BOOST_CHECK(fixture.get("j") == std::optional<std::string>("b"));
}

BOOST_AUTO_TEST_CASE(applied_term_is_the_term_of_the_last_applied_entry) {
  Fixture fixture;
  fixture.apply({Entry{1, 1, {}}, Entry{2, 3, {}}});
  auto applied = fixture.machine().applied();
  BOOST_REQUIRE_MESSAGE(applied.is_ok(), applied.status().to_string());
  BOOST_CHECK_EQUAL(applied->first, 2u);
  BOOST_CHECK_EQUAL(applied->second, 3u);
  fixture.apply({Entry{2, 3, {}}});  // only skipped entries: the position stays
  BOOST_CHECK_EQUAL(fixture.machine().applied().value().second, 3u);
  fixture.apply({Entry{3, 4, {}}});
  fixture.reopen();
  BOOST_CHECK_EQUAL(fixture.machine().applied().value().first, 3u);
  BOOST_CHECK_EQUAL(fixture.machine().applied().value().second, 4u);
}

BOOST_AUTO_TEST_CASE(configuration_entry_is_a_no_op_that_advances_the_applied_index) {
  Fixture fixture;
  // Its payload is Raft's (a ConfigurationEntry), never decoded as a command, even when the
  // bytes happen to decode as one.
  Entry configuration = entry(2, put(0, 0, "never", "applied"));
  configuration.type = EntryType::configuration;
  std::vector<CommandResult> results =
      fixture.apply({entry(1, put(0, 0, "k", "a")), configuration, entry(3, put(0, 0, "k", "b"))});
  BOOST_REQUIRE_EQUAL(results.size(), 3u);
  BOOST_CHECK(results[1].status == CommandStatus::ok);
  BOOST_CHECK_EQUAL(results[1].index, 2u);
  BOOST_CHECK(!fixture.get("never").has_value());
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("b"));
  BOOST_CHECK_EQUAL(fixture.applied_index(), 3u);
  fixture.apply({Entry{4, 1, {1, 2, 3}, EntryType::configuration}});
  BOOST_CHECK_EQUAL(fixture.applied_index(), 4u);
}

BOOST_AUTO_TEST_CASE(reapplying_after_a_restart_skips_applied_entries) {
  Fixture fixture;
  const std::vector<Entry> batch = {entry(1, put(0, 0, "k", "a")), entry(2, put(7, 1, "s", "x"))};
  std::vector<CommandResult> first = fixture.apply(batch);
  fixture.apply_one(entry(3, put(0, 0, "k", "b")));
  fixture.reopen();
  std::vector<CommandResult> again = fixture.apply(batch);  // applying entry 1 again would bring back "a"
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("b"));
  BOOST_CHECK_EQUAL(fixture.applied_index(), 3u);
  BOOST_CHECK_EQUAL(status_name(again[0]), "already_applied");  // no session: its result is gone
  BOOST_CHECK(again[1] == first[1]);                            // from client 7's session
  // Overlapping the applied index: only the new entry is applied.
  std::vector<CommandResult> mixed = fixture.apply({entry(3, put(0, 0, "k", "c")), entry(4, put(0, 0, "n", "d"))});
  BOOST_CHECK_EQUAL(status_name(mixed[0]), "already_applied");
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("b"));
  BOOST_CHECK(fixture.get("n") == std::optional<std::string>("d"));
}

BOOST_AUTO_TEST_CASE(retried_command_is_applied_once_and_gets_its_first_result_even_after_reopen) {
  Fixture fixture;
  CommandResult first = fixture.apply_one(entry(1, put(7, 1, "k", "a")));
  fixture.apply_one(entry(2, put(0, 0, "k", "other")));
  CommandResult retry = fixture.apply_one(entry(3, put(7, 1, "k", "a")));
  BOOST_CHECK(retry == first);
  BOOST_CHECK_EQUAL(retry.index, 1u);
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("other"));
  fixture.reopen();
  CommandResult after_reopen = fixture.apply_one(entry(4, put(7, 1, "k", "a")));
  BOOST_CHECK(after_reopen == first);
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("other"));
  BOOST_CHECK_EQUAL(fixture.applied_index(), 4u);
  // The next sequence is applied.
  CommandResult next = fixture.apply_one(entry(5, put(7, 2, "k", "b")));
  BOOST_CHECK(next.found);
  BOOST_CHECK_EQUAL(next.value, "other");
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("b"));
}

BOOST_AUTO_TEST_CASE(retried_cas_keeps_its_first_outcome) {
  Fixture fixture;
  CommandResult first = fixture.apply_one(entry(1, cas(7, 1, "k", std::nullopt, "a")));
  BOOST_REQUIRE(first.cas_succeeded);
  CommandResult retry = fixture.apply_one(entry(2, cas(7, 1, "k", std::nullopt, "a")));
  BOOST_CHECK(retry.cas_succeeded);  // applying it again would fail: the key now exists
  BOOST_CHECK(retry == first);
}

BOOST_AUTO_TEST_CASE(stale_sequence_is_rejected_without_being_applied) {
  Fixture fixture;
  fixture.apply({entry(1, put(7, 1, "k", "a")), entry(2, put(7, 2, "k", "b"))});
  CommandResult stale = fixture.apply_one(entry(3, put(7, 1, "k", "old")));
  BOOST_CHECK_EQUAL(status_name(stale), "stale_request");
  BOOST_CHECK(contains(stale.message, "stale"));
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("b"));
  BOOST_CHECK_EQUAL(fixture.applied_index(), 3u);
}

BOOST_AUTO_TEST_CASE(unknown_client_must_start_at_sequence_one) {
  Fixture fixture;
  CommandResult result = fixture.apply_one(entry(1, put(7, 5, "k", "a")));
  BOOST_CHECK_EQUAL(status_name(result), "session_expired");
  BOOST_CHECK(!fixture.get("k").has_value());
  BOOST_CHECK_EQUAL(fixture.session_count(), 0u);
}

BOOST_AUTO_TEST_CASE(noop_and_undecodable_payloads_advance_the_applied_index_only) {
  Fixture fixture;
  fixture.apply_one(entry(1, put(0, 0, "k", "a")));
  const std::vector<uint8_t> garbage = {1, 2, 3, 4, 5};
  const std::vector<uint8_t> bad_words(64, 0xff);
  std::vector<CommandResult> results =
      fixture.apply({Entry{2, 1, {}}, Entry{3, 1, garbage}, Entry{4, 1, bad_words},
                     entry(5, command_of(0, 0, CommandKind::noop, "", "", std::nullopt))});
  BOOST_CHECK_EQUAL(status_name(results[0]), "ok");
  BOOST_CHECK_EQUAL(status_name(results[1]), "rejected");
  BOOST_CHECK(contains(results[1].message, "undecodable"));
  BOOST_CHECK(contains(results[1].message, "entry 3"));
  BOOST_CHECK_EQUAL(status_name(results[2]), "rejected");
  BOOST_CHECK_EQUAL(status_name(results[3]), "ok");
  BOOST_CHECK_EQUAL(fixture.applied_index(), 5u);
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("a"));
}

BOOST_AUTO_TEST_CASE(bad_keys_are_rejected_without_failing_the_batch) {
  Fixture fixture;
  const std::string longest(kv_key_bytes_max, 'k');
  std::vector<CommandResult> results =
      fixture.apply({entry(1, put(0, 0, longest, "a")), entry(2, put(0, 0, longest + "k", "b")),
                     entry(3, put(0, 0, "", "c")), entry(4, put(7, 1, "", "d")), entry(5, put(7, 1, "", "d"))});
  BOOST_CHECK_EQUAL(status_name(results[0]), "ok");
  BOOST_CHECK_EQUAL(status_name(results[1]), "rejected");
  BOOST_CHECK_EQUAL(status_name(results[2]), "rejected");
  BOOST_CHECK_EQUAL(status_name(results[3]), "rejected");
  BOOST_CHECK(results[4] == results[3]);  // the rejection is the session's result too
  BOOST_CHECK(fixture.get(longest) == std::optional<std::string>("a"));
  BOOST_CHECK(!fixture.get(longest + "k").has_value());
  BOOST_CHECK_EQUAL(fixture.applied_index(), 5u);
}

BOOST_AUTO_TEST_CASE(gap_in_committed_entries_is_refused_and_nothing_is_applied) {
  Fixture fixture;
  fixture.apply_one(entry(1, put(0, 0, "k", "a")));
  auto gap = fixture.machine().apply({entry(2, put(0, 0, "k", "b")), entry(4, put(0, 0, "k", "c"))});
  BOOST_REQUIRE(!gap.is_ok());
  BOOST_CHECK(gap.status().code() == Code::invalid_argument);
  auto unordered = fixture.machine().apply({entry(3, put(0, 0, "k", "b"))});
  BOOST_CHECK(!unordered.is_ok());
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>("a"));
  BOOST_CHECK_EQUAL(fixture.applied_index(), 1u);
}

BOOST_AUTO_TEST_CASE(session_table_is_bounded_and_evicts_the_least_recently_used) {
  KvStateMachineOptions options;
  options.sessions_max = 3;
  Fixture fixture(options);
  std::vector<CommandResult> first = fixture.apply({entry(1, put(1, 1, "a", "1")), entry(2, put(2, 1, "b", "2")),
                                                    entry(3, put(3, 1, "c", "3"))});
  fixture.apply_one(entry(4, put(1, 1, "a", "1")));  // client 1's retry makes client 2 the oldest
  fixture.apply_one(entry(5, put(4, 1, "d", "4")));  // a fourth client: client 2 is evicted
  BOOST_CHECK_EQUAL(fixture.session_count(), 3u);
  fixture.reopen();
  BOOST_CHECK(fixture.apply_one(entry(6, put(1, 1, "a", "x"))) == first[0]);
  BOOST_CHECK(fixture.apply_one(entry(7, put(3, 1, "c", "x"))) == first[2]);
  CommandResult evicted = fixture.apply_one(entry(8, put(2, 2, "b", "x")));
  BOOST_CHECK_EQUAL(status_name(evicted), "session_expired");
  BOOST_CHECK(fixture.get("b") == std::optional<std::string>("2"));
  BOOST_CHECK_EQUAL(fixture.session_count(), 3u);
}

BOOST_AUTO_TEST_CASE(session_order_breaks_ties_by_lowest_client_id) {
  Fixture fixture;
  require_ok(fixture.store().write_kv([](KvWriter& writer) -> Status {
    KV_RETURN_IF_ERROR(writer.save_session(9, StoredSession{5, {1}}));
    KV_RETURN_IF_ERROR(writer.save_session(4, StoredSession{5, {2}}));
    return writer.save_session(1, StoredSession{6, {3}});
  }));
  std::vector<uint64_t> order;
  require_ok(fixture.store().write_kv([&](KvWriter& writer) -> Status {
    order.clear();
    for (;;) {
      KV_ASSIGN_OR_RETURN(std::optional<uint64_t> oldest, writer.least_recently_used_session());
      if (!oldest) return Status::ok();
      order.push_back(*oldest);
      KV_RETURN_IF_ERROR(writer.erase_session(*oldest));
    }
  }));
  BOOST_CHECK(order == (std::vector<uint64_t>{4, 9, 1}));
}

BOOST_AUTO_TEST_CASE(large_values_survive_a_reopen) {
  Fixture fixture;
  const std::vector<uint8_t> bytes = testing::make_payload(7, 8u << 20);
  const std::string large(bytes.begin(), bytes.end());
  fixture.apply({entry(1, put(7, 1, "big", large)), entry(2, put(7, 2, "big", large + "!"))});
  fixture.reopen();
  BOOST_CHECK(fixture.get("big") == std::optional<std::string>(large + "!"));
  CommandResult retry = fixture.apply_one(entry(3, put(7, 2, "big", "small")));
  BOOST_CHECK(retry.value == large);  // the stored result keeps the previous value
  BOOST_CHECK(fixture.get("big") == std::optional<std::string>(large + "!"));
}

BOOST_AUTO_TEST_CASE(batch_is_applied_once_when_the_map_grows_mid_transaction) {
  StoreOptions store_options;
  store_options.map_bytes_initial = 1u << 20;  // the 4 MiB value cannot fit: the batch is retried
  Fixture fixture({}, store_options);
  const std::string large(4u << 20, 'v');
  std::vector<CommandResult> results =
      fixture.apply({entry(1, put(0, 0, "k", "a")), entry(2, put(0, 0, "k", large))});
  BOOST_CHECK_EQUAL(results[1].value, "a");  // a retried body starting mid-way would see `large`
  BOOST_CHECK(fixture.store().map_bytes() > (1u << 20));
  BOOST_CHECK(fixture.get("k") == std::optional<std::string>(large));
}

BOOST_AUTO_TEST_CASE(many_keys_in_many_batches) {
  Fixture fixture;
  constexpr uint64_t keys = 20000;
  constexpr uint64_t batch_entries = 1000;
  for (uint64_t first = 1; first <= keys; first += batch_entries) {
    std::vector<Entry> batch;
    for (uint64_t index = first; index < first + batch_entries; ++index) {
      // 50 clients taking turns, each counting its sequences from 1.
      Command command = put((index - 1) % 50 + 1, (index - 1) / 50 + 1, "key" + std::to_string(index),
                            std::to_string(index));
      batch.push_back(entry(index, command));
    }
    fixture.apply(batch);
  }
  fixture.reopen();
  BOOST_CHECK_EQUAL(fixture.applied_index(), keys);
  for (uint64_t index = 1; index <= keys; index += 97) {
    BOOST_CHECK(fixture.get("key" + std::to_string(index)) == std::optional<std::string>(std::to_string(index)));
  }
  BOOST_CHECK_EQUAL(fixture.session_count(), 50u);
}

BOOST_AUTO_TEST_CASE(read_only_store_serves_reads) {
  TempDir temp;
  {
    auto store = open_store(temp.file("store"));
    KvStateMachine machine(*store);
    require_ok(machine.apply({entry(1, put(0, 0, "k", "a"))}).status());
  }
  StoreOptions read_only;
  read_only.read_only = true;
  auto store = open_store(temp.file("store"), read_only);
  KvStateMachine machine(*store);
  auto value = machine.get("k");
  BOOST_REQUIRE(value.is_ok());
  BOOST_CHECK(value.value() == std::optional<std::string>("a"));
  auto refused = machine.apply({entry(2, put(0, 0, "k", "b"))});
  BOOST_CHECK(!refused.is_ok());
}

BOOST_AUTO_TEST_CASE(read_only_store_written_before_the_session_databases_serves_reads) {
  TempDir temp;
  const std::string directory = temp.file("store");
  {
    auto store = open_store(directory);  // creates the directory and data.mdb
  }
  // Rebuild the environment as an older build left it: the first four databases only, one key.
  std::remove((directory + "/data.mdb").c_str());
  std::remove((directory + "/lock.mdb").c_str());
  MDB_env* env = nullptr;
  BOOST_REQUIRE_EQUAL(mdb_env_create(&env), 0);
  BOOST_REQUIRE_EQUAL(mdb_env_set_maxdbs(env, 4), 0);
  BOOST_REQUIRE_EQUAL(mdb_env_open(env, directory.c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  BOOST_REQUIRE_EQUAL(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi kv = 0;
  for (const char* name : {"meta", "log", "snapshot", "kv"}) BOOST_REQUIRE_EQUAL(mdb_dbi_open(txn, name, MDB_CREATE, &kv), 0);
  MDB_val key{1, const_cast<char*>("k")};
  MDB_val value{1, const_cast<char*>("a")};
  BOOST_REQUIRE_EQUAL(mdb_put(txn, kv, &key, &value, 0), 0);  // `kv` was opened last
  BOOST_REQUIRE_EQUAL(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  StoreOptions read_only;
  read_only.read_only = true;
  auto store = open_store(directory, read_only);
  KvStateMachine machine(*store);
  auto found = machine.get("k");
  BOOST_REQUIRE_MESSAGE(found.is_ok(), found.status().to_string());
  BOOST_CHECK(found.value() == std::optional<std::string>("a"));
  uint64_t sessions = 1;
  require_ok(store->read_kv([&](KvReader& reader) -> Status {
    KV_ASSIGN_OR_RETURN(sessions, reader.session_count());
    return Status::ok();
  }));
  BOOST_CHECK_EQUAL(sessions, 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
