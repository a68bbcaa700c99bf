// Goal: snapshots, InstallSnapshot, backups and restores keep their promises on real processes:
// a follower that missed two snapshots catches up, also when the leader dies mid-transfer; the
// leader serves while it sends; a backup under load holds every write acknowledged before it; a
// damaged backup is refused.
// Method: three `keyval node` processes on 127.0.0.1 (apps/local_cluster.h) with small snapshot
// thresholds, stopped and killed by PID; assertions on status views, state hashes, node logs,
// the `keyval snapshot` commands' output, and every acknowledged write read back.
#define BOOST_TEST_MODULE snapshot_cluster_test
#include <signal.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/kv_socket.h"
#include "apps/local_cluster.h"
#include "storage/env.h"
#include "storage/snapshot_file.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using keyval::testing::cluster_options;
using keyval::testing::contains;
using keyval::testing::create_cluster;
using keyval::testing::json_field;
using keyval::testing::load_options;
using keyval::testing::logs_of;
using keyval::testing::read_text;
using keyval::testing::Run;
using keyval::testing::run_keyval;
using keyval::testing::TempDir;
using keyval::testing::wait_for_leader;

namespace keyval {
namespace {

constexpr uint64_t catch_up_timeout_ms = 30000;
constexpr uint64_t log_poll_ms = 1;  // how often a node's log is read while waiting for a line
// The large state of the transfer tests: big enough that sending it takes a measurable time
// (tens of 1 MiB chunks), small enough to write in seconds on a busy machine.
constexpr uint64_t big_value_bytes = 256u << 10;
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t big_state_bytes = 16u << 20;  // sanitized nodes (CI) run several times slower
#else
constexpr uint64_t big_state_bytes = 40u << 20;
#endif
// Their nodes snapshot every 8 MiB of payload (not by entry count: the small writes during a
// transfer do not start a new snapshot) and keep a tail of 10 entries.
const std::vector<std::string> big_state_flags = {
    "--snapshot-entries", "0", "--snapshot-bytes", std::to_string(8u << 20), "--log-tail-entries", "10"};

void sleep_ms(uint64_t ms) {
  ::usleep(static_cast<useconds_t>(ms * 1000));
}

// The number that follows `prefix` in `line`; 0 when the prefix is absent.
uint64_t number_after(const std::string& line, const std::string& prefix) {
  auto at = line.find(prefix);
  if (at == std::string::npos) return 0;
  return std::strtoull(line.c_str() + at + prefix.size(), nullptr, 10);
}

// The newest published snapshot file of a node's data directory ("" when it has none).
std::string newest_snapshot_file(const std::string& data_directory) {
  const std::string snapshots = data_directory + "/snapshots";
  auto names = posix_env().list(snapshots);
  std::string newest;
  if (!names.is_ok()) return newest;
  for (const std::string& name : *names) {
    uint64_t index = 0, term = 0;
    if (SnapshotDirectory::parse_file_name(name, &index, &term) && name > newest) newest = name;
  }
  return newest.empty() ? newest : snapshots + "/" + newest;
}

// Damage at rest: one byte of `path` flipped in place (the same file, as a bad sector or a
// stray write leaves it, so a reader holding it open sees the damage too).
void flip_byte_in_place(const std::string& path, uint64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  BOOST_TEST_REQUIRE(file.is_open(), path);
  file.seekg(static_cast<std::streamoff>(offset));
  char byte = 0;
  file.get(byte);
  file.seekp(static_cast<std::streamoff>(offset));
  file.put(static_cast<char>(byte ^ 0x40));
  file.flush();
  BOOST_TEST_REQUIRE(file.good(), path);
}

// Three-node clusters in one temporary directory; every node still running is stopped at the end.
struct SnapshotClusterFixture {
  TempDir dir;
  std::unique_ptr<LocalCluster> cluster;

  ~SnapshotClusterFixture() {
    if (cluster) cluster->stop_all(5000);
  }

  // A cluster in dir/<name> with `node_flags` on every node, not started.
  std::unique_ptr<LocalCluster> make_cluster(const std::string& name, const std::vector<std::string>& node_flags) {
    return create_cluster(cluster_options(dir.path() + "/" + name, node_flags));
  }

  // SIGKILLs `follower` once every node applied the commit index: where its log stopped.
  uint64_t kill_caught_up(uint64_t follower) {
    expect_caught_up(*cluster);
    const uint64_t stopped_at = view(follower).last_index;
    cluster->signal(follower, SIGKILL);
    return stopped_at;
  }

  void start(const std::vector<std::string>& node_flags) {
    cluster = make_cluster("cluster", node_flags);
    Status started = cluster->start_all();
    BOOST_REQUIRE_MESSAGE(started.is_ok(), started.to_string());
  }

  std::string logs() const { return logs_of(*cluster); }

