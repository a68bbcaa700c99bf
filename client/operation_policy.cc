// The client's policy without I/O (see operation_policy.h).
#include "client/operation_policy.h"

#include <algorithm>

#include "storage/status.h"

namespace keyval {

OperationPolicy::OperationPolicy(bool write, size_t nodes, RetryOptions options)
    : write_(write), nodes_(nodes), options_(options), backoff_us_(options.backoff_min_us) {
  KV_ASSERT(options_.backoff_min_us <= options_.backoff_max_us);
}

Decision OperationPolicy::retry(RetryTarget target) {
  hint_hops_ = 0;
  Decision decision{Decision::retry, target, backoff_us_};
  backoff_us_ = std::min(std::max<uint64_t>(backoff_us_ * 2, 1), options_.backoff_max_us);
  return decision;
}

Decision OperationPolicy::follow_hint() {
  if (hint_hops_ >= nodes_) return retry(RetryTarget::hinted);
  ++hint_hops_;
  return Decision{Decision::retry, RetryTarget::hinted, 0};
}

Decision OperationPolicy::on_answer(const ClientResponse& response, bool hint_reachable) {
  ++attempts_;
  switch (response.status) {
    case ClientStatus::ok: return Decision{Decision::done};
    case ClientStatus::rejected:
    case ClientStatus::stale_request:
    case ClientStatus::session_expired: return Decision{Decision::fail};
    case ClientStatus::not_leader:
      leader_unknown_ = !hint_reachable;
      return hint_reachable ? follow_hint() : retry(RetryTarget::another);
    case ClientStatus::no_leader:
      leader_unknown_ = true;
      return retry(RetryTarget::another);
    case ClientStatus::timeout:  // unknown outcome: ask the leader again, same sequence
      if (write_) uncertain_ = true;
      leader_unknown_ = false;
      return retry(hint_reachable ? RetryTarget::hinted : RetryTarget::same);
    case ClientStatus::unavailable:  // the node is stopping: unknown outcome, ask another
      if (write_) uncertain_ = true;
      [[fallthrough]];
    case ClientStatus::lost:  // replaced by another leader's entry: not applied
      leader_unknown_ = false;
      return retry(hint_reachable ? RetryTarget::hinted : RetryTarget::another);
    case ClientStatus::busy:
      // Busy may come after the write was proposed (a full WAL queue or state machine on the
      // leader): the entry may still commit. The simulator found KvClient taking busy as "not
      // applied" and a checker call it lost; it is an unknown outcome.
      if (write_) uncertain_ = true;
      leader_unknown_ = false;
      return retry(RetryTarget::same);
  }
  KV_ASSERT(false && "ClientResponse with a status outside ClientStatus");
  return Decision{Decision::fail};
}

Decision OperationPolicy::on_no_answer(bool sent) {
  ++attempts_;
  if (sent && write_) uncertain_ = true;  // it may have reached the node before the failure
  leader_unknown_ = false;
  return retry(RetryTarget::another);
}

void ClientSession::stamp(ClientRequest& request) {
  request.client_id = client_id_;
  request.sequence = ++sequence_;
}

void ClientSession::write_ended(bool applied, bool uncertain, const std::function<uint64_t()>& fresh_id) {
  if (applied) {
    started_ = true;
    return;
  }
  if (started_) return;  // the next write takes the next sequence; gaps are allowed
  // No session yet: the next write must use sequence 1 again. If this one may still apply
  // later, its sequence 1 is taken (a new write would be answered with its result): new session.
  if (uncertain) client_id_ = fresh_id();
  sequence_ = 0;
}

}  // namespace keyval
