// Log replication (§5.3), commitment (§5.4.2), CheckQuorum, flow control (probe vs
// replicate with bounded pipelining, as etcd's Progress), InstallSnapshot for followers that
// need compacted entries (§7) and ReadIndex (§6.4).
#include <algorithm>
#include <functional>

#include "raft/core.h"
#include "storage/status.h"

namespace keyval::raft {

void Core::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  tick_transfer();
  if (election_elapsed_ >= config_.election_timeout_ticks_min) {
    election_elapsed_ = 0;
    if (config_.check_quorum) check_quorum();
    if (role_ != Role::leader) return;
  }
  for (auto& [peer, progress] : progress_) {
    if (progress.ticks_since_heard != UINT32_MAX) ++progress.ticks_since_heard;
    if (progress.mode == Progress::Mode::probe && progress.probe_sent) ++progress.probe_ticks;
    tick_progress(progress);
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    // §5.2: leaders send periodic heartbeats to maintain their authority.
    for (auto& [peer, progress] : progress_) send_heartbeat(peer);
    return;
  }
  // A commit no append has carried yet (maybe_commit): tell the follower now.
  for (auto& [peer, progress] : progress_) {
    if (progress.mode == Progress::Mode::replicate && progress.commit_sent < commit_index_) send_append(peer, true);
  }
}

void Core::tick_progress(Progress& progress) {
  // A pipelined append, an InstallSnapshot (or their answers) may be lost: with no progress for
  // an election timeout, fall back to probing from match_index + 1 (a retransmission timer);
  // a probe below the log start sends the snapshot again. The host calls snapshot_failed()
  // sooner when it knows; it ignores a second install_snapshot while a transfer is running.
  const bool waiting = progress.mode == Progress::Mode::snapshot ||
                       (progress.mode == Progress::Mode::replicate && progress.inflight_count() > 0);
  if (!waiting) return;
  if (++progress.ticks_without_progress >= config_.election_timeout_ticks_min) progress.become_probe();
}

void Core::check_quorum() {
  uint64_t active = is_voter(config_.node_id) ? 1 : 0;  // ourselves
  for (auto& [peer, progress] : progress_) {
    if (progress.recent_active && counts(peer)) ++active;  // learners keep no leader in office
    progress.recent_active = false;
  }
  // CheckQuorum: a leader cut off from a majority steps down, so clients stop waiting on it
  // and its lease no longer blocks an election on the majority side.
  if (active < quorum()) become_follower(metadata_.current_term, 0);
}

bool Core::has_sendable_entries() const {
  if (role_ != Role::leader) return false;
  for (const auto& [peer, progress] : progress_) {
    if (progress.next_index <= log_.last_index() &&
        !progress.paused(config_.max_inflight_appends, config_.max_inflight_bytes)) {
      return true;
    }
  }
  return false;
}

void Core::broadcast_append() {
  for (auto& [peer, progress] : progress_) send_append(peer, false);
}

void Core::send_append(uint64_t peer, bool send_if_empty) {
  Progress& progress = progress_.at(peer);
  // Replicate mode pipelines: keep sending until the in-flight bounds or the log end stop us.
  do {
    if (progress.paused(config_.max_inflight_appends, config_.max_inflight_bytes)) return;
    // §7: the entries this follower needs next were compacted; only the snapshot covers them.
    if (progress.next_index - 1 < log_.start_index()) {
      send_snapshot(peer);
      return;
    }
    Message request;
    request.type = MessageType::append_entries;
    request.to = peer;
    request.term = metadata_.current_term;
    request.prev_log_index = progress.next_index - 1;
    request.prev_log_term = log_.term_at(request.prev_log_index);
    request.entries =
        log_.slice(progress.next_index, config_.max_entries_per_append, config_.max_bytes_per_append);
    if (request.entries.empty() && !send_if_empty) return;
    request.leader_commit = commit_index_;
    progress.commit_sent = std::max(progress.commit_sent, commit_index_);
    request.read_context = read_context_;
    request.match_index = progress.replicated_index();  // what we count it for (maybe_end_repair)
    request.sequence = ++progress.sequence_sent;
    request.incarnation = progress.fenced_incarnation;
    uint64_t bytes = 0;
    for (const Entry& entry : request.entries) bytes += entry.payload().size();
    const uint64_t last_index = request.entries.empty() ? request.prev_log_index : request.entries.back().index;
    if (progress.mode == Progress::Mode::probe) {
      progress.probe_bytes = bytes;
      progress.probe_ticks = 0;
    }
    progress.sent(last_index, bytes);
    send(std::move(request));
    send_if_empty = false;
  } while (progress.mode == Progress::Mode::replicate && progress.next_index <= log_.last_index());
}