  uint64_t leader(LocalCluster& of, uint64_t not_this = 0) { return wait_for_leader(of, not_this); }
  uint64_t leader(uint64_t not_this = 0) { return leader(*cluster, not_this); }

  ClientResponse view(uint64_t id) {
    KvClientOptions options = load_options();
    KvClient client(cluster->client_endpoints(), options);
    auto answer = client.status(id);
    BOOST_REQUIRE_MESSAGE(answer.is_ok(), "node " << id << ": " << answer.status().message() << "\n" << logs());
    return *answer;
  }

  void expect_caught_up(LocalCluster& of) {
    uint64_t commit = 0;
    for (const auto& view : of.status()) {
      if (view.is_ok()) commit = std::max(commit, view->commit_index);
    }
    Status applied = of.wait_for_applied(commit, catch_up_timeout_ms);
    BOOST_TEST_REQUIRE(applied.is_ok(), applied.message() + "\n" + logs_of(of));
  }

  // Polls node id's log from byte `from` on until a line holds `needle`: that line (without its
  // time and tag), or "" after timeout_ms.
  std::string wait_for_log(uint64_t id, const std::string& needle, uint64_t from, uint64_t timeout_ms) {
    const uint64_t deadline = steady_now_ms() + timeout_ms;
    while (true) {
      std::string line = cluster->last_log_line(id, needle, from);
      if (!line.empty() || steady_now_ms() >= deadline) return line;
      sleep_ms(log_poll_ms);
    }
  }

  // Whether a line of node id's log from byte `from` on holds every one of `needles`.
  bool has_log_line(uint64_t id, const std::vector<std::string>& needles, uint64_t from) const {
    std::string log = read_text(cluster->log_path(id));
    std::istringstream lines(from < log.size() ? log.substr(from) : "");
    for (std::string line; std::getline(lines, line);) {
      bool all = true;
      for (const std::string& needle : needles) all = all && contains(line, needle);
      if (all) return true;
    }
    return false;
  }

  // Bytes in node id's partial received snapshot files (snapshots/*.receive.tmp; not one the
  // node is taking itself, *.take.tmp); with `index`, only those of that snapshot.
  uint64_t partial_snapshot_bytes(uint64_t id, uint64_t index = 0) const {
    const std::string snapshots = cluster->data_directory(id) + "/snapshots";
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "snap-%020llu-", static_cast<unsigned long long>(index));
    auto names = posix_env().list(snapshots);
    uint64_t bytes = 0;
    if (!names.is_ok()) return 0;
    for (const std::string& name : *names) {
      if (contains(name, ".receive.tmp") && (index == 0 || contains(name, prefix))) {
        bytes += keyval::testing::file_size(snapshots + "/" + name);
      }
    }
    return bytes;
  }

  // Polls until `follower` receives the snapshot its sender is sending now, not a chunk of an
  // older one (while the follower was down, the sender's transport queued the chunks of every
  // attempt, up to its send queue bound, and delivers them first), and holds bytes_min of it or
  // the whole file. Its "receiving snapshot" line (naming the snapshot and the sender), or ""
  // after timeout_ms.
  std::string wait_for_current_transfer(uint64_t follower, uint64_t log_from, uint64_t bytes_min, uint64_t timeout_ms) {
    const uint64_t deadline = steady_now_ms() + timeout_ms;
    while (true) {
      const std::string receiving = cluster->last_log_line(follower, "receiving snapshot", log_from);
      const uint64_t index = number_after(receiving, "receiving snapshot ");
      const uint64_t sender = number_after(receiving, "from node ");
      if (sender >= 1 && sender <= cluster->nodes()) {
        const std::string sending = cluster->last_log_line(sender, "sending snapshot");
        const bool current = number_after(sending, "sending snapshot ") == index &&
                             contains(sending, "to node " + std::to_string(follower));
        if (current && (partial_snapshot_bytes(follower, index) >= bytes_min ||
                        has_log_line(follower, {"snapshot " + std::to_string(index) + " received"}, log_from))) {
          return receiving;
        }
      }
      if (steady_now_ms() >= deadline) return "";
      sleep_ms(log_poll_ms);
    }
  }

  uint64_t count_log_lines(uint64_t id, const std::string& needle, uint64_t from) const {
    std::string log = read_text(cluster->log_path(id));
    uint64_t count = 0;
    for (size_t at = log.find(needle, from); at != std::string::npos; at = log.find(needle, at + 1)) ++count;
    return count;
  }

