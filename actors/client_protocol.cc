// The client protocol in Cap'n Proto (schema/client.capnp). Decoding goes through
// read_message (storage/capnp_message.h), which aligns the input, bounds the traversal by
// the message's size and turns Cap'n Proto's exceptions into a corruption Status.
// Malformed bytes (oversized, unknown op or status) are corruption; a well-formed request
// that names an impossible key is invalid_argument, so a gateway can answer `rejected`.
#include "actors/client_protocol.h"

#include <string>

#include "schema/client.capnp.h"
#include "storage/capnp_message.h"
#include "storage/kv_command.h"

namespace keyval {
namespace {

static_assert(static_cast<uint16_t>(schema::ClientStatus::UNAVAILABLE) ==
                  static_cast<uint16_t>(ClientStatus::unavailable),
              "schema/client.capnp numbers its statuses as ClientStatus, from 0 without gaps");
static_assert(schema::ClientRequest::PUT == static_cast<uint16_t>(ClientOp::put) &&
                  schema::ClientRequest::GET == static_cast<uint16_t>(ClientOp::get) &&
                  schema::ClientRequest::DEL == static_cast<uint16_t>(ClientOp::del) &&
                  schema::ClientRequest::CAS == static_cast<uint16_t>(ClientOp::cas) &&
                  schema::ClientRequest::STATUS == static_cast<uint16_t>(ClientOp::status) &&
                  schema::ClientRequest::SNAPSHOT_BEGIN == static_cast<uint16_t>(ClientOp::snapshot_begin) &&
                  schema::ClientRequest::SNAPSHOT_CHUNK == static_cast<uint16_t>(ClientOp::snapshot_chunk) &&
                  schema::ClientRequest::LEADER_TRANSFER == static_cast<uint16_t>(ClientOp::leader_transfer) &&
                  schema::ClientRequest::MEMBER_LIST == static_cast<uint16_t>(ClientOp::member_list) &&
                  schema::ClientRequest::MEMBER_ADD == static_cast<uint16_t>(ClientOp::member_add) &&
                  schema::ClientRequest::MEMBER_PROMOTE == static_cast<uint16_t>(ClientOp::member_promote) &&
                  schema::ClientRequest::MEMBER_REMOVE == static_cast<uint16_t>(ClientOp::member_remove) &&
                  schema::ClientRequest::RANGE == static_cast<uint16_t>(ClientOp::range) &&
                  schema::ClientRequest::PUT_MANY == static_cast<uint16_t>(ClientOp::put_many) &&
                  schema::ClientRequest::DELETE_MANY == static_cast<uint16_t>(ClientOp::del_many) &&
                  schema::ClientRequest::INCREMENT == static_cast<uint16_t>(ClientOp::increment) &&
                  schema::ClientRequest::APPEND == static_cast<uint16_t>(ClientOp::append),
              "schema/client.capnp orders its union as ClientOp");

Status refuse_oversized(size_t bytes, const std::string& where) {
  if (bytes <= client_message_bytes_max) return Status::ok();
  return Status::corruption(where + ": " + std::to_string(bytes) + " bytes, over the bound of " +
                            std::to_string(client_message_bytes_max));
}

// The same bounds the state machine applies (kv_command.h), checked at the edge so a bad
// key is refused before it costs a log entry.
Status check_key(const std::string& key, ClientOp op) {
  if (key.empty()) {
    return Status::invalid_argument(std::string("client request: ") + client_op_name(op) + " with an empty key");
  }
  if (key.size() > kv_key_bytes_max) {
    return Status::invalid_argument(std::string("client request: ") + client_op_name(op) + " key of " +
                                    std::to_string(key.size()) + " bytes, over the bound of " +
                                    std::to_string(kv_key_bytes_max));
  }
  return Status::ok();
}

capnp::Text::Reader as_text(const std::string& text) { return capnp::Text::Reader(text.c_str(), text.size()); }

Status bounded_address(capnp::Text::Reader text, const char* what) {
  if (text.size() <= client_address_bytes_max) return Status::ok();
  return Status::corruption(std::string("client message: ") + what + " of " + std::to_string(text.size()) +
                            " bytes, over the bound of " + std::to_string(client_address_bytes_max));
}

bool has_key(ClientOp op) {
  return op == ClientOp::put || op == ClientOp::get || op == ClientOp::del || op == ClientOp::cas ||
         op == ClientOp::increment || op == ClientOp::append;
}

// Bounds of a many-key request: as many keys as fit in a message, each a valid key.
constexpr size_t client_keys_max = 1u << 16;

void fill_list(capnp::List<capnp::Data>::Builder list, const std::vector<std::string>& items) {
  for (unsigned i = 0; i < items.size(); ++i) list.set(i, as_data(items[i]));
}

Status read_list(capnp::List<capnp::Data>::Reader list, const char* what, std::vector<std::string>* items) {
  if (list.size() > client_keys_max) {
    return Status::corruption(std::string("client request: ") + std::to_string(list.size()) + " " + what +
                              ", over the bound of " + std::to_string(client_keys_max));
  }
  for (auto item : list) items->push_back(as_string(item));
  return Status::ok();
}

Status check_many(const ClientRequest& request) {
  if (request.keys.empty()) {
    return Status::invalid_argument(std::string("client request: ") + client_op_name(request.op) + " with no keys");
  }
  if (request.op == ClientOp::put_many && request.values.size() != request.keys.size()) {
    return Status::invalid_argument("client request: put_many with " + std::to_string(request.keys.size()) +
                                    " keys and " + std::to_string(request.values.size()) + " values");
  }
  if (request.op == ClientOp::put_many && request.condition > static_cast<uint8_t>(PutCondition::all_present)) {
    return Status::invalid_argument("client request: put_many with unknown condition " +
                                    std::to_string(request.condition));
  }
  for (const std::string& key : request.keys) KV_RETURN_IF_ERROR(check_key(key, request.op));
  return Status::ok();
}

void fill_request(schema::ClientRequest::Builder out, const ClientRequest& request) {
  out.setRequestId(request.request_id);
  out.setClientId(request.client_id);
  out.setSequence(request.sequence);
  out.setHash(request.hash);
  out.setSerializable(request.serializable);
  out.setDirectoryKnown(request.directory_known);
  switch (request.op) {
    case ClientOp::put: {
      auto put = out.initPut();
      put.setKey(as_data(request.key));
      put.setValue(as_data(request.value));
      put.setBlind(request.blind);
      return;
    }
    case ClientOp::get: out.initGet().setKey(as_data(request.key)); return;
    case ClientOp::del: out.initDel().setKey(as_data(request.key)); return;
    case ClientOp::cas: {
      auto cas = out.initCas();
      cas.setKey(as_data(request.key));
      cas.setExpectedAbsent(!request.expected.has_value());
      if (request.expected) cas.setExpected(as_data(*request.expected));
      cas.setNewValue(as_data(request.value));
      return;
    }
    case ClientOp::status: out.setStatus(); return;
    case ClientOp::snapshot_begin: out.setSnapshotBegin(); return;
    case ClientOp::snapshot_chunk: {
      auto chunk = out.initSnapshotChunk();
      chunk.setIndex(request.snapshot_index);
      chunk.setTerm(request.snapshot_term);
      chunk.setOffset(request.chunk_offset);
      return;
    }
    case ClientOp::leader_transfer: out.initLeaderTransfer().setTarget(request.transfer_target); return;
    case ClientOp::member_list: out.setMemberList(); return;
    case ClientOp::member_add: {
      auto add = out.initMemberAdd();
      add.setNodeId(request.member_id);
      add.setPeerAddress(as_text(request.member_peer_address));
      add.setClientAddress(as_text(request.member_client_address));
      add.setLearner(request.member_learner);
      return;
    }
    case ClientOp::member_promote: out.initMemberPromote().setNodeId(request.member_id); return;
    case ClientOp::member_remove: out.initMemberRemove().setNodeId(request.member_id); return;
    case ClientOp::range: {
      auto range = out.initRange();
      range.setFrom(as_data(request.key));
      range.setTo(as_data(request.range_end));
      range.setLimit(request.range_limit);
      range.setBytesMax(request.range_bytes_max);
      range.setKeysOnly(request.keys_only);
      range.setCountOnly(request.count_only);
      return;
    }
    case ClientOp::put_many: {
      auto many = out.initPutMany();
      fill_list(many.initKeys(static_cast<unsigned>(request.keys.size())), request.keys);
      fill_list(many.initValues(static_cast<unsigned>(request.values.size())), request.values);
      many.setCondition(request.condition);
      return;
    }
    case ClientOp::del_many:
      fill_list(out.initDeleteMany().initKeys(static_cast<unsigned>(request.keys.size())), request.keys);
      return;
    case ClientOp::increment: {
      auto increment = out.initIncrement();
      increment.setKey(as_data(request.key));
      increment.setDelta(request.delta);
      return;
    }
    case ClientOp::append: {
      auto append = out.initAppend();
      append.setKey(as_data(request.key));
      append.setValue(as_data(request.value));
      return;
    }
  }
  KV_ASSERT(false && "ClientRequest with an op outside ClientOp");
}

// A union member this build does not know (a newer client) is malformed for it.
Status read_op(schema::ClientRequest::Reader in, ClientRequest* request) {
  switch (in.which()) {
    case schema::ClientRequest::PUT:
      request->op = ClientOp::put;
      request->key = as_string(in.getPut().getKey());
      request->value = as_string(in.getPut().getValue());
      request->blind = in.getPut().getBlind();
      return Status::ok();
    case schema::ClientRequest::GET:
      request->op = ClientOp::get;
      request->key = as_string(in.getGet().getKey());
      return Status::ok();
    case schema::ClientRequest::DEL:
      request->op = ClientOp::del;
      request->key = as_string(in.getDel().getKey());
      return Status::ok();
    case schema::ClientRequest::CAS: {
      auto cas = in.getCas();
      request->op = ClientOp::cas;
      request->key = as_string(cas.getKey());
      request->value = as_string(cas.getNewValue());
      if (!cas.getExpectedAbsent()) request->expected = as_string(cas.getExpected());
      return Status::ok();
    }
    case schema::ClientRequest::STATUS: request->op = ClientOp::status; return Status::ok();
    case schema::ClientRequest::SNAPSHOT_BEGIN: request->op = ClientOp::snapshot_begin; return Status::ok();
    case schema::ClientRequest::SNAPSHOT_CHUNK: {
      auto chunk = in.getSnapshotChunk();
      request->op = ClientOp::snapshot_chunk;
      request->snapshot_index = chunk.getIndex();
      request->snapshot_term = chunk.getTerm();
      request->chunk_offset = chunk.getOffset();
      return Status::ok();
    }
    case schema::ClientRequest::LEADER_TRANSFER:
      request->op = ClientOp::leader_transfer;
      request->transfer_target = in.getLeaderTransfer().getTarget();
      return Status::ok();
    case schema::ClientRequest::MEMBER_LIST: request->op = ClientOp::member_list; return Status::ok();
    case schema::ClientRequest::MEMBER_ADD: {
      auto add = in.getMemberAdd();
      request->op = ClientOp::member_add;
      request->member_id = add.getNodeId();
      KV_RETURN_IF_ERROR(bounded_address(add.getPeerAddress(), "member_add peer address"));
      KV_RETURN_IF_ERROR(bounded_address(add.getClientAddress(), "member_add client address"));
      request->member_peer_address = as_string(add.getPeerAddress());
      request->member_client_address = as_string(add.getClientAddress());
      request->member_learner = add.getLearner();
      return Status::ok();
    }
    case schema::ClientRequest::MEMBER_PROMOTE:
      request->op = ClientOp::member_promote;
      request->member_id = in.getMemberPromote().getNodeId();
      return Status::ok();
    case schema::ClientRequest::MEMBER_REMOVE:
      request->op = ClientOp::member_remove;
      request->member_id = in.getMemberRemove().getNodeId();
      return Status::ok();
    case schema::ClientRequest::RANGE: {
      auto range = in.getRange();
      request->op = ClientOp::range;
      request->key = as_string(range.getFrom());
      request->range_end = as_string(range.getTo());
      request->range_limit = range.getLimit();
      request->range_bytes_max = range.getBytesMax();
      request->keys_only = range.getKeysOnly();
      request->count_only = range.getCountOnly();
      return Status::ok();
    }
    case schema::ClientRequest::PUT_MANY: {
      auto many = in.getPutMany();
      request->op = ClientOp::put_many;
      request->condition = many.getCondition();
      KV_RETURN_IF_ERROR(read_list(many.getKeys(), "keys", &request->keys));
      return read_list(many.getValues(), "values", &request->values);
    }
    case schema::ClientRequest::DELETE_MANY:
      request->op = ClientOp::del_many;
      return read_list(in.getDeleteMany().getKeys(), "keys", &request->keys);
    case schema::ClientRequest::INCREMENT:
      request->op = ClientOp::increment;
      request->key = as_string(in.getIncrement().getKey());
      request->delta = in.getIncrement().getDelta();
      return Status::ok();
    case schema::ClientRequest::APPEND:
      request->op = ClientOp::append;
      request->key = as_string(in.getAppend().getKey());
      request->value = as_string(in.getAppend().getValue());
      return Status::ok();
  }
  return Status::corruption("client request: unknown op " + std::to_string(static_cast<uint16_t>(in.which())));
}

Status read_request(schema::ClientRequest::Reader in, ClientRequest* request) {
  request->request_id = in.getRequestId();
  request->client_id = in.getClientId();
  request->sequence = in.getSequence();
  request->hash = in.getHash();
  request->serializable = in.getSerializable();
  request->directory_known = in.getDirectoryKnown();
  KV_RETURN_IF_ERROR(read_op(in, request));
  if (request->op == ClientOp::range) {
    // Bounds are keys or nothing: "" is the first key (from) or no upper bound (to).
    for (const std::string* bound : {&request->key, &request->range_end}) {
      if (bound->size() > kv_key_bytes_max) return check_key(*bound, request->op);
    }
    return Status::ok();
  }
  if (request->op == ClientOp::put_many || request->op == ClientOp::del_many) return check_many(*request);
  if (!has_key(request->op)) return Status::ok();
  return check_key(request->key, request->op);
}

void fill_response(schema::ClientResponse::Builder out, const ClientResponse& response) {
  out.setRequestId(response.request_id);
  out.setStatus(static_cast<schema::ClientStatus>(response.status));
  out.setMessage(capnp::Text::Reader(response.message.c_str(), response.message.size()));
  out.setLeaderHint(response.leader_hint);
  out.setFound(response.found);
  out.setValue(as_data(response.value));
  out.setCasSucceeded(response.cas_succeeded);
  out.setIndex(response.index);
  out.setNodeId(response.node_id);
  out.setTerm(response.term);
  out.setCommitIndex(response.commit_index);
  out.setAppliedIndex(response.applied_index);
  out.setRole(capnp::Text::Reader(response.role.c_str(), response.role.size()));
  out.setSnapshotIndex(response.snapshot_index);
  out.setSnapshotTerm(response.snapshot_term);
  out.setFirstIndex(response.first_index);
  out.setLastIndex(response.last_index);
  out.setHashed(response.hashed);
  out.setStateHash(response.state_hash);
  out.setHashIndex(response.hash_index);
  out.setTotalBytes(response.total_bytes);
  out.setChunk(as_data(response.chunk));
  out.setLeaderClientAddress(
      capnp::Text::Reader(response.leader_client_address.c_str(), response.leader_client_address.size()));
  if (!response.members.empty()) {
    auto members = out.initMembers(static_cast<unsigned>(response.members.size()));
    for (unsigned i = 0; i < members.size(); ++i) {
      const ClientMember& member = response.members[i];
      members[i].setNodeId(member.node_id);
      members[i].setClientAddress(capnp::Text::Reader(member.client_address.c_str(), member.client_address.size()));
    }
  }
  out.setConfigurationIndex(response.configuration_index);
  out.setConfigurationCommitted(response.configuration_committed);
  if (!response.configuration.empty()) {
    auto configuration = out.initConfiguration(static_cast<unsigned>(response.configuration.size()));
    for (unsigned i = 0; i < configuration.size(); ++i) {
      const ConfigurationMember& member = response.configuration[i];
      configuration[i].setNodeId(member.node_id);
      configuration[i].setPeerAddress(as_text(member.peer_address));
      configuration[i].setClientAddress(as_text(member.client_address));
      configuration[i].setLearner(member.learner);
      configuration[i].setMatchIndex(member.match_index);
    }
  }
  if (!response.keys.empty()) {
    auto keys = out.initKeys(static_cast<unsigned>(response.keys.size()));
    for (unsigned i = 0; i < keys.size(); ++i) keys.set(i, as_data(response.keys[i]));
  }
  if (!response.values.empty()) {
    auto values = out.initValues(static_cast<unsigned>(response.values.size()));
    for (unsigned i = 0; i < values.size(); ++i) values.set(i, as_data(response.values[i]));
  }
  out.setRangeCount(response.range_count);
  out.setMore(response.more);
  out.setNumber(response.number);
  out.setDirectoryVersion(response.directory_version);
}

// The configuration an answer carries, bounded as the members are.
Status read_configuration(schema::ClientResponse::Reader in, ClientResponse* response) {
  response->configuration_index = in.getConfigurationIndex();
  response->configuration_committed = in.getConfigurationCommitted();
  auto configuration = in.getConfiguration();
  if (configuration.size() > client_members_max) {
    return Status::corruption("client response: a configuration of " + std::to_string(configuration.size()) +
                              " members, over the bound of " + std::to_string(client_members_max));
  }
  for (auto member : configuration) {
    KV_RETURN_IF_ERROR(bounded_address(member.getPeerAddress(), "member peer address"));
    KV_RETURN_IF_ERROR(bounded_address(member.getClientAddress(), "member client address"));
    response->configuration.push_back(ConfigurationMember{member.getNodeId(), as_string(member.getPeerAddress()),
                                                          as_string(member.getClientAddress()), member.getLearner(),
                                                          member.getMatchIndex()});
  }
  return Status::ok();
}

// What an answer says about the cluster, bounded: a node never lists more than
// client_members_max members, nor an address longer than client_address_bytes_max.
Status read_members(schema::ClientResponse::Reader in, ClientResponse* response) {
  auto bounded = [](capnp::Text::Reader text, const char* what) {
    if (text.size() <= client_address_bytes_max) return Status::ok();
    return Status::corruption(std::string("client response: ") + what + " of " + std::to_string(text.size()) +
                              " bytes, over the bound of " + std::to_string(client_address_bytes_max));
  };
  KV_RETURN_IF_ERROR(bounded(in.getLeaderClientAddress(), "leader client address"));
  response->leader_client_address = as_string(in.getLeaderClientAddress());
  auto members = in.getMembers();
  if (members.size() > client_members_max) {
    return Status::corruption("client response: " + std::to_string(members.size()) + " members, over the bound of " +
                              std::to_string(client_members_max));
  }
  for (auto member : members) {
    KV_RETURN_IF_ERROR(bounded(member.getClientAddress(), "member client address"));
    response->members.push_back(ClientMember{member.getNodeId(), as_string(member.getClientAddress())});
  }
  return Status::ok();
}

// An unknown status (a newer node) is corruption for this build, not a silent "ok".
Status read_response(schema::ClientResponse::Reader in, ClientResponse* response) {
  auto status = static_cast<uint16_t>(in.getStatus());
  if (status > static_cast<uint16_t>(ClientStatus::unavailable)) {
    return Status::corruption("client response: unknown status " + std::to_string(status));
  }
  response->request_id = in.getRequestId();
  response->status = static_cast<ClientStatus>(status);
  response->message = as_string(in.getMessage());
  response->leader_hint = in.getLeaderHint();
  response->found = in.getFound();
  response->value = as_string(in.getValue());
  response->cas_succeeded = in.getCasSucceeded();
  response->index = in.getIndex();
  response->node_id = in.getNodeId();
  response->term = in.getTerm();
  response->commit_index = in.getCommitIndex();
  response->applied_index = in.getAppliedIndex();
  response->role = as_string(in.getRole());
  response->snapshot_index = in.getSnapshotIndex();
  response->snapshot_term = in.getSnapshotTerm();
  response->first_index = in.getFirstIndex();
  response->last_index = in.getLastIndex();
  response->hashed = in.getHashed();
  response->state_hash = in.getStateHash();
  response->hash_index = in.getHashIndex();
  response->total_bytes = in.getTotalBytes();
  response->chunk = as_string(in.getChunk());
  auto keys = in.getKeys();
  auto values = in.getValues();
  if (values.size() != 0 && values.size() != keys.size()) {
    return Status::corruption("client response: " + std::to_string(keys.size()) + " range keys but " +
                              std::to_string(values.size()) + " values");
  }
  for (auto key : keys) response->keys.push_back(as_string(key));
  for (auto value : values) response->values.push_back(as_string(value));
  response->range_count = in.getRangeCount();
  response->more = in.getMore();
  response->number = in.getNumber();
  response->directory_version = in.getDirectoryVersion();
  KV_RETURN_IF_ERROR(read_configuration(in, response));
  return read_members(in, response);
}

}  // namespace

ClientResponse client_refusal(uint64_t request_id, ClientStatus status, std::string message) {
  ClientResponse response;
  response.request_id = request_id;
  response.status = status;
  response.message = std::move(message);
  return response;
}

const char* client_op_name(ClientOp op) {
  switch (op) {
    case ClientOp::put: return "put";
    case ClientOp::get: return "get";
    case ClientOp::del: return "del";
    case ClientOp::cas: return "cas";
    case ClientOp::status: return "status";
    case ClientOp::snapshot_begin: return "snapshot_begin";
    case ClientOp::snapshot_chunk: return "snapshot_chunk";
    case ClientOp::leader_transfer: return "leader_transfer";
    case ClientOp::member_list: return "member_list";
    case ClientOp::member_add: return "member_add";
    case ClientOp::member_promote: return "member_promote";
    case ClientOp::member_remove: return "member_remove";
    case ClientOp::range: return "range";
    case ClientOp::put_many: return "put_many";
    case ClientOp::del_many: return "del_many";
    case ClientOp::increment: return "increment";
    case ClientOp::append: return "append";
  }
  return "invalid";
}

bool is_write_op(ClientOp op) {
  return op == ClientOp::put || op == ClientOp::del || op == ClientOp::cas || op == ClientOp::put_many ||
         op == ClientOp::del_many || op == ClientOp::increment || op == ClientOp::append;
}

const char* client_status_name(ClientStatus status) {
  switch (status) {
    case ClientStatus::ok: return "ok";
    case ClientStatus::not_leader: return "not_leader";
    case ClientStatus::no_leader: return "no_leader";
    case ClientStatus::timeout: return "timeout";
    case ClientStatus::rejected: return "rejected";
    case ClientStatus::stale_request: return "stale_request";
    case ClientStatus::session_expired: return "session_expired";
    case ClientStatus::lost: return "lost";
    case ClientStatus::busy: return "busy";
    case ClientStatus::unavailable: return "unavailable";
  }
  return "invalid";
}

uint64_t directory_fingerprint(const std::vector<ClientMember>& members) {
  if (members.empty()) return 0;
  uint64_t hash = 14695981039346656037ull;
  auto mix = [&hash](const void* data, size_t bytes) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 1099511628211ull;
  };
  for (const ClientMember& member : members) {
    const uint64_t size = member.client_address.size();
    mix(&member.node_id, sizeof member.node_id);
    mix(&size, sizeof size);  // the length keeps ("1", "23") apart from ("12", "3")
    mix(member.client_address.data(), member.client_address.size());
  }
  return hash == 0 ? 1 : hash;
}

