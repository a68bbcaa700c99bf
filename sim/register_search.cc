// Wing-Gong/Lowe search over one register's history (see sim/linearizability.h
// for the algorithm and sim/register_search.h for the representation).
#include "sim/register_search.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace keyval::sim {

std::optional<int32_t> register_step(int32_t state, const RegisterOperation& operation) {
  switch (operation.kind) {
    case Operation::put:
      return operation.value;
    case Operation::get:
      if (state != operation.output) return std::nullopt;
      return state;
    case Operation::del:
      if (operation.flag && *operation.flag != (state != register_absent)) return std::nullopt;
      return register_absent;
    case Operation::cas: {
      bool matches = state == operation.expected;
      // An unknown cas (no flag) that runs does whatever the comparison says; the
      // "never ran" case is covered by not linearizing it at all.
      if (operation.flag && *operation.flag != matches) return std::nullopt;
      return matches ? operation.value : state;
    }
  }
  return std::nullopt;
}

size_t RegisterSearch::MemoHash::operator()(const MemoEntry& entry) const {
  uint64_t hash = 0x9E3779B97F4A7C15ull ^ static_cast<uint32_t>(entry.state);
  for (uint64_t word : entry.linearized) {
    hash ^= word + 0x9E3779B97F4A7C15ull + (hash << 6) + (hash >> 2);
  }
  return static_cast<size_t>(hash);
}

RegisterSearch::RegisterSearch(std::vector<RegisterOperation> operations, const CheckOptions& options)
    : operations_(std::move(operations)), options_(options) {
  linearized_.assign((operations_.size() + 63) / 64, 0);
  build_event_list();
}

void RegisterSearch::build_event_list() {
  struct Event {
    uint64_t time_ns;
    bool is_return;
    size_t operation;
  };
  std::vector<Event> events;
  for (size_t i = 0; i < operations_.size(); ++i) {
    events.push_back({operations_[i].invoke_ns, false, i});
    // An unknown outcome has no return: nothing forces it to be linearized.
    if (operations_[i].complete_ns) events.push_back({*operations_[i].complete_ns, true, i});
  }
  // Calls before returns at equal times: touching operations count as concurrent.
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.time_ns, a.is_return, a.operation) < std::tie(b.time_ns, b.is_return, b.operation);
  });
  head_ = events.size();
  next_.resize(head_ + 1);
  prev_.resize(head_ + 1);
  event_operation_.resize(head_);
  event_is_return_.resize(head_);
  call_event_.resize(operations_.size());
  return_event_.assign(operations_.size(), std::nullopt);
  for (size_t e = 0; e <= head_; ++e) {
    next_[e] = e == head_ ? 0 : e + 1;
    prev_[e] = e == 0 ? head_ : e - 1;
  }
  if (events.empty()) next_[head_] = prev_[head_] = head_;
  for (size_t e = 0; e < events.size(); ++e) {
    event_operation_[e] = events[e].operation;
    event_is_return_[e] = events[e].is_return;
    if (events[e].is_return) {
      return_event_[events[e].operation] = e;
    } else {
      call_event_[events[e].operation] = e;
    }
  }
}

// Dancing links: unlink the call and the return; unlift restores them in reverse,
// which is exact because lifts and unlifts nest like a stack.
void RegisterSearch::lift(size_t operation) {
  auto unlink = [&](size_t event) {
    next_[prev_[event]] = next_[event];
    prev_[next_[event]] = prev_[event];
  };
  unlink(call_event_[operation]);
  if (return_event_[operation]) unlink(*return_event_[operation]);
}

void RegisterSearch::unlift(size_t operation) {
  auto relink = [&](size_t event) {
    next_[prev_[event]] = event;
    prev_[next_[event]] = event;
  };
  if (return_event_[operation]) relink(*return_event_[operation]);
  relink(call_event_[operation]);
}

// True when (linearized + operation, state_after) has not been explored yet.
bool RegisterSearch::remember(size_t operation, int32_t state_after) {
  MemoEntry entry{linearized_, state_after};
  entry.linearized[operation / 64] |= uint64_t{1} << (operation % 64);
  bool inserted = memo_.insert(std::move(entry)).second;
  if (inserted) memo_bytes_ += linearized_.size() * sizeof(uint64_t) + sizeof(MemoEntry) + 2 * sizeof(void*);
  return inserted;
}

void RegisterSearch::note_blocked(size_t operation) {
  if (longest_depth_ && *longest_depth_ >= calls_.size()) return;
  longest_depth_ = calls_.size();
  longest_prefix_.clear();
  for (const Frame& frame : calls_) longest_prefix_.push_back(frame.operation);
  blocked_operation_ = operation;
}

bool RegisterSearch::over_bounds() {
  if (steps_ > options_.steps_max_per_key) {
    bound_hit_ = "search exceeded steps_max_per_key = " + std::to_string(options_.steps_max_per_key);
    return true;
  }
  if (memo_bytes_ > options_.memo_bytes_max_per_key) {
    bound_hit_ = "memo exceeded memo_bytes_max_per_key = " + std::to_string(options_.memo_bytes_max_per_key);
    return true;
  }
  return false;
}

Verdict RegisterSearch::run() {
  int32_t state = register_absent;
  size_t definite_left = 0;  // operations with a return event not yet linearized
  for (const RegisterOperation& operation : operations_) definite_left += operation.complete_ns ? 1 : 0;
  size_t entry = next_[head_];
  while (definite_left > 0) {  // what is left has unknown outcome: it may never happen
    ++steps_;
    if (over_bounds()) return Verdict::unknown;
    KV_ASSERT(entry != head_);  // a remaining return event stops the walk before the end
    size_t operation = event_operation_[entry];
    if (!event_is_return_[entry]) {
      std::optional<int32_t> state_after = register_step(state, operations_[operation]);
      if (state_after && remember(operation, *state_after)) {
        calls_.push_back({operation, state});
        state = *state_after;
        linearized_[operation / 64] |= uint64_t{1} << (operation % 64);
        lift(operation);
        definite_left -= operations_[operation].complete_ns ? 1 : 0;
        entry = next_[head_];
      } else {
        entry = next_[entry];
      }
      continue;
    }
    // The return of an operation not linearized yet: this branch is dead, undo the last choice.
    note_blocked(operation);
    if (calls_.empty()) return Verdict::no;
    Frame frame = calls_.back();
    calls_.pop_back();
    state = frame.state_before;
    linearized_[frame.operation / 64] &= ~(uint64_t{1} << (frame.operation % 64));
    unlift(frame.operation);
    definite_left += operations_[frame.operation].complete_ns ? 1 : 0;
    entry = next_[call_event_[frame.operation]];
  }
  return Verdict::yes;
}

}  // namespace keyval::sim