  // Polls until every running node of `of` answers a hashed status at one applied index, then
  // asserts their state hashes are equal; that index.
  uint64_t expect_hashes_agree(LocalCluster& of) {
    KvClientOptions options = load_options();
    options.slow_request_timeout_ms = 10000;
    KvClient client(of.client_endpoints(), options);
    const uint64_t deadline = steady_now_ms() + 15000;
    std::string last;
    while (true) {
      std::map<uint64_t, ClientResponse> hashed;
      for (uint64_t id = 1; id <= of.nodes(); ++id) {
        if (!of.running(id)) continue;
        auto answer = client.status(id, true);
        if (answer.is_ok() && answer->hashed) {
          hashed[id] = *answer;
        } else {
          last = "node " + std::to_string(id) + ": " + (answer.is_ok() ? "no hash" : answer.status().message());
        }
      }
      bool same_index = !hashed.empty();
      for (const auto& [id, answer] : hashed) {
        same_index = same_index && answer.hash_index == hashed.begin()->second.hash_index;
      }
      uint64_t running = 0;
      for (uint64_t id = 1; id <= of.nodes(); ++id) running += of.running(id);
      if (same_index && hashed.size() == running) {
        const ClientResponse& first = hashed.begin()->second;
        for (const auto& [id, answer] : hashed) {
          BOOST_TEST(answer.state_hash == first.state_hash,
                     "node " << id << " hashes " << answer.state_hash << ", node " << first.node_id << " "
                             << first.state_hash << " at index " << first.hash_index);
        }
        BOOST_TEST_MESSAGE(hashed.size() << " nodes agree: hash " << first.state_hash << " at index "
                                         << first.hash_index);
        return first.hash_index;
      }
      if (!hashed.empty() && !same_index) last = "the nodes hashed at different indexes";
      BOOST_TEST_REQUIRE(steady_now_ms() < deadline, "no agreeing hashes within 15 s: " << last << "\n" << logs_of(of));
      sleep_ms(50);
    }
  }

  void expect_no_loss(WriteLoad& load) {
    WriteLoadReport report = load.verify(load_options());
    std::string problems;
    for (const auto& problem : report.problems) problems += problem + "; ";
    BOOST_TEST(report.acknowledged > 0u);
    BOOST_TEST(report.lost == 0u, problems << "\n" << logs());
    BOOST_TEST(report.unreadable == 0u, problems);
    BOOST_TEST(report.verified == report.acknowledged);
    BOOST_TEST_MESSAGE(report.acknowledged << " acknowledged writes read back, " << report.unknown << " unknown ("
                                           << report.unknown_present << " applied), " << report.failed << " refused");
  }

  void wait_for_acks(WriteLoad& load, uint64_t at_least, uint64_t timeout_ms = 30000) {
    const uint64_t deadline = steady_now_ms() + timeout_ms;
    while (load.acknowledged() < at_least && steady_now_ms() < deadline) sleep_ms(5);
    BOOST_TEST_REQUIRE(load.acknowledged() >= at_least, "only " << load.acknowledged() << " writes acknowledged\n"
                                                                << logs());
  }

  // Writes big_state_bytes in big values while `stopped` is down, until every running node
  // released the log past `stopped`'s last entry (it can then catch up only by a snapshot).
  void build_state_past(uint64_t stopped, uint64_t stopped_last_index, WriteLoad& load) {
    wait_for_acks(load, big_state_bytes / big_value_bytes, 60000);
    load.stop();
    expect_caught_up(*cluster);
    for (uint64_t id = 1; id <= 3; ++id) {
      if (id == stopped) continue;
      const ClientResponse status = view(id);
      BOOST_TEST_REQUIRE(status.first_index > stopped_last_index + 1,
                         "node " << id << " still holds entries from " << status.first_index << " (node " << stopped
                                 << " stopped at " << stopped_last_index << ")\n"
                                 << logs());
    }
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(snapshot_cluster, SnapshotClusterFixture)

BOOST_AUTO_TEST_CASE(a_follower_stopped_across_two_snapshots_catches_up_through_install_snapshot) {
  start({"--snapshot-entries", "200", "--log-tail-entries", "20"});
  const uint64_t leader_id = leader();
  const uint64_t follower = leader_id % 3 + 1;
  KvClient client(cluster->client_endpoints(), load_options());
  for (int i = 0; i < 50; ++i)
    BOOST_TEST_REQUIRE(client.put("early-" + std::to_string(i), "e" + std::to_string(i)).is_ok());
  expect_caught_up(*cluster);
  const uint64_t stopped_at = view(follower).last_index;
  cluster->signal(follower, SIGTERM);
  auto exit = cluster->wait_exit(follower, 10000);
  BOOST_TEST_REQUIRE(exit.is_ok(), exit.status().message());
  BOOST_TEST((exit->exited && exit->code == 0), exit->describe() << "\n" << logs());

  // The two others take two snapshots and release the log past the follower's last entry.
  std::map<uint64_t, uint64_t> log_from;
  for (uint64_t id = 1; id <= 3; ++id) log_from[id] = cluster->log_bytes(id);
  WriteLoad load(cluster->client_endpoints(), 4, 100, load_options());
  const uint64_t deadline = steady_now_ms() + catch_up_timeout_ms;
  auto compacted_past = [&] {
    for (uint64_t id = 1; id <= 3; ++id) {
      if (id == follower) continue;
      if (count_log_lines(id, "snapshot taken at index", log_from[id]) < 2) return false;
      if (view(id).first_index <= stopped_at + 1) return false;
    }
    return true;
  };
  while (!compacted_past() && steady_now_ms() < deadline) sleep_ms(20);
  load.stop();
  BOOST_TEST_REQUIRE(compacted_past(), "the running nodes did not take two snapshots past index " << stopped_at << "\n"
                                                                                                  << logs());
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id == follower) continue;
    const ClientResponse status = view(id);
    BOOST_TEST(status.snapshot_index > stopped_at + 20);
    BOOST_TEST_MESSAGE("node " << id << ": snapshot " << status.snapshot_index << ", log " << status.first_index << ".."
                               << status.last_index << "; node " << follower << " stopped at " << stopped_at);
  }