bool ClientRequest::operator==(const ClientRequest& other) const {
  return request_id == other.request_id && client_id == other.client_id && sequence == other.sequence &&
         op == other.op && key == other.key && value == other.value && expected == other.expected &&
         blind == other.blind && hash == other.hash && snapshot_index == other.snapshot_index &&
         snapshot_term == other.snapshot_term &&
         chunk_offset == other.chunk_offset && transfer_target == other.transfer_target &&
         member_id == other.member_id && member_peer_address == other.member_peer_address &&
         member_client_address == other.member_client_address && member_learner == other.member_learner &&
         range_end == other.range_end && range_limit == other.range_limit &&
         range_bytes_max == other.range_bytes_max && keys_only == other.keys_only &&
         count_only == other.count_only && serializable == other.serializable && keys == other.keys &&
         values == other.values && condition == other.condition && delta == other.delta &&
         directory_known == other.directory_known;
}

bool ClientResponse::operator==(const ClientResponse& other) const {
  return request_id == other.request_id && status == other.status && message == other.message &&
         leader_hint == other.leader_hint && found == other.found && value == other.value &&
         cas_succeeded == other.cas_succeeded && index == other.index && node_id == other.node_id &&
         term == other.term && commit_index == other.commit_index && applied_index == other.applied_index &&
         role == other.role && snapshot_index == other.snapshot_index && snapshot_term == other.snapshot_term &&
         first_index == other.first_index && last_index == other.last_index && hashed == other.hashed &&
         state_hash == other.state_hash && hash_index == other.hash_index && total_bytes == other.total_bytes &&
         chunk == other.chunk && leader_client_address == other.leader_client_address && members == other.members &&
         configuration_index == other.configuration_index &&
         configuration_committed == other.configuration_committed && configuration == other.configuration &&
         keys == other.keys && values == other.values && range_count == other.range_count && more == other.more &&
         number == other.number && directory_version == other.directory_version;
}

