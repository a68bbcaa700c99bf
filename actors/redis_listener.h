// The Redis gateway's listener (`keyval node --redis-listen HOST:PORT`, docs/REDIS.md): serves
// the Redis protocol (RESP2 and RESP3) so that redis-cli, redis-benchmark and every language's
// Redis client can use a KeyVal cluster. One CAF broker: the middleman's multiplexer thread
// does every read and write, like the native client listener (actors/client_listener.h).
//
// Each connection's bytes go through a RESP parser (actors/resp.h); each command becomes a
// reply or a step of client requests (actors/redis_commands.h). Replies are written in the
// order the commands came, as Redis clients expect, while the commands of a pipeline run
// concurrently: a pipeline's writes reach the raft node together and share its batches.
//
// Where requests go. Redis clients do not follow redirects, so the gateway does: requests go
// to this node's client gateway (actor messages, no socket) while this node leads or no leader
// is known; once an answer names another leader, requests go to that node's client port over
// one native-protocol TCP connection (actors/client_protocol.h), multiplexed by request id.
// Each request is retried by the policy every KeyVal client runs (client/operation_policy.h):
// a hint is followed at once, other failures back off (10 ms doubling to 200 ms), until the
// command's deadline; then the client gets the last answer's error ("TRYAGAIN ..." when no
// leader was found). A write whose outcome is unknown (timeout, unavailable, busy, the
// leader's connection closed under it) is never sent again, since Redis commands carry no
// session: the client gets an error saying it may or may not have taken effect, as with the
// native API.
//
// Refusals. A malformed command stream (bad RESP, an argument over RespLimits::bulk_bytes_max,
// more than arguments_max arguments) gets one "ERR Protocol error: ..." reply and the
// connection is closed; the others are served on. A connection beyond connections_max gets
// "ERR max number of clients reached" and is closed; a command beyond commands_in_flight_max
// on its connection gets "ERR busy ..." and is not run.
//
// Limits of this version: no TLS on the Redis port or the forwarding connection (the node
// refuses --redis-listen together with --client-cert), one database (SELECT 0), no TTLs, no
// transactions or pub/sub (docs/REDIS.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "actors/client_gateway.h"
#include "actors/resp.h"

namespace keyval {

struct RedisListenerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the system picks one (ask with bounds_atom)
  uint64_t node_id = 0;
  std::string password;  // AUTH; empty: none required
  size_t connections_max = 1024;
  // Commands of one connection waiting for their replies; a command past it is answered
  // "ERR busy ..." at once (back-pressure on a client that pipelines without reading).
  size_t commands_in_flight_max = 4096;
  // From a command's arrival to its reply, retries included.
  std::chrono::milliseconds command_timeout{5000};
  RespLimits limits;
  std::function<void(const std::string&)> log;  // one line per event; silent when empty
};

// Binds now (in the caller's thread: a taken port is reported at once, in the log line) and
// spawns the broker; an invalid handle when the port cannot be bound.
// Messages: (bounds_atom) -> uint16_t, the bound port. Stop it with an exit message.
caf::actor spawn_redis_listener(caf::actor_system& system, RedisListenerConfig config, client_gateway_actor gateway);

}  // namespace keyval
