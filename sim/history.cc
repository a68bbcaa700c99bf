// Operation helpers and the History recorder (see history.h for the semantics).
#include "sim/history.h"

#include <utility>

namespace keyval::sim {

bool Operation::operator==(const Operation& other) const {
  return client == other.client && op == other.op && key == other.key && value == other.value &&
         expected == other.expected && invoke_ns == other.invoke_ns && complete_ns == other.complete_ns &&
         status == other.status && output == other.output;
}

const char* kind_name(Operation::Kind kind) {
  switch (kind) {
    case Operation::put: return "put";
    case Operation::get: return "get";
    case Operation::del: return "del";
    case Operation::cas: return "cas";
  }
  return "?";
}

const char* status_name(Operation::Status status) {
  switch (status) {
    case Operation::ok: return "ok";
    case Operation::fail: return "fail";
    case Operation::unknown: return "unknown";
  }
  return "?";
}

keyval::Status validate_operation(const Operation& operation) {
  auto invalid = [&](const char* why) {
    return keyval::Status::invalid_argument(std::string(why) + ": " + describe(operation));
  };
  if ((operation.op == Operation::put || operation.op == Operation::cas) && !operation.value) {
    return invalid("put and cas need a value");
  }
  if (operation.op != Operation::cas && operation.expected) return invalid("only cas has an expected value");
  if ((operation.status == Operation::unknown) != !operation.complete_ns) {
    return invalid("complete must be null exactly when status is unknown");
  }
  if (operation.complete_ns && *operation.complete_ns < operation.invoke_ns) {
    return invalid("complete is before invoke");
  }
  if (operation.status != Operation::ok && operation.output) return invalid("only an ok operation has an output");
  if (operation.status == Operation::ok && operation.op == Operation::put && operation.output) {
    return invalid("put has no output");
  }
  bool needs_boolean = operation.status == Operation::ok && operation.op == Operation::cas;
  bool may_be_boolean = operation.op == Operation::del && operation.output;
  if ((needs_boolean || may_be_boolean) && operation.output != "true" && operation.output != "false") {
    return invalid("output must be \"true\" or \"false\"");
  }
  return keyval::Status::ok();
}

namespace {

std::string quoted(const std::optional<std::string>& text) { return text ? "\"" + *text + "\"" : "absent"; }

}  // namespace

std::string describe(const Operation& operation) {
  std::string text = "client " + std::to_string(operation.client) + " " + kind_name(operation.op) + "(\"" +
                     operation.key + "\"";
  if (operation.op == Operation::cas) text += ", " + quoted(operation.expected) + " ->";
  if (operation.value) text += (operation.op == Operation::cas ? " " : ", ") + quoted(operation.value);
  text += ")";
  if (operation.status == Operation::ok && operation.op != Operation::put) text += " = " + quoted(operation.output);
  if (operation.status != Operation::ok) text += std::string(" ") + status_name(operation.status);
  text += " [" + std::to_string(operation.invoke_ns) + ", " +
          (operation.complete_ns ? std::to_string(*operation.complete_ns) : std::string("?")) + "] ns";
  return text;
}

History::OperationId History::invoke(uint64_t client, Operation::Kind op, std::string key,
                                     std::optional<std::string> value, std::optional<std::string> expected,
                                     uint64_t invoke_ns) {
  Operation operation;
  operation.client = client;
  operation.op = op;
  operation.key = std::move(key);
  operation.value = std::move(value);
  operation.expected = std::move(expected);
  operation.invoke_ns = invoke_ns;
  operations_.push_back(std::move(operation));
  return operations_.size() - 1;
}

Operation& History::pending(OperationId id, uint64_t complete_ns) {
  // Completing twice or before the invocation is a bug in the simulator's client.
  KV_ASSERT(id < operations_.size());
  Operation& operation = operations_[id];
  KV_ASSERT(operation.status == Operation::unknown && !operation.complete_ns);
  KV_ASSERT(complete_ns >= operation.invoke_ns);
  operation.complete_ns = complete_ns;
  return operation;
}

void History::complete_ok(OperationId id, std::optional<std::string> output, uint64_t complete_ns) {
  Operation& operation = pending(id, complete_ns);
  operation.status = Operation::ok;
  operation.output = std::move(output);
  KV_ASSERT(validate_operation(operation).is_ok());
}

void History::complete_fail(OperationId id, uint64_t complete_ns) {
  pending(id, complete_ns).status = Operation::fail;
}

}  // namespace keyval::sim
