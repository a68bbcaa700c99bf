// What the real-process cluster tests share: a LocalCluster of `keyval node` processes on
// 127.0.0.1 in a temporary directory (apps/local_cluster.h), every node stopped by PID at the
// end; the nodes' logs for failure messages; waiting for a leader, for acknowledged writes,
// for every node to apply the commit index; and the check that no acknowledged write is lost.
// Header only, as Boost.Test's macros belong to each test module.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "client/kv_socket.h"
#include "apps/local_cluster.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

namespace keyval::testing {

constexpr uint64_t cluster_leader_timeout_ms = 10000;

// Whether `port` on 127.0.0.1 can be bound right now (for commands given fixed port bases).
inline bool port_is_free(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return free;
}

// The first of three free ports in a row from `from` (stepping by 7, within 2000), for
// commands given fixed port bases (keyval cluster start).
inline uint16_t free_port_run(uint16_t from) {
  for (uint16_t base = from; base < from + 2000; base += 7) {
    bool free = true;
    for (uint16_t port = base; port < base + 3 && free; ++port) free = port_is_free(port);
    if (free) return base;
  }
  BOOST_FAIL("no three free ports in a row from " << from);
  return 0;
}

// A WriteLoad's client: an operation is given up within 3 s, one request within 500 ms.
inline KvClientOptions load_options() {
  KvClientOptions options;
  options.operation_timeout_ms = 3000;
  options.request_timeout_ms = 500;
  return options;
}

// `base` made patient enough for 1 MiB entries under the sanitizers, which can take longer to
// replicate than an election timeout: an attempt waits 5 s, the operation (retried through
// leader changes, its session making a retry safe) up to 60 s.
inline KvClientOptions through_leader_changes(KvClientOptions base) {
  base.operation_timeout_ms = 60000;
  base.request_timeout_ms = 5000;
  return base;
}

// `bytes` of letters in a pattern that differs from page to page (a misplaced 4 KiB block shows).
inline std::string patterned_value(size_t bytes) {
  std::string value(bytes, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return value;
}

// The last `tail_bytes` of every node's log, for failure messages.
inline std::string logs_of(const LocalCluster& cluster, size_t tail_bytes = 4000) {
  std::string text;
  for (uint64_t id = 1; id <= cluster.nodes(); ++id) {
    std::string log = read_text(cluster.log_path(id));
    if (log.size() > tail_bytes) log = "..." + log.substr(log.size() - tail_bytes);
    text += "--- node " + std::to_string(id) + " ---\n" + log;
  }
  return text;
}

// Options for a cluster in `directory` run by the binary CTest names in KEYVAL_BINARY.
inline LocalClusterOptions cluster_options(const std::string& directory,
                                           const std::vector<std::string>& node_flags = {}) {
  LocalClusterOptions options;
  options.directory = directory;
  options.binary = std::getenv("KEYVAL_BINARY") ? std::getenv("KEYVAL_BINARY") : "";
  BOOST_REQUIRE_MESSAGE(!options.binary.empty(), "KEYVAL_BINARY must name the keyval binary (CTest sets it)");
  options.extra_node_flags = node_flags;
  return options;
}

inline std::unique_ptr<LocalCluster> create_cluster(const LocalClusterOptions& options) {
  auto created = LocalCluster::create(options);
  BOOST_REQUIRE_MESSAGE(created.is_ok(), created.status().to_string());
  return std::move(*created);
}

inline uint64_t wait_for_leader(LocalCluster& cluster, uint64_t not_this = 0) {
  auto found = cluster.wait_for_leader(cluster_leader_timeout_ms, not_this);
  BOOST_REQUIRE_MESSAGE(found.is_ok(), found.status().message() + "\n" + logs_of(cluster));
  return *found;
}

// Until every node has applied the highest commit index any node reports.
inline void expect_caught_up(LocalCluster& cluster, uint64_t timeout_ms = 10000) {
  uint64_t commit = 0;
  for (const auto& view : cluster.status()) {
    if (view.is_ok()) commit = std::max(commit, view->commit_index);
  }
  Status applied = cluster.wait_for_applied(commit, timeout_ms);
  BOOST_TEST_REQUIRE(applied.is_ok(), applied.message() + "\n" + logs_of(cluster));
}

inline void wait_for_acks(const LocalCluster& cluster, WriteLoad& load, uint64_t at_least) {
  const uint64_t deadline = steady_now_ms() + 20000;
  while (load.acknowledged() < at_least && steady_now_ms() < deadline) ::usleep(5000);
  BOOST_TEST_REQUIRE(load.acknowledged() >= at_least,
                     "only " << load.acknowledged() << " writes acknowledged\n" << logs_of(cluster));
}

// Stops the load and reads every write it had acknowledged back: none may be lost.
inline void expect_no_loss(const LocalCluster& cluster, WriteLoad& load) {
  load.stop();
  WriteLoadReport report = load.verify(load_options());
  std::string problems;
  for (const auto& problem : report.problems) problems += problem + "; ";
  BOOST_TEST(report.acknowledged > 0u);
  BOOST_TEST(report.lost == 0u, problems << "\n" << logs_of(cluster));
  BOOST_TEST(report.unreadable == 0u, problems);
  BOOST_TEST(report.verified == report.acknowledged);
  BOOST_TEST_MESSAGE(report.acknowledged << " acknowledged, " << report.unknown << " unknown ("
                                         << report.unknown_present << " applied), " << report.failed << " refused");
}

// A started three-node cluster in its own temporary directory.
struct ClusterFixture {
  TempDir dir;
  std::unique_ptr<LocalCluster> cluster;

  explicit ClusterFixture(const std::vector<std::string>& node_flags = {}) {
    cluster = create_cluster(cluster_options(dir.path() + "/cluster", node_flags));
    Status started = cluster->start_all();
    BOOST_REQUIRE_MESSAGE(started.is_ok(), started.to_string());
  }
  ~ClusterFixture() { cluster->stop_all(5000); }

  std::string logs() const { return logs_of(*cluster); }
  uint64_t leader(uint64_t not_this = 0) { return wait_for_leader(*cluster, not_this); }
  void expect_caught_up() { testing::expect_caught_up(*cluster); }
  void wait_for_acks(WriteLoad& load, uint64_t at_least) const { testing::wait_for_acks(*cluster, load, at_least); }
  void expect_no_loss(WriteLoad& load) const { testing::expect_no_loss(*cluster, load); }
};

}  // namespace keyval::testing