void Core::send_heartbeat(uint64_t peer) {
  Progress& progress = progress_.at(peer);
  // In probe mode the heartbeat doubles as a retransmitted probe, so a lost one costs a
  // heartbeat interval. A large probe (more than probe_resend_bytes of entries) is resent only
  // once an election timeout passed since it went, like the retransmit timer in replicate mode
  // (tick_progress): its answer waits until the follower made the entries durable, and a
  // follower slow to take them in (1 MiB on a slow disk or a busy CPU) that got another copy
  // at every heartbeat only fell further behind, until it missed heartbeats and campaigned.
  // Meanwhile it gets plain heartbeats, which keep this leader in office and ReadIndex going.
  if (progress.mode == Progress::Mode::probe &&
      (!progress.probe_sent || progress.probe_bytes <= config_.probe_resend_bytes ||
       progress.probe_ticks >= config_.election_timeout_ticks_min)) {
    progress.probe_sent = false;
    send_append(peer, true);
    // Unless the probe became an InstallSnapshot, which carries no ReadIndex context.
    if (progress.mode != Progress::Mode::snapshot) return;
  }
  // In replicate and snapshot modes, anchor the heartbeat at match_index: it always passes the
  // consistency check and does not disturb what is in flight. Below our log start its term is
  // unknown: anchor at 0 instead, which every log holds (a follower skips what its own
  // snapshot covers); it keeps leadership and ReadIndex rounds alive while a snapshot travels.
  const uint64_t known = progress.replicated_index();
  const uint64_t anchor = log_.compacted(known) ? 0 : known;
  Message heartbeat;
  heartbeat.type = MessageType::append_entries;
  heartbeat.to = peer;
  heartbeat.term = metadata_.current_term;
  heartbeat.prev_log_index = anchor;
  heartbeat.prev_log_term = log_.term_at(anchor);
  heartbeat.leader_commit = commit_index_;
  progress.commit_sent = std::max(progress.commit_sent, commit_index_);
  heartbeat.read_context = read_context_;
  heartbeat.match_index = known;  // what we count it for (maybe_end_repair)
  heartbeat.sequence = ++progress.sequence_sent;
  heartbeat.incarnation = progress.fenced_incarnation;
  send(std::move(heartbeat));
}

void Core::send_snapshot(uint64_t peer) {
  Progress& progress = progress_.at(peer);
  // The log never starts after our snapshot, so it covers what the follower lacks.
  KV_ASSERT(snapshot_index_ >= log_.start_index() && snapshot_index_ > 0);
  Message request;
  request.type = MessageType::install_snapshot;
  request.to = peer;
  request.term = metadata_.current_term;
  request.snapshot_index = snapshot_index_;
  request.snapshot_term = snapshot_term_;
  request.leader_commit = commit_index_;
  request.configuration = base_configuration_;  // the configuration as of snapshot_index_
  request.sequence = ++progress.sequence_sent;
  request.incarnation = progress.fenced_incarnation;
  progress.become_snapshot(snapshot_index_);
  send(std::move(request));
}

void Core::accept_leader(const Message& message) {
  // Election safety makes a second leader in our term impossible; seeing one is a bug.
  KV_ASSERT(role_ != Role::leader);
  // §5.2: an AppendEntries (or InstallSnapshot) of the current term comes from its legitimate leader.
  if (role_ != Role::follower || leader_id_ != message.from) become_follower(message.term, message.from);
  election_elapsed_ = 0;
  // Following a leader relies on its term's election, which rested on its own durable vote:
  // recorded (Metadata::counted) like a vote or acknowledgement we count, written with what
  // this append makes us persist.
  note_counted(message.from);
}

Message Core::append_response_to(const Message& message) const {
  Message response;
  response.type = MessageType::append_entries_response;
  response.to = message.from;
  response.term = metadata_.current_term;
  response.read_context = message.read_context;
  response.sequence = message.sequence;
  response.incarnation = incarnation_;
  return response;
}

