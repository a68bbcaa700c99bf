// A cluster of `keyval node` processes on 127.0.0.1, started, signalled and stopped by PID:
// the engine of `keyval cluster start|demo` and of the cluster tests.
//
// Node i lives in DIR/node<i> (its data directory) and logs to DIR/node<i>.log (appended to
// across restarts). Ports are fixed (client_port_base + i - 1, peer_port_base + i - 1) or,
// with a base of 0, chosen free once at creation and kept across restarts. Every child runs
// with PR_SET_PDEATHSIG = SIGKILL: if the process that started it dies, the nodes die too,
// so nothing outlives a crashed test or a killed `keyval cluster`. The destructor kills
// (SIGKILL) and reaps every node still running.
//
// WriteLoad: writer threads, each with its own KvClient (its own session), putting unique keys
// (w<writer>-<n>, or another prefix) as fast as the cluster acknowledges them (or paced to a
// rate, and mixed with gets, dels and cas on other keys: LoadShape), and remembering which
// writes were acknowledged and which ended with an unknown outcome; verify() then reads every
// key back through the leader: an acknowledged write must be there with its value.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "client/kv_client.h"
#include "storage/status.h"

namespace keyval {

struct LocalClusterOptions {
  std::string directory;           // created if missing
  uint64_t nodes = 3;
  std::string binary;              // the keyval binary; empty: this process's own (/proc/self/exe)
  uint16_t client_port_base = 0;   // 0: free ports, picked at creation
  uint16_t peer_port_base = 0;
  std::string cluster = "keyval";
  uint64_t tick_ms = 10;
  std::vector<std::string> extra_node_flags;  // appended to every node's command line
  std::map<uint64_t, std::vector<std::string>> node_flags;  // appended to node id's only (after those)
  // Nodes 1..bootstrap_nodes form the cluster: each starts with --bootstrap and their --peers
  // (which creates its data directory at the first start and is ignored at a restart). A node
  // above them starts with --join (the client endpoints of the first ones and of every other
  // node running then) and its own --peer-listen: add it first (keyval member add,
  // KvClient::member_add). 0: every node bootstraps.
  uint64_t bootstrap_nodes = 0;
  // Each node listens for peers on a port of its own (--peer-listen, peer_listen_endpoint) while
  // --peers advertises peer_endpoint: something else (apps/fault_proxy.h) listens there and
  // forwards to it.
  bool separate_peer_listen = false;
  // Node i's data directory is DIR/disk<i>/data, so that DIR/disk<i> can be a file system of
  // its own (apps/node_disk.h) mounted before the node first starts.
  bool data_on_disks = false;
  // TLS (docs/SECURITY.md): a directory made by scripts/make-certs.sh DIR 1 2 ...: node i runs
  // mutual TLS between peers and TLS on its client port with DIR/node-<i>.crt and .key and
  // DIR/ca.crt, and the cluster's own clients (status, wait_for_leader) use DIR/ca.crt and
  // DIR/client.crt and .key (client_tls()). Empty: plaintext.
  std::string tls_directory;
  // A cluster secret file (keyval node --cluster-secret-file; docs/SECURITY.md) every node
  // is started with. Empty: none.
  std::string cluster_secret_file;
  // The Redis gateway (docs/REDIS.md): node i serves it on 127.0.0.1:redis_ports[i - 1]
  // (--redis-listen). Empty: no node does.
  std::vector<uint16_t> redis_ports;
  // Ports the caller gave away itself (in node_flags, e.g. --metrics-listen): never picked
  // for a node's client or peer port.
  std::vector<uint16_t> taken_ports;
};

// `count` free ports on 127.0.0.1, none of `taken`: below the kernel's ephemeral range when it
// leaves room (an outgoing connection cannot take them as its local port before they are
// used), else ports the kernel hands out for port 0. All are held at once so they differ, then
// released: another listener may still take one before it is used.
Result<std::vector<uint16_t>> free_ports(size_t count, const std::vector<uint16_t>& taken = {});

struct NodeExit {
  bool exited = false;  // false: killed by a signal
  int code = 0;         // exit code, or the signal number
  std::string describe() const;  // "exit 0", "killed by signal 9"
};

class LocalCluster {
 public:
  static Result<std::unique_ptr<LocalCluster>> create(LocalClusterOptions options);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  Status start(uint64_t id);  // fork and exec `keyval node`; invalid_argument when it runs already
  Status start_all();
  // Sends `signal` to node id's PID (if it runs) and, for SIGKILL, reaps it at once.
  void signal(uint64_t id, int signal);
  // Waits up to timeout_ms for node id to exit; not_found when it is not running, io_error on timeout.
  Result<NodeExit> wait_exit(uint64_t id, uint64_t timeout_ms);
  // SIGTERM to every running node, then waits; a node still up after timeout_ms is killed.
  // The exits, in node-id order (nodes that were not running are left out).
  std::map<uint64_t, NodeExit> stop_all(uint64_t timeout_ms = 10000);
  bool running(uint64_t id);  // reaps it if it exited meanwhile
  pid_t pid(uint64_t id) const;
  uint64_t nodes() const { return options_.nodes; }

