// The client protocol: what a client asks a node and what it answers (schema/client.capnp).
// The same bytes travel over a client's TCP connection (one frame per message) and, in the
// simulator, between a simulated client and a node's client gateway.
//
// A write (put, del, cas) carries the client's session (client_id, sequence; the Raft
// dissertation §6.3): a retry repeats the sequence and is applied once, answered with the
// first result. request_id is echoed so a connection can have several requests in flight.
// Decoding never throws: malformed bytes become a corruption Status naming what was wrong.
//
// A backup (`keyval snapshot save`) is two kinds of request to the leader: snapshot_begin
// (a fresh durable snapshot holding every write acknowledged before it; the answer names it
// and its size) and then snapshot_chunk(index, term, offset) until the whole file is read,
// each chunk its own request (so each has its own deadline, however big the file).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/status.h"

namespace keyval {

enum class ClientOp : uint8_t {
  put = 0, get = 1, del = 2, cas = 3, status = 4, snapshot_begin = 5, snapshot_chunk = 6,
  leader_transfer = 7,  // to the leader: hand leadership to transfer_target (0: the best follower)
  // Membership (docs/MEMBERSHIP.md): the configuration in use; to the leader, add a learner,
  // promote a learner, remove a member (member_id, and for add its addresses).
  member_list = 8, member_add = 9, member_promote = 10, member_remove = 11,
  // The pairs with key <= key < range_end in key order, bounded and paged (storage/kv_state_machine.h
  // KvRange): `keyval range`, `keyval get --prefix`.
  range = 12,
  // One log entry each, applied atomically by the state machine (storage/kv_command.h): several
  // keys written under a condition, several deleted, a decimal incremented, a value appended.
  put_many = 13, del_many = 14, increment = 15, append = 16,
};
// "put", "get", "del", "cas", "status", "snapshot_begin", "snapshot_chunk", "leader_transfer",
// "member_list", "member_add", "member_promote", "member_remove", "range", "put_many",
// "del_many", "increment", "append"
const char* client_op_name(ClientOp op);
// The ops that change the state through a log entry (and carry a session).
bool is_write_op(ClientOp op);

struct ClientRequest {
  uint64_t request_id = 0;  // echoed in the response
  uint64_t client_id = 0;   // writes: the session (0: no session, never deduplicated)
  uint64_t sequence = 0;    // writes: per client from 1, a retry repeats it
  ClientOp op = ClientOp::get;
  std::string key;                      // put, get, del, cas
  std::string value;                    // put: the value; cas: the new value
  std::optional<std::string> expected;  // cas: the value required (nullopt: the key must be absent)
  bool blind = false;                   // put: the answer need not carry the value replaced
  bool hash = false;                    // status: also the key-value state's hash (slow: reads it all)
  // snapshot_chunk: the snapshot (as snapshot_begin named it) and the file offset to read from.
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;
  uint64_t chunk_offset = 0;
  uint64_t transfer_target = 0;  // leader_transfer: the node to lead next (0: the leader picks)
  // member_add, member_promote, member_remove: the member; member_add: where it listens for
  // peers and serves clients ("HOST:PORT"), and `learner`, which must be true (a member joins
  // as a learner and is promoted once caught up).
  uint64_t member_id = 0;
  std::string member_peer_address;
  std::string member_client_address;
  bool member_learner = true;
  // range: from `key` (may be empty: the first key) to range_end (empty: the last key), at most
  // range_limit pairs (0: no limit) and range_bytes_max bytes per answer (0: the node's bound).
  std::string range_end;
  uint64_t range_limit = 0;
  uint64_t range_bytes_max = 0;
  bool keys_only = false;
  bool count_only = false;
  // get, range: served from the node's applied state without a ReadIndex (possibly stale).
  bool serializable = false;
  // put_many: keys[i] gets values[i] when `condition` (PutCondition's number) holds for every
  // key; del_many: keys. increment: key and delta; append: key and value.
  std::vector<std::string> keys;
  std::vector<std::string> values;
  uint8_t condition = 0;
  int64_t delta = 0;
  // The fingerprint of the member list the client holds (ClientResponse::directory_version;
  // 0: none): the answer leaves `members` out when the node's directory has it.
  uint64_t directory_known = 0;

