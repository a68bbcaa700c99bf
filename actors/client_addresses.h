// Where each member of the cluster serves clients, as one node knows it: its own client
// address from its flags, each peer's from the raft messages that peer sends
// (schema/raft.capnp senderClientAddress, actors/raft_wire.h). The client gateway puts this
// in every answer (schema/client.capnp ClientMember), so a client given one reachable
// endpoint finds the leader and the other members.
//
// A leader hears from every member within a heartbeat; a follower hears from the leader (and
// from candidates), so its book may lack other followers' addresses: a client that reaches
// the leader learns them all. Only members of the configuration are recorded, so a sender
// with a made-up id grows nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/client_protocol.h"

namespace keyval {

class ClientAddressBook {
 public:
  ClientAddressBook() = default;
  // own_address may be empty (a node without a client listener, as in the simulator).
  ClientAddressBook(uint64_t own_id, std::string own_address, std::vector<uint64_t> members);

  // A message from `node_id` said it serves clients on `address`. True when that changed the
  // book (a new or moved address); an empty address or a non-member changes nothing.
  bool learn(uint64_t node_id, const std::string& address);

  // The configuration changed (a member added or removed): the book follows `members`, keeping
  // what it knew of those that stay (this node always stays). True when that changed the book.
  bool set_members(const std::vector<uint64_t>& members);

  const std::string& own_address() const { return own_address_; }
  // "" when unknown.
  const std::string& address_of(uint64_t node_id) const;
  // Every member in id order, with its address ("" when unknown).
  std::vector<ClientMember> members() const;

 private:
  uint64_t own_id_ = 0;
  std::string own_address_;
  std::map<uint64_t, std::string> addresses_;  // member id -> address ("" when unknown)
};

}  // namespace keyval