  const std::vector<Endpoint>& client_endpoints() const { return client_endpoints_; }
  std::string endpoints_flag() const;  // "127.0.0.1:P1,127.0.0.1:P2,..." in node-id order
  std::string peers_flag() const;      // "1=127.0.0.1:Q1,..." (the bootstrap nodes)
  const Endpoint& peer_endpoint(uint64_t id) const { return peer_endpoints_.at(id - 1); }
  // Where node id listens for peers: peer_endpoint, or its own port with separate_peer_listen.
  const Endpoint& peer_listen_endpoint(uint64_t id) const { return peer_listen_endpoints_.at(id - 1); }
  std::string disk_directory(uint64_t id) const;  // DIR/disk<i> (data_on_disks)
  std::string log_path(uint64_t id) const;
  uint64_t log_bytes(uint64_t id) const;  // the log's size now: where a restart's lines begin
  // The last line of node id's log from byte `from` on that contains `needle`, without its
  // time and "[node N] " tag; empty when there is none.
  std::string last_log_line(uint64_t id, const std::string& needle, uint64_t from = 0) const;
  std::string data_directory(uint64_t id) const;
  const std::string& directory() const { return options_.directory; }
  // The client TLS context for this cluster's nodes (null without tls_directory): give it to
  // KvClientOptions::tls.
  std::shared_ptr<TlsContext> client_tls() const { return client_tls_; }
  // The node's exit, when it exited and was reaped since it was last started.
  std::optional<NodeExit> last_exit(uint64_t id) const;

  // Polls every node until one is leader and a majority of the nodes name it in its term;
  // its id. not_this: wait for a leader other than this id (after killing it).
  Result<uint64_t> wait_for_leader(uint64_t timeout_ms, uint64_t not_this = 0);
  // The same among `members` only (the configuration's ids, after membership changes): a
  // majority of them name the leader.
  Result<uint64_t> wait_for_leader_among(const std::vector<uint64_t>& members, uint64_t timeout_ms,
                                         uint64_t not_this = 0);
  // Polls until every running node has applied at least `index`.
  Status wait_for_applied(uint64_t index, uint64_t timeout_ms);
  // One status poll: each node's view or why it did not answer.
  std::vector<Result<ClientResponse>> status(uint64_t request_timeout_ms = 300);

 private:
  explicit LocalCluster(LocalClusterOptions options) : options_(std::move(options)) {}
  void reap(uint64_t id, int wait_status);
  uint64_t bootstrap_nodes() const;
  std::vector<std::string> node_arguments(uint64_t id) const;

