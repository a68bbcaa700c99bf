// The Redis listener (redis_listener.h): connections, ordered replies, and the routing of
// client requests to the leader.
#include "actors/redis_listener.h"

#include "actors/read_size.h"

#include <algorithm>
#include <caf/io/all.hpp>
#include <deque>
#include <map>
#include <memory>

#include "actors/bind_failure.h"
#include "actors/framing.h"
#include "actors/redis_commands.h"
#include "client/operation_policy.h"

namespace keyval {
namespace {

using Clock = caf::actor_clock::clock_type;
using Handle = caf::io::connection_handle;

constexpr auto tick_interval = std::chrono::milliseconds(25);
constexpr size_t read_bytes_min = 4u << 10;   // a connection's reads: 4 KiB ...
constexpr size_t read_bytes_max = 64u << 10;  // ... to 64 KiB (actors/read_size.h)

// A reply's place in its connection's order; filled when its command is done.
struct Slot {
  bool ready = false;
  bool close_after = false;
  std::string bytes;
};

struct RedisConnection {
  uint64_t serial = 0;  // CAF reuses handles (socket numbers): answers check the serial
  ReadSize read_size{read_bytes_min, read_bytes_max};  // what each read asks for (read_size.h)
  RedisSession session;
  RespParser parser;
  std::deque<Slot> slots;
  uint64_t first_slot = 0;  // the sequence number of slots.front()
  uint64_t next_slot = 0;
  bool closing = false;     // QUIT or a protocol error: no more commands are read
  // Commands run in the order sent, as Redis runs them: reads run together and writes run
  // together, but a read waits for the writes sent before it (GET after SET sees the SET)
  // and a write for the reads sent before it (GET before SET does not).
  size_t reads_in_flight = 0;
  size_t writes_in_flight = 0;
  std::deque<uint64_t> held;  // runs waiting for their turn, in order
};

// A command waiting for answers.
struct CommandRun {
  Handle handle;
  uint64_t serial = 0;
  uint64_t slot = 0;
  int protocol = 2;
  RedisStep step;
  std::vector<ClientResponse> answers;
  std::vector<bool> answered;
  std::vector<OperationPolicy> policies;  // per request: the policy every KeyVal client runs
  size_t remaining = 0;
  Clock::time_point deadline;
  bool writes = false;    // a request of the command writes
  bool launched = false;  // counted in its connection's in-flight reads or writes
};

struct PendingRetry {
  Clock::time_point due;
  uint64_t run = 0;
  size_t index = 0;
};

// The native-protocol connection to the leader's client port.
struct LeaderLink {
  std::string address;  // "HOST:PORT"; empty: requests go to this node's gateway
  bool connected = false;
  Handle handle;
  uint32_t payload_bytes = 0;  // the frame being read; 0 while reading a header
  std::map<uint64_t, std::pair<uint64_t, size_t>> pending;  // request id -> (run, index)
  uint64_t directory_version = 0;  // the leader's, from its latest answer (see ListenerState)
};

// A request for this node's gateway, held until this broker's flush message: all of them
// then go in one client_batch (flush_outbox).
struct Outgoing {
  uint64_t run = 0;
  size_t index = 0;
  Frame request;
  BatchKind kind = BatchKind::alone;
};

// A GET or MGET read in the cycle's GetBatch (RedisCommands::batched_read): its keys are
// keys[first, first + count) of its group. Counted in its connection's reads in flight.
struct BatchedRead {
  Handle handle;
  uint64_t serial = 0;
  uint64_t slot = 0;
  int protocol = 2;
  bool array = false;  // MGET
  size_t first = 0;
  size_t count = 0;
  Clock::time_point deadline;  // the command's, should it go the general way after all
};

// The reads of one GetBatch and their keys.
struct ReadGroup {
  std::vector<BatchedRead> reads;
  std::vector<std::string> keys;
};

using flush_atom = caf::atom_constant<caf::atom("rflush")>;
constexpr flush_atom flush_atom_v{};

struct ListenerState {
  RedisListenerConfig config;
  client_gateway_actor gateway;
  std::unique_ptr<RedisCommands> commands;
  RedisStats stats;
  uint16_t port = 0;
  std::map<Handle, RedisConnection> connections;
  std::map<uint64_t, CommandRun> runs;
  std::vector<PendingRetry> retries;
  std::vector<Outgoing> outbox;
  ReadGroup reads;  // this cycle's batched reads, sent with the outbox
  LeaderLink leader;
  uint64_t next_run = 1;
  uint64_t next_request_id = 1;
  // The directory fingerprint of this node's gateway's latest answer: requests carry it, so
  // answers leave the member list out unless it changed (this listener follows leader hints,
  // not member lists). The leader link keeps its own: two nodes' directories differ (a
  // follower knows fewer addresses), and one shared value would bring the list every time.
  uint64_t directory_version = 0;
  bool tick_armed = false;
  // While a GetBatch's answers are written (reads_answered): the connections written to, each
  // flushed once at the end. A flush per reply sent a connection's first reply alone and the
  // rest behind it: two sends (and their wake-ups of the client) where one does.
  bool deferring_flush = false;
  std::vector<Handle> to_flush;
  static inline const char* name = "redis_listener";
};

using Broker = caf::io::stateful_broker<ListenerState>;

void log_line(Broker* self, const std::string& line) {
  if (self->state.config.log) self->state.config.log("redis listener: " + line);
}

uint64_t now_ms(Broker* self) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now().time_since_epoch()).count());
}

