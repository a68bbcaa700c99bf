// Goal: what the persistence actors acknowledged as durable survives SIGKILL at any moment (mid-write, mid-rotation,
// mid-recovery); a torn tail is cut, while corruption and a full disk stop the node with a clear error.
// Method: fork a child running BlockingPersistence whose appender threads report every durable index on a pipe, SIGKILL
// it at a seeded random moment (or let a fault-injecting Env kill it), then check the directory with recover() alone.
#define BOOST_TEST_MODULE crash_test
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/persistence.h"
#include "storage/recovery.h"
#include "storage/snapshot_file.h"
#include "storage/wal_format.h"
#include "tests/support/child_process.h"
#include "tests/support/crash_ledger.h"
#include "tests/support/fault_env.h"
#include "tests/support/print.h"
#include "tests/support/temp_dir.h"

namespace keyval {


namespace {

using testing::Ack;
using testing::ChildProcess;
using testing::FaultEnv;
using testing::FaultPoint;
using testing::Ledger;
using testing::mix;
using testing::payload_for;
using testing::segment_files;
using testing::TempDir;
using testing::Verified;
using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr uint64_t kibibyte = 1ull << 10;
constexpr int exit_refused_to_start = 42;    // BlockingPersistence::start failed
constexpr int exit_after_error = 43;         // a persist failed; every writer stopped
constexpr uint64_t post_error_attempts = 3;  // requests a writer still sends after its first error
constexpr uint64_t voted_for = 1;

// --- the child -------------------------------------------------------------------------------
// Lines on the pipe: "S first last last_term current_term" (started), "M term" (metadata
// durable), "A index term writer seq" (entry durable), "E writer code message" (a persist
// failed), "F code message" (start refused), "X point" (fault injected), "K actor code message"
// (a persistence actor stopped, with its exit reason), "D" (all writers done).

struct ChildConfig {
  std::string data_directory;
  uint64_t cycle = 1;  // the term of everything this child writes
  uint32_t writers = 4;
  uint32_t records_per_request_max = 3;
  uint64_t segment_bytes = 64 * kibibyte;
  uint64_t sync_every_entries = 500;
  bool snapshots = false;  // take (empty) snapshots so that WAL segments are dropped
  FaultPoint fault = FaultPoint::none;
  uint64_t fault_hit = 1;
  uint64_t wal_space_bytes = 0;  // > 0: the WAL's Env refuses to grow beyond this (full-disk fallback)
};

RecoveryOptions recovery_options(uint64_t segment_bytes) {
  RecoveryOptions options;
  options.wal.segment_bytes = segment_bytes;
  return options;
}

std::string error_line(const std::string& prefix, const Status& status) {
  return prefix + std::to_string(static_cast<int>(status.code())) + " " + status.message();
}

// One appender: persists 1..records_per_request_max entries per request, reports each
// durable one; after its first error it sends post_error_attempts more requests (each must
// fail: the wal_writer stopped) and returns.
void append_loop(BlockingPersistence& node, const ChildConfig& config, uint32_t writer, int fd,
                 std::atomic<bool>& failed) {
  uint64_t attempts_after_error = 0;
  bool seen_error = false;
  for (uint64_t seq = 0;;) {
    uint64_t count = 1 + mix(config.cycle, writer, seq) % config.records_per_request_max;
    std::vector<Record> records;
    for (uint64_t i = 0; i < count; ++i) {
      records.push_back(Record::log(0, config.cycle, payload_for(config.cycle, writer, seq + i)));
    }
    Result<uint64_t> durable = node.persist(records);
    if (durable.is_ok()) {
      for (uint64_t i = 0; i < count; ++i) {
        testing::report_line(fd, "A " + std::to_string(*durable - count + 1 + i) + " " + std::to_string(config.cycle) +
                                     " " + std::to_string(writer) + " " + std::to_string(seq + i));
      }
    } else {
      testing::report_line(fd, error_line("E " + std::to_string(writer) + " ", durable.status()));
      seen_error = true;
      failed = true;
    }
    seq += count;
    if (seen_error && attempts_after_error++ == post_error_attempts) return;
  }
}

// The node's own snapshots, as a raft node takes them: the WAL keeps every entry after the
// base snapshot, so only a snapshot lets whole segments go. The child has no state machine:
// its snapshot files are empty but real (published, then named by a WAL snapshot record),
// and a checkpoint then drops the segments both LMDB and the snapshot cover.
void snapshot_loop(BlockingPersistence& node, const ChildConfig& config, uint64_t recovered_last_index,
                   const std::atomic<bool>& done) {
  SnapshotDirectory directory(posix_env(), join_path(config.data_directory, "snapshots"));
  if (!directory.create().is_ok()) return;
  while (!done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    Result<uint64_t> synced = node.sync();
    if (!synced.is_ok() || *synced <= recovered_last_index) continue;  // only this cycle's entries have a known term
    const uint64_t index = *synced, term = config.cycle;
    auto writer = SnapshotWriter::create(posix_env(), directory.temp_path_for(index, term, "take"), {index, term, {}});
    if (!writer.is_ok() || !(*writer)->finish().is_ok()) return;
    if (!directory.publish(directory.temp_path_for(index, term, "take"), index, term).is_ok()) return;
    if (!node.persist({Record::snapshot(SnapshotMetadata{index, term, {}})}).is_ok()) return;
    if (!node.checkpoint().is_ok()) return;
  }
}

// Reports each persistence actor that stopped, with its exit reason: "K actor code message".
void report_stops(caf::blocking_actor& watcher, const BlockingPersistence& node, int fd) {
  const caf::actor_addr writer = caf::actor_cast<caf::actor_addr>(node.persistence().writer());
  bool waiting = true;
  for (int actor = 0; actor < 2 && waiting; ++actor) {
    watcher.receive(
        [&](caf::down_msg& down) {
          const char* name = down.source == writer ? "wal_writer " : "store_indexer ";
          testing::report_line(fd, error_line(std::string("K ") + name, to_status(down.reason)));
        },
        caf::after(std::chrono::seconds(1)) >> [&] { waiting = false; });
  }
}

int child_main(const ChildConfig& config, int fd) {
  FaultEnv fault_env(posix_env());
  if (config.fault != FaultPoint::none) {
    fault_env.arm(config.fault, config.fault_hit, [fd](FaultPoint point) {
      testing::report_line(fd, std::string("X ") + testing::fault_point_name(point));
      ::raise(SIGKILL);
    });
  }
  if (config.wal_space_bytes > 0) fault_env.limit_space(config.wal_space_bytes);
  caf::actor_system_config system_config;
  add_message_types(system_config);
  caf::actor_system system{system_config};
  PersistenceConfig persistence;
  bool faulty = config.fault != FaultPoint::none || config.wal_space_bytes > 0;
  persistence.env = faulty ? static_cast<Env*>(&fault_env) : &posix_env();
  persistence.data_directory = config.data_directory;
  persistence.recovery = recovery_options(config.segment_bytes);
  persistence.indexer.sync_every_entries = config.sync_every_entries;
  persistence.detached = true;
  persistence.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  auto started = BlockingPersistence::start(system, persistence);
  if (!started.is_ok()) {
    std::fprintf(stderr, "child: refusing to start: %s\n", started.status().to_string().c_str());
    testing::report_line(fd, error_line("F ", started.status()));
    std::fflush(nullptr);
    ::_exit(exit_refused_to_start);  // no shutdown: nothing was started
  }
  BlockingPersistence& node = **started;
  const RecoveredState& state = node.recovered();
  testing::report_line(fd, "S " + std::to_string(state.first_index) + " " + std::to_string(state.last_index) + " " +
                               std::to_string(state.last_term) + " " + std::to_string(state.metadata.current_term));
  caf::scoped_actor watcher{system};  // learns why an actor stopped, as the raft node would
  watcher->monitor(node.persistence().writer());
  watcher->monitor(node.persistence().indexer());
  std::atomic<bool> failed{false};
  Result<uint64_t> metadata = node.persist_metadata(Metadata{config.cycle, voted_for});
  if (!metadata.is_ok()) {
    testing::report_line(fd, error_line("E 0 ", metadata.status()));
    std::fflush(nullptr);
    ::_exit(exit_after_error);
  }
  testing::report_line(fd, "M " + std::to_string(config.cycle));
  std::vector<std::thread> writers;
  for (uint32_t writer = 0; writer < config.writers; ++writer) {
    writers.emplace_back([&, writer] { append_loop(node, config, writer, fd, failed); });
  }
  std::atomic<bool> writers_done{false};
  std::thread snapshots;
  if (config.snapshots) snapshots = std::thread([&] { snapshot_loop(node, config, state.last_index, writers_done); });
  for (std::thread& thread : writers) thread.join();
  writers_done = true;
  if (snapshots.joinable()) snapshots.join();
  report_stops(*watcher, node, fd);
  testing::report_line(fd, "D");
  std::fflush(nullptr);
  ::_exit(failed ? exit_after_error : 0);  // the parent has what it needs; skip the shutdown
}

// --- what the parent saw -------------------------------------------------------------------

struct ChildError {
  uint64_t writer = 0;  // "E": the writer whose request failed
  std::string actor;    // "K": the actor that stopped
  Code code = Code::ok;
  std::string message;
  size_t line = 0;  // position among the child's lines
};

struct Started {
  uint64_t first_index = 0, last_index = 0, last_term = 0, current_term = 0;
};

struct CycleReport {
  uint64_t cycle = 0;
  std::vector<std::pair<size_t, Ack>> acks;  // with their line positions
  std::vector<ChildError> errors;
  std::optional<ChildError> refused;
  std::vector<ChildError> stops;  // persistence actors that stopped, with their exit reasons
  std::optional<Started> started;
  bool metadata_durable = false;
  std::string fault;  // the fault point the child reported reaching
  bool done = false;
  int wait_status = 0;
  bool timed_out = false;
  std::string stderr_text;
};

std::string describe_wait_status(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  return "wait status " + std::to_string(status);
}

bool killed_by_sigkill(const CycleReport& report) {
  return WIFSIGNALED(report.wait_status) && WTERMSIG(report.wait_status) == SIGKILL;
}

CycleReport parse_lines(uint64_t cycle, const std::vector<std::string>& lines) {
  CycleReport report;
  report.cycle = cycle;
  for (size_t position = 0; position < lines.size(); ++position) {
    const std::string& line = lines[position];
    std::istringstream in(line.size() > 2 ? line.substr(2) : std::string());
    char kind = line.empty() ? '?' : line[0];
    if (kind == 'A') {
      Ack ack;
      in >> ack.index >> ack.term >> ack.writer >> ack.seq;
      report.acks.emplace_back(position, ack);
    } else if (kind == 'E' || kind == 'F' || kind == 'K') {
      ChildError error;
      int code = 0;
      if (kind == 'E') in >> error.writer;
      if (kind == 'K') in >> error.actor;
      in >> code;
      error.code = static_cast<Code>(code);
      std::getline(in >> std::ws, error.message);
      error.line = position;
      if (kind == 'E') report.errors.push_back(error);
      if (kind == 'F') report.refused = error;
      if (kind == 'K') report.stops.push_back(error);
    } else if (kind == 'S') {
      Started started;
      in >> started.first_index >> started.last_index >> started.last_term >> started.current_term;
      report.started = started;
    } else if (kind == 'M') {
      report.metadata_durable = true;
    } else if (kind == 'X') {
      in >> report.fault;
    } else if (kind == 'D') {
      report.done = true;
    }
  }
  return report;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  constexpr size_t tail_bytes_max = 4000;
  return all.size() > tail_bytes_max ? "..." + all.substr(all.size() - tail_bytes_max) : all;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- one test's node: its directory, its cycles, its ledger --------------------------------

enum class KillAt {
  after_fork,   // `delay` after fork(): often during start-up and recovery
  after_ready,  // `delay` after the cycle's metadata is durable (or once kill_at_index is acknowledged)
  never,        // wait for the child to die by itself (fault point, error) or time out
};

struct Plan {
  KillAt at = KillAt::after_ready;
  microseconds delay{0};
  uint64_t kill_at_index = 0;  // with after_ready: kill once this index is acknowledged
  milliseconds timeout{10000};
};

Plan kill_after_ready(microseconds delay) {
  return Plan{KillAt::after_ready, delay, 0, milliseconds(10000)};
}

uint64_t base_seed() {
  const char* text = std::getenv("KEYVAL_CRASH_SEED");
  return text != nullptr ? std::strtoull(text, nullptr, 0) : 20240611;
}

class Node {
 public:
  // `directory` empty: a directory in the node's own TempDir.
  Node(const char* test, uint64_t test_number, std::string directory = "")
      : seed_(base_seed() * 1000 + test_number), rng_(seed_), started_(Clock::now()) {
    directory_ = directory.empty() ? temp_.file("node") : directory;
    BOOST_TEST_MESSAGE(test << ": seed " << seed_ << " (KEYVAL_CRASH_SEED=" << base_seed()
                            << " replays the same kill delays, damage and fault points), data directory "
                            << directory_);
  }

  ChildConfig config;  // the template of every cycle's child
  const Ledger& ledger() const { return ledger_; }
  const std::string& directory() const { return directory_; }
  uint64_t cycles() const { return cycle_; }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - started_).count(); }

