// Goal: the client policy every KeyVal client shares (client/operation_policy.h) decides what an
// attempt's outcome means: where the next attempt goes, after what wait, and whether a write's
// outcome became unknown; the session makes retries repeat a sequence and opens a new session
// only when the first write may still apply. Method: answers built by hand, no sockets.
#define BOOST_TEST_MODULE operation_policy_test
#include <boost/test/unit_test.hpp>

#include "client/operation_policy.h"

using namespace keyval;

namespace {

ClientResponse answer(ClientStatus status, uint64_t hint = 0) {
  ClientResponse response;
  response.status = status;
  response.leader_hint = hint;
  return response;
}

constexpr RetryOptions options{10'000, 80'000};

}  // namespace

BOOST_AUTO_TEST_CASE(ok_ends_and_refusals_fail) {
  OperationPolicy write(true, 3, options);
  BOOST_TEST(write.on_answer(answer(ClientStatus::ok), false).kind == Decision::done);
  for (ClientStatus status : {ClientStatus::rejected, ClientStatus::stale_request, ClientStatus::session_expired}) {
    OperationPolicy policy(true, 3, options);
    BOOST_TEST(policy.on_answer(answer(status), false).kind == Decision::fail);
    BOOST_TEST(!policy.uncertain());
  }
}

BOOST_AUTO_TEST_CASE(a_reachable_hint_is_followed_at_once_but_not_forever) {
  OperationPolicy policy(false, 2, options);
  Decision first = policy.on_answer(answer(ClientStatus::not_leader, 2), true);
  BOOST_TEST(first.kind == Decision::retry);
  BOOST_TEST((first.target == RetryTarget::hinted));
  BOOST_TEST(first.delay_us == 0u);
  BOOST_TEST(policy.on_answer(answer(ClientStatus::not_leader, 1), true).delay_us == 0u);
  // Two nodes naming each other: after `nodes` hints in a row, a backoff.
  Decision third = policy.on_answer(answer(ClientStatus::not_leader, 2), true);
  BOOST_TEST((third.target == RetryTarget::hinted));
  BOOST_TEST(third.delay_us == options.backoff_min_us);
  BOOST_TEST(!policy.leader_unknown());
}

BOOST_AUTO_TEST_CASE(without_a_reachable_leader_it_backs_off_doubling_to_the_bound_and_moves_on) {
  OperationPolicy policy(false, 3, options);
  std::vector<uint64_t> delays;
  for (int i = 0; i < 5; ++i) {
    Decision decision = policy.on_answer(answer(ClientStatus::no_leader), false);
    BOOST_TEST((decision.target == RetryTarget::another));
    delays.push_back(decision.delay_us);
  }
  BOOST_TEST(delays == (std::vector<uint64_t>{10'000, 20'000, 40'000, 80'000, 80'000}), boost::test_tools::per_element());
  BOOST_TEST(policy.leader_unknown());
  Decision unreachable_hint = policy.on_answer(answer(ClientStatus::not_leader, 7), false);
  BOOST_TEST((unreachable_hint.target == RetryTarget::another));
  BOOST_TEST(unreachable_hint.delay_us > 0u);
  BOOST_TEST(policy.attempts() == 6u);
}

BOOST_AUTO_TEST_CASE(a_write_that_may_have_reached_a_leader_is_uncertain) {
  // Answered timeout, unavailable or busy (a leader answers busy after proposing when its WAL
  // queue or state machine is full), or sent and not answered.
  for (ClientStatus status : {ClientStatus::timeout, ClientStatus::unavailable, ClientStatus::busy}) {
    OperationPolicy write(true, 3, options);
    BOOST_TEST(write.on_answer(answer(status), false).kind == Decision::retry);
    BOOST_TEST(write.uncertain(), client_status_name(status));
    OperationPolicy read(false, 3, options);
    (void)read.on_answer(answer(status), false);
    BOOST_TEST(!read.uncertain(), client_status_name(status));
  }
  OperationPolicy sent(true, 3, options);
  BOOST_TEST((sent.on_no_answer(true).target == RetryTarget::another));
  BOOST_TEST(sent.uncertain());
  // Proven not applied: not sent, not the leader, no leader, lost (replaced by another entry).
  OperationPolicy refused(true, 3, options);
  (void)refused.on_no_answer(false);
  (void)refused.on_answer(answer(ClientStatus::not_leader, 2), true);
  (void)refused.on_answer(answer(ClientStatus::no_leader), false);
  (void)refused.on_answer(answer(ClientStatus::lost), false);
  BOOST_TEST(!refused.uncertain());
  // Once uncertain, it stays so whatever later attempts say.
  (void)sent.on_answer(answer(ClientStatus::no_leader), false);
  BOOST_TEST(sent.uncertain());
}

BOOST_AUTO_TEST_CASE(timeouts_and_busy_ask_the_same_node_or_the_hinted_leader) {
  OperationPolicy policy(true, 3, options);
  BOOST_TEST((policy.on_answer(answer(ClientStatus::timeout), false).target == RetryTarget::same));
  BOOST_TEST((policy.on_answer(answer(ClientStatus::timeout, 2), true).target == RetryTarget::hinted));
  BOOST_TEST((policy.on_answer(answer(ClientStatus::busy), false).target == RetryTarget::same));
  BOOST_TEST((policy.on_answer(answer(ClientStatus::unavailable), false).target == RetryTarget::another));
  BOOST_TEST((policy.on_answer(answer(ClientStatus::lost, 3), true).target == RetryTarget::hinted));
}

BOOST_AUTO_TEST_CASE(a_session_repeats_nothing_and_restarts_only_when_its_first_write_may_apply) {
  uint64_t fresh = 100;
  auto fresh_id = [&] { return ++fresh; };
  ClientSession session(7);
  ClientRequest first;
  session.stamp(first);
  BOOST_TEST(first.client_id == 7u);
  BOOST_TEST(first.sequence == 1u);
  // The first write refused everywhere: sequence 1 is still free, same session.
  session.write_ended(false, false, fresh_id);
  ClientRequest again;
  session.stamp(again);
  BOOST_TEST(again.client_id == 7u);
  BOOST_TEST(again.sequence == 1u);
  // The first write uncertain: it may still apply as sequence 1, so a new session.
  session.write_ended(false, true, fresh_id);
  ClientRequest fresh_write;
  session.stamp(fresh_write);
  BOOST_TEST(fresh_write.client_id == 101u);
  BOOST_TEST(fresh_write.sequence == 1u);
  session.write_ended(true, false, fresh_id);
  BOOST_TEST(session.started());
  // Once started, a failed write leaves a gap: the next write takes the next sequence.
  ClientRequest second;
  session.stamp(second);
  session.write_ended(false, true, fresh_id);
  ClientRequest third;
  session.stamp(third);
  BOOST_TEST(third.client_id == 101u);
  BOOST_TEST(third.sequence == 3u);
}
