// KvClient: a blocking client for a KeyVal cluster over TCP, with plain POSIX sockets.
// Frames as in actors/framing.h, payloads as in actors/client_protocol.h.
//
// Endpoints are addresses, in any order, and one reachable endpoint is enough: every answer
// names the node that gave it, the leader with its client address and the members with
// theirs, and the client learns them (client/known_nodes.h). It learns which node each endpoint
// is, goes to the leader at the address an answer named (one it may not have been given), and
// cycles through every member it learned of when it must look for the leader. Errors name each
// node by id and address ("node 2 (127.0.0.1:7102)"), or by address while its id is unknown.
//
// Finding the leader and retrying follow the policy every KeyVal client shares
// (client/operation_policy.h, also run by the simulator's clients): an operation goes first to
// the last node that answered ok; a not_leader answer with a hint is followed at once (to the
// leader's client address); other failures move on after a backoff (doubling from
// backoff_ms_min to backoff_ms_max). The whole operation, every retry included, ends within
// operation_timeout_ms: then the error names the last failure seen at each node. Every socket
// wait goes through poll() with the attempt's deadline, so nothing blocks forever (name
// resolution aside: give numeric hosts).
//
// Writes (put, del, cas) carry the session (ClientSession: client_id, sequence; the Raft
// dissertation §6.3), so the cluster applies a retried write once. A write that may have
// reached a leader without an answer saying what came of it (a timeout, an unavailable or busy
// answer, a connection lost after the request was sent) is retried with the same sequence
// until the operation timeout; if the client gives up, the error says the write may have taken
// effect, and if it was the session's first write, the next write starts a new session.
//
// Backups (snapshot_save, client/kv_client_snapshot.cc): the leader takes a fresh snapshot that
// holds every write acknowledged before the call (snapshot_begin, found and retried as any
// operation, under slow_request_timeout_ms), then its file is read from that node one chunk
// request at a time into PATH.part, fdatasynced, verified end to end (storage/snapshot_file.h)
// and renamed to PATH; a backup whose chunks can no longer be read starts over (a few times);
// any failure removes PATH.part and names what failed.
//
// One connection per known node, reopened when closed; one request in flight. Not thread
// safe: use one KvClient per thread (each its own session).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "client/endpoint.h"
#include "client/operation_policy.h"
#include "client/known_nodes.h"
#include "client/kv_socket.h"
#include "actors/tls.h"
#include "storage/snapshot_file.h"
#include "storage/status.h"

namespace keyval {

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
  // TLS to every node (a client context: the CA that signed the nodes' certificates, and this
  // client's certificate when the nodes require one; docs/SECURITY.md). Null: plaintext.
  std::shared_ptr<TlsContext> tls;
};

// One node's view for `keyval status`: its id (0 when no answer named it), its client address
// (empty when no node knew it), and its answer or why it could not be had.
struct NodeView {
  uint64_t node_id = 0;
  Endpoint endpoint;
  Result<ClientResponse> view;
};

// A backup's progress: bytes of the snapshot file written so far, and its size.
using SnapshotSaveProgress = std::function<void(uint64_t bytes_done, uint64_t total_bytes)>;

// A range read (KvClient::range): the pairs with from <= key < to ("" : no upper bound) in
// key order, paged by the nodes' answer bound (page_bytes, 0: the node's, 1 MiB) and
// gathered here, at most `limit` (0: all). Each page is its own linearizable read (a
// ReadIndex) unless serializable (each page from one node's applied state, possibly stale):
// a range that spans pages is not one snapshot; a key written meanwhile may be seen in one
// page's state and not another's.
struct RangeOptions {
  std::string to;
  uint64_t limit = 0;
  uint64_t page_bytes = 0;
  bool keys_only = false;
  bool count_only = false;  // only the number of pairs (within limit); no pairs
  bool serializable = false;
};

struct RangeAnswer {
  std::vector<std::pair<std::string, std::string>> pairs;  // values empty with keys_only
  uint64_t count = 0;                                      // pairs, or counted (count_only)
  uint64_t pages = 0;                                      // answers it took
  uint64_t index = 0;                                      // the first page's read index
};

class KvClient {
 public:
  explicit KvClient(std::vector<Endpoint> endpoints, KvClientOptions options = {});
  ~KvClient();
  KvClient(const KvClient&) = delete;
  KvClient& operator=(const KvClient&) = delete;

  // Each returns the ok response (its fields hold the answer: found, value, cas_succeeded,
  // index) or an error naming why it failed: invalid_argument when the cluster rejected the
  // request, io_error when no node completed it in time (with every node's last failure).
  // A put's answer is its index: it does not read the value it replaces (a blind put), so
  // found is false and value empty.
  Result<ClientResponse> put(const std::string& key, const std::string& value);
  // serializable: from whichever node answers, without a ReadIndex (possibly stale).
  Result<ClientResponse> get(const std::string& key, bool serializable = false);
  // The pairs of a range (RangeOptions above), every page gathered.
  Result<RangeAnswer> range(const std::string& from, const RangeOptions& options);
  Result<ClientResponse> del(const std::string& key);
  // expected nullopt: the key must be absent. cas_succeeded says whether it matched.
  Result<ClientResponse> cas(const std::string& key, const std::optional<std::string>& expected,
                             const std::string& new_value);