  microseconds random_delay(microseconds low, microseconds high) {
    return microseconds(std::uniform_int_distribution<int64_t>(low.count(), high.count())(rng_));
  }
  uint64_t random(uint64_t low, uint64_t high) { return std::uniform_int_distribution<uint64_t>(low, high)(rng_); }

  CycleReport run(const Plan& plan) { return run(plan, config); }
  // Runs one child (the next cycle, whose number is the term it writes) and takes in what it
  // acknowledged. A child that started must have recovered every entry acknowledged before.
  CycleReport run(const Plan& plan, ChildConfig child_config) {
    child_config.data_directory = directory_;
    child_config.cycle = ++cycle_;
    std::string stderr_path = temp_.file("child-" + std::to_string(cycle_) + ".stderr");
    CycleReport report;
    {
      ChildProcess child([child_config](int fd) { return child_main(child_config, fd); }, stderr_path);
      bool timed_out = drive(child, plan);
      child.kill();  // no-op for a child that is already gone; reaps and drains either way
      report = parse_lines(child_config.cycle, child.lines());
      report.wait_status = child.wait_status();
      report.timed_out = timed_out;
    }
    report.stderr_text = read_text(stderr_path);
    if (report.started) {
      BOOST_TEST(report.started->last_index >= ledger_.last_index(),
                 "cycle " << cycle_ << ": the child recovered a log ending at " << report.started->last_index
                          << " but index " << ledger_.last_index() << " was acknowledged");
      BOOST_TEST(report.started->current_term >= ledger_.metadata_term());
    }
    std::vector<Ack> acks;
    for (const auto& entry : report.acks) acks.push_back(entry.second);
    size_t problems_before = ledger_.problems().size();
    ledger_.absorb(report.cycle, acks, report.metadata_durable);
    for (size_t i = problems_before; i < ledger_.problems().size(); ++i) {
      BOOST_ERROR("cycle " << cycle_ << ": " << ledger_.problems()[i]);
    }
    acks_total_ += report.acks.size();
    return report;
  }

