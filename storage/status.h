// Status and Result<T>: every expected failure in KeyVal is a value.
//
// Three tiers (see STYLE.md): a programmer bug is an always-on assertion
// (KV_ASSERT) that stops the process; an expected failure (I/O error,
// corruption, bad input) is a Status or Result<T> carrying a message that
// names the file, offset and what was expected; errors never escape as
// exceptions. OS error numbers become Status in one place (status.cc).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace keyval {

enum class Code : uint8_t {
  ok = 0,
  io_error,          // the OS refused a read, write, sync, rename...
  no_space,          // ENOSPC / EDQUOT / LMDB map at its configured maximum
  corruption,        // bytes on disk fail a check that a crash cannot explain
  not_found,         // the thing asked for does not exist
  invalid_argument,  // the caller asked for something impossible
  locked,            // another process holds the directory
  unsupported,       // format version or feature this build does not know
  busy,              // a bounded queue is full: retry later (back-pressure)
};

const char* code_name(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok

  static Status ok() { return Status(); }
  static Status io_error(std::string message) { return Status(Code::io_error, std::move(message)); }
  static Status no_space(std::string message) { return Status(Code::no_space, std::move(message)); }
  static Status corruption(std::string message) { return Status(Code::corruption, std::move(message)); }
  static Status not_found(std::string message) { return Status(Code::not_found, std::move(message)); }
  static Status invalid_argument(std::string message) {
    return Status(Code::invalid_argument, std::move(message));
  }
  static Status locked(std::string message) { return Status(Code::locked, std::move(message)); }
  static Status unsupported(std::string message) { return Status(Code::unsupported, std::move(message)); }
  static Status busy(std::string message) { return Status(Code::busy, std::move(message)); }

  // The one translation of an OS error number: `operation` on `path` failed with `error_number`.
  static Status from_errno(const char* operation, const std::string& path, int error_number);
  // A failure of `code` (io_error for ok or a value no Code names: a failure must stay one).
  static Status from_code(Code code, std::string message);
  // The same failure, its message prefixed with "context: " (callers decide on the code).
  Status with_context(const std::string& context) const { return from_code(code_, context + ": " + message_); }

  bool is_ok() const { return code_ == Code::ok; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corruption: segment 0000000000000001-0000000000000001.wal offset 4096: ..."
  std::string to_string() const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::ok;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : state_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    if (std::get<1>(state_).is_ok()) {
      std::fprintf(stderr, "keyval: Result built from an ok Status without a value\n");
      std::abort();
    }
  }

  bool is_ok() const { return state_.index() == 0; }
  const Status& status() const {
    static const Status ok_status;
    return is_ok() ? ok_status : std::get<1>(state_);
  }
  T& value() & { return checked(); }
  const T& value() const& { return const_cast<Result*>(this)->checked(); }
  // By value: a reference into a temporary Result would dangle (e.g. in a range-for).
  T value() && { return std::move(checked()); }
  T* operator->() { return &checked(); }
  const T* operator->() const { return &const_cast<Result*>(this)->checked(); }
  T& operator*() { return checked(); }

 private:
  T& checked() {
    if (!is_ok()) {
      std::fprintf(stderr, "keyval: value() on a failed Result: %s\n", std::get<1>(state_).to_string().c_str());
      std::abort();
    }
    return std::get<0>(state_);
  }

  std::variant<T, Status> state_;
};

// A failed KV_ASSERT: calls the installed handler (which may throw, as the simulator's does,
// to turn a broken invariant inside one simulated node into a reported violation: CAF ends
// the actor that threw; a throw out of code that must not throw, a destructor or a noexcept
// function, ends the process as the abort would), then prints "keyval: assertion failed:
// CONDITION at FILE:LINE" and aborts. Real nodes install no handler.
using AssertionHandler = void (*)(const std::string& what);
void set_assertion_handler(AssertionHandler handler);  // nullptr: print and abort only
[[noreturn]] void assertion_failed(const char* condition, const char* file, int line);

}  // namespace keyval

// Always-on assertion for programmer bugs (never for bad input or I/O).
#define KV_ASSERT(condition)                                           \
  do {                                                                 \
    if (!(condition)) ::keyval::assertion_failed(#condition, __FILE__, __LINE__); \
  } while (false)

// Propagate a failed Status from the enclosing function.
#define KV_RETURN_IF_ERROR(expression)            \
  do {                                            \
    ::keyval::Status kv_status_ = (expression);   \
    if (!kv_status_.is_ok()) return kv_status_;   \
  } while (false)

#define KV_CONCAT_INNER(a, b) a##b
#define KV_CONCAT(a, b) KV_CONCAT_INNER(a, b)
// KV_ASSIGN_OR_RETURN(auto file, env.open_file(...)); propagates the Status on failure.
#define KV_ASSIGN_OR_RETURN(declaration, expression) \
  KV_ASSIGN_OR_RETURN_IMPL(KV_CONCAT(kv_result_, __LINE__), declaration, expression)
#define KV_ASSIGN_OR_RETURN_IMPL(result, declaration, expression) \
  auto result = (expression);                                     \
  if (!result.is_ok()) return result.status();                    \
  declaration = std::move(result).value()
