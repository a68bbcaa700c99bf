// ClientLoop (see client_loop.h): KvClient's operation, as a state machine per client, on epoll.
#include "client/client_loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "actors/framing.h"

namespace keyval {
namespace {

constexpr size_t read_room_bytes = 16 * 1024;  // room offered to each recv()
constexpr int events_max = 64;

}  // namespace

ClientLoop::ClientLoop(std::vector<Endpoint> endpoints, KvClientOptions options, size_t clients)
    : endpoints_(std::move(endpoints)), options_(std::move(options)) {
  KV_ASSERT(options_.tls == nullptr && options_.request_timeout_ms > 0 && options_.operation_timeout_ms > 0);
  clients_.reserve(clients);
  for (size_t c = 0; c < clients; ++c) clients_.emplace_back(endpoints_, random_client_id());
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
}

ClientLoop::~ClientLoop() {
  for (Client& client : clients_) close_socket(client);
  if (epoll_ >= 0) ::close(epoll_);
}

Status ClientLoop::run(const NextRequest& next, const Finished& finished) {
  if (epoll_ < 0) return Status::io_error(std::string("epoll_create1 failed: ") + std::strerror(errno));
  finished_ = &finished;
  for (size_t c = 0; c < clients_.size(); ++c) {
    clients_[c].phase = Phase::idle;
    begin(c, next);
  }
  epoll_event events[events_max];
  while (active_ > 0) {
    // Wait until the next deadline: an attempt's, or a backoff's end.
    uint64_t now = steady_now_ms();
    uint64_t wake = UINT64_MAX;
    for (const Client& client : clients_) {
      if (client.phase == Phase::backoff || client.phase == Phase::connecting || client.phase == Phase::sending ||
          client.phase == Phase::awaiting) {
        wake = std::min(wake, client.attempt_deadline_ms);
      }
    }
    const int timeout_ms = wake == UINT64_MAX ? -1 : static_cast<int>(std::min<uint64_t>(wake > now ? wake - now : 0, 1000));
    const int ready = ::epoll_wait(epoll_, events, events_max, timeout_ms);
    if (ready < 0 && errno != EINTR) {
      finished_ = nullptr;
      return Status::io_error(std::string("epoll_wait failed: ") + std::strerror(errno));
    }
    for (int e = 0; e < ready; ++e) {
      const size_t index = events[e].data.u64;
      Client& client = clients_[index];
      if (client.phase == Phase::connecting) {
        connected(index);  // writable or in error: the connect's outcome
      } else {
        if ((events[e].events & EPOLLOUT) && client.phase == Phase::sending) send_some(index);
        if (events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(index);
      }
      if (client.phase == Phase::idle) begin(index, next);
    }
    now = steady_now_ms();
    for (size_t c = 0; c < clients_.size(); ++c) {
      Client& client = clients_[c];
      if (now < client.attempt_deadline_ms) continue;
      if (client.phase == Phase::backoff) {
        attempt(c);
      } else if (client.phase == Phase::connecting) {
        no_answer(c, "connect timed out");
      } else if (client.phase == Phase::sending || client.phase == Phase::awaiting) {
        no_answer(c, "no answer in time");
      }
      if (client.phase == Phase::idle) begin(c, next);
    }
  }
  finished_ = nullptr;
  return Status::ok();
}

void ClientLoop::begin(size_t index, const NextRequest& next) {
  Client& client = clients_[index];
  // An operation that ends at once (a connection refused by every node until its deadline is
  // never at once: each retry waits a backoff) is followed by the next in this loop.
  while (client.phase == Phase::idle) {
    ClientRequest request;
    if (!next(index, &request)) {
      client.phase = Phase::done;
      return;
    }
    ++active_;
    client.request = std::move(request);
    const bool write = is_write_op(client.request.op);
    if (write) client.session.stamp(client.request);
    client.policy.emplace(write, client.nodes.size(),
                          RetryOptions{options_.backoff_ms_min * 1000, options_.backoff_ms_max * 1000});
    client.deadline_ms = steady_now_ms() + options_.operation_timeout_ms;
    client.last_failure.clear();
    client.slot = client.leader_slot ? *client.leader_slot : client.next_slot % client.nodes.size();
    attempt(index);
  }
}

void ClientLoop::attempt(size_t index) {
  Client& client = clients_[index];
  const uint64_t now = steady_now_ms();
  if (now >= client.deadline_ms) {
    finish(index, unfinished_operation(client.request, *client.policy, options_.operation_timeout_ms, client.nodes,
                                       client.last_failure));
    return;
  }
  client.attempt_deadline_ms = std::min(now + options_.request_timeout_ms, client.deadline_ms);
  client.request.request_id = ++client.request_id;
  client.request.directory_known = client.nodes.directory_version();
  client.out = make_frame(encode_client_request(client.request));
  client.out_done = 0;
  client.sent = false;
  client.reconnected = false;
  if (client.socket >= 0 && client.socket_slot != client.slot) close_socket(client);
  client.phase = Phase::sending;
  if (client.socket >= 0) {
    send_some(index);
    return;
  }
  Status begun = connect(index);  // the request goes once the connect is made
  if (!begun.is_ok()) no_answer(index, begun.message());
}

Status ClientLoop::connect(size_t index) {
  Client& client = clients_[index];
  const Endpoint& endpoint = client.nodes.endpoint(client.slot);
  KV_ASSIGN_OR_RETURN(int descriptor, socket_connect_begin(endpoint.host, endpoint.port));
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT;  // writable: the connect's outcome is known
  event.data.u64 = index;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, descriptor, &event) != 0) {
    const int error = errno;
    ::close(descriptor);
    return Status::io_error(std::string("epoll_ctl failed: ") + std::strerror(error));
  }
  client.socket = descriptor;
  client.socket_slot = client.slot;
  client.socket_answered = false;
  client.want_write = true;
  client.phase = Phase::connecting;
  return Status::ok();
}

