// The per-key search behind check_linearizable (sim/linearizability.h): one
// register, its operations reduced to integers, and the Wing-Gong/Lowe search.
// Internal to sim/, split out so the driver and the search each stay small.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "sim/history.h"
#include "sim/linearizability.h"

namespace keyval::sim {

// A register value as an interned id; `register_absent` = the key does not exist.
constexpr int32_t register_absent = -1;

// One operation on the register, values interned (compared as integers).
struct RegisterOperation {
  size_t index = 0;  // in the checked history
  Operation::Kind kind = Operation::get;
  int32_t value = register_absent;     // put, cas: the value written
  int32_t expected = register_absent;  // cas
  int32_t output = register_absent;    // get: what was read
  // cas: it succeeded; del: the key existed. nullopt = not constrained (unknown
  // outcome, or a del whose reply does not say).
  std::optional<bool> flag;
  uint64_t invoke_ns = 0;
  std::optional<uint64_t> complete_ns;  // nullopt = no return event (unknown outcome)
};

// The register's sequential specification: the state after `operation` runs in
// `state`, or nullopt when `operation` could not have returned what it did.
std::optional<int32_t> register_step(int32_t state, const RegisterOperation& operation);

class RegisterSearch {
 public:
  RegisterSearch(std::vector<RegisterOperation> operations, const CheckOptions& options);
  Verdict run();

  uint64_t steps() const { return steps_; }
  // After `no`: the longest linearizable prefix (positions in the operations
  // vector, in order) and the operation whose return it could not pass.
  const std::vector<size_t>& longest_prefix() const { return longest_prefix_; }
  size_t blocked_operation() const { return blocked_operation_; }
  // After `unknown`: which bound was hit.
  const std::string& bound_hit() const { return bound_hit_; }

 private:
  struct MemoEntry {
    std::vector<uint64_t> linearized;
    int32_t state;
    bool operator==(const MemoEntry& other) const { return state == other.state && linearized == other.linearized; }
  };
  struct MemoHash {
    size_t operator()(const MemoEntry& entry) const;
  };
  struct Frame {
    size_t operation;
    int32_t state_before;
  };

  void build_event_list();
  void lift(size_t operation);
  void unlift(size_t operation);
  bool remember(size_t operation, int32_t state_after);
  void note_blocked(size_t operation);
  bool over_bounds();

  std::vector<RegisterOperation> operations_;
  CheckOptions options_;
  // Events 0..n-1 plus the head sentinel `head_`, in a circular doubly linked list.
  std::vector<size_t> next_, prev_, event_operation_;
  std::vector<bool> event_is_return_;
  std::vector<size_t> call_event_;
  std::vector<std::optional<size_t>> return_event_;
  size_t head_ = 0;

  std::vector<uint64_t> linearized_;  // bitset over operations_
  std::unordered_set<MemoEntry, MemoHash> memo_;
  uint64_t memo_bytes_ = 0;
  std::vector<Frame> calls_;
  uint64_t steps_ = 0;
  std::optional<size_t> longest_depth_;
  std::vector<size_t> longest_prefix_;
  size_t blocked_operation_ = 0;
  std::string bound_hit_;
};

}  // namespace keyval::sim
