// Goal: every client request is answered exactly once, by its deadline at the latest, now
// that the gateway keeps request deadlines itself (actors/deadlines.h) instead of one CAF
// request timeout per stage. Deadlines is checked as plain logic; the gateway is checked in
// a real actor system against a fake raft node that holds its answers until told, so a
// stage can be made to answer late or never; and against fakes that answer at once, for
// status (log bounds, hash) and the backup requests (snapshot_begin, snapshot_chunk).
#define BOOST_TEST_MODULE client_gateway_test
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/client_gateway.h"
#include "actors/client_protocol.h"
#include "actors/deadlines.h"
#include "storage/kv_command.h"
#include "raft/core.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

using namespace keyval;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// --- Deadlines, as logic --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(deadlines_expire_oldest_first_and_only_once_due) {
  Deadlines<int> deadlines(100ms);
  const Clock::time_point start{};
  uint64_t first = deadlines.add(start, 1);
  uint64_t second = deadlines.add(start + 30ms, 2);
  deadlines.add(start + 60ms, 3);
  BOOST_CHECK(deadlines.next_due() == start + 100ms);

  std::vector<int> expired;
  deadlines.sweep(start + 99ms, [&](int value) { expired.push_back(value); });
  BOOST_CHECK(expired.empty());
  deadlines.sweep(start + 130ms, [&](int value) { expired.push_back(value); });
  BOOST_CHECK((expired == std::vector<int>{1, 2}));
  BOOST_CHECK_EQUAL(deadlines.size(), 1u);
  BOOST_CHECK(deadlines.next_due() == start + 160ms);

  // An answer that comes after its sweep finds nothing: the client was answered once.
  BOOST_CHECK(!deadlines.take(first));
  BOOST_CHECK(!deadlines.take(second));
}

BOOST_AUTO_TEST_CASE(deadlines_take_answers_once_and_the_sweep_skips_it) {
  Deadlines<std::string> deadlines(10ms);
  const Clock::time_point start{};
  uint64_t token = deadlines.add(start, "a");
  deadlines.add(start, "b");
  auto taken = deadlines.take(token);
  BOOST_REQUIRE(taken);
  BOOST_CHECK_EQUAL(*taken, "a");
  BOOST_CHECK(!deadlines.take(token));
  std::vector<std::string> expired;
  deadlines.sweep(start + 10ms, [&](const std::string& value) { expired.push_back(value); });
  BOOST_CHECK((expired == std::vector<std::string>{"b"}));
  BOOST_CHECK(deadlines.empty());
}

BOOST_AUTO_TEST_CASE(deadlines_arm_one_sweep_at_a_time_and_only_with_entries) {
  Deadlines<int> deadlines(10ms);
  BOOST_CHECK(!deadlines.arm());  // nothing waits
  deadlines.add(Clock::time_point{}, 1);
  BOOST_CHECK(deadlines.arm());
  BOOST_CHECK(!deadlines.arm());  // already armed
  deadlines.sweep(Clock::time_point{}, [](int) { BOOST_FAIL("nothing is due yet"); });
  BOOST_CHECK(deadlines.arm());  // the sweep disarmed it; the entry still waits
}

// --- the gateway ----------------------------------------------------------------------------

