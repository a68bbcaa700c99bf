// Linearizability checker for a key-value history (sim/history.h).
//
// Each key is an independent register (initial value: absent), and a history is
// linearizable iff its restriction to every key is (linearizability is local,
// Herlihy & Wing 1990), so the search runs per key. For each key it is the
// Wing-Gong algorithm with Lowe's memoization, as Porcupine implements it: the
// call and return events sorted by time in a doubly linked list; depth-first, an
// operation whose call is reached is tentatively linearized if the register model
// allows its output, and the search backtracks when it reaches the return of an
// operation not yet linearized; (set of linearized operations, register state)
// pairs already explored are remembered and pruned.
//
// How each status is treated (semantics in sim/history.h):
// * fail: dropped. This is sound only because `fail` means "definitely not
//   applied"; a client that records a possibly-applied request as fail makes the
//   checker report false violations.
// * unknown (complete_ns nullopt): no return event, so it may be linearized at any
//   point after its invoke or never (Porcupine puts its return at +infinity, which
//   is the same: linearized after every other operation it affects nothing seen).
//   Its output is unconstrained. An unknown get has no effect and is dropped.
// * Events at equal times: calls sort before returns, so operations that touch at
//   one instant count as concurrent (the permissive reading of a tie).
//
// The search is exponential in the worst case: it is bounded per key by steps and
// memo memory, and a key that exceeds a bound gets the verdict `unknown`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/history.h"

namespace keyval::sim {

enum class Verdict : uint8_t { yes, no, unknown };
const char* verdict_name(Verdict verdict);  // "yes", "no", "unknown"

struct CheckOptions {
  // One step = one move of the search (try an operation, or backtrack).
  uint64_t steps_max_per_key = 2'000'000;
  // The memo holds one bitset of the key's operations per explored state.
  uint64_t memo_bytes_max_per_key = 256ull << 20;
  // How many operations of the longest linearizable prefix an explanation shows.
  size_t explanation_operations_max = 5;
};

struct CheckResult {
  Verdict linearizable = Verdict::yes;
  // The key that decided the verdict: the first key (in byte order) found not
  // linearizable, else the first whose search hit a bound. nullopt when yes.
  std::optional<std::string> key;
  // For `no`: the longest linearizable prefix found and the operation that cannot
  // follow it. For `unknown`: which bound was hit. Operations are named "#i", the
  // index in the checked vector (= line i+1 of the history file).
  std::string explanation;
  // For `no`: indexes of the prefix's operations in linearization order, then the
  // operation that could not be linearized in time.
  std::vector<size_t> operations;
  // Keys searched; the check stops at the first `no`, so after `no` these count
  // only the keys before it (in byte order).
  size_t keys_checked = 0;
  size_t keys_unknown = 0;
  uint64_t steps = 0;  // summed over all keys searched
};

CheckResult check_linearizable(const std::vector<Operation>& operations, const CheckOptions& options = {});

}  // namespace keyval::sim
