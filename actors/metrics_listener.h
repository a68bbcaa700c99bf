// The metrics listener: `keyval node --metrics-listen HOST:PORT` (docs/OPERATIONS.md, "Metrics
// and health"). One CAF broker speaking HTTP/1.1 (metrics/http.h), GET only:
//   /metrics  200, the node's metrics (metrics/node_metrics.h) in the Prometheus text format 0.0.4
//   /health   200 "ok" while the node is healthy (metrics/health.h), else 503 with the reason
//   anything else: 404 naming the two paths; another method: 405 with "Allow: GET".
// A malformed request, or a head above request_bytes_max, is answered 400 or 431 and closes
// that connection only; connections beyond connections_max are closed at once. Keep-alive
// (what Prometheus uses) and pipelined requests are served in order.
//
// It reads the metrics, never asks an actor: a scrape answers even while the node's actors
// are busy or stuck. It observes the health rule on a timer (health_interval) as well as at
// each /health request, so a stall is timed from when it began, not from the first check.
//
// Messages the actor handles (besides the broker's own):
//   (bounds_atom) -> uint16_t   the port it is bound to (learn it when the config asked for 0)
// Stop it with an exit message (caf::anon_send_exit).
#pragma once

#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "metrics/node_metrics.h"

namespace keyval {

struct MetricsListenerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the system picks one (ask with bounds_atom)
  std::shared_ptr<metrics::NodeMetrics> metrics;  // required
  size_t request_bytes_max = 8192;  // one request head
  size_t connections_max = 64;
  std::chrono::milliseconds health_interval{500};
  std::chrono::milliseconds apply_stall_max{5000};  // metrics/health.h, rule 3
  std::function<void(const std::string&)> log;      // one line per event; silent when empty
};

// Binds now, in the caller's thread, so that a taken port is reported at once: returns an
// invalid handle and sets *error (naming the address, and "address already in use" when that
// is the cause) when it cannot listen.
caf::actor spawn_metrics_listener(caf::actor_system& system, MetricsListenerConfig config, std::string* error);

}  // namespace keyval