void Core::handle_append(const Message& message) {
  accept_leader(message);
  Message response = append_response_to(message);
  // §7: entries through our log start are committed (our snapshot or compaction covers them),
  // so they match the leader's (Leader Completeness, §5.4): skip them and check at the start.
  uint64_t prev_log_index = message.prev_log_index;
  uint64_t prev_log_term = message.prev_log_term;
  size_t skip = 0;
  if (prev_log_index < log_.start_index()) {
    skip = static_cast<size_t>(std::min<uint64_t>(message.entries.size(), log_.start_index() - prev_log_index));
    prev_log_index = log_.start_index();
    prev_log_term = log_.start_term();
  }
  // §5.3 consistency check: the log must hold prev_log_index with prev_log_term.
  if (prev_log_index > log_.last_index() || log_.term_at(prev_log_index) != prev_log_term) {
    reject_append(message, response);
    send(std::move(response));
    return;
  }
  store_entries(message.entries, skip);
  const uint64_t last_new_index = prev_log_index + (message.entries.size() - skip);
  // Figure 2, receiver step 5: commit_index = min(leader_commit, index of last new entry).
  commit_index_ = std::max(commit_index_, std::min(message.leader_commit, last_new_index));
  response.success = true;
  response.match_index = last_new_index;
  if (in_repair()) {
    // Where our log ends, so that a leader holding an older acknowledgement of entries we
    // lost stops counting it (Progress::regressed) at once.
    response.conflict_index = log_.last_index() + 1;
    maybe_end_repair(message, last_new_index);
  }
  // The success promises these entries survive a crash: hold it until they are durable.
  send(std::move(response), false, last_new_index);
}

void Core::maybe_end_repair(const Message& message, uint64_t matched_index) {
  // The log matches the leader of message.term through matched_index (§5.3: the consistency
  // check passed and its entries were stored). If it holds an entry of that term at or below
  // the leader's commit index, the leader's log through there holds every committed entry
  // (§5.4 Leader Completeness: the leader has them all, and they precede its own term's first
  // entry), and so does ours. The cleared flag goes out with the next metadata write; until it
  // is durable no vote leaves (votes wait for the metadata they rest on).
  const uint64_t through = std::min(matched_index, message.leader_commit);
  if (through < log_.start_index() || through > log_.last_index()) return;
  if (log_.term_at(through) != message.term) return;
  // A leader of the term we acknowledged in may still count our old acknowledgements (until
  // it hears where our log ends, which every success of ours says while repairing): stay
  // until the log reaches what it counts us for (its append says) and what we knew we held. A
  // leader of a later term holds none of them.
  // And the leader must have heard a repairing answer from this life of ours (the request names
  // our incarnation): until then a success we sent before the restart, still in flight, could
  // make it count the lost entries again (Progress::fence; simulator seed 20741).
  if (message.term <= repair_term_ &&
      (message.incarnation != incarnation_ || message.match_index > log_.last_index() ||
       log_.last_index() < metadata_.repair_last_index)) {
    return;
  }
  metadata_.repairing = false;
}

void Core::reject_append(const Message& message, Message& response) {
  response.success = false;
  response.reject_index = message.prev_log_index;
  // §5.3 (end): a hint lets the leader skip a whole conflicting term per round trip.
  if (message.prev_log_index > log_.last_index()) {
    response.conflict_term = 0;
    response.conflict_index = log_.last_index() + 1;
    return;
  }
  response.conflict_term = log_.term_at(message.prev_log_index);
  response.conflict_index = log_.first_index_of_term(response.conflict_term, message.prev_log_index);
}

