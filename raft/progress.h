// What a leader knows about one follower (Figure 2 "volatile state on leaders": next_index,
// match_index) plus the flow control etcd calls Progress: in `probe` mode the leader has at
// most one AppendEntries outstanding while it searches for the point where the logs agree;
// in `replicate` mode it pipelines, optimistically advancing next_index, within a bound on
// messages and bytes in flight; in `snapshot` mode the follower needs entries the leader
// compacted (§7): an InstallSnapshot is on its way and nothing else is sent but heartbeats.
#pragma once

#include <cstdint>
#include <deque>

namespace keyval::raft {

class Progress {
 public:
  enum class Mode : uint8_t { probe, replicate, snapshot };

  Progress() = default;
  explicit Progress(uint64_t next_index) : next_index(next_index) {}

  // Highest index the follower acknowledged durable. Counts toward commit and is never lowered,
  // not even when the follower's log later turns out shorter (see `regressed`).
  uint64_t match_index = 0;
  uint64_t next_index = 1;   // index of the next entry to send
  Mode mode = Mode::probe;
  bool probe_sent = false;   // probe mode: one request outstanding; cleared by a response or heartbeat
  // Probe mode, while probe_sent: the payload bytes the probe carried and the ticks since it
  // went (Core::send_heartbeat resends a large one only after an election timeout).
  uint64_t probe_bytes = 0;
  uint32_t probe_ticks = 0;
  bool recent_active = false;  // heard from since the last CheckQuorum round
  uint64_t read_context_acked = 0;  // highest ReadIndex round the follower answered (§6.4)
  uint64_t commit_sent = 0;  // the highest commit index sent to it (appends, heartbeats)
  uint32_t ticks_without_progress = 0;  // replicate and snapshot modes: retransmit timer
  uint64_t pending_snapshot = 0;  // snapshot mode: the index of the snapshot sent
  // Ticks since the follower last answered (any append or snapshot response); starts "never".
  uint32_t ticks_since_heard = UINT32_MAX;

  // A follower whose log went backwards: it rejected an append because its log ends below
  // match_index (its data directory was wiped or lost acknowledged writes). match_index keeps
  // what it acknowledged (commit never counts less), while replication restarts from
  // regressed_to + 1, the follower's log end as it reported it; regressed clears once it
  // acknowledges match_index again. regressions counts such events, for the host to log each
  // once (compare with the count it saw). A rejection reordered behind later successes may
  // raise it spuriously: then only next_index moves back, and the resent entries match.
  bool regressed = false;
  uint64_t regressed_to = 0;
  uint64_t regressions = 0;

  // Answers from a follower's earlier life. Requests to it are numbered (sequence_sent, the
  // last one sent). When a repairing answer comes from an incarnation other than
  // fenced_incarnation, that one becomes fenced_incarnation and fence the last number sent:
  // every request an earlier incarnation answered was sent by then, so a success from another
  // incarnation answering a request numbered at most fence is stale (a promise its WAL may no
  // longer keep) and is ignored. Requests carry fenced_incarnation, so the follower ends its
  // repair only once the fence is in place (Core::maybe_end_repair).
  uint64_t sequence_sent = 0;
  uint64_t fence = 0;
  uint64_t fenced_incarnation = 0;

  // May the leader send an AppendEntries now, given the in-flight bounds?
  bool paused(uint32_t inflight_max, uint64_t inflight_bytes_max) const;
  // Records an AppendEntries carrying entries through `last_index` (`bytes` of payload).
  void sent(uint64_t last_index, uint64_t bytes);
  // A success acknowledging entries through `index`; false when it was stale (no news).
  bool acknowledge(uint64_t index);
  // A rejection of prev index `reject_index`; moves next_index to `hint`. False when stale.
  bool reject(uint64_t reject_index, uint64_t hint);
  // The follower said its log ends at `last_index` (a rejection saying its log is short),
  // below match_index: records the regression and probes from there. False when not below.
  bool regress(uint64_t last_index);
  // Where the follower's log is known to reach: match_index, or regressed_to while regressed.
  uint64_t replicated_index() const { return regressed ? regressed_to : match_index; }
  void become_probe();       // next_index = match_index + 1, forget what is in flight
  void become_replicate();
  // Paused until a success with match_index >= snapshot_index (then replicate), or the
  // transfer failed or timed out (then probe, which sends the snapshot again).
  void become_snapshot(uint64_t snapshot_index);

  uint64_t inflight_count() const { return inflight_.size(); }
  uint64_t inflight_bytes() const { return inflight_bytes_; }

 private:
  struct Inflight {
    uint64_t last_index;
    uint64_t bytes;
  };
  void free_through(uint64_t index);

  std::deque<Inflight> inflight_;  // replicate mode, oldest first; bounded by max_inflight_appends
  uint64_t inflight_bytes_ = 0;
};

}  // namespace keyval::raft
