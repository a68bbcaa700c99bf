// A simulated client: invokes random operations on a small key space, one at a time, and
// records each in the history. The mix (get, put, cas, del), the value size and the pace
// (random pauses, or a fixed interval between invocations) are settings.
//
// Where each attempt goes, how long it waits and what an outcome means come from the policy
// KvClient ships (client/operation_policy.h: OperationPolicy and ClientSession), so the
// simulator tests the client users run: writes carry a session (a retry repeats the sequence,
// so however many attempts reach a leader the write applies once), hints are followed, other
// failures back off and move on to the next node in turn. Each attempt has a timeout; the
// operation has a deadline. At the deadline the operation is recorded as failed when the
// policy says no attempt may have taken effect, else left unknown. Reads need no session.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "client/operation_policy.h"
#include "raft/random.h"
#include "sim/history.h"

namespace keyval::sim {

struct ClientSettings {
  size_t nodes = 5;
  size_t keys = 4;
  // The operation mix in percent (sums to 100); drawn in this order: get, put, cas, del,
  // increment. Increments (the Redis gateway's INCR, storage/kv_command.h) go to counter keys
  // "n0".."n{keys-1}" that nothing else writes, and are checked by their own ledger
  // (IncrementRecord below), not by the register checker.
  uint32_t get_percent = 40, put_percent = 30, cas_percent = 20, del_percent = 10, increment_percent = 0;
  // Tests only: increments sent without a session (client id 0), so a retry whose first
  // attempt was applied applies again; check_increments must catch it.
  bool increments_without_session = false;
  uint64_t value_bytes = 0;                  // values padded to this size (0: as short as they come)
  uint64_t think_ns_max = 30'000'000;        // pause between operations (random, up to this)
  uint64_t pace_ns = 0;                      // if set: an invocation every pace_ns instead, when
                                             // the previous one is done (no random pause)
  uint64_t attempt_timeout_ns = 800'000'000;  // one request
  uint64_t operation_timeout_ns = 3'000'000'000;
};

// A write the cluster acknowledged: it must stay in the log at `index`.
struct AckedWrite {
  uint64_t index = 0;
  uint64_t client_id = 0;
  uint64_t sequence = 0;
  std::string what;  // for messages
};

struct ClientRequestOut {
  uint64_t node = 0;
  uint64_t call = 0;
  std::vector<uint8_t> bytes;
};

// One increment by 1 of a counter key, as this client saw it end: ok with the value it
// answered, failed (refused everywhere: not applied), or unknown (it may have been applied).
struct IncrementRecord {
  std::string key;
  Operation::Status status = Operation::unknown;
  int64_t value = 0;  // ok: the counter after this increment
};

// Which client (slot) sent a call.
uint64_t client_slot_of_call(uint64_t call);

class SimClient {
 public:
  SimClient(uint64_t slot, ClientSettings settings, History& history, raft::SplitMix64& random);

  // Final reads: the client reads each key once, in order, then stops.
  void read_all_keys_then_stop();
  // Final reads of the keys given, in that order, then stops.
  void read_keys_then_stop(const std::vector<std::string>& keys);
  // The connection that carried `call` broke (its node went down) before an answer came: a
  // write may or may not have happened; the client retries elsewhere at once.
  void on_connection_lost(uint64_t now_ns, uint64_t call);
  // No new operations after the current one.
  void stop_invoking() {
    ++changes_;
    invoking_ = false;
  }
  bool idle() const { return !op_ && !invoking_ && final_keys_.empty(); }

  std::optional<uint64_t> next_action_ns() const;
  // Moves whenever next_action_ns() may have changed (every method above and below that
  // changes the client): the simulator asks again only then.
  uint64_t changes() const { return changes_; }
  std::optional<ClientRequestOut> act(uint64_t now_ns);
  void on_response(uint64_t now_ns, uint64_t call, const ClientResponse& response);
  void on_refused(uint64_t now_ns, uint64_t call);  // the node is down: nothing was done

  uint64_t endpoint() const { return 1000 + slot_; }
  const std::vector<AckedWrite>& acked_writes() const { return acked_; }
  const std::vector<IncrementRecord>& increments() const { return increments_; }
  // The final reads of counter keys: key -> value (nullopt: absent).
  const std::map<std::string, std::optional<std::string>>& final_counters() const { return final_counters_; }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  struct Op {
    History::OperationId id;
    ClientRequest request;
    uint64_t deadline_ns;
    uint64_t attempt_deadline_ns = 0;
    uint64_t retry_at_ns = 0;   // when to send the next attempt (0: one is in flight)
    OperationPolicy policy;
    uint64_t target = 1;
    uint64_t current_call = 0;  // the latest attempt's
    bool counter = false;       // an increment or a counter's final read: not in the history
    std::set<uint64_t> calls{};
  };

  void start_op(uint64_t now_ns);
  void start_read(uint64_t now_ns, const std::string& key);
  ClientRequestOut send_attempt(uint64_t now_ns);
  void give_up(uint64_t now_ns);
  void start_increment(uint64_t now_ns, size_t key);
  void end_counter_op(uint64_t now_ns, Operation::Status status, const ClientResponse* response);
  void finish_ok(uint64_t now_ns, const ClientResponse& response);
  // The next attempt as the policy decided; `hint`: the leader the answer named (0: none).
  void follow(uint64_t now_ns, const Decision& decision, uint64_t hint);
  // Makes `request` the operation in progress, its first attempt to the last leader seen.
  void start(History::OperationId id, ClientRequest request, uint64_t deadline_ns, bool counter);
  void schedule_next_invoke(uint64_t now_ns);
  std::string next_value();

  uint64_t slot_;
  ClientSettings settings_;
  History& history_;
  raft::SplitMix64& random_;
  uint64_t changes_ = 0;
  bool invoking_ = true;
  std::vector<std::string> final_keys_;
  uint64_t next_invoke_ns_ = 0;
  uint64_t last_invoke_ns_ = 0;
  std::optional<Op> op_;
  ClientSession session_;
  uint64_t generation_ = 0;  // client id = generation << 16 | slot
  uint64_t next_call_ = 0;
  uint64_t values_written_ = 0;
  uint64_t leader_guess_ = 1;
  std::map<size_t, std::optional<std::string>> last_seen_;  // per key (absent: never seen), for cas
  std::vector<AckedWrite> acked_;
  std::vector<IncrementRecord> increments_;
  std::map<std::string, std::optional<std::string>> final_counters_;
  std::vector<std::string> problems_;
};

}  // namespace keyval::sim
