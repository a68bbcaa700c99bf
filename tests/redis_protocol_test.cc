// Goal: the Redis gateway's protocol layer frames what clients send and answers in Redis's own
// forms, and each command maps onto the client requests it names (docs/REDIS.md).
// Method: RespParser, RespWriter and RedisCommands without I/O; answers to steps built by hand.
#define BOOST_TEST_MODULE redis_protocol_test
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "actors/read_size.h"
#include "actors/redis_commands.h"
#include "actors/resp.h"
#include "storage/kv_command.h"

namespace keyval {
namespace {

using Words = std::vector<std::string>;

// Every command the bytes hold; fails the test on a protocol error.
std::vector<Words> parse_all(RespParser& parser) {
  std::vector<Words> commands;
  Words arguments;
  std::string error;
  while (true) {
    auto outcome = parser.next(&arguments, &error);
    BOOST_REQUIRE_MESSAGE(outcome != RespParser::Outcome::error, error);
    if (outcome == RespParser::Outcome::need_more) return commands;
    commands.push_back(arguments);
  }
}

std::string parse_error(const std::string& bytes, RespLimits limits = {}) {
  RespParser parser(limits);
  parser.feed(bytes.data(), bytes.size());
  Words arguments;
  std::string error;
  while (true) {
    auto outcome = parser.next(&arguments, &error);
    if (outcome == RespParser::Outcome::error) return error;
    if (outcome == RespParser::Outcome::need_more) return "";
  }
}

struct Executed {
  RedisOutcome outcome;
  std::string reply;
};

Executed run(RedisCommands& commands, RedisSession& session, const Words& words) {
  RespWriter out(session.protocol);
  Executed executed;
  executed.outcome = commands.execute(session, words, out, RedisStats{});
  executed.reply = out.take();
  return executed;
}

// The reply a step makes from `answers` (each ok unless set otherwise).
std::string finish(RedisStep& step, std::vector<ClientResponse> answers, int protocol = 2,
                   std::optional<RedisStep>* next = nullptr) {
  RespWriter out(protocol);
  auto following = step.then(answers, out);
  if (next) *next = std::move(following);
  return out.take();
}

ClientResponse found(const std::string& value) {
  ClientResponse response;
  response.found = true;
  response.value = value;
  return response;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(resp_parser)

BOOST_AUTO_TEST_CASE(arrays_of_bulk_strings_parse_fed_one_byte_at_a_time) {
  const std::string bytes = std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\0\r\nx\r\n", 31) + "*1\r\n$4\r\nPING\r\n";
  RespParser parser;
  std::vector<Words> commands;
  for (char c : bytes) {
    parser.feed(&c, 1);
    for (auto& command : parse_all(parser)) commands.push_back(command);
  }
  BOOST_REQUIRE_EQUAL(commands.size(), 2u);
  BOOST_CHECK(commands[0] == (Words{"SET", "k", std::string("v\0\r\nx", 5)}));
  BOOST_CHECK(commands[1] == (Words{"PING"}));
  BOOST_CHECK_EQUAL(parser.buffered_bytes(), 0u);
}

BOOST_AUTO_TEST_CASE(inline_commands_split_on_spaces_and_keep_quoted_words) {
  RespParser parser;
  const std::string bytes = "PING\r\n\r\n*0\r\nset  key \"a value\"\nGET key\r\n";
  parser.feed(bytes.data(), bytes.size());
  auto commands = parse_all(parser);
  BOOST_REQUIRE_EQUAL(commands.size(), 3u);
  BOOST_CHECK(commands[0] == (Words{"PING"}));
  BOOST_CHECK(commands[1] == (Words{"set", "key", "a value"}));
  BOOST_CHECK(commands[2] == (Words{"GET", "key"}));
}

BOOST_AUTO_TEST_CASE(malformed_streams_get_redis_protocol_errors) {
  BOOST_CHECK_EQUAL(parse_error("*x\r\n"), "Protocol error: invalid multibulk length");
  BOOST_CHECK_EQUAL(parse_error("*1\r\n$-3\r\n"), "Protocol error: invalid bulk length");
  BOOST_CHECK_EQUAL(parse_error("*1\r\n+PING\r\n"), "Protocol error: expected '$', got '+'");
  BOOST_CHECK_EQUAL(parse_error("*1\r\n$4\r\nPINGxx"), "Protocol error: a bulk string does not end with CRLF");
  BOOST_CHECK_EQUAL(parse_error("SET \"open\r\n"), "Protocol error: unbalanced quotes in request");
  RespLimits small;
  small.bulk_bytes_max = 8;
  small.arguments_max = 2;
  small.inline_bytes_max = 16;
  BOOST_CHECK_EQUAL(parse_error("*1\r\n$9\r\n", small), "Protocol error: invalid bulk length");
  BOOST_CHECK_EQUAL(parse_error("*3\r\n", small), "Protocol error: invalid multibulk length");
  BOOST_CHECK_EQUAL(parse_error(std::string(17, 'a'), small), "Protocol error: too big inline request");
  RespLimits whole;
  whole.command_bytes_max = 20;
  BOOST_CHECK_EQUAL(parse_error("*3\r\n$8\r\n12345678\r\n$8\r\n12345678", whole),
                    "Protocol error: a command over 20 bytes");
  // Within the bounds, the same shapes wait for more bytes.
  BOOST_CHECK_EQUAL(parse_error("*2\r\n$8\r\nabc", small), "");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(resp_writer)

BOOST_AUTO_TEST_CASE(resp2_and_resp3_write_nulls_and_maps_in_their_own_forms) {
  RespWriter two(2);
  two.null();
  two.null_array();
  two.map(1);
  two.bulk("k");
  two.integer(-5);
  two.simple("OK\r\nx");
  BOOST_CHECK_EQUAL(two.take(), "$-1\r\n*-1\r\n*2\r\n$1\r\nk\r\n:-5\r\n+OK  x\r\n");
  RespWriter three(3);
  three.null();
  three.map(1);
  three.bulk("k");
  three.verbatim("ab");
  three.set(0);
  BOOST_CHECK_EQUAL(three.take(), "_\r\n%1\r\n$1\r\nk\r\n=6\r\ntxt:ab\r\n~0\r\n");
}

BOOST_AUTO_TEST_CASE(glob_patterns_match_as_redis_does) {
  BOOST_CHECK(resp_glob_match("*", ""));
  BOOST_CHECK(resp_glob_match("user:*", "user:42"));
  BOOST_CHECK(!resp_glob_match("user:*", "users"));
  BOOST_CHECK(resp_glob_match("h?llo", "hello"));
  BOOST_CHECK(!resp_glob_match("h?llo", "hllo"));
  BOOST_CHECK(resp_glob_match("h[ae]llo", "hallo"));
  BOOST_CHECK(!resp_glob_match("h[^e]llo", "hello"));
  BOOST_CHECK(resp_glob_match("h[a-c]llo", "hbllo"));
  BOOST_CHECK(resp_glob_match("a\\*b", "a*b"));
  BOOST_CHECK(!resp_glob_match("a\\*b", "axb"));
  BOOST_CHECK(resp_glob_match("*a*b*c", "xxaxxbxxc"));
  BOOST_CHECK(!resp_glob_match("*a*b*c", "xxaxxbxx"));
  // Many stars against a long near-miss finish at once (no exponential backtracking).
  BOOST_CHECK(!resp_glob_match("*a*a*a*a*a*a*a*a*a*a*a*b", std::string(500, 'a')));
  BOOST_CHECK_EQUAL(resp_glob_prefix("user:\\*x*"), "user:*x");
  BOOST_CHECK_EQUAL(resp_glob_prefix("*"), "");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_commands)

BOOST_AUTO_TEST_CASE(unknown_commands_and_wrong_arity_get_redis_error_forms) {
  RedisCommands commands(RedisCommandsConfig{1, ""});
  RedisSession session;
  BOOST_CHECK_EQUAL(run(commands, session, {"NOPE", "a", "b"}).reply,
                    "-ERR unknown command 'NOPE', with args beginning with: 'a' 'b' \r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"GET"}).reply, "-ERR wrong number of arguments for 'get' command\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"get", "a", "b"}).reply,
                    "-ERR wrong number of arguments for 'get' command\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"MSET", "a", "1", "b"}).reply,
                    "-ERR wrong number of arguments for 'mset' command\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"INCRBY", "n", "x"}).reply,
                    "-ERR value is not an integer or out of range\r\n");
  // Redis's integer rule for arguments too: no leading zero, no "-0".
  BOOST_CHECK_EQUAL(run(commands, session, {"INCRBY", "n", "007"}).reply,
                    "-ERR value is not an integer or out of range\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"SELECT", "-0"}).reply,
                    "-ERR value is not an integer or out of range\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"SET", "k", "v", "EX", "10"}).reply.substr(0, 15), "-ERR SET EX is ");
  BOOST_CHECK_EQUAL(run(commands, session, {"SET", "k", "v", "NX", "XX"}).reply, "-ERR syntax error\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"SELECT", "1"}).reply, "-ERR DB index is out of range\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"SELECT", "0"}).reply, "+OK\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"PING"}).reply, "+PONG\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"ECHO", "hi"}).reply, "$2\r\nhi\r\n");
  Executed quit = run(commands, session, {"QUIT"});
  BOOST_CHECK(quit.outcome.close);
  BOOST_CHECK_EQUAL(quit.reply, "+OK\r\n");
}

