// Goal: TLS on real clusters: three nodes with mutual TLS between peers and TLS clients serve puts
// and gets through the CLI; a peer whose certificate names another node id is refused; a
// plaintext client, or one without a certificate when --client-ca is set, is refused while the
// node keeps serving.
// Method: certificates from scripts/make-certs.sh (the openssl tool), three `keyval node`
// processes on 127.0.0.1 (apps/local_cluster.h with tls_directory), the CLI and KvClient as
// clients; every wait is bounded.
#define BOOST_TEST_MODULE tls_cluster_test
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <utility>

#include "actors/tls.h"
#include "client/kv_client.h"
#include "client/kv_socket.h"
#include "apps/local_cluster.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using keyval::testing::contains;
using keyval::testing::read_text;
using keyval::testing::run_keyval;
using keyval::testing::TempDir;

namespace keyval {
namespace {

// scripts/make-certs.sh DIR 1 2 3.
std::string make_certs(const TempDir& dir) {
  const std::string certs = dir.file("certs");
  const std::string command = std::string(KEYVAL_SOURCE_DIR) + "/scripts/make-certs.sh " + certs + " 1 2 3 >/dev/null";
  BOOST_REQUIRE_MESSAGE(std::system(command.c_str()) == 0, command);
  return certs;
}

std::unique_ptr<LocalCluster> start_tls_cluster(const TempDir& dir, const std::string& certs,
                                          const std::vector<std::string>& flags = {}) {
  auto options = testing::cluster_options(dir.path() + "/cluster", flags);
  options.tls_directory = certs;
  return testing::create_cluster(options);
}

// Polls until the log of node `id` has a line containing `needle`.
bool wait_for_log(const LocalCluster& cluster, uint64_t id, const std::string& needle, uint64_t timeout_ms = 5000) {
  const uint64_t deadline = steady_now_ms() + timeout_ms;
  while (!contains(read_text(cluster.log_path(id)), needle)) {
    if (steady_now_ms() >= deadline) return false;
    ::usleep(50 * 1000);
  }
  return true;
}

KvClientOptions quick(std::shared_ptr<TlsContext> tls) {
  KvClientOptions options;
  options.operation_timeout_ms = 1500;
  options.request_timeout_ms = 500;
  options.tls = std::move(tls);
  return options;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tls_cluster)

// With --client-ca, the client port asks for a client certificate: the CLI with the CA and the
// client certificate works; a plaintext client and a TLS client without a certificate are refused,
// each with a log line, and the node keeps serving.
BOOST_AUTO_TEST_CASE(a_tls_cluster_serves_the_cli_and_refuses_plaintext_and_certificate_less_clients) {
  TempDir dir;
  const std::string certs = make_certs(dir);
  auto cluster = start_tls_cluster(dir, certs, {"--client-ca", certs + "/ca.crt"});
  BOOST_REQUIRE(cluster->start_all().is_ok());
  const uint64_t leader = testing::wait_for_leader(*cluster);
  const std::string tls_flags = " --endpoints " + cluster->endpoints_flag() + " --tls-ca " + certs + "/ca.crt" +
                                " --tls-cert " + certs + "/client.crt --tls-key " + certs + "/client.key";
  auto put = run_keyval("put secure-key secure-value" + tls_flags);
  BOOST_REQUIRE_MESSAGE(put.exit_code == 0, put.output);
  auto get = run_keyval("get secure-key" + tls_flags);
  BOOST_CHECK_EQUAL(get.exit_code, 0);
  BOOST_CHECK_MESSAGE(contains(get.output, "secure-value"), get.output);
  const std::string leader_log = read_text(cluster->log_path(leader));
  BOOST_CHECK_MESSAGE(contains(leader_log, "TLS, certificate keyval-node-"), leader_log);

  KvClient plaintext(cluster->client_endpoints(), quick(nullptr));
  BOOST_CHECK(!plaintext.put("plaintext", "refused").is_ok());
  auto ca_only = TlsContext::create(TlsRole::client, TlsFiles{"", "", certs + "/ca.crt"});
  BOOST_REQUIRE(ca_only.is_ok());
  KvClient no_certificate(cluster->client_endpoints(), quick(*ca_only));
  BOOST_CHECK(!no_certificate.put("no-certificate", "refused").is_ok());
  BOOST_CHECK_MESSAGE(wait_for_log(*cluster, leader, "client listener: connection 127.0.0.1:"), leader_log);
  const std::string after = read_text(cluster->log_path(leader));
  BOOST_CHECK_MESSAGE(contains(after, "closed: TLS handshake failed"), after);
  BOOST_CHECK_MESSAGE(contains(after, "a client without TLS, or without an accepted certificate?"), after);

  auto again = run_keyval("get secure-key" + tls_flags);  // still serving
  BOOST_CHECK_EQUAL(again.exit_code, 0);
  BOOST_CHECK_EQUAL(run_keyval("get plaintext" + tls_flags).exit_code, 1);  // the refused put wrote nothing
  cluster->stop_all();
}

// A follower restarts with another node's certificate: it claims its own id with a certificate
// naming the other node.
BOOST_AUTO_TEST_CASE(a_peer_whose_certificate_names_another_id_is_refused) {
  TempDir dir;
  const std::string certs = make_certs(dir);
  auto cluster = start_tls_cluster(dir, certs);
  BOOST_REQUIRE(cluster->start_all().is_ok());
  const uint64_t leader = testing::wait_for_leader(*cluster);
  const uint64_t victim = leader % 3 + 1;  // a follower
  const uint64_t other = 6 - leader - victim;  // the third node
  cluster->signal(victim, SIGKILL);
  const std::string wrong = tls_node_name(other), claimed = tls_node_name(victim);
  for (const char* ext : {".crt", ".key"}) {
    std::filesystem::copy_file(certs + "/node-" + std::to_string(other) + ext,
                               certs + "/node-" + std::to_string(victim) + ext,
                               std::filesystem::copy_options::overwrite_existing);
  }
  const uint64_t leader_from = cluster->log_bytes(leader), other_from = cluster->log_bytes(other);
  BOOST_REQUIRE(cluster->start(victim).is_ok());
  auto logged = [&](uint64_t id, uint64_t from, const std::string& needle) {
    const uint64_t deadline = steady_now_ms() + 5000;
    while (cluster->last_log_line(id, needle, from).empty()) {
      if (steady_now_ms() >= deadline) return false;
      ::usleep(50 * 1000);
    }
    return true;
  };
  const std::string names = "its certificate names '" + wrong + "', not " + claimed;
  const std::string dialed = "peer " + std::to_string(victim) + " down (handshake with 127.0.0.1:" +
                             std::to_string(cluster->peer_endpoint(victim).port) + " failed: " + names;
  for (auto [id, from] : {std::pair{leader, leader_from}, std::pair{other, other_from}}) {
    BOOST_CHECK_MESSAGE(logged(id, from, "(claiming peer " + std::to_string(victim) + "): " + names),
                        testing::logs_of(*cluster));
    BOOST_CHECK_MESSAGE(logged(id, from, dialed), testing::logs_of(*cluster));
    BOOST_CHECK(cluster->last_log_line(id, "link from peer " + std::to_string(victim) + " accepted", from).empty());
  }
  KvClient client(cluster->client_endpoints(), quick(cluster->client_tls()));
  auto put = client.put("served-without-" + std::to_string(victim), "yes");
  BOOST_CHECK_MESSAGE(put.is_ok(), put.status().message());
  cluster->stop_all();
}

// Peer reads over TLS follow what arrives (actors/read_size.h: 4 KiB at first, up to 64 KiB):
// a value of 1 MiB crosses the peer links as records far larger than the first read, then
// small puts follow; every node applies all of them, byte for byte.
//
// What is asserted is that the bytes arrive whole, not how fast: under the sanitizers on a busy
// machine one node can take longer to take in 1 MiB than an election timeout at 10 ms ticks, and
// leaders then change while the entry travels. So this cluster ticks every 50 ms, and the client
// waits up to 60 s, retrying through any leader change (its session makes a retry safe).
BOOST_AUTO_TEST_CASE(large_and_small_entries_cross_tls_peer_links_whole) {
  TempDir dir;
  const std::string certs = make_certs(dir);
  auto options = testing::cluster_options(dir.path() + "/cluster");
  options.tls_directory = certs;
  options.tick_ms = 50;
  auto cluster = testing::create_cluster(options);
  BOOST_REQUIRE(cluster->start_all().is_ok());
  testing::wait_for_leader(*cluster);
  KvClient client(cluster->client_endpoints(), testing::through_leader_changes(quick(cluster->client_tls())));
  const std::string large = testing::patterned_value(1u << 20);
  auto put = client.put("large", large);
  BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().message());
  for (int i = 0; i < 20; ++i) {
    auto small = client.put("small-" + std::to_string(i), std::to_string(i));
    BOOST_REQUIRE_MESSAGE(small.is_ok(), small.status().message());
  }
  for (const auto& endpoint : cluster->client_endpoints()) {
    KvClient one({endpoint}, quick(cluster->client_tls()));
    // Serializable reads: this node's own applied state, once it has caught up.
    bool whole = false;
    const uint64_t deadline = steady_now_ms() + 20000;
    while (!whole && steady_now_ms() < deadline) {
      auto got = one.get("large", true);
      auto last = one.get("small-19", true);
      whole = got.is_ok() && got->found && got->value == large && last.is_ok() && last->found && last->value == "19";
      if (!whole) ::usleep(50 * 1000);
    }
    BOOST_CHECK_MESSAGE(whole, "node at port " << endpoint.port << " lacks the entries: " << testing::logs_of(*cluster));
  }
  cluster->stop_all();
}

// `keyval cluster start --tls-dir CERTS --cluster-secret-file F`: the nodes it starts use TLS on
// both ports and prove the secret; its hint names the CA; the CLI with the CA works and a
// plaintext client is refused; SIGTERM stops every node and the command exits 0.
BOOST_AUTO_TEST_CASE(cluster_start_with_tls_and_a_secret_serves_tls_clients_and_stops_on_sigterm) {
  TempDir dir;
  const std::string certs = make_certs(dir);
  const std::string secret = dir.file("secret");
  {
    std::ofstream out(secret);
    out << "a cluster secret of enough bytes\n";
  }
  std::filesystem::permissions(secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  // Three free ports in a row for clients and three for peers, below the ephemeral range.
  const uint16_t client_base = testing::free_port_run(static_cast<uint16_t>(21000 + ::getpid() % 3000));
  const uint16_t peer_base = testing::free_port_run(static_cast<uint16_t>(client_base + 10));
  const std::string output = dir.file("cluster-start.out");
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string command = "exec \"" + std::string(std::getenv("KEYVAL_BINARY")) + "\" cluster start --dir " +
                                dir.file("c") + " --client-port-base " + std::to_string(client_base) +
                                " --peer-port-base " + std::to_string(peer_base) + " --tls-dir " + certs +
                                " --cluster-secret-file " + secret + " > " + output + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const uint64_t deadline = steady_now_ms() + 30000;
  while (!contains(read_text(output), "try: keyval put") && steady_now_ms() < deadline) ::usleep(100 * 1000);
  const std::string started = read_text(output);
  BOOST_CHECK_MESSAGE(contains(started, "leader: node"), started);
  BOOST_CHECK_MESSAGE(contains(started, "--tls-ca " + certs + "/ca.crt"), started);
  std::string endpoints;
  for (int i = 0; i < 3; ++i) {
    endpoints += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(client_base + i);
  }
  auto put = run_keyval("put tls-start-key yes --endpoints " + endpoints + " --tls-ca " + certs + "/ca.crt");
  BOOST_CHECK_MESSAGE(put.exit_code == 0, put.output << started);
  auto get = run_keyval("get tls-start-key --endpoints " + endpoints + " --tls-ca " + certs + "/ca.crt");
  BOOST_CHECK_MESSAGE(get.exit_code == 0 && contains(get.output, "yes"), get.output);
  std::vector<Endpoint> client_endpoints;
  for (int i = 0; i < 3; ++i) client_endpoints.push_back(Endpoint{"127.0.0.1", static_cast<uint16_t>(client_base + i)});
  KvClient plaintext(client_endpoints, quick(nullptr));
  BOOST_CHECK(!plaintext.put("plaintext", "refused").is_ok());
  const std::string node_log = read_text(dir.file("c") + "/node1.log");
  BOOST_CHECK_MESSAGE(contains(node_log, "TLS"), node_log);
  ::kill(pid, SIGTERM);
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  BOOST_CHECK_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0, read_text(output));
  // A secret file others may read is refused before anything starts.
  std::filesystem::permissions(secret, std::filesystem::perms::group_read, std::filesystem::perm_options::add);
  auto refused = run_keyval("cluster start --dir " + dir.file("c2") + " --client-port-base " +
                            std::to_string(client_base) + " --peer-port-base " + std::to_string(peer_base) +
                            " --cluster-secret-file " + secret);
  BOOST_CHECK_EQUAL(refused.exit_code, 2);
  BOOST_CHECK_MESSAGE(contains(refused.output, secret), refused.output);
  BOOST_CHECK_MESSAGE(!contains(refused.output, "started"), refused.output);
  auto no_certs = run_keyval("cluster start --dir " + dir.file("c3") + " --client-port-base " +
                             std::to_string(client_base) + " --peer-port-base " + std::to_string(peer_base) +
                             " --nodes 4 --tls-dir " + certs);
  BOOST_CHECK_EQUAL(no_certs.exit_code, 2);
  BOOST_CHECK_MESSAGE(contains(no_certs.output, "node 4"), no_certs.output);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
