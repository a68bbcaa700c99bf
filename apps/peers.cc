// Parsing --peers (see peers.h).
#include "apps/peers.h"

#include <sstream>

#include "actors/tcp_transport.h"
#include "apps/cli.h"

namespace keyval {

Result<Endpoint> parse_listen(const std::string& flag, const std::string& text) {
  auto endpoint = parse_endpoint(text);
  if (!endpoint.is_ok()) return Status::invalid_argument("--" + flag + ": " + endpoint.status().message());
  if (!is_numeric_host(endpoint->host)) {
    return Status::invalid_argument("--" + flag + ": " + text + ": the host must be a numeric address");
  }
  return endpoint;
}

Result<std::map<uint64_t, Endpoint>> parse_peers(const std::string& text) {
  std::map<uint64_t, Endpoint> peers;
  std::istringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    auto equals = item.find('=');
    if (equals == std::string::npos) return Status::invalid_argument("--peers: expected ID=HOST:PORT, got '" + item + "'");
    auto id = cli::parse_u64(item.substr(0, equals), "--peers id");
    if (!id.is_ok() || *id == 0) return Status::invalid_argument("--peers: '" + item + "': the id must be a number above 0");
    KV_ASSIGN_OR_RETURN(Endpoint endpoint, parse_listen("peers", item.substr(equals + 1)));
    if (!peers.emplace(*id, endpoint).second) {
      return Status::invalid_argument("--peers: node " + std::to_string(*id) + " is listed twice");
    }
  }
  if (peers.empty()) return Status::invalid_argument("--peers: no peers given");
  if (peers.size() > endpoints_max) return Status::invalid_argument("--peers: more than " + std::to_string(endpoints_max));
  return peers;
}

std::vector<Member> members_of(const std::map<uint64_t, Endpoint>& peers) {
  std::vector<Member> members;
  for (const auto& [id, endpoint] : peers) members.push_back(Member{id, endpoint.str()});
  return members;
}

}  // namespace keyval