  BOOST_TEST_REQUIRE(cluster->start(follower).is_ok());
  const std::string installed = wait_for_log(follower, "installed snapshot", log_from[follower], catch_up_timeout_ms);
  BOOST_TEST_REQUIRE(!installed.empty(), "node " << follower << " installed no snapshot\n" << logs());
  BOOST_TEST(number_after(installed, "installed snapshot ") > stopped_at + 20, installed);
  BOOST_TEST(!wait_for_log(follower, "receiving snapshot", log_from[follower], 0).empty());
  expect_caught_up(*cluster);
  BOOST_TEST(view(follower).snapshot_index >= number_after(installed, "installed snapshot "));
  expect_hashes_agree(*cluster);
  for (int i = 0; i < 50; i += 7) {
    auto got = client.get("early-" + std::to_string(i));
    BOOST_TEST_REQUIRE(got.is_ok(), got.status().message());
    BOOST_TEST(got->value == "e" + std::to_string(i));
  }
  expect_no_loss(load);
}

BOOST_AUTO_TEST_CASE(a_leader_whose_snapshot_file_is_damaged_replaces_it_and_the_follower_catches_up) {
  // Without the check before sending, the follower refuses the damaged file at its end, the
  // leader sends it again from offset 0, and the follower never catches up.
  // A snapshot every 4 MiB of payload: the newest file holds about 8 MiB, so the damage (in its
  // last eighth) lies past the first 4 chunks. While the follower is down the leader's attempts
  // send those 4 chunks (its window) and its transport keeps the newest 4 MiB of frames for the
  // follower: read before the flip, they are still whole; every chunk past them is read after it.
  start({"--snapshot-entries", "0", "--snapshot-bytes", std::to_string(4u << 20), "--log-tail-entries", "10"});
  const uint64_t leader_id = leader();
  const uint64_t follower = leader_id % 3 + 1;
  KvClient client(cluster->client_endpoints(), load_options());
  for (int i = 0; i < 50; ++i)
    BOOST_TEST_REQUIRE(client.put("early-" + std::to_string(i), "e" + std::to_string(i)).is_ok());
  const uint64_t stopped_at = kill_caught_up(follower);

  // The others take two snapshots and compact past the follower's last entry: it can catch up
  // only by a snapshot.
  constexpr int big_keys = 160;
  const std::string big_value(64u << 10, 'b');
  for (int i = 0; i < big_keys; ++i) {
    auto put = client.put("big-" + std::to_string(i), big_value + std::to_string(i));
    BOOST_TEST_REQUIRE(put.is_ok(), put.status().message() << "\n" << logs());
  }
  expect_caught_up(*cluster);
  sleep_ms(300);  // a snapshot the last applied entries started is published and recorded by now
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id == follower) continue;
    BOOST_TEST_REQUIRE(view(id).first_index > stopped_at + 1,
                       "node " << id << " did not compact past index " << stopped_at << "\n" << logs());
  }

  // Both running nodes' newest snapshot (the one InstallSnapshot sends) get one byte flipped in
  // their body, so whichever leads has a damaged file. No write runs now: no newer snapshot
  // is taken behind the damage's back.
  std::map<uint64_t, std::string> damaged;
  std::map<uint64_t, uint64_t> log_from;
  for (uint64_t id = 1; id <= 3; ++id) {
    log_from[id] = cluster->log_bytes(id);
    if (id == follower) continue;
    damaged[id] = newest_snapshot_file(cluster->data_directory(id));
    BOOST_TEST_REQUIRE(!damaged[id].empty(), "node " << id << " has no snapshot file");
    uint64_t index = 0, term = 0;
    SnapshotDirectory::parse_file_name(damaged[id].substr(damaged[id].rfind('/') + 1), &index, &term);
    BOOST_TEST_REQUIRE(view(id).snapshot_index == index, "node " << id << " sends another snapshot than " << damaged[id]);
    const uint64_t bytes = keyval::testing::file_size(damaged[id]);
    BOOST_TEST_REQUIRE(bytes - bytes / 8 > (5u << 20), damaged[id] << " holds only " << bytes << " bytes");
    flip_byte_in_place(damaged[id], bytes - bytes / 8);
    BOOST_TEST_REQUIRE(!verify_snapshot_file(posix_env(), damaged[id]).is_ok(), damaged[id]);
  }

  BOOST_TEST_REQUIRE(cluster->start(follower).is_ok());
  const std::string installed = wait_for_log(follower, "installed snapshot", log_from[follower], catch_up_timeout_ms);
  BOOST_TEST_REQUIRE(!installed.empty(), "node " << follower << " installed no snapshot\n" << logs());
  expect_caught_up(*cluster);
  expect_hashes_agree(*cluster);

  // The node that sent it named its damaged file with an offset and moved it aside.
  const uint64_t sender = number_after(cluster->last_log_line(follower, "received from node", log_from[follower]),
                                       "received from node ");
  BOOST_TEST_REQUIRE(damaged.count(sender) == 1u, "no sender of the installed snapshot found\n" << logs());
  const std::string& file = damaged[sender];
  const std::string name = file.substr(file.rfind('/') + 1);
  BOOST_TEST(has_log_line(sender, {"published snapshot damaged", file, "offset", "moved aside"}, log_from[sender]),
             logs());
  BOOST_TEST(has_log_line(sender, {"replaces the damaged one"}, log_from[sender]), logs());
  BOOST_TEST(posix_env().exists(cluster->data_directory(sender) + "/snapshots/damaged-" + name));
  const std::string now_sent = newest_snapshot_file(cluster->data_directory(sender));
  BOOST_TEST(verify_snapshot_file(posix_env(), now_sent).is_ok(), now_sent);

  // Every acknowledged write, read through the cluster (linearizable reads: from the leader).
  for (int i = 0; i < 50; ++i) {
    auto got = client.get("early-" + std::to_string(i));
    BOOST_TEST_REQUIRE(got.is_ok(), got.status().message());
    BOOST_TEST(got->value == "e" + std::to_string(i));
  }
  for (int i = 0; i < big_keys; ++i) {
    auto got = client.get("big-" + std::to_string(i));
    BOOST_TEST_REQUIRE(got.is_ok(), got.status().message());
    BOOST_TEST((got->value == big_value + std::to_string(i)), "big-" << i);
  }
}

