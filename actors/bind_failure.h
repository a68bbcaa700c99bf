// Why a listener could not bind, in words an operator recognises. CAF's doorman error says only
// "tcp socket creation failed"; binding the same address again by hand gets errno, so a taken
// port reads "address already in use" (every listener of a node: peers, clients, Redis, metrics).
#pragma once

#include <cstdint>
#include <string>

namespace keyval {

// The cause of a failed bind of host:port (IPv4 or IPv6 literal; SO_REUSEADDR as the listeners
// bind): "address already in use", another errno text, or `caf_error` when the bind by hand
// succeeds or cannot be tried (a host name).
std::string bind_failure(const std::string& host, uint16_t port, const std::string& caf_error);

}  // namespace keyval
