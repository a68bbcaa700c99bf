// ClientLoop: many KeyVal clients on one thread, for load generation (`keyval bench kv`).
//
// Each client is what a KvClient is (client/kv_client.h): a session of its own, one request in
// flight, the nodes it knows and learns (client/known_nodes.h), and the policy every KeyVal
// client shares (client/operation_policy.h: leader hints followed at once, backoffs, a write
// retried with its sequence until the operation's deadline), with KvClient's error messages.
// What differs is the waiting: a KvClient blocks its thread in poll() for each answer, so C
// clients are C threads and every answer is a thread woken. A loop waits on all of its clients'
// sockets at once with epoll: an answer costs a recv, the next request a send, and the thread
// sleeps once for all the answers that arrive together. On a machine with few cores that is CPU
// the nodes under test get back.
//
// Each client holds one connection, to the node its operation goes to (reopened when closed or
// moved). Plaintext only: TLS clients are KvClients (`keyval bench kv` runs those on threads).
// Connects do not block the loop either (a node whose host does not answer holds only the
// clients that go to it, each until its attempt's timeout); a host name is resolved in line
// (getaddrinfo: give numeric hosts, as for KvClient).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "client/endpoint.h"
#include "client/known_nodes.h"
#include "client/kv_client.h"
#include "client/kv_socket.h"
#include "client/operation_policy.h"
#include "storage/status.h"

namespace keyval {

class ClientLoop {
 public:
  // Fills client `client`'s next request (op, key, value, ...; the loop sets the session and
  // request ids), or returns false when that client has none left.
  using NextRequest = std::function<bool(size_t client, ClientRequest* request)>;
  // Client `client`'s operation ended: its ok answer, or why it failed (invalid_argument when
  // rejected, io_error when not completed in time), worded as KvClient words it.
  using Finished = std::function<void(size_t client, const ClientRequest& request, Result<ClientResponse> outcome)>;

  // `clients` sessions (random ids), request_timeout_ms per attempt and operation_timeout_ms per
  // operation as in KvClientOptions; options.tls must be null.
  ClientLoop(std::vector<Endpoint> endpoints, KvClientOptions options, size_t clients);
  ~ClientLoop();
  ClientLoop(const ClientLoop&) = delete;
  ClientLoop& operator=(const ClientLoop&) = delete;

  // Runs operations until no client has one left. Connections stay open for the next run().
  // An error only when the loop itself cannot wait (epoll failed).
  Status run(const NextRequest& next, const Finished& finished);

  size_t clients() const { return clients_.size(); }

 private:
  enum class Phase { idle, backoff, connecting, sending, awaiting, done };
  struct Client {
    explicit Client(const std::vector<Endpoint>& endpoints, uint64_t client_id)
        : nodes(endpoints), session(client_id) {}
    KnownNodes nodes;
    ClientSession session;
    std::optional<size_t> leader_slot;  // the slot of the last node that answered ok
    size_t next_slot = 0;               // where cycling resumes
    int socket = -1;                    // connected to socket_slot, or -1
    size_t socket_slot = 0;
    bool socket_answered = false;       // an answer came on this connection (it was working)
    ReadBuffer in;
    std::vector<uint8_t> out;  // the request's frame
    size_t out_done = 0;       // bytes of it sent
    bool want_write = false;   // epoll also waits for room to send (or for the connect)
    // The operation in progress.
    Phase phase = Phase::idle;
    ClientRequest request;
    std::optional<OperationPolicy> policy;
    size_t slot = 0;                   // where the attempt goes
    uint64_t deadline_ms = 0;          // the operation's
    uint64_t attempt_deadline_ms = 0;  // the attempt's (awaiting, sending), or the backoff's end
    bool sent = false;                 // the attempt's request was written whole
    bool reconnected = false;          // the attempt already replaced a closed reused connection
    std::map<size_t, std::string> last_failure;  // per slot
    uint64_t request_id = 0;
  };

  void begin(size_t index, const NextRequest& next);
  void attempt(size_t index);
  void send_some(size_t index);
  Status connect(size_t index);  // begins one to client.slot, watched by epoll (phase connecting)
  void connected(size_t index);  // its outcome: the request goes, or the attempt failed
  void readable(size_t index);
  void take_answer(size_t index);  // the answer awaited, when the buffer holds it whole
  void answered(size_t index, const ClientResponse& response);
  void no_answer(size_t index, const std::string& what);
  // Where the policy's decision sends the next attempt, after its delay.
  void move_on(size_t index, const Decision& decision, std::optional<size_t> hinted);
  void finish(size_t index, Result<ClientResponse> outcome);
  void close_socket(Client& client);
  void watch(size_t index, bool write);

  std::vector<Endpoint> endpoints_;
  KvClientOptions options_;
  std::vector<Client> clients_;
  int epoll_ = -1;
  const Finished* finished_ = nullptr;  // during run()
  size_t active_ = 0;                   // clients with an operation in progress
};

}  // namespace keyval