// Sent without a sender, like actors/deadlines.h's sweep: a CAF 0.17 broker never empties
// its mailbox when it quits, so a tick naming it as sender that was still pending then kept
// the broker alive (a reference cycle LeakSanitizer reported at a node's stop).
void arm_tick(Broker* self) {
  if (self->state.tick_armed) return;
  self->state.tick_armed = true;
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), tick_interval, sweep_atom_v);
}

// Writes every reply that is ready at the front of the connection's order.
void flush_replies(Broker* self, Handle handle) {
  auto found = self->state.connections.find(handle);
  if (found == self->state.connections.end()) return;
  RedisConnection& connection = found->second;
  bool wrote = false;
  bool close = false;
  while (!connection.slots.empty() && connection.slots.front().ready) {
    Slot& slot = connection.slots.front();
    if (!slot.bytes.empty()) self->write(handle, slot.bytes.size(), slot.bytes.data());
    wrote = true;
    close = slot.close_after;
    connection.slots.pop_front();
    ++connection.first_slot;
    if (close) break;
  }
  if (wrote && !close && self->state.deferring_flush) {
    self->state.to_flush.push_back(handle);
  } else if (wrote) {
    self->flush(handle);
  }
  if (close) {
    self->state.connections.erase(found);
    --self->state.stats.connections_open;
    self->close(handle);
  }
}

void complete(Broker* self, Handle handle, uint64_t serial, uint64_t slot, std::string bytes, bool close_after) {
  auto found = self->state.connections.find(handle);
  if (found == self->state.connections.end() || found->second.serial != serial) return;  // the client left
  RedisConnection& connection = found->second;
  if (slot < connection.first_slot) return;
  Slot& place = connection.slots[static_cast<size_t>(slot - connection.first_slot)];
  place.ready = true;
  place.bytes = std::move(bytes);
  place.close_after = close_after;
  flush_replies(self, handle);
}

void send_request(Broker* self, uint64_t run_id, size_t index);
void send_reads(Broker* self);

// Runs `write_replies`, then flushes each connection it wrote to once (ListenerState::
// deferring_flush): the answers to a batch reach their connections in one send each.
template <class Write>
void with_one_flush_each(Broker* self, Write&& write_replies) {
  auto& state = self->state;
  const bool outer = !state.deferring_flush;
  state.deferring_flush = true;
  write_replies();
  if (!outer) return;
  state.deferring_flush = false;
  std::sort(state.to_flush.begin(), state.to_flush.end());
  state.to_flush.erase(std::unique(state.to_flush.begin(), state.to_flush.end()), state.to_flush.end());
  for (Handle handle : state.to_flush) self->flush(handle);
  state.to_flush.clear();
}
void begin_step(CommandRun& run);
void release_held(Broker* self, Handle handle, uint64_t serial);