BOOST_AUTO_TEST_CASE(a_password_requires_auth_before_any_command) {
  RedisCommands commands(RedisCommandsConfig{1, "correct horse battery"});
  RedisSession session;
  BOOST_CHECK_EQUAL(run(commands, session, {"GET", "k"}).reply, "-NOAUTH Authentication required.\r\n");
  BOOST_CHECK(!run(commands, session, {"GET", "k"}).outcome.step.has_value());
  BOOST_CHECK_EQUAL(run(commands, session, {"AUTH", "wrong"}).reply,
                    "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"AUTH", "default", "correct horse battery"}).reply, "+OK\r\n");
  BOOST_CHECK(run(commands, session, {"GET", "k"}).outcome.step.has_value());
  // HELLO's AUTH option authenticates a new connection too.
  RedisSession other;
  BOOST_CHECK_EQUAL(run(commands, other, {"HELLO", "3", "AUTH", "default", "nope"}).reply.substr(0, 10), "-WRONGPASS");
  Executed hello = run(commands, other, {"HELLO", "3", "AUTH", "default", "correct horse battery"});
  BOOST_CHECK_EQUAL(hello.reply.substr(0, 3), "%7\r");
  BOOST_CHECK(other.authenticated);
  // Without a password configured, AUTH is an error, as in Redis.
  RedisCommands open(RedisCommandsConfig{1, ""});
  BOOST_CHECK_EQUAL(run(open, session, {"AUTH", "x"}).reply.substr(0, 53),
                    "-ERR AUTH <password> called without any password conf");
}

BOOST_AUTO_TEST_CASE(hello_switches_the_protocol_and_nulls_follow_it) {
  RedisCommands commands(RedisCommandsConfig{4, ""});
  RedisSession session;
  session.id = 9;
  BOOST_CHECK_EQUAL(run(commands, session, {"HELLO", "4"}).reply, "-NOPROTO unsupported protocol version\r\n");
  Executed hello = run(commands, session, {"HELLO", "3", "SETNAME", "app"});
  BOOST_CHECK_EQUAL(session.protocol, 3);
  BOOST_CHECK_EQUAL(session.name, "app");
  BOOST_CHECK(hello.reply.find("$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:9\r\n") != std::string::npos);
  Executed get = run(commands, session, {"GET", "k"});
  BOOST_REQUIRE(get.outcome.step);
  BOOST_CHECK_EQUAL(finish(*get.outcome.step, {ClientResponse{}}, 3), "_\r\n");
  BOOST_CHECK_EQUAL(finish(*get.outcome.step, {ClientResponse{}}, 2), "$-1\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"CLIENT", "GETNAME"}).reply, "$3\r\napp\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"CLIENT", "ID"}).reply, ":9\r\n");
}

