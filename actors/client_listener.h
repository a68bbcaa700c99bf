// The client listener: accepts clients' TCP connections and hands their requests to the node's
// client gateway (actors/client_gateway.h). One CAF broker: the middleman's multiplexer thread
// does every read and write.
//
// Wire: length-prefixed frames both ways (actors/framing.h); each request frame holds one
// ClientRequest, each response frame one ClientResponse (actors/client_protocol.h). Requests
// on one connection run concurrently and their responses are written as they complete, so
// they may come back out of order: the client matches them by request_id.
//
// Refusals. A frame length of 0 or above frame_bytes_max, or a payload that does not decode
// as a ClientRequest, is answered by one ClientResponse (request_id 0, status rejected, a
// message naming the problem) and the connection is closed once it is written; the
// listener keeps serving the other connections. A connection beyond connections_max gets
// one `busy` response and is closed. A request beyond requests_in_flight_max on its
// connection gets `busy`; a gateway that does not answer within request_timeout gets
// `timeout` (the write may or may not take effect), a failed gateway `unavailable`.
// Closing a connection that still has unread bytes makes TCP reset it, and a client may then
// lose the rejection: a well-behaved client never sends past a frame the node would refuse.
//
// TLS (docs/SECURITY.md). With config.tls set, every connection is TLS (actors/tls.h: memory
// BIOs inside the broker, nothing blocks); a connection whose TLS handshake fails (a plaintext
// client, a client certificate not signed by the client CA when one is required) is closed with
// one log line naming its address and the reason, and the listener keeps serving the others.
//
// Messages the actor handles (besides the broker's own):
//   (bounds_atom) -> uint16_t   the port the listener is bound to (learn it when the config
//                               asked for port 0)
// Stop it with an exit message (caf::anon_send_exit): the actor system waits for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "actors/client_gateway.h"
#include "actors/client_protocol.h"
#include "actors/tls.h"
#include "metrics/node_metrics.h"

namespace keyval {

struct ClientListenerConfig {
  std::string host = "127.0.0.1";  // the address to bind ("0.0.0.0": every interface)
  uint16_t port = 0;               // 0: the system picks one (ask with bounds_atom)
  size_t frame_bytes_max = client_message_bytes_max;  // request payload bound
  size_t connections_max = 1024;
  size_t requests_in_flight_max = 1024;  // per connection
  // Longer than the gateway's own deadline (its request_timeout), so that a timeout here
  // means a gateway that is stuck, not a slow request. Kept by the listener itself, like
  // the gateway's (actors/deadlines.h): no CAF timer per request.
  std::chrono::milliseconds request_timeout{10000};
  // TLS for every connection (a server context: the node's certificate and key; with a CA,
  // clients must present a certificate it signed). Null: plaintext.
  std::shared_ptr<TlsContext> tls;
  std::function<void(const std::string&)> log;  // one line per event; silent when empty
  // Connections, and every request by operation, outcome and latency (metrics/node_metrics.h),
  // counted here because the listener sees every request, those it refuses itself included;
  // null: none.
  std::shared_ptr<metrics::NodeMetrics> metrics;
};

// Binds the listener now (in the caller's thread, so a taken port is reported at once) and
// spawns the broker. Returns an invalid handle, after a log line naming the cause, when the
// port cannot be bound.
caf::actor spawn_client_listener(caf::actor_system& system, ClientListenerConfig config,
                                 client_gateway_actor gateway);

}  // namespace keyval