void finish_run(Broker* self, uint64_t run_id, std::optional<std::string> error = std::nullopt) {
  auto found = self->state.runs.find(run_id);
  if (found == self->state.runs.end()) return;
  CommandRun& run = found->second;
  RespWriter out(run.protocol);
  if (!error) {
    for (const ClientResponse& answer : run.answers) {
      if (answer.status != ClientStatus::ok) {
        error = RedisCommands::error_of(answer);
        break;
      }
    }
  }
  if (error) {
    out.error(*error);
  } else if (auto next = run.step.then(run.answers, out)) {
    // A paged read's next page: the same command, its next requests.
    run.step = std::move(*next);
    begin_step(run);
    for (size_t i = 0; i < run.step.requests.size(); ++i) send_request(self, run_id, i);
    return;
  }
  Handle handle = run.handle;
  uint64_t serial = run.serial;
  uint64_t slot = run.slot;
  auto connection = self->state.connections.find(handle);
  if (run.launched && connection != self->state.connections.end() && connection->second.serial == serial) {
    --(run.writes ? connection->second.writes_in_flight : connection->second.reads_in_flight);
  }
  self->state.runs.erase(found);
  complete(self, handle, serial, slot, out.take(), false);
  release_held(self, handle, serial);
}

// Sends a command's requests; it counts as in flight on its connection until it finishes.
void launch(Broker* self, RedisConnection& connection, uint64_t run_id) {
  CommandRun& run = self->state.runs[run_id];
  run.launched = true;
  ++(run.writes ? connection.writes_in_flight : connection.reads_in_flight);
  for (size_t i = 0; i < run.step.requests.size(); ++i) send_request(self, run_id, i);
}

bool may_launch(const RedisConnection& connection, const CommandRun& run) {
  return (run.writes ? connection.reads_in_flight : connection.writes_in_flight) == 0;
}

// Starts the held commands whose turn came, in order (a command that ended while held, at its
// deadline, is skipped).
void release_held(Broker* self, Handle handle, uint64_t serial) {
  auto found = self->state.connections.find(handle);
  if (found == self->state.connections.end() || found->second.serial != serial) return;
  RedisConnection& connection = found->second;
  while (!connection.held.empty()) {
    auto run = self->state.runs.find(connection.held.front());
    if (run == self->state.runs.end()) {
      connection.held.pop_front();
      continue;
    }
    if (!may_launch(connection, run->second)) return;
    const uint64_t run_id = connection.held.front();
    connection.held.pop_front();
    launch(self, connection, run_id);
  }
}

void schedule_retry(Broker* self, uint64_t run_id, size_t index, uint64_t delay_us) {
  self->state.retries.push_back(PendingRetry{self->clock().now() + std::chrono::microseconds(delay_us), run_id, index});
  arm_tick(self);
}

// The answers and policies of a step's requests, before they are sent. The gateway knows two
// nodes at a time (this one, and the leader it forwards to), so hints are followed at most
// twice in a row without a backoff.
void begin_step(CommandRun& run) {
  const size_t requests = run.step.requests.size();
  run.answers.assign(requests, ClientResponse{});
  run.answered.assign(requests, false);
  run.remaining = requests;
  run.policies.clear();
  for (const ClientRequest& request : run.step.requests) run.policies.emplace_back(is_write_op(request.op), 2);
}

// Drops the link to the leader; what was in flight on it is answered as the link's loss
// decides: a read is sent again (to this node), a write's outcome is unknown.
void drop_leader_link(Broker* self, const std::string& why) {
  LeaderLink& link = self->state.leader;
  if (link.connected) {
    log_line(self, "connection to the leader at " + link.address + " closed: " + why);
    self->close(link.handle);
  }
  auto pending = std::move(link.pending);
  link = LeaderLink{};
  for (const auto& [request_id, target] : pending) {
    auto run = self->state.runs.find(target.first);
    if (run == self->state.runs.end()) continue;
    // Sent and not answered: a read goes again; a write's outcome is unknown.
    const Decision decision = run->second.policies[target.second].on_no_answer(true);
    if (!run->second.policies[target.second].uncertain()) {
      schedule_retry(self, target.first, target.second, decision.delay_us);
      continue;
    }
    ClientResponse lost = client_refusal(run->second.step.requests[target.second].request_id, ClientStatus::unavailable,
                                         "the connection to the leader closed before it answered (" + why + ")");
    run->second.answers[target.second] = lost;
    run->second.answered[target.second] = true;
    if (--run->second.remaining == 0) finish_run(self, target.first);
  }
}

