// The /health rule (docs/OPERATIONS.md, "Metrics and health"). A node is healthy while
//   1. it has recovered its data directory and serves (otherwise: "recovering"),
//   2. it sees a leader, itself or another (otherwise: "no leader"), and
//   3. its state machine applies: the applied index is at the commit index, or it has moved
//      within the last apply_stall_max (otherwise: "applying stalled: applied X commit Y").
// Rule 3 reads "behind and not moving", not "behind by N": under a burst of writes a healthy
// follower can be thousands of entries behind for a moment while it applies as fast as its
// disk allows, and a lag bound would call that unhealthy; a state machine that makes no
// progress for seconds while there is work is stuck whatever the gap.
//
// Plain code with the time passed in, so the rule is tested without a clock; the metrics
// listener observes the node on a timer and at every /health request.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace keyval::metrics {

struct HealthInput {
  bool serving = false;
  uint64_t leader_id = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
};

struct HealthVerdict {
  bool healthy = false;
  std::string reason;  // "ok" when healthy
};

class HealthRule {
 public:
  using Clock = std::chrono::steady_clock;
  explicit HealthRule(std::chrono::milliseconds apply_stall_max = std::chrono::milliseconds(5000))
      : apply_stall_max_(apply_stall_max) {}

  // Records what the node shows at `now`, then judges it.
  HealthVerdict check(const HealthInput& input, Clock::time_point now);

 private:
  void observe(uint64_t commit_index, uint64_t applied_index, Clock::time_point now);

  std::chrono::milliseconds apply_stall_max_;
  bool behind_ = false;              // applied < commit at the last observation
  uint64_t behind_applied_ = 0;      // the applied index since behind_since_
  Clock::time_point behind_since_;   // when applied was last seen to move (or fall behind)
};

}  // namespace keyval::metrics
