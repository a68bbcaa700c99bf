// KvClient (see kv_client.h): leader finding, retries with the session, and framed
// request/response exchange on non-blocking sockets with poll() deadlines.
#include "client/kv_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "actors/framing.h"
#include "client/kv_socket.h"
#include "storage/kv_command.h"
#include "storage/kv_state_machine.h"

namespace keyval {
namespace {

constexpr size_t key_in_message_bytes_max = 40;  // error messages quote at most this much of a key

uint64_t now_ms() { return steady_now_ms(); }

bool is_write(ClientOp op) { return is_write_op(op); }

std::string quoted_key(const std::string& key) {
  if (key.size() <= key_in_message_bytes_max) return "'" + key + "'";
  return "'" + key.substr(0, key_in_message_bytes_max) + "...'";
}

// "put 'key'", or "snapshot_begin" for an operation without a key.
std::string operation_name(const ClientRequest& request) {
  std::string name = client_op_name(request.op);
  return request.key.empty() ? name : name + " " + quoted_key(request.key);
}

}  // namespace

uint64_t random_client_id() {
  uint64_t id = 0;
  int descriptor = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (descriptor >= 0) {
    for (int tries = 0; tries < 4 && id == 0; ++tries) {
      if (::read(descriptor, &id, sizeof id) != static_cast<ssize_t>(sizeof id)) id = 0;
    }
    ::close(descriptor);
  }
  if (id != 0) return id;
  // No /dev/urandom: mix the clock and the pid (SplitMix64's finalizer).
  uint64_t z = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               (static_cast<uint64_t>(::getpid()) << 32);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z == 0 ? 1 : z;
}

std::string said_text(const ClientResponse& response) {
  return std::string("said ") + client_status_name(response.status) +
         (response.message.empty() ? "" : " (" + response.message + ")");
}

std::string retried_answer(const ClientResponse& response, const std::string& hinted_node) {
  std::string text = said_text(response);
  if (response.status == ClientStatus::not_leader && response.leader_hint != 0) {
    text += !hinted_node.empty() ? ", hint " + hinted_node
                                 : ", hint node " + std::to_string(response.leader_hint) + " (client address unknown)";
  }
  return text;
}

Status failed_operation(const ClientRequest& request, const ClientResponse& response, const std::string& node) {
  if (response.status == ClientStatus::rejected) {
    return Status::invalid_argument(operation_name(request) + ": " + node + " rejected it: " + response.message);
  }
  return Status::io_error(operation_name(request) + ": client " + std::to_string(request.client_id) + " sequence " +
                          std::to_string(request.sequence) + ": " + node + " " + said_text(response));
}

Status unfinished_operation(const ClientRequest& request, const OperationPolicy& policy, uint64_t operation_timeout_ms,
                            const KnownNodes& nodes, const std::map<size_t, std::string>& last_failure) {
  std::string message = operation_name(request) + ": " + (policy.leader_unknown() ? "no leader found" : "not completed") +
                        " within " + std::to_string(operation_timeout_ms) + " ms (" +
                        std::to_string(policy.attempts()) + " attempts)";
  std::string separator = ": ";
  for (size_t failed : nodes.by_node_id()) {
    auto found = last_failure.find(failed);
    if (found == last_failure.end()) continue;
    message += separator + nodes.describe(failed) + ": " + found->second;
    separator = "; ";
  }
  if (is_write(request.op) && policy.uncertain()) {
    message += "; outcome unknown: the write may or may not have taken effect";
  }
  return Status::io_error(message);
}

KvClient::KvClient(std::vector<Endpoint> endpoints, KvClientOptions options)
    : endpoints_(std::move(endpoints)), options_(options), nodes_(endpoints_), sockets_(nodes_.size(), -1),
      tls_(nodes_.size(), nullptr), inbound_(nodes_.size()), session_(options.client_id != 0 ? options.client_id : random_client_id()) {
  KV_ASSERT(options_.request_timeout_ms > 0 && options_.operation_timeout_ms > 0);
}

KvClient::~KvClient() {
  for (size_t slot = 0; slot < sockets_.size(); ++slot) close_slot(slot);
}

Result<ClientResponse> KvClient::put(const std::string& key, const std::string& value) {
  ClientRequest request;
  request.op = ClientOp::put;
  request.key = key;
  request.value = value;
  request.blind = true;  // a put's answer is its index (KvClient::put)
  return run(std::move(request));
}

Result<ClientResponse> KvClient::get(const std::string& key, bool serializable) {
  ClientRequest request;
  request.op = ClientOp::get;
  request.key = key;
  request.serializable = serializable;
  return run(std::move(request));
}

Result<RangeAnswer> KvClient::range(const std::string& from, const RangeOptions& options) {
  RangeAnswer answer;
  std::string next = from;
  while (true) {
    ClientRequest request;
    request.op = ClientOp::range;
    request.key = next;
    request.range_end = options.to;
    request.range_limit = options.limit == 0 ? 0 : options.limit - answer.count;
    request.range_bytes_max = options.page_bytes;
    request.keys_only = options.keys_only;
    request.count_only = options.count_only;
    request.serializable = options.serializable;
    KV_ASSIGN_OR_RETURN(ClientResponse page, run(std::move(request)));
    if (answer.pages++ == 0) answer.index = page.index;
    if (!page.values.empty() && page.values.size() != page.keys.size()) {
      return Status::corruption("range answer: " + std::to_string(page.keys.size()) + " keys but " +
                                std::to_string(page.values.size()) + " values");
    }
    for (size_t i = 0; i < page.keys.size(); ++i) {
      answer.pairs.emplace_back(std::move(page.keys[i]), page.values.empty() ? std::string() : std::move(page.values[i]));
    }
    answer.count += page.range_count;
    const bool limit_reached = options.limit != 0 && answer.count >= options.limit;
    if (!page.more || limit_reached || options.count_only || answer.pairs.empty()) return answer;
    // The least key after the last one: itself + "\0", or, for a key of the largest size
    // (nothing extends it), the next key of at most that size.
    const std::string& last = answer.pairs.back().first;
    next = last.size() < kv_key_bytes_max ? last + std::string(1, '\0') : prefix_end(last);
    if (next.empty()) return answer;  // the last key was the greatest possible one
  }
}

Result<ClientResponse> KvClient::del(const std::string& key) {
  ClientRequest request;
  request.op = ClientOp::del;
  request.key = key;
  return run(std::move(request));
}

Result<ClientResponse> KvClient::cas(const std::string& key, const std::optional<std::string>& expected,
                                     const std::string& new_value) {
  ClientRequest request;
  request.op = ClientOp::cas;
  request.key = key;
  request.expected = expected;
  request.value = new_value;
  return run(std::move(request));
}

Result<ClientResponse> KvClient::leader_transfer(uint64_t target) {
  ClientRequest request;
  request.op = ClientOp::leader_transfer;
  request.transfer_target = target;
  return run(std::move(request));
}

Result<ClientResponse> KvClient::member_list() {
  ClientRequest request;
  request.op = ClientOp::member_list;
  auto answer = run(request);
  if (!answer.is_ok() || answer->role == "leader" || answer->leader_hint == 0) return answer;
  // A follower answered: the leader's view has the match indexes, when it can be had.
  auto slot = nodes_.find_id(answer->leader_hint);
  if (!slot) return answer;
  request.request_id = ++request_id_;
  bool sent = false;
  auto leader = exchange(*slot, request, now_ms() + options_.request_timeout_ms, &sent);
  if (leader.is_ok() && leader->status == ClientStatus::ok) return leader;
  return answer;
}

Result<ClientResponse> KvClient::member_add(uint64_t id, const std::string& peer_address,
                                            const std::string& client_address) {
  ClientRequest request;
  request.op = ClientOp::member_add;
  request.member_id = id;
  request.member_peer_address = peer_address;
  request.member_client_address = client_address;
  request.member_learner = true;
  return run(std::move(request));
}

Result<ClientResponse> KvClient::member_promote(uint64_t id) {
  ClientRequest request;
  request.op = ClientOp::member_promote;
  request.member_id = id;
  return run(std::move(request));
}

Result<ClientResponse> KvClient::member_remove(uint64_t id) {
  ClientRequest request;
  request.op = ClientOp::member_remove;
  request.member_id = id;
  return run(std::move(request));
}

Result<ClientResponse> KvClient::status(uint64_t node_id, bool hash) {
  // Not named by any answer yet: the endpoints whose id is unknown say who they are.
  for (size_t slot = 0; !nodes_.find_id(node_id) && slot < nodes_.size(); ++slot) {
    if (nodes_.node_id(slot) == 0) (void)status_at(slot, false);
  }
  auto slot = nodes_.find_id(node_id);
  if (!slot) return Status::not_found("no answer named node " + std::to_string(node_id) + " or its client address");
  return status_at(*slot, hash);
}

Result<ClientResponse> KvClient::status_of(const Endpoint& endpoint, bool hash) {
  auto slot = nodes_.add(endpoint);
  if (!slot) return Status::invalid_argument("more than " + std::to_string(endpoints_max) + " nodes known");
  sockets_.resize(nodes_.size(), -1);
  tls_.resize(nodes_.size(), nullptr);
  inbound_.resize(nodes_.size());
  return status_at(*slot, hash);
}

Result<ClientResponse> KvClient::status_at(size_t slot, bool hash) {
  ClientRequest request;
  request.op = ClientOp::status;
  request.hash = hash;
  request.request_id = ++request_id_;
  bool sent = false;
  const uint64_t timeout_ms = hash ? options_.slow_request_timeout_ms : options_.request_timeout_ms;
  auto answer = exchange(slot, request, now_ms() + timeout_ms, &sent);
  if (!answer.is_ok()) return answer.status();
  if (answer->status != ClientStatus::ok) {
    return Status::io_error("said " + std::string(client_status_name(answer->status)) +
                            (answer->message.empty() ? "" : ": " + answer->message));
  }
  return answer;
}

std::vector<NodeView> KvClient::status_all(bool hash) {
  // Answers name members the client was not given: they are asked in turn (nodes_ grows).
  std::map<size_t, Result<ClientResponse>> answers;
  for (size_t slot = 0; slot < nodes_.size(); ++slot) answers.emplace(slot, status_at(slot, hash));
  std::vector<NodeView> views;
  std::set<uint64_t> listed;
  for (size_t slot : nodes_.by_node_id()) {
    const uint64_t id = nodes_.node_id(slot);
    if (id != 0 && !listed.insert(id).second) continue;  // one line per node
    views.push_back(NodeView{id, nodes_.endpoint(slot), answers.at(slot)});
  }
  for (uint64_t id : nodes_.members_without_endpoint()) {
    if (!listed.insert(id).second) continue;
    views.push_back(NodeView{id, Endpoint{}, Status::not_found("no node that answered knows its client address")});
  }
  std::stable_sort(views.begin(), views.end(), [](const NodeView& a, const NodeView& b) {
    if ((a.node_id == 0) != (b.node_id == 0)) return b.node_id == 0;
    return a.node_id < b.node_id;
  });
  return views;
}

Result<ClientResponse> KvClient::run(ClientRequest request) {
  return run(std::move(request), options_.request_timeout_ms, options_.operation_timeout_ms);
}

Result<ClientResponse> KvClient::run(ClientRequest request, uint64_t attempt_timeout_ms,
                                     uint64_t operation_timeout_ms) {
  const bool write = is_write(request.op);
  if (write) session_.stamp(request);  // the same sequence on every retry below: applied once
  OperationPolicy policy(write, nodes_.size(), RetryOptions{options_.backoff_ms_min * 1000, options_.backoff_ms_max * 1000});
  const uint64_t deadline_ms = now_ms() + operation_timeout_ms;
  std::map<size_t, std::string> last_failure;  // per slot of nodes_, those that failed
  size_t slot = leader_slot_ ? *leader_slot_ : next_slot_ % nodes_.size();
  // Where the policy says the next attempt goes, after its delay (cut at the deadline).
  auto move_on = [&](const Decision& decision, std::optional<size_t> hinted) {
    if (leader_slot_ == slot) {
      leader_slot_.reset();
      leader_ = 0;
    }
    const uint64_t now = now_ms();
    const uint64_t wait = std::min(decision.delay_us / 1000, deadline_ms > now ? deadline_ms - now : 0);
    if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    switch (decision.target) {
      case RetryTarget::same: break;
      case RetryTarget::hinted: slot = hinted ? *hinted : nodes_.next(slot); break;
      case RetryTarget::another: slot = nodes_.next(slot); break;
    }
    next_slot_ = nodes_.next(slot);
  };
  while (now_ms() < deadline_ms) {
    request.request_id = ++request_id_;
    bool sent = false;
    std::optional<size_t> hinted;  // the slot of the leader the answer names, when reachable
    auto answer = exchange(slot, request, std::min(now_ms() + attempt_timeout_ms, deadline_ms), &sent, &hinted);
    policy.set_nodes(nodes_.size());
    if (!answer.is_ok()) {
      last_failure[slot] = answer.status().message();
      move_on(policy.on_no_answer(sent), std::nullopt);
      continue;
    }
    const ClientResponse& response = *answer;
    const std::string node = nodes_.describe(slot);  // named after what this answer taught
    const uint64_t hint = response.leader_hint;
    const bool hint_elsewhere = hinted && *hinted != slot;
    const Decision decision = policy.on_answer(response, hint_elsewhere);
    switch (decision.kind) {
      case Decision::done:
        nodes_.assume(slot, hint);
        leader_slot_ = slot;
        leader_ = nodes_.node_id(slot);
        if (write) finish_write(true, policy.uncertain());
        return answer;
      case Decision::fail:
        if (write) finish_write(false, policy.uncertain());
        return failed_operation(request, response, node);
      case Decision::retry:
        last_failure[slot] = retried_answer(response, hint_elsewhere ? nodes_.describe(*hinted) : std::string());
        move_on(decision, hinted);
        continue;
    }
  }
  if (write) finish_write(false, policy.uncertain());
  return unfinished_operation(request, policy, operation_timeout_ms, nodes_, last_failure);
}

Result<ClientResponse> KvClient::exchange(size_t slot, ClientRequest& request, uint64_t deadline_ms, bool* sent,
                                          std::optional<size_t>* hinted) {
  // The member list this client holds: a node whose directory it matches leaves it out.
  request.directory_known = nodes_.directory_version();
  const std::vector<uint8_t> frame = make_frame(encode_client_request(request));
  // A reused connection may have been closed by the node while idle (a restart, an idle
  // limit): one fresh connection is tried at once before this counts as a failure.
  for (int round = 0; round < 2; ++round) {
    const bool reused = sockets_[slot] >= 0;
    if (!reused) KV_RETURN_IF_ERROR(connect_slot(slot, deadline_ms));
    const int descriptor = sockets_[slot];
    SSL* tls = tls_[slot];
    auto write_all = [&](const uint8_t* data, size_t bytes) {
      return tls ? tls_write_all(tls, descriptor, data, bytes, deadline_ms)
                 : socket_write_all(descriptor, data, bytes, deadline_ms);
    };
    // Plaintext: the answer is read into the connection's buffer, usually by one recv(), and
    // decoded where it lies. TLS: OpenSSL buffers the record; header, then payload.
    ReadBuffer& in = inbound_[slot];
    std::vector<uint8_t> payload;
    auto read_length = [&](uint32_t* length) {
      SocketIo got;
      if (tls) {
        uint8_t header[frame_header_bytes];
        got = tls_read_exact(tls, descriptor, header, sizeof header, deadline_ms);
        if (got.kind == SocketIo::ok) *length = read_frame_header(header);
      } else {
        got = socket_read_at_least(descriptor, in, frame_header_bytes, deadline_ms);
        if (got.kind == SocketIo::ok) *length = read_frame_header(in.data());
      }
      return got;
    };
    auto read_payload = [&](uint32_t length) {
      if (!tls) return socket_read_at_least(descriptor, in, frame_header_bytes + length, deadline_ms);
      payload.resize(length);
      return tls_read_exact(tls, descriptor, payload.data(), payload.size(), deadline_ms);
    };
    SocketIo io = write_all(frame.data(), frame.size());
    if (io.kind == SocketIo::ok) *sent = true;
    uint32_t length = 0;
    if (io.kind == SocketIo::ok) io = read_length(&length);
    if (io.kind == SocketIo::closed && reused) {
      close_slot(slot);
      continue;
    }
    if (io.kind != SocketIo::ok) {
      close_slot(slot);
      return Status::io_error(io.what);
    }
    if (length == 0 || length > client_message_bytes_max) {
      close_slot(slot);
      return Status::io_error("answer frame of " + std::to_string(length) + " bytes (protocol error)");
    }
    io = read_payload(length);
    if (io.kind != SocketIo::ok) {
      close_slot(slot);
      return Status::io_error(io.what);
    }
    const uint8_t* bytes = tls ? payload.data() : in.data() + frame_header_bytes;
    auto response = decode_client_response(bytes, length);
    if (!tls) in.consume(frame_header_bytes + length);
    if (!response.is_ok() || response->request_id != request.request_id) {
      close_slot(slot);  // the stream can no longer be trusted
      return Status::io_error(response.is_ok() ? "answer to request " + std::to_string(response->request_id) +
                                                     ", expected " + std::to_string(request.request_id)
                                               : "malformed answer: " + response.status().message());
    }
    std::optional<size_t> leader = nodes_.learn(slot, *response);
    sockets_.resize(nodes_.size(), -1);
    tls_.resize(nodes_.size(), nullptr);
    inbound_.resize(nodes_.size());
    if (hinted) *hinted = leader;
    return response;
  }
  return Status::io_error("connection closed twice");
}

Status KvClient::connect_slot(size_t slot, uint64_t deadline_ms) {
  const Endpoint& endpoint = nodes_.endpoint(slot);
  KV_ASSIGN_OR_RETURN(int descriptor, socket_connect(endpoint.host, endpoint.port, deadline_ms));
  if (options_.tls) {
    auto tls = tls_connect(descriptor, *options_.tls, deadline_ms);
    if (!tls.is_ok()) {
      ::close(descriptor);
      return tls.status();
    }
    tls_[slot] = *tls;
  }
  sockets_[slot] = descriptor;
  return Status::ok();
}

void KvClient::close_slot(size_t slot) {
  if (tls_[slot] != nullptr) tls_close(tls_[slot]);
  tls_[slot] = nullptr;
  inbound_[slot].clear();
  int& descriptor = sockets_[slot];
  if (descriptor >= 0) ::close(descriptor);
  descriptor = -1;
}

void KvClient::finish_write(bool applied, bool uncertain) {
  last_write_uncertain_ = !applied && uncertain;
  session_.write_ended(applied, uncertain, random_client_id);
}

}  // namespace keyval