  // One node's view, one attempt within request_timeout_ms. With `hash`, also its key-value
  // state's hash (state_hash at hash_index), within slow_request_timeout_ms. By node id (the
  // given endpoints are asked first when no answer has named that node yet: not_found when
  // none does) or by address (any, given or not).
  Result<ClientResponse> status(uint64_t node_id, bool hash = false);
  Result<ClientResponse> status_of(const Endpoint& endpoint, bool hash = false);
  // Every node's view, in node-id order: each endpoint given and each member the answers named
  // (asked in turn, so one reachable endpoint lists the whole cluster), then the endpoints
  // whose id no answer named.
  std::vector<NodeView> status_all(bool hash = false);

  // A backup of the cluster's state into `path` (see the top of this file): the verified
  // file's summary (index, term, keys, sessions, bytes, checksum); leader() names the node
  // it came from. `progress` (may be empty) is called after each chunk.
  Result<SnapshotSummary> snapshot_save(const std::string& path, const SnapshotSaveProgress& progress = nullptr);

  // Leadership transfer (§3.10): the leader (found as for any operation) hands leadership to
  // node `target` (0: its most up-to-date follower). ok: node_id handed over to leader_hint,
  // which leads in `term`. A transfer the cluster abandoned is asked again until the
  // operation timeout; then io_error says why. invalid_argument: refused (itself, unknown id).
  Result<ClientResponse> leader_transfer(uint64_t target);

  // Membership (docs/MEMBERSHIP.md). member_list: the configuration in use, from the leader
  // when it can be reached (its answer has each member's match index), else from any node
  // (role says whose view it is). The changes go to the leader (found as for any operation)
  // and answer once committed: ok with index, term and the configuration now in use;
  // invalid_argument when refused (the message says why); io_error when not completed. A
  // remove of the leader itself is answered not_leader once leadership moved: the client
  // follows that hint, so the new leader removes the old one.
  Result<ClientResponse> member_list();
  Result<ClientResponse> member_add(uint64_t id, const std::string& peer_address, const std::string& client_address);
  Result<ClientResponse> member_promote(uint64_t id);
  Result<ClientResponse> member_remove(uint64_t id);

  uint64_t client_id() const { return session_.client_id(); }
  // The last write failed with an unknown outcome (it may still have taken effect).
  bool last_write_uncertain() const { return last_write_uncertain_; }
  uint64_t leader() const { return leader_; }  // the last node that answered ok; 0: none yet
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }  // as given
  const KnownNodes& known_nodes() const { return nodes_; }             // given and learned

 private:
  Result<ClientResponse> run(ClientRequest request);
  // run() with this attempt and operation timeout.
  Result<ClientResponse> run(ClientRequest request, uint64_t attempt_timeout_ms, uint64_t operation_timeout_ms);
  // A backup's chunk from `offset`, from the node in `slot`, asked up to snapshot_chunk_attempts_max times.
  Result<ClientResponse> snapshot_chunk(size_t slot, const ClientResponse& begun, uint64_t offset);
  // One backup attempt: snapshot_begin at the leader (*begun), then every chunk into part_path,
  // fdatasynced. *chunk_failed: the failure was reading a chunk (worth starting over).
  Status snapshot_download(const std::string& part_path, const SnapshotSaveProgress& progress, ClientResponse* begun,
                           bool* chunk_failed);
  // One status request to the node in `slot`.
  Result<ClientResponse> status_at(size_t slot, bool hash);
  // One request on the connection to the node in `slot` (opened if need be) within deadline_ms;
  // what the answer says about the cluster is learned. Sets *sent once the request bytes were
  // handed to the kernel.
  // *hinted (when given): the slot of the leader the answer names, when its address is known.
  Result<ClientResponse> exchange(size_t slot, ClientRequest& request, uint64_t deadline_ms, bool* sent,
                                  std::optional<size_t>* hinted = nullptr);
  Status connect_slot(size_t slot, uint64_t deadline_ms);
  void close_slot(size_t slot);
  void finish_write(bool applied, bool uncertain);

  std::vector<Endpoint> endpoints_;  // as given
  KvClientOptions options_;
  KnownNodes nodes_;          // given and learned; a slot per node
  std::vector<int> sockets_;  // per slot of nodes_; -1: not connected
  std::vector<SSL*> tls_;     // per slot of nodes_; null: plaintext or not connected
  std::vector<ReadBuffer> inbound_;  // per slot of nodes_: plaintext bytes read past the last answer
  ClientSession session_;
  bool last_write_uncertain_ = false;
  uint64_t leader_ = 0;
  std::optional<size_t> leader_slot_;  // the slot of the last node that answered ok
  size_t next_slot_ = 0;               // where cycling resumes
  uint64_t request_id_ = 0;
};

// A nonzero random id from /dev/urandom (falls back to the clock and pid if it cannot be read).
uint64_t random_client_id();

// KvClient's words for how an operation went, shared with ClientLoop (client/client_loop.h).
// An answer that the policy retried: "said not_leader (...), hint node 2 (127.0.0.1:7102)";
// hinted_node is the hinted leader described, empty when its client address is unknown.
std::string retried_answer(const ClientResponse& response, const std::string& hinted_node);
// An answer that ended the operation failed: invalid_argument when `node` rejected it, else
// io_error naming the session, the node and what it said.
Status failed_operation(const ClientRequest& request, const ClientResponse& response, const std::string& node);
// No attempt completed by the operation's deadline: io_error with each node's last failure
// (last_failure: per slot of `nodes`) and, for a write that may have reached a leader, that
// its outcome is unknown.
Status unfinished_operation(const ClientRequest& request, const OperationPolicy& policy, uint64_t operation_timeout_ms,
                            const KnownNodes& nodes, const std::map<size_t, std::string>& last_failure);

}  // namespace keyval