void on_answer(Broker* self, uint64_t run_id, size_t index, ClientResponse response) {
  auto found = self->state.runs.find(run_id);
  if (found == self->state.runs.end()) return;  // timed out meanwhile
  CommandRun& run = found->second;
  if (run.answered[index]) return;
  // The leader the answer names, where the gateway can reach it: another node's client port
  // (one it does not forward to yet), or this node when it forwards elsewhere.
  LeaderLink& link = self->state.leader;
  const uint64_t own_id = self->state.config.node_id;
  const bool to_other = response.status == ClientStatus::not_leader && response.leader_hint != 0 &&
                        response.leader_hint != own_id && !response.leader_client_address.empty() &&
                        response.leader_client_address != link.address;
  const bool to_self = response.leader_hint == own_id && !link.address.empty();
  OperationPolicy& policy = run.policies[index];
  const Decision decision = policy.on_answer(response, to_other || to_self);
  // Retried as the policy says, but never a write whose outcome is unknown: Redis commands
  // carry no session, so a retry could apply it twice (docs/REDIS.md).
  const bool retry = decision.kind == Decision::retry && !policy.uncertain() && !run.step.local &&
                     self->clock().now() < run.deadline;
  if (retry) {
    if (decision.target == RetryTarget::hinted && to_other) {
      drop_leader_link(self, "the leader moved to node " + std::to_string(response.leader_hint));
      self->state.leader.address = response.leader_client_address;
    } else if (decision.target == RetryTarget::hinted && to_self) {
      drop_leader_link(self, "this node leads now");
    }
    if (decision.delay_us == 0) return send_request(self, run_id, index);
    return schedule_retry(self, run_id, index, decision.delay_us);
  }
  run.answers[index] = std::move(response);
  run.answered[index] = true;
  if (--run.remaining == 0) finish_run(self, run_id);
}

bool connect_leader(Broker* self) {
  LeaderLink& link = self->state.leader;
  if (link.connected) return true;
  // The address comes from the cluster (a node's advertised client address): checked here,
  // never trusted to parse.
  const size_t colon = link.address.rfind(':');
  const std::string port_text = colon == std::string::npos ? "" : link.address.substr(colon + 1);
  uint32_t port = 0;
  for (char c : port_text) port = (c >= '0' && c <= '9' && port <= 65535) ? port * 10 + (c - '0') : 65536;
  if (port_text.empty() || port == 0 || port > 65535) {
    log_line(self, "cannot forward to the leader at '" + link.address + "': not HOST:PORT");
    return false;
  }
  std::string host = link.address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  auto handle = self->add_tcp_scribe(host, static_cast<uint16_t>(port));
  if (!handle) {
    log_line(self, "cannot connect to the leader at " + link.address + ": " + self->system().render(handle.error()));
    return false;
  }
  link.connected = true;
  link.handle = *handle;
  link.payload_bytes = 0;
  self->configure_read(link.handle, caf::io::receive_policy::exactly(frame_header_bytes));
  log_line(self, "forwarding to the leader at " + link.address);
  return true;
}

void send_request(Broker* self, uint64_t run_id, size_t index) {
  auto found = self->state.runs.find(run_id);
  if (found == self->state.runs.end()) return;
  ClientRequest& request = found->second.step.requests[index];
  request.request_id = self->state.next_request_id++;
  const bool to_leader = !found->second.step.local && !self->state.leader.address.empty();
  if (to_leader && connect_leader(self)) {
    request.directory_known = self->state.leader.directory_version;
    self->state.leader.pending[request.request_id] = {run_id, index};
    ++self->state.stats.forwarded_total;
    auto payload = encode_client_request(request);
    uint8_t header[frame_header_bytes];
    write_frame_header(header, static_cast<uint32_t>(payload.size()));
    self->write(self->state.leader.handle, sizeof header, header);
    self->write(self->state.leader.handle, payload.size(), payload.data());
    self->flush(self->state.leader.handle);
    return;
  }
  if (to_leader) self->state.leader = LeaderLink{};  // unreachable: ask this node, which names the leader again
  request.directory_known = self->state.directory_version;
  // Flushed once the multiplexer handed this broker every socket event of its cycle (a
  // message to itself comes after them: CAF 0.17's default_multiplexer resumes a broker
  // posted from its own thread at its next poll), so the commands of every connection read
  // in one cycle go together. Sent without a sender, like the tick.
  if (self->state.outbox.empty()) caf::anon_send(caf::actor_cast<caf::actor>(self), flush_atom_v);
  self->state.outbox.push_back(Outgoing{run_id, index, Frame{encode_client_request(request)}, batch_kind(request)});
}