namespace {

using release_atom = caf::atom_constant<caf::atom("release")>;
constexpr release_atom release_atom_v{};

// A raft node that holds every proposal and ReadIndex until told to release them; then it
// refuses them, and every later one at once, as a follower of node 7 would.
struct HoldingRaftState {
  std::vector<std::pair<caf::response_promise, bool>> held;  // the promise; is it a proposal
  bool released = false;
};

// A proposal's refusal is (accepted, index, term, leader hint), a ReadIndex's (ok, read
// index, leader hint).
void refuse(caf::response_promise& promise, bool proposal) {
  if (proposal) promise.deliver(false, uint64_t{0}, uint64_t{0}, uint64_t{7});
  else promise.deliver(false, uint64_t{0}, uint64_t{7});
}

// (Each fake takes an argument: CAF 0.17.6 dereferences a null argument tuple when a function
// actor is spawned with none, which the sanitizer build reports as undefined behaviour.)
caf::behavior holding_raft_node(caf::stateful_actor<HoldingRaftState>* self, int) {
  auto hold_or_refuse = [self](bool proposal) {
    auto promise = self->make_response_promise();
    if (self->state.released) refuse(promise, proposal);
    else self->state.held.emplace_back(promise, proposal);
    return promise;
  };
  return {
      [hold_or_refuse](raft_propose_atom, std::vector<uint8_t>&) { return hold_or_refuse(true); },
      [hold_or_refuse](raft_propose_many_atom, std::vector<std::vector<uint8_t>>&) { return hold_or_refuse(true); },
      [hold_or_refuse](raft_read_atom) { return hold_or_refuse(false); },
      [self](release_atom) {
        self->state.released = true;
        for (auto& [promise, proposal] : self->state.held) refuse(promise, proposal);
        self->state.held.clear();
      },
  };
}

// Never reached in these cases: the proposals and reads stop at the raft node.
state_machine_actor::behavior_type idle_state_machine(int) {
  return {
      [](apply_atom, Frame&) {},
      [](wait_atom, uint64_t, uint64_t) -> caf::result<Frame> { return to_error(Status::busy("idle")); },
      [](kv_get_atom, std::string&, uint64_t) -> caf::result<bool, std::string, uint64_t> {
        return to_error(Status::busy("idle"));
      },
      [](kv_range_atom, Frame&, uint64_t) -> caf::result<Frame> { return to_error(Status::busy("idle")); },
      [](wait_many_atom, uint64_t, uint64_t, uint64_t) -> caf::result<Frame, std::vector<uint8_t>> {
        return to_error(Status::busy("idle"));
      },
      [](kv_get_many_atom, std::vector<std::string>&, uint64_t)
          -> caf::result<std::vector<std::string>, std::vector<uint8_t>, uint64_t> { return to_error(Status::busy("idle")); },
      [](kv_applied_atom) { return uint64_t{0}; },
      [](snapshot_install_atom, uint64_t, uint64_t) { return uint64_t{0}; },
      [](kv_apply_atom) {},
      [](hash_atom) -> caf::result<uint64_t, uint64_t> { return to_error(Status::busy("idle")); },
  };
}

// Asks `gateway` for `keys` as one GetBatch and returns its answer, decoded.
GetBatchAnswer ask_gets(caf::scoped_actor& self, const client_gateway_actor& gateway, std::vector<std::string> keys) {
  GetBatchAnswer answer;
  self->request(gateway, std::chrono::seconds(5), client_gets_atom_v, Frame{encode_get_batch(keys, 0)})
      .receive(
          [&](Frame& frame) {
            auto decoded = decode_get_batch_answer(frame.bytes.data(), frame.bytes.size());
            BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
            answer = std::move(*decoded);
          },
          [&](caf::error& error) { BOOST_FAIL("no answer to the get batch: " << self->system().render(error)); });
  return answer;
}

struct GatewayFixture {
  GatewayFixture() {
    add_message_types(config);
    system = std::make_unique<caf::actor_system>(config);
    raft_node = system->spawn(holding_raft_node, 0);
    state_machine = system->spawn(idle_state_machine, 0);
    ClientGatewayConfig gateway_config;
    gateway_config.node_id = 1;
    gateway_config.request_timeout = request_timeout;
    gateway_config.slow_request_timeout = slow_request_timeout;
    // The fake raft node answers only what these tests ask of it: a dynamically typed actor
    // behind the typed handle the gateway takes.
    gateway = spawn_client_gateway(*system, gateway_config, caf::actor_cast<raft_node_actor>(raft_node), state_machine,
                                   snapshotter_actor{});
    self = std::make_unique<caf::scoped_actor>(*system);
  }
  ~GatewayFixture() {
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(raft_node, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(state_machine, caf::exit_reason::user_shutdown);
  }

  // Sends a request; the answer is collected by answers().
  void send(uint64_t request_id, ClientOp op) {
    ClientRequest request;
    request.request_id = request_id;
    request.op = op;
    request.key = "key";
    request.value = "value";
    request.snapshot_index = 7;
    send_request(request);
  }

  void send_request(const ClientRequest& request) {
    (*self)->send(gateway, client_atom_v, Frame{encode_client_request(request)});
  }

  // Sends a batch of requests (ids and ops; a request of id 0 goes malformed) and returns its
  // answers, decoded (none: the batch failed).
  std::optional<std::vector<ClientResponse>> batch(const std::vector<std::pair<uint64_t, ClientOp>>& requests) {
    std::vector<Frame> frames;
    for (const auto& [id, op] : requests) {
      ClientRequest request;
      request.request_id = id;
      request.op = op;
      request.key = "key" + std::to_string(id);
      request.value = "value";
      frames.push_back(id == 0 ? Frame{{0x01, 0x02, 0x03}} : Frame{encode_client_request(request)});
    }
    std::optional<std::vector<ClientResponse>> responses;
    (*self)->request(gateway, caf::infinite, client_batch_atom_v, std::move(frames))
        .receive(
            [&](std::vector<Frame>& answers) {
              responses.emplace();
              for (const Frame& frame : answers) {
                auto response = decode_client_response(frame.bytes.data(), frame.bytes.size());
                BOOST_REQUIRE_MESSAGE(response.is_ok(), response.status().to_string());
                responses->push_back(*response);
              }
            },
            [&](caf::error& error) { BOOST_FAIL("the batch failed: " + system->render(error)); });
    return responses;
  }

  // Every answer that arrives within `window`.
  std::vector<ClientResponse> answers(std::chrono::milliseconds window) {
    std::vector<ClientResponse> responses;
    const auto until = Clock::now() + window;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left <= 0ms) break;
      bool got = false;
      (*self)->receive(
          [&](Frame& frame) {
            auto response = decode_client_response(frame.bytes.data(), frame.bytes.size());
            BOOST_REQUIRE_MESSAGE(response.is_ok(), response.status().to_string());
            responses.push_back(*response);
            got = true;
          },
          caf::after(left) >> [] {});
      if (!got) break;
    }
    return responses;
  }

