// Endpoint (see endpoint.h).
#include "client/endpoint.h"

#include <algorithm>

namespace keyval {

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

}  // namespace keyval
