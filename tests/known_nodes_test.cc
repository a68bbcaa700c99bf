// Goal: a client learns the cluster from answers (client/known_nodes.h) and a node learns its
// peers' client addresses from their messages (actors/client_addresses.h). Method: answers
// and messages built by hand, no sockets.
#define BOOST_TEST_MODULE known_nodes_test
#include <boost/test/unit_test.hpp>

#include "actors/client_addresses.h"
#include "actors/raft_wire.h"
#include "client/kv_client.h"

using namespace keyval;

namespace {

Endpoint at(uint16_t port) { return Endpoint{"127.0.0.1", port}; }
std::string address(uint16_t port) { return at(port).str(); }

// An answer from node `node_id`, naming `leader` and members 1..3 at ports 7101..7103.
ClientResponse answer_from(uint64_t node_id, uint64_t leader, bool with_members = true) {
  ClientResponse response;
  response.status = ClientStatus::not_leader;
  response.node_id = node_id;
  response.leader_hint = leader;
  if (leader != 0) response.leader_client_address = address(static_cast<uint16_t>(7100 + leader));
  if (with_members) {
    for (uint64_t id = 1; id <= 3; ++id) response.members.push_back({id, address(static_cast<uint16_t>(7100 + id))});
  }
  return response;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(known_nodes)

BOOST_AUTO_TEST_CASE(given_endpoints_have_no_id_until_an_answer_names_them) {
  KnownNodes nodes({at(7103), at(7101)});
  BOOST_TEST(nodes.size() == 2u);
  BOOST_TEST(nodes.node_id(0) == 0u);
  BOOST_TEST(nodes.describe(0) == address(7103) + " (node id not known yet)");
  nodes.learn(0, answer_from(3, 0, false));
  BOOST_TEST(nodes.node_id(0) == 3u);
  BOOST_TEST(nodes.describe(0) == "node 3 (" + address(7103) + ")");
  BOOST_TEST(*nodes.find_id(3) == 0u);
  BOOST_TEST(!nodes.find_id(1));
}

BOOST_AUTO_TEST_CASE(a_hint_with_an_address_adds_the_leader_and_returns_its_slot) {
  KnownNodes nodes({at(7101)});
  auto leader = nodes.learn(0, answer_from(1, 2, false));
  BOOST_REQUIRE(leader.has_value());
  BOOST_TEST(nodes.size() == 2u);
  BOOST_TEST(nodes.endpoint(*leader).str() == address(7102));
  BOOST_TEST(nodes.node_id(*leader) == 2u);
}

BOOST_AUTO_TEST_CASE(a_hint_without_an_address_finds_no_slot) {
  KnownNodes nodes({at(7101)});
  ClientResponse response = answer_from(1, 2, false);
  response.leader_client_address.clear();
  BOOST_TEST(!nodes.learn(0, response).has_value());
  BOOST_TEST(nodes.size() == 1u);
}

BOOST_AUTO_TEST_CASE(members_name_the_given_endpoints_and_add_the_others) {
  KnownNodes nodes({at(7102), at(7103)});
  nodes.learn(0, answer_from(2, 1));
  BOOST_REQUIRE(nodes.size() == 3u);
  BOOST_TEST(nodes.node_id(0) == 2u);
  BOOST_TEST(nodes.node_id(1) == 3u);  // named by the member list before it answered itself
  BOOST_TEST(nodes.endpoint(2).str() == address(7101));
  BOOST_TEST(nodes.node_id(2) == 1u);
  const std::vector<size_t> order = nodes.by_node_id();
  BOOST_TEST((order == std::vector<size_t>{2, 0, 1}));
}

BOOST_AUTO_TEST_CASE(a_nodes_own_answer_wins_over_a_member_list) {
  KnownNodes nodes({at(7101), at(7102)});
  ClientResponse own = answer_from(5, 0, false);  // 7101 says it is node 5
  nodes.learn(0, own);
  ClientResponse listed = answer_from(2, 0);      // 7102's list says 7101 is node 1
  nodes.learn(1, listed);
  BOOST_TEST(nodes.node_id(0) == 5u);
  // A later answer from 7101 itself moves the id; the slot that held it gives it up.
  nodes.learn(0, answer_from(2, 0, false));
  BOOST_TEST(nodes.node_id(0) == 2u);
  BOOST_TEST(nodes.node_id(1) == 0u);
}

BOOST_AUTO_TEST_CASE(the_member_list_is_kept_until_an_answer_brings_another) {
  KnownNodes nodes({at(7101)});
  BOOST_TEST(nodes.directory_version() == 0u);
  ClientResponse listed = answer_from(1, 1);
  listed.directory_version = 41;
  nodes.learn(0, listed);
  BOOST_TEST(nodes.directory_version() == 41u);
  BOOST_TEST(nodes.size() == 3u);
  // The node left the list out (the client held version 41): nothing is forgotten.
  ClientResponse without = answer_from(1, 1, false);
  without.directory_version = 41;
  nodes.learn(0, without);
  BOOST_TEST(nodes.directory_version() == 41u);
  BOOST_TEST(nodes.is_member(3));
  BOOST_TEST(nodes.members_without_endpoint().empty());
  // A new list (node 3 left) replaces it, with its fingerprint.
  ClientResponse smaller = answer_from(1, 1, false);
  smaller.members = {{1, address(7101)}, {2, address(7102)}};
  smaller.directory_version = 42;
  nodes.learn(0, smaller);
  BOOST_TEST(nodes.directory_version() == 42u);
  BOOST_TEST(!nodes.is_member(3));
}

BOOST_AUTO_TEST_CASE(cycling_skips_nodes_that_left_the_configuration) {
  KnownNodes nodes({at(7101), at(7104), at(7102)});
  nodes.learn(1, answer_from(4, 0, false));  // 7104 is node 4
  nodes.learn(0, answer_from(1, 0));         // members are 1..3: node 4 left
  BOOST_TEST(!nodes.is_member(4));
  BOOST_TEST(nodes.next(0) == 2u);
  BOOST_TEST(nodes.members_without_endpoint().empty());  // node 3 was added at 7103
  BOOST_TEST(nodes.find_id(3).has_value());
}

BOOST_AUTO_TEST_CASE(members_without_an_address_are_listed_and_the_slots_are_bounded) {
  KnownNodes nodes({at(7101)});
  ClientResponse response = answer_from(1, 0, false);
  for (uint64_t id = 1; id <= endpoints_max + 10; ++id) {
    response.members.push_back({id, id == 2 ? std::string() : address(static_cast<uint16_t>(8000 + id))});
  }
  nodes.learn(0, response);
  BOOST_TEST(nodes.size() == endpoints_max);
  const std::vector<uint64_t> missing = nodes.members_without_endpoint();
  BOOST_REQUIRE(!missing.empty());
  BOOST_TEST(missing.front() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(client_address_book)

BOOST_AUTO_TEST_CASE(learns_members_addresses_and_ignores_strangers) {
  ClientAddressBook book(1, address(7101), {1, 2, 3});
  BOOST_TEST(book.address_of(1) == address(7101));
  BOOST_TEST(book.address_of(2).empty());
  BOOST_TEST(book.learn(2, address(7102)));
  BOOST_TEST(!book.learn(2, address(7102)));  // nothing new
  BOOST_TEST(!book.learn(9, address(7109)));  // not a member
  BOOST_TEST(!book.learn(3, ""));
  BOOST_TEST(book.learn(2, address(7202)));   // moved
  const std::vector<ClientMember> members = book.members();
  BOOST_REQUIRE(members.size() == 3u);
  BOOST_TEST((members[1] == ClientMember{2, address(7202)}));
  BOOST_TEST(members[2].client_address.empty());
}

BOOST_AUTO_TEST_CASE(raft_messages_carry_the_senders_client_address) {
  raft::Message message;
  message.type = raft::MessageType::append_entries;
  message.from = 2;
  message.to = 1;
  message.term = 4;
  const std::vector<uint8_t> plain = encode_raft_message(message);
  BOOST_TEST((encode_raft_message(message, "") == plain));  // no address, the same bytes
  const std::vector<uint8_t> bytes = encode_raft_message(message, address(7102));
  std::string sender;
  auto decoded = decode_raft_message(bytes.data(), bytes.size(), &sender);
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST(sender == address(7102));
  BOOST_TEST(decoded->term == 4u);
  auto without = decode_raft_message(bytes.data(), bytes.size());  // older readers ignore it
  BOOST_TEST(without.is_ok());
  const std::vector<uint8_t> long_one = encode_raft_message(message, std::string(sender_client_address_bytes_max + 1, 'h'));
  BOOST_TEST(!decode_raft_message(long_one.data(), long_one.size(), &sender).is_ok());
}

BOOST_AUTO_TEST_CASE(client_answers_carry_the_leader_address_and_members) {
  ClientResponse response = answer_from(2, 1);
  const std::vector<uint8_t> bytes = encode_client_response(response);
  auto decoded = decode_client_response(bytes.data(), bytes.size());
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST((*decoded == response));
  BOOST_TEST(decoded->leader_client_address == address(7101));
  BOOST_TEST(decoded->members.size() == 3u);
  response.members.assign(client_members_max + 1, ClientMember{1, address(7101)});
  const std::vector<uint8_t> too_many = encode_client_response(response);
  BOOST_TEST(!decode_client_response(too_many.data(), too_many.size()).is_ok());
}

BOOST_AUTO_TEST_SUITE_END()
