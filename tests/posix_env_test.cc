// Goal: the POSIX file-system seam reads, writes, sizes, syncs, names and locks real files as env.h promises, failing as values.
// Method: real files in a temporary directory; the cross-process lock is checked against fork()ed children that exit with a verdict.
#define BOOST_TEST_MODULE posix_env_test
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "storage/env.h"
#include "tests/support/temp_dir.h"

namespace keyval {

// Lets BOOST_TEST print a Code when a comparison fails.
std::ostream& boost_test_print_type(std::ostream& out, Code code) { return out << code_name(code); }

namespace {

using testing::TempDir;
using testing::make_payload;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The Env under test (the suite's name hides keyval::posix_env at global scope).
Env& env() { return posix_env(); }

void require_ok(const Status& status) { BOOST_REQUIRE_MESSAGE(status.is_ok(), status.to_string()); }

std::unique_ptr<File> open_file(const std::string& path, OpenMode mode) {
  auto opened = env().open_file(path, mode);
  BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  return std::move(opened).value();
}

uint64_t size_of(File& file) {
  auto size = file.size();
  BOOST_REQUIRE_MESSAGE(size.is_ok(), size.status().to_string());
  return size.value();
}

std::vector<uint8_t> read_exactly(File& file, uint64_t offset, size_t bytes) {
  std::vector<uint8_t> buffer(bytes);
  auto read = file.read_at(offset, buffer.data(), bytes);
  BOOST_REQUIRE_MESSAGE(read.is_ok(), read.status().to_string());
  BOOST_REQUIRE_EQUAL(read.value(), bytes);
  return buffer;
}

void write_all(File& file, uint64_t offset, const std::vector<uint8_t>& bytes) {
  require_ok(file.write_at(offset, bytes.data(), bytes.size()));
}

std::vector<std::string> list(const std::string& directory) {
  auto names = env().list(directory);
  BOOST_REQUIRE_MESSAGE(names.is_ok(), names.status().to_string());
  return names.value();
}

// What a forked child reports through its exit status.
constexpr int child_got_lock = 10;
constexpr int child_saw_locked = 11;
constexpr int child_saw_other_error = 12;

// Forks a child that tries env().lock(path) once and exits with its verdict; returns the verdict.
// The child leaves with _exit: no Boost.Test teardown, no TempDir removal, no buffered output twice.
int lock_verdict_in_child(const std::string& path) {
  pid_t child = ::fork();
  BOOST_REQUIRE_MESSAGE(child >= 0, "fork failed");
  if (child == 0) {
    ::alarm(30);  // a child must never outlive a broken test
    auto lock = env().lock(path);
    if (lock.is_ok()) ::_exit(child_got_lock);
    ::_exit(lock.status().code() == Code::locked ? child_saw_locked : child_saw_other_error);
  }
  int wait_status = 0;
  BOOST_REQUIRE(::waitpid(child, &wait_status, 0) == child);
  BOOST_REQUIRE_MESSAGE(WIFEXITED(wait_status), "child did not exit normally");
  return WEXITSTATUS(wait_status);
}

}  // namespace
}  // namespace keyval

// At global scope: a suite named `posix_env` inside namespace keyval would collide with keyval::posix_env().
BOOST_AUTO_TEST_SUITE(posix_env)

using namespace keyval;

BOOST_AUTO_TEST_CASE(write_at_then_read_at_round_trips) {
  TempDir temp;
  auto file = open_file(temp.file("data"), OpenMode::create_new);
  BOOST_TEST(file->path() == temp.file("data"));
  const std::vector<uint8_t> first = make_payload(1, 5000);
  const std::vector<uint8_t> second = make_payload(2, 300);
  write_all(*file, 0, first);
  write_all(*file, 1000, second);  // overwrite inside
  write_all(*file, 8000, second);  // past the end, leaving a hole
  BOOST_TEST(size_of(*file) == 8300u);

  std::vector<uint8_t> expected = first;
  std::copy(second.begin(), second.end(), expected.begin() + 1000);
  BOOST_TEST((read_exactly(*file, 0, 5000) == expected));
  BOOST_TEST((read_exactly(*file, 5000, 3000) == std::vector<uint8_t>(3000, 0)));  // the hole reads as zeros
  BOOST_TEST((read_exactly(*file, 8000, 300) == second));

  // Another descriptor sees the same bytes.
  auto reader = open_file(temp.file("data"), OpenMode::read_only);
  BOOST_TEST((read_exactly(*reader, 1000, 300) == second));
}

BOOST_AUTO_TEST_CASE(read_past_end_returns_fewer_bytes) {
  TempDir temp;
  auto file = open_file(temp.file("short"), OpenMode::create_new);
  const std::vector<uint8_t> bytes = make_payload(3, 100);
  write_all(*file, 0, bytes);

  std::vector<uint8_t> buffer(64, 0xEE);
  auto spanning = file->read_at(80, buffer.data(), buffer.size());
  BOOST_REQUIRE(spanning.is_ok());
  BOOST_TEST(spanning.value() == 20u);
  BOOST_TEST((std::vector<uint8_t>(buffer.begin(), buffer.begin() + 20) ==
              std::vector<uint8_t>(bytes.begin() + 80, bytes.end())));

  auto at_end = file->read_at(100, buffer.data(), buffer.size());
  BOOST_REQUIRE(at_end.is_ok());
  BOOST_TEST(at_end.value() == 0u);
  auto beyond = file->read_at(1 << 20, buffer.data(), buffer.size());
  BOOST_REQUIRE(beyond.is_ok());
  BOOST_TEST(beyond.value() == 0u);
}

BOOST_AUTO_TEST_CASE(truncate_cuts_bytes_and_extends_with_zeros) {
  TempDir temp;
  auto file = open_file(temp.file("cut"), OpenMode::create_new);
  const std::vector<uint8_t> bytes = make_payload(4, 4096);
  write_all(*file, 0, bytes);

  require_ok(file->truncate(1000));
  BOOST_TEST(size_of(*file) == 1000u);
  std::vector<uint8_t> buffer(4096);
  auto read = file->read_at(0, buffer.data(), buffer.size());
  BOOST_REQUIRE(read.is_ok());
  BOOST_TEST(read.value() == 1000u);
  BOOST_TEST((std::vector<uint8_t>(buffer.begin(), buffer.begin() + 1000) ==
              std::vector<uint8_t>(bytes.begin(), bytes.begin() + 1000)));

  require_ok(file->truncate(3000));  // growing: the cut bytes do not come back
  BOOST_TEST(size_of(*file) == 3000u);
  BOOST_TEST((read_exactly(*file, 1000, 2000) == std::vector<uint8_t>(2000, 0)));

  require_ok(file->truncate(0));
  BOOST_TEST(size_of(*file) == 0u);
}

BOOST_AUTO_TEST_CASE(preallocate_makes_size_at_least_requested_and_new_bytes_read_as_zero) {
  TempDir temp;
  auto file = open_file(temp.file("segment"), OpenMode::create_new);
  const std::vector<uint8_t> bytes = make_payload(5, 100);
  write_all(*file, 0, bytes);

  const uint64_t requested = (1u << 20) + 123;
  require_ok(file->preallocate(requested));
  const uint64_t size = size_of(*file);
  BOOST_TEST(size >= requested);
  BOOST_TEST((read_exactly(*file, 0, 100) == bytes));  // existing bytes are kept
  BOOST_TEST((read_exactly(*file, 100, size - 100) == std::vector<uint8_t>(size - 100, 0)));

  // Writing inside the preallocated range does not change the size.
  write_all(*file, 5000, bytes);
  BOOST_TEST(size_of(*file) == size);
  BOOST_TEST((read_exactly(*file, 5000, 100) == bytes));

  // Preallocating less than the current size never shrinks the file.
  require_ok(file->preallocate(10));
  BOOST_TEST(size_of(*file) == size);
}

BOOST_AUTO_TEST_CASE(sync_data_and_sync_dir_succeed) {
  TempDir temp;
  auto file = open_file(temp.file("durable"), OpenMode::create_new);
  write_all(*file, 0, make_payload(6, 4096));
  require_ok(file->sync_data());
  require_ok(env().sync_dir(temp.path()));

  Status missing = env().sync_dir(temp.file("no-such-dir"));
  BOOST_TEST(missing.code() == Code::not_found);
  BOOST_TEST(contains(missing.message(), temp.file("no-such-dir")));
}

BOOST_AUTO_TEST_CASE(list_is_sorted_and_excludes_dot_entries) {
  TempDir temp;
  for (const char* name : {"b.wal", "a.wal", "c", "B", ".hidden"}) {
    open_file(temp.file(name), OpenMode::create_new);
  }
  require_ok(env().create_dir(temp.file("subdir")));
  const std::vector<std::string> expected = {".hidden", "B", "a.wal", "b.wal", "c", "subdir"};
  BOOST_TEST(list(temp.path()) == expected, boost::test_tools::per_element());

  TempDir empty;
  BOOST_TEST(list(empty.path()).empty());

  auto missing = env().list(temp.file("no-such-dir"));
  BOOST_REQUIRE(!missing.is_ok());
  BOOST_TEST(missing.status().code() == Code::not_found);
}

BOOST_AUTO_TEST_CASE(rename_moves_the_file_and_its_contents) {
  TempDir temp;
  const std::vector<uint8_t> bytes = make_payload(7, 512);
  write_all(*open_file(temp.file("from.tmp"), OpenMode::create_new), 0, bytes);
  write_all(*open_file(temp.file("to"), OpenMode::create_new), 0, make_payload(8, 16));

  require_ok(env().rename(temp.file("from.tmp"), temp.file("to")));  // replaces the target
  BOOST_TEST(!env().exists(temp.file("from.tmp")));
  BOOST_TEST(env().exists(temp.file("to")));
  auto moved = open_file(temp.file("to"), OpenMode::read_only);
  BOOST_TEST(size_of(*moved) == 512u);
  BOOST_TEST((read_exactly(*moved, 0, 512) == bytes));

  Status missing = env().rename(temp.file("ghost"), temp.file("other"));
  BOOST_TEST(missing.code() == Code::not_found);
  BOOST_TEST(contains(missing.message(), temp.file("ghost")));
}

BOOST_AUTO_TEST_CASE(remove_deletes_the_file) {
  TempDir temp;
  open_file(temp.file("doomed"), OpenMode::create_new);
  BOOST_TEST(env().exists(temp.file("doomed")));
  require_ok(env().remove(temp.file("doomed")));
  BOOST_TEST(!env().exists(temp.file("doomed")));
  BOOST_TEST(list(temp.path()).empty());

  Status again = env().remove(temp.file("doomed"));
  BOOST_TEST(again.code() == Code::not_found);
  BOOST_TEST(contains(again.message(), temp.file("doomed")));
}

BOOST_AUTO_TEST_CASE(create_dir_makes_nested_directories_and_is_idempotent) {
  TempDir temp;
  const std::string nested = temp.file("a/b/c");
  BOOST_TEST(!env().exists(temp.file("a")));
  require_ok(env().create_dir(nested));
  BOOST_TEST(env().exists(temp.file("a/b/c")));
  BOOST_TEST(list(temp.file("a")) == std::vector<std::string>{"b"}, boost::test_tools::per_element());

  require_ok(env().create_dir(nested));  // again: ok
  require_ok(env().create_dir(temp.file("a/b")));  // an existing parent: ok
  require_ok(env().create_dir(temp.file("a/b/d/")));  // trailing separator
  BOOST_TEST(env().exists(temp.file("a/b/d")));

  // A file in the way is not a directory.
  open_file(temp.file("plain"), OpenMode::create_new);
  Status over_file = env().create_dir(temp.file("plain"));
  BOOST_TEST(!over_file.is_ok());
  BOOST_TEST(contains(over_file.message(), temp.file("plain")));
  BOOST_TEST(!env().create_dir(temp.file("plain/below")).is_ok());
  BOOST_TEST(env().create_dir("").code() == Code::invalid_argument);
}

BOOST_AUTO_TEST_CASE(open_read_only_of_missing_file_is_not_found_naming_the_path) {
  TempDir temp;
  const std::string path = temp.file("absent.wal");
  auto opened = env().open_file(path, OpenMode::read_only);
  BOOST_REQUIRE(!opened.is_ok());
  BOOST_TEST(opened.status().code() == Code::not_found);
  BOOST_TEST(contains(opened.status().message(), path));
  BOOST_TEST(env().open_file(path, OpenMode::read_write).status().code() == Code::not_found);
  BOOST_TEST(!env().exists(path));  // failing to open created nothing
}

BOOST_AUTO_TEST_CASE(create_new_on_existing_file_fails_and_keeps_it) {
  TempDir temp;
  const std::string path = temp.file("exists");
  const std::vector<uint8_t> bytes = make_payload(9, 64);
  write_all(*open_file(path, OpenMode::create_new), 0, bytes);

  auto again = env().open_file(path, OpenMode::create_new);
  BOOST_REQUIRE(!again.is_ok());
  BOOST_TEST(contains(again.status().message(), path));

  // create_or_open opens it as it is.
  auto reopened = open_file(path, OpenMode::create_or_open);
  BOOST_TEST((read_exactly(*reopened, 0, 64) == bytes));
}

BOOST_AUTO_TEST_CASE(read_only_file_refuses_writes) {
  TempDir temp;
  write_all(*open_file(temp.file("ro"), OpenMode::create_new), 0, make_payload(10, 8));
  auto file = open_file(temp.file("ro"), OpenMode::read_only);
  const std::vector<uint8_t> bytes = make_payload(11, 8);
  Status status = file->write_at(0, bytes.data(), bytes.size());
  BOOST_TEST(!status.is_ok());
  BOOST_TEST(contains(status.message(), temp.file("ro")));
}

BOOST_AUTO_TEST_CASE(parent_directory_of_names_paths_and_the_root) {
  BOOST_TEST(parent_directory("a/b/c") == "a/b");
  BOOST_TEST(parent_directory("a/b/") == "a");
  BOOST_TEST(parent_directory("/top") == "/");
  BOOST_TEST(parent_directory("name") == ".");
}

BOOST_AUTO_TEST_CASE(new_directories_are_created_with_their_parents) {
  TempDir dir;
  const std::string deep = dir.path() + "/x/y/z";
  BOOST_REQUIRE(keyval::posix_env().create_dir(deep).is_ok());
  BOOST_TEST(keyval::posix_env().exists(deep));
  BOOST_TEST(keyval::posix_env().create_dir(deep).is_ok(), "an existing directory is fine");
}

BOOST_AUTO_TEST_CASE(join_path_adds_one_separator) {
  BOOST_TEST(join_path("dir", "name") == "dir/name");
  BOOST_TEST(join_path("dir/", "name") == "dir/name");
  BOOST_TEST(join_path("", "name") == "name");
}

BOOST_AUTO_TEST_CASE(boot_id_is_the_kernels_trimmed_unless_overridden) {
  ::unsetenv("KEYVAL_BOOT_ID");
  std::string kernel = testing::read_text("/proc/sys/kernel/random/boot_id");
  std::string id = env().boot_id();
  if (!kernel.empty()) {
    BOOST_TEST(!id.empty());
    BOOST_TEST(id.find('\n') == std::string::npos);
    BOOST_TEST(contains(kernel, id));
  }
  BOOST_TEST(env().boot_id() == id, "stable within one boot");

  ::setenv("KEYVAL_BOOT_ID", "  boot-a\n", 1);
  BOOST_TEST(env().boot_id() == "boot-a");
  ::setenv("KEYVAL_BOOT_ID", "boot-b", 1);
  BOOST_TEST(env().boot_id() == "boot-b");
  ::unsetenv("KEYVAL_BOOT_ID");
  BOOST_TEST(env().boot_id() == id);
}

BOOST_AUTO_TEST_CASE(second_lock_in_the_same_process_is_locked) {
  TempDir temp;
  const std::string path = temp.file("LOCK");
  auto first = env().lock(path);
  BOOST_REQUIRE_MESSAGE(first.is_ok(), first.status().to_string());
  BOOST_TEST(env().exists(path));  // created when missing

  auto second = env().lock(path);
  BOOST_REQUIRE(!second.is_ok());
  BOOST_TEST(second.status().code() == Code::locked);
  BOOST_TEST(contains(second.status().message(), path));

  first.value().reset();  // release
  auto third = env().lock(path);
  BOOST_TEST(third.is_ok(), third.status().to_string());
}

BOOST_AUTO_TEST_CASE(lock_held_here_is_locked_in_another_process_until_released) {
  TempDir temp;
  const std::string path = temp.file("LOCK");
  auto held = env().lock(path);
  BOOST_REQUIRE_MESSAGE(held.is_ok(), held.status().to_string());

  BOOST_TEST(lock_verdict_in_child(path) == child_saw_locked);

  held.value().reset();  // release; a child forked from now on inherits no copy of the lock
  BOOST_TEST(lock_verdict_in_child(path) == child_got_lock);
  // The child's lock died with it: this process can take it again.
  BOOST_TEST(env().lock(path).is_ok());
}

BOOST_AUTO_TEST_CASE(lock_held_by_another_process_is_locked_here_until_it_exits) {
  TempDir temp;
  const std::string path = temp.file("LOCK");
  int to_child[2];
  int from_child[2];
  BOOST_REQUIRE(::pipe(to_child) == 0);
  BOOST_REQUIRE(::pipe(from_child) == 0);
  pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(30);
    ::close(to_child[1]);
    ::close(from_child[0]);
    auto lock = env().lock(path);
    char verdict = lock.is_ok() ? 'L' : 'E';
    if (::write(from_child[1], &verdict, 1) != 1) ::_exit(child_saw_other_error);
    char ignored;
    (void)::read(to_child[0], &ignored, 1);  // hold the lock until the parent writes or closes
    ::_exit(lock.is_ok() ? child_got_lock : child_saw_other_error);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  char verdict = 0;
  const bool heard = ::read(from_child[0], &verdict, 1) == 1;
  ::close(from_child[0]);

  auto while_child_holds = env().lock(path);
  const Code code_while_held = while_child_holds.status().code();
  ::close(to_child[1]);  // lets the child exit, which releases its lock
  int wait_status = 0;
  BOOST_REQUIRE(::waitpid(child, &wait_status, 0) == child);

  BOOST_REQUIRE(heard);
  BOOST_TEST(verdict == 'L');
  BOOST_TEST(WIFEXITED(wait_status));
  BOOST_TEST(WEXITSTATUS(wait_status) == child_got_lock);
  BOOST_TEST(code_while_held == Code::locked);
  auto after_exit = env().lock(path);
  BOOST_TEST(after_exit.is_ok(), after_exit.status().to_string());
}

BOOST_AUTO_TEST_SUITE_END()
