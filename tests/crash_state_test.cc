// Power cuts, crash-state style (ALICE, OSDI '14): a one-node `keyval node` runs a write load
// through several snapshots, compactions and WAL rotations under an LD_PRELOAD shim that
// records every write, sync and name change it makes under its data directory; then states a
// power cut could have left (tests/support/crash_states.h) are written out and a node started
// on each with another boot id: every write acknowledged before the cut must read back, and
// the recovered store must stop cleanly and verify.
//
// KEYVAL_CRASH_STATES=N runs N states (default crash_states_default; the crash_state_soak
// target runs 2000); KEYVAL_CRASH_SEED picks other random choices within the states.
#define BOOST_TEST_MODULE crash_state_test
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "client/kv_socket.h"
#include "apps/local_cluster.h"
#include "tests/support/crash_states.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using keyval::testing::contains;
using keyval::testing::read_text;
using keyval::testing::run_keyval;
using keyval::testing::TempDir;

namespace keyval {
namespace {

constexpr size_t crash_states_default = 80;
constexpr uint64_t writers = 2;
constexpr uint64_t puts_per_writer = 300;
constexpr size_t value_bytes = 700;  // a WAL record spans sectors: a torn write can cut one
constexpr uint64_t leader_timeout_ms = 20000;
// Small thresholds, so that the traced run takes snapshots, drops log and WAL segments,
// removes old snapshot files, and rotates segments (64 KiB) many times.
const std::vector<std::string> node_flags = {"--snapshot-entries", "50", "--log-tail-entries", "10",
                                             "--wal-segment-bytes", "65536"};
const char* const traced_boot_id = "traced-boot";
constexpr int quiet_polls_max = 3;  // 100 ms polls without a new trace record before the SIGKILL
// What the trace cannot hold: LMDB's reader table lives in a writable mapping of lock.mdb,
// rebuilt at every open; and LMDB writes data.mdb through a shared mapping (MDB_WRITEMAP),
// whose stores the shim records only at a sync (tests/support/io_trace_shim.c): the node is
// killed with stores no sync recorded. Only their sizes are compared. (What the states hold of
// data.mdb is what the syncs recorded: the states a power cut leaves when it loses every store
// since the last sync.)
const std::set<std::string> compared_by_size = {"lmdb/lock.mdb", "lmdb/data.mdb"};

uint64_t monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);  // the shim's clock
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

uint64_t environment_number(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  return text ? std::strtoull(text, nullptr, 10) : fallback;
}

std::string binary() {
  const char* path = std::getenv("KEYVAL_BINARY");
  BOOST_REQUIRE_MESSAGE(path != nullptr, "KEYVAL_BINARY must name the keyval binary (CTest sets it)");
  return path;
}

std::string value_of(const std::string& key) {
  std::string value = key + ":";
  for (size_t i = 0; value.size() < value_bytes; ++i) value += static_cast<char>('a' + (i * 7 + key.size()) % 26);
  return value;
}

std::string log_tail(const std::string& path) {
  std::string log = read_text(path);
  return log.size() > 3000 ? "..." + log.substr(log.size() - 3000) : log;
}

// An acknowledged put and when the client saw the acknowledgement.
struct Acked {
  std::string key;
  uint64_t acked_ns = 0;
};

// --- the traced run ------------------------------------------------------------------------------

struct TracedRun {
  std::vector<Acked> acked;  // in no particular order
  uint64_t unknown = 0;      // puts whose outcome the client did not learn
  std::string data_directory;
  std::string log;
  // Taken right after the clean stop: the trace so far, and a copy of the data directory.
  std::string clean_stop_trace;
  std::string clean_stop_copy;
};

std::unique_ptr<LocalCluster> make_cluster(const std::string& directory) {
  LocalClusterOptions options;
  options.directory = directory;
  options.nodes = 1;
  options.binary = binary();
  options.extra_node_flags = node_flags;
  auto created = LocalCluster::create(options);
  BOOST_REQUIRE_MESSAGE(created.is_ok(), created.status().to_string());
  return std::move(*created);
}

// Starts node 1 with `environment` added to this process's environment for the child only
// (set before fork, restored after; this process has no other thread then).
void start_with(LocalCluster& cluster, const std::map<std::string, std::string>& environment) {
  std::map<std::string, std::optional<std::string>> saved;
  for (const auto& [name, value] : environment) {
    const char* old = std::getenv(name.c_str());
    saved[name] = old ? std::optional<std::string>(old) : std::nullopt;
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  Status started = cluster.start(1);
  for (const auto& [name, old] : saved) {
    if (old) {
      ::setenv(name.c_str(), old->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  BOOST_REQUIRE_MESSAGE(started.is_ok(), started.to_string());
}

// Puts w<writer>-<n> for n in [first, end).
void put_load(const std::vector<Endpoint>& endpoints, uint64_t writer, uint64_t first, uint64_t end,
              std::vector<Acked>& acked, uint64_t& unknown) {
  KvClientOptions options;
  options.operation_timeout_ms = 5000;
  KvClient client(endpoints, options);
  for (uint64_t n = first; n < end; ++n) {
    const std::string key = "w" + std::to_string(writer) + "-" + std::to_string(n);
    auto done = client.put(key, value_of(key));
    const uint64_t now_ns = monotonic_ns();
    if (done.is_ok() && done->status == ClientStatus::ok) {
      acked.push_back(Acked{key, now_ns});
    } else {
      ++unknown;
    }
  }
}

void start_traced(LocalCluster& cluster, const TracedRun& run, const std::string& trace_path) {
  std::string asan_options = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
  start_with(cluster, {{"LD_PRELOAD", KEYVAL_IO_TRACE_SHIM},
                       {IO_TRACE_PATH_VARIABLE, trace_path},
                       {IO_TRACE_DIRECTORY_VARIABLE, run.data_directory},
                       {"KEYVAL_BOOT_ID", traced_boot_id},
                       // A sanitized node: its runtime need not come first for the shim.
                       {"ASAN_OPTIONS", asan_options + (asan_options.empty() ? "" : ":") + "verify_asan_link_order=0"}});
  auto leader = cluster.wait_for_leader(leader_timeout_ms);
  BOOST_REQUIRE_MESSAGE(leader.is_ok(), leader.status().message() + "\n" + log_tail(run.log));
}

// Puts [first, end) of each writer's keys, the writers in parallel.
void run_load(const LocalCluster& cluster, uint64_t first, uint64_t end, TracedRun& run) {
  std::vector<std::vector<Acked>> acked(writers);
  std::vector<uint64_t> unknown(writers, 0);
  std::vector<std::thread> threads;
  for (uint64_t w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] { put_load(cluster.client_endpoints(), w, first, end, acked[w], unknown[w]); });
  }
  for (std::thread& thread : threads) thread.join();
  for (uint64_t w = 0; w < writers; ++w) {
    run.acked.insert(run.acked.end(), acked[w].begin(), acked[w].end());
    run.unknown += unknown[w];
  }
}

// Half the load, a clean stop (LMDB synced, LMDB_STATE "clean"), a restart in the same boot,
// the other half, then SIGKILL: the power cuts come later, in the states. Both processes
// append to one trace.
TracedRun run_traced(const std::string& directory, const std::string& trace_path) {
  TracedRun run;
  auto cluster = make_cluster(directory + "/traced");
  run.data_directory = cluster->data_directory(1);
  run.log = cluster->log_path(1);
  // The traced directory exists before the run: the model takes it as durable.
  std::filesystem::create_directories(run.data_directory);
  start_traced(*cluster, run, trace_path);
  run_load(*cluster, 0, puts_per_writer / 2, run);
  for (const auto& [id, exit] : cluster->stop_all(10000)) {
    BOOST_REQUIRE_MESSAGE(exit.exited && exit.code == 0, "traced node: " << exit.describe() << "\n" << log_tail(run.log));
  }
  run.clean_stop_trace = directory + "/io.trace.at-clean-stop";
  run.clean_stop_copy = directory + "/at-clean-stop";
  std::filesystem::copy_file(trace_path, run.clean_stop_trace);
  std::filesystem::copy(run.data_directory, run.clean_stop_copy, std::filesystem::copy_options::recursive);
  start_traced(*cluster, run, trace_path);
  run_load(*cluster, puts_per_writer / 2, puts_per_writer, run);
  // Killed once its trace is quiet: a call cut by SIGKILL between its return and its record
  // would leave the directory one write ahead of the trace, and the replay check would flake.
  uint64_t quiet_polls = 0, last_bytes = 0;
  for (int poll = 0; poll < quiet_polls_max * 20 && quiet_polls < quiet_polls_max; ++poll) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t bytes = keyval::testing::file_size(trace_path);
    quiet_polls = bytes == last_bytes ? quiet_polls + 1 : 0;
    last_bytes = bytes;
  }
  cluster->signal(1, SIGKILL);
  return run;
}

// --- one state ----------------------------------------------------------------------------------

struct Tally {
  size_t states = 0, started = 0, refused = 0, failed = 0, acked_checked = 0, torn_writes = 0, torn_wal_writes = 0;
  // How the started nodes recovered, from their "recovered ..." log line (storage/recovery.h).
  size_t rebuilt_from_snapshot = 0, rebuilt_from_wal = 0, lmdb_trusted = 0, torn_tails_cut = 0;
  std::map<std::string, size_t> by_kind;
  double slowest_s = 0;
};

// Starts a node on the state and checks it; false (with Boost.Test errors) when it failed.
bool check_state(const keyval::testing::CrashState& state, const keyval::testing::IoTrace& trace,
                 const TracedRun& run, const std::string& directory, Tally& tally) {
  const std::string description = state.describe(trace);
  auto cluster = make_cluster(directory);
  Status written = materialize(state, cluster->data_directory(1));
  BOOST_REQUIRE_MESSAGE(written.is_ok(), written.to_string());
  // Everything the process wrote is what a process crash leaves: the same boot, LMDB trusted.
  // Any other state is a power cut: a new boot, LMDB rebuilt from the base snapshot and the WAL.
  const bool process_crash = state.spec.kind == keyval::testing::StateKind::everything;
  start_with(*cluster, {{"KEYVAL_BOOT_ID", process_crash ? traced_boot_id : "boot-after-" + std::to_string(tally.states)}});

  Result<uint64_t> leader = Status::io_error("not yet");
  const uint64_t deadline = steady_now_ms() + leader_timeout_ms;
  while (cluster->running(1) && steady_now_ms() < deadline) {
    leader = cluster->wait_for_leader(200);
    if (leader.is_ok()) break;
  }
  const std::string log = cluster->log_path(1);
  if (!leader.is_ok()) {
    ++tally.refused;
    std::string refusal = cluster->last_log_line(1, "cannot start");
    BOOST_ERROR("refused (or no leader): " << description << ": " << (refusal.empty() ? leader.status().message() : refusal)
                                           << "\n" << log_tail(log));
    return false;
  }
  ++tally.started;
  const std::string recovered = cluster->last_log_line(1, "recovered ");
  if (contains(recovered, "LMDB rebuilt")) {
    ++(contains(recovered, "from the snapshot") ? tally.rebuilt_from_snapshot : tally.rebuilt_from_wal);
  } else {
    ++tally.lmdb_trusted;
  }
  if (contains(recovered, " torn bytes at ")) ++tally.torn_tails_cut;

  bool ok = true;
  KvClient client(cluster->client_endpoints());
  for (const Acked& acked : run.acked) {
    if (acked.acked_ns >= state.cut_time_ns) continue;
    ++tally.acked_checked;
    auto read = client.get(acked.key);
    if (!read.is_ok() || read->status != ClientStatus::ok || !read->found || read->value != value_of(acked.key)) {
      BOOST_ERROR("acknowledged " << acked.key << " lost: " << description << ": "
                                  << (read.is_ok() ? (read->found ? "another value" : "not found") : read.status().message()));
      ok = false;
      break;
    }
  }
  // Consistent: the node stops cleanly and its WAL, LMDB and base snapshot verify together.
  for (const auto& [id, exit] : cluster->stop_all(10000)) {
    if (!exit.exited || exit.code != 0) {
      BOOST_ERROR("node did not stop cleanly (" << exit.describe() << "): " << description << "\n" << log_tail(log));
      ok = false;
    }
  }
  auto verified = run_keyval("wal verify " + cluster->data_directory(1));
  if (verified.exit_code != 0) {
    BOOST_ERROR("wal verify exit " << verified.exit_code << ": " << description << "\n" << verified.output);
    ok = false;
  }
  return ok;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(crash_states)

BOOST_AUTO_TEST_CASE(every_acknowledged_write_survives_every_crash_state) {
  TempDir dir;
  const auto started_at = std::chrono::steady_clock::now();
  const std::string trace_path = dir.file("io.trace");
  TracedRun run = run_traced(dir.path(), trace_path);
  BOOST_TEST_REQUIRE(run.acked.size() > writers * puts_per_writer / 2, log_tail(run.log));

  // At the clean stop every page LMDB wrote through its map was synced (store sync, then
  // LMDB_STATE "clean"), so the trace up to there replays to data.mdb byte for byte: what
  // trusts LMDB after a power cut holds all of it. (Compared whole only here: the final
  // comparison below cannot, the node being killed with stores no sync recorded.)
  {
    auto at_stop = keyval::testing::IoTrace::read(run.clean_stop_trace, run.data_directory);
    BOOST_REQUIRE_MESSAGE(at_stop.is_ok(), at_stop.status().to_string());
    keyval::testing::CrashStateSpec all;
    all.cut = at_stop->ops().size();
    all.kind = keyval::testing::StateKind::everything;
    bool compared = false;
    Status built = keyval::testing::build_crash_states(*at_stop, {all}, [&](const keyval::testing::CrashState& state) {
      BOOST_TEST(state.files.count("lmdb/data.mdb") == 1u);
      auto differences = compare_with_directory(state, run.clean_stop_copy, {"lmdb/lock.mdb"});
      std::string listed;
      for (const auto& difference : differences) listed += difference + "; ";
      BOOST_TEST(differences.empty(), "at the clean stop the trace does not replay to the directory: " << listed);
      compared = true;
    });
    BOOST_REQUIRE_MESSAGE(built.is_ok(), built.to_string());
    BOOST_TEST(compared);
  }

  auto trace = keyval::testing::IoTrace::read(trace_path, run.data_directory);
  BOOST_REQUIRE_MESSAGE(trace.is_ok(), trace.status().to_string());
  const auto cuts = keyval::testing::interesting_cuts(*trace);
  std::string categories;
  for (const auto& [category, points] : cuts) categories += category + " (" + std::to_string(points.size()) + "), ";
  BOOST_TEST_MESSAGE("traced " << run.acked.size() << " acknowledged puts (" << run.unknown << " unknown): "
                               << trace->ops().size() << " calls, " << trace->file_bytes() << " bytes; " << categories);
  // The run covered what the states must cover: snapshots published and removed, WAL
  // segments prepared, rotated and dropped, LMDB synced.
  for (const char* needed : {"after rename snapshot temporary", "after unlink snapshot", "after rename wal prepared segment",
                             "after unlink wal segment", "after sync lmdb data.mdb", "after sync wal segment",
                             "after rename lmdb state"}) {
    BOOST_TEST(cuts.count(needed) == 1u, "the traced run has no " << needed << "; it has " << categories);
  }
  // LMDB_STATE: "open" at the first start, "clean" at the clean stop, "open" at the restart.
  const size_t marker_renames = cuts.count("after rename lmdb state") ? cuts.at("after rename lmdb state").size() : 0;
  BOOST_TEST(marker_renames >= 3u, "LMDB_STATE replaced " << marker_renames << " times");

  const size_t count = environment_number("KEYVAL_CRASH_STATES", crash_states_default);
  const uint64_t seed = environment_number("KEYVAL_CRASH_SEED", 1);
  auto specs = keyval::testing::choose_states(*trace, count, seed);
  size_t first_lmdb_sync = trace->ops().size();
  for (size_t i = 0; i < trace->ops().size() && first_lmdb_sync == trace->ops().size(); ++i) {
    const auto& op = trace->ops()[i];
    if (op.kind == io_trace_sync && op.path == "lmdb/data.mdb") first_lmdb_sync = i;
  }
  Tally tally;
  Status built = keyval::testing::build_crash_states(*trace, specs, [&](const keyval::testing::CrashState& state) {
    const std::string state_directory = dir.path() + "/state-" + std::to_string(tally.states);
    if (state.spec.cut == trace->ops().size() && state.spec.kind == keyval::testing::StateKind::everything) {
      // The shim saw every call: replaying all of them gives the directory the node left.
      auto differences = compare_with_directory(state, run.data_directory, compared_by_size);
      std::string listed;
      for (const auto& difference : differences) listed += difference + "; ";
      BOOST_TEST(differences.empty(), "the trace does not replay to the traced directory: " << listed);
    }
    if (state.spec.kind == keyval::testing::StateKind::synced && state.spec.cut > first_lmdb_sync) {
      // LMDB synced means LMDB there after a power cut: its name too was durable by then.
      BOOST_TEST(state.files.count("lmdb/data.mdb") == 1u, "no lmdb/data.mdb after LMDB's first sync: "
                                                              << state.describe(*trace));
    }
    const auto state_started = std::chrono::steady_clock::now();
    const bool ok = check_state(state, *trace, run, state_directory, tally);
    if (!ok) ++tally.failed;
    ++tally.states;
    ++tally.by_kind[state_kind_name(state.spec.kind)];
    tally.torn_writes += state.torn_files.size();
    for (const std::string& file : state.torn_files) tally.torn_wal_writes += file.rfind("wal/", 0) == 0 ? 1 : 0;
    tally.slowest_s = std::max(
        tally.slowest_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - state_started).count());
    if (ok) std::filesystem::remove_all(state_directory);
  });
  BOOST_TEST(built.is_ok(), built.to_string());

  std::string kinds;
  for (const auto& [kind, number] : tally.by_kind) kinds += (kinds.empty() ? "" : ", ") + kind + " " + std::to_string(number);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count();
  BOOST_TEST_MESSAGE("crash states: " << tally.states << " (" << kinds << "), started " << tally.started << ", refused "
                                      << tally.refused << ", failed " << tally.failed << "; torn writes " << tally.torn_writes << " (" << tally.torn_wal_writes << " in the WAL); LMDB rebuilt from a snapshot "
                                      << tally.rebuilt_from_snapshot << ", from the WAL alone " << tally.rebuilt_from_wal
                                      << ", trusted " << tally.lmdb_trusted << "; torn WAL tails cut "
                                      << tally.torn_tails_cut << "; acknowledged writes checked " << tally.acked_checked
                                      << "; " << seconds << " s (slowest state " << tally.slowest_s << " s)");
  BOOST_TEST(tally.states == specs.size());
  BOOST_TEST(tally.refused == 0u);
  BOOST_TEST(tally.failed == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
