// Goal: Status and Result<T> carry the right code and message, OS errors map to codes in one place, and the macros propagate.
// Method: build each factory and errno directly, and run small functions written with KV_RETURN_IF_ERROR / KV_ASSIGN_OR_RETURN.
#define BOOST_TEST_MODULE status_test
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "storage/decimal.h"
#include "storage/status.h"

namespace keyval {

// Lets BOOST_TEST print a Code when a comparison fails.
std::ostream& boost_test_print_type(std::ostream& out, Code code) { return out << code_name(code); }

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Returns the first failed Status of the two; `steps_done` says how many passed.
Status two_steps(const Status& first, const Status& second, int& steps_done) {
  steps_done = 0;
  KV_RETURN_IF_ERROR(first);
  steps_done = 1;
  KV_RETURN_IF_ERROR(second);
  steps_done = 2;
  return Status::ok();
}

Result<int> parse_digit(char character) {
  if (character < '0' || character > '9') {
    return Status::invalid_argument(std::string("not a digit: ") + character);
  }
  return character - '0';
}

// Two digits as a number, written with KV_ASSIGN_OR_RETURN (twice, on separate lines).
Result<int> parse_two_digits(const std::string& text, int& digits_parsed) {
  digits_parsed = 0;
  KV_ASSIGN_OR_RETURN(int tens, parse_digit(text.at(0)));
  digits_parsed = 1;
  KV_ASSIGN_OR_RETURN(int units, parse_digit(text.at(1)));
  digits_parsed = 2;
  return tens * 10 + units;
}

// KV_ASSIGN_OR_RETURN in a function that returns a plain Status.
Status parse_into(char character, int& out) {
  KV_ASSIGN_OR_RETURN(out, parse_digit(character));
  return Status::ok();
}

Result<std::unique_ptr<int>> make_boxed(int value) { return std::make_unique<int>(value); }

Result<int> unbox(int value) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<int> boxed, make_boxed(value));  // move-only values move through
  return *boxed;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(status)

BOOST_AUTO_TEST_CASE(default_status_is_ok) {
  Status status;
  BOOST_TEST(status.is_ok());
  BOOST_TEST(status.code() == Code::ok);
  BOOST_TEST(status.message().empty());
  BOOST_TEST(status.to_string() == "ok");
  BOOST_TEST(Status::ok().is_ok());
  BOOST_TEST(Status::ok().to_string() == "ok");
  BOOST_TEST(std::string(code_name(Code::ok)) == "ok");
}