void Core::handle_install_snapshot(const Message& message) {
  accept_leader(message);
  // Filled in as a success: the snapshot's entries are committed, so they never conflict.
  Message response = append_response_to(message);
  response.success = true;
  const uint64_t index = message.snapshot_index;
  const uint64_t term = message.snapshot_term;
  if (index <= commit_index_) {
    // Stale (a retransmission, or appends caught us up meanwhile): we hold more than it has.
    response.match_index = commit_index_;
    send(std::move(response), false, commit_index_);
    return;
  }
  if (log_.term_at(index) == term) {
    // We hold the snapshot's last entry, hence all before it (§5.3): as an append through it,
    // keeping the entries after it, which may be a newer leader's and must not be lost.
    commit_index_ = std::max(commit_index_, std::min(message.leader_commit, index));
    response.match_index = index;
    send(std::move(response), false, index);
    return;
  }
  // §7: our log does not reach the snapshot or conflicts with it: discard it entirely. Nothing
  // committed is lost: our commit_index is below the snapshot, which holds every committed
  // entry up to it.
  log_.reset(index, term);
  commit_index_ = applied_index_ = durable_index_ = index;
  unstable_from_ = index + 1;
  truncate_pending_ = false;  // the snapshot replaces the whole log on disk
  snapshot_index_ = index;
  snapshot_term_ = term;
  snapshot_to_install_ = SnapshotRef{index, term};
  // The snapshot's configuration replaces whatever the discarded log said (a sender that knew
  // none leaves ours in place).
  if (!message.configuration.empty()) base_configuration_ = message.configuration;
  else base_configuration_ = configuration_;
  log_configurations_.clear();
  use_latest_configuration();
  response.match_index = index;
  response.snapshot_index = index;
  response.snapshot_term = term;
  // The success promises the snapshot survives a crash: hold it until snapshot_durable().
  send(std::move(response), false, 0, index);
}

void Core::store_entries(const std::vector<Entry>& entries, size_t from) {
  for (size_t i = from; i < entries.size(); ++i) {
    const Entry& entry = entries[i];
    if (entry.index <= log_.last_index()) {
      // Figure 2, receiver step 3: an entry that matches is kept (a duplicate or reordered
      // request must not truncate what a later one appended); a conflict drops the suffix.
      if (log_.term_at(entry.index) == entry.term) continue;
      truncate_local(entry.index - 1);
    }
    append_local(entry);  // step 4
  }
}

uint64_t Core::back_off_hint(const Message& message) const {
  if (message.conflict_term == 0) return message.conflict_index;  // the follower's log is short
  // If we hold entries of the follower's conflicting term, the logs may agree up to our last
  // one; otherwise the follower's whole term is wrong: skip to its first index.
  const uint64_t index = log_.last_index_with_term_at_most(message.conflict_term);
  if (index > 0 && log_.term_at(index) == message.conflict_term) return index + 1;
  return message.conflict_index;
}

void Core::handle_append_response(const Message& message) {
  if (role_ != Role::leader) return;
  auto found = progress_.find(message.from);
  if (found == progress_.end()) return;  // no longer a member
  Progress& progress = found->second;
  // A repairing follower's success says where its log ends now (conflict_index): fence off the
  // successes of its earlier lives still in flight (Progress::fence) before anything counts.
  const bool repairing_answer = message.success && message.conflict_term == 0 && message.conflict_index > 0;
  if (repairing_answer && message.incarnation != 0 && message.incarnation != progress.fenced_incarnation) {
    progress.fenced_incarnation = message.incarnation;
    progress.fence = progress.sequence_sent;
  } else if (message.success && progress.fence > 0 && message.incarnation != progress.fenced_incarnation &&
             message.sequence <= progress.fence) {
    return;  // sent by an earlier life of the follower, before it lost what it promised
  }
  progress.recent_active = true;
  progress.ticks_since_heard = 0;
  if (read_broadcast_context_ != 0 && message.read_context >= read_broadcast_context_ &&
      std::find(read_answer_order_.begin(), read_answer_order_.end(), message.from) == read_answer_order_.end()) {
    read_answer_order_.push_back(message.from);  // answered the last round sent to every voter
  }
  progress.read_context_acked = std::max(progress.read_context_acked, message.read_context);
  release_reads();
  if (repairing_answer && progress.mode != Progress::Mode::snapshot && progress.regress(message.conflict_index - 1)) {
    // A repairing follower's log ends below what it acknowledged before (a damaged WAL):
    // replicate from its end, counting it only for what it holds (maybe_commit).
    send_append(message.from, true);
    return;
  }
  if (!message.success) {
    // The follower's log ends below what it acknowledged (wiped, or lost synced writes):
    // replicate from its end again, but keep match_index for commit (Progress::regressed).
    const bool short_log = message.conflict_term == 0 && progress.mode != Progress::Mode::snapshot;
    if (short_log && message.conflict_index > 0 && progress.regress(message.conflict_index - 1)) {
      send_append(message.from, true);
      return;
    }
    if (progress.reject(message.reject_index, back_off_hint(message))) send_append(message.from, true);
    return;
  }
  // A success that brings no news (duplicated, reordered) changes nothing; in probe mode the
  // next heartbeat retries, so a lossy link cannot make the pair ping-pong without ticks.
  if (!progress.acknowledge(message.match_index)) {
    maybe_send_timeout_now(message.from);  // a heartbeat's answer: the recipient may be caught up
    return;
  }
  // The first success in probe mode found where the logs agree: start pipelining. In snapshot
  // mode, a success through the snapshot says it is installed (and durable) there.
  const bool snapshot_installed =
      progress.mode == Progress::Mode::snapshot && progress.replicated_index() >= progress.pending_snapshot;
  if (progress.mode == Progress::Mode::probe || snapshot_installed) progress.become_replicate();
  maybe_commit();
  // The commit may have ended a removal (the peer's Progress goes) or, defensively, this
  // leader's own membership (§4.2.2).
  if (role_ != Role::leader || progress_.count(message.from) == 0) return;
  send_append(message.from, false);
  maybe_send_timeout_now(message.from);
}

