// KvClient: a blocking client for a KeyVal cluster over TCP, with plain POSIX sockets.
// Frames as in actors/framing.h, payloads as in actors/client_protocol.h.
//
// Node ids map to endpoints by position: node id i is endpoints[i - 1]. The operator
// lists the endpoints in node-id order (the same order as the cluster's configuration),
// or a leader_hint would send the client to the wrong address.
//
// Finding the leader: an operation goes first to the last node that answered ok; a
// not_leader answer with a hint is followed at once; no_leader, a refused connection, a
// closed connection or no answer within request_timeout_ms moves on to the next endpoint
// after a short backoff (doubling from backoff_ms_min to backoff_ms_max). The whole
// operation, every retry included, ends within operation_timeout_ms: then the error names
// the last failure seen at each node. Every socket wait goes through poll() with the
// attempt's deadline, so nothing blocks forever (name resolution aside: give numeric hosts).
//
// Writes (put, del, cas) carry the session (client_id, sequence; the Raft dissertation
// §6.3): sequences start at 1 and every retry of one operation repeats its sequence, so the
// cluster applies it once. A timeout, an unavailable answer or a lost connection after the
// request was sent leaves the outcome unknown: the client retries the same sequence until
// the operation timeout, and if it gives up the error says the write may have taken effect.
// A session starts at sequence 1: if the first write ends unknown, the next write starts a
// new session (a new client id), since sequence 2 would find no session to follow.
//
// Backups (snapshot_save, apps/kv_client_snapshot.cc): the leader takes a fresh snapshot that
// holds every write acknowledged before the call (snapshot_begin, found and retried as any
// operation, under slow_request_timeout_ms), then its file is read from that node one chunk
// request at a time into PATH.part, fdatasynced, verified end to end (storage/snapshot_file.h)
// and renamed to PATH; a backup whose chunks can no longer be read starts over (a few times);
// any failure removes PATH.part and names what failed.
//
// One connection per endpoint, reopened when closed; one request in flight. Not thread
// safe: use one KvClient per thread (each its own session).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "storage/snapshot_file.h"
#include "storage/status.h"

namespace keyval {

struct Endpoint {
  std::string host;  // a name or a numeric address ("127.0.0.1", "::1")
  uint16_t port = 0;

  std::string str() const;  // "host:port" ("[::1]:7101" for IPv6)
};

constexpr size_t endpoints_max = 64;  // bound on a cluster's endpoint list

// "HOST:PORT" or "[IPV6]:PORT"; invalid_argument naming what is wrong.
Result<Endpoint> parse_endpoint(const std::string& text);
// A comma-separated list of endpoints in node-id order, at least one, at most endpoints_max.
Result<std::vector<Endpoint>> parse_endpoints(const std::string& text);

struct KvClientOptions {
  uint64_t request_timeout_ms = 1000;    // one attempt: connect, send, wait for the answer
  uint64_t operation_timeout_ms = 5000;  // one operation, every retry included
  uint64_t client_id = 0;                // the session; 0: a random nonzero id from /dev/urandom
  uint64_t backoff_ms_min = 10;          // first wait before retrying another endpoint
  uint64_t backoff_ms_max = 200;         // the wait doubles up to this
  // One attempt of a request that reads the whole state (a backup's snapshot_begin, a status
  // with hash) or a backup's chunk; also the least operation timeout of snapshot_begin.
  uint64_t slow_request_timeout_ms = 60000;
  uint32_t snapshot_chunk_attempts_max = 3;  // a backup's chunk is asked again this often
  // A backup whose chunks can no longer be read (the node released that snapshot, or stopped)
  // starts over with a fresh snapshot, up to this many attempts in all.
  uint32_t snapshot_save_attempts_max = 3;
};

// A backup's progress: bytes of the snapshot file written so far, and its size.
using SnapshotSaveProgress = std::function<void(uint64_t bytes_done, uint64_t total_bytes)>;

class KvClient {
 public:
  explicit KvClient(std::vector<Endpoint> endpoints, KvClientOptions options = {});
  ~KvClient();
  KvClient(const KvClient&) = delete;
  KvClient& operator=(const KvClient&) = delete;

