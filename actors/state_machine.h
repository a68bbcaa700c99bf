// The state machine actor: between the raft node and the key-value state machine that the
// store_indexer hosts beside LMDB (actors/store_indexer.h). It keeps the node's applied
// index, feeds committed entries to the indexer one batch at a time, and answers the
// client gateway's two questions:
//   * wait(index, term): the result of the entry at `index` once it is applied. If the
//     entry applied there has another term, the proposal was replaced by a new leader's
//     entry and never took effect: the answer is Code::not_found ("lost").
//   * get(key, read_index): the key's value once the applied index has reached read_index
//     (a ReadIndex confirmed by a quorum, §6.4), which makes the read linearizable. The
//     value is read here, from LMDB (StateMachineConfig::store): the applied index this actor
//     knows is one the indexer has committed, so a new read transaction sees at least it.
//   * range(request, read_index): the same for a range of keys (ClientOp::range).
// Bounded: pending waits and reads (waits_max), results kept for late waits (recent_max).
// A failure of the indexer is fail-stop: the actor quits with it.
#pragma once

#include <cstdint>
#include <string>

#include "actors/messages.h"
#include "metrics/node_metrics.h"

namespace keyval {

using state_machine_actor = caf::typed_actor<
    // Committed entries (encode_entries), in log order, from the raft node.
    caf::reacts_to<apply_atom, Frame>,
    // The CommandResult (encode_result) of the entry at (index, term) once applied.
    caf::replies_to<wait_atom, uint64_t, uint64_t>::with<Frame>,
    // found, value, applied index served at, once applied >= read_index.
    caf::replies_to<kv_get_atom, std::string, uint64_t>::with<bool, std::string, uint64_t>,
    // One proposal batch's results: the entries first .. first + count - 1, proposed in
    // `term`, once all are applied. Replies their results (encode_results, one per entry; a
    // default result where the entry did not apply) and one WaitOutcome per entry. The
    // answer to `count` waits (one pending request each under waits_max) in one message.
    caf::replies_to<wait_many_atom, uint64_t, uint64_t, uint64_t>::with<Frame, std::vector<uint8_t>>,
    // Several keys' values at once, once applied >= read_index, from one read transaction:
    // values (empty where not found), found (1/0) per key, the applied index served at.
    caf::replies_to<kv_get_many_atom, std::vector<std::string>, uint64_t>::with<std::vector<std::string>,
                                                                                std::vector<uint8_t>, uint64_t>,
    // A range read (an encoded ClientRequest of op range) once applied >= read_index: the
    // indexer's encoded ClientResponse, its `index` the applied index served at.
    caf::replies_to<kv_range_atom, Frame, uint64_t>::with<Frame>,
    // The applied index now.
    caf::replies_to<kv_applied_atom>::with<uint64_t>,
    // An installed snapshot (index, term) replaces the state (§7), after every batch that
    // arrived before it; replies the keys loaded. Waits at or below it are answered as
    // forgotten (their results are not in a snapshot).
    caf::replies_to<snapshot_install_atom, uint64_t, uint64_t>::with<uint64_t>>;

// What came of one entry of a wait_many: applied (its result is the answer), lost (another
// term's entry applied at its index: the proposal never took effect), forgotten (a snapshot
// replaced its result before the wait came: the outcome is unknown here).
enum class WaitOutcome : uint8_t { applied = 0, lost = 1, forgotten = 2 };

struct StateMachineConfig {
  uint64_t applied_index = 0;  // what the indexer's state machine had applied at start
  size_t waits_max = 65536;    // pending waits + reads; beyond it a request gets Code::busy
  size_t recent_max = 4096;    // results remembered for a wait that arrives after its apply
  // The applied index and what came of the proposals waited for (metrics/node_metrics.h); null: none.
  std::shared_ptr<metrics::NodeMetrics> metrics;
  // The node's LMDB store: gets are read from it here (Store::read_kv_shared) once the applied
  // index has reached their read index, without a round trip to the indexer's thread. Null:
  // they are asked of the indexer.
  std::shared_ptr<Store> store;
};

state_machine_actor spawn_state_machine(caf::actor_system& system, store_indexer_actor indexer,
                                        StateMachineConfig config);

}  // namespace keyval
