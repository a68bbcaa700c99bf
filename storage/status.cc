// Status helpers: the one place where OS error numbers become Status values.
#include "storage/status.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace keyval {

Status Status::from_code(Code code, std::string message) {
  switch (code) {
    case Code::no_space:
    case Code::corruption:
    case Code::not_found:
    case Code::invalid_argument:
    case Code::locked:
    case Code::unsupported:
    case Code::busy:
      return Status(code, std::move(message));
    default:
      return Status(Code::io_error, std::move(message));
  }
}

const char* code_name(Code code) {
  switch (code) {
    case Code::ok: return "ok";
    case Code::io_error: return "io error";
    case Code::no_space: return "no space";
    case Code::corruption: return "corruption";
    case Code::not_found: return "not found";
    case Code::invalid_argument: return "invalid argument";
    case Code::locked: return "locked";
    case Code::unsupported: return "unsupported";
    case Code::busy: return "busy";
  }
  return "unknown";
}

Status Status::from_errno(const char* operation, const std::string& path, int error_number) {
  std::string message = std::string(operation) + " " + path + ": " + std::strerror(error_number);
  switch (error_number) {
    case ENOSPC:
    case EDQUOT:
      return no_space(std::move(message));
    case ENOENT:
      return not_found(std::move(message));
    case EWOULDBLOCK:
      return locked(std::move(message));
    case EINVAL:
      return invalid_argument(std::move(message));
    default:
      return io_error(std::move(message));
  }
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(code_name(code_)) + ": " + message_;
}

namespace {
std::atomic<AssertionHandler> assertion_handler{nullptr};
}  // namespace

void set_assertion_handler(AssertionHandler handler) { assertion_handler.store(handler); }

void assertion_failed(const char* condition, const char* file, int line) {
  std::string what = std::string("assertion failed: ") + condition + " at " + file + ":" + std::to_string(line);
  if (AssertionHandler handler = assertion_handler.load()) handler(what);
  std::fprintf(stderr, "keyval: %s\n", what.c_str());
  std::abort();
}

}  // namespace keyval