void answer_from_gateway(Broker* self, const Outgoing& sent, const Frame& frame) {
  auto response = decode_client_response(frame.bytes.data(), frame.bytes.size());
  if (!response.is_ok()) {
    return on_answer(self, sent.run, sent.index,
                     client_refusal(0, ClientStatus::unavailable, response.status().to_string()));
  }
  self->state.directory_version = response->directory_version;
  on_answer(self, sent.run, sent.index, std::move(*response));
}

// Sends what was queued for the gateway: one request alone, several as one batch (every
// command the connections' reads of one cycle held: one message, one proposal batch, one
// ReadIndex). Answers that queue retries or a next page flush them with the next cycle.
void send_group(Broker* self, std::vector<Outgoing> outbox) {
  if (outbox.empty()) return;
  auto gateway_failed = [self](const std::vector<Outgoing>& sent, const caf::error& error) {
    for (const Outgoing& one : sent) {
      on_answer(self, one.run, one.index,
                client_refusal(0, ClientStatus::unavailable, "gateway failed: " + self->system().render(error)));
    }
  };
  if (outbox.size() == 1) {
    Outgoing sent = std::move(outbox.front());
    Frame request = std::move(sent.request);
    self->request(self->state.gateway, caf::infinite, client_atom_v, std::move(request))
        .then(
            [self, sent](Frame& frame) {
              answer_from_gateway(self, sent, frame);
            },
            [sent, gateway_failed](caf::error& error) { gateway_failed({sent}, error); });
    return;
  }
  std::vector<Frame> requests;
  requests.reserve(outbox.size());
  for (Outgoing& one : outbox) requests.push_back(std::move(one.request));
  auto sent = std::make_shared<std::vector<Outgoing>>(std::move(outbox));
  self->request(self->state.gateway, caf::infinite, client_batch_atom_v, std::move(requests))
      .then(
          [self, sent](std::vector<Frame>& answers) {
            with_one_flush_each(self, [&] {
              for (size_t i = 0; i < sent->size(); ++i) {
                if (i < answers.size()) {
                  answer_from_gateway(self, (*sent)[i], answers[i]);
                } else {
                  on_answer(self, (*sent)[i].run, (*sent)[i].index,
                            client_refusal(0, ClientStatus::unavailable, "gateway answered too few requests"));
                }
              }
            });
          },
          [sent, gateway_failed](caf::error& error) { gateway_failed(*sent, error); });
}

// A batch is answered once its last request is: gets go together, writes together, every
// other request alone (batch_kind, client_gateway.h), so none waits for one of another kind.
void flush_outbox(Broker* self) {
  send_reads(self);
  std::vector<Outgoing> outbox = std::move(self->state.outbox);
  self->state.outbox.clear();
  send_by_kind(std::move(outbox), [self](std::vector<Outgoing> group) { send_group(self, std::move(group)); });
}

void read_leader_frame(Broker* self, const std::vector<char>& bytes) {
  LeaderLink& link = self->state.leader;
  if (link.payload_bytes == 0) {
    uint32_t length = read_frame_header(reinterpret_cast<const uint8_t*>(bytes.data()));
    if (length == 0 || length > client_message_bytes_max) {
      return drop_leader_link(self, "frame length " + std::to_string(length) + " out of bounds");
    }
    link.payload_bytes = length;
    self->configure_read(link.handle, caf::io::receive_policy::exactly(length));
    return;
  }
  link.payload_bytes = 0;
  self->configure_read(link.handle, caf::io::receive_policy::exactly(frame_header_bytes));
  auto response = decode_client_response(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!response.is_ok()) return drop_leader_link(self, "malformed answer: " + response.status().message());
  link.directory_version = response->directory_version;
  auto pending = link.pending.find(response->request_id);
  if (pending == link.pending.end()) return;
  auto target = pending->second;
  link.pending.erase(pending);
  on_answer(self, target.first, target.second, std::move(*response));
}