BOOST_AUTO_TEST_CASE(a_bounded_snapshot_stream_takes_its_bytes_over_the_rate) {
  // --snapshot-send-rate bounds each InstallSnapshot stream (bytes per second, one 1 MiB chunk
  // of burst): a snapshot of a few MB sent at 1 MB/s takes seconds, not milliseconds.
  constexpr uint64_t rate = 1'000'000;
  start({"--snapshot-entries", "40", "--log-tail-entries", "5", "--snapshot-send-rate", std::to_string(rate)});
  const uint64_t leader_id = leader();
  const uint64_t follower = leader_id % 3 + 1;
  const uint64_t stopped_at = kill_caught_up(follower);
  KvClient client(cluster->client_endpoints(), load_options());
  const std::string value(64u << 10, 'v');
  for (int i = 0; i < 60; ++i) BOOST_TEST_REQUIRE(client.put("big-" + std::to_string(i), value).is_ok());
  const uint64_t deadline = steady_now_ms() + catch_up_timeout_ms;
  auto compacted_past = [&] {
    for (uint64_t id = 1; id <= 3; ++id) {
      if (id != follower && view(id).first_index <= stopped_at + 1) return false;
    }
    return true;
  };
  while (!compacted_past() && steady_now_ms() < deadline) sleep_ms(20);
  BOOST_TEST_REQUIRE(compacted_past(), logs());
  const uint64_t sender = leader();
  const uint64_t from = cluster->log_bytes(sender);
  BOOST_TEST_REQUIRE(cluster->start(follower).is_ok());
  const std::string sent = wait_for_log(sender, "sent to node " + std::to_string(follower), from, catch_up_timeout_ms);
  BOOST_TEST_REQUIRE(!sent.empty(), logs());
  // "snapshot N sent to node F: B bytes in S s"
  const uint64_t bytes = number_after(sent, "sent to node " + std::to_string(follower) + ": ");
  const double seconds = std::stod(sent.substr(sent.rfind(" in ") + 4));
  BOOST_TEST_MESSAGE(sent);
  BOOST_TEST(bytes > 2u * (1u << 20), sent);
  // The last chunk (from offset L) leaves once L bytes fit the budget, rate x time + 1 chunk.
  constexpr uint64_t chunk = 1u << 20;
  const uint64_t last_offset = (bytes - 1) / chunk * chunk;
  const double at_least = static_cast<double>(last_offset - chunk) / rate;
  BOOST_TEST(seconds >= 0.9 * at_least, sent << ": the bound allows no less than " << at_least << " s");
  expect_caught_up(*cluster);
  expect_hashes_agree(*cluster);
}

