// The leader's side of one snapshot transfer, without I/O (the raft node reads the chunks and
// sends them; docs/SNAPSHOTS.md): the next byte to send, the bytes the follower holds, and the
// round that keeps answers to chunks sent before a rewind from rewinding again.
//
// Every answer names the offset the follower expects next (`chunk_offset`) and the chunk it
// answers (`reject_index`). One that expects an earlier byte than that chunk means a chunk
// was lost or reordered, or the follower restarted: the transfer goes back to that byte, in a
// new round. Chunks carry their round and answers echo it, so the answers still on their way
// to chunks sent before the rewind, duplicates included, are ignored. Without rounds each of
// them rewound and re-sent the window again, and the chunks in flight multiplied without end
// (simulator seed 9288).
#pragma once

#include <algorithm>
#include <cstdint>

#include "raft/message.h"

namespace keyval {

class SnapshotSendWindow {
 public:
  enum class Answer {
    ignored,    // to a chunk of an earlier round, or the transfer waits for its next tick
    progress,   // the follower took chunks or asked for an earlier byte: send on
    failed,     // the follower dropped what it had (a failed write): start over at the next tick
    complete,   // the follower holds the whole file
  };

  uint64_t next_offset() const { return next_offset_; }
  uint64_t acked_offset() const { return acked_offset_; }
  uint64_t round() const { return round_; }

  // May the chunk at next_offset() go now, with at most `window_bytes` unacknowledged?
  // total_bytes 0: not known yet (nothing read).
  bool may_send(uint64_t window_bytes, uint64_t total_bytes) const {
    if (restart_on_tick_) return false;
    if (total_bytes > 0 && next_offset_ >= total_bytes) return false;
    return next_offset_ < acked_offset_ + window_bytes;
  }

  // The chunk at next_offset() of `bytes` bytes was sent (carrying round()).
  void sent(uint64_t bytes) { next_offset_ += bytes; }

  // Back to `offset` (at most what the follower holds) in a new round.
  void rewind(uint64_t offset) {
    ++round_;
    acked_offset_ = std::min(acked_offset_, offset);
    next_offset_ = offset;
  }

  // A tick: a transfer that failed starts over now; true if it may send again.
  bool tick() {
    const bool restart = restart_on_tick_;
    restart_on_tick_ = false;
    return restart;
  }

  // A snapshot_chunk_response of this transfer (its snapshot index and term already checked).
  Answer on_answer(const raft::Message& answer, uint64_t total_bytes) {
    // Round 0: a peer that sends none; taken as current.
    if (answer.chunk_round != 0 && answer.chunk_round != round_) return Answer::ignored;
    if (answer.chunk_error) {
      // At the next tick rather than at once: a follower whose disk fails answers every chunk
      // so. No progress: a transfer that only fails is abandoned after its idle ticks.
      rewind(answer.chunk_offset);
      acked_offset_ = answer.chunk_offset;
      restart_on_tick_ = true;
      return Answer::failed;
    }
    if (answer.reject_index > answer.chunk_offset) {
      acked_offset_ = answer.chunk_offset;
      if (answer.chunk_offset < next_offset_) rewind(answer.chunk_offset);
    } else if (answer.chunk_offset > acked_offset_) {
      acked_offset_ = answer.chunk_offset;
    }
    if (total_bytes > 0 && acked_offset_ >= total_bytes && answer.chunk_done) return Answer::complete;
    return Answer::progress;
  }

 private:
  uint64_t next_offset_ = 0;   // next byte to read and send
  uint64_t acked_offset_ = 0;  // the follower has every byte below this
  uint64_t round_ = 1;
  bool restart_on_tick_ = false;
};

}  // namespace keyval
