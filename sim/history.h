// The client history the simulator records and the linearizability checker reads.
//
// Every client operation is one Operation: what was asked (op, key, value,
// expected), when it was invoked and, if the client learned the outcome, when it
// completed and what it returned. Times are virtual nanoseconds from the
// simulator's clock, so "a completed before b was invoked" is exact.
//
// Semantics of status, for every op:
//   ok      the operation took effect exactly once, at one instant between
//           invoke_ns and complete_ns, and `output` is what it returned.
//   fail    the operation definitely did NOT take effect (e.g. rejected by a
//           follower before being proposed, or a session that proves it was never
//           applied). The checker drops it. A client must record a timeout or a
//           lost reply as `unknown`, never as `fail`: a request that may have
//           reached the leader may still commit later.
//   unknown the client gave up without learning the outcome. The operation may
//           take effect at any instant after invoke_ns, or never. complete_ns is
//           nullopt and output is meaningless (nullopt).
//   Invariant: status == unknown  <=>  complete_ns == nullopt.
//
// Semantics of each op's fields (value / expected / output, output only for ok):
//   put(key, value)            sets key to value. output: nullopt.
//   get(key)                   output: the value, or nullopt when the key is absent.
//   del(key)                   removes key; idempotent (deleting an absent key is
//                              ok). output: nullopt when the server does not say, or
//                              "true"/"false" = whether the key existed before.
//   cas(key, expected, value)  if the current value equals `expected` (nullopt =
//                              "key absent"), sets key to value. output: "true" if it
//                              did, "false" if the comparison failed (no effect).
//                              A cas with status fail did not run at all.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/status.h"

namespace keyval::sim {

struct Operation {
  enum Kind : uint8_t { put, get, del, cas };
  enum Status : uint8_t { ok, fail, unknown };

  uint64_t client = 0;
  Kind op = get;
  std::string key;
  std::optional<std::string> value;     // put: the value; cas: the new value
  std::optional<std::string> expected;  // cas: the value compared against (nullopt = absent)
  uint64_t invoke_ns = 0;
  std::optional<uint64_t> complete_ns;  // nullopt = outcome unknown
  Status status = unknown;
  std::optional<std::string> output;    // see the table above

  bool operator==(const Operation& other) const;
};

const char* kind_name(Operation::Kind kind);      // "put", "get", "del", "cas"
const char* status_name(Operation::Status status);  // "ok", "fail", "unknown"

// Whether `operation` obeys the rules above (value present for put and cas,
// status/complete_ns agreement, complete_ns >= invoke_ns, cas output "true"/"false").
keyval::Status validate_operation(const Operation& operation);

// One line for humans: `client 3 cas("k", "a" -> "b") = "true" [100, 250] ns`.
std::string describe(const Operation& operation);

// Records operations as a client runs them. Ids are indexes into operations().
class History {
 public:
  using OperationId = size_t;

  // A new operation, outcome unknown until completed.
  OperationId invoke(uint64_t client, Operation::Kind op, std::string key, std::optional<std::string> value,
                     std::optional<std::string> expected, uint64_t invoke_ns);
  // The client learned the operation took effect and returned `output`.
  void complete_ok(OperationId id, std::optional<std::string> output, uint64_t complete_ns);
  // The client learned the operation definitely did not take effect.
  void complete_fail(OperationId id, uint64_t complete_ns);
  // Nothing to call for a timeout: an operation never completed stays unknown.

  const std::vector<Operation>& operations() const { return operations_; }

 private:
  Operation& pending(OperationId id, uint64_t complete_ns);

  std::vector<Operation> operations_;
};

}  // namespace keyval::sim
