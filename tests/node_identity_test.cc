// The data directory's IDENTITY: written once, durably, checked on every start.
#define BOOST_TEST_MODULE node_identity_test
#include <boost/test/unit_test.hpp>
#include <fstream>

#include "storage/node_identity.h"
#include "tests/support/temp_dir.h"

using keyval::testing::contains;
using keyval::testing::read_text;

using keyval::testing::TempDir;

namespace keyval {
namespace {

NodeIdentity identity(uint64_t node_id, std::string cluster = "keyval", std::vector<uint64_t> voters = {1, 2, 3}) {
  NodeIdentity id;
  id.cluster = std::move(cluster);
  id.node_id = node_id;
  id.voters = std::move(voters);
  return id;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_new_directory_is_claimed_and_then_recognised) {
  TempDir dir;
  const std::string data = dir.file("node1");
  BOOST_TEST_REQUIRE(claim_data_directory(posix_env(), data, identity(1)).is_ok());
  auto read = read_identity(posix_env(), data);
  BOOST_TEST_REQUIRE(read.is_ok(), read.status().to_string());
  BOOST_TEST(read->node_id == 1u);
  BOOST_TEST(read->cluster == "keyval");
  BOOST_TEST((read->voters == std::vector<uint64_t>{1, 2, 3}));
  BOOST_TEST(!posix_env().exists(data + "/IDENTITY.tmp"));
  BOOST_TEST(claim_data_directory(posix_env(), data, identity(1)).is_ok());  // the same node again
}

BOOST_AUTO_TEST_CASE(another_node_or_cluster_is_refused_naming_both) {
  TempDir dir;
  const std::string data = dir.file("d");
  BOOST_TEST_REQUIRE(claim_data_directory(posix_env(), data, identity(2)).is_ok());
  Status other_node = claim_data_directory(posix_env(), data, identity(1));
  BOOST_TEST((other_node.code() == Code::invalid_argument));
  BOOST_TEST(contains(other_node.message(), "belongs to node 2 of cluster keyval (voters 1,2,3), not to node 1"),
             other_node.message());
  BOOST_TEST(!claim_data_directory(posix_env(), data, identity(2, "prod")).is_ok());
  // The members change over time and live in the log: other voters are the same node.
  BOOST_TEST(claim_data_directory(posix_env(), data, identity(2, "keyval", {1, 2, 3, 4})).is_ok());
}

BOOST_AUTO_TEST_CASE(a_created_directory_names_how_and_no_voters) {
  TempDir dir;
  const std::string data = dir.file("d");
  NodeIdentity joined;
  joined.cluster = "keyval";
  joined.node_id = 4;
  joined.created = "join";
  BOOST_TEST_REQUIRE(claim_data_directory(posix_env(), data, joined).is_ok());
  auto read = read_identity(posix_env(), data);
  BOOST_TEST_REQUIRE(read.is_ok(), read.status().to_string());
  BOOST_TEST(read->created == "join");
  BOOST_TEST(read->voters.empty());
  BOOST_TEST(read->describe() == "node 4 of cluster keyval");
  auto checked = check_data_directory(posix_env(), data, "keyval", 4);
  BOOST_TEST_REQUIRE(checked.is_ok(), checked.status().to_string());
  BOOST_TEST(checked->created == "join");
  auto other = check_data_directory(posix_env(), data, "keyval", 5);
  BOOST_TEST(contains(other.status().message(), "belongs to node 4 of cluster keyval, not to node 5"),
             other.status().message());
}

BOOST_AUTO_TEST_CASE(a_missing_directory_or_identity_is_not_found_naming_the_path) {
  TempDir dir;
  auto missing = check_data_directory(posix_env(), dir.file("absent"), "keyval", 1);
  BOOST_TEST((missing.status().code() == Code::not_found));
  BOOST_TEST(contains(missing.status().message(), dir.file("absent") + " does not exist"), missing.status().message());
  BOOST_TEST_REQUIRE(posix_env().create_dir(dir.file("empty")).is_ok());
  auto empty = check_data_directory(posix_env(), dir.file("empty"), "keyval", 1);
  BOOST_TEST((empty.status().code() == Code::not_found));
  BOOST_TEST(contains(empty.status().message(), "holds no IDENTITY"), empty.status().message());
}

BOOST_AUTO_TEST_CASE(data_without_identity_is_not_guessed_at) {
  TempDir dir;
  const std::string data = dir.file("d");
  BOOST_TEST_REQUIRE(posix_env().create_dir(data + "/lmdb").is_ok());
  Status status = claim_data_directory(posix_env(), data, identity(1));
  BOOST_TEST(contains(status.message(), "holds data (lmdb/) but no IDENTITY"), status.message());
  BOOST_TEST(!posix_env().exists(data + "/IDENTITY"));
}

BOOST_AUTO_TEST_CASE(a_damaged_identity_is_corruption_naming_the_line) {
  TempDir dir;
  const std::string data = dir.file("d");
  BOOST_TEST_REQUIRE(claim_data_directory(posix_env(), data, identity(3)).is_ok());
  std::ofstream(data + "/IDENTITY", std::ios::trunc) << "keyval-identity 1\ncluster keyval\nnode three\nvoters 1,2,3\n";
  auto read = read_identity(posix_env(), data);
  BOOST_TEST_REQUIRE(!read.is_ok());
  BOOST_TEST((read.status().code() == Code::corruption));
  BOOST_TEST(contains(read.status().message(), "IDENTITY line 3: node id is not a number: 'three'"), read.status().message());
  BOOST_TEST(!claim_data_directory(posix_env(), data, identity(3)).is_ok());  // never overwritten
  std::ofstream(data + "/IDENTITY", std::ios::trunc) << "something else\n";
  BOOST_TEST(contains(read_identity(posix_env(), data).status().message(), "line 1: expected 'keyval-identity 1'"));
  std::ofstream(data + "/IDENTITY", std::ios::trunc) << "keyval-identity 1\ncluster keyval\nnode 4\nvoters 1,2,3\n";
  BOOST_TEST(contains(read_identity(posix_env(), data).status().message(), "node 4 is not among the voters 1,2,3"));
}

BOOST_AUTO_TEST_CASE(malformed_identities_are_refused_before_anything_is_written) {
  TempDir dir;
  BOOST_TEST(!check_identity(identity(0)).is_ok());
  BOOST_TEST(!check_identity(identity(1, "bad name")).is_ok());
  BOOST_TEST(!check_identity(identity(1, "")).is_ok());
  BOOST_TEST(!check_identity(identity(1, "keyval", {2, 1, 3})).is_ok());
  BOOST_TEST(!check_identity(identity(1, "keyval", {1, 1, 3})).is_ok());
  BOOST_TEST(!check_identity(identity(5)).is_ok());
  BOOST_TEST(!claim_data_directory(posix_env(), dir.file("d"), identity(5)).is_ok());
  BOOST_TEST(!posix_env().exists(dir.file("d") + "/IDENTITY"));
}

}  // namespace keyval