  Verified verify() {
    return testing::verify_directory(directory_, recovery_options(config.segment_bytes), ledger_, voted_for);
  }

  std::string summary() const {
    std::ostringstream out;
    out << cycle_ << " cycles, " << acks_total_ << " entries acknowledged (" << ledger_.size()
        << " distinct indices), log ends at " << ledger_.last_index() << ", " << seconds() << " s";
    return out.str();
  }

 private:
  // Reads the child's lines until the plan says to kill it. True when it timed out.
  bool drive(ChildProcess& child, const Plan& plan) {
    auto deadline = child.started() + plan.timeout;
    if (plan.at == KillAt::after_fork) {
      child.read_until(child.started() + plan.delay);
      return false;
    }
    if (plan.at == KillAt::never) return !child.wait(deadline);
    auto ready = child.read_until(
        deadline, [](const std::string& line) { return line[0] == 'M' || line[0] == 'F' || line[0] == 'E'; });
    if (ready == ChildProcess::ReadEnd::deadline) return true;
    if (ready != ChildProcess::ReadEnd::stopped) return false;
    if (plan.kill_at_index == 0) {
      child.read_until(Clock::now() + plan.delay);
      return false;
    }
    auto reached = child.read_until(deadline, [&](const std::string& line) {
      return line[0] == 'A' && std::strtoull(line.c_str() + 2, nullptr, 10) >= plan.kill_at_index;
    });
    return reached == ChildProcess::ReadEnd::deadline;
  }

