// ClientAddressBook (see client_addresses.h).
#include "actors/client_addresses.h"

namespace keyval {

ClientAddressBook::ClientAddressBook(uint64_t own_id, std::string own_address, std::vector<uint64_t> members)
    : own_id_(own_id), own_address_(std::move(own_address)) {
  for (uint64_t member : members) addresses_[member];
  addresses_[own_id] = own_address_;
}

bool ClientAddressBook::learn(uint64_t node_id, const std::string& address) {
  if (address.empty() || address.size() > client_address_bytes_max) return false;
  auto found = addresses_.find(node_id);
  if (found == addresses_.end() || found->second == address) return false;
  found->second = address;
  return true;
}

bool ClientAddressBook::set_members(const std::vector<uint64_t>& members) {
  std::map<uint64_t, std::string> next;
  for (uint64_t member : members) {
    auto known = addresses_.find(member);
    next[member] = known == addresses_.end() ? std::string() : known->second;
  }
  next[own_id_] = own_address_;
  if (next == addresses_) return false;
  addresses_ = std::move(next);
  return true;
}

const std::string& ClientAddressBook::address_of(uint64_t node_id) const {
  static const std::string unknown;
  auto found = addresses_.find(node_id);
  return found == addresses_.end() ? unknown : found->second;
}

std::vector<ClientMember> ClientAddressBook::members() const {
  std::vector<ClientMember> members;
  members.reserve(addresses_.size());
  for (const auto& [id, address] : addresses_) members.push_back(ClientMember{id, address});
  return members;
}

}  // namespace keyval
