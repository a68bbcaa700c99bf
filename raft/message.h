// The messages Raft nodes exchange (extended Raft paper, Figure 2, plus PreVote from
// §9.6 of Ongaro's thesis as etcd implements it, and InstallSnapshot from §7 with the
// snapshot's bytes moved by the hosts in chunks). Plain structs with no I/O: the
// Cap'n Proto wiring lives outside raft/. One flat struct, as etcd's raftpb.Message,
// so the transport encodes one shape; each field says which types use it.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/types.h"

namespace keyval::raft {

enum class MessageType : uint8_t {
  request_vote = 1,             // §5.2: a candidate asks for a vote in `term`
  request_vote_response = 2,    // vote_granted
  pre_vote = 3,                 // would you vote for me in `term` (= my term + 1)? Changes no state.
  pre_vote_response = 4,        // vote_granted
  append_entries = 5,           // §5.3: entries (empty for a heartbeat) and the leader's commit index
  append_entries_response = 6,  // success, match_index or the conflict hint
  // §7: the follower needs entries the leader compacted; the host has the complete snapshot
  // (snapshot_index, snapshot_term) and delivers this to the follower's core once the bytes
  // arrived. Answered by an append_entries_response (success, match_index = snapshot_index).
  install_snapshot = 7,
  // Host-level transfer of a snapshot's bytes, leader host -> follower host and back. Never
  // stepped into a core (Core::step ignores them).
  snapshot_chunk = 8,
  snapshot_chunk_response = 9,
  // Leadership transfer (thesis §3.10): the leader has brought the recipient's log up to its
  // own and asks it to campaign at once, skipping PreVote; its request_votes are marked
  // leadership_transfer so voters grant them even within the current leader's lease.
  timeout_now = 10,
  // A voter on probation (storage/types.h, Metadata::probation: its data directory was just
  // made by --bootstrap) asks another voter whether it ever counted the asker's vote or
  // append acknowledgement. Answered by probation_answer: probation_counted, and the
  // answerer's configuration in use. Neither changes any state or follows the term rules.
  probation_query = 11,
  probation_answer = 12,
};

const char* message_type_name(MessageType type);

struct Message {
  MessageType type = MessageType::append_entries;
  uint64_t from = 0;
  uint64_t to = 0;
  uint64_t term = 0;  // the sender's current_term (for pre_vote: the term it would campaign in)

  // request_vote, pre_vote: the candidate's last log position, for the §5.4.1 up-to-date check.
  uint64_t last_log_index = 0;
  uint64_t last_log_term = 0;

  // request_vote_response, pre_vote_response.
  bool vote_granted = false;

  // append_entries (§5.3): entries follow (prev_log_index, prev_log_term).
  uint64_t prev_log_index = 0;
  uint64_t prev_log_term = 0;
  std::vector<Entry> entries;
  uint64_t leader_commit = 0;

  // append_entries_response. On success, match_index is the last index the request covered.
  // On rejection: reject_index is the request's prev_log_index (so the leader can tell a
  // stale rejection from a fresh one), and the conflict hint for fast back-off (§5.3, end):
  // conflict_term is the follower's term at reject_index and conflict_index the first index
  // it holds with that term; conflict_term 0 means the follower's log is too short and
  // conflict_index is its last index + 1. A success from a repairing follower (Core::in_repair)
  // also carries conflict_index = its last index + 1: where its log ends now, perhaps below
  // what it acknowledged before a damaged WAL lost it (0 otherwise).
  bool success = false;
  // Also on append_entries: what the leader counts the follower as holding (its
  // Progress::replicated_index), so a repairing follower knows when that is true again.
  uint64_t match_index = 0;
  uint64_t reject_index = 0;
  uint64_t conflict_term = 0;
  uint64_t conflict_index = 0;

  // append_entries and its response: the leader's ReadIndex round (§6.4), echoed back.
  uint64_t read_context = 0;

  // Stale answers from a follower's earlier life (docs/PERSISTENCE.md, "Corruption repaired
  // from peers"). append_entries and install_snapshot: sequence numbers the leader's requests
  // to this follower (Progress::sequence_sent), and incarnation names the follower incarnation
  // the leader heard a repairing answer from (0: none). append_entries_response: sequence
  // echoes the request's, and incarnation is the sender's own, a number drawn at each start.
  uint64_t sequence = 0;
  uint64_t incarnation = 0;

  // install_snapshot (also uses leader_commit), snapshot_chunk, snapshot_chunk_response: the
  // snapshot's last included index and its term. An append_entries_response that answers an
  // installed snapshot names it too (the leader reads only match_index; the simulator uses it
  // to crash a node right after that promise).
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;

  // snapshot_chunk: chunk_data is the file's bytes from chunk_offset, of chunk_total_bytes in
  // all; chunk_done marks the last chunk. snapshot_chunk_response: chunk_offset is where the
  // receiver wants the next chunk from; chunk_error asks the sender to restart from
  // chunk_offset (0: from scratch); chunk_done says the receiver has the whole file.
  uint64_t chunk_offset = 0;
  uint64_t chunk_total_bytes = 0;
  bool chunk_done = false;
  // snapshot_chunk: the sender's round of its transfer (each rewind starts a new one);
  // snapshot_chunk_response: the round of the chunk it answers (0: taken as current).
  uint64_t chunk_round = 0;
  std::vector<uint8_t> chunk_data;
  bool chunk_error = false;

  // request_vote, pre_vote: a campaign started by timeout_now (§3.10). Voters do not ignore it
  // for having heard from a leader recently (CheckQuorum's lease): that leader asked for it.
  bool leadership_transfer = false;

  // install_snapshot: the cluster configuration as of snapshot_index (raft/membership.h); the
  // receiver adopts it with the snapshot. Empty: the sender knew none (Config::voters).
  std::vector<Member> configuration;

  // probation_answer: the answerer counted the asker's vote or acknowledgement before (the
  // asker's data is not the data it voted with). The answerer's configuration in use is in
  // `configuration`.
  bool probation_counted = false;
};

}  // namespace keyval::raft