BOOST_AUTO_TEST_CASE(each_factory_sets_its_code_and_to_string_prefixes_the_code_name) {
  struct Case {
    Status status;
    Code code;
    std::string expected_string;
  };
  const std::vector<Case> cases = {
      {Status::io_error("m1"), Code::io_error, "io error: m1"},
      {Status::no_space("m2"), Code::no_space, "no space: m2"},
      {Status::corruption("m3"), Code::corruption, "corruption: m3"},
      {Status::not_found("m4"), Code::not_found, "not found: m4"},
      {Status::invalid_argument("m5"), Code::invalid_argument, "invalid argument: m5"},
      {Status::locked("m6"), Code::locked, "locked: m6"},
      {Status::unsupported("m7"), Code::unsupported, "unsupported: m7"},
      {Status::busy("m8"), Code::busy, "busy: m8"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT("expected " << c.expected_string) {
      BOOST_TEST(!c.status.is_ok());
      BOOST_TEST(c.status.code() == c.code);
      BOOST_TEST(c.status.to_string() == c.expected_string);
      BOOST_TEST(contains(c.status.message(), "m"));
      BOOST_TEST(c.status.to_string() == std::string(code_name(c.code)) + ": " + c.status.message());
    }
  }
}

BOOST_AUTO_TEST_CASE(code_names_are_distinct) {
  const std::vector<Code> codes = {Code::ok,        Code::io_error,         Code::no_space, Code::corruption,
                                   Code::not_found, Code::invalid_argument, Code::locked,   Code::unsupported, Code::busy};
  for (size_t i = 0; i < codes.size(); ++i) {
    for (size_t j = i + 1; j < codes.size(); ++j) {
      BOOST_TEST(std::string(code_name(codes[i])) != std::string(code_name(codes[j])));
    }
  }
}

BOOST_AUTO_TEST_CASE(from_errno_maps_os_errors_to_codes) {
  BOOST_TEST(Status::from_errno("write", "/d/f", ENOSPC).code() == Code::no_space);
  BOOST_TEST(Status::from_errno("write", "/d/f", EDQUOT).code() == Code::no_space);
  BOOST_TEST(Status::from_errno("open", "/d/f", ENOENT).code() == Code::not_found);
  BOOST_TEST(Status::from_errno("read", "/d/f", EIO).code() == Code::io_error);
  BOOST_TEST(Status::from_errno("lock", "/d/f", EWOULDBLOCK).code() == Code::locked);
  BOOST_TEST(Status::from_errno("fallocate", "/d/f", EINVAL).code() == Code::invalid_argument);
  BOOST_TEST(Status::from_errno("open", "/d/f", EACCES).code() == Code::io_error);
}

BOOST_AUTO_TEST_CASE(from_errno_message_names_operation_path_and_os_reason) {
  Status status = Status::from_errno("fdatasync", "/data/wal/0001.wal", EIO);
  BOOST_TEST(contains(status.message(), "fdatasync"));
  BOOST_TEST(contains(status.message(), "/data/wal/0001.wal"));
  BOOST_TEST(contains(status.message(), std::strerror(EIO)));
  BOOST_TEST(status.to_string() == "io error: " + status.message());

  Status missing = Status::from_errno("open", "/no/such/file", ENOENT);
  BOOST_TEST(contains(missing.message(), "open"));
  BOOST_TEST(contains(missing.message(), "/no/such/file"));
  BOOST_TEST(contains(missing.to_string(), "not found"));
}

BOOST_AUTO_TEST_CASE(result_holds_a_value) {
  Result<int> result(42);
  BOOST_TEST(result.is_ok());
  BOOST_TEST(result.status().is_ok());
  BOOST_TEST(result.value() == 42);
  BOOST_TEST(*result == 42);
  result.value() = 7;  // value() & is a reference into the Result
  BOOST_TEST(result.value() == 7);

  Result<std::string> text(std::string("payload"));
  BOOST_TEST(text->size() == 7u);
  const Result<std::string>& const_text = text;
  BOOST_TEST(const_text.value() == "payload");
  BOOST_TEST(std::move(text).value() == "payload");  // value() && returns by value
}

BOOST_AUTO_TEST_CASE(result_holds_a_failed_status) {
  Result<int> result(Status::corruption("bad bytes at offset 8"));
  BOOST_TEST(!result.is_ok());
  BOOST_TEST(result.status().code() == Code::corruption);
  BOOST_TEST(result.status().message() == "bad bytes at offset 8");
}

BOOST_AUTO_TEST_CASE(return_if_error_stops_at_the_first_failure) {
  int steps = -1;
  BOOST_TEST(two_steps(Status::ok(), Status::ok(), steps).is_ok());
  BOOST_TEST(steps == 2);

  Status first_fails = two_steps(Status::io_error("first"), Status::ok(), steps);
  BOOST_TEST(first_fails.code() == Code::io_error);
  BOOST_TEST(first_fails.message() == "first");
  BOOST_TEST(steps == 0);

  Status second_fails = two_steps(Status::ok(), Status::no_space("second"), steps);
  BOOST_TEST(second_fails.code() == Code::no_space);
  BOOST_TEST(second_fails.message() == "second");
  BOOST_TEST(steps == 1);
}

BOOST_AUTO_TEST_CASE(assign_or_return_binds_the_value_or_propagates_the_status) {
  int digits = -1;
  Result<int> parsed = parse_two_digits("42", digits);
  BOOST_REQUIRE(parsed.is_ok());
  BOOST_TEST(parsed.value() == 42);
  BOOST_TEST(digits == 2);

  Result<int> tens_bad = parse_two_digits("x2", digits);
  BOOST_TEST(!tens_bad.is_ok());
  BOOST_TEST(tens_bad.status().code() == Code::invalid_argument);
  BOOST_TEST(tens_bad.status().message() == "not a digit: x");
  BOOST_TEST(digits == 0);

  Result<int> units_bad = parse_two_digits("4y", digits);
  BOOST_TEST(units_bad.status().code() == Code::invalid_argument);
  BOOST_TEST(units_bad.status().message() == "not a digit: y");
  BOOST_TEST(digits == 1);
}

BOOST_AUTO_TEST_CASE(assign_or_return_works_in_status_functions_and_with_move_only_values) {
  int out = -1;
  BOOST_TEST(parse_into('7', out).is_ok());
  BOOST_TEST(out == 7);
  Status failed = parse_into('z', out);
  BOOST_TEST(failed.code() == Code::invalid_argument);
  BOOST_TEST(out == 7);  // untouched on failure

  Result<int> unboxed = unbox(9);
  BOOST_REQUIRE(unboxed.is_ok());
  BOOST_TEST(unboxed.value() == 9);
}

}  // namespace keyval

BOOST_AUTO_TEST_CASE(parse_decimal_takes_digits_within_uint64_only) {
  BOOST_TEST(keyval::parse_decimal("0").value() == 0u);
  BOOST_TEST(keyval::parse_decimal("18446744073709551615").value() == UINT64_MAX);
  BOOST_TEST(!keyval::parse_decimal("18446744073709551616").has_value());  // one past the top
  BOOST_TEST(!keyval::parse_decimal("").has_value());
  BOOST_TEST(!keyval::parse_decimal("-1").has_value());
  BOOST_TEST(!keyval::parse_decimal("1 ").has_value());
  BOOST_TEST(!keyval::parse_decimal("0x10").has_value());
}

BOOST_AUTO_TEST_CASE(with_context_prefixes_the_message_and_keeps_the_code) {
  Status status = Status::corruption("bad chunk").with_context("snapshot x");
  BOOST_TEST((status.code() == Code::corruption));
  BOOST_TEST(status.message() == "snapshot x: bad chunk");
  BOOST_TEST((Status::busy("full").with_context("queue").code() == Code::busy));
}

BOOST_AUTO_TEST_CASE(from_code_never_turns_a_failure_into_ok) {
  BOOST_TEST((Status::from_code(Code::no_space, "disk").code() == Code::no_space));
  BOOST_TEST((Status::from_code(Code::ok, "odd").code() == Code::io_error));
  BOOST_TEST((Status::from_code(static_cast<Code>(200), "unknown").code() == Code::io_error));
}

BOOST_AUTO_TEST_SUITE_END()