// The encoders do not check client_message_bytes_max: the receiving decoder refuses an
// oversized message, and the sender learns it from that reply or a closed connection.
std::vector<uint8_t> encode_client_request(const ClientRequest& request) {
  size_t list_bytes = 0;
  for (const std::string& key : request.keys) list_bytes += key.size() + 8;
  for (const std::string& value : request.values) list_bytes += value.size() + 8;
  const size_t expected_bytes = request.expected ? request.expected->size() : 0;
  return encode_message(first_segment_words(
      1 + struct_words<schema::ClientRequest>(),
      request.key.size() + request.value.size() + expected_bytes + request.member_peer_address.size() + 1 +
          request.member_client_address.size() + 1 + request.range_end.size() + list_bytes,
      7 + request.keys.size() + request.values.size()), [&](capnp::MessageBuilder& builder) {
    fill_request(builder.initRoot<schema::ClientRequest>(), request);
  });
}

Result<ClientRequest> decode_client_request(const uint8_t* data, size_t bytes) {
  const std::string where = "client request";
  KV_RETURN_IF_ERROR(refuse_oversized(bytes, where));
  ClientRequest request;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    return read_request(reader.getRoot<schema::ClientRequest>(), &request);
  });
  if (!status.is_ok()) return status;
  return request;
}

