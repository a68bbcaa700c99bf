// Goal: KvClient finds the leader, retries with its session and fails clearly and in time; the
// put/get/del/cas/status commands keep their exit codes. Method: fake nodes on 127.0.0.1 (threads
// and POSIX sockets speaking the real framing and client protocol), and the real keyval binary.
#define BOOST_TEST_MODULE kv_client_test
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "actors/framing.h"
#include "client/client_loop.h"
#include "client/kv_client.h"
#include "storage/snapshot_file.h"
#include "tests/support/print.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using keyval::testing::contains;
using keyval::testing::read_text;

using namespace keyval;
using keyval::testing::run_keyval;

namespace {

constexpr int poll_slice_ms = 20;  // how often a fake node's threads look at their stop flag

// A socket bound to 127.0.0.1:port 0; listening unless `listen_too` is false (then it refuses).
int bound_socket(bool listen_too, uint16_t* port) {
  int descriptor = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(descriptor >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::bind(descriptor, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  if (listen_too) BOOST_REQUIRE(::listen(descriptor, 16) == 0);
  socklen_t length = sizeof address;
  BOOST_REQUIRE(::getsockname(descriptor, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  *port = ntohs(address.sin_port);
  return descriptor;
}

// A port that refuses connections: bound, never listening, for as long as the object lives.
class RefusingPort {
 public:
  RefusingPort() { descriptor_ = bound_socket(false, &port_); }
  ~RefusingPort() { ::close(descriptor_); }
  Endpoint endpoint() const { return {"127.0.0.1", port_}; }

 private:
  int descriptor_ = -1;
  uint16_t port_ = 0;
};

// A fake node: answers each request with handler(request), or stays silent when it returns nullopt.
// Handlers run one at a time (under the node's mutex) and see every request in arrival order.
class FakeNode {
 public:
  using Handler = std::function<std::optional<ClientResponse>(const ClientRequest&)>;
  // How an answer's bytes go out: in one send, one byte per send (each its own TCP segment),
  // or in one send together with `stray`'s frame when it returns one (bytes past the answer).
  enum class Delivery { whole, byte_by_byte };

  explicit FakeNode(Handler handler, Delivery delivery = Delivery::whole, Handler stray = nullptr)
      : handler_(std::move(handler)), delivery_(delivery), stray_(std::move(stray)) {
    listener_ = bound_socket(true, &port_);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~FakeNode() {
    stop_ = true;
    accept_thread_.join();
    for (std::thread& thread : connection_threads_) thread.join();
    ::close(listener_);
  }
  Endpoint endpoint() const { return {"127.0.0.1", port_}; }
  std::vector<ClientRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  bool wait_readable(int descriptor) {
    while (!stop_) {
      pollfd entry{descriptor, POLLIN, 0};
      if (::poll(&entry, 1, poll_slice_ms) > 0) return true;
    }
    return false;
  }
  bool read_exact(int descriptor, uint8_t* data, size_t bytes) {
    for (size_t done = 0; done < bytes;) {
      if (!wait_readable(descriptor)) return false;
      ssize_t got = ::recv(descriptor, data + done, bytes - done, 0);
      if (got <= 0) return false;
      done += static_cast<size_t>(got);
    }
    return true;
  }
  void accept_loop() {
    while (wait_readable(listener_)) {
      int descriptor = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (descriptor >= 0) connection_threads_.emplace_back([this, descriptor] { serve(descriptor); });
    }
  }
  bool send_frame(int descriptor, const std::vector<uint8_t>& frame) {
    if (delivery_ == Delivery::whole) {
      return ::send(descriptor, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size());
    }
    int one = 1;
    ::setsockopt(descriptor, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (uint8_t byte : frame) {
      if (::send(descriptor, &byte, 1, MSG_NOSIGNAL) != 1) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    return true;
  }
  void serve(int descriptor) {
    uint8_t header[frame_header_bytes];
    while (read_exact(descriptor, header, sizeof header)) {
      std::vector<uint8_t> payload(read_frame_header(header));
      if (payload.empty() || !read_exact(descriptor, payload.data(), payload.size())) break;
      auto request = decode_client_request(payload.data(), payload.size());
      if (!request.is_ok()) break;  // Boost.Test is not thread safe: the test sees no request
      std::optional<ClientResponse> answer;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(*request);
        answer = handler_(*request);
      }
      if (!answer) continue;
      answer->request_id = request->request_id;
      std::vector<uint8_t> frame = make_frame(encode_client_response(*answer));
      std::optional<ClientResponse> stray;
      if (stray_) {
        std::lock_guard<std::mutex> lock(mutex_);
        stray = stray_(*request);
      }
      if (stray) {
        std::vector<uint8_t> more = make_frame(encode_client_response(*stray));
        frame.insert(frame.end(), more.begin(), more.end());
      }
      if (!send_frame(descriptor, frame)) break;
    }
    ::close(descriptor);
  }

  Handler handler_;
  Delivery delivery_;
  Handler stray_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::vector<std::thread> connection_threads_;  // touched by the accept thread only, until stop
  mutable std::mutex mutex_;
  std::vector<ClientRequest> requests_;
};

ClientResponse answer(ClientStatus status, uint64_t leader_hint = 0) {
  ClientResponse response;
  response.status = status;
  response.leader_hint = leader_hint;
  if (status != ClientStatus::ok) response.message = std::string("fake: ") + client_status_name(status);
  return response;
}

// A fake leader (node `node_id`) holding a real map: enough for the commands' exit codes.
FakeNode::Handler kv_leader(uint64_t node_id) {
  auto data = std::make_shared<std::map<std::string, std::string>>();
  auto index = std::make_shared<uint64_t>(0);
  return [=](const ClientRequest& request) {
    ClientResponse response = answer(ClientStatus::ok, node_id);
    auto found = data->find(request.key);
    response.found = found != data->end();
    if (response.found) response.value = found->second;
    response.index = ++*index;
    switch (request.op) {
      case ClientOp::put: (*data)[request.key] = request.value; break;
      case ClientOp::del: data->erase(request.key); break;
      case ClientOp::cas:
        response.cas_succeeded = request.expected == (response.found ? std::optional<std::string>(response.value)
                                                                      : std::nullopt);
        if (response.cas_succeeded) (*data)[request.key] = request.value;
        break;
      case ClientOp::status:
        response.node_id = node_id;
        response.role = "leader";
        response.term = 3;
        response.commit_index = response.applied_index = *index;
        break;
      case ClientOp::get: break;
      case ClientOp::member_list:  // a one-voter configuration: `status` finds its quorum
        response.configuration = {ConfigurationMember{node_id, "127.0.0.1:7201", "", false, 0}};
        break;
      case ClientOp::snapshot_begin:
      case ClientOp::snapshot_chunk:
      case ClientOp::leader_transfer:
      case ClientOp::member_add:
      case ClientOp::member_promote:
      case ClientOp::member_remove:
      case ClientOp::put_many:
      case ClientOp::del_many:
      case ClientOp::increment:
      case ClientOp::append:
      case ClientOp::range: return std::optional(answer(ClientStatus::unavailable, node_id));
    }
    return std::optional<ClientResponse>(response);
  };
}

KvClientOptions quick_options(uint64_t operation_timeout_ms = 3000, uint64_t request_timeout_ms = 200) {
  KvClientOptions options;
  options.operation_timeout_ms = operation_timeout_ms;
  options.request_timeout_ms = request_timeout_ms;
  return options;
}

// Runs the CLI with its endpoints; KEYVAL_BINARY (CTest) or the path this test was built with.
testing::Run run_cli(const std::string& arguments) {
  ::setenv("KEYVAL_BINARY", KEYVAL_BINARY_DEFAULT, 0);
  return run_keyval(arguments);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kv_client)

// The client reads an answer into its connection's buffer, most often whole in one recv():
// an answer that comes a byte at a time is still read whole, header and payload.
BOOST_AUTO_TEST_CASE(an_answer_arriving_a_byte_at_a_time_is_read_whole) {
  FakeNode leader(kv_leader(1), FakeNode::Delivery::byte_by_byte);
  KvClient client({leader.endpoint()}, quick_options(5000, 3000));
  const std::string value(300, 'v');
  BOOST_TEST_REQUIRE(client.put("key", value).is_ok());
  auto got = client.get("key");
  BOOST_TEST_REQUIRE(got.is_ok(), got.status().to_string());
  BOOST_TEST(got->found);
  BOOST_TEST(got->value == value);
  BOOST_TEST(leader.requests().size() == 2u);
}

// Bytes that come after an answer (here a stray answer to a request never made) stay in the
// connection's buffer: the next operation reads them first, sees an answer that is not its
// own, and drops the connection with what it held; its retry on a fresh connection gets the
// real answer. The stray one is never taken for an answer.
BOOST_AUTO_TEST_CASE(bytes_past_an_answer_are_read_as_the_next_answer_and_never_mistaken_for_it) {
  std::atomic<int> strays{0};
  auto stray = [&](const ClientRequest& request) -> std::optional<ClientResponse> {
    if (strays.fetch_add(1) != 0) return std::nullopt;  // after the first answer only
    ClientResponse response = answer(ClientStatus::ok, 1);
    response.request_id = request.request_id + 1000;
    response.found = true;
    response.value = "stray";
    return response;
  };
  FakeNode leader(kv_leader(1), FakeNode::Delivery::whole, stray);
  KvClient client({leader.endpoint()}, quick_options(5000, 1000));
  BOOST_TEST_REQUIRE(client.put("key", "first").is_ok());
  auto got = client.get("key");
  BOOST_TEST_REQUIRE(got.is_ok(), got.status().to_string());
  BOOST_TEST(got->value == "first");
  // The get was sent twice: on the first connection (answered by the stray bytes, refused)
  // and on a fresh one.
  auto requests = leader.requests();
  BOOST_TEST_REQUIRE(requests.size() == 3u);
  BOOST_TEST((requests[1].op == ClientOp::get && requests[2].op == ClientOp::get));
  BOOST_TEST(client.get("key")->value == "first");
}

BOOST_AUTO_TEST_CASE(follows_a_not_leader_hint_then_asks_the_leader_directly) {
  FakeNode follower([](const ClientRequest&) { return std::optional(answer(ClientStatus::not_leader, 2)); });
  FakeNode leader(kv_leader(2));
  RefusingPort third;
  KvClient client({follower.endpoint(), leader.endpoint(), third.endpoint()}, quick_options());
  auto first = client.put("a", "1");
  BOOST_REQUIRE_MESSAGE(first.is_ok(), first.status().to_string());
  BOOST_TEST(client.leader() == 2u);
  auto second = client.put("b", "2");
  BOOST_REQUIRE_MESSAGE(second.is_ok(), second.status().to_string());
  BOOST_TEST(follower.requests().size() == 1u);  // the second put went straight to node 2
  std::vector<ClientRequest> writes = leader.requests();
  BOOST_REQUIRE(writes.size() == 2u);
  BOOST_TEST(writes[0].client_id == client.client_id());
  BOOST_TEST(writes[0].client_id != 0u);
  BOOST_TEST(writes[0].sequence == 1u);
  BOOST_TEST(writes[1].sequence == 2u);
}

BOOST_AUTO_TEST_CASE(cycles_past_a_refused_connection_and_a_node_without_leader) {
  RefusingPort down;
  FakeNode candidate([](const ClientRequest&) { return std::optional(answer(ClientStatus::no_leader)); });
  FakeNode leader(kv_leader(3));
  KvClient client({down.endpoint(), candidate.endpoint(), leader.endpoint()}, quick_options());
  auto put = client.put("k", "v");
  BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().to_string());
  BOOST_TEST(candidate.requests().size() == 1u);
  auto get = client.get("k");
  BOOST_REQUIRE_MESSAGE(get.is_ok(), get.status().to_string());
  BOOST_TEST(get->found);
  BOOST_TEST(get->value == "v");
  BOOST_TEST(get->request_id != 0u);
}

BOOST_AUTO_TEST_CASE(retries_an_unknown_outcome_with_the_same_sequence) {
  // Attempt 1: no answer (the client's request timeout); attempt 2: timeout; attempt 3: ok.
  // The fake checks that every attempt carries the first one's session.
  std::optional<ClientRequest> first;
  bool same_session = true;
  int attempts = 0;
  FakeNode leader([&](const ClientRequest& request) -> std::optional<ClientResponse> {
    if (request.sequence == 2) return answer(ClientStatus::ok, 1);
    if (!first) first = request;
    same_session = same_session && request.client_id == first->client_id && request.sequence == first->sequence;
    ++attempts;
    if (attempts == 1) return std::nullopt;
    if (attempts == 2) return answer(ClientStatus::timeout, 1);
    return answer(ClientStatus::ok, 1);
  });
  KvClient client({leader.endpoint()}, quick_options(5000, 150));
  auto put = client.put("k", "v");
  BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().to_string());
  BOOST_REQUIRE(client.put("k", "w").is_ok());
  std::vector<ClientRequest> seen = leader.requests();
  BOOST_REQUIRE(seen.size() == 4u);
  BOOST_TEST(same_session);
  BOOST_TEST(seen[0].sequence == 1u);
  BOOST_TEST(seen[0].request_id != seen[1].request_id);
  BOOST_TEST(seen[3].sequence == 2u);
  BOOST_TEST(seen[3].client_id == seen[0].client_id);
}

BOOST_AUTO_TEST_CASE(names_every_node_when_none_answers_in_time) {
  RefusingPort down;
  FakeNode silent([](const ClientRequest&) { return std::optional<ClientResponse>(); });
  FakeNode candidate([](const ClientRequest&) { return std::optional(answer(ClientStatus::no_leader)); });
  KvClient client({down.endpoint(), silent.endpoint(), candidate.endpoint()}, quick_options(600, 100));
  auto start = std::chrono::steady_clock::now();
  auto put = client.put("k", "v");
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  BOOST_REQUIRE(!put.is_ok());
  BOOST_TEST(elapsed_ms.count() < 600 + 500);
  const std::string& message = put.status().message();
  BOOST_TEST(put.status().code() == Code::io_error);
  BOOST_TEST(contains(message, "within 600 ms"), message);
  // No answer named a node: each is named by its address.
  const std::string unnamed = " (node id not known yet): ";
  BOOST_TEST(contains(message, down.endpoint().str() + unnamed + "connect failed: Connection refused"), message);
  BOOST_TEST(contains(message, silent.endpoint().str() + unnamed + "no answer in time"), message);
  BOOST_TEST(contains(message, candidate.endpoint().str() + unnamed + "said no_leader"), message);
  BOOST_TEST(contains(message, "outcome unknown"), message);  // node 2 got the write and said nothing
}

BOOST_AUTO_TEST_CASE(a_refused_first_write_keeps_sequence_one_an_unknown_one_opens_a_new_session) {
  std::atomic<int> mode{0};  // 0: no_leader, 1: silent, 2: ok
  FakeNode node([&](const ClientRequest&) -> std::optional<ClientResponse> {
    if (mode == 0) return answer(ClientStatus::no_leader);
    if (mode == 1) return std::nullopt;
    return answer(ClientStatus::ok, 1);
  });
  KvClient client({node.endpoint()}, quick_options(300, 100));
  BOOST_REQUIRE(!client.put("k", "1").is_ok());  // refused every time: sequence 1 is still free
  mode = 1;
  BOOST_REQUIRE(!client.put("k", "2").is_ok());  // unknown: sequence 1 of this session may still apply
  mode = 2;
  BOOST_REQUIRE(client.put("k", "3").is_ok());
  std::vector<ClientRequest> seen = node.requests();
  BOOST_REQUIRE(seen.size() >= 3u);
  const ClientRequest& refused = seen.front();
  const ClientRequest& last = seen.back();
  BOOST_TEST(refused.sequence == 1u);
  BOOST_TEST(last.sequence == 1u);
  BOOST_TEST(last.client_id != refused.client_id);
  for (const ClientRequest& request : seen) {
    if (request.value == "2") BOOST_TEST(request.client_id == refused.client_id);  // same session, same sequence
    BOOST_TEST(request.sequence == 1u);
  }
}

BOOST_AUTO_TEST_CASE(status_all_reports_each_node_view_or_why_it_is_unreachable) {
  FakeNode leader(kv_leader(1));
  RefusingPort down;
  KvClient client({leader.endpoint(), down.endpoint()}, quick_options());
  auto views = client.status_all();
  BOOST_REQUIRE(views.size() == 2u);
  BOOST_REQUIRE_MESSAGE(views[0].view.is_ok(), views[0].view.status().to_string());
  BOOST_TEST(views[0].node_id == 1u);
  BOOST_TEST(views[0].view->role == "leader");
  BOOST_TEST(views[0].view->term == 3u);
  BOOST_TEST(views[1].node_id == 0u);  // it never answered: no id
  BOOST_TEST(views[1].endpoint.str() == down.endpoint().str());
  BOOST_TEST(!views[1].view.is_ok());
  BOOST_TEST(contains(views[1].view.status().message(), "Connection refused"), views[1].view.status().message());
}

BOOST_AUTO_TEST_CASE(endpoints_parse_or_name_what_is_wrong) {
  auto parsed = parse_endpoints("127.0.0.1:7101,[::1]:7102,db.local:7103");
  BOOST_REQUIRE_MESSAGE(parsed.is_ok(), parsed.status().to_string());
  BOOST_TEST((*parsed)[1].host == "::1");
  BOOST_TEST((*parsed)[1].str() == "[::1]:7102");
  BOOST_TEST((*parsed)[2].port == 7103);
  for (const char* bad : {"127.0.0.1", ":7101", "h:0", "h:65536", "h:x1", "a:1,,b:2", ""}) {
    auto result = parse_endpoints(bad);
    BOOST_TEST(!result.is_ok(), bad);
    BOOST_TEST(contains(result.status().message(), "malformed endpoint"), result.status().message());
  }
}

BOOST_AUTO_TEST_SUITE_END()

// --- finding the cluster from one endpoint ---------------------------------------------------

namespace {

// The cluster as real nodes describe it in every answer: node ids 1..n at these client
// addresses (filled in once the fakes listen), the leader named by id.
struct FakeCluster {
  std::vector<std::string> addresses;  // node i at addresses[i - 1]
  uint64_t leader = 0;

  ClientResponse stamp(uint64_t node_id, ClientResponse response) const {
    response.node_id = node_id;
    if (response.status != ClientStatus::no_leader) response.leader_hint = leader;
    if (response.leader_hint != 0) response.leader_client_address = addresses[response.leader_hint - 1];
    for (uint64_t id = 1; id <= addresses.size(); ++id) response.members.push_back({id, addresses[id - 1]});
    return response;
  }
};

// Node `node_id` of `cluster`: the leader's store when it leads, not_leader otherwise.
FakeNode::Handler cluster_node(const FakeCluster& cluster, uint64_t node_id) {
  auto store = kv_leader(node_id);
  return [&cluster, node_id, store](const ClientRequest& request) -> std::optional<ClientResponse> {
    if (request.op == ClientOp::status) {
      ClientResponse response = answer(ClientStatus::ok);
      response.role = cluster.leader == node_id ? "leader" : "follower";
      return cluster.stamp(node_id, response);
    }
    if (request.op == ClientOp::member_list) {  // every node a voter (`status` counts its quorum)
      ClientResponse response = answer(ClientStatus::ok);
      for (uint64_t id = 1; id <= cluster.addresses.size(); ++id) {
        response.configuration.push_back(ConfigurationMember{id, "", cluster.addresses[id - 1], false, 0});
      }
      return cluster.stamp(node_id, response);
    }
    if (cluster.leader != node_id) return cluster.stamp(node_id, answer(ClientStatus::not_leader));
    return cluster.stamp(node_id, *store(request));
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(discovery)

BOOST_AUTO_TEST_CASE(a_follower_endpoint_alone_leads_to_the_leader_it_names) {
  FakeCluster cluster;
  FakeNode one(cluster_node(cluster, 1)), two(cluster_node(cluster, 2)), three(cluster_node(cluster, 3));
  cluster.addresses = {one.endpoint().str(), two.endpoint().str(), three.endpoint().str()};
  cluster.leader = 3;
  KvClient client({one.endpoint()}, quick_options());
  auto put = client.put("k", "v");
  BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().to_string());
  BOOST_TEST(client.leader() == 3u);
  BOOST_TEST(three.requests().size() == 1u);
  BOOST_TEST(two.requests().empty());  // straight from the follower's hint to the leader
  BOOST_REQUIRE(client.known_nodes().size() == 3u);
  auto got = client.get("k");
  BOOST_REQUIRE_MESSAGE(got.is_ok(), got.status().to_string());
  BOOST_TEST(got->value == "v");
  BOOST_TEST(one.requests().size() == 1u);  // the get went straight to the leader
}

// The client sends the fingerprint of the member list it holds, and keeps the list when an
// answer leaves it out (the node's directory has that fingerprint).
BOOST_AUTO_TEST_CASE(requests_carry_the_fingerprint_of_the_member_list_the_client_holds) {
  auto base = kv_leader(1);
  auto listed = std::make_shared<bool>(false);
  auto endpoint_text = std::make_shared<std::string>();
  FakeNode leader([=](const ClientRequest& request) {
    auto response = base(request);
    response->node_id = 1;
    response->directory_version = 77;
    if (request.directory_known != 77) {  // a node sends the list unless the client holds it
      response->members = {ClientMember{1, *endpoint_text}, ClientMember{2, "127.0.0.1:1"}};
      *listed = true;
    }
    return response;
  });
  *endpoint_text = leader.endpoint().str();
  KvClient client({leader.endpoint()}, quick_options());
  for (const char* key : {"a", "b", "c"}) {
    auto put = client.put(key, "v");
    BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().to_string());
  }
  const std::vector<ClientRequest> requests = leader.requests();
  BOOST_REQUIRE(requests.size() == 3u);
  BOOST_TEST(requests[0].directory_known == 0u);
  BOOST_TEST(requests[1].directory_known == 77u);
  BOOST_TEST(requests[2].directory_known == 77u);
  BOOST_TEST(*listed);
  // Node 2 came only with the first answer's list, and is still known after two without one.
  BOOST_TEST(client.known_nodes().find_id(2).has_value());
  BOOST_TEST(client.known_nodes().is_member(2));
}

BOOST_AUTO_TEST_CASE(endpoints_in_any_order_are_named_by_their_answers) {
  FakeCluster cluster;
  FakeNode one(cluster_node(cluster, 1)), two(cluster_node(cluster, 2)), three(cluster_node(cluster, 3));
  cluster.addresses = {one.endpoint().str(), two.endpoint().str(), three.endpoint().str()};
  cluster.leader = 1;
  KvClient client({three.endpoint(), one.endpoint(), two.endpoint()}, quick_options());
  auto views = client.status_all();
  BOOST_REQUIRE(views.size() == 3u);
  for (uint64_t id = 1; id <= 3; ++id) {
    const NodeView& view = views[id - 1];
    BOOST_TEST(view.node_id == id);
    BOOST_TEST(view.endpoint.str() == cluster.addresses[id - 1]);
    BOOST_REQUIRE_MESSAGE(view.view.is_ok(), view.view.status().to_string());
    BOOST_TEST(view.view->role == (id == 1 ? "leader" : "follower"));
  }
  auto put = client.put("k", "v");
  BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().to_string());
  BOOST_TEST(client.leader() == 1u);
  auto status = client.status(2);
  BOOST_REQUIRE_MESSAGE(status.is_ok(), status.status().to_string());
  BOOST_TEST(status->node_id == 2u);
}

BOOST_AUTO_TEST_CASE(status_all_lists_every_member_one_endpoint_names) {
  FakeCluster cluster;
  FakeNode one(cluster_node(cluster, 1)), two(cluster_node(cluster, 2));
  RefusingPort down;
  cluster.addresses = {one.endpoint().str(), two.endpoint().str(), down.endpoint().str(), ""};
  cluster.leader = 2;
  KvClient client({two.endpoint()}, quick_options());
  auto views = client.status_all();
  BOOST_REQUIRE(views.size() == 4u);
  BOOST_TEST(views[0].view.is_ok());
  BOOST_TEST(views[1].view.is_ok());
  BOOST_TEST(views[2].node_id == 3u);
  BOOST_TEST(views[2].endpoint.str() == down.endpoint().str());
  BOOST_TEST(contains(views[2].view.status().message(), "Connection refused"), views[2].view.status().message());
  BOOST_TEST(views[3].node_id == 4u);
  BOOST_TEST(views[3].endpoint.host.empty());
  BOOST_TEST(contains(views[3].view.status().message(), "client address"), views[3].view.status().message());
}

BOOST_AUTO_TEST_CASE(an_error_names_the_node_that_answered_by_id_and_address) {
  FakeNode node([](const ClientRequest&) {
    ClientResponse response = answer(ClientStatus::rejected);
    response.node_id = 7;
    return std::optional(response);
  });
  KvClient client({node.endpoint()}, quick_options());
  auto put = client.put("k", "v");
  BOOST_REQUIRE(!put.is_ok());
  BOOST_TEST(contains(put.status().message(), "node 7 (" + node.endpoint().str() + ") rejected it"),
             put.status().message());
}

BOOST_AUTO_TEST_CASE(a_hint_without_an_address_names_the_node_and_moves_on) {
  FakeNode follower([](const ClientRequest&) {
    ClientResponse response = answer(ClientStatus::not_leader, 5);
    response.node_id = 4;
    return std::optional(response);
  });
  KvClient client({follower.endpoint()}, quick_options(300, 100));
  auto put = client.put("k", "v");
  BOOST_REQUIRE(!put.is_ok());
  const std::string& message = put.status().message();
  BOOST_TEST(contains(message, "node 4 (" + follower.endpoint().str() + "): said not_leader"), message);
  BOOST_TEST(contains(message, "hint node 5 (client address unknown)"), message);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(client_commands)

BOOST_AUTO_TEST_CASE(usage_errors_exit_two_and_say_what_is_wrong) {
  auto malformed = run_cli("get k --endpoints 127.0.0.1");
  BOOST_TEST(malformed.exit_code == 2, malformed.output);
  BOOST_TEST(contains(malformed.output, "malformed endpoint '127.0.0.1'"), malformed.output);
  auto port = run_cli("put k v --endpoints 127.0.0.1:7101,127.0.0.1:99999");
  BOOST_TEST(port.exit_code == 2, port.output);
  BOOST_TEST(contains(port.output, "99999"), port.output);
  auto missing = run_cli("put k");
  BOOST_TEST(missing.exit_code == 2, missing.output);
  BOOST_TEST(contains(missing.output, "expects KEY VALUE"), missing.output);
  auto cas = run_cli("cas k old");
  BOOST_TEST(cas.exit_code == 2, cas.output);
  auto flag = run_cli("get k --bogus 1");
  BOOST_TEST(flag.exit_code == 2, flag.output);
  BOOST_TEST(contains(flag.output, "unknown flag --bogus"), flag.output);
  auto bench = run_cli("bench kv --op scan");
  BOOST_TEST(bench.exit_code == 2, bench.output);
}

BOOST_AUTO_TEST_CASE(commands_exit_zero_when_done_and_one_when_absent_or_unmatched) {
  FakeNode leader(kv_leader(1));
  const std::string at = " --endpoints " + leader.endpoint().str();
  auto put = run_cli("put k v1" + at);
  BOOST_TEST(put.exit_code == 0, put.output);
  BOOST_TEST(contains(put.output, "OK"), put.output);
  auto get = run_cli("get k" + at);
  BOOST_TEST(get.exit_code == 0, get.output);
  BOOST_TEST(get.output == "v1\n");
  auto absent = run_cli("get nothing" + at);
  BOOST_TEST(absent.exit_code == 1, absent.output);
  BOOST_TEST(contains(absent.output, "absent"), absent.output);
  auto swapped = run_cli("cas k v1 v2" + at);
  BOOST_TEST(swapped.exit_code == 0, swapped.output);
  auto unmatched = run_cli("cas k v1 v3" + at);
  BOOST_TEST(unmatched.exit_code == 1, unmatched.output);
  BOOST_TEST(contains(unmatched.output, "'v2'"), unmatched.output);
  auto created = run_cli("cas fresh n --expect-absent" + at);
  BOOST_TEST(created.exit_code == 0, created.output);
  auto exists = run_cli("cas fresh n --expect-absent" + at);
  BOOST_TEST(exists.exit_code == 1, exists.output);
  auto deleted = run_cli("del k" + at);
  BOOST_TEST(deleted.exit_code == 0, deleted.output);
  BOOST_TEST(run_cli("get k" + at).exit_code == 1);
  auto status = run_cli("status" + at);
  BOOST_TEST(status.exit_code == 0, status.output);
  BOOST_TEST(contains(status.output, "node 1 " + leader.endpoint().str() + ": role leader"), status.output);
  // Endpoints in any order: each line names the node that answered there.
  FakeCluster cluster;
  FakeNode one(cluster_node(cluster, 1)), two(cluster_node(cluster, 2)), three(cluster_node(cluster, 3));
  cluster.addresses = {one.endpoint().str(), two.endpoint().str(), three.endpoint().str()};
  cluster.leader = 2;
  auto shuffled = run_cli("status --endpoints " + three.endpoint().str() + "," + one.endpoint().str());
  BOOST_TEST(shuffled.exit_code == 0, shuffled.output);
  for (uint64_t id = 1; id <= 3; ++id) {
    BOOST_TEST(contains(shuffled.output, "node " + std::to_string(id) + " " + cluster.addresses[id - 1] + ": role " +
                                             (id == 2 ? "leader" : "follower")),
               shuffled.output);
  }
  BOOST_TEST(testing::json_field(shuffled.last_line(), "nodes_answered") == "3", shuffled.output);
  BOOST_TEST(testing::json_field(status.last_line(), "nodes_answered") == "1", status.output);
  auto bench = run_cli("bench kv --clients 2 --ops 40 --op get --keys 5 --value-bytes 8" + at);
  BOOST_TEST(bench.exit_code == 0, bench.output);
  BOOST_TEST(testing::json_field(bench.last_line(), "ops") == "40", bench.output);
  BOOST_TEST(testing::json_field(bench.last_line(), "errors") == "0", bench.output);
}

BOOST_AUTO_TEST_CASE(an_unreachable_cluster_exits_three_naming_the_failure) {
  RefusingPort down;
  auto get = run_cli("get k --timeout-ms 300 --endpoints " + down.endpoint().str());
  BOOST_TEST(get.exit_code == 3, get.output);
  BOOST_TEST(contains(get.output, "Connection refused"), get.output);
  auto status = run_cli("status --timeout-ms 300 --endpoints " + down.endpoint().str());
  BOOST_TEST(status.exit_code == 3, status.output);
  BOOST_TEST(contains(status.output, "unreachable"), status.output);
}


// A value too big for a command line (the kernel's 128 KiB bound on one argument) goes in from a
// file and from stdin, and comes back byte for byte.
BOOST_AUTO_TEST_CASE(a_one_mebibyte_value_goes_in_from_a_file_and_from_stdin) {
  FakeNode leader(kv_leader(1));
  const std::string at = " --endpoints " + leader.endpoint().str();
  testing::TempDir dir;
  std::string value(1u << 20, 'x');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + (i * 7919) % 26);
  { std::ofstream(dir.file("value"), std::ios::binary) << value; }
  auto from_file = run_cli("put big --value-file " + dir.file("value") + at);
  BOOST_TEST(from_file.exit_code == 0, from_file.output);
  auto read_back = run_cli("get big" + at);
  BOOST_TEST(read_back.exit_code == 0);
  BOOST_TEST((read_back.output == value + "\n"), "get big returned " << read_back.output.size() << " bytes");
  auto from_stdin = run_cli("put big2 - " + at + " < " + dir.file("value"));
  BOOST_TEST(from_stdin.exit_code == 0, from_stdin.output);
  auto cas_from_stdin = run_cli("cas big2 - --expect-absent" + at + " < " + dir.file("value"));
  BOOST_TEST(cas_from_stdin.exit_code == 1, "big2 exists: no match");
  auto stdin_back = run_cli("get big2" + at);
  BOOST_TEST((stdin_back.output == value + "\n"), "get big2 returned " << stdin_back.output.size() << " bytes");
  auto missing = run_cli("put k --value-file " + dir.file("nothing-here") + at);
  BOOST_TEST(missing.exit_code == 2, missing.output);
  BOOST_TEST(contains(missing.output, "nothing-here"), missing.output);
  auto both = run_cli("put k v --value-file " + dir.file("value") + at);
  BOOST_TEST(both.exit_code == 2, both.output);
}

// -w json (and --json): one JSON object per result on stdout, with the fields scripts read.
BOOST_AUTO_TEST_CASE(json_output_is_one_object_per_result_with_the_expected_fields) {
  FakeNode leader(kv_leader(1));
  const std::string at = " --endpoints " + leader.endpoint().str();
  auto parse = [](const testing::Run& run) {
    nlohmann::json object = nlohmann::json::parse(run.output, nullptr, false);
    BOOST_TEST(!object.is_discarded(), "not one JSON object: " << run.output);
    return object;
  };
  auto put = parse(run_cli("put k \"v 1\" -w json" + at));
  BOOST_TEST(put["command"] == "put");
  BOOST_TEST(put["key"] == "k");
  BOOST_TEST(put["index"].is_number_unsigned());
  auto get_run = run_cli("get k --json" + at);
  BOOST_TEST(get_run.exit_code == 0, get_run.output);
  auto get = parse(get_run);
  BOOST_TEST(get["found"] == true);
  BOOST_TEST(get["value"] == "v 1");
  auto absent_run = run_cli("get nothing -w json" + at);
  BOOST_TEST(absent_run.exit_code == 1, absent_run.output);
  BOOST_TEST(nlohmann::json::parse(absent_run.output.substr(0, absent_run.output.find('\n')))["found"] == false,
             absent_run.output);
  auto unmatched_run = run_cli("cas k old new -w json" + at);
  BOOST_TEST(unmatched_run.exit_code == 1, unmatched_run.output);
  auto unmatched = parse(unmatched_run);
  BOOST_TEST(unmatched["succeeded"] == false);
  BOOST_TEST(unmatched["value"] == "v 1");
  auto swapped = parse(run_cli("cas k \"v 1\" v2 -w json" + at));
  BOOST_TEST(swapped["succeeded"] == true);
  auto deleted = parse(run_cli("del k -w json" + at));
  BOOST_TEST(deleted["command"] == "del");
  BOOST_TEST(deleted["deleted"] == true);
  auto status_run = run_cli("status -w json" + at);
  BOOST_TEST(status_run.exit_code == 0, status_run.output);
  auto status = parse(status_run);
  BOOST_TEST(status["nodes_answered"] == 1);
  BOOST_TEST(status["leader"] == 1);
  BOOST_TEST(status["views"][0]["role"] == "leader");
  auto bad = run_cli("get k -w yaml" + at);
  BOOST_TEST(bad.exit_code == 2, bad.output);
  BOOST_TEST(contains(bad.output, "-w/--write-out expects text or json"), bad.output);
}

// bench kv says what its errors were: counts by status and message, on stderr and in the JSON.
BOOST_AUTO_TEST_CASE(bench_kv_counts_its_errors_by_cause) {
  // Puts are rejected as invalid (no retry); the client's first status request is answered.
  FakeNode node([](const ClientRequest& request) {
    if (request.op == ClientOp::put && request.key.back() == '1') return std::optional(answer(ClientStatus::rejected, 1));
    return kv_leader(1)(request);
  });
  auto run = run_cli("bench kv --clients 1 --ops 6 --keys 3 --key-bytes 4 --value-bytes 8 --timeout-ms 2000 --endpoints " +
                     node.endpoint().str());
  BOOST_TEST(run.exit_code == 0, run.output);
  nlohmann::json summary = nlohmann::json::parse(run.last_line(), nullptr, false);
  BOOST_REQUIRE_MESSAGE(!summary.is_discarded(), run.output);
  BOOST_TEST(summary["errors"] == 2, run.output);
  BOOST_REQUIRE(summary["errors_by_cause"].size() == 1u);
  BOOST_TEST(summary["errors_by_cause"][0]["count"] == 2);
  BOOST_TEST(summary["errors_by_cause"][0]["message"].get<std::string>().find("rejected") != std::string::npos, run.output);
  BOOST_TEST(contains(run.output, "  2 x "), run.output);
}

// --hex: binary keys and values (NUL, 0xff) in and out.
BOOST_AUTO_TEST_CASE(hex_round_trips_a_value_with_nul_and_ff_bytes) {
  FakeNode leader(kv_leader(1));
  const std::string at = " --endpoints " + leader.endpoint().str();
  auto put = run_cli("put --hex 00ff6b 00ff41FF00" + at);
  BOOST_TEST(put.exit_code == 0, put.output);
  const std::vector<ClientRequest> requests = leader.requests();
  BOOST_REQUIRE(!requests.empty());
  BOOST_TEST((requests.back().key == std::string("\x00\xff" "k", 3)));
  BOOST_TEST((requests.back().value == std::string("\x00\xff" "A\xff\x00", 5)));
  auto get = run_cli("get --hex 00ff6b" + at);
  BOOST_TEST(get.exit_code == 0, get.output);
  BOOST_TEST(get.output == "00ff41ff00\n");
  auto json = run_cli("get --hex 00ff6b -w json" + at);
  BOOST_TEST(nlohmann::json::parse(json.output)["value"] == "00ff41ff00", json.output);
  auto odd = run_cli("get --hex abc" + at);
  BOOST_TEST(odd.exit_code == 2, odd.output);
  BOOST_TEST(contains(odd.output, "not hex"), odd.output);
}

BOOST_AUTO_TEST_SUITE_END()

// --- backups and state hashes ---------------------------------------------------------------

namespace {

constexpr uint64_t backup_index = 812, backup_term = 4, backup_keys = 2000;
constexpr size_t fake_chunk_bytes = 16 << 10;  // a fake leader's chunks: many for a small file

// A real snapshot file of backup_keys keys, as bytes.
std::vector<uint8_t> snapshot_bytes(const testing::TempDir& dir) {
  SnapshotHeader header;
  header.index = backup_index;
  header.term = backup_term;
  header.configuration = {{1, "127.0.0.1:7201"}};
  const std::string path = dir.file("source.snap");
  auto writer = SnapshotWriter::create(posix_env(), path, header, 4096);
  BOOST_REQUIRE_MESSAGE(writer.is_ok(), writer.status().to_string());
  for (uint64_t i = 0; i < backup_keys; ++i) {
    BOOST_REQUIRE((*writer)->add_kv("key-" + std::to_string(i), std::string(40, static_cast<char>('a' + i % 26))).is_ok());
  }
  BOOST_REQUIRE((*writer)->finish().is_ok());
  return testing::read_file(path);
}

// A leader (node `node_id`) that backs up `file`; `damaged`: one byte it sends is flipped.
FakeNode::Handler backup_leader(uint64_t node_id, std::vector<uint8_t> file, bool damaged = false) {
  return [=](const ClientRequest& request) {
    ClientResponse response = answer(ClientStatus::ok, node_id);
    response.node_id = node_id;
    response.snapshot_index = backup_index;
    response.snapshot_term = backup_term;
    response.total_bytes = file.size();
    if (request.op == ClientOp::snapshot_chunk) {
      if (request.snapshot_index != backup_index || request.chunk_offset > file.size()) {
        return std::optional(answer(ClientStatus::unavailable, node_id));
      }
      const size_t end = std::min<size_t>(file.size(), request.chunk_offset + fake_chunk_bytes);
      response.chunk.assign(file.begin() + request.chunk_offset, file.begin() + end);
      if (damaged && request.chunk_offset <= file.size() / 2 && file.size() / 2 < end) {
        response.chunk[file.size() / 2 - request.chunk_offset] ^= 0x20;
      }
    } else if (request.op != ClientOp::snapshot_begin) {
      return std::optional(answer(ClientStatus::rejected, node_id));
    }
    return std::optional<ClientResponse>(response);
  };
}

// A node whose status carries this hash at this applied index.
FakeNode::Handler hashed_node(uint64_t node_id, uint64_t hash, uint64_t index) {
  return [=](const ClientRequest& request) {
    ClientResponse response = answer(ClientStatus::ok, 1);
    response.node_id = node_id;
    response.role = node_id == 1 ? "leader" : "follower";
    response.applied_index = index;
    response.snapshot_index = 100;
    response.first_index = 51;
    response.last_index = index;
    if (request.op == ClientOp::member_list) {  // three voters: `status` counts its quorum
      for (uint64_t id = 1; id <= 3; ++id) response.configuration.push_back(ConfigurationMember{id, "", "", false, 0});
    }
    if (request.hash) {
      response.hashed = true;
      response.state_hash = hash;
      response.hash_index = index;
    }
    return std::optional<ClientResponse>(response);
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(backups)

BOOST_AUTO_TEST_CASE(snapshot_save_follows_the_leader_and_writes_a_verified_file) {
  testing::TempDir dir;
  const std::vector<uint8_t> file = snapshot_bytes(dir);
  BOOST_REQUIRE_GT(file.size(), 4 * fake_chunk_bytes);
  FakeNode follower([](const ClientRequest&) { return std::optional(answer(ClientStatus::not_leader, 2)); });
  FakeNode leader(backup_leader(2, file));
  KvClient client({follower.endpoint(), leader.endpoint()}, quick_options());
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  const std::string path = dir.file("backup.snap");
  auto saved = client.snapshot_save(path, [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); });
  BOOST_REQUIRE_MESSAGE(saved.is_ok(), saved.status().to_string());
  BOOST_TEST(saved->header.index == backup_index);
  BOOST_TEST(saved->header.term == backup_term);
  BOOST_TEST(saved->keys == backup_keys);
  BOOST_TEST(client.leader() == 2u);
  BOOST_TEST((testing::read_file(path) == file));
  BOOST_TEST(!posix_env().exists(path + ".part"));
  BOOST_REQUIRE(!progress.empty());
  BOOST_TEST(progress.back().first == file.size());
  BOOST_TEST(progress.back().second == file.size());
  for (size_t i = 1; i < progress.size(); ++i) BOOST_TEST(progress[i].first > progress[i - 1].first);
}

BOOST_AUTO_TEST_CASE(a_damaged_transfer_keeps_the_old_backup_and_removes_the_part_file) {
  testing::TempDir dir;
  const std::vector<uint8_t> file = snapshot_bytes(dir);
  FakeNode leader(backup_leader(1, file, /*damaged=*/true));
  KvClient client({leader.endpoint()}, quick_options());
  const std::string path = dir.file("backup.snap");
  const std::vector<uint8_t> older = {'o', 'l', 'd'};
  testing::write_file(path, older);
  auto saved = client.snapshot_save(path);
  BOOST_REQUIRE(!saved.is_ok());
  BOOST_TEST(contains(saved.status().message(), "does not verify"), saved.status().message());
  BOOST_TEST(contains(saved.status().message(), "offset"), saved.status().message());
  BOOST_TEST((testing::read_file(path) == older));
  BOOST_TEST(!posix_env().exists(path + ".part"));
}

BOOST_AUTO_TEST_CASE(a_chunk_the_node_cannot_serve_fails_naming_node_and_offset) {
  testing::TempDir dir;
  const std::vector<uint8_t> file = snapshot_bytes(dir);
  auto serve = backup_leader(1, file);
  FakeNode leader([&](const ClientRequest& request) {
    if (request.op == ClientOp::snapshot_chunk && request.chunk_offset > 0) {
      return std::optional(answer(ClientStatus::unavailable, 1));
    }
    return serve(request);
  });
  KvClient client({leader.endpoint()}, quick_options());
  const std::string path = dir.file("backup.snap");
  auto saved = client.snapshot_save(path);
  BOOST_REQUIRE(!saved.is_ok());
  BOOST_TEST(contains(saved.status().message(), "offset " + std::to_string(fake_chunk_bytes) + " from node 1"),
             saved.status().message());
  BOOST_TEST(!posix_env().exists(path));
  BOOST_TEST(!posix_env().exists(path + ".part"));
}

BOOST_AUTO_TEST_CASE(the_save_command_prints_progress_and_a_json_last_line) {
  testing::TempDir dir;
  const std::vector<uint8_t> file = snapshot_bytes(dir);
  FakeNode leader(backup_leader(1, file));
  const std::string path = dir.file("backup.snap");
  auto run = run_cli("snapshot save " + path + " --endpoints " + leader.endpoint().str());
  BOOST_TEST(run.exit_code == 0, run.output);
  BOOST_TEST(contains(run.output, "MB/s"), run.output);
  BOOST_TEST(testing::json_field(run.last_line(), "index") == std::to_string(backup_index), run.output);
  BOOST_TEST(testing::json_field(run.last_line(), "keys") == std::to_string(backup_keys), run.output);
  BOOST_TEST(testing::json_field(run.last_line(), "bytes") == std::to_string(file.size()), run.output);
}

BOOST_AUTO_TEST_CASE(status_hash_says_whether_the_replicas_agree) {
  FakeNode one(hashed_node(1, 0xabcdef, 300));
  FakeNode two(hashed_node(2, 0xabcdef, 300));
  FakeNode three(hashed_node(3, 0x123456, 300));
  const std::string agreeing = " --endpoints " + one.endpoint().str() + "," + two.endpoint().str();
  auto agree = run_cli("status --hash" + agreeing);
  BOOST_TEST(agree.exit_code == 0, agree.output);
  BOOST_TEST(contains(agree.output, "replicas agree: hash 0x0000000000abcdef at index 300"), agree.output);
  BOOST_TEST(contains(agree.output, "snapshot 100, log 51..300"), agree.output);
  BOOST_TEST(testing::json_field(agree.last_line(), "hashes") == "agree", agree.output);
  BOOST_TEST(contains(agree.last_line(), "\"state_hash\":\"0x0000000000abcdef\",\"hash_index\":300"), agree.output);

  auto differ = run_cli("status --hash" + agreeing + "," + three.endpoint().str());
  BOOST_TEST(differ.exit_code == 1, differ.output);
  BOOST_TEST(contains(differ.output, "DISAGREE at index 300"), differ.output);

  auto plain = run_cli("status" + agreeing);
  BOOST_TEST(plain.exit_code == 0, plain.output);
  BOOST_TEST(!contains(plain.output, "state_hash"), plain.output);
  BOOST_TEST(contains(plain.last_line(), "\"snapshot_index\":100,\"first_index\":51,\"last_index\":300"), plain.output);
}

BOOST_AUTO_TEST_SUITE_END()

// ClientLoop (client/client_loop.h): `keyval bench kv`'s clients, many on one thread, with
// KvClient's policy, sessions and errors.
BOOST_AUTO_TEST_SUITE(client_loop)

namespace {

// Runs `per_client` operations on each of the loop's clients (made by make(client, i)) and
// returns every outcome in the order they ended, with the client that ran it.
struct LoopOutcome {
  size_t client;
  ClientRequest request;
  Result<ClientResponse> outcome;
};
std::vector<LoopOutcome> run_loop(ClientLoop& loop, size_t per_client,
                                  const std::function<ClientRequest(size_t, size_t)>& make) {
  std::vector<size_t> begun(loop.clients(), 0);
  std::vector<LoopOutcome> outcomes;
  Status ran = loop.run(
      [&](size_t client, ClientRequest* request) {
        if (begun[client] == per_client) return false;
        *request = make(client, begun[client]++);
        return true;
      },
      [&](size_t client, const ClientRequest& request, Result<ClientResponse> outcome) {
        outcomes.push_back(LoopOutcome{client, request, std::move(outcome)});
      });
  BOOST_TEST_REQUIRE(ran.is_ok(), ran.to_string());
  return outcomes;
}

ClientRequest put_request(const std::string& key, const std::string& value) {
  ClientRequest request;
  request.op = ClientOp::put;
  request.key = key;
  request.value = value;
  return request;
}

ClientRequest get_request(const std::string& key) {
  ClientRequest request;
  request.op = ClientOp::get;
  request.key = key;
  return request;
}

}  // namespace

// Eight clients on one thread, answers arriving a byte at a time: every operation ends ok with
// its own answer, each client is its own session with consecutive sequences, and each client
// has one request in flight (the fake answers a connection's requests in order, so a second
// request in flight would be answered with the first one's id and refused).
BOOST_AUTO_TEST_CASE(many_clients_on_one_thread_each_a_session_with_one_request_in_flight) {
  FakeNode leader(kv_leader(1), FakeNode::Delivery::byte_by_byte);
  ClientLoop loop({leader.endpoint()}, quick_options(10000, 5000), 8);
  auto puts = run_loop(loop, 3, [](size_t c, size_t i) {
    return put_request("k" + std::to_string(c) + "-" + std::to_string(i), "v" + std::to_string(c * 10 + i));
  });
  BOOST_TEST_REQUIRE(puts.size() == 24u);
  std::map<size_t, std::vector<uint64_t>> sequences;  // per client, in the order its puts ended
  std::set<uint64_t> sessions;
  for (const LoopOutcome& put : puts) {
    BOOST_TEST_REQUIRE(put.outcome.is_ok(), put.outcome.status().to_string());
    BOOST_TEST((put.outcome->status == ClientStatus::ok));
    sequences[put.client].push_back(put.request.sequence);
    sessions.insert(put.request.client_id);
  }
  BOOST_TEST(sessions.size() == 8u);
  for (const auto& [client, seen] : sequences) BOOST_TEST((seen == std::vector<uint64_t>{1, 2, 3}), "client " << client);
  auto gets = run_loop(loop, 3, [](size_t c, size_t i) { return get_request("k" + std::to_string(c) + "-" + std::to_string(i)); });
  BOOST_TEST_REQUIRE(gets.size() == 24u);
  for (const LoopOutcome& get : gets) {
    BOOST_TEST_REQUIRE(get.outcome.is_ok(), get.outcome.status().to_string());
    const std::string expected = "v" + std::to_string(get.client * 10 + std::stoul(get.request.key.substr(get.request.key.find('-') + 1)));
    BOOST_TEST(get.outcome->found);
    BOOST_TEST(get.outcome->value == expected);
  }
  BOOST_TEST(leader.requests().size() == 48u);  // no retries: nothing was refused
}

BOOST_AUTO_TEST_CASE(each_client_finds_the_leader_past_a_refused_node_and_a_follower_then_stays_with_it) {
  RefusingPort down;
  FakeNode follower([](const ClientRequest&) { return std::optional(answer(ClientStatus::not_leader, 2)); });
  FakeNode leader(kv_leader(2));
  ClientLoop loop({down.endpoint(), follower.endpoint(), leader.endpoint()}, quick_options(), 4);
  auto puts = run_loop(loop, 3, [](size_t c, size_t i) { return put_request("k" + std::to_string(c * 3 + i), "v"); });
  BOOST_TEST_REQUIRE(puts.size() == 12u);
  for (const LoopOutcome& put : puts) BOOST_TEST_REQUIRE(put.outcome.is_ok(), put.outcome.status().to_string());
  BOOST_TEST(follower.requests().size() <= 4u);  // at most one per client: then the leader
  BOOST_TEST(leader.requests().size() == 12u);
}

// A bytes-past-an-answer stray is refused as KvClient refuses it; a silent attempt and a
// timeout answer are retried with the write's session and sequence.
BOOST_AUTO_TEST_CASE(a_stray_answer_is_refused_and_an_unknown_outcome_retried_with_the_same_sequence) {
  std::atomic<int> strays{0};
  auto stray = [&](const ClientRequest& request) -> std::optional<ClientResponse> {
    if (strays.fetch_add(1) != 0) return std::nullopt;
    ClientResponse response = answer(ClientStatus::ok, 1);
    response.request_id = request.request_id + 1000;
    response.found = true;
    response.value = "stray";
    return response;
  };
  int attempts = 0;
  auto handler = kv_leader(1);
  FakeNode leader(
      [&](const ClientRequest& request) -> std::optional<ClientResponse> {
        if (request.value == "retried" && ++attempts == 1) return std::nullopt;      // no answer in time
        if (request.value == "retried" && attempts == 2) return answer(ClientStatus::timeout, 1);
        return handler(request);
      },
      FakeNode::Delivery::whole, stray);
  ClientLoop loop({leader.endpoint()}, quick_options(5000, 150), 1);
  BOOST_TEST_REQUIRE(run_loop(loop, 1, [](size_t, size_t) { return put_request("key", "first"); })[0].outcome.is_ok());
  auto got = run_loop(loop, 1, [](size_t, size_t) { return get_request("key"); });
  BOOST_TEST_REQUIRE(got[0].outcome.is_ok(), got[0].outcome.status().to_string());
  BOOST_TEST(got[0].outcome->value == "first");
  auto put = run_loop(loop, 1, [](size_t, size_t) { return put_request("key", "retried"); });
  BOOST_TEST_REQUIRE(put[0].outcome.is_ok(), put[0].outcome.status().to_string());
  std::vector<ClientRequest> seen = leader.requests();
  BOOST_TEST_REQUIRE(seen.size() == 6u);  // put; get twice (the stray refused); the put three times
  BOOST_TEST((seen[1].op == ClientOp::get && seen[2].op == ClientOp::get));
  for (size_t i = 3; i < 6; ++i) {
    BOOST_TEST(seen[i].client_id == seen[0].client_id);
    BOOST_TEST(seen[i].sequence == 2u);
  }
  BOOST_TEST(seen[3].request_id != seen[4].request_id);
}

// A port whose connects are never made: a listener that never accepts, with its accept queue
// filled by connections of its own (the kernel drops a SYN to a full queue, so the next connect
// waits for retransmissions, a second and more).
class UnansweringPort {
 public:
  UnansweringPort() {
    listener_ = bound_socket(false, &port_);
    BOOST_REQUIRE(::listen(listener_, 0) == 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port_);
    for (int filler = 0; filler < 16; ++filler) {
      int descriptor = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      BOOST_REQUIRE(descriptor >= 0);
      fillers_.push_back(descriptor);
      if (::connect(descriptor, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) continue;
      pollfd entry{descriptor, POLLOUT, 0};
      if (::poll(&entry, 1, 200) == 0) return;  // this one hangs: the queue is full
    }
    BOOST_FAIL("the accept queue never filled");
  }
  ~UnansweringPort() {
    for (int descriptor : fillers_) ::close(descriptor);
    ::close(listener_);
  }
  Endpoint endpoint() const { return {"127.0.0.1", port_}; }

 private:
  int listener_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

// A connect that hangs holds only its own client: eight clients all begin at a node whose
// connects are never made, each gives up on it after its attempt's 300 ms and finds the leader,
// together (one after another would take 8 x 300 ms).
BOOST_AUTO_TEST_CASE(a_connect_that_hangs_holds_only_its_own_client) {
  UnansweringPort hanging;
  FakeNode leader(kv_leader(2));
  ClientLoop loop({hanging.endpoint(), leader.endpoint()}, quick_options(5000, 300), 8);
  auto start = std::chrono::steady_clock::now();
  auto puts = run_loop(loop, 1, [](size_t c, size_t) { return put_request("k" + std::to_string(c), "v"); });
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  BOOST_TEST_REQUIRE(puts.size() == 8u);
  for (const LoopOutcome& put : puts) BOOST_TEST_REQUIRE(put.outcome.is_ok(), put.outcome.status().to_string());
  BOOST_TEST(elapsed_ms.count() >= 300);  // every client waited for the hanging connect first
  BOOST_TEST(elapsed_ms.count() < 1200);
  BOOST_TEST(leader.requests().size() == 8u);
}

BOOST_AUTO_TEST_CASE(names_every_node_when_none_answers_in_time) {
  RefusingPort down;
  FakeNode silent([](const ClientRequest&) { return std::optional<ClientResponse>(); });
  FakeNode candidate([](const ClientRequest&) { return std::optional(answer(ClientStatus::no_leader)); });
  ClientLoop loop({down.endpoint(), silent.endpoint(), candidate.endpoint()}, quick_options(600, 100), 2);
  auto start = std::chrono::steady_clock::now();
  auto puts = run_loop(loop, 1, [](size_t c, size_t) { return put_request("k" + std::to_string(c), "v"); });
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  BOOST_TEST_REQUIRE(puts.size() == 2u);
  BOOST_TEST(elapsed_ms.count() < 600 + 500);  // both clients waited at once, each within its deadline
  const std::string unnamed = " (node id not known yet): ";
  for (const LoopOutcome& put : puts) {
    BOOST_TEST_REQUIRE(!put.outcome.is_ok());
    const std::string& message = put.outcome.status().message();
    BOOST_TEST(put.outcome.status().code() == Code::io_error);
    BOOST_TEST(contains(message, "within 600 ms"), message);
    BOOST_TEST(contains(message, down.endpoint().str() + unnamed + "connect failed: Connection refused"), message);
    BOOST_TEST(contains(message, silent.endpoint().str() + unnamed + "no answer in time"), message);
    BOOST_TEST(contains(message, candidate.endpoint().str() + unnamed + "said no_leader"), message);
    BOOST_TEST(contains(message, "outcome unknown"), message);
  }
}

BOOST_AUTO_TEST_SUITE_END()
