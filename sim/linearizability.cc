// check_linearizable: split the history per key, reduce each key's operations to
// integers, run the register search, and explain the first failing key.
#include "sim/linearizability.h"

#include <algorithm>
#include <map>
#include <utility>

#include "sim/register_search.h"

namespace keyval::sim {

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::yes: return "yes";
    case Verdict::no: return "no";
    case Verdict::unknown: return "unknown";
  }
  return "?";
}

namespace {

// Interns a key's values so the register state is a small integer; an output
// nobody wrote gets an id too, and simply never matches a state.
class ValueTable {
 public:
  int32_t id(const std::optional<std::string>& value) {
    if (!value) return register_absent;
    return ids_.emplace(*value, static_cast<int32_t>(ids_.size())).first->second;
  }

 private:
  std::map<std::string, int32_t> ids_;
};

// Whether `operation` constrains or changes the register at all.
bool takes_part(const Operation& operation) {
  if (operation.status == Operation::fail) return false;  // definitely not applied
  // An unknown get changes nothing and its output was never seen.
  return !(operation.status == Operation::unknown && operation.op == Operation::get);
}

std::vector<RegisterOperation> register_operations(const std::vector<Operation>& operations,
                                                   const std::vector<size_t>& indexes) {
  ValueTable values;
  std::vector<RegisterOperation> result;
  for (size_t index : indexes) {
    const Operation& operation = operations[index];
    RegisterOperation item;
    item.index = index;
    item.kind = operation.op;
    item.value = values.id(operation.value);
    item.expected = values.id(operation.expected);
    item.invoke_ns = operation.invoke_ns;
    item.complete_ns = operation.complete_ns;
    if (operation.status == Operation::ok) {
      if (operation.op == Operation::get) item.output = values.id(operation.output);
      if (operation.op == Operation::cas || (operation.op == Operation::del && operation.output)) {
        item.flag = operation.output == "true";
      }
    }
    result.push_back(item);
  }
  return result;
}

std::string explain_violation(const std::vector<Operation>& operations, const std::vector<RegisterOperation>& items,
                              const RegisterSearch& search, const CheckOptions& options,
                              std::vector<size_t>& involved) {
  const std::vector<size_t>& prefix = search.longest_prefix();
  std::string text = "not linearizable: the longest linearizable prefix has " + std::to_string(prefix.size()) +
                     " of " + std::to_string(items.size()) + " operations";
  size_t shown = std::min(prefix.size(), options.explanation_operations_max);
  if (shown > 0) text += ", ending with:";
  for (size_t i = prefix.size() - shown; i < prefix.size(); ++i) {
    text += "\n  #" + std::to_string(items[prefix[i]].index) + " " + describe(operations[items[prefix[i]].index]);
  }
  for (size_t position : prefix) involved.push_back(items[position].index);
  size_t blocked = items[search.blocked_operation()].index;
  involved.push_back(blocked);
  text += "\nthen #" + std::to_string(blocked) + " " + describe(operations[blocked]) +
          " must take effect before it returns, but no order of the operations pending at that point allows it";
  return text;
}

}  // namespace

CheckResult check_linearizable(const std::vector<Operation>& operations, const CheckOptions& options) {
  CheckResult result;
  std::map<std::string, std::vector<size_t>> indexes_by_key;  // ordered: the reported key is deterministic
  for (size_t i = 0; i < operations.size(); ++i) {
    keyval::Status valid = validate_operation(operations[i]);
    if (!valid.is_ok()) {
      result.linearizable = Verdict::unknown;
      result.explanation = "invalid operation #" + std::to_string(i) + ": " + valid.message();
      return result;
    }
    if (takes_part(operations[i])) indexes_by_key[operations[i].key].push_back(i);
  }
  for (const auto& [key, indexes] : indexes_by_key) {
    std::vector<RegisterOperation> items = register_operations(operations, indexes);
    RegisterSearch search(items, options);
    Verdict verdict = search.run();
    result.steps += search.steps();
    ++result.keys_checked;
    if (verdict == Verdict::no) {
      result.linearizable = Verdict::no;
      result.key = key;
      result.operations.clear();
      result.explanation = "key \"" + key + "\": " +
                           explain_violation(operations, items, search, options, result.operations);
      return result;  // one violation is enough; later keys would only cost time
    }
    if (verdict == Verdict::unknown) {
      ++result.keys_unknown;
      if (result.linearizable == Verdict::yes) {
        result.linearizable = Verdict::unknown;
        result.key = key;
        result.explanation = "key \"" + key + "\": " + search.bound_hit();
      }
    }
  }
  return result;
}

}  // namespace keyval::sim
