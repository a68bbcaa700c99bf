// The state machine actor: the node's key-value state machine (storage/kv_state_machine.h)
// and everything that waits on it. It owns the `kv` and session databases of the node's LMDB
// environment (the store_indexer, the environment's other writer, only indexes the log), keeps
// the applied index, applies committed entries from the raft node (every batch that arrived
// meanwhile in one LMDB transaction), and answers the client gateway:
//   * wait(index, term): the result of the entry at `index` once it is applied. If the
//     entry applied there has another term, the proposal was replaced by a new leader's
//     entry and never took effect: the answer is Code::not_found ("lost").
//   * get(key, read_index): the key's value once the applied index has reached read_index
//     (a ReadIndex confirmed by a quorum, §6.4), which makes the read linearizable.
//   * range(request, read_index): the same for a range of keys (ClientOp::range).
//   * hash: the state's hash (a status's consistency check).
// A real node runs it on its own thread (LMDB commits); the simulator on its scheduler.
// Bounded: pending waits and reads (waits_max), results kept for late waits (recent_max).
// An LMDB failure is fail-stop: the actor logs it and quits with it, since an entry this
// replica cannot apply would make it diverge from the others.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/lmdb_clean_stop.h"
#include "actors/messages.h"
#include "metrics/node_metrics.h"
#include "storage/kv_state_machine.h"

namespace keyval {

using state_machine_actor = caf::typed_actor<
    // Committed entries (encode_entries), in log order, from the raft node.
    caf::reacts_to<apply_atom, Frame>,
    // Sent to itself after a batch is queued: apply everything queued, in one transaction.
    caf::reacts_to<kv_apply_atom>,
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
    // A range read (an encoded ClientRequest of op range: key..range_end, limit, bytes,
    // keys_only, count_only) once applied >= read_index: an encoded ClientResponse holding
    // keys, values, range_count and more, its `index` the applied index served at.
    caf::replies_to<kv_range_atom, Frame, uint64_t>::with<Frame>,
    // The applied index now.
    caf::replies_to<kv_applied_atom>::with<uint64_t>,
    // An installed snapshot (index, term) replaces the state (§7) from its published file, in
    // one transaction, after every batch that arrived before it; replies the keys loaded.
    // Waits at or below it are answered as forgotten (their results are not in a snapshot).
    caf::replies_to<snapshot_install_atom, uint64_t, uint64_t>::with<uint64_t>,
    // The hash of the key-value state (storage/snapshot.h) and the applied index it is at.
    caf::replies_to<hash_atom>::with<uint64_t, uint64_t>>;

// What came of one entry of a wait_many: applied (its result is the answer), lost (another
// term's entry applied at its index: the proposal never took effect), forgotten (a snapshot
// replaced its result before the wait came: the outcome is unknown here).
enum class WaitOutcome : uint8_t { applied = 0, lost = 1, forgotten = 2 };

// A range read (a ClientRequest of op range: key..range_end, limit, bytes, keys_only,
// count_only) of `kv`'s applied state, in one read transaction: the answer's request_id,
// keys, values, range_count and more (the caller fills in the rest).
Result<ClientResponse> read_range(KvStateMachine& kv, const ClientRequest& request);

// The applied state as other actors read it from their own threads. The state machine
// publishes its applied index once the transaction through it has committed; a read
// transaction begun after seeing index N sees that state or a later one, never an earlier one.
// So the client gateway serves a linearizable read itself, without a hop to the state
// machine's thread, when the published index has reached the read index; otherwise it asks
// the state machine, which waits for it.
class AppliedReads {
 public:
  explicit AppliedReads(std::shared_ptr<Store> store) : store_(std::move(store)), kv_(*store_) {}
  uint64_t applied_index() const { return applied_.load(std::memory_order_acquire); }
  void publish(uint64_t index) { applied_.store(index, std::memory_order_release); }
  // The keys' values from one read transaction, nullopt where absent.
  Result<std::vector<std::optional<std::string>>> get_many(const std::vector<std::string>& keys) {
    return kv_.get_many(keys);
  }
  Result<ClientResponse> range(const ClientRequest& request) { return read_range(kv_, request); }

 private:
  std::shared_ptr<Store> store_;
  KvStateMachine kv_;  // only read through
  std::atomic<uint64_t> applied_{0};
};

// A batch of reads in kv_get_many's answer form: each value (empty where absent) and whether
// it was found (1/0).
struct ManyValues {
  std::vector<std::string> values;
  std::vector<uint8_t> found;
};
ManyValues many_values(std::vector<std::optional<std::string>>&& read);

// Large batches of linearizable gets (pipelined clients) read on a thread of their own, when
// the state machine runs on the network thread: the network thread reads the sockets' next
// requests meanwhile. A batch whose read index the published applied index has reached is read
// here, in one read transaction; any other goes on to the state machine, which waits for it.
using applied_reader_actor = caf::typed_actor<
    caf::replies_to<kv_get_many_atom, std::vector<std::string>, uint64_t>::with<std::vector<std::string>,
                                                                                std::vector<uint8_t>, uint64_t>>;

struct StateMachineConfig {
  size_t waits_max = 65536;    // pending waits + reads; beyond it a request gets Code::busy
  size_t recent_max = 4096;    // results remembered for a wait that arrives after its apply
  KvStateMachineOptions kv;    // the session table's bound
  // The applied index and what came of the proposals waited for (metrics/node_metrics.h); null: none.
  std::shared_ptr<metrics::NodeMetrics> metrics;
  // The node's LMDB store, where snapshots are installed from, and the clean-stop mark the
  // indexer shares (from the recovery coordinator: actors/messages.h SharedStore). The store
  // is required; without a mark, a stop marks nothing.
  SharedStore persistence;
  // Where the applied index is published for readers on other threads; null: nowhere.
  std::shared_ptr<AppliedReads> applied_reads;
  bool detached = true;  // a real node: on its own thread (LMDB commits); the simulator: false
  // With detached: on the network thread instead (`keyval node --threads 0`, the default;
  // node_scheduler.h), beside the raft node that sends it the committed entries and the
  // gateway it answers, so neither an apply nor its answer is a thread woken. A hash (a scan of
  // the whole state) and a snapshot install (a whole state loaded) are then done by helpers on
  // threads of their own, so the network thread serves the sockets and the raft node's
  // heartbeats meanwhile (docs/DATAPATH.md); nothing applies while an install is under way.
  bool on_network_thread = false;
  // A snapshot install loads on a helper actor (above) also when not on the network thread:
  // the simulator's nodes do, so that it runs the path a default node takes.
  bool install_on_helper = false;
  // The install helper's thread: its own (a real node), or the scheduler's (false: the
  // simulator, whose scheduler runs every job). Each helper is handed to helper_spawned when
  // set: the simulator holds its job back for a load's virtual time.
  bool helpers_detached = true;
  std::function<void(const caf::actor&)> helper_spawned;
  std::function<void(const std::string&)> log;  // fail-stop lines; stderr when empty
};

// The applied index is read from the store.
state_machine_actor spawn_state_machine(caf::actor_system& system, StateMachineConfig config);

// The reader above, on a thread of its own named kv.reader (a real node; `detached` false: on
// the scheduler, for tests).
applied_reader_actor spawn_applied_reader(caf::actor_system& system, std::shared_ptr<AppliedReads> reads,
                                          state_machine_actor state_machine, bool detached = true);

}  // namespace keyval