  bool operator==(const ClientRequest& other) const;
};

// Values are part of the wire format (schema/client.capnp ClientStatus).
enum class ClientStatus : uint8_t {
  ok = 0,               // done; the fields below hold the answer
  not_leader = 1,       // this node is not the leader: ask leader_hint (0: unknown); nothing was done
  no_leader = 2,        // no leader known right now: retry later; nothing was done
  timeout = 3,          // gave up waiting: the write may or may not take effect (retry with the same sequence)
  rejected = 4,         // invalid request (bad key, malformed): nothing was done
  stale_request = 5,    // the session has a later sequence already: not applied
  session_expired = 6,  // the session was evicted: not applied
  lost = 7,             // proposed, but leadership changed and another entry took its place: not applied
  busy = 8,             // the node is overloaded (back-pressure): nothing was done
  unavailable = 9,      // the node is stopping or failed: the write may or may not take effect
};
const char* client_status_name(ClientStatus status);

// A member of the cluster and where it serves clients (schema/client.capnp ClientMember).
struct ClientMember {
  uint64_t node_id = 0;
  std::string client_address;  // "HOST:PORT"; empty: not known to the answering node

  bool operator==(const ClientMember& other) const {
    return node_id == other.node_id && client_address == other.client_address;
  }
};

// A member of the configuration as member_list answers it (schema/client.capnp
// ConfigurationMember). match_index: the leader's view of the member's log (0 from a follower).
struct ConfigurationMember {
  uint64_t node_id = 0;
  std::string peer_address;
  std::string client_address;
  bool learner = false;
  uint64_t match_index = 0;

  bool operator==(const ConfigurationMember& other) const {
    return node_id == other.node_id && peer_address == other.peer_address &&
           client_address == other.client_address && learner == other.learner && match_index == other.match_index;
  }
};

// Bounds of what an answer says about the cluster: a decoder refuses more members or a longer
// address (a name of at most 253 bytes, brackets, a colon and a port fit).
constexpr size_t client_members_max = 64;
constexpr size_t client_address_bytes_max = 300;

struct ClientResponse {
  uint64_t request_id = 0;
  ClientStatus status = ClientStatus::ok;
  std::string message;      // why, when status is not ok
  uint64_t leader_hint = 0; // the node id this node believes leads (0: unknown); always filled
  // get: whether the key exists and its value. put, del, cas: whether the key existed before
  // the command and its previous value.
  bool found = false;
  std::string value;
  bool cas_succeeded = false;  // cas: the comparison matched and the new value was written
  uint64_t index = 0;          // writes: the log index of the entry; get: the read index served
  // The answering node's id (every answer); status: the answering node's view.
  uint64_t node_id = 0;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  std::string role;  // "leader", "follower", "candidate", "pre_candidate"
  // status: the node's latest snapshot and its log bounds. snapshot_begin, snapshot_chunk:
  // the backup snapshot (snapshot_index, snapshot_term).
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;
  uint64_t first_index = 0;
  uint64_t last_index = 0;
  // status with hash: the key-value state's hash (storage/snapshot.h hash_state_machine) at
  // applied index hash_index; `hashed` says they are filled in.
  bool hashed = false;
  uint64_t state_hash = 0;
  uint64_t hash_index = 0;
  // snapshot_begin: the snapshot file's size. snapshot_chunk: the same, and the file's bytes
  // from the requested offset, at most client_snapshot_chunk_bytes_max (empty at its end).
  uint64_t total_bytes = 0;
  std::string chunk;
  // Every answer: leader_hint's client address ("" when unknown) and the members of the
  // configuration with their client addresses, as the answering node knows them.
  std::string leader_client_address;
  std::vector<ClientMember> members;
  // member_*: the configuration in use at the answering node, its entry's index (0: from a
  // snapshot or the node's flags) and whether that entry is committed. A change's answer also
  // names its entry (index, term).
  uint64_t configuration_index = 0;
  bool configuration_committed = false;
  std::vector<ConfigurationMember> configuration;
  // range: the pairs in key order (values empty with keys_only, none with count_only), how
  // many (returned, or counted), and whether keys are left past a bound (ask again from the
  // last key + "\0").
  std::vector<std::string> keys;
  std::vector<std::string> values;
  uint64_t range_count = 0;
  bool more = false;
  // put_many, del_many: how many of the keys existed (and cas_succeeded: put_many wrote);
  // increment: the new value; append: the new length.
  int64_t number = 0;
  // Every answer: the fingerprint of the answering node's directory (directory_fingerprint;
  // 0: none). `members` is empty when the request's directory_known equals it.
  uint64_t directory_version = 0;