namespace {

// The first segment an encoded response needs (first_segment_words' arguments, summed).
unsigned response_words(const ClientResponse& response) {
  size_t member_bytes = response.leader_client_address.size() + 1;
  for (const ClientMember& member : response.members) {
    member_bytes += struct_words<schema::ClientMember>() * 8 + member.client_address.size() + 1 + 8;
  }
  for (const ConfigurationMember& member : response.configuration) {
    member_bytes += struct_words<schema::ConfigurationMember>() * 8 + member.peer_address.size() +
                    member.client_address.size() + 2 + 16;
  }
  for (const std::string& key : response.keys) member_bytes += key.size() + 16;
  for (const std::string& value : response.values) member_bytes += value.size() + 16;
  return first_segment_words(struct_words<schema::ClientResponse>(),
                             response.message.size() + 1 + response.value.size() + response.role.size() + 1 +
                                 response.chunk.size() + member_bytes,
                             7 + response.members.size() + 2 * response.configuration.size() +
                                 response.keys.size() + response.values.size() + 2);
}

}  // namespace

std::vector<uint8_t> encode_client_response(const ClientResponse& response) {
  return encode_message(1 + response_words(response), [&](capnp::MessageBuilder& builder) {
    fill_response(builder.initRoot<schema::ClientResponse>(), response);
  });
}