// Runs a command's step of requests from `slot` on: now, or once the commands before it allow
// (`in_order`: a command just read; a read that went the general way after a GetBatch did
// not serve it was in flight already and goes at once).
void run_step(Broker* self, Handle handle, RedisConnection& connection, uint64_t slot, RedisStep step,
              Clock::time_point deadline, bool in_order) {
  const uint64_t run_id = self->state.next_run++;
  CommandRun& run = self->state.runs[run_id];
  run.handle = handle;
  run.serial = connection.serial;
  run.slot = slot;
  run.protocol = connection.session.protocol;
  run.step = std::move(step);
  begin_step(run);
  run.deadline = deadline;
  for (const ClientRequest& request : run.step.requests) run.writes |= is_write_op(request.op);
  arm_tick(self);
  if (in_order && (!connection.held.empty() || !may_launch(connection, run))) {
    connection.held.push_back(run_id);
    return;
  }
  launch(self, connection, run_id);
}

void start_command(Broker* self, Handle handle, RedisConnection& connection, std::vector<std::string>& arguments,
                   Clock::time_point now) {
  auto& state = self->state;
  ++state.stats.commands_total;
  state.stats.now_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  const uint64_t slot = connection.next_slot++;
  connection.slots.emplace_back();
  if (connection.slots.size() > state.config.commands_in_flight_max) {
    RespWriter out(connection.session.protocol);
    out.error("ERR busy: " + std::to_string(state.config.commands_in_flight_max) +
              " commands of this connection are waiting for their replies; read them first");
    return complete(self, handle, connection.serial, slot, out.take(), false);
  }
  const auto deadline = now + state.config.command_timeout;
  bool array = false;
  // A plain GET or MGET that may run now (no write before it in flight or held) joins the
  // cycle's GetBatch, while this node's gateway is where requests go (no leader elsewhere).
  if (state.leader.address.empty() && connection.held.empty() && connection.writes_in_flight == 0 &&
      state.commands->batched_read(connection.session, arguments, &array)) {
    if (state.reads.keys.size() + arguments.size() - 1 > get_batch_keys_max) send_reads(self);
    if (state.outbox.empty() && state.reads.reads.empty()) {
      caf::anon_send(caf::actor_cast<caf::actor>(self), flush_atom_v);
    }
    ++connection.reads_in_flight;
    state.reads.reads.push_back(BatchedRead{handle, connection.serial, slot, connection.session.protocol, array,
                                            state.reads.keys.size(), arguments.size() - 1, deadline});
    for (size_t i = 1; i < arguments.size(); ++i) state.reads.keys.push_back(std::move(arguments[i]));
    return;
  }
  RespWriter out(connection.session.protocol);
  RedisOutcome outcome = state.commands->execute(connection.session, arguments, out, state.stats);
  if (outcome.close) connection.closing = true;
  if (!outcome.step) return complete(self, handle, connection.serial, slot, out.take(), outcome.close);
  run_step(self, handle, connection, slot, std::move(*outcome.step), deadline, true);
}

// A batched read is over: its reply takes its place in the connection's order.
void end_read(Broker* self, const BatchedRead& read, std::string reply) {
  auto found = self->state.connections.find(read.handle);
  if (found == self->state.connections.end() || found->second.serial != read.serial) return;  // the client left
  --found->second.reads_in_flight;
  complete(self, read.handle, read.serial, read.slot, std::move(reply), false);
  release_held(self, read.handle, read.serial);
}