void Core::maybe_commit() {
  KV_ASSERT(role_ == Role::leader);
  // Only voters of the configuration in use count (§4.1); learners replicate but do not.
  std::vector<uint64_t> match_indexes;
  if (is_voter(config_.node_id)) {
    const bool planted = config_.planted_bug == PlantedBug::leader_counts_before_durable;
    match_indexes.push_back(planted ? log_.last_index() : durable_index_);
  }
  for (const auto& [peer, progress] : progress_) {
    const bool removed = config_.planted_bug == PlantedBug::removed_still_counts && find_member(configuration_, peer) == nullptr;
    if (!counts(peer) && !removed) continue;
    // A voter's acknowledgement counts once it is recorded durably (Metadata::counted).
    const bool recorded = counted_durably(peer);
    if (!recorded && progress.match_index > 0) note_counted(peer);
    // A follower whose log went backwards (a repairing node discarded what it could not read)
    // counts only for what it holds again: its acknowledgements of lost entries are void.
    match_indexes.push_back(recorded ? progress.replicated_index() : 0);
  }
  if (match_indexes.size() < quorum()) return;
  std::sort(match_indexes.begin(), match_indexes.end(), std::greater<uint64_t>());
  const uint64_t replicated_index = match_indexes[quorum() - 1];  // held by a majority
  // §5.4.2: only an entry of the current term is committed by counting replicas (Figure 8);
  // earlier entries are committed indirectly, by the Log Matching Property.
  if (replicated_index <= commit_index_) return;
  const bool current_term = log_.term_at(replicated_index) == metadata_.current_term;
  if (!current_term && config_.planted_bug != PlantedBug::commit_old_term) return;
  const uint64_t previous_commit = commit_index_;
  commit_index_ = replicated_index;
  // Followers learn a commit from the next append that carries entries, or, when none goes
  // first, from an empty one at the next tick (tick_heartbeat): an empty append for every
  // commit doubled each follower's messages under one client's puts, and the leader answers
  // its clients without waiting for it. A follower's state lags the leader's by at most one
  // tick when the leader is idle (docs/DATAPATH.md). A configuration entry's commit goes out
  // at once: a member whose removal just committed hears it (it holds the entry: its
  // Progress lasted until now), so it stops campaigning (may_campaign); a leader whose own
  // removal committed tells the others.
  const auto configuration = log_configurations_.upper_bound(previous_commit);
  const bool configuration_committed =
      configuration != log_configurations_.end() && configuration->first <= commit_index_;
  for (auto& [peer, progress] : progress_) send_append(peer, configuration_committed);
  // A committed removal drops the removed member's Progress; §4.2.2 for ourselves.
  sync_progress();
  step_down_if_removed();
  if (role_ != Role::leader) return;
  if (!reads_before_commit_.empty()) {
    std::vector<uint64_t> waiting = std::move(reads_before_commit_);
    reads_before_commit_.clear();
    register_reads(waiting);
  }
}