  TempDir temp_;
  std::string directory_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  Clock::time_point started_;
  uint64_t cycle_ = 0;
  uint64_t acks_total_ = 0;
  Ledger ledger_;
};

// The child ran normally until the parent's SIGKILL.
void expect_clean_kill(const CycleReport& report) {
  BOOST_TEST(!report.timed_out, "cycle " << report.cycle << " timed out\n" << report.stderr_text);
  BOOST_TEST(killed_by_sigkill(report), "cycle " << report.cycle << ": " << describe_wait_status(report.wait_status)
                                                 << "\n"
                                                 << report.stderr_text);
  BOOST_TEST(!report.refused.has_value(),
             "cycle " << report.cycle << ": start refused: " << (report.refused ? report.refused->message : "") << "\n"
                      << report.stderr_text);
  BOOST_TEST(report.stops.empty(), "cycle " << report.cycle << ": a persistence actor stopped\n" << report.stderr_text);
  BOOST_TEST(report.errors.empty(), "cycle " << report.cycle << ": a persist failed: "
                                             << (report.errors.empty() ? "" : report.errors.front().message) << "\n"
                                             << report.stderr_text);
}

// --- helpers that look at WAL files ---------------------------------------------------------

std::string wal_directory(const std::string& data_directory) {
  return data_directory + "/wal";
}


struct RecordSpan {
  uint64_t offset = 0;
  wal_format::RecordHeader header;
};

// The valid records of a segment file, from its header to the first record that does not
// validate; `*end` is where they stop.
std::vector<RecordSpan> valid_records(const std::vector<uint8_t>& file, const std::string& name, uint64_t* end) {
  uint64_t id = 0, first = 0;
  BOOST_TEST_REQUIRE(wal_format::parse_segment_file_name(name, &id, &first));
  uint32_t salt = wal_format::segment_salt(id);
  std::vector<RecordSpan> records;
  uint64_t offset = wal_format::segment_header_bytes;
  while (offset + wal_format::record_header_bytes <= file.size()) {
    RecordSpan span{offset, {}};
    auto check = wal_format::check_record(file.data() + offset, file.size() - offset, wal_format::SegmentCodec{salt}, &span.header);
    if (check != wal_format::RecordCheck::valid) break;
    records.push_back(span);
    offset += wal_format::record_bytes(span.header.payload_bytes);
  }
  *end = offset;
  return records;
}

// Writes `bytes` at `offset` of an existing file, leaving the rest as it is.
void write_at(const std::string& path, uint64_t offset, const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> file = testing::read_file(path);
  if (file.size() < offset + bytes.size()) file.resize(offset + bytes.size(), 0);
  std::copy(bytes.begin(), bytes.end(), file.begin() + static_cast<std::ptrdiff_t>(offset));
  testing::write_file(path, file);
}

// --- helpers for the full disk ------------------------------------------------------------

// A tmpfs of `size` at `path`, unmounted on scope exit; mounted() is false without privilege.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, const std::string& size, bool attempt = true) : path_(path) {
    std::filesystem::create_directories(path);
    if (!attempt) return;
    std::string command = "mount -t tmpfs -o size=" + size + " tmpfs '" + path + "' 2>/dev/null";
    mounted_ = std::system(command.c_str()) == 0;
  }
  ~TmpfsMount() {
    if (!mounted_) return;
    if (std::system(("umount '" + path_ + "'").c_str()) != 0) {
      int ignored = std::system(("umount -l '" + path_ + "'").c_str());
      (void)ignored;
    }
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  bool mounted() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

uint64_t free_bytes(const std::string& path) {
  struct statvfs info {};
  BOOST_TEST_REQUIRE(::statvfs(path.c_str(), &info) == 0);
  return static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
}

// Fills the file system of `path` with a file until `leave_bytes` are free (or it is full).
void fill_until(const std::string& path, uint64_t leave_bytes) {
  uint64_t free = free_bytes(std::filesystem::path(path).parent_path().string());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::vector<char> chunk(64 * kibibyte, 'f');
  for (uint64_t written = 0; written + leave_bytes < free;) {
    uint64_t bytes = std::min<uint64_t>(chunk.size(), free - leave_bytes - written);
    if (!out.write(chunk.data(), static_cast<std::streamsize>(bytes))) break;
    written += bytes;
  }
}

BOOST_AUTO_TEST_SUITE(crash)

BOOST_AUTO_TEST_CASE(acknowledged_entries_survive_sigkill) {
  Node node("acknowledged_entries_survive_sigkill", 1);
  for (int cycle = 0; cycle < 3; ++cycle) {
    CycleReport report = node.run(kill_after_ready(node.random_delay(milliseconds(5), milliseconds(80))));
    expect_clean_kill(report);
    node.verify();
  }
  BOOST_TEST(node.ledger().size() > 0u, "the children acknowledged nothing: the test checked nothing");
  BOOST_TEST_MESSAGE("acknowledged_entries_survive_sigkill: " << node.summary());
}

BOOST_AUTO_TEST_CASE(many_restart_cycles_lose_nothing) {
  Node node("many_restart_cycles_lose_nothing", 2);
  constexpr int cycles = 20;
  int cycles_with_acks = 0;
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    CycleReport report = node.run(kill_after_ready(node.random_delay(milliseconds(5), milliseconds(80))));
    expect_clean_kill(report);
    if (!report.acks.empty()) ++cycles_with_acks;
    // Every other cycle the next child recovers the crashed directory itself; its start
    // line is checked, and the parent's later check covers what that recovery did.
    if (cycle % 2 == 0) node.verify();
  }
  BOOST_TEST(cycles_with_acks >= cycles / 2, cycles_with_acks << " of " << cycles << " cycles acknowledged entries");
  BOOST_TEST_MESSAGE("many_restart_cycles_lose_nothing: " << node.summary() << ", " << cycles_with_acks
                                                          << " cycles acknowledged entries");
}

