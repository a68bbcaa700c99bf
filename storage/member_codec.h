// A configuration's members as Cap'n Proto lists (schema/storage.capnp Member), shared by the
// storage formats (snapshot metadata, configuration entries: storage/codec.cc) and the raft
// wire (InstallSnapshot's configuration: actors/raft_wire.cc). Members written before
// clientAddress and learner existed read them as "" and false: a voter.
#pragma once

#include <vector>

#include "schema/storage.capnp.h"
#include "storage/capnp_message.h"
#include "storage/types.h"

namespace keyval {

// Words a list of `members` takes in a message (its list tag, the structs, their two texts):
// the first-segment estimate of a message that holds it (capnp_message.h encode_message).
inline size_t members_words(const std::vector<Member>& members) {
  size_t words = 1;
  for (const Member& member : members) {
    words += struct_words<schema::Member>() + (member.address.size() + 8) / 8 + (member.client_address.size() + 8) / 8;
  }
  return words;
}

inline void set_members(capnp::List<schema::Member>::Builder out, const std::vector<Member>& members) {
  for (size_t i = 0; i < members.size(); ++i) {
    auto member = out[static_cast<unsigned>(i)];
    member.setId(members[i].id);
    member.setAddress(members[i].address);
    member.setClientAddress(members[i].client_address);
    member.setLearner(members[i].learner);
  }
}

// Bounded by the message's size: each member is at least a struct.
inline std::vector<Member> get_members(capnp::List<schema::Member>::Reader in) {
  std::vector<Member> members;
  members.reserve(in.size());
  for (auto member : in) {
    members.push_back(Member{member.getId(), member.getAddress().cStr(), member.getClientAddress().cStr(),
                             member.getLearner()});
  }
  return members;
}

}  // namespace keyval
