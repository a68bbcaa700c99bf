// Goal: every client request is answered exactly once, by its deadline at the latest, now
// that the gateway keeps request deadlines itself (actors/deadlines.h) instead of one CAF
// request timeout per stage. Deadlines is checked as plain logic; the gateway is checked in
// a real actor system against a fake raft node that holds its answers until told, so a
// stage can be made to answer late or never.
#define BOOST_TEST_MODULE client_gateway_test
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/client_gateway.h"
#include "actors/client_protocol.h"
#include "actors/deadlines.h"

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
      [](kv_applied_atom) { return uint64_t{0}; },
      [](snapshot_install_atom, uint64_t, uint64_t) { return uint64_t{0}; },
  };
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
    gateway = spawn_client_gateway(*system, gateway_config, raft_node, state_machine);
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
    (*self)->send(gateway, client_atom_v, Frame{encode_client_request(request)});
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