BOOST_AUTO_TEST_CASE(the_leader_killed_mid_transfer_the_follower_still_catches_up) {
  start(big_state_flags);
  const uint64_t follower = leader() % 3 + 1;
  const uint64_t stopped_at = kill_caught_up(follower);
  WriteLoad big(cluster->client_endpoints(), 2, big_value_bytes, load_options());
  build_state_past(follower, stopped_at, big);

  // Small writes go on through the transfer, the kill and the election.
  LoadShape paced;
  paced.rate_ops_per_s = 50;
  paced.key_prefix = "s";
  WriteLoad small(cluster->client_endpoints(), 2, 100, load_options(), paced);
  std::map<uint64_t, uint64_t> log_from;
  for (uint64_t id = 1; id <= 3; ++id) log_from[id] = cluster->log_bytes(id);
  BOOST_TEST_REQUIRE(cluster->start(follower).is_ok());
  // The node sending the snapshot (the leader: on a busy machine not always the first one) is
  // killed once the follower holds the first MiB of it: of a 40 MB snapshot, tens of 1 MiB
  // chunks are still to come (a transfer takes 0.1 to 1 s here; the follower's files are polled
  // every ms).
  const std::string receiving = wait_for_current_transfer(follower, log_from[follower], 1u << 20, catch_up_timeout_ms);
  const uint64_t sender = number_after(receiving, "from node ");
  if (!receiving.empty()) cluster->signal(sender, SIGKILL);
  BOOST_TEST_REQUIRE(!receiving.empty(), "node " << follower << " received no snapshot\n" << logs());
  const uint64_t sent_index = number_after(receiving, "receiving snapshot ");
  const uint64_t partial_bytes = partial_snapshot_bytes(follower, sent_index);
  BOOST_TEST(sent_index > stopped_at);

  const uint64_t second = leader(sender);
  BOOST_TEST(second != sender);
  const std::string installed = wait_for_log(follower, "installed snapshot", log_from[follower], catch_up_timeout_ms);
  BOOST_TEST_REQUIRE(!installed.empty(), "node " << follower << " installed no snapshot\n" << logs());
  BOOST_TEST(number_after(installed, "installed snapshot ") > stopped_at);
  // Whether the kill landed mid-transfer: the killed leader never heard the last chunk
  // acknowledged, and the follower never completed its file. Then what it installed came from
  // the new leader, which started over.
  const bool finished_before_kill =
      has_log_line(sender, {"snapshot " + std::to_string(sent_index) + " sent to node"}, log_from[sender]) ||
      has_log_line(follower, {"received from node " + std::to_string(sender)}, log_from[follower]);
  BOOST_TEST_MESSAGE(
      "node " << sender << " killed "
              << (finished_before_kill ? "AFTER the transfer completed (the kill came too late)" : "mid-transfer")
              << ", node " << follower << " holding " << partial_bytes << " bytes of its snapshot; then " << installed);
  if (!finished_before_kill) {
    BOOST_TEST(has_log_line(follower, {"received from node " + std::to_string(second)}, log_from[follower]), logs());
  }
  wait_for_acks(small, small.acknowledged() + 20);  // the cluster serves again
  small.stop();
  expect_caught_up(*cluster);
  expect_hashes_agree(*cluster);

  // The killed leader comes back and converges too.
  BOOST_TEST_REQUIRE(cluster->start(sender).is_ok());
  expect_caught_up(*cluster);
  expect_hashes_agree(*cluster);
  expect_no_loss(big);
  expect_no_loss(small);
}