  // Each returns the ok response (its fields hold the answer: found, value, cas_succeeded,
  // index) or an error naming why it failed: invalid_argument when the cluster rejected the
  // request, io_error when no node completed it in time (with every node's last failure).
  Result<ClientResponse> put(const std::string& key, const std::string& value);
  Result<ClientResponse> get(const std::string& key);
  Result<ClientResponse> del(const std::string& key);
  // expected nullopt: the key must be absent. cas_succeeded says whether it matched.
  Result<ClientResponse> cas(const std::string& key, const std::optional<std::string>& expected,
                             const std::string& new_value);

  // One node's view (node_id from 1), one attempt within request_timeout_ms. With `hash`,
  // also its key-value state's hash (state_hash at hash_index), within slow_request_timeout_ms.
  Result<ClientResponse> status(uint64_t node_id, bool hash = false);
  // Every node's view, in node-id order: its answer or why it could not be reached.
  std::vector<Result<ClientResponse>> status_all(bool hash = false);

  // A backup of the cluster's state into `path` (see the top of this file): the verified
  // file's summary (index, term, keys, sessions, bytes, checksum); leader() names the node
  // it came from. `progress` (may be empty) is called after each chunk.
  Result<SnapshotSummary> snapshot_save(const std::string& path, const SnapshotSaveProgress& progress = nullptr);

  // Leadership transfer (§3.10): the leader (found as for any operation) hands leadership to
  // node `target` (0: its most up-to-date follower). ok: node_id handed over to leader_hint,
  // which leads in `term`. A transfer the cluster abandoned is asked again until the
  // operation timeout; then io_error says why. invalid_argument: refused (itself, unknown id).
  Result<ClientResponse> leader_transfer(uint64_t target);

  uint64_t client_id() const { return client_id_; }
  // The last write failed with an unknown outcome (it may still have taken effect).
  bool last_write_uncertain() const { return last_write_uncertain_; }
  uint64_t leader() const { return leader_; }  // the last node that answered ok; 0: none yet
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }

 private:
  struct Operation;  // one operation's retry state (kv_client.cc)

  Result<ClientResponse> run(ClientRequest request);
  // run() with this attempt and operation timeout.
  Result<ClientResponse> run(ClientRequest request, uint64_t attempt_timeout_ms, uint64_t operation_timeout_ms);
  // A backup's chunk from `offset`, from node_id, asked up to snapshot_chunk_attempts_max times.
  Result<ClientResponse> snapshot_chunk(uint64_t node_id, const ClientResponse& begun, uint64_t offset);
  // One backup attempt: snapshot_begin at the leader (*begun), then every chunk into part_path,
  // fdatasynced. *chunk_failed: the failure was reading a chunk (worth starting over).
  Status snapshot_download(const std::string& part_path, const SnapshotSaveProgress& progress, ClientResponse* begun,
                           bool* chunk_failed);
  // One request on node_id's connection (opened if need be) within deadline_ms.
  // Sets *sent once the request bytes were handed to the kernel.
  Result<ClientResponse> exchange(uint64_t node_id, const ClientRequest& request, uint64_t deadline_ms, bool* sent);
  Status connect_node(uint64_t node_id, uint64_t deadline_ms);
  void close_node(uint64_t node_id);
  void finish_write(bool applied, bool uncertain);

  std::vector<Endpoint> endpoints_;
  KvClientOptions options_;
  std::vector<int> sockets_;  // per node (index node_id - 1); -1: not connected
  uint64_t client_id_ = 0;
  uint64_t sequence_ = 0;     // the last sequence used by a write
  bool session_started_ = false;  // a write of this session is known to have been applied
  bool last_write_uncertain_ = false;
  uint64_t leader_ = 0;
  uint64_t next_node_ = 1;    // where cycling resumes
  uint64_t request_id_ = 0;
};

// A nonzero random id from /dev/urandom (falls back to the clock and pid if it cannot be read).
uint64_t random_client_id();

}  // namespace keyval