BOOST_AUTO_TEST_CASE(writes_map_onto_one_request_each) {
  RedisCommands commands(RedisCommandsConfig{1, ""});
  RedisSession session;
  Executed mset = run(commands, session, {"MSET", "a", "1", "b", "2"});
  BOOST_REQUIRE(mset.outcome.step);
  BOOST_REQUIRE_EQUAL(mset.outcome.step->requests.size(), 1u);
  const ClientRequest& many = mset.outcome.step->requests[0];
  BOOST_CHECK(many.op == ClientOp::put_many);
  BOOST_CHECK(many.keys == (Words{"a", "b"}));
  BOOST_CHECK(many.values == (Words{"1", "2"}));
  BOOST_CHECK_EQUAL(many.condition, static_cast<uint8_t>(PutCondition::none));
  BOOST_CHECK_EQUAL(finish(*mset.outcome.step, {ClientResponse{}}), "+OK\r\n");

  Executed msetnx = run(commands, session, {"MSETNX", "a", "1"});
  BOOST_CHECK_EQUAL(msetnx.outcome.step->requests[0].condition, static_cast<uint8_t>(PutCondition::all_absent));
  ClientResponse refused;
  refused.cas_succeeded = false;
  BOOST_CHECK_EQUAL(finish(*msetnx.outcome.step, {refused}), ":0\r\n");

  Executed set_nx = run(commands, session, {"SET", "k", "v", "nx"});
  BOOST_CHECK(set_nx.outcome.step->requests[0].op == ClientOp::put_many);
  BOOST_CHECK(!set_nx.outcome.step->requests[0].blind);  // blind is a plain put's only
  BOOST_CHECK_EQUAL(finish(*set_nx.outcome.step, {refused}), "$-1\r\n");
  Executed set_get = run(commands, session, {"SET", "k", "v", "GET"});
  BOOST_CHECK(set_get.outcome.step->requests[0].op == ClientOp::put);
  BOOST_CHECK(!set_get.outcome.step->requests[0].blind);  // SET GET reads the value it replaces
  BOOST_CHECK(run(commands, session, {"SET", "k", "v"}).outcome.step->requests[0].blind);
  BOOST_CHECK_EQUAL(finish(*set_get.outcome.step, {found("old")}), "$3\r\nold\r\n");

  Executed decrby = run(commands, session, {"DECRBY", "n", "5"});
  BOOST_CHECK(decrby.outcome.step->requests[0].op == ClientOp::increment);
  BOOST_CHECK_EQUAL(decrby.outcome.step->requests[0].delta, -5);
  BOOST_CHECK_EQUAL(run(commands, session, {"DECRBY", "n", "-9223372036854775808"}).reply,
                    "-ERR decrement would overflow\r\n");

  Executed del = run(commands, session, {"DEL", "a", "b", "c"});
  BOOST_CHECK(del.outcome.step->requests[0].op == ClientOp::del_many);
  ClientResponse two;
  two.number = 2;
  BOOST_CHECK_EQUAL(finish(*del.outcome.step, {two}), ":2\r\n");
}

