// Write unavailability as a client sees it: the longest time between two consecutive
// acknowledged puts of a WriteLoad (apps/local_cluster.h) within a window. Used by
// `keyval bench transfer` and tests/leader_transfer_test.cc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "apps/local_cluster.h"

namespace keyval {

// Over the acknowledged puts that completed in [from_ms, to_ms] (steady clock), plus the
// window's edges, so a window with no acknowledgement at all counts as one gap.
inline uint64_t longest_ack_gap_ms(const std::vector<LoadOp>& operations, uint64_t from_ms, uint64_t to_ms) {
  std::vector<uint64_t> times{from_ms, to_ms};
  for (const LoadOp& op : operations) {
    if (op.kind == LoadOp::put && op.outcome == LoadOp::acknowledged && op.complete_ms >= from_ms &&
        op.complete_ms <= to_ms) {
      times.push_back(op.complete_ms);
    }
  }
  std::sort(times.begin(), times.end());
  uint64_t gap = 0;
  for (size_t i = 1; i < times.size(); ++i) gap = std::max(gap, times[i] - times[i - 1]);
  return gap;
}

}  // namespace keyval