BOOST_AUTO_TEST_CASE(data_integrity_after_crashes) {
  Node node("data_integrity_after_crashes", 3);
  node.config.segment_bytes = 16 * kibibyte;  // rotate often
  node.config.sync_every_entries = 200;       // LMDB syncs often
  node.config.snapshots = true;               // and snapshots let the WAL drop old segments
  uint64_t acked_only_in_lmdb = 0;
  uint64_t entries_checked = 0;
  for (int cycle = 0; cycle < 10; ++cycle) {
    CycleReport report = node.run(kill_after_ready(node.random_delay(milliseconds(20), milliseconds(80))));
    expect_clean_kill(report);
    // The directory exactly as the crash left it passes the read-only check ...
    auto checked = verify_data_directory(posix_env(), node.directory());
    BOOST_TEST(checked.is_ok(), "verify_data_directory after the crash: " << checked.status().to_string());
    // ... and recovery restores every entry of every cycle, from LMDB where the WAL let go of it.
    Verified verified = node.verify();
    acked_only_in_lmdb = std::max(acked_only_in_lmdb, verified.acked_only_in_lmdb);
    entries_checked += verified.lmdb_entries_checked + verified.wal_entries_checked;
  }
  BOOST_TEST(acked_only_in_lmdb > 0u, "no acknowledged entry was held by LMDB alone: segments were never dropped");
  BOOST_TEST_MESSAGE("data_integrity_after_crashes: " << node.summary() << ", " << entries_checked
                                                      << " entry reads checked, up to " << acked_only_in_lmdb
                                                      << " acknowledged entries held by LMDB alone");
}

