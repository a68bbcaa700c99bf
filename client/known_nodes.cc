// KnownNodes (see known_nodes.h).
#include "client/known_nodes.h"

#include <algorithm>

#include "client/endpoint.h"

namespace keyval {

KnownNodes::KnownNodes(const std::vector<Endpoint>& endpoints) {
  KV_ASSERT(!endpoints.empty() && endpoints.size() <= endpoints_max);
  for (const Endpoint& endpoint : endpoints) {
    if (!find_endpoint(endpoint)) nodes_.push_back(Node{endpoint, 0, false});
  }
}

const Endpoint& KnownNodes::endpoint(size_t slot) const {
  KV_ASSERT(slot < nodes_.size());
  return nodes_[slot].endpoint;
}

uint64_t KnownNodes::node_id(size_t slot) const {
  KV_ASSERT(slot < nodes_.size());
  return nodes_[slot].node_id;
}

std::optional<size_t> KnownNodes::find_id(uint64_t node_id) const {
  if (node_id == 0) return std::nullopt;
  std::optional<size_t> found;
  for (size_t slot = 0; slot < nodes_.size(); ++slot) {
    if (nodes_[slot].node_id != node_id) continue;
    if (nodes_[slot].confirmed) return slot;
    if (!found) found = slot;
  }
  return found;
}

std::optional<size_t> KnownNodes::find_endpoint(const Endpoint& endpoint) const {
  for (size_t slot = 0; slot < nodes_.size(); ++slot) {
    if (nodes_[slot].endpoint.host == endpoint.host && nodes_[slot].endpoint.port == endpoint.port) return slot;
  }
  return std::nullopt;
}

std::optional<size_t> KnownNodes::learn(size_t slot, const ClientResponse& response) {
  KV_ASSERT(slot < nodes_.size());
  if (response.node_id != 0) name(slot, response.node_id, true);
  if (!response.members.empty()) {
    directory_version_ = response.directory_version;
    members_.clear();
    for (const ClientMember& member : response.members) {
      if (member.node_id == 0) continue;
      members_.push_back(member.node_id);
      note(member.node_id, member.client_address);
    }
  }
  if (response.leader_hint == 0) return std::nullopt;
  note(response.leader_hint, response.leader_client_address);
  return find_id(response.leader_hint);
}

std::optional<size_t> KnownNodes::add(const Endpoint& endpoint) { return add(endpoint, 0); }

void KnownNodes::assume(size_t slot, uint64_t node_id) {
  KV_ASSERT(slot < nodes_.size());
  if (node_id != 0 && nodes_[slot].node_id == 0) name(slot, node_id, false);
}

void KnownNodes::note(uint64_t node_id, const std::string& address) {
  if (node_id == 0 || address.empty()) return;
  auto endpoint = parse_endpoint(address);
  if (!endpoint.is_ok()) return;  // a node's misconfigured address: nothing to reach
  if (auto slot = find_endpoint(*endpoint)) {
    if (!nodes_[*slot].confirmed) name(*slot, node_id, false);
    return;
  }
  // A node known under another address (an endpoint given as a name) keeps it.
  if (!find_id(node_id)) add(*endpoint, node_id);
}

void KnownNodes::name(size_t slot, uint64_t node_id, bool confirmed) {
  for (size_t other = 0; other < nodes_.size(); ++other) {
    if (other == slot || nodes_[other].node_id != node_id) continue;
    if (!confirmed && nodes_[other].confirmed) return;  // that node's own answer wins
    nodes_[other].node_id = 0;  // one node, one slot: the latest word wins
    nodes_[other].confirmed = false;
  }
  Node& node = nodes_[slot];
  if (confirmed) {
    node.node_id = node_id;
    node.confirmed = true;
  } else if (!node.confirmed) {
    node.node_id = node_id;
  }
}

std::optional<size_t> KnownNodes::add(const Endpoint& endpoint, uint64_t node_id) {
  if (auto slot = find_endpoint(endpoint)) return slot;
  if (nodes_.size() >= endpoints_max) return std::nullopt;
  nodes_.push_back(Node{endpoint, node_id, false});
  return nodes_.size() - 1;
}

bool KnownNodes::is_member(uint64_t node_id) const {
  return members_.empty() || std::find(members_.begin(), members_.end(), node_id) != members_.end();
}

size_t KnownNodes::next(size_t slot) const {
  for (size_t step = 1; step <= nodes_.size(); ++step) {
    size_t candidate = (slot + step) % nodes_.size();
    if (nodes_[candidate].node_id == 0 || is_member(nodes_[candidate].node_id)) return candidate;
  }
  return (slot + 1) % nodes_.size();
}

std::string KnownNodes::describe(size_t slot) const {
  const Node& node = nodes_.at(slot);
  if (node.node_id == 0) return node.endpoint.str() + " (node id not known yet)";
  return "node " + std::to_string(node.node_id) + " (" + node.endpoint.str() + ")";
}

std::vector<size_t> KnownNodes::by_node_id() const {
  std::vector<size_t> slots(nodes_.size());
  for (size_t slot = 0; slot < slots.size(); ++slot) slots[slot] = slot;
  std::stable_sort(slots.begin(), slots.end(), [this](size_t a, size_t b) {
    uint64_t id_a = nodes_[a].node_id, id_b = nodes_[b].node_id;
    if ((id_a == 0) != (id_b == 0)) return id_b == 0;
    return id_a < id_b;
  });
  return slots;
}

std::vector<uint64_t> KnownNodes::members_without_endpoint() const {
  std::vector<uint64_t> missing;
  for (uint64_t member : members_) {
    if (!find_id(member)) missing.push_back(member);
  }
  std::sort(missing.begin(), missing.end());
  return missing;
}

}  // namespace keyval