Result<ClientResponse> decode_client_response(const uint8_t* data, size_t bytes) {
  const std::string where = "client response";
  KV_RETURN_IF_ERROR(refuse_oversized(bytes, where));
  ClientResponse response;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    return read_response(reader.getRoot<schema::ClientResponse>(), &response);
  });
  if (!status.is_ok()) return status;
  return response;
}

Result<ClientStatus> peek_client_status(const uint8_t* data, size_t bytes) {
  const std::string where = "client response";
  KV_RETURN_IF_ERROR(refuse_oversized(bytes, where));
  ClientStatus result = ClientStatus::ok;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto code = static_cast<uint16_t>(reader.getRoot<schema::ClientResponse>().getStatus());
    if (code > static_cast<uint16_t>(ClientStatus::unavailable)) {
      return Status::corruption("client response: unknown status " + std::to_string(code));
    }
    result = static_cast<ClientStatus>(code);
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return result;
}

std::vector<uint8_t> encode_get_batch(const std::vector<std::string>& keys, uint64_t directory_known) {
  size_t key_bytes = 0;
  for (const std::string& key : keys) key_bytes += key.size();
  return encode_message(first_segment_words(1 + struct_words<schema::GetBatch>() + 1, key_bytes, keys.size()),
                        [&](capnp::MessageBuilder& builder) {
                          auto out = builder.initRoot<schema::GetBatch>();
                          fill_list(out.initKeys(static_cast<unsigned>(keys.size())), keys);
                          out.setDirectoryKnown(directory_known);
                        });
}

