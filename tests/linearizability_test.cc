// Goal: the history format round-trips and the checker accepts exactly the linearizable key-value histories.
// Method: hand-built histories for each rule, then random histories of a simulated atomic register (and stale mutations).
#define BOOST_TEST_MODULE linearizability_test
#include <boost/test/unit_test.hpp>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sim/history.h"
#include "sim/history_json.h"
#include "sim/linearizability.h"
#include "tests/support/temp_dir.h"

// Optionals in failure messages: printed by hand where it matters (explanations).
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<std::string>)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<uint64_t>)

namespace keyval::sim {

std::ostream& boost_test_print_type(std::ostream& out, Verdict verdict) { return out << verdict_name(verdict); }
std::ostream& boost_test_print_type(std::ostream& out, const Operation& operation) {
  return out << to_json_line(operation);
}

namespace {

using Text = std::optional<std::string>;
constexpr std::nullopt_t absent = std::nullopt;

Operation make(uint64_t client, Operation::Kind kind, std::string key, uint64_t invoke_ns, uint64_t complete_ns) {
  Operation operation;
  operation.client = client;
  operation.op = kind;
  operation.key = std::move(key);
  operation.invoke_ns = invoke_ns;
  operation.complete_ns = complete_ns;
  operation.status = Operation::ok;
  return operation;
}

Operation put(uint64_t client, std::string key, std::string value, uint64_t invoke_ns, uint64_t complete_ns) {
  Operation operation = make(client, Operation::put, std::move(key), invoke_ns, complete_ns);
  operation.value = std::move(value);
  return operation;
}

Operation get(uint64_t client, std::string key, Text output, uint64_t invoke_ns, uint64_t complete_ns) {
  Operation operation = make(client, Operation::get, std::move(key), invoke_ns, complete_ns);
  operation.output = std::move(output);
  return operation;
}

Operation del(uint64_t client, std::string key, Text existed, uint64_t invoke_ns, uint64_t complete_ns) {
  Operation operation = make(client, Operation::del, std::move(key), invoke_ns, complete_ns);
  operation.output = std::move(existed);
  return operation;
}

Operation cas(uint64_t client, std::string key, Text expected, std::string value, bool succeeded,
              uint64_t invoke_ns, uint64_t complete_ns) {
  Operation operation = make(client, Operation::cas, std::move(key), invoke_ns, complete_ns);
  operation.expected = std::move(expected);
  operation.value = std::move(value);
  operation.output = succeeded ? "true" : "false";
  return operation;
}

Operation unknown(Operation operation) {
  operation.status = Operation::unknown;
  operation.complete_ns = std::nullopt;
  operation.output = std::nullopt;
  return operation;
}

Operation failed(Operation operation) {
  operation.status = Operation::fail;
  operation.output = std::nullopt;
  return operation;
}

Verdict verdict_of(const std::vector<Operation>& operations) {
  return check_linearizable(operations).linearizable;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(linearizability)

BOOST_AUTO_TEST_CASE(sequential_history_is_linearizable) {
  std::vector<Operation> history = {
      get(1, "x", absent, 0, 10),        put(1, "x", "1", 20, 30),   get(2, "x", "1", 40, 50),
      put(2, "x", "2", 60, 70),          get(1, "x", "2", 80, 90),   del(1, "x", absent, 100, 110),
      get(2, "x", absent, 120, 130),     del(2, "x", "false", 140, 150),
  };
  CheckResult result = check_linearizable(history);
  BOOST_TEST(result.linearizable == Verdict::yes);
  BOOST_TEST(!result.key.has_value());
  BOOST_TEST(result.keys_checked == 1u);
}

BOOST_AUTO_TEST_CASE(concurrent_put_and_get_are_linearizable_in_either_order) {
  BOOST_TEST(verdict_of({put(1, "x", "1", 0, 100), get(2, "x", absent, 10, 90)}) == Verdict::yes);
  BOOST_TEST(verdict_of({put(1, "x", "1", 0, 100), get(2, "x", "1", 10, 90)}) == Verdict::yes);
  // Touching at one instant counts as concurrent.
  BOOST_TEST(verdict_of({put(1, "x", "1", 0, 50), get(2, "x", absent, 50, 60)}) == Verdict::yes);
}

BOOST_AUTO_TEST_CASE(stale_read_after_completed_write_is_not_linearizable) {
  std::vector<Operation> history = {put(1, "x", "1", 0, 10), put(1, "x", "2", 20, 30), get(2, "x", "1", 40, 50)};
  CheckResult result = check_linearizable(history);
  BOOST_TEST_REQUIRE(result.linearizable == Verdict::no);
  BOOST_TEST(result.key == std::optional<std::string>("x"));
  BOOST_TEST(contains(result.explanation, "#2 client 2 get(\"x\") = \"1\""), result.explanation);
  BOOST_TEST(result.operations.back() == 2u);
}

BOOST_AUTO_TEST_CASE(reads_seeing_concurrent_writes_in_inconsistent_orders_are_not_linearizable) {
  std::vector<Operation> history = {
      put(1, "x", "a", 0, 100),  put(2, "x", "b", 0, 100),
      get(3, "x", "a", 10, 20),  get(3, "x", "b", 30, 40),  // client 3: a then b
      get(4, "x", "b", 10, 20),  get(4, "x", "a", 30, 40),  // client 4: b then a
  };
  BOOST_TEST(verdict_of(history) == Verdict::no);
  // Each client alone is consistent with some order.
  BOOST_TEST(verdict_of({history[0], history[1], history[2], history[3]}) == Verdict::yes);
  BOOST_TEST(verdict_of({history[0], history[1], history[4], history[5]}) == Verdict::yes);
}

BOOST_AUTO_TEST_CASE(cas_applies_only_when_the_expected_value_matches) {
  std::vector<Operation> history = {
      cas(1, "x", absent, "a", true, 0, 10),  // expected absent: create
      cas(1, "x", "a", "b", true, 20, 30),     get(2, "x", "b", 40, 50),
      cas(2, "x", "a", "c", false, 60, 70),    get(1, "x", "b", 80, 90),
  };
  BOOST_TEST(verdict_of(history) == Verdict::yes);
  // A cas that reports failure while the value matched is a violation, and vice versa.
  BOOST_TEST(verdict_of({put(1, "x", "a", 0, 10), cas(1, "x", "a", "b", false, 20, 30)}) == Verdict::no);
  BOOST_TEST(verdict_of({put(1, "x", "a", 0, 10), cas(1, "x", "z", "b", true, 20, 30)}) == Verdict::no);
  // A failed comparison has no effect.
  BOOST_TEST(verdict_of({put(1, "x", "a", 0, 10), cas(1, "x", "z", "b", false, 20, 30), get(1, "x", "b", 40, 50)}) ==
             Verdict::no);
  // Status fail: the cas never ran, so its value cannot be seen.
  BOOST_TEST(verdict_of({put(1, "x", "a", 0, 10), failed(cas(1, "x", "a", "b", true, 20, 30)),
                         get(1, "x", "b", 40, 50)}) == Verdict::no);
}

BOOST_AUTO_TEST_CASE(unknown_cas_may_apply_or_not) {
  Operation maybe = unknown(cas(1, "x", "a", "b", true, 20, 30));
  BOOST_TEST(verdict_of({put(1, "x", "a", 0, 10), maybe, get(2, "x", "b", 40, 50)}) == Verdict::yes);
  BOOST_TEST(verdict_of({put(1, "x", "a", 0, 10), maybe, get(2, "x", "a", 40, 50)}) == Verdict::yes);
  // It can only apply when the comparison holds.
  BOOST_TEST(verdict_of({put(1, "x", "z", 0, 10), maybe, get(2, "x", "b", 40, 50)}) == Verdict::no);
}

BOOST_AUTO_TEST_CASE(del_is_idempotent_and_its_existed_flag_is_checked) {
  BOOST_TEST(verdict_of({del(1, "x", absent, 0, 10), del(1, "x", "false", 20, 30), get(1, "x", absent, 40, 50)}) ==
             Verdict::yes);
  BOOST_TEST(verdict_of({put(1, "x", "a", 0, 10), del(1, "x", "true", 20, 30), get(1, "x", absent, 40, 50)}) ==
             Verdict::yes);
  BOOST_TEST(verdict_of({del(1, "x", "true", 0, 10)}) == Verdict::no);
  BOOST_TEST(verdict_of({put(1, "x", "a", 0, 10), del(1, "x", "false", 20, 30)}) == Verdict::no);
}

BOOST_AUTO_TEST_CASE(unknown_write_that_later_becomes_visible_is_linearizable) {
  Operation timed_out = unknown(put(1, "x", "1", 100, 0));
  BOOST_TEST(verdict_of({timed_out, get(2, "x", absent, 200, 210), get(2, "x", "1", 5000, 5010)}) == Verdict::yes);
  // But never before it was invoked.
  BOOST_TEST(verdict_of({get(2, "x", "1", 0, 50), timed_out}) == Verdict::no);
  // And once visible it stays (it takes effect once).
  BOOST_TEST(verdict_of({timed_out, get(2, "x", "1", 200, 210), get(2, "x", absent, 300, 310)}) == Verdict::no);
}

BOOST_AUTO_TEST_CASE(unknown_write_never_visible_is_linearizable) {
  std::vector<Operation> history = {put(1, "x", "0", 0, 10), unknown(put(1, "x", "1", 20, 0)),
                                    get(2, "x", "0", 30, 40), get(2, "x", "0", 1000, 1010)};
  BOOST_TEST(verdict_of(history) == Verdict::yes);
  // An unknown get has no output to check and no effect: dropped.
  BOOST_TEST(verdict_of({unknown(get(1, "x", "zzz", 0, 0))}) == Verdict::yes);
}

BOOST_AUTO_TEST_CASE(read_of_a_value_nobody_wrote_is_not_linearizable) {
  BOOST_TEST(verdict_of({put(1, "x", "1", 0, 100), get(2, "x", "ghost", 10, 90)}) == Verdict::no);
}

BOOST_AUTO_TEST_CASE(failed_write_observed_by_a_read_is_not_linearizable) {
  BOOST_TEST(verdict_of({failed(put(1, "x", "1", 0, 100)), get(2, "x", "1", 10, 200)}) == Verdict::no);
  BOOST_TEST(verdict_of({failed(put(1, "x", "1", 0, 100)), get(2, "x", absent, 10, 200)}) == Verdict::yes);
}

BOOST_AUTO_TEST_CASE(violation_is_reported_with_its_key) {
  std::vector<Operation> history = {
      put(1, "a", "1", 0, 10), get(2, "a", "1", 20, 30),                            // fine
      put(1, "b", "1", 0, 10), put(1, "b", "2", 20, 30), get(2, "b", "1", 40, 50),  // stale
      put(1, "c", "1", 0, 10), get(2, "c", "1", 20, 30),                            // fine
  };
  CheckResult result = check_linearizable(history);
  BOOST_TEST(result.linearizable == Verdict::no);
  BOOST_TEST(result.key == std::optional<std::string>("b"));
  BOOST_TEST(contains(result.explanation, "key \"b\""), result.explanation);
  // The read of "a" at time 20 is not confused by the writes to "b".
  history.erase(history.begin() + 4);
  BOOST_TEST(verdict_of(history) == Verdict::yes);
}

BOOST_AUTO_TEST_CASE(search_over_its_step_bound_reports_unknown) {
  std::vector<Operation> history;
  for (uint64_t i = 0; i < 40; ++i) history.push_back(put(i, "x", std::to_string(i), 0, 1000));
  history.push_back(get(99, "x", "never", 2000, 2010));
  CheckOptions options;
  options.steps_max_per_key = 1000;
  CheckResult result = check_linearizable(history, options);
  BOOST_TEST(result.linearizable == Verdict::unknown);
  BOOST_TEST(result.key == std::optional<std::string>("x"));
  BOOST_TEST(result.keys_unknown == 1u);
  BOOST_TEST(contains(result.explanation, "steps_max_per_key"), result.explanation);
}

BOOST_AUTO_TEST_CASE(invalid_operation_is_not_judged) {
  Operation broken = put(1, "x", "1", 100, 50);  // completes before it is invoked
  CheckResult result = check_linearizable({broken});
  BOOST_TEST(result.linearizable == Verdict::unknown);
  BOOST_TEST(contains(result.explanation, "invalid operation #0"), result.explanation);
}

BOOST_AUTO_TEST_CASE(history_records_invocations_and_completions) {
  History history;
  History::OperationId written = history.invoke(1, Operation::put, "x", "1", std::nullopt, 10);
  History::OperationId read = history.invoke(2, Operation::get, "x", std::nullopt, std::nullopt, 15);
  History::OperationId rejected = history.invoke(3, Operation::put, "x", "2", std::nullopt, 16);
  History::OperationId timed_out = history.invoke(4, Operation::put, "x", "3", std::nullopt, 17);
  history.complete_ok(written, std::nullopt, 20);
  history.complete_ok(read, "1", 25);
  history.complete_fail(rejected, 30);
  const std::vector<Operation>& operations = history.operations();
  BOOST_TEST(operations.size() == 4u);
  BOOST_TEST(operations[read].output == Text("1"));
  BOOST_TEST(operations[rejected].status == Operation::fail);
  BOOST_TEST(operations[timed_out].status == Operation::unknown);
  BOOST_TEST(!operations[timed_out].complete_ns.has_value());
  BOOST_TEST(verdict_of(operations) == Verdict::yes);
}

BOOST_AUTO_TEST_CASE(history_json_round_trips_with_escapes_and_unknown_completion) {
  std::vector<Operation> history = {
      put(1, "quote\" back\\ slash/", "line\nfeed\ttab\r\x01\x1f", 0, 10),
      unknown(put(2, "k", "caf\xc3\xa9 \xf0\x9f\x98\x80", 5, 0)),
      cas(3, "k", absent, "v", true, 20, 30),
      cas(3, "k", "v", "w", false, 40, 50),
      failed(get(4, "", absent, 60, 70)),
      get(18446744073709551615ull, "k", absent, 80, 18446744073709551615ull),
      del(5, "k", "true", 90, 95),
  };
  std::string text = format_history(history);
  BOOST_TEST(contains(text, R"("key":"quote\" back\\ slash/")"), text);
  BOOST_TEST(contains(text, R"("value":"line\nfeed\ttab\r\u0001\u001f")"), text);
  BOOST_TEST(contains(text, R"("invoke":5,"complete":null,"status":"unknown","output":null)"), text);
  Result<std::vector<Operation>> parsed = parse_history(text);
  BOOST_TEST_REQUIRE(parsed.is_ok(), parsed.status().to_string());
  BOOST_TEST(parsed.value() == history, boost::test_tools::per_element());

  testing::TempDir directory;
  std::string path = directory.file("history.jsonl");
  BOOST_TEST_REQUIRE(write_history_file(path, history).is_ok());
  Result<std::vector<Operation>> from_file = read_history_file(path);
  BOOST_TEST_REQUIRE(from_file.is_ok(), from_file.status().to_string());
  BOOST_TEST(from_file.value() == history, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(history_reader_accepts_any_field_order_and_unicode_escapes) {
  std::string line = R"( { "output" : null, "status":"ok", "complete":9, "invoke":1, "expected":null,)"
                     R"( "value":"\u00e9\ud83d\ude00\/", "key":"k", "op":"put", "client":7 } )";
  Result<Operation> parsed = parse_json_line(line, 1);
  BOOST_TEST_REQUIRE(parsed.is_ok(), parsed.status().to_string());
  BOOST_TEST(parsed->value == Text("\xc3\xa9\xf0\x9f\x98\x80/"));
  BOOST_TEST(parsed->client == 7u);
  BOOST_TEST(parsed->complete_ns == std::optional<uint64_t>(9));
}

BOOST_AUTO_TEST_CASE(malformed_history_line_is_named_in_the_error) {
  std::string good = to_json_line(put(1, "x", "1", 0, 10));
  struct Case {
    std::string line;
    std::string expected_message;
  };
  std::vector<Case> cases = {
      {good.substr(0, good.size() - 7), "line 3, column"},  // torn write
      {R"({"client":1,"op":"put","key":"x","value":"1","expected":null,"invoke":0,"complete":10,"status":"ok"})",
       "expected exactly the 9 fields"},
      {R"({"client":1,"op":"add","key":"x","value":"1","expected":null,"invoke":0,"complete":10,"status":"ok","output":null})",
       "expected op \"put\""},
      {R"({"client":1,"op":"put","key":"x","value":"1","expected":null,"invoke":0,"complete":10,"status":"maybe","output":null})",
       "expected status"},
      {R"({"client":1,"op":"put","key":"x","value":"1","expected":null,"invoke":20,"complete":10,"status":"ok","output":null})",
       "complete is before invoke"},
      {R"({"client":1,"op":"put","key":"x","value":"1","expected":null,"invoke":0,"complete":null,"status":"ok","output":null})",
       "complete must be null exactly when status is unknown"},
      {R"({"client":-1,"op":"put","key":"x","value":"1","expected":null,"invoke":0,"complete":10,"status":"ok","output":null})",
       "a string, an unsigned integer or null"},
      {R"({"client":1,"op":"put","key":"x\q","value":"1","expected":null,"invoke":0,"complete":10,"status":"ok","output":null})",
       "after '\\'"},
      {R"({"client":1 "op":"put"})", "',' or '}'"},
      {R"({"client":99999999999999999999,"op":"put"})", "overflows"},
      {R"({"client":"1","op":"put","key":"x","value":"1","expected":null,"invoke":0,"complete":10,"status":"ok","output":null})",
       "\"client\" to be an unsigned integer"},
  };
  for (const Case& bad : cases) {
    Result<std::vector<Operation>> parsed = parse_history(good + "\n\n" + bad.line + "\n" + good + "\n");
    BOOST_TEST_REQUIRE(!parsed.is_ok(), bad.line);
    BOOST_TEST(contains(parsed.status().message(), "history line 3"), parsed.status().message());
    BOOST_TEST(contains(parsed.status().message(), bad.expected_message), parsed.status().message());
  }
}

// A simulated atomic register: every operation takes effect at a distinct instant
// inside its interval (in generation order), so the history is linearizable by
// construction. Values are unique per write so a stale read can be planted exactly.
std::vector<Operation> atomic_register_history(std::mt19937_64& random, size_t operation_count) {
  const char* keys[] = {"a", "b"};
  std::map<std::string, std::string> state;
  std::vector<Operation> history;
  auto uniform = [&](uint64_t low, uint64_t high) { return std::uniform_int_distribution<uint64_t>(low, high)(random); };
  for (size_t i = 0; i < operation_count; ++i) {
    uint64_t effect_ns = 1000 + i * 10;  // the linearization point
    std::string key = keys[uniform(0, 1)];
    std::string value = "v" + std::to_string(i);
    Text current = state.count(key) ? Text(state[key]) : absent;
    Operation operation;
    switch (uniform(0, 9)) {
      case 0: case 1: case 2: operation = put(i % 5, key, value, 0, 0); break;
      case 3: case 4: case 5: operation = get(i % 5, key, current, 0, 0); break;
      case 6: operation = del(i % 5, key, uniform(0, 1) ? Text(current ? "true" : "false") : absent, 0, 0); break;
      default: {
        Text expected = uniform(0, 1) ? current : Text("v" + std::to_string(uniform(0, i)));
        operation = cas(i % 5, key, expected, value, expected == current, 0, 0);
      }
    }
    operation.invoke_ns = effect_ns - uniform(0, 60);
    operation.complete_ns = effect_ns + uniform(0, 60);
    bool writes = operation.op == Operation::put || (operation.op == Operation::cas && operation.output == "true");
    uint64_t outcome = uniform(0, 9);  // 0: failed (not applied), 1: unknown (applied or not), else ok
    bool applied = outcome != 0 && !(outcome == 1 && uniform(0, 1));
    if (outcome == 0) operation = failed(operation);
    if (outcome == 1) operation = unknown(operation);
    if (applied && operation.op == Operation::del) state.erase(key);
    if (applied && writes) state[key] = value;
    history.push_back(operation);
  }
  return history;
}

// Plants a read of a value overwritten before the read began: write P1 of v1, then a
// write P2 (a different unique value or a delete) completed after P1 and before the
// read was invoked. No order allows that read. Returns false when no such triple exists.
bool plant_stale_read(std::vector<Operation>& history, std::string& key) {
  auto definite_write = [](const Operation& operation) {
    return operation.status == Operation::ok &&
           (operation.op == Operation::put || operation.op == Operation::del ||
            (operation.op == Operation::cas && operation.output == "true"));
  };
  for (Operation& read : history) {
    if (read.op != Operation::get || read.status != Operation::ok) continue;
    for (const Operation& second : history) {
      if (second.key != read.key || !definite_write(second) || *second.complete_ns >= read.invoke_ns) continue;
      for (const Operation& first : history) {
        if (first.key != read.key || first.op != Operation::put || first.status != Operation::ok ||
            *first.complete_ns >= second.invoke_ns || read.output == first.value) {
          continue;
        }
        read.output = first.value;
        key = read.key;
        return true;
      }
    }
  }
  return false;
}

BOOST_AUTO_TEST_CASE(random_atomic_register_histories_are_linearizable_and_stale_reads_are_caught) {
  size_t seeds = 300;
  size_t planted = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    std::mt19937_64 random(seed);
    std::vector<Operation> history = atomic_register_history(random, 80);
    CheckResult result = check_linearizable(history);
    BOOST_TEST_REQUIRE(result.linearizable == Verdict::yes, "seed " << seed << ": " << result.explanation);
    std::string key;
    if (!plant_stale_read(history, key)) continue;
    ++planted;
    result = check_linearizable(history);
    BOOST_TEST_REQUIRE(result.linearizable == Verdict::no, "seed " << seed << " (stale read planted)");
    BOOST_TEST(result.key == std::optional<std::string>(key));
  }
  BOOST_TEST_MESSAGE("stale reads planted in " << planted << " of " << seeds << " seeds");
  BOOST_TEST(planted > seeds / 2);
}

BOOST_AUTO_TEST_CASE(long_random_history_is_checked_within_its_bounds) {
  std::mt19937_64 random(42);
  std::vector<Operation> history = atomic_register_history(random, 4000);
  CheckResult result = check_linearizable(history);
  BOOST_TEST(result.linearizable == Verdict::yes, result.explanation);
  BOOST_TEST_MESSAGE("4000 operations checked in " << result.steps << " steps");
  std::string key;
  BOOST_TEST_REQUIRE(plant_stale_read(history, key));
  BOOST_TEST(check_linearizable(history).linearizable == Verdict::no);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval::sim
