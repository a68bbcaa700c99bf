// Deadlines: requests in flight, each with a time by which it must be answered, kept by the
// actor that owns them instead of one CAF request timeout per request.
//
// Why: CAF 0.17 runs every timeout through one clock thread. `request(..., timeout)` pushes
// a timer to that thread and the reply pushes its cancellation, waking the clock thread twice
// per request: a fifth of a busy leader's CPU went there. An owner of Deadlines instead arms
// one sweep timer for its oldest deadline; the sweep answers what is overdue and arms the
// next. With one timeout for every entry, deadlines come in the order entries are added, so
// the oldest is always first and a sweep fires about once per timeout under steady load.
//
// An entry is answered once: by its owner through take(token) when its reply comes, or by
// the sweep. A reply that comes after its entry was swept finds nothing and is dropped.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "actors/messages.h"
#include "storage/status.h"

namespace keyval {

template <class Pending>
class Deadlines {
 public:
  using Clock = std::chrono::steady_clock;

  Deadlines() = default;
  explicit Deadlines(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  std::chrono::milliseconds timeout() const { return timeout_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // Adds an entry due at now + timeout; returns its token.
  uint64_t add(Clock::time_point now, Pending pending) {
    const uint64_t token = ++last_token_;
    entries_.emplace_hint(entries_.end(), token, Entry{now + timeout_, std::move(pending)});
    return token;
  }

  // The entry, removed, if it is still waiting (not answered, not swept).
  std::optional<Pending> take(uint64_t token) {
    auto found = entries_.find(token);
    if (found == entries_.end()) return std::nullopt;
    Pending pending = std::move(found->second.pending);
    entries_.erase(found);
    return pending;
  }

  // The owner's sweep timer fired: removes every entry due at or before `now`, oldest
  // first, handing each to `expire`. The timer is no longer armed.
  template <class Expire>
  void sweep(Clock::time_point now, Expire&& expire) {
    armed_ = false;
    while (!entries_.empty() && entries_.begin()->second.due <= now) {
      Pending pending = std::move(entries_.begin()->second.pending);
      entries_.erase(entries_.begin());
      expire(pending);
    }
  }

  // When the oldest entry is due (only when there is one).
  Clock::time_point next_due() const {
    KV_ASSERT(!entries_.empty());
    return entries_.begin()->second.due;
  }

  // True when the owner should arm its sweep timer now: entries wait and none is armed
  // (then it counts as armed until the next sweep).
  bool arm() {
    if (armed_ || entries_.empty()) return false;
    armed_ = true;
    return true;
  }

 private:
  struct Entry {
    Clock::time_point due;
    Pending pending;
  };

  std::chrono::milliseconds timeout_{0};
  uint64_t last_token_ = 0;
  std::map<uint64_t, Entry> entries_;  // by token: also by due time, the timeout being one
  bool armed_ = false;
};

// Arms `owner`'s sweep timer for its oldest entry, unless one is armed: a sweep_atom at
// that entry's due time, on the owner's own clock (virtual in the simulator). Sent without
// a sender: a CAF 0.17 broker never empties its mailbox when it quits, so a message naming
// it as sender that arrives after that would keep it alive (a reference cycle).
template <class Pending, class Handle>
void arm_sweep(Deadlines<Pending>& deadlines, const Handle& owner, caf::actor_clock& clock) {
  if (!deadlines.arm()) return;
  auto delay = std::max(deadlines.next_due() - clock.now(), caf::actor_clock::duration_type::zero());
  caf::delayed_anon_send(owner, delay, sweep_atom_v);
}

}  // namespace keyval