  const std::chrono::milliseconds request_timeout{300};
  const std::chrono::milliseconds slow_request_timeout{900};
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  caf::actor raft_node;
  state_machine_actor state_machine;
  client_gateway_actor gateway;
  std::unique_ptr<caf::scoped_actor> self;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_request_no_stage_answers_gets_timeout_at_its_deadline, GatewayFixture) {
  const auto sent_at = Clock::now();
  send(1, ClientOp::put);
  send(2, ClientOp::get);
  BOOST_CHECK_MESSAGE(answers(request_timeout / 2).empty(), "answered before the deadline");
  auto responses = answers(request_timeout * 3);
  const auto waited = Clock::now() - sent_at;
  BOOST_REQUIRE_EQUAL(responses.size(), 2u);
  for (const ClientResponse& response : responses) {
    BOOST_CHECK(response.status == ClientStatus::timeout);
    BOOST_CHECK(response.request_id == 1 || response.request_id == 2);
  }
  BOOST_CHECK_NE(responses[0].request_id, responses[1].request_id);
  BOOST_CHECK(waited >= request_timeout);
}

BOOST_FIXTURE_TEST_CASE(a_stage_that_answers_after_the_deadline_is_not_a_second_answer, GatewayFixture) {
  send(1, ClientOp::put);
  auto first = answers(request_timeout * 3);
  BOOST_REQUIRE_EQUAL(first.size(), 1u);
  BOOST_CHECK(first[0].status == ClientStatus::timeout);

  // The raft node answers the old proposal now, and a new one at once: only the new
  // request is answered (not_leader, with the hint).
  caf::anon_send(raft_node, release_atom_v);
  send(2, ClientOp::put);
  auto later = answers(request_timeout / 2);
  BOOST_REQUIRE_EQUAL(later.size(), 1u);
  BOOST_CHECK_EQUAL(later[0].request_id, 2u);
  BOOST_CHECK(later[0].status == ClientStatus::not_leader);
  BOOST_CHECK_EQUAL(later[0].leader_hint, 7u);
}

BOOST_FIXTURE_TEST_CASE(a_snapshot_begin_waits_for_the_slow_deadline_not_the_request_timeout, GatewayFixture) {
  const auto sent_at = Clock::now();
  send(1, ClientOp::snapshot_begin);
  send(2, ClientOp::get);
  auto first = answers(request_timeout * 2);
  BOOST_REQUIRE_EQUAL(first.size(), 1u);
  BOOST_CHECK_EQUAL(first[0].request_id, 2u);
  auto later = answers(slow_request_timeout * 2);
  const auto waited = Clock::now() - sent_at;
  BOOST_REQUIRE_EQUAL(later.size(), 1u);
  BOOST_CHECK_EQUAL(later[0].request_id, 1u);
  BOOST_CHECK(later[0].status == ClientStatus::timeout);
  BOOST_CHECK(waited >= slow_request_timeout);
}

BOOST_FIXTURE_TEST_CASE(a_snapshot_begin_on_a_follower_answers_not_leader, GatewayFixture) {
  caf::anon_send(raft_node, release_atom_v);
  send(1, ClientOp::snapshot_begin);
  auto responses = answers(request_timeout);
  BOOST_REQUIRE_EQUAL(responses.size(), 1u);
  BOOST_CHECK(responses[0].status == ClientStatus::not_leader);
  BOOST_CHECK_EQUAL(responses[0].leader_hint, 7u);
}

BOOST_FIXTURE_TEST_CASE(every_answer_names_this_node_the_leaders_client_address_and_the_members, GatewayFixture) {
  // What the raft node tells a subscribed gateway (actors/raft_node.h, client_directory_atom).
  caf::anon_send(caf::actor_cast<caf::actor>(gateway), client_directory_atom_v, uint64_t{7},
                 std::vector<uint64_t>{1, 7, 9}, std::vector<std::string>{"127.0.0.1:7101", "127.0.0.1:7107", ""});
  send(1, ClientOp::put);  // held: answered timeout at its deadline
  auto timed_out = answers(request_timeout * 3);
  caf::anon_send(raft_node, release_atom_v);
  send(2, ClientOp::get);  // not_leader, hint 7
  auto refused = answers(request_timeout / 2);
  BOOST_REQUIRE_EQUAL(timed_out.size(), 1u);
  BOOST_REQUIRE_EQUAL(refused.size(), 1u);
  for (const ClientResponse& response : {timed_out[0], refused[0]}) {
    BOOST_CHECK_EQUAL(response.node_id, 1u);
    BOOST_CHECK_EQUAL(response.leader_hint, 7u);
    BOOST_CHECK_EQUAL(response.leader_client_address, "127.0.0.1:7107");
    BOOST_REQUIRE_EQUAL(response.members.size(), 3u);
    BOOST_CHECK((response.members[0] == ClientMember{1, "127.0.0.1:7101"}));
    BOOST_CHECK((response.members[2] == ClientMember{9, ""}));
  }
  BOOST_CHECK(timed_out[0].status == ClientStatus::timeout);
  BOOST_CHECK(refused[0].status == ClientStatus::not_leader);
}

