// KvClient (see kv_client.h): leader finding, retries with the session, and framed
// request/response exchange on non-blocking sockets with poll() deadlines.
#include "apps/kv_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "actors/framing.h"
#include "apps/kv_socket.h"

namespace keyval {
namespace {

constexpr size_t key_in_message_bytes_max = 40;  // error messages quote at most this much of a key

uint64_t now_ms() { return steady_now_ms(); }

bool is_write(ClientOp op) { return op == ClientOp::put || op == ClientOp::del || op == ClientOp::cas; }

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

// One operation's retry state: its deadline, backoff, and each node's last failure.
struct KvClient::Operation {
  uint64_t deadline_ms = 0;
  uint64_t backoff_ms = 0;
  uint64_t attempts = 0;
  uint64_t hint_hops = 0;    // not_leader hints followed without a backoff in between
  bool uncertain = false;    // a write that may have reached a leader (timeout, lost answer)
  std::vector<std::string> last_failure;  // per node; "" when it has not failed
  bool leader_unknown = false;            // the latest failure was a node saying it knows no leader
};

std::string Endpoint::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(const std::string& text) {
  auto malformed = [&](const std::string& why) {
    return Status::invalid_argument("malformed endpoint '" + text + "': " + why + " (expected HOST:PORT)");
  };
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return malformed("no ':PORT'");
  std::string host = text.substr(0, colon);
  std::string port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return malformed("empty host");
  if (host.find_first_of("[], ") != std::string::npos) return malformed("bad host '" + host + "'");
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return malformed("port '" + port_text + "' is not a number");
  }
  unsigned long port = std::stoul(port_text);
  if (port == 0 || port > 65535) return malformed("port " + port_text + " is outside 1..65535");
  return Endpoint{host, static_cast<uint16_t>(port)};
}

Result<std::vector<Endpoint>> parse_endpoints(const std::string& text) {
  std::vector<Endpoint> endpoints;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    KV_ASSIGN_OR_RETURN(Endpoint endpoint, parse_endpoint(item));
    endpoints.push_back(std::move(endpoint));
    if (endpoints.size() > endpoints_max) {
      return Status::invalid_argument("more than " + std::to_string(endpoints_max) + " endpoints");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return endpoints;
}

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

KvClient::KvClient(std::vector<Endpoint> endpoints, KvClientOptions options)
    : endpoints_(std::move(endpoints)), options_(options), sockets_(endpoints_.size(), -1) {
  KV_ASSERT(!endpoints_.empty() && endpoints_.size() <= endpoints_max);
  KV_ASSERT(options_.request_timeout_ms > 0 && options_.operation_timeout_ms > 0);
  client_id_ = options_.client_id != 0 ? options_.client_id : random_client_id();
}

KvClient::~KvClient() {
  for (uint64_t node = 1; node <= endpoints_.size(); ++node) close_node(node);
}

Result<ClientResponse> KvClient::put(const std::string& key, const std::string& value) {
  ClientRequest request;
  request.op = ClientOp::put;
  request.key = key;
  request.value = value;
  return run(std::move(request));
}

Result<ClientResponse> KvClient::get(const std::string& key) {
  ClientRequest request;
  request.op = ClientOp::get;
  request.key = key;
  return run(std::move(request));
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

Result<ClientResponse> KvClient::status(uint64_t node_id, bool hash) {
  if (node_id == 0 || node_id > endpoints_.size()) {
    return Status::invalid_argument("no node " + std::to_string(node_id) + ": " +
                                    std::to_string(endpoints_.size()) + " endpoints");
  }
  ClientRequest request;
  request.op = ClientOp::status;
  request.hash = hash;
  request.request_id = ++request_id_;
  bool sent = false;
  const uint64_t timeout_ms = hash ? options_.slow_request_timeout_ms : options_.request_timeout_ms;
  auto answer = exchange(node_id, request, now_ms() + timeout_ms, &sent);
  if (!answer.is_ok()) return answer.status();
  if (answer->status != ClientStatus::ok) {
    return Status::io_error("said " + std::string(client_status_name(answer->status)) +
                            (answer->message.empty() ? "" : ": " + answer->message));
  }
  return answer;
}

std::vector<Result<ClientResponse>> KvClient::status_all(bool hash) {
  std::vector<Result<ClientResponse>> views;
  for (uint64_t node = 1; node <= endpoints_.size(); ++node) views.push_back(status(node, hash));
  return views;
}

Result<ClientResponse> KvClient::run(ClientRequest request) {
  return run(std::move(request), options_.request_timeout_ms, options_.operation_timeout_ms);
}

Result<ClientResponse> KvClient::run(ClientRequest request, uint64_t attempt_timeout_ms,
                                     uint64_t operation_timeout_ms) {
  const bool write = is_write(request.op);
  if (write) {
    request.client_id = client_id_;
    request.sequence = ++sequence_;  // the same on every retry below: applied once
  }
  const uint64_t nodes = endpoints_.size();
  auto next_of = [nodes](uint64_t node) { return node % nodes + 1; };
  Operation op;
  op.deadline_ms = now_ms() + operation_timeout_ms;
  op.backoff_ms = options_.backoff_ms_min;
  op.last_failure.assign(nodes + 1, "");
  uint64_t node = leader_ != 0 ? leader_ : next_node_;
  // Moves on from `node`: to `target` (a hint, or next in turn when 0), after a backoff unless
  // it follows a hint (bounded by hint_hops, so two nodes naming each other cannot spin).
  auto move_on = [&](uint64_t target, bool backoff) {
    if (leader_ == node) leader_ = 0;
    if (!backoff && op.hint_hops < nodes) {
      ++op.hint_hops;
    } else {
      op.hint_hops = 0;
      uint64_t now = now_ms();
      uint64_t wait = std::min(op.backoff_ms, op.deadline_ms > now ? op.deadline_ms - now : 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
      op.backoff_ms = std::min(op.backoff_ms * 2, options_.backoff_ms_max);
    }
    node = target != 0 ? target : next_of(node);
    next_node_ = next_of(node);
  };
  auto valid_hint = [&](uint64_t hint) { return hint != 0 && hint <= nodes ? hint : 0; };
  while (now_ms() < op.deadline_ms) {
    request.request_id = ++request_id_;
    bool sent = false;
    auto answer = exchange(node, request, std::min(now_ms() + attempt_timeout_ms, op.deadline_ms), &sent);
    ++op.attempts;
    if (!answer.is_ok()) {
      if (sent && write) op.uncertain = true;  // it may have reached the node before the failure
      op.last_failure[node] = answer.status().message();
      op.leader_unknown = false;
      move_on(0, true);
      continue;
    }
    const ClientResponse& response = *answer;
    const std::string said = std::string("said ") + client_status_name(response.status) +
                             (response.message.empty() ? "" : " (" + response.message + ")");
    const uint64_t hint = valid_hint(response.leader_hint);
    switch (response.status) {
      case ClientStatus::ok:
        leader_ = node;
        if (write) finish_write(true, op.uncertain);
        return answer;
      case ClientStatus::rejected:
        if (write) finish_write(false, op.uncertain);
        return Status::invalid_argument(operation_name(request) +
                                        ": node " + std::to_string(node) + " rejected it: " + response.message);
      case ClientStatus::stale_request:
      case ClientStatus::session_expired:
        if (write) finish_write(false, op.uncertain);
        return Status::io_error(operation_name(request) +
                                ": client " + std::to_string(request.client_id) + " sequence " +
                                std::to_string(request.sequence) + ": node " + std::to_string(node) + " " + said);
      case ClientStatus::not_leader:
        op.last_failure[node] = said + (hint != 0 ? ", hint node " + std::to_string(hint) : "");
        op.leader_unknown = hint == 0 || hint == node;
        move_on(hint != node ? hint : 0, hint == 0 || hint == node);
        continue;
      case ClientStatus::no_leader:
        op.last_failure[node] = said;
        op.leader_unknown = true;
        move_on(0, true);
        continue;
      case ClientStatus::timeout:  // unknown outcome: ask the leader again, same sequence
        if (write) op.uncertain = true;
        op.last_failure[node] = said;
        op.leader_unknown = false;
        move_on(hint != 0 ? hint : node, true);
        continue;
      case ClientStatus::unavailable:  // this node is stopping: unknown outcome, ask another
        if (write) op.uncertain = true;
        [[fallthrough]];
      case ClientStatus::lost:  // replaced by another leader's entry: not applied
      case ClientStatus::busy:
        op.last_failure[node] = said;
        op.leader_unknown = false;
        move_on(response.status == ClientStatus::busy ? node : (hint != node ? hint : 0), true);
        continue;
    }
    KV_ASSERT(false && "ClientResponse with a status outside ClientStatus");
  }
  if (write) finish_write(false, op.uncertain);
  std::string message = operation_name(request) + ": " +
                        (op.leader_unknown ? "no leader found" : "not completed") + " within " +
                        std::to_string(operation_timeout_ms) + " ms (" + std::to_string(op.attempts) +
                        " attempts)";
  std::string separator = ": ";
  for (uint64_t failed = 1; failed <= nodes; ++failed) {
    if (op.last_failure[failed].empty()) continue;
    message += separator + "node " + std::to_string(failed) + " (" + endpoints_[failed - 1].str() + "): " +
               op.last_failure[failed];
    separator = "; ";
  }
  if (write && op.uncertain) message += "; outcome unknown: the write may or may not have taken effect";
  return Status::io_error(message);
}

Result<ClientResponse> KvClient::exchange(uint64_t node_id, const ClientRequest& request, uint64_t deadline_ms,
                                          bool* sent) {
  const std::vector<uint8_t> frame = make_frame(encode_client_request(request));
  // A reused connection may have been closed by the node while idle (a restart, an idle
  // limit): one fresh connection is tried at once before this counts as a failure.
  for (int round = 0; round < 2; ++round) {
    const bool reused = sockets_[node_id - 1] >= 0;
    if (!reused) KV_RETURN_IF_ERROR(connect_node(node_id, deadline_ms));
    const int descriptor = sockets_[node_id - 1];
    SocketIo io = socket_write_all(descriptor, frame.data(), frame.size(), deadline_ms);
    if (io.kind == SocketIo::ok) *sent = true;
    uint8_t header[frame_header_bytes];
    if (io.kind == SocketIo::ok) io = socket_read_exact(descriptor, header, sizeof header, deadline_ms);
    if (io.kind == SocketIo::closed && reused) {
      close_node(node_id);
      continue;
    }
    if (io.kind != SocketIo::ok) {
      close_node(node_id);
      return Status::io_error(io.what);
    }
    const uint32_t length = read_frame_header(header);
    if (length == 0 || length > client_message_bytes_max) {
      close_node(node_id);
      return Status::io_error("answer frame of " + std::to_string(length) + " bytes (protocol error)");
    }
    std::vector<uint8_t> payload(length);
    io = socket_read_exact(descriptor, payload.data(), payload.size(), deadline_ms);
    if (io.kind != SocketIo::ok) {
      close_node(node_id);
      return Status::io_error(io.what);
    }
    auto response = decode_client_response(payload.data(), payload.size());
    if (!response.is_ok() || response->request_id != request.request_id) {
      close_node(node_id);  // the stream can no longer be trusted
      return Status::io_error(response.is_ok() ? "answer to request " + std::to_string(response->request_id) +
                                                     ", expected " + std::to_string(request.request_id)
                                               : "malformed answer: " + response.status().message());
    }
    return response;
  }
  return Status::io_error("connection closed twice");
}

Status KvClient::connect_node(uint64_t node_id, uint64_t deadline_ms) {
  KV_ASSIGN_OR_RETURN(int descriptor, socket_connect(endpoints_[node_id - 1].host, endpoints_[node_id - 1].port,
                                                     deadline_ms));
  sockets_[node_id - 1] = descriptor;
  return Status::ok();
}

void KvClient::close_node(uint64_t node_id) {
  int& descriptor = sockets_[node_id - 1];
  if (descriptor >= 0) ::close(descriptor);
  descriptor = -1;
}

void KvClient::finish_write(bool applied, bool uncertain) {
  last_write_uncertain_ = !applied && uncertain;
  if (applied) {
    session_started_ = true;
    return;
  }
  if (session_started_) return;  // the next write takes the next sequence; gaps are allowed
  // No session yet: the next write must use sequence 1 again. If this one may still apply
  // later, its sequence 1 is taken (a new write would be answered with its result): new session.
  if (uncertain) client_id_ = random_client_id();
  sequence_ = 0;
}

}  // namespace keyval