// A batched read the GetBatch did not serve (this node does not lead, no quorum, the batch
// timed out, ...) goes the general way: its own requests, retried by the client policy (a
// leader named is followed), until the command's deadline.
void read_the_general_way(Broker* self, const BatchedRead& read, const std::vector<std::string>& keys) {
  auto found = self->state.connections.find(read.handle);
  if (found == self->state.connections.end() || found->second.serial != read.serial) return;
  RedisConnection& connection = found->second;
  std::vector<std::string> arguments;
  arguments.reserve(read.count + 1);
  arguments.emplace_back(read.array ? "MGET" : "GET");
  for (size_t i = 0; i < read.count; ++i) arguments.push_back(keys[read.first + i]);
  RespWriter out(read.protocol);
  RedisOutcome outcome = self->state.commands->execute(connection.session, arguments, out, self->state.stats);
  --connection.reads_in_flight;
  if (!outcome.step) {
    complete(self, read.handle, read.serial, read.slot, out.take(), false);
    return release_held(self, read.handle, read.serial);
  }
  run_step(self, read.handle, connection, read.slot, std::move(*outcome.step), read.deadline, false);
}

void reads_answered(Broker* self, const ReadGroup& group, const Frame* frame, const std::string& failure) {
  std::optional<GetBatchAnswer> answer;
  if (frame != nullptr) {
    auto decoded = decode_get_batch_answer(frame->bytes.data(), frame->bytes.size());
    if (decoded.is_ok()) {
      self->state.directory_version = decoded->header.directory_version;
      if (decoded->header.status == ClientStatus::ok && decoded->values.size() == group.keys.size()) {
        answer = std::move(*decoded);
      }
    } else {
      log_line(self, "gateway answered a get batch with a malformed message: " + decoded.status().to_string());
    }
  } else {
    log_line(self, "gateway failed a get batch: " + failure);
  }
  if (!answer) {
    for (const BatchedRead& read : group.reads) read_the_general_way(self, read, group.keys);
    return;
  }
  self->state.stats.batched_reads_total += group.reads.size();
  with_one_flush_each(self, [&] {
    for (const BatchedRead& read : group.reads) {
      RespWriter out(read.protocol);
      RedisCommands::write_read_reply(out, read.array, answer->found.data() + read.first,
                                      answer->values.data() + read.first, read.count);
      end_read(self, read, out.take());
    }
  });
}

// Sends the cycle's batched reads as one GetBatch.
void send_reads(Broker* self) {
  if (self->state.reads.reads.empty()) return;
  auto group = std::make_shared<ReadGroup>(std::move(self->state.reads));
  self->state.reads = ReadGroup{};
  Frame batch{encode_get_batch(group->keys, self->state.directory_version)};
  self->request(self->state.gateway, caf::infinite, client_gets_atom_v, std::move(batch))
      .then([self, group](Frame& frame) { reads_answered(self, *group, &frame, {}); },
            [self, group](caf::error& error) { reads_answered(self, *group, nullptr, self->system().render(error)); });
}

void read_commands(Broker* self, caf::io::new_data_msg& message) {
  auto found = self->state.connections.find(message.handle);
  if (found == self->state.connections.end()) return;
  const uint64_t serial = found->second.serial;
  ReadSize& read_size = found->second.read_size;
  if (read_size.after_read(message.buf.size())) {
    self->configure_read(message.handle, caf::io::receive_policy::at_most(read_size.current()));
  }
  found->second.parser.feed(message.buf.data(), message.buf.size());
  const auto now = self->clock().now();
  std::vector<std::string> arguments;
  std::string error;
  while (true) {
    found = self->state.connections.find(message.handle);
    if (found == self->state.connections.end() || found->second.serial != serial || found->second.closing) return;
    RedisConnection& connection = found->second;
    auto outcome = connection.parser.next(&arguments, &error);
    if (outcome == RespParser::Outcome::need_more) return;
    if (outcome == RespParser::Outcome::error) {
      log_line(self, "connection " + connection.session.address + " closed: " + error);
      connection.closing = true;
      connection.slots.emplace_back();
      RespWriter out(connection.session.protocol);
      out.error("ERR " + error);
      return complete(self, message.handle, serial, connection.next_slot++, out.take(), true);
    }
    start_command(self, message.handle, connection, arguments, now);
  }
}