void ClientLoop::connected(size_t index) {
  Client& client = clients_[index];
  Status made = socket_connect_end(client.socket);
  if (!made.is_ok()) {
    no_answer(index, made.message());
    return;
  }
  client.phase = Phase::sending;
  send_some(index);
}

void ClientLoop::send_some(size_t index) {
  Client& client = clients_[index];
  while (client.out_done < client.out.size()) {
    const ssize_t wrote = ::send(client.socket, client.out.data() + client.out_done, client.out.size() - client.out_done,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
    if (wrote > 0) {
      client.out_done += static_cast<size_t>(wrote);
      continue;
    }
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      watch(index, true);
      return;
    }
    no_answer(index, std::string("send failed: ") + std::strerror(errno));
    return;
  }
  if (client.want_write) watch(index, false);
  client.sent = true;
  client.phase = Phase::awaiting;
  if (client.in.size() > 0) take_answer(index);  // bytes read earlier: a stray answer is refused here
}

void ClientLoop::readable(size_t index) {
  Client& client = clients_[index];
  if (client.socket < 0) return;
  uint8_t* room = client.in.room(read_room_bytes);  // before room_size(): it grows the buffer
  ssize_t got;
  do {
    got = ::recv(client.socket, room, client.in.room_size(), MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (got <= 0) {
    const std::string what =
        got == 0 ? std::string("connection closed by the node") : std::string("receive failed: ") + std::strerror(errno);
    if (client.phase != Phase::sending && client.phase != Phase::awaiting) {  // (connecting is handled apart)
      close_socket(client);  // closed while idle or waiting out a backoff: the next attempt reconnects
      return;
    }
    // A reused connection the node closed while idle: one fresh connection at once, as KvClient.
    if (got == 0 && client.socket_answered && !client.reconnected) {
      close_socket(client);
      client.reconnected = true;
      client.out_done = 0;  // the whole request again; `sent` stays: the closed one may have had it
      Status begun = connect(index);
      if (!begun.is_ok()) no_answer(index, begun.message());
      return;
    }
    no_answer(index, what);
    return;
  }
  client.in.filled(static_cast<size_t>(got));
  if (client.phase == Phase::awaiting) take_answer(index);
}

void ClientLoop::take_answer(size_t index) {
  Client& client = clients_[index];
  if (client.in.size() < frame_header_bytes) return;
  const uint32_t length = read_frame_header(client.in.data());
  if (length == 0 || length > client_message_bytes_max) {
    no_answer(index, "answer frame of " + std::to_string(length) + " bytes (protocol error)");
    return;
  }
  if (client.in.size() < frame_header_bytes + length) return;
  auto response = decode_client_response(client.in.data() + frame_header_bytes, length);
  client.in.consume(frame_header_bytes + length);
  if (!response.is_ok() || response->request_id != client.request.request_id) {
    no_answer(index, response.is_ok() ? "answer to request " + std::to_string(response->request_id) + ", expected " +
                                            std::to_string(client.request.request_id)
                                      : "malformed answer: " + response.status().message());
    return;
  }
  client.socket_answered = true;
  answered(index, *response);
}

void ClientLoop::answered(size_t index, const ClientResponse& response) {
  Client& client = clients_[index];
  const size_t slot = client.slot;
  const std::optional<size_t> hinted = client.nodes.learn(slot, response);
  client.policy->set_nodes(client.nodes.size());
  const std::string node = client.nodes.describe(slot);
  const bool hint_elsewhere = hinted && *hinted != slot;
  const Decision decision = client.policy->on_answer(response, hint_elsewhere);
  switch (decision.kind) {
    case Decision::done:
      client.nodes.assume(slot, response.leader_hint);
      client.leader_slot = slot;
      finish(index, response);
      return;
    case Decision::fail:
      finish(index, failed_operation(client.request, response, node));
      return;
    case Decision::retry:
      client.last_failure[slot] = retried_answer(response, hint_elsewhere ? client.nodes.describe(*hinted) : std::string());
      move_on(index, decision, hinted);
      return;
  }
}

void ClientLoop::no_answer(size_t index, const std::string& what) {
  Client& client = clients_[index];
  close_socket(client);  // the stream can no longer be trusted
  client.last_failure[client.slot] = what;
  client.policy->set_nodes(client.nodes.size());
  move_on(index, client.policy->on_no_answer(client.sent), std::nullopt);
}

void ClientLoop::move_on(size_t index, const Decision& decision, std::optional<size_t> hinted) {
  Client& client = clients_[index];
  if (client.leader_slot == client.slot) client.leader_slot.reset();
  switch (decision.target) {
    case RetryTarget::same: break;
    case RetryTarget::hinted: client.slot = hinted ? *hinted : client.nodes.next(client.slot); break;
    case RetryTarget::another: client.slot = client.nodes.next(client.slot); break;
  }
  client.next_slot = client.nodes.next(client.slot);
  const uint64_t wait_ms = decision.delay_us / 1000;
  if (wait_ms == 0) {
    attempt(index);
    return;
  }
  client.phase = Phase::backoff;
  client.attempt_deadline_ms = std::min(steady_now_ms() + wait_ms, client.deadline_ms);
}

void ClientLoop::finish(size_t index, Result<ClientResponse> outcome) {
  Client& client = clients_[index];
  if (is_write_op(client.request.op)) {
    client.session.write_ended(outcome.is_ok(), client.policy->uncertain(), random_client_id);
  }
  client.phase = Phase::idle;
  client.attempt_deadline_ms = UINT64_MAX;
  --active_;
  (*finished_)(index, client.request, std::move(outcome));
}

void ClientLoop::close_socket(Client& client) {
  if (client.socket >= 0) ::close(client.socket);  // closing drops it from the epoll set
  client.socket = -1;
  client.want_write = false;
  client.in.clear();
}

void ClientLoop::watch(size_t index, bool write) {
  Client& client = clients_[index];
  if (client.want_write == write) return;
  epoll_event event{};
  event.events = EPOLLIN | (write ? EPOLLOUT : 0u);
  event.data.u64 = index;
  if (::epoll_ctl(epoll_, EPOLL_CTL_MOD, client.socket, &event) == 0) client.want_write = write;
}

}  // namespace keyval