  LocalClusterOptions options_;
  std::vector<Endpoint> client_endpoints_;
  std::vector<Endpoint> peer_endpoints_;
  std::vector<Endpoint> peer_listen_endpoints_;
  std::vector<pid_t> pids_;  // index id - 1; 0: not running
  std::vector<std::optional<NodeExit>> exits_;
  std::shared_ptr<TlsContext> client_tls_;
};

struct WriteLoadReport {
  uint64_t acknowledged = 0;
  uint64_t unknown = 0;        // the client gave up without knowing whether it was applied
  uint64_t failed = 0;         // refused for sure (never applied)
  uint64_t verified = 0;       // acknowledged writes read back with their value
  uint64_t lost = 0;           // acknowledged writes missing or with another value
  uint64_t unreadable = 0;     // acknowledged writes whose read failed (no verdict)
  uint64_t unknown_present = 0;  // unknown-outcome writes that did take effect
  std::vector<std::string> problems;  // the first few lost or unreadable writes, described
};

// What the load does besides its verified puts. Puts always write unique keys (checked by
// verify()); gets, dels and cas work on a shared key space k0..k<keys-1> (exercising the
// paths, not checked for loss).
struct LoadShape {
  uint32_t put_percent = 100, get_percent = 0, del_percent = 0, cas_percent = 0;
  uint64_t keys = 1000;
  uint64_t rate_ops_per_s = 0;  // total over the writers; 0: closed loop
  uint64_t seed = 1;
  std::string key_prefix = "w";  // puts write <key_prefix><writer>-<n>: two loads on one cluster differ
};

// One operation of the load, for per-cycle accounting and for the history the
// linearizability checker reads (sim/history.h). Times on the steady clock.
struct LoadOp {
  enum Kind : uint8_t { put, get, del, cas } kind = put;
  enum Outcome : uint8_t { acknowledged, unknown, failed } outcome = failed;
  uint64_t invoke_ms = 0;
  uint64_t complete_ms = 0;
  uint64_t writer = 0;  // 1..writers: the client (one session each, one operation at a time)
  uint64_t invoke_ns = 0, complete_ns = 0;
  std::string key;
  std::string value;  // put, cas: the value written (a cas expects the key absent)
  // Acknowledged: get: the value read (nullopt: absent); del: "true"/"false", whether the key
  // existed; cas: "true"/"false", whether it matched; put: nullopt.
  std::optional<std::string> output;
};

class WriteLoad {
 public:
  // `writers` threads, one session each; value_bytes per value. Starts at once.
  WriteLoad(std::vector<Endpoint> endpoints, uint64_t writers, uint64_t value_bytes, KvClientOptions options = {},
            LoadShape shape = {});
  ~WriteLoad();  // stops and joins

  void stop();  // stops the writers (each finishes its operation in flight) and joins them
  uint64_t acknowledged() const { return acknowledged_.load(); }  // acknowledged puts
  uint64_t completed() const { return completed_.load(); }  // operations completed so far
  std::vector<LoadOp> operations();  // every operation completed so far (a copy)
  // The puts acknowledged so far, as (key, value): each was acknowledged before the call (a
  // backup begun after it must hold them all).
  std::vector<std::pair<std::string, std::string>> acknowledged_writes();
  // After stop(): reads every key written through a fresh client; counts as in WriteLoadReport.
  WriteLoadReport verify(KvClientOptions options = {});

 private:
  struct Write {
    std::string key;
    std::string value;
    enum Outcome { acknowledged, unknown, failed } outcome = failed;
  };
  void run_writer(uint64_t writer);

  std::vector<Endpoint> endpoints_;
  uint64_t writers_;
  uint64_t value_bytes_;
  KvClientOptions options_;
  LoadShape shape_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> acknowledged_{0};
  std::atomic<uint64_t> completed_{0};
  std::mutex mutex_;
  std::vector<Write> writes_;
  std::vector<LoadOp> operations_;
  std::vector<std::thread> threads_;
};

}  // namespace keyval
