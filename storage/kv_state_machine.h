// The key-value state machine: applies committed Raft entries to LMDB (Store's `kv`
// database), with client sessions so a retried command is applied once. A plain class;
// the state machine actor hosts it and is its only user (Store is single-owner).
//
// Exactly once across restarts: one apply() is one LMDB write transaction holding the
// data changes, the session table changes and positions.applied_index (with the term of
// that entry, positions.applied_term, which a snapshot of the state records). A crash leaves the
// state before the batch or after it, never part of it; entries with index <= the stored
// applied index are skipped, so replaying a batch after a restart changes nothing.
//
// Client sessions (the Raft dissertation's §6.3): per client id, the last applied sequence
// and its result. A command whose sequence equals the last one is a retry: it is not applied
// again and gets the stored result. A lower sequence gets stale_request. A client with no
// session must start at sequence 1; a higher sequence gets session_expired (its session was
// evicted, so a retry of an old command cannot be told apart from a new one). Client id 0
// has no session: its commands are applied every time they are committed.
//
// The table holds at most sessions_max clients. Adding one past the bound evicts the least
// recently used: the lowest index of the last entry that used it (applied, or answered as a
// retry), ties broken by the lowest client id. Every replica applies the same entries, so
// every replica evicts the same clients. Limit: an evicted client that retries its sequence 1
// gets it applied again; clients must not outlive sessions_max newer clients mid-retry.
//
// Reads: get() reads the local applied state. Linearizability is the raft node's job: it
// calls get() only once the applied index has reached a ReadIndex (§6.4) confirmed by a
// quorum, or answers reads through the log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/kv_command.h"
#include "storage/status.h"
#include "storage/store.h"
#include "storage/types.h"

namespace keyval {

// A range read (`keyval range`, `keyval get --prefix`): the pairs with from <= key < to (`to`
// empty: to the last key), in key order, at most `limit` of them (0: no limit) and about
// `bytes_max` bytes of keys and values (at least one pair, whatever its size). `more` says the
// answer stopped at a bound with keys left in the range: ask again from the last key + "\0".
// count_only counts the pairs (within `limit`) and returns none; keys_only leaves values empty.
struct KvRange {
  std::string from;
  std::string to;
  uint64_t limit = 0;
  uint64_t bytes_max = 1 << 20;
  bool keys_only = false;
  bool count_only = false;
};

struct KvRangeResult {
  std::vector<std::string> keys;
  std::vector<std::string> values;  // empty when keys_only or count_only
  uint64_t count = 0;               // pairs returned, or counted (count_only)
  bool more = false;
};

// `to` of the range holding every key that starts with `prefix`: the prefix with its last
// byte below 0xff incremented and the bytes after it dropped; "" (no bound) when every byte
// is 0xff or the prefix is empty.
std::string prefix_end(const std::string& prefix);

struct KvStateMachineOptions {
  // Bound on the session table (clients remembered). Each row holds one result, including
  // the previous value of the key it changed, so the table's bytes scale with values too.
  uint64_t sessions_max = 4096;
};

class KvStateMachine {
 public:
  explicit KvStateMachine(Store& store, KvStateMachineOptions options = {});

  // Applies a batch of committed entries (indices increasing, the first beyond the applied
  // index being applied_index + 1) in one transaction; returns one result per entry, in order.
  // Entries at or below the applied index are skipped: their result is the session's stored
  // one when it is still the client's last command, else already_applied. A Status error
  // (I/O, a gap in the indices) means nothing of the batch was applied.
  Result<std::vector<CommandResult>> apply(const std::vector<Entry>& committed);

  // The value of `key` in the applied state; nullopt when absent.
  Result<std::optional<std::string>> get(const std::string& key);
  // Several keys' values from one read transaction (one consistent view): a value per key,
  // in order, nullopt where absent.
  Result<std::vector<std::optional<std::string>>> get_many(const std::vector<std::string>& keys);
  // The pairs of `range` in the applied state (KvRange above), from one read transaction.
  Result<KvRangeResult> range(const KvRange& range);
  Result<uint64_t> applied_index();
  // (applied index, term of that entry); the term is 0 when an older build applied it.
  Result<std::pair<uint64_t, uint64_t>> applied();

 private:
  Status apply_in(KvWriter& writer, const std::vector<Entry>& committed, std::vector<CommandResult>* results);
  Result<CommandResult> apply_entry(KvWriter& writer, const Entry& entry);
  Result<CommandResult> apply_with_session(KvWriter& writer, const Command& command, uint64_t index);
  Result<CommandResult> skipped_result(KvWriter& writer, const Entry& entry);
  Status save_session(KvWriter& writer, uint64_t client_id, const Session& session, uint64_t index);
  Status evict_beyond_bound(KvWriter& writer);

  Store& store_;
  KvStateMachineOptions options_;
};

}  // namespace keyval
