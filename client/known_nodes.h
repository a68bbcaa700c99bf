// KnownNodes: the nodes a KvClient knows of, and what it learned about them from answers.
//
// The client is given endpoints (addresses), in any order: none is taken for a node id. Every
// answer names the node that gave it (node_id), the leader it follows (leader_hint) with that
// leader's client address, and the members of the configuration with theirs
// (actors/client_protocol.h). From these the client learns which node each endpoint is,
// reaches the leader at an address it was not given, and keeps a member list, so one
// reachable endpoint is enough.
//
// Each node is a slot: the given endpoints first (slots 0..n-1, in the order given), then the
// addresses answers named, up to endpoints_max in all. Slots are never removed, so a slot
// number stays valid for a client's sockets. A node's own answer (node_id) is believed over a
// member list: an endpoint that answered as node 2 stays node 2 until it answers otherwise.
// A node that left the configuration (known id, not in the latest member list) is skipped
// when cycling, but still asked when it is the only one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "client/endpoint.h"

namespace keyval {

class KnownNodes {
 public:
  explicit KnownNodes(const std::vector<Endpoint>& endpoints);

  size_t size() const { return nodes_.size(); }
  const Endpoint& endpoint(size_t slot) const;
  uint64_t node_id(size_t slot) const;  // 0: not learned yet
  std::optional<size_t> find_id(uint64_t node_id) const;
  std::optional<size_t> find_endpoint(const Endpoint& endpoint) const;

  // What an answer from `slot` says about the cluster (see the top of this file). Returns the
  // slot of the leader it names, when the client knows where that leader serves clients.
  std::optional<size_t> learn(size_t slot, const ClientResponse& response);
  // An ok answer to a read or a write comes from the leader it names (leader_hint): names the
  // slot so when the answer did not say who answered (an older node); a node's own word wins.
  void assume(size_t slot, uint64_t node_id);
  // Adds `endpoint` (not learned from an answer: asked for by the caller) unless known, up to
  // endpoints_max slots; its slot, or nullopt when full.
  std::optional<size_t> add(const Endpoint& endpoint);

  // The slot to try after `slot` when cycling (wraps around; skips nodes no longer members).
  size_t next(size_t slot) const;
  // "node 2 (127.0.0.1:7102)", or "127.0.0.1:7102 (node id not known yet)".
  std::string describe(size_t slot) const;
  // Slots in node-id order, those whose id is not known after them (in slot order).
  std::vector<size_t> by_node_id() const;
  // Members the latest member list named without a client address the client knows.
  std::vector<uint64_t> members_without_endpoint() const;
  bool is_member(uint64_t node_id) const;  // true while no member list was heard
  // The fingerprint of the latest member list heard (ClientResponse::directory_version; 0:
  // none, or from a node too old to send one): requests carry it, and a node whose directory
  // has it leaves the list out of its answer.
  uint64_t directory_version() const { return directory_version_; }

 private:
  struct Node {
    Endpoint endpoint;
    uint64_t node_id = 0;    // 0: not known
    bool confirmed = false;  // node_id came from the node's own answer
  };
  // A member list or a leader hint said node_id serves clients on `address`.
  void note(uint64_t node_id, const std::string& address);
  // Slot `slot` is node_id: by its own answer (confirmed) or by a member list.
  void name(size_t slot, uint64_t node_id, bool confirmed);
  std::optional<size_t> add(const Endpoint& endpoint, uint64_t node_id);

  std::vector<Node> nodes_;
  std::vector<uint64_t> members_;  // the latest member list's ids; empty: none heard yet
  uint64_t directory_version_ = 0;
};

}  // namespace keyval
