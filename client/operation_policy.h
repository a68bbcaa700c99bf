// The client's policy, without I/O: what an attempt's outcome means for one operation and where
// its next attempt goes (OperationPolicy), and the session that makes a retried write apply once
// (ClientSession). One policy for every client KeyVal has: KvClient (client/kv_client.h: the CLI,
// `keyval bench kv`, the tests) and the simulator's clients (sim/sim_client.h), so the simulator
// tests the policy that ships. Each caller owns its clock, its sockets (or simulated links) and
// its map from "another node" to an address; this file owns the decisions.
//
// Finding the leader: a not_leader answer with a hint the caller can reach (another node whose
// address it knows) is followed at once; at most `nodes` hints in a row are followed without a
// backoff, so two nodes naming each other cannot spin. Everything else waits a backoff, doubling
// from backoff_min_us to backoff_max_us, and goes to:
//   no_leader, not_leader without a reachable hint, a failed or lost connection, no answer
//     in time: another node, in turn;
//   timeout (the node gave up waiting for the commit): the hinted leader, else the same node;
//   unavailable (the node is stopping), lost (the entry was replaced): the hinted leader, else
//     another node;
//   busy: the same node.
// ok ends the operation; rejected, stale_request and session_expired end it failed.
//
// Unknown outcomes (Raft dissertation §6.3): a write whose request may have reached a leader
// (sent and then no answer: a timeout, a lost connection; or answered timeout, unavailable or
// busy, which a leader also answers after proposing when its WAL queue or state machine is
// full) is uncertain: the caller retries it with the same sequence until its deadline, and if it gives
// up, the write may still take effect.
#pragma once

#include <cstdint>
#include <functional>

#include "actors/client_protocol.h"

namespace keyval {

struct RetryOptions {
  uint64_t backoff_min_us = 10'000;   // first wait before retrying
  uint64_t backoff_max_us = 200'000;  // the wait doubles up to this
};

// Where an attempt goes.
enum class RetryTarget {
  same,     // the node just asked
  hinted,   // the leader the answer named (its address is known)
  another,  // the next node in turn
};

// What to do after an attempt.
struct Decision {
  enum Kind { done, fail, retry };
  Kind kind = retry;
  RetryTarget target = RetryTarget::another;
  uint64_t delay_us = 0;  // wait this long before the next attempt
};

class OperationPolicy {
 public:
  // `write`: the operation changes state (it carries the session). `nodes`: how many nodes the
  // caller knows (bounds the hints followed without a backoff).
  OperationPolicy(bool write, size_t nodes, RetryOptions options = {});

  // An answer came. `hint_reachable`: the answer names a leader other than the node that
  // answered, at an address the caller knows.
  Decision on_answer(const ClientResponse& response, bool hint_reachable);
  // No answer: the connection could not be made or broke, or none came in time. `sent`: the
  // request may have reached the node (it was written), so a write's outcome is unknown.
  Decision on_no_answer(bool sent);

  // A write that may have reached a leader without an answer saying what came of it.
  bool uncertain() const { return uncertain_; }
  // The latest failure was a node saying it knows no leader (for the caller's error message).
  bool leader_unknown() const { return leader_unknown_; }
  uint64_t attempts() const { return attempts_; }
  void set_nodes(size_t nodes) { nodes_ = nodes; }

 private:
  Decision retry(RetryTarget target);     // after a backoff
  Decision follow_hint();                 // at once, unless too many hints in a row

  bool write_;
  size_t nodes_;
  RetryOptions options_;
  uint64_t backoff_us_;
  uint64_t hint_hops_ = 0;  // hints followed without a backoff in between
  uint64_t attempts_ = 0;
  bool uncertain_ = false;
  bool leader_unknown_ = false;
};

// A client session (client id, sequence): sequences start at 1 and every retry of one write
// repeats its sequence, so the cluster applies it once. A session starts at sequence 1: if the
// first write of a session ends without being applied, the next write uses sequence 1 again,
// and if that first write may still apply later (uncertain), the next write starts a new session
// (a new client id from `fresh_id`), since sequence 2 would find no session to follow.
class ClientSession {
 public:
  explicit ClientSession(uint64_t client_id) : client_id_(client_id) {}

  // Stamps a write with the session and its next sequence.
  void stamp(ClientRequest& request);
  // The write stamped last ended: applied (answered ok), or not, perhaps uncertain.
  void write_ended(bool applied, bool uncertain, const std::function<uint64_t()>& fresh_id);

  uint64_t client_id() const { return client_id_; }
  uint64_t sequence() const { return sequence_; }
  bool started() const { return started_; }

 private:
  uint64_t client_id_;
  uint64_t sequence_ = 0;  // the last sequence used by a write
  bool started_ = false;   // a write of this session is known to have been applied
};

}  // namespace keyval