bool Core::read_index(uint64_t request_id, uint64_t* leader_hint) {
  if (role_ != Role::leader) {
    if (leader_hint != nullptr) *leader_hint = leader_id_;
    return false;
  }
  // §6.4 step 1: until the leader commits an entry of its own term it does not know the
  // commit index is current; the read waits for the no-op.
  if (log_.term_at(commit_index_) != metadata_.current_term) {
    reads_before_commit_.push_back(request_id);
    return true;
  }
  register_reads({request_id});
  return true;
}

void Core::register_reads(const std::vector<uint64_t>& request_ids) {
  // One confirmation round in flight at a time: reads that arrive meanwhile share the next
  // round, which starts when this one completes (one heartbeat per peer for a whole batch of
  // reads instead of one per read). The next round's heartbeats leave after the reads
  // arrived, as §6.4 requires.
  if (!pending_reads_.empty()) {
    reads_next_round_.insert(reads_next_round_.end(), request_ids.begin(), request_ids.end());
    return;
  }
  start_read_round(request_ids);
}

void Core::start_read_round(const std::vector<uint64_t>& request_ids) {
  // §6.4 steps 2–3: remember commit_index as the read index, then confirm leadership with a
  // round of heartbeats stamped with a fresh context; a majority echoing it proves no newer
  // leader existed when the read arrived.
  ++read_context_;
  for (uint64_t request_id : request_ids) pending_reads_.push_back({request_id, commit_index_, read_context_});
  send_read_round();
  release_reads();
}

// A round needs the answers of a quorum, the leader's own counted: on three nodes, one
// follower's. It goes to the voters that answered the last round sent to every voter first
// (the quickest, while they keep up), as many as the quorum needs; every voter gets it when
// one of those missed the round before (answered it late, through a later heartbeat, or not
// at all), when too few of them are left, and every read_broadcast_rounds rounds (to learn
// who is quickest now). A round whose chosen peers do not answer is still confirmed by the
// next heartbeat, which goes to every peer with the newest context: a failed follower delays
// one round by at most a heartbeat interval, and the next round goes to every voter. The
// other followers hear from the leader at every heartbeat as before. Half the messages of a
// read on three nodes.
void Core::send_read_round() {
  constexpr uint32_t read_broadcast_rounds = 16;
  const uint64_t own = is_voter(config_.node_id) ? 1 : 0;
  const size_t needed = static_cast<size_t>(quorum() > own ? quorum() - own : 0);
  bool broadcast = read_broadcast_context_ == 0 || ++read_rounds_since_broadcast_ >= read_broadcast_rounds;
  read_chosen_.clear();
  for (auto peer = read_answer_order_.begin(); !broadcast && read_chosen_.size() < needed && peer != read_answer_order_.end();
       ++peer) {
    auto found = progress_.find(*peer);
    if (found == progress_.end() || !counts(*peer)) continue;
    broadcast = found->second.read_context_acked + 1 < read_context_;  // it missed the round before
    read_chosen_.push_back(*peer);
  }
  if (broadcast || read_chosen_.size() < needed) {
    read_broadcast_context_ = read_context_;
    read_answer_order_.clear();
    read_rounds_since_broadcast_ = 0;
    for (auto& [peer, progress] : progress_) send_heartbeat(peer);
    return;
  }
  for (uint64_t peer : read_chosen_) send_heartbeat(peer);
}

void Core::release_reads() {
  size_t released = 0;
  for (; released < pending_reads_.size(); ++released) {
    const PendingRead& read = pending_reads_[released];
    uint64_t acknowledged = is_voter(config_.node_id) ? 1 : 0;  // ourselves
    for (const auto& [peer, progress] : progress_) {
      acknowledged += counts(peer) && progress.read_context_acked >= read.context;
    }
    if (acknowledged < quorum()) break;  // contexts increase: later reads cannot be confirmed either
    read_states_.push_back({read.request_id, read.read_index});
  }
  pending_reads_.erase(pending_reads_.begin(), pending_reads_.begin() + released);
  if (pending_reads_.empty() && !reads_next_round_.empty()) {
    std::vector<uint64_t> next = std::move(reads_next_round_);
    reads_next_round_.clear();
    start_read_round(next);
  }
}

}  // namespace keyval::raft