Result<GetBatch> decode_get_batch(const uint8_t* data, size_t bytes) {
  GetBatch batch;
  Status status = read_message(data, bytes, "get batch", [&](capnp::MessageReader& reader) {
    auto in = reader.getRoot<schema::GetBatch>();
    auto keys = in.getKeys();
    if (keys.size() > get_batch_keys_max) {
      return Status::corruption("get batch: " + std::to_string(keys.size()) + " keys, over the bound of " +
                                std::to_string(get_batch_keys_max));
    }
    batch.keys.reserve(keys.size());
    for (auto key : keys) {
      batch.keys.push_back(as_string(key));
      KV_RETURN_IF_ERROR(check_key(batch.keys.back(), ClientOp::get));
    }
    batch.directory_known = in.getDirectoryKnown();
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return batch;
}

std::vector<uint8_t> encode_get_batch_answer(const ClientResponse& header, const std::vector<uint8_t>& found,
                                             const std::vector<std::string>& values) {
  const bool ok = header.status == ClientStatus::ok;
  KV_ASSERT(!ok || found.size() == values.size());
  size_t value_bytes = 0;
  if (ok) {
    for (const std::string& value : values) value_bytes += value.size();
  }
  const size_t count = ok ? values.size() : 0;
  return encode_message(
      1 + struct_words<schema::GetBatchAnswer>() + response_words(header) +
          first_segment_words(2 + (count + 63) / 64, value_bytes, count),
      [&](capnp::MessageBuilder& builder) {
        auto out = builder.initRoot<schema::GetBatchAnswer>();
        fill_response(out.initHeader(), header);
        if (!ok) return;
        auto found_list = out.initFound(static_cast<unsigned>(count));
        for (unsigned i = 0; i < count; ++i) found_list.set(i, found[i] != 0);
        fill_list(out.initValues(static_cast<unsigned>(count)), values);
      });
}

Result<GetBatchAnswer> decode_get_batch_answer(const uint8_t* data, size_t bytes) {
  GetBatchAnswer answer;
  Status status = read_message(data, bytes, "get batch answer", [&](capnp::MessageReader& reader) {
    auto in = reader.getRoot<schema::GetBatchAnswer>();
    KV_RETURN_IF_ERROR(read_response(in.getHeader(), &answer.header));
    auto found = in.getFound();
    auto values = in.getValues();
    if (found.size() != values.size()) {
      return Status::corruption("get batch answer: " + std::to_string(found.size()) + " found flags but " +
                                std::to_string(values.size()) + " values");
    }
    answer.found.reserve(found.size());
    answer.values.reserve(values.size());
    for (bool one : found) answer.found.push_back(one ? 1 : 0);
    for (auto value : values) answer.values.push_back(as_string(value));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return answer;
}

ClientResponse get_batch_response(GetBatchAnswer& answer, size_t i, uint64_t request_id) {
  ClientResponse response = answer.header;
  response.request_id = request_id;
  if (response.status == ClientStatus::ok) {
    KV_ASSERT(i < answer.values.size() && i < answer.found.size());
    response.found = answer.found[i] != 0;
    response.value = std::move(answer.values[i]);
  }
  return response;
}

}  // namespace keyval