BOOST_AUTO_TEST_CASE(torn_tail_planted_after_crash_is_cut) {
  Node node("torn_tail_planted_after_crash_is_cut", 4);
  for (int cycle = 0; cycle < 5; ++cycle) {
    CycleReport report = node.run(kill_after_ready(node.random_delay(milliseconds(5), milliseconds(60))));
    expect_clean_kill(report);
    std::vector<std::string> segments = segment_files(wal_directory(node.directory()));
    BOOST_TEST_REQUIRE(!segments.empty());
    const std::string& newest = segments.back();
    const std::string path = wal_directory(node.directory()) + "/" + newest;
    uint64_t end = 0;
    std::vector<RecordSpan> records = valid_records(testing::read_file(path), newest, &end);
    // Half the cycles a genuine record cut short, half random garbage.
    std::vector<uint8_t> torn;
    if (cycle % 2 == 0 && !records.empty()) {
      const RecordSpan& last = records.back();
      uint64_t id = 0, first = 0;
      wal_format::parse_segment_file_name(newest, &id, &first);
      std::vector<uint8_t> payload = payload_for(node.cycles(), 99, cycle);
      std::vector<uint8_t> record(wal_format::record_bytes(payload.size()));
      wal_format::encode_record(wal_format::SegmentCodec{wal_format::segment_salt(id)}, EntryType::log, last.header.index + 1, node.cycles(),
                                payload.data(), payload.size(), record.data());
      // Cut inside header or payload: a cut in the zero padding would leave a whole, valid record.
      record.resize(
          node.random(wal_format::record_header_bytes / 2, wal_format::record_header_bytes + payload.size() - 1));
      torn = record;
    } else {
      torn = testing::make_payload(node.random(1, 1u << 30), node.random(9, 300));
      torn[0] |= 0x80;  // never an all-zero (unused) header
    }
    write_at(path, end, torn);
    Verified verified = node.verify();
    BOOST_TEST(verified.report.torn_bytes_cut > 0u,
               "cycle " << report.cycle << ": planted " << torn.size() << " bytes at " << newest << " offset " << end);
    BOOST_TEST(verified.report.torn_segment == newest);
    BOOST_TEST(verified.report.torn_offset == end);
    BOOST_TEST_MESSAGE("cycle " << report.cycle << ": planted " << torn.size() << " torn bytes at " << newest
                                << " offset " << end << ", recovery cut " << verified.report.torn_bytes_cut);
  }
  BOOST_TEST(node.ledger().size() > 0u);
  BOOST_TEST_MESSAGE("torn_tail_planted_after_crash_is_cut: " << node.summary());
}

BOOST_AUTO_TEST_CASE(concurrent_appenders_lose_nothing) {
  Node node("concurrent_appenders_lose_nothing", 5);
  node.config.writers = 8;
  node.config.records_per_request_max = 4;
  std::map<uint64_t, uint64_t> acks_by_writer;
  for (int cycle = 0; cycle < 6; ++cycle) {
    CycleReport report = node.run(kill_after_ready(node.random_delay(milliseconds(10), milliseconds(80))));
    expect_clean_kill(report);
    for (const auto& entry : report.acks) ++acks_by_writer[entry.second.writer];
    node.verify();
  }
  BOOST_TEST(acks_by_writer.size() == node.config.writers, "writers with acknowledged entries");
  std::ostringstream counts;
  for (const auto& [writer, count] : acks_by_writer) counts << " " << writer << ":" << count;
  BOOST_TEST_MESSAGE("concurrent_appenders_lose_nothing: " << node.summary() << ", per writer" << counts.str());
}

BOOST_AUTO_TEST_CASE(rapid_restarts_lose_nothing) {
  Node node("rapid_restarts_lose_nothing", 6);
  constexpr int cycles = 50;
  int before_start = 0, during_start = 0, after_metadata = 0;
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    // Odd cycles: 1-5 ms after fork, mostly during start-up and recovery. Even cycles: 1-5 ms
    // after the child is ready, so that each cycle leaves a little to recover.
    Plan plan = kill_after_ready(node.random_delay(milliseconds(1), milliseconds(5)));
    if (cycle % 2 == 1) plan.at = KillAt::after_fork;
    CycleReport report = node.run(plan);
    expect_clean_kill(report);
    if (!report.started) {
      ++before_start;
    } else if (!report.metadata_durable) {
      ++during_start;
    } else {
      ++after_metadata;
    }
    // Mostly the next child recovers what this one left, however far its recovery got.
    if (cycle % 5 == 0) node.verify();
  }
  BOOST_TEST(node.ledger().size() > 0u);
  BOOST_TEST_MESSAGE("rapid_restarts_lose_nothing: " << node.summary() << "; killed before the recovered state was "
                                                     << "reported " << before_start << ", before metadata was durable "
                                                     << during_start << ", while appending " << after_metadata);
}

