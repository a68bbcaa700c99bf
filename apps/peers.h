// The cluster's members as an operator lists them: --peers 1=HOST:PORT,2=HOST:PORT,... (peer
// addresses, numeric hosts), shared by `keyval node` and `keyval snapshot restore` so both read
// a list the same way and record the same configuration (Member{id, "host:port"}).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "client/kv_client.h"
#include "storage/status.h"
#include "storage/types.h"

namespace keyval {

// HOST:PORT with a numeric host (a listening address); invalid_argument naming --flag.
Result<Endpoint> parse_listen(const std::string& flag, const std::string& text);

// "1=HOST:PORT,2=HOST:PORT,...": ids above 0, each once, at most endpoints_max;
// invalid_argument naming --peers and the item.
Result<std::map<uint64_t, Endpoint>> parse_peers(const std::string& text);

// The configuration a snapshot records: one Member per peer, in id order.
std::vector<Member> members_of(const std::map<uint64_t, Endpoint>& peers);

}  // namespace keyval
