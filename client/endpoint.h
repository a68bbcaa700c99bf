// A node's client address as a client names it ("HOST:PORT", "[IPV6]:PORT"), and the parsing
// of --endpoints lists, shared by the client library and the commands.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "storage/status.h"

namespace keyval {

struct Endpoint {
  std::string host;  // a name or a numeric address ("127.0.0.1", "::1")
  uint16_t port = 0;

  std::string str() const;  // "host:port" ("[::1]:7101" for IPv6)
};

constexpr size_t endpoints_max = 64;  // bound on a cluster's endpoint list

// "HOST:PORT" or "[IPV6]:PORT"; invalid_argument naming what is wrong.
Result<Endpoint> parse_endpoint(const std::string& text);
// A comma-separated list of endpoints in any order, at least one, at most endpoints_max.
Result<std::vector<Endpoint>> parse_endpoints(const std::string& text);

}  // namespace keyval