BOOST_AUTO_TEST_CASE(flipped_byte_in_closed_segment_refuses_start) {
  Node node("flipped_byte_in_closed_segment_refuses_start", 7);
  node.config.segment_bytes = 16 * kibibyte;
  node.config.sync_every_entries = 1ull << 40;  // LMDB never syncs on its own: no segment is dropped
  Plan plan = kill_after_ready(microseconds(0));
  plan.kill_at_index = 500;  // several 16 KiB segments
  expect_clean_kill(node.run(plan));
  Verified before = node.verify();
  BOOST_TEST_REQUIRE(before.wal_segments >= 3u);
  BOOST_TEST_REQUIRE(before.wal_first_index == 1u);

  std::vector<std::string> segments = segment_files(wal_directory(node.directory()));
  const std::string name = segments[node.random(0, segments.size() - 2)];  // never the newest
  const std::string path = wal_directory(node.directory()) + "/" + name;
  std::vector<uint8_t> file = testing::read_file(path);
  uint64_t end = 0;
  std::vector<RecordSpan> logs;
  for (const RecordSpan& span : valid_records(file, name, &end)) {
    if (span.header.type == EntryType::log) logs.push_back(span);
  }
  BOOST_TEST_REQUIRE(!logs.empty());
  const RecordSpan& victim = logs[node.random(0, logs.size() - 1)];
  uint64_t flipped = victim.offset + wal_format::record_header_bytes + node.random(0, victim.header.payload_bytes - 1);
  file[flipped] ^= static_cast<uint8_t>(1u << node.random(0, 7));
  testing::write_file(path, file);
  BOOST_TEST_MESSAGE("flipped a bit of byte " << flipped << " in the payload of entry " << victim.header.index
                                              << " (record at offset " << victim.offset << ") of closed segment "
                                              << name);

  Plan wait_for_exit;
  wait_for_exit.at = KillAt::never;
  CycleReport report = node.run(wait_for_exit);
  BOOST_TEST(!report.timed_out);
  BOOST_TEST((WIFEXITED(report.wait_status) && WEXITSTATUS(report.wait_status) == exit_refused_to_start),
             describe_wait_status(report.wait_status) << "\n"
                                                      << report.stderr_text);
  BOOST_TEST_REQUIRE(report.refused.has_value(), "the child started on a corrupt WAL\n" << report.stderr_text);
  const std::string offset = "offset " + std::to_string(victim.offset);
  BOOST_TEST(report.refused->code == Code::corruption, report.refused->message);
  BOOST_TEST(contains(report.refused->message, name), report.refused->message);
  BOOST_TEST(contains(report.refused->message, offset), report.refused->message);
  BOOST_TEST(contains(report.stderr_text, name), report.stderr_text);
  BOOST_TEST(contains(report.stderr_text, offset), report.stderr_text);
  BOOST_TEST((!report.started && !report.metadata_durable && report.acks.empty()), "the refused node served requests");
  BOOST_TEST((testing::read_file(path) == file), "a refused start changed the damaged segment");
  auto again = recover(posix_env(), node.directory(), recovery_options(node.config.segment_bytes));
  BOOST_TEST(!again.is_ok(), "the storage layer accepts the corrupt WAL");
  if (!again.is_ok()) BOOST_TEST(again.status().code() == Code::corruption);
  BOOST_TEST_MESSAGE("flipped_byte_in_closed_segment_refuses_start: refused with: " << report.refused->message);
}

BOOST_AUTO_TEST_CASE(crash_during_segment_rotation_loses_nothing) {
  Node node("crash_during_segment_rotation_loses_nothing", 8);
  node.config.segment_bytes = 16 * kibibyte;  // a rotation every ~100 entries
  node.config.sync_every_entries = 200;       // and segment drops
  node.config.snapshots = true;
  std::ostringstream points;
  for (int round = 0; round < 3; ++round) {
    for (FaultPoint point : testing::all_fault_points()) {
      ChildConfig config = node.config;
      config.fault = point;
      // Round 0 includes the first hit (often the start-up's own preparation); later rounds land in later rotations.
      config.fault_hit = point == FaultPoint::torn_write ? node.random(2, 60) : node.random(round + 1, round + 4);
      Plan wait_for_fault;
      wait_for_fault.at = KillAt::never;
      CycleReport report = node.run(wait_for_fault, config);
      const char* name = testing::fault_point_name(point);
      BOOST_TEST(report.fault == name, "cycle " << report.cycle << ": fault point " << name << " hit "
                                                << config.fault_hit << " not reached\n"
                                                << report.stderr_text);
      BOOST_TEST(killed_by_sigkill(report), describe_wait_status(report.wait_status) << "\n" << report.stderr_text);
      BOOST_TEST(report.errors.empty(),
                 "cycle " << report.cycle << ": " << (report.errors.empty() ? "" : report.errors.front().message));
      points << " " << name << "#" << config.fault_hit << "(" << report.acks.size() << " acks)";
      // Round 0: the parent recovers each crash state. Later rounds: the read-only check only,
      // and the next child recovers the crash state itself.
      if (round == 0) {
        node.verify();
      } else {
        auto checked = verify_data_directory(posix_env(), node.directory());
        BOOST_TEST(checked.is_ok(), "after " << name << ": " << checked.status().to_string());
      }
    }
  }
  // Restart works and appends go on after all that.
  CycleReport report = node.run(kill_after_ready(node.random_delay(milliseconds(20), milliseconds(60))));
  expect_clean_kill(report);
  BOOST_TEST(!report.acks.empty(), "the node restarted after rotation crashes acknowledges nothing");
  node.verify();
  BOOST_TEST_MESSAGE("crash_during_segment_rotation_loses_nothing: " << node.summary() << "; points" << points.str());
}

