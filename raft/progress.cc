// Per-follower replication progress and flow control (see progress.h).
#include "raft/progress.h"

#include <algorithm>

#include "storage/status.h"

namespace keyval::raft {

bool Progress::paused(uint32_t inflight_max, uint64_t inflight_bytes_max) const {
  if (mode == Mode::snapshot) return true;
  if (mode == Mode::probe) return probe_sent;
  return inflight_.size() >= inflight_max || inflight_bytes_ >= inflight_bytes_max;
}

void Progress::sent(uint64_t last_index, uint64_t bytes) {
  KV_ASSERT(mode != Mode::snapshot);
  if (mode == Mode::probe) {
    probe_sent = true;
    return;
  }
  if (last_index < next_index) return;  // nothing new (a heartbeat)
  KV_ASSERT(inflight_.empty() || inflight_.back().last_index < last_index);
  inflight_.push_back({last_index, bytes});
  inflight_bytes_ += bytes;
  next_index = last_index + 1;  // pipelining: assume it will arrive
}

bool Progress::acknowledge(uint64_t index) {
  if (regressed) {
    // Catching up again after a regression: progress below match_index counts for replication.
    if (index <= regressed_to) return false;
    regressed_to = index;
    next_index = std::max(next_index, index + 1);
    ticks_without_progress = 0;
    free_through(index);
    if (index < match_index) return true;
    regressed = false;
    regressed_to = 0;
    if (index == match_index) return true;
  }
  if (index <= match_index) return false;
  match_index = index;
  next_index = std::max(next_index, index + 1);
  ticks_without_progress = 0;
  free_through(index);
  return true;
}

bool Progress::reject(uint64_t reject_index, uint64_t hint) {
  // Only heartbeats are out while a snapshot is: a rejection is a leftover of earlier appends.
  if (mode == Mode::snapshot) return false;
  if (mode == Mode::replicate) {
    // Rejections of requests the follower already matched past are reordered leftovers.
    if (reject_index <= replicated_index()) return false;
    become_probe();
  } else if (reject_index + 1 != next_index) {
    return false;  // probe mode has one request outstanding, for prev index next_index - 1
  }
  // Never below what the follower is known to hold, never above the rejected point.
  next_index = std::max(replicated_index() + 1, std::min(hint, reject_index));
  probe_sent = false;
  return true;
}

bool Progress::regress(uint64_t last_index) {
  if (last_index >= replicated_index()) return false;
  if (!regressed) ++regressions;
  regressed = true;
  regressed_to = last_index;
  become_probe();  // from regressed_to + 1
  return true;
}

void Progress::become_probe() {
  mode = Mode::probe;
  next_index = replicated_index() + 1;
  probe_sent = false;
  inflight_.clear();
  inflight_bytes_ = 0;
  ticks_without_progress = 0;
  pending_snapshot = 0;
}

void Progress::become_replicate() {
  mode = Mode::replicate;
  next_index = replicated_index() + 1;
  probe_sent = false;
  ticks_without_progress = 0;
  pending_snapshot = 0;
}

void Progress::become_snapshot(uint64_t snapshot_index) {
  KV_ASSERT(snapshot_index > replicated_index());
  become_probe();
  mode = Mode::snapshot;
  pending_snapshot = snapshot_index;
  next_index = snapshot_index + 1;  // where appends resume once the snapshot is in place
}

void Progress::free_through(uint64_t index) {
  while (!inflight_.empty() && inflight_.front().last_index <= index) {
    inflight_bytes_ -= inflight_.front().bytes;
    inflight_.pop_front();
  }
}

}  // namespace keyval::raft