BOOST_AUTO_TEST_CASE(a_follower_killed_mid_receive_starts_over_and_keeps_no_partial_file) {
  start(big_state_flags);
  const uint64_t leader_id = leader();
  const uint64_t follower = leader_id % 3 + 1;
  const uint64_t stopped_at = kill_caught_up(follower);
  WriteLoad big(cluster->client_endpoints(), 2, big_value_bytes, load_options());
  build_state_past(follower, stopped_at, big);

  const uint64_t first_start = cluster->log_bytes(follower);
  BOOST_TEST_REQUIRE(cluster->start(follower).is_ok());
  // Killed once it holds the first MiB of tens: a partial file stays behind.
  const std::string receiving = wait_for_current_transfer(follower, first_start, 1u << 20, catch_up_timeout_ms);
  cluster->signal(follower, SIGKILL);
  BOOST_TEST_REQUIRE(!receiving.empty(), "node " << follower << " received no snapshot\n" << logs());
  const bool completed = has_log_line(follower, {"received from node"}, first_start);
  const uint64_t partial_after_kill = partial_snapshot_bytes(follower);
  BOOST_TEST_MESSAGE("node " << follower << " killed "
                             << (completed ? "AFTER it received the whole file" : "mid-receive") << ", leaving "
                             << partial_after_kill << " bytes of partial snapshot");
  if (!completed) BOOST_TEST(partial_after_kill > 0u);

  const uint64_t second_start = cluster->log_bytes(follower);
  BOOST_TEST_REQUIRE(cluster->start(follower).is_ok());
  if (!completed) {
    // The partial file counts for nothing: the transfer starts over and completes.
    const std::string installed = wait_for_log(follower, "installed snapshot", second_start, catch_up_timeout_ms);
    BOOST_TEST_REQUIRE(!installed.empty(), "node " << follower << " installed no snapshot after its restart\n"
                                                   << logs());
    BOOST_TEST(number_after(installed, "installed snapshot ") > stopped_at);
    BOOST_TEST(has_log_line(follower, {"receiving snapshot"}, second_start), logs());
  }
  expect_caught_up(*cluster);
  expect_hashes_agree(*cluster);
  // Under the write load the leader may be sending it a newer snapshot now (a slow build falls
  // behind the compacted log again): that file goes once received. The one the kill left
  // never would; a transfer given up goes at the snapshotter's next message after 30 s idle.
  const uint64_t deadline = steady_now_ms() + catch_up_timeout_ms;
  while (partial_snapshot_bytes(follower) != 0 && steady_now_ms() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  BOOST_TEST(partial_snapshot_bytes(follower) == 0u, "a partial snapshot file outlived the restart\n" << logs());
  expect_no_loss(big);
}

BOOST_AUTO_TEST_CASE(the_leader_keeps_acknowledging_writes_while_it_sends_a_snapshot) {
  start(big_state_flags);
  const uint64_t follower = leader() % 3 + 1;
  const uint64_t stopped_at = kill_caught_up(follower);
  WriteLoad big(cluster->client_endpoints(), 2, big_value_bytes, load_options());
  build_state_past(follower, stopped_at, big);

  LoadShape small_keys;
  small_keys.key_prefix = "s";
  WriteLoad small(cluster->client_endpoints(), 2, 100, load_options(), small_keys);
  wait_for_acks(small, 20);
  const uint64_t follower_from = cluster->log_bytes(follower);
  BOOST_TEST_REQUIRE(cluster->start(follower).is_ok());
  // From the first chunk of the current snapshot at the follower to its whole file received
  // (the leader may have begun that transfer before the follower was up).
  const std::string receiving = wait_for_current_transfer(follower, follower_from, 0, catch_up_timeout_ms);
  const uint64_t acks_at_start = small.acknowledged();
  const uint64_t started_ms = steady_now_ms();
  BOOST_TEST_REQUIRE(!receiving.empty(), "node " << follower << " received no snapshot\n" << logs());
  const std::string received = wait_for_log(follower, "received from node", follower_from, catch_up_timeout_ms);
  const uint64_t acks_at_end = small.acknowledged();
  const uint64_t transfer_ms = steady_now_ms() - started_ms;
  BOOST_TEST_REQUIRE(!received.empty(), "the transfer did not finish\n" << logs());
  BOOST_TEST_MESSAGE(acks_at_end - acks_at_start << " writes acknowledged during the transfer (" << transfer_ms
                                                 << " ms as the test saw it; " << received << ")");
  BOOST_TEST(acks_at_end - acks_at_start >= 5u, "the cluster acknowledged " << acks_at_end - acks_at_start
                                                                            << " writes in " << transfer_ms
                                                                            << " ms of transfer\n"
                                                                            << logs());
  BOOST_TEST(!wait_for_log(follower, "installed snapshot", follower_from, catch_up_timeout_ms).empty(), logs());
  small.stop();
  expect_caught_up(*cluster);
  expect_hashes_agree(*cluster);
  expect_no_loss(big);
  expect_no_loss(small);
}

BOOST_AUTO_TEST_CASE(a_backup_taken_under_load_restores_into_a_fresh_cluster_with_every_acknowledged_write) {
  start({"--snapshot-entries", "300", "--log-tail-entries", "50"});
  leader();
  WriteLoad load(cluster->client_endpoints(), 4, 100, load_options());
  wait_for_acks(load, 300);
  const auto before = load.acknowledged_writes();  // every one acknowledged before the backup began
  const std::string file = dir.file("backup.snap");
  const Run saved = run_keyval("snapshot save " + file + " --endpoints " + cluster->endpoints_flag());
  const uint64_t acknowledged_by_then = load.acknowledged();
  load.stop();
  BOOST_TEST_REQUIRE(saved.exit_code == 0, saved.output << "\n" << logs());
  BOOST_TEST(acknowledged_by_then > before.size(), "writes went on during the backup");
  const std::string index = json_field(saved.last_line(), "index");
  const std::string keys = json_field(saved.last_line(), "keys");
  BOOST_TEST_MESSAGE("backup at index " << index << " with " << keys << " keys; " << before.size()
                                        << " writes acknowledged before it, " << acknowledged_by_then << " by its end");

  const Run status = run_keyval("snapshot status " + file);
  BOOST_TEST_REQUIRE(status.exit_code == 0, status.output);
  BOOST_TEST(json_field(status.last_line(), "valid") == "true", status.output);
  BOOST_TEST(json_field(status.last_line(), "index") == index, status.output);
  BOOST_TEST(json_field(status.last_line(), "keys") == keys, status.output);
  // Every put writes a new key: the backup holds the acknowledged ones and at most every one issued.
  BOOST_TEST(std::stoull(keys) >= before.size());
  BOOST_TEST(std::stoull(keys) <= load.operations().size());

  auto restored = make_cluster("restored", {});
  for (uint64_t id = 1; id <= 3; ++id) {
    const Run run = run_keyval("snapshot restore " + file + " --data-dir " + restored->data_directory(id) + " --id " +
                               std::to_string(id) + " --peers " + restored->peers_flag() + " --cluster keyval");
    BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
    BOOST_TEST(json_field(run.last_line(), "keys") == keys, run.output);
  }
  cluster->stop_all(5000);  // the old cluster is gone: only the restored one answers
  BOOST_TEST_REQUIRE(restored->start_all().is_ok());
  leader(*restored);
  KvClient client(restored->client_endpoints(), load_options());
  uint64_t missing = 0;
  std::string first_missing;
  for (const auto& [key, value] : before) {
    auto got = client.get(key);
    if (got.is_ok() && got->found && got->value == value) continue;
    if (missing++ == 0)
      first_missing = key + ": " + (got.is_ok() ? (got->found ? "another value" : "absent") : got.status().message());
  }
  BOOST_TEST(missing == 0u, missing << " of " << before.size() << " acknowledged writes missing, first "
                                    << first_missing << "\n"
                                    << logs_of(*restored));
  for (uint64_t id = 1; id <= 3; ++id) {
    auto view = KvClient(restored->client_endpoints(), load_options()).status(id);
    BOOST_TEST_REQUIRE(view.is_ok(), view.status().message());
    BOOST_TEST(view->snapshot_index == std::stoull(index));
  }
  auto put = client.put("after-restore", "1");
  BOOST_TEST_REQUIRE(put.is_ok(), put.status().message());
  BOOST_TEST(put->index > std::stoull(index));
  expect_caught_up(*restored);
  expect_hashes_agree(*restored);
  restored->stop_all(5000);
}

BOOST_AUTO_TEST_CASE(a_corrupted_backup_is_refused_by_status_and_restore) {
  start({});
  leader();
  KvClient client(cluster->client_endpoints(), load_options());
  for (int i = 0; i < 200; ++i) {
    BOOST_TEST_REQUIRE(client.put("key-" + std::to_string(i), std::string(2000, 'a' + i % 26)).is_ok());
  }
  const std::string file = dir.file("backup.snap");
  const Run saved = run_keyval("snapshot save " + file + " --endpoints " + cluster->endpoints_flag());
  BOOST_TEST_REQUIRE(saved.exit_code == 0, saved.output << "\n" << logs());
  BOOST_TEST_REQUIRE(run_keyval("snapshot status " + file).exit_code == 0);
  const std::vector<uint8_t> bytes = keyval::testing::read_file(file);
  for (bool truncate : {false, true}) {
    BOOST_TEST_CONTEXT((truncate ? "truncated" : "one byte flipped")) {
      std::vector<uint8_t> damaged = bytes;
      if (truncate) {
        damaged.resize(damaged.size() * 2 / 3);
      } else {
        damaged[damaged.size() / 2] ^= 0x40;
      }
      const std::string damaged_file = dir.file(truncate ? "truncated.snap" : "flipped.snap");
      keyval::testing::write_file(damaged_file, damaged);
      const Run status = run_keyval("snapshot status " + damaged_file);
      BOOST_TEST(status.exit_code == 1, status.output);
      BOOST_TEST(contains(status.output, damaged_file), status.output);
      BOOST_TEST(contains(status.output, "offset"), status.output);
      BOOST_TEST(json_field(status.last_line(), "valid") == "false", status.output);

      const std::string data = dir.file(truncate ? "restore-truncated" : "restore-flipped");
      const Run restore = run_keyval("snapshot restore " + damaged_file + " --data-dir " + data + " --id 1 --peers " +
                                     cluster->peers_flag());
      BOOST_TEST(restore.exit_code == 1, restore.output);
      BOOST_TEST(contains(restore.output, "nothing restored"), restore.output);
      BOOST_TEST(contains(restore.output, "offset"), restore.output);
      BOOST_TEST(!posix_env().exists(data), restore.output);
      BOOST_TEST(!posix_env().exists(data + ".restore.tmp"), restore.output);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