BOOST_AUTO_TEST_CASE(full_disk_is_a_clear_error_and_loses_nothing) {
  TempDir temp;
  const std::string mount_point = temp.file("tmpfs");
  // KEYVAL_CRASH_NO_TMPFS=1 forces the fallback that needs no privilege.
  TmpfsMount mount(mount_point, "4m", std::getenv("KEYVAL_CRASH_NO_TMPFS") == nullptr);
  Node node("full_disk_is_a_clear_error_and_loses_nothing", 9, mount.mounted() ? mount_point + "/node" : "");
  node.config.sync_every_entries = 1ull << 40;  // keep every segment: the WAL grows until the disk is full
  const std::string filler = mount_point + "/filler";
  ChildConfig config = node.config;
  if (mount.mounted()) {
    // Only the WAL lives on the small file system: LMDB (lmdb/ is a symlink) is elsewhere,
    // so it is the WAL's allocation, write or sync that meets ENOSPC.
    std::filesystem::create_directories(node.directory());
    std::filesystem::create_directories(temp.file("lmdb"));
    std::filesystem::create_directory_symlink(temp.file("lmdb"), node.directory() + "/lmdb");
    fill_until(filler, 640 * kibibyte);
    BOOST_TEST_MESSAGE("4 MiB tmpfs at " << mount_point << " holds the WAL, " << free_bytes(mount_point)
                                         << " bytes left free");
  } else {
    config.wal_space_bytes = 640 * kibibyte;
    BOOST_TEST_MESSAGE(
        "no tmpfs (mount failed: no privilege? or KEYVAL_CRASH_NO_TMPFS is set): falling back to a "
        "FaultEnv that refuses WAL growth with no_space after "
        << config.wal_space_bytes << " bytes");
  }
  Plan wait_for_exit;
  wait_for_exit.at = KillAt::never;
  wait_for_exit.timeout = milliseconds(20000);
  CycleReport report = node.run(wait_for_exit, config);
  BOOST_TEST_REQUIRE(!report.timed_out, "the disk never filled up\n" << report.stderr_text);
  BOOST_TEST((WIFEXITED(report.wait_status) && WEXITSTATUS(report.wait_status) == exit_after_error),
             describe_wait_status(report.wait_status) << "\n"
                                                      << report.stderr_text);
  BOOST_TEST_REQUIRE(!report.errors.empty());
  BOOST_TEST(node.ledger().size() > 0u);
  // Fail-stop: from the failure on, every request is answered with the full disk, by name.
  auto names_full_disk = [](const ChildError& error) {
    return error.code == Code::no_space &&
           (contains(error.message, "No space left on device") || contains(error.message, "ENOSPC"));
  };
  for (const ChildError& error : report.errors) {
    BOOST_TEST(names_full_disk(error), "writer " << error.writer << ": " << code_name(error.code) << ": "
                                                 << error.message);
  }
  // No writer had a request acknowledged after its error.
  for (const ChildError& error : report.errors) {
    for (const auto& [position, ack] : report.acks) {
      BOOST_TEST(!(ack.writer == error.writer && position > error.line),
                 "writer " << error.writer << " got index " << ack.index << " acknowledged after its error");
    }
  }
  BOOST_TEST_MESSAGE("full disk after " << node.ledger().size() << " acknowledged entries; requests saw "
                                        << code_name(report.errors.front().code) << ": "
                                        << report.errors.front().message);
  // Space back: everything acknowledged is there, and the node starts and appends again.
  std::filesystem::remove(filler);
  node.verify();
  CycleReport again = node.run(kill_after_ready(node.random_delay(milliseconds(10), milliseconds(40))));
  expect_clean_kill(again);
  BOOST_TEST(!again.acks.empty());
  node.verify();
  BOOST_TEST_MESSAGE("full_disk_is_a_clear_error_and_loses_nothing: " << node.summary());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace keyval