BOOST_FIXTURE_TEST_CASE(an_answer_leaves_out_the_members_the_client_holds, GatewayFixture) {
  caf::anon_send(caf::actor_cast<caf::actor>(gateway), client_directory_atom_v, uint64_t{7},
                 std::vector<uint64_t>{1, 7}, std::vector<std::string>{"127.0.0.1:7101", "127.0.0.1:7107"});
  caf::anon_send(raft_node, release_atom_v);
  const uint64_t version =
      directory_fingerprint({ClientMember{1, "127.0.0.1:7101"}, ClientMember{7, "127.0.0.1:7107"}});
  BOOST_REQUIRE_NE(version, 0u);
  // A client that holds nothing, one that holds this directory, one that holds an older one.
  for (uint64_t known : {uint64_t{0}, version, version + 1}) {
    ClientRequest request;
    request.request_id = 5;
    request.op = ClientOp::get;
    request.key = "k";
    request.directory_known = known;
    send_request(request);
    auto responses = answers(request_timeout / 2);
    BOOST_REQUIRE_EQUAL(responses.size(), 1u);
    const ClientResponse& response = responses[0];
    BOOST_CHECK(response.status == ClientStatus::not_leader);
    BOOST_CHECK_EQUAL(response.directory_version, version);
    BOOST_CHECK_EQUAL(response.leader_client_address, "127.0.0.1:7107");  // always: a hint must be followable
    BOOST_CHECK_EQUAL(response.members.size(), known == version ? 0u : 2u);
  }
}

BOOST_AUTO_TEST_CASE(a_directory_fingerprint_names_the_ids_and_the_addresses) {
  const std::vector<ClientMember> members{{1, "127.0.0.1:7101"}, {2, "127.0.0.1:7102"}};
  BOOST_CHECK_EQUAL(directory_fingerprint({}), 0u);
  BOOST_CHECK_NE(directory_fingerprint(members), 0u);
  BOOST_CHECK_EQUAL(directory_fingerprint(members), directory_fingerprint(members));
  BOOST_CHECK_NE(directory_fingerprint(members), directory_fingerprint({{1, "127.0.0.1:7101"}, {3, "127.0.0.1:7102"}}));
  BOOST_CHECK_NE(directory_fingerprint(members), directory_fingerprint({{1, "127.0.0.1:7101"}, {2, "127.0.0.1:7103"}}));
  BOOST_CHECK_NE(directory_fingerprint({{1, "1"}, {2, "23"}}), directory_fingerprint({{1, "12"}, {2, "3"}}));
}

BOOST_FIXTURE_TEST_CASE(without_a_snapshotter_backup_chunks_answer_unavailable, GatewayFixture) {
  send(1, ClientOp::snapshot_chunk);
  auto responses = answers(request_timeout / 2);
  BOOST_REQUIRE_EQUAL(responses.size(), 1u);
  BOOST_CHECK(responses[0].status == ClientStatus::unavailable);
}

// --- a gateway whose stages answer at once ----------------------------------------------------