BOOST_AUTO_TEST_CASE(mget_and_exists_read_each_key) {
  RedisCommands commands(RedisCommandsConfig{1, ""});
  RedisSession session;
  Executed mget = run(commands, session, {"MGET", "a", "b"});
  BOOST_REQUIRE_EQUAL(mget.outcome.step->requests.size(), 2u);
  BOOST_CHECK(mget.outcome.step->requests[1].op == ClientOp::get);
  BOOST_CHECK_EQUAL(finish(*mget.outcome.step, {found("1"), ClientResponse{}}), "*2\r\n$1\r\n1\r\n$-1\r\n");
  Executed exists = run(commands, session, {"EXISTS", "a", "a", "b"});
  BOOST_CHECK_EQUAL(finish(*exists.outcome.step, {found("1"), found("1"), ClientResponse{}}), ":2\r\n");
}

// Plain GET and MGET go to the gateway as part of a batch of gets; any other command, a wrong
// arity, a key the gateway would refuse, or a session that has not authenticated goes through
// execute. The reply from the batch's answers is the one the step's continuation makes.
BOOST_AUTO_TEST_CASE(plain_gets_and_mgets_are_batched_reads_and_reply_as_their_steps_would) {
  RedisCommands commands(RedisCommandsConfig{1, ""});
  RedisSession session;
  bool array = true;
  BOOST_CHECK(commands.batched_read(session, {"get", "a"}, &array));
  BOOST_CHECK(!array);
  BOOST_CHECK(commands.batched_read(session, {"MGet", "a", "b", "c"}, &array));
  BOOST_CHECK(array);
  BOOST_CHECK(!commands.batched_read(session, {"GET", "a", "b"}, &array));  // wrong arity: execute's error
  BOOST_CHECK(!commands.batched_read(session, {"GET"}, &array));
  BOOST_CHECK(!commands.batched_read(session, {"MGET"}, &array));
  BOOST_CHECK(!commands.batched_read(session, {"GET", ""}, &array));
  BOOST_CHECK(!commands.batched_read(session, {"MGET", "a", std::string(kv_key_bytes_max + 1, 'k')}, &array));
  BOOST_CHECK(!commands.batched_read(session, {"GETDEL", "a"}, &array));
  BOOST_CHECK(!commands.batched_read(session, {"EXISTS", "a"}, &array));
  BOOST_CHECK(!commands.batched_read(session, {"SET", "a", "b"}, &array));
  Words many{"MGET"};
  for (size_t i = 0; i <= get_batch_keys_max; ++i) many.push_back("k" + std::to_string(i));
  BOOST_CHECK(!commands.batched_read(session, many, &array));  // more keys than one batch holds
  RedisCommands locked(RedisCommandsConfig{1, "secret"});
  RedisSession stranger;
  BOOST_CHECK(!locked.batched_read(stranger, {"GET", "a"}, &array));  // execute answers NOAUTH
  stranger.authenticated = true;
  BOOST_CHECK(locked.batched_read(stranger, {"GET", "a"}, &array));

  const std::vector<uint8_t> found_flags{1, 0};
  const std::vector<std::string> values{"1", ""};
  for (int protocol : {2, 3}) {
    Executed get = run(commands, session, {"GET", "a"});
    RespWriter one(protocol);
    RedisCommands::write_read_reply(one, false, found_flags.data(), values.data(), 1);
    BOOST_CHECK_EQUAL(one.take(), finish(*get.outcome.step, {found("1")}, protocol));
    RespWriter absent(protocol);
    RedisCommands::write_read_reply(absent, false, found_flags.data() + 1, values.data() + 1, 1);
    BOOST_CHECK_EQUAL(absent.take(), finish(*get.outcome.step, {ClientResponse{}}, protocol));
    Executed mget = run(commands, session, {"MGET", "a", "b"});
    RespWriter both(protocol);
    RedisCommands::write_read_reply(both, true, found_flags.data(), values.data(), 2);
    BOOST_CHECK_EQUAL(both.take(), finish(*mget.outcome.step, {found("1"), ClientResponse{}}, protocol));
  }
}

