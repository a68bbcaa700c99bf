// The /health rule (see health.h).
#include "metrics/health.h"

namespace keyval::metrics {

void HealthRule::observe(uint64_t commit_index, uint64_t applied_index, Clock::time_point now) {
  if (applied_index >= commit_index) {
    behind_ = false;
    return;
  }
  if (!behind_ || applied_index != behind_applied_) {
    behind_ = true;
    behind_applied_ = applied_index;
    behind_since_ = now;
  }
}

HealthVerdict HealthRule::check(const HealthInput& input, Clock::time_point now) {
  observe(input.commit_index, input.applied_index, now);
  if (!input.serving) return {false, "recovering"};
  if (input.leader_id == 0) return {false, "no leader"};
  if (behind_ && now - behind_since_ >= apply_stall_max_) {
    return {false, "applying stalled: applied " + std::to_string(input.applied_index) + " commit " +
                       std::to_string(input.commit_index)};
  }
  return {true, "ok"};
}

}  // namespace keyval::metrics