namespace {

constexpr uint64_t leader_read_index = 40;
constexpr uint64_t snapshot_index = 42, snapshot_term = 3;
constexpr uint64_t snapshot_file_bytes = 2 * client_snapshot_chunk_bytes_max + 1000;

// The byte a fake snapshot file holds at `offset`.
uint8_t file_byte(uint64_t offset) { return static_cast<uint8_t>(offset * 131 + offset / 7); }

// A leader: reads confirmed at leader_read_index; a snapshot taken on request.
caf::behavior leading_raft_node(caf::event_based_actor*, int) {
  return {
      [](raft_read_atom) { return caf::make_message(true, leader_read_index, uint64_t{1}); },
      [](raft_status_atom) {
        return caf::make_message(static_cast<uint64_t>(raft::Role::leader), uint64_t{1}, uint64_t{3}, uint64_t{45},
                                 uint64_t{45});
      },
      [](snapshot_status_atom) { return caf::make_message(uint64_t{30}, uint64_t{2}, uint64_t{21}, uint64_t{46}); },
      [](snapshot_take_atom) { return caf::make_message(snapshot_index, snapshot_term, snapshot_file_bytes); },
  };
}

// Applied through 44; a read waits for nothing. Records the read index a backup waited for.
state_machine_actor::behavior_type applied_state_machine(state_machine_actor::pointer, std::shared_ptr<uint64_t> waited) {
  return {
      [](apply_atom, Frame&) {},
      [](wait_atom, uint64_t, uint64_t) -> caf::result<Frame> { return to_error(Status::busy("unused")); },
      [waited](kv_get_atom, std::string&, uint64_t read_index) -> caf::result<bool, std::string, uint64_t> {
        *waited = read_index;
        return {false, std::string(), uint64_t{44}};
      },
      [](kv_range_atom, Frame&, uint64_t) -> caf::result<Frame> { return to_error(Status::busy("unused")); },
      [](wait_many_atom, uint64_t, uint64_t, uint64_t) -> caf::result<Frame, std::vector<uint8_t>> {
        return to_error(Status::busy("unused"));
      },
      [waited](kv_get_many_atom, std::vector<std::string>& keys, uint64_t read_index)
          -> caf::result<std::vector<std::string>, std::vector<uint8_t>, uint64_t> {
        *waited = read_index;
        return {std::vector<std::string>(keys.size()), std::vector<uint8_t>(keys.size(), 0), uint64_t{44}};
      },
      [](kv_applied_atom) { return uint64_t{44}; },
      [](snapshot_install_atom, uint64_t, uint64_t) -> caf::result<uint64_t> { return to_error(Status::busy("unused")); },
      [](kv_apply_atom) {},
      [](hash_atom) -> caf::result<uint64_t, uint64_t> { return {uint64_t{44}, uint64_t{0xfeedbeef}}; },
  };
}

caf::error unused() { return to_error(Status::unsupported("not used by the gateway")); }

// Serves snapshot (snapshot_index, snapshot_term) of snapshot_file_bytes bytes, file_byte each.
snapshotter_actor::behavior_type file_snapshotter(int) {
  return {
      [](snapshot_take_atom, Frame&) -> caf::result<Frame, uint64_t, uint64_t> { return unused(); },
      [](snapshot_read_atom, uint64_t index, uint64_t term, uint64_t offset,
         uint64_t bytes_max) -> caf::result<Frame, uint64_t> {
        if (index != snapshot_index || term != snapshot_term) return to_error(Status::not_found("no such snapshot"));
        if (offset > snapshot_file_bytes) return to_error(Status::invalid_argument("past the end"));
        Frame frame;
        for (uint64_t at = offset; at < std::min(offset + bytes_max, snapshot_file_bytes); ++at) {
          frame.bytes.push_back(file_byte(at));
        }
        return {std::move(frame), snapshot_file_bytes};
      },
      [](snapshot_write_atom, uint64_t, uint64_t, uint64_t, Frame&) -> caf::result<uint64_t> { return unused(); },
      [](snapshot_finish_atom, uint64_t, uint64_t) -> caf::result<Frame, uint64_t> { return unused(); },
      [](compact_atom, uint64_t, uint64_t) -> caf::result<uint64_t> { return unused(); },
  };
}

struct ServingFixture {
  ServingFixture() {
    // The applied state the gateway may read itself: "k" = "v", published at 0 until a test
    // publishes more (AppliedReads).
    auto opened = Store::open(dir.file("lmdb"));
    BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
    std::shared_ptr<Store> store = std::move(opened).value();
    Status written = store->write_kv([](KvWriter& writer) { return writer.put("k", "v"); });
    BOOST_REQUIRE_MESSAGE(written.is_ok(), written.to_string());
    applied_reads = std::make_shared<AppliedReads>(store);
    add_message_types(config);
    system = std::make_unique<caf::actor_system>(config);
    raft_node = system->spawn(leading_raft_node, 0);
    state_machine = system->spawn(applied_state_machine, waited_read_index);
    snapshotter = system->spawn(file_snapshotter, 0);
    ClientGatewayConfig gateway_config;
    gateway_config.node_id = 1;
    gateway_config.applied_reads = applied_reads;
    gateway = spawn_client_gateway(*system, gateway_config, caf::actor_cast<raft_node_actor>(raft_node), state_machine,
                                   snapshotter);
    self = std::make_unique<caf::scoped_actor>(*system);
  }
  ~ServingFixture() {
    for (const caf::actor& actor : {caf::actor_cast<caf::actor>(gateway), raft_node, caf::actor_cast<caf::actor>(state_machine),
                                    caf::actor_cast<caf::actor>(snapshotter)}) {
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    }
  }

  // Request 1 of `op` (get or range) from `key`.
  static ClientRequest read_request(ClientOp op, const std::string& key) {
    ClientRequest request;
    request.request_id = 1;
    request.op = op;
    request.key = key;
    return request;
  }