// SCAN hands out numeric cursors that stand for the key to resume from; KEYS pages through
// range reads until the range is done.
BOOST_AUTO_TEST_CASE(scan_cursors_resume_where_the_last_page_stopped) {
  RedisCommands commands(RedisCommandsConfig{1, ""});
  RedisSession session;
  Executed first = run(commands, session, {"SCAN", "0", "MATCH", "user:*", "COUNT", "2"});
  BOOST_REQUIRE(first.outcome.step);
  const ClientRequest& range = first.outcome.step->requests[0];
  BOOST_CHECK(range.op == ClientOp::range);
  BOOST_CHECK_EQUAL(range.key, "user:");
  BOOST_CHECK_EQUAL(range.range_end, "user;");
  BOOST_CHECK_EQUAL(range.range_limit, 2u);
  ClientResponse page;
  page.keys = {"user:1", "user:2"};
  page.more = true;
  const std::string reply = finish(*first.outcome.step, {page});
  BOOST_CHECK_EQUAL(reply, "*2\r\n$1\r\n1\r\n*2\r\n$6\r\nuser:1\r\n$6\r\nuser:2\r\n");
  Executed second = run(commands, session, {"SCAN", "1", "MATCH", "user:*", "COUNT", "2"});
  BOOST_REQUIRE(second.outcome.step);
  BOOST_CHECK_EQUAL(second.outcome.step->requests[0].key, std::string("user:2\0", 7));
  ClientResponse last;
  last.keys = {"user:3"};
  BOOST_CHECK_EQUAL(finish(*second.outcome.step, {last}), "*2\r\n$1\r\n0\r\n*1\r\n$6\r\nuser:3\r\n");
  BOOST_CHECK_EQUAL(run(commands, session, {"SCAN", "77"}).reply, "-ERR invalid cursor (unknown or expired)\r\n");

  Executed keys = run(commands, session, {"KEYS", "*2"});
  ClientResponse one;
  one.keys = {"a1", "a2"};
  one.more = true;
  std::optional<RedisStep> next;
  BOOST_CHECK_EQUAL(finish(*keys.outcome.step, {one}, 2, &next), "");
  BOOST_REQUIRE(next);
  BOOST_CHECK_EQUAL(next->requests[0].key, std::string("a2\0", 3));
  ClientResponse two;
  two.keys = {"b2", "b3"};
  BOOST_CHECK_EQUAL(finish(*next, {two}), "*2\r\n$2\r\na2\r\n$2\r\nb2\r\n");
}

