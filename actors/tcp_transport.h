// The peer transport over TCP (the protocol of actors/transport.h, between processes).
// One CAF broker per node: the middleman's multiplexer thread does every read, write and
// connect, so no scheduler thread ever blocks on a socket.
//
// Links. Each peer has one outgoing connection, used only to send; frames from a peer arrive
// on the connection that peer opened to us. Each connection starts with the handshake of
// actors/peer_handshake.h: the connecting side writes its hello ("KVPEER04", its node id, the
// id it means to reach, its mode and nonce), the acceptor replies (with a cluster secret: its
// nonce and its proof), and with a secret the connecting side checks that proof and sends its
// own; only then do length-prefixed frames (framing.h) flow, and only then does the acceptor
// hand them to the raft node. Without cluster_secret a link is OPEN: any process that reaches
// the port may claim any node id (docs/SECURITY.md). A node with a secret refuses a peer
// without one, and the other way round; a wrong proof, a hello for another node id, an older
// version's hello (KVPEER01 to KVPEER03), or a handshake not complete within handshake_timeout_ms is refused with one
// log line naming the remote address and the reason (the same refusal from the same host is
// logged once per 10 s), and only that connection is closed. Each handshake step reads exactly
// its bytes (at most 57), and at most handshakes_pending_max incoming handshakes run at once.
// Connects are non-blocking (the socket is handed to the multiplexer while the TCP handshake is
// still in flight); a failed, closed or refused link is re-connected after an exponential
// backoff, reset once a handshake completes.
// TLS (tls_server/tls_client): each connection is TLS first (memory BIOs in the broker, nothing
// blocks) and the handshake above runs inside it; the dialer refuses an acceptor whose
// certificate does not name the node dialed, the acceptor a dialer whose certificate does not
// name the id its hello claims. Secret and TLS may be combined.
//
// Bounds and loss. Per peer, the frames queued plus the bytes handed to the socket but not yet
// written stay within send_queue_bytes_max. A frame that does not fit evicts the OLDEST queued
// frames (a newer AppendEntries or heartbeat carries the current term and commit index, so
// it is worth more than an older one); if the bytes already handed to the socket leave no room,
// the new frame is dropped. While a peer's link is not up the bound is down_queue_bytes_max
// (at least the newest frame); frames queued while a peer is down are sent once it is back; bytes
// handed to a socket that then fails are lost. Raft tolerates both (§5.3: a lost message is
// re-sent by the leader). A frame length of 0 or above frame_bytes_max closes that one
// connection with a log line.
//
// Messages the actor handles:
//   (transport_send_atom, uint64_t to, Frame)     queue a frame for peer `to`; never blocks
//   (raft_peer_atom, uint64_t own_id, caf::actor) the local raft node: incoming frames go to it
//                                                 as (raft_message_atom, Frame); frames that
//                                                 arrive before it is registered are dropped
//   (raft_peer_atom, uint64_t id, std::string host, uint16_t port)
//                                                 add or move a peer (e.g. once its port is known)
//   (transport_peers_atom, std::vector<uint64_t> ids, std::vector<std::string> addresses)
//                                                 the peers are exactly these ("HOST:PORT"): new
//                                                 ones dialed, moved ones redialed, the others'
//                                                 links closed and their queues dropped (the raft
//                                                 node sends it when the configuration changes)
//   (bounds_atom) -> uint16_t                     the port the listener is bound to (learn it
//                                                 when the config asked for port 0)
//   (stats_atom) -> (uint64_t frames_dropped_outgoing, uint64_t frames_dropped_incoming,
//                    uint64_t frames_delivered)
// Stop it with an exit message (caf::anon_send_exit): it is a normal actor, and the actor
// system waits for it at shutdown.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "actors/messages.h"
#include "actors/raft_wire.h"
#include "actors/tls.h"

namespace keyval {

struct TcpPeerAddress {
  // A numeric IPv4 or IPv6 address ("localhost" is taken as 127.0.0.1). Names are resolved by
  // the caller: a DNS lookup here would block the multiplexer thread and every link with it.
  std::string host;
  uint16_t port = 0;
};

struct TcpTransportConfig {
  uint64_t node_id = 0;                      // sent in the hello; must not be 0
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;                  // 0: the system picks one (ask with bounds_atom)
  std::map<uint64_t, TcpPeerAddress> peers;  // id -> address; this node's own id is ignored
  size_t frame_bytes_max = raft_message_bytes_max;    // payload bound, both directions
  size_t send_queue_bytes_max = 2 * raft_message_bytes_max;  // per peer; >= one largest frame
  // While a peer's link is not up, its queue keeps at most this many bytes of the newest
  // frames (or its one newest frame, when that is larger): a peer down for minutes would
  // otherwise hold send_queue_bytes_max of appends and snapshot chunks it will never need
  // (the leader sends again what a returning follower lacks).
  size_t down_queue_bytes_max = 4u << 20;
  uint32_t reconnect_backoff_ms_min = 50;
  uint32_t reconnect_backoff_ms_max = 5000;
  // The cluster secret (apps: --cluster-secret-file; read_cluster_secret in peer_handshake.h)
  // that every peer must prove it knows, never sent. Empty: open links.
  std::string cluster_secret;
  // Mutual TLS on every peer link (actors/tls.h; apps: --peer-cert, --peer-key, --peer-ca): the
  // acceptor's side and the dialer's side, both with this node's certificate and the CA. A peer
  // whose certificate's common name is not tls_node_name(the id it claims or was dialed as) is
  // refused. Both null: no TLS; both set or neither.
  std::shared_ptr<TlsContext> tls_server;
  std::shared_ptr<TlsContext> tls_client;
  uint32_t handshake_timeout_ms = 5000;  // a connection's handshake, either side
  size_t handshakes_pending_max = 64;    // incoming connections not yet through the handshake
  std::function<void(const std::string&)> log;  // one line per event; silent when empty
};

// Whether the transport takes `host` as is: a numeric IPv4 or IPv6 address, or "localhost".
bool is_numeric_host(const std::string& host);

// Binds the listener now (in the caller's thread, so a taken port is reported at once) and
// spawns the broker. Returns an invalid handle, after a log line naming the cause, when the
// listener cannot be bound or a peer's host is not a numeric address.
caf::actor spawn_tcp_transport(caf::actor_system& system, TcpTransportConfig config);

}  // namespace keyval
