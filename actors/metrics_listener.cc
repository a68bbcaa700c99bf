// The metrics listener (see metrics_listener.h): one broker, each connection's bytes gathered
// until a request head is complete, each request answered from the metrics.
#include "actors/metrics_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/io/all.hpp>
#include <cerrno>
#include <cstring>
#include <map>

#include "actors/bind_failure.h"
#include "actors/messages.h"
#include "metrics/health.h"
#include "metrics/http.h"

namespace keyval {
namespace {

using health_tick_atom = caf::atom_constant<caf::atom("healthtick")>;
constexpr health_tick_atom health_tick_atom_v{};

constexpr size_t read_bytes_max = 4096;  // one read from a connection

struct MetricsConnection {
  std::string buffer;  // bytes read, not yet a complete request
};

struct MetricsListenerState {
  MetricsListenerConfig config;
  metrics::HealthRule health;
  uint16_t port = 0;
  std::map<caf::io::connection_handle, MetricsConnection> connections;
  static inline const char* name = "metrics_listener";
};

using Broker = caf::io::stateful_broker<MetricsListenerState>;

void log_line(Broker* self, const std::string& line) {
  if (self->state.config.log) self->state.config.log("metrics listener: " + line);
}

metrics::HealthVerdict check_health(Broker* self) {
  const metrics::NodeMetrics& node = *self->state.config.metrics;
  metrics::HealthInput input;
  input.serving = node.serving.value() != 0;
  input.leader_id = static_cast<uint64_t>(node.leader_id.value());
  input.commit_index = static_cast<uint64_t>(node.commit_index.value());
  input.applied_index = static_cast<uint64_t>(node.applied_index.value());
  return self->state.health.check(input, std::chrono::steady_clock::now());
}

void send_text(Broker* self, caf::io::connection_handle handle, const std::string& text) {
  self->write(handle, text.size(), text.data());
  self->flush(handle);
}

void close_connection(Broker* self, caf::io::connection_handle handle) {
  self->state.connections.erase(handle);
  self->close(handle);  // CAF writes what is buffered before it closes
}

// The answer to one complete request.
std::string answer(Broker* self, const metrics::HttpRequest& request) {
  const bool keep_alive = request.keep_alive;
  const char* text = "text/plain; charset=utf-8";
  if (request.path != "/metrics" && request.path != "/health") {
    return metrics::http_response(404, "Not Found", text, "not found: " + request.path + " (try /metrics or /health)\n",
                                  keep_alive);
  }
  if (request.method != "GET") {
    return metrics::http_response(405, "Method Not Allowed", text,
                                  "method " + request.method + " not allowed on " + request.path + ": GET only\n",
                                  keep_alive, "Allow: GET\r\n");
  }
  if (request.path == "/metrics") {
    return metrics::http_response(200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                                  self->state.config.metrics->render(), keep_alive);
  }
  metrics::HealthVerdict verdict = check_health(self);
  if (verdict.healthy) return metrics::http_response(200, "OK", text, "ok\n", keep_alive);
  return metrics::http_response(503, "Service Unavailable", text, verdict.reason + "\n", keep_alive);
}

// Every complete request in the connection's buffer, in order.
void serve(Broker* self, caf::io::connection_handle handle) {
  while (true) {
    auto found = self->state.connections.find(handle);
    if (found == self->state.connections.end()) return;
    std::string& buffer = found->second.buffer;
    metrics::HttpParseResult parsed = metrics::parse_http_request(buffer, self->state.config.request_bytes_max);
    switch (parsed.state) {
      case metrics::HttpParseState::incomplete: return;
      case metrics::HttpParseState::malformed:
      case metrics::HttpParseState::too_large: {
        const bool large = parsed.state == metrics::HttpParseState::too_large;
        log_line(self, "connection " + self->remote_addr(handle) + " closed: " + parsed.error);
        send_text(self, handle,
                  metrics::http_response(large ? 431 : 400, large ? "Request Header Fields Too Large" : "Bad Request",
                                         "text/plain; charset=utf-8", parsed.error + "\n", false));
        return close_connection(self, handle);
      }
      case metrics::HttpParseState::complete: break;
    }
    buffer.erase(0, parsed.head_bytes);
    send_text(self, handle, answer(self, parsed.request));
    if (!parsed.request.keep_alive) return close_connection(self, handle);
  }
}

void read_data(Broker* self, caf::io::new_data_msg& message) {
  auto found = self->state.connections.find(message.handle);
  if (found == self->state.connections.end()) return;
  found->second.buffer.append(message.buf.begin(), message.buf.end());
  serve(self, message.handle);
}

void accept_connection(Broker* self, caf::io::connection_handle handle) {
  if (self->state.connections.size() >= self->state.config.connections_max) {
    log_line(self, "connection " + self->remote_addr(handle) + " closed: too many connections");
    self->close(handle);
    return;
  }
  self->state.connections[handle];
  self->configure_read(handle, caf::io::receive_policy::at_most(read_bytes_max));
}

void schedule_tick(Broker* self) {
  // Without a sender: a broker that quit must not be kept alive by its own timer message.
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), self->state.config.health_interval, health_tick_atom_v);
}

caf::behavior metrics_listener(Broker* self, MetricsListenerConfig config, caf::io::doorman_ptr doorman) {
  auto& state = self->state;
  state.port = doorman->port();
  self->add_doorman(std::move(doorman));
  state.health = metrics::HealthRule(config.apply_stall_max);
  state.config = std::move(config);
  log_line(self, "serving /metrics and /health on " + state.config.host + ":" + std::to_string(state.port));
  schedule_tick(self);
  return {
      [self](bounds_atom) { return self->state.port; },
      [self](health_tick_atom) {
        check_health(self);
        schedule_tick(self);
      },
      [self](const caf::io::new_connection_msg& message) { accept_connection(self, message.handle); },
      [self](caf::io::new_data_msg& message) { read_data(self, message); },
      [self](const caf::io::connection_closed_msg& message) { self->state.connections.erase(message.handle); },
      [self](const caf::io::acceptor_closed_msg&) { log_line(self, "listener closed"); },
  };
}

}  // namespace

caf::actor spawn_metrics_listener(caf::actor_system& system, MetricsListenerConfig config, std::string* error) {
  KV_ASSERT(config.metrics && config.request_bytes_max > 0 && config.connections_max > 0);
  const std::string address = config.host + ":" + std::to_string(config.port);
  // Reuse the address so that a restarted node gets its port back despite TIME_WAIT links.
  auto doorman = system.middleman().backend().new_tcp_doorman(config.port, config.host.c_str(), true);
  if (!doorman) {
    if (error) *error = "cannot listen for metrics on " + address + ": " + bind_failure(config.host, config.port, system.render(doorman.error()));
    return {};
  }
  return system.middleman().spawn_broker(metrics_listener, std::move(config), std::move(*doorman));
}

}  // namespace keyval