void accept_connection(Broker* self, Handle handle) {
  auto& state = self->state;
  ++state.stats.connections_total;
  if (state.connections.size() >= state.config.connections_max) {
    const std::string reply = "-ERR max number of clients reached\r\n";
    self->write(handle, reply.size(), reply.data());
    self->flush(handle);
    self->close(handle);
    return;
  }
  RedisConnection& connection = state.connections[handle];
  connection.serial = state.stats.connections_total;
  connection.session.id = connection.serial;
  connection.session.address = self->remote_addr(handle) + ":" + std::to_string(self->remote_port(handle));
  connection.parser = RespParser(state.config.limits);
  ++state.stats.connections_open;
  self->configure_read(handle, caf::io::receive_policy::at_most(connection.read_size.current()));
}

// Retries that are due, and commands past their deadline (answered with an error; a late
// answer then finds no run and is dropped).
void tick(Broker* self) {
  auto& state = self->state;
  state.tick_armed = false;
  const auto now = self->clock().now();
  std::vector<PendingRetry> due;
  std::vector<PendingRetry> later;
  for (const PendingRetry& retry : state.retries) (retry.due <= now ? due : later).push_back(retry);
  state.retries = std::move(later);
  for (const PendingRetry& retry : due) send_request(self, retry.run, retry.index);
  // Every command gets the same timeout when it starts and run ids grow in start order, so
  // deadlines grow with the id: the overdue commands are a prefix of `runs` (no full scan).
  std::vector<uint64_t> overdue;
  for (const auto& [id, run] : state.runs) {
    if (run.deadline > now) break;
    overdue.push_back(id);
  }
  for (uint64_t id : overdue) {
    auto run = state.runs.find(id);
    bool writes = false;
    for (const ClientRequest& request : run->second.step.requests) writes |= is_write_op(request.op);
    finish_run(self, id,
               std::string(writes ? "ERR timeout: the command may or may not have taken effect"
                                  : "TRYAGAIN timeout: no leader answered in time"));
  }
  if (!state.runs.empty() || !state.retries.empty()) arm_tick(self);
}

void connection_closed(Broker* self, Handle handle) {
  if (self->state.leader.connected && handle == self->state.leader.handle) {
    self->state.leader.connected = false;
    return drop_leader_link(self, "closed by the leader");
  }
  if (self->state.connections.erase(handle) > 0) --self->state.stats.connections_open;
}

caf::behavior redis_listener(Broker* self, RedisListenerConfig config, client_gateway_actor gateway,
                             caf::io::doorman_ptr doorman) {
  auto& state = self->state;
  state.port = doorman->port();
  self->add_doorman(std::move(doorman));
  state.config = std::move(config);
  state.gateway = std::move(gateway);
  state.commands = std::make_unique<RedisCommands>(RedisCommandsConfig{state.config.node_id, state.config.password});
  state.stats.started_at_ms = now_ms(self);
  log_line(self, "serving the Redis protocol on " + state.config.host + ":" + std::to_string(state.port) +
                     (state.config.password.empty() ? "" : " (AUTH required)"));
  return {
      [self](bounds_atom) { return self->state.port; },
      [self](sweep_atom) { tick(self); },
      [self](flush_atom) { flush_outbox(self); },
      [self](const caf::io::new_connection_msg& message) { accept_connection(self, message.handle); },
      [self](caf::io::new_data_msg& message) {
        if (self->state.leader.connected && message.handle == self->state.leader.handle) {
          return read_leader_frame(self, message.buf);
        }
        read_commands(self, message);
      },
      [self](const caf::io::connection_closed_msg& message) { connection_closed(self, message.handle); },
      [self](const caf::io::acceptor_closed_msg&) { log_line(self, "listener closed"); },
  };
}

}  // namespace

caf::actor spawn_redis_listener(caf::actor_system& system, RedisListenerConfig config, client_gateway_actor gateway) {
  KV_ASSERT(config.connections_max > 0);
  auto doorman = system.middleman().backend().new_tcp_doorman(config.port, config.host.c_str(), true);
  if (!doorman) {
    if (config.log) {
      const std::string why = bind_failure(config.host, config.port, system.render(doorman.error()));
      config.log("redis listener: cannot listen on " + config.host + ":" + std::to_string(config.port) + ": " + why);
    }
    return {};
  }
  return system.middleman().spawn_broker(redis_listener, std::move(config), std::move(gateway), std::move(*doorman));
}

}  // namespace keyval