  ClientResponse ask(const ClientRequest& request) {
    ClientResponse response;
    (*self)
        ->request(gateway, std::chrono::seconds(5), client_atom_v, Frame{encode_client_request(request)})
        .receive(
            [&](Frame& frame) {
              auto decoded = decode_client_response(frame.bytes.data(), frame.bytes.size());
              BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
              response = *decoded;
            },
            [&](caf::error& error) { BOOST_FAIL("no answer: " << system->render(error)); });
    return response;
  }

  testing::TempDir dir;
  std::shared_ptr<AppliedReads> applied_reads;
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  std::shared_ptr<uint64_t> waited_read_index = std::make_shared<uint64_t>(0);
  caf::actor raft_node;
  state_machine_actor state_machine;
  snapshotter_actor snapshotter;
  client_gateway_actor gateway;
  std::unique_ptr<caf::scoped_actor> self;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_get_is_read_by_the_gateway_once_the_published_applied_index_reaches_its_read_index,
                        ServingFixture) {
  ClientRequest get = read_request(ClientOp::get, "k");
  // Published 30, read index 40: the state machine answers (its fake: absent, at 44).
  applied_reads->publish(leader_read_index - 10);
  ClientResponse asked = ask(get);
  BOOST_REQUIRE_MESSAGE(asked.status == ClientStatus::ok, asked.message);
  BOOST_CHECK_EQUAL(*waited_read_index, leader_read_index);
  BOOST_CHECK(!asked.found);
  BOOST_CHECK_EQUAL(asked.index, 44u);
  // Published 50: read here, from LMDB, without asking the state machine.
  *waited_read_index = 0;
  applied_reads->publish(leader_read_index + 10);
  get.request_id = 2;
  ClientResponse read = ask(get);
  BOOST_REQUIRE_MESSAGE(read.status == ClientStatus::ok, read.message);
  BOOST_CHECK_EQUAL(*waited_read_index, 0u);
  BOOST_CHECK(read.found);
  BOOST_CHECK_EQUAL(read.value, "v");
  BOOST_CHECK_EQUAL(read.index, leader_read_index + 10);
}

BOOST_FIXTURE_TEST_CASE(a_range_is_read_by_the_gateway_once_the_published_applied_index_reaches_its_read_index,
                        ServingFixture) {
  ClientRequest range = read_request(ClientOp::range, "a");
  range.range_end = "z";
  // Published 30, read index 40: asked of the state machine, whose fake refuses ranges.
  applied_reads->publish(leader_read_index - 10);
  ClientResponse asked = ask(range);
  BOOST_CHECK(asked.status != ClientStatus::ok);
  // Published 50: read here, from LMDB.
  applied_reads->publish(leader_read_index + 10);
  range.request_id = 2;
  ClientResponse read = ask(range);
  BOOST_REQUIRE_MESSAGE(read.status == ClientStatus::ok, read.message);
  BOOST_CHECK((read.keys == std::vector<std::string>{"k"}));
  BOOST_CHECK((read.values == std::vector<std::string>{"v"}));
  BOOST_CHECK_EQUAL(read.range_count, 1u);
  BOOST_CHECK(!read.more);
  BOOST_CHECK_EQUAL(read.index, leader_read_index + 10);
}

BOOST_FIXTURE_TEST_CASE(status_carries_the_log_bounds_and_the_hash_only_when_asked, ServingFixture) {
  ClientRequest request;
  request.request_id = 1;
  request.op = ClientOp::status;
  ClientResponse plain = ask(request);
  BOOST_REQUIRE(plain.status == ClientStatus::ok);
  BOOST_CHECK_EQUAL(plain.role, "leader");
  BOOST_CHECK_EQUAL(plain.applied_index, 44u);
  BOOST_CHECK_EQUAL(plain.snapshot_index, 30u);
  BOOST_CHECK_EQUAL(plain.snapshot_term, 2u);
  BOOST_CHECK_EQUAL(plain.first_index, 21u);
  BOOST_CHECK_EQUAL(plain.last_index, 46u);
  BOOST_CHECK(!plain.hashed);

  request.hash = true;
  ClientResponse hashed = ask(request);
  BOOST_REQUIRE(hashed.status == ClientStatus::ok);
  BOOST_CHECK(hashed.hashed);
  BOOST_CHECK_EQUAL(hashed.state_hash, 0xfeedbeefu);
  BOOST_CHECK_EQUAL(hashed.hash_index, 44u);
  BOOST_CHECK_EQUAL(hashed.last_index, 46u);
}

BOOST_FIXTURE_TEST_CASE(a_backup_begins_after_the_read_index_applied_and_reads_the_file_in_bounded_chunks,
                        ServingFixture) {
  ClientRequest begin;
  begin.request_id = 1;
  begin.op = ClientOp::snapshot_begin;
  ClientResponse begun = ask(begin);
  BOOST_REQUIRE_MESSAGE(begun.status == ClientStatus::ok, begun.message);
  BOOST_CHECK_EQUAL(*waited_read_index, leader_read_index);
  BOOST_CHECK_EQUAL(begun.snapshot_index, snapshot_index);
  BOOST_CHECK_EQUAL(begun.snapshot_term, snapshot_term);
  BOOST_CHECK_EQUAL(begun.total_bytes, snapshot_file_bytes);

  uint64_t offset = 0;
  size_t chunks = 0;
  while (offset < begun.total_bytes) {
    ClientRequest chunk;
    chunk.request_id = 2 + chunks;
    chunk.op = ClientOp::snapshot_chunk;
    chunk.snapshot_index = begun.snapshot_index;
    chunk.snapshot_term = begun.snapshot_term;
    chunk.chunk_offset = offset;
    ClientResponse answer = ask(chunk);
    BOOST_REQUIRE_MESSAGE(answer.status == ClientStatus::ok, answer.message);
    BOOST_REQUIRE(!answer.chunk.empty());
    BOOST_REQUIRE_LE(answer.chunk.size(), client_snapshot_chunk_bytes_max);
    BOOST_CHECK_EQUAL(answer.total_bytes, snapshot_file_bytes);
    for (size_t i = 0; i < answer.chunk.size(); i += 4099) {
      BOOST_REQUIRE_EQUAL(static_cast<uint8_t>(answer.chunk[i]), file_byte(offset + i));
    }
    offset += answer.chunk.size();
    ++chunks;
  }
  BOOST_CHECK_EQUAL(offset, snapshot_file_bytes);
  BOOST_CHECK_EQUAL(chunks, 3u);
}

BOOST_FIXTURE_TEST_CASE(a_chunk_of_a_snapshot_the_node_does_not_have_answers_unavailable_naming_it, ServingFixture) {
  ClientRequest chunk;
  chunk.request_id = 1;
  chunk.op = ClientOp::snapshot_chunk;
  chunk.snapshot_index = snapshot_index + 1;
  chunk.snapshot_term = snapshot_term;
  ClientResponse answer = ask(chunk);
  BOOST_CHECK(answer.status == ClientStatus::unavailable);
  BOOST_CHECK_MESSAGE(answer.message.find("snapshot " + std::to_string(snapshot_index + 1)) != std::string::npos,
                      answer.message);
}

BOOST_FIXTURE_TEST_CASE(a_batch_is_answered_once_in_request_order_each_request_as_alone, GatewayFixture) {
  caf::anon_send(raft_node, release_atom_v);  // a follower of node 7 now: every stage refuses at once
  auto responses = batch({{1, ClientOp::get},
                          {2, ClientOp::put},
                          {0, ClientOp::put},  // malformed
                          {3, ClientOp::put},
                          {4, ClientOp::get},
                          {5, ClientOp::snapshot_begin}});
  BOOST_REQUIRE(responses);
  BOOST_REQUIRE_EQUAL(responses->size(), 6u);
  const std::vector<uint64_t> ids{1, 2, 0, 3, 4, 5};
  for (size_t i = 0; i < ids.size(); ++i) {
    const ClientResponse& response = (*responses)[i];
    BOOST_CHECK_EQUAL(response.request_id, ids[i]);
    BOOST_CHECK_EQUAL(response.node_id, 1u);
    if (ids[i] == 0) {
      BOOST_CHECK(response.status == ClientStatus::rejected);
      continue;
    }
    BOOST_CHECK_MESSAGE(response.status == ClientStatus::not_leader, "request " << ids[i] << ": " << response.message);
    BOOST_CHECK_EQUAL(response.leader_hint, 7u);
  }
  // Nothing else comes: one answer for the batch.
  BOOST_CHECK(answers(request_timeout / 2).empty());
}

BOOST_FIXTURE_TEST_CASE(a_batch_no_stage_answers_gets_timeout_for_each_request_at_its_deadline, GatewayFixture) {
  const auto sent_at = Clock::now();
  auto responses = batch({{1, ClientOp::put}, {2, ClientOp::get}, {3, ClientOp::put}, {4, ClientOp::get}});
  const auto waited = Clock::now() - sent_at;
  BOOST_REQUIRE(responses);
  BOOST_REQUIRE_EQUAL(responses->size(), 4u);
  for (size_t i = 0; i < responses->size(); ++i) {
    BOOST_CHECK_EQUAL((*responses)[i].request_id, i + 1);
    BOOST_CHECK((*responses)[i].status == ClientStatus::timeout);
  }
  BOOST_CHECK(waited >= request_timeout);
  // The stages answer late: not a second answer.
  caf::anon_send(raft_node, release_atom_v);
  BOOST_CHECK(answers(request_timeout / 2).empty());
}

BOOST_FIXTURE_TEST_CASE(a_get_batch_no_stage_answers_is_answered_timeout_whole_at_its_deadline, GatewayFixture) {
  const auto sent_at = Clock::now();
  GetBatchAnswer answer = ask_gets(*self, gateway, {"a", "b", "c"});
  const auto waited = Clock::now() - sent_at;
  BOOST_CHECK(answer.header.status == ClientStatus::timeout);
  BOOST_CHECK_EQUAL(answer.header.node_id, 1u);
  BOOST_CHECK(answer.values.empty() && answer.found.empty());
  BOOST_CHECK(waited >= request_timeout);
  caf::anon_send(raft_node, release_atom_v);  // the ReadIndex is refused late: not a second answer
  BOOST_CHECK(answers(request_timeout / 2).empty());
}

BOOST_FIXTURE_TEST_CASE(a_get_batch_on_a_follower_answers_not_leader_naming_the_leader, GatewayFixture) {
  caf::anon_send(raft_node, release_atom_v);  // a follower of node 7
  GetBatchAnswer answer = ask_gets(*self, gateway, {"a", "b"});
  BOOST_CHECK_MESSAGE(answer.header.status == ClientStatus::not_leader, answer.header.message);
  BOOST_CHECK_EQUAL(answer.header.leader_hint, 7u);
  BOOST_CHECK(answer.values.empty());
}

BOOST_FIXTURE_TEST_CASE(a_get_batch_with_an_impossible_key_is_rejected_naming_it, GatewayFixture) {
  GetBatchAnswer empty_key = ask_gets(*self, gateway, {"a", ""});
  BOOST_CHECK(empty_key.header.status == ClientStatus::rejected);
  BOOST_CHECK_MESSAGE(empty_key.header.message.find("empty key") != std::string::npos, empty_key.header.message);
  GetBatchAnswer long_key = ask_gets(*self, gateway, {std::string(kv_key_bytes_max + 1, 'k')});
  BOOST_CHECK(long_key.header.status == ClientStatus::rejected);
  BOOST_CHECK_MESSAGE(long_key.header.message.find(std::to_string(kv_key_bytes_max + 1) + " bytes") != std::string::npos,
                      long_key.header.message);
  // Not a GetBatch at all.
  GetBatchAnswer garbage;
  (*self)
      ->request(gateway, std::chrono::seconds(5), client_gets_atom_v, Frame{{1, 2, 3}})
      .receive(
          [&](Frame& frame) {
            auto decoded = decode_get_batch_answer(frame.bytes.data(), frame.bytes.size());
            BOOST_REQUIRE(decoded.is_ok());
            garbage = std::move(*decoded);
          },
          [&](caf::error& error) { BOOST_FAIL(system->render(error)); });
  BOOST_CHECK(garbage.header.status == ClientStatus::rejected);
  BOOST_CHECK_MESSAGE(garbage.header.message.find("get batch") != std::string::npos, garbage.header.message);
}

BOOST_FIXTURE_TEST_CASE(a_get_batch_reads_every_key_at_one_read_index_here_or_in_the_state_machine, ServingFixture) {
  // Published 30, read index 40: the state machine reads them (its fake: all absent, at 44).
  applied_reads->publish(leader_read_index - 10);
  GetBatchAnswer waited = ask_gets(*self, gateway, {"k", "x", "k"});
  BOOST_REQUIRE_MESSAGE(waited.header.status == ClientStatus::ok, waited.header.message);
  BOOST_CHECK_EQUAL(*waited_read_index, leader_read_index);
  BOOST_CHECK_EQUAL(waited.header.index, 44u);
  BOOST_CHECK_EQUAL(waited.header.leader_hint, 1u);
  BOOST_REQUIRE_EQUAL(waited.values.size(), 3u);
  BOOST_CHECK(waited.found == std::vector<uint8_t>({0, 0, 0}));
  // Published 50: read here, from LMDB, in request order, without asking the state machine.
  *waited_read_index = 0;
  applied_reads->publish(leader_read_index + 10);
  GetBatchAnswer read = ask_gets(*self, gateway, {"k", "x", "k"});
  BOOST_REQUIRE_MESSAGE(read.header.status == ClientStatus::ok, read.header.message);
  BOOST_CHECK_EQUAL(*waited_read_index, 0u);
  BOOST_CHECK_EQUAL(read.header.index, leader_read_index + 10);
  BOOST_CHECK(read.found == std::vector<uint8_t>({1, 0, 1}));
  BOOST_CHECK(read.values == std::vector<std::string>({"v", "", "v"}));
  // As each get alone would have been answered.
  ClientResponse second = get_batch_response(read, 2, 9);
  BOOST_CHECK_EQUAL(second.request_id, 9u);
  BOOST_CHECK(second.found);
  BOOST_CHECK_EQUAL(second.value, "v");
  BOOST_CHECK_EQUAL(second.index, leader_read_index + 10);
  BOOST_CHECK_EQUAL(second.node_id, 1u);
}