  bool operator==(const ClientResponse& other) const;
};

// A frame's payload is bounded: a request or response larger than this is refused.
constexpr size_t client_message_bytes_max = 4u << 20;
// A range answer's keys and values, at most (plus one pair of any size when the first is
// bigger): well inside client_message_bytes_max with the answer's other fields.
constexpr uint64_t range_bytes_max = 1u << 20;
// A snapshot_chunk answer carries at most this many file bytes: with the rest of the
// response it stays well inside client_message_bytes_max (and a 1 MiB read keeps the
// snapshotter's reply, a copy of it, and the socket's buffer small).
constexpr size_t client_snapshot_chunk_bytes_max = 1u << 20;
static_assert(client_snapshot_chunk_bytes_max + (64u << 10) <= client_message_bytes_max,
              "a full snapshot chunk and its response fields fit in one client message");

// An answer that carries only a status and why (request_id echoed, no leader hint yet).
ClientResponse client_refusal(uint64_t request_id, ClientStatus status, std::string message);

// The fingerprint of a directory: FNV-1a over the members' ids and client addresses in the
// order given (callers list them by id). Never 0, which means "no directory"; an empty list
// has none.
uint64_t directory_fingerprint(const std::vector<ClientMember>& members);

std::vector<uint8_t> encode_client_request(const ClientRequest& request);
Result<ClientRequest> decode_client_request(const uint8_t* data, size_t bytes);
std::vector<uint8_t> encode_client_response(const ClientResponse& response);
Result<ClientResponse> decode_client_response(const uint8_t* data, size_t bytes);
// A batch of linearizable gets inside one node (schema/client.capnp GetBatch): listeners send
// the gets of a cycle to their gateway as one message (client_gets_atom, client_gateway.h).
constexpr size_t get_batch_keys_max = 4096;
struct GetBatch {
  std::vector<std::string> keys;
  uint64_t directory_known = 0;
};
// Its answer: `header` as a get's answer (status, message, leader, read index, node, directory),
// for every key; when it is ok, found[i] and values[i] are keys[i]'s.
struct GetBatchAnswer {
  ClientResponse header;
  std::vector<uint8_t> found;
  std::vector<std::string> values;
};
// A GetBatch of `keys` (encoded from the caller's vector: a listener keeps its keys, to send
// them again one by one should the batch be refused).
std::vector<uint8_t> encode_get_batch(const std::vector<std::string>& keys, uint64_t directory_known);
// Corruption when malformed or over get_batch_keys_max; invalid_argument naming the key when
// a key is empty or longer than kv_key_bytes_max (as decode_client_request refuses a get's).
Result<GetBatch> decode_get_batch(const uint8_t* data, size_t bytes);
// `found` and `values` are read only when header.status is ok (then they must be as long).
std::vector<uint8_t> encode_get_batch_answer(const ClientResponse& header, const std::vector<uint8_t>& found,
                                             const std::vector<std::string>& values);
// Corruption when malformed, or ok with lists of different lengths.
Result<GetBatchAnswer> decode_get_batch_answer(const uint8_t* data, size_t bytes);
// The answer a get alone would have had (request_id: the get's): the header, and when it is
// ok the key's found and value (moved out of `answer`). `i` must be below answer.values.size()
// when the header is ok.
ClientResponse get_batch_response(GetBatchAnswer& answer, size_t i, uint64_t request_id);

// Only the status of an encoded ClientResponse, nothing copied (the metrics count every
// answer by its outcome); corruption as decode_client_response says it.
Result<ClientStatus> peek_client_status(const uint8_t* data, size_t bytes);

}  // namespace keyval