BOOST_AUTO_TEST_CASE(cluster_failures_become_errors_that_say_whether_the_write_happened) {
  ClientResponse rejected = client_refusal(1, ClientStatus::rejected, "value is not an integer or out of range");
  BOOST_CHECK_EQUAL(RedisCommands::error_of(rejected), "ERR value is not an integer or out of range");
  ClientResponse timeout = client_refusal(1, ClientStatus::timeout, "no answer");
  BOOST_CHECK(RedisCommands::error_of(timeout).find("may or may not have taken effect") != std::string::npos);
  ClientResponse no_leader = client_refusal(1, ClientStatus::no_leader, "no leader known");
  BOOST_CHECK_EQUAL(RedisCommands::error_of(no_leader).substr(0, 9), "TRYAGAIN ");
  BOOST_CHECK(RedisCommands::error_of(no_leader).find("did not take effect") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval

// What a listener asks CAF to read per event (actors/read_size.h): it doubles after a read
// that filled it, up to the maximum, halves after a read of at most a quarter, down to the
// minimum, and stays put in between; after_read says when the listener must reconfigure.
BOOST_AUTO_TEST_SUITE(read_size)

BOOST_AUTO_TEST_CASE(a_read_size_follows_what_the_reads_bring_within_its_bounds) {
  struct Step {
    size_t read;
    size_t next;
    bool changed;
  };
  const Step steps[] = {
      {100, 4096, false},     // small reads at the minimum: no change
      {4096, 8192, true},     // filled: doubles
      {8192, 16384, true},   {16384, 32768, true}, {32768, 65536, true},
      {65536, 65536, false},  // filled at the maximum: stays
      {20000, 65536, false},  // more than a quarter: stays
      {16384, 32768, true},   // a quarter: halves
      {10, 16384, true},     {10, 8192, true},     {10, 4096, true},
      {10, 4096, false},      // at the minimum
  };
  keyval::ReadSize size(4096, 65536);
  BOOST_TEST(size.current() == 4096u);
  for (const Step& step : steps) {
    BOOST_TEST_CONTEXT("a read of " << step.read << " bytes at " << size.current()) {
      BOOST_TEST(size.after_read(step.read) == step.changed);
      BOOST_TEST(size.current() == step.next);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
