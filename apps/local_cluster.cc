// LocalCluster and WriteLoad (see local_cluster.h).
#include "apps/local_cluster.h"

#include "actors/peer_handshake.h"

#include <algorithm>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "client/kv_socket.h"

namespace keyval {
namespace {

uint64_t now_ms() { return steady_now_ms(); }

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

void sleep_ms(uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

NodeExit exit_of(int wait_status) {
  NodeExit exit;
  exit.exited = WIFEXITED(wait_status);
  exit.code = exit.exited ? WEXITSTATUS(wait_status) : WTERMSIG(wait_status);
  return exit;
}

// The kernel's range of ephemeral ports (the local ports of outgoing connections and of binds
// to port 0), from /proc/sys/net/ipv4/ip_local_port_range; Linux's default when unreadable.
std::pair<uint32_t, uint32_t> ephemeral_port_range() {
  std::ifstream file("/proc/sys/net/ipv4/ip_local_port_range");
  uint32_t low = 0, high = 0;
  if (file >> low >> high && low >= 1024 && low <= high && high <= 65535) return {low, high};
  return {32768, 60999};
}

// Binds a socket to 127.0.0.1:port (0: any); -1 when it cannot be bound, and -2 when no
// socket can be made at all (out of descriptors: no other port would do better).
int bind_loopback(uint16_t port, std::string* error) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -2;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    *error = "bind 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

// Ports below the ephemeral range. One bound to port 0 comes from that range, and before the
// node listens on it any process's outgoing connection may take it as its local port: a CI
// run's node 3 found "127.0.0.1:42309: address already in use". Below the range only another
// listener takes a port. Each candidate is bound here, and all stay bound until every port is
// picked; the walk starts at a random port, so clusters picking at once rarely meet. Where
// the range leaves too little room below it, ports come from binds to port 0, as before.
Result<std::vector<uint16_t>> free_ports(size_t count, const std::vector<uint16_t>& taken) {
  std::vector<int> sockets;
  std::vector<uint16_t> ports;
  std::string error;
  const auto range = ephemeral_port_range();
  constexpr uint32_t lowest = 10000;
  if (range.first > lowest + 1000) {
    const uint32_t span = range.first - lowest;
    std::random_device entropy;
    const uint32_t start = entropy() % span;
    for (uint32_t step = 0; step < span && ports.size() < count; ++step) {
      const auto port = static_cast<uint16_t>(lowest + (start + step) % span);
      if (std::find(taken.begin(), taken.end(), port) != taken.end()) continue;
      const int fd = bind_loopback(port, &error);
      if (fd == -2) break;  // no socket at all: the port-0 path below reports it
      if (fd < 0) continue;  // in use: the next one
      sockets.push_back(fd);
      ports.push_back(port);
    }
  }
  Status status;
  while (ports.size() < count) {
    const int fd = bind_loopback(0, &error);
    if (fd < 0) {
      status = Status::io_error(error);
      break;
    }
    sockets.push_back(fd);
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      status = Status::io_error(std::string("getsockname: ") + std::strerror(errno));
      break;
    }
    const uint16_t port = ntohs(address.sin_port);
    // A port the caller already gave to something else (and released, so the kernel may hand
    // it out again): skipped, its socket kept bound so the next one differs.
    if (std::find(taken.begin(), taken.end(), port) == taken.end()) ports.push_back(port);
  }
  for (int fd : sockets) ::close(fd);
  if (!status.is_ok()) return status;
  return ports;
}

std::string NodeExit::describe() const {
  return exited ? "exit " + std::to_string(code) : "killed by signal " + std::to_string(code);
}

// --- LocalCluster -------------------------------------------------------------------------

Result<std::unique_ptr<LocalCluster>> LocalCluster::create(LocalClusterOptions options) {
  if (options.nodes == 0 || options.nodes > endpoints_max) {
    return Status::invalid_argument("a local cluster has 1.." + std::to_string(endpoints_max) + " nodes");
  }
  if (options.directory.empty()) return Status::invalid_argument("a local cluster needs a directory");
  std::error_code error;
  std::filesystem::create_directories(options.directory, error);
  if (error) return Status::io_error("cannot create " + options.directory + ": " + error.message());
  if (options.binary.empty()) {
    char path[PATH_MAX];
    ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (length <= 0) return Status::io_error(std::string("cannot find this program: ") + std::strerror(errno));
    options.binary.assign(path, static_cast<size_t>(length));
  }
  std::unique_ptr<LocalCluster> cluster(new LocalCluster(std::move(options)));
  const LocalClusterOptions& o = cluster->options_;
  // First, so that the destructor (which signals every node) is safe on any early return.
  cluster->pids_.assign(o.nodes, 0);
  cluster->exits_.assign(o.nodes, std::nullopt);
  std::vector<uint16_t> picked;
  // Not the ports the caller picked for the nodes (Redis, metrics): a node would find its own
  // port taken.
  std::vector<uint16_t> taken = o.redis_ports;
  taken.insert(taken.end(), o.taken_ports.begin(), o.taken_ports.end());
  if (o.client_port_base == 0 || o.peer_port_base == 0) {
    KV_ASSIGN_OR_RETURN(picked, free_ports((o.separate_peer_listen ? 3 : 2) * o.nodes, taken));
  } else if (o.separate_peer_listen) {
    KV_ASSIGN_OR_RETURN(picked, free_ports(3 * o.nodes, taken));
  }
  for (uint64_t i = 0; i < o.nodes; ++i) {
    if (o.client_port_base + o.nodes > 65536 || o.peer_port_base + o.nodes > 65536) {
      return Status::invalid_argument("port bases leave no room for " + std::to_string(o.nodes) + " nodes");
    }
    uint16_t client = o.client_port_base ? static_cast<uint16_t>(o.client_port_base + i) : picked[i];
    uint16_t peer = o.peer_port_base ? static_cast<uint16_t>(o.peer_port_base + i) : picked[o.nodes + i];
    cluster->client_endpoints_.push_back(Endpoint{"127.0.0.1", client});
    cluster->peer_endpoints_.push_back(Endpoint{"127.0.0.1", peer});
    cluster->peer_listen_endpoints_.push_back(
        o.separate_peer_listen ? Endpoint{"127.0.0.1", picked[2 * o.nodes + i]} : Endpoint{"127.0.0.1", peer});
  }
  if (!o.tls_directory.empty()) {
    const std::string& d = o.tls_directory;
    auto tls = TlsContext::create(TlsRole::client, TlsFiles{d + "/client.crt", d + "/client.key", d + "/ca.crt"});
    if (!tls.is_ok()) return Status::invalid_argument("local cluster TLS: " + tls.status().message());
    cluster->client_tls_ = *tls;
    for (uint64_t id = 1; id <= o.nodes; ++id) {  // each node's own, checked before any starts
      const std::string node = d + "/node-" + std::to_string(id);
      auto server = TlsContext::create(TlsRole::server, TlsFiles{node + ".crt", node + ".key", d + "/ca.crt"});
      if (!server.is_ok()) {
        return Status::invalid_argument("local cluster TLS, node " + std::to_string(id) + ": " +
                                        server.status().message() + " (make them with scripts/make-certs.sh " + d +
                                        " 1.." + std::to_string(o.nodes) + ")");
      }
    }
  }
  if (!o.cluster_secret_file.empty()) {
    auto secret = read_cluster_secret(o.cluster_secret_file);
    if (!secret.is_ok()) return Status::invalid_argument("cluster secret: " + secret.status().message());
  }
  return cluster;
}

LocalCluster::~LocalCluster() {
  for (uint64_t id = 1; id <= options_.nodes; ++id) signal(id, SIGKILL);
}

std::string LocalCluster::endpoints_flag() const {
  std::string text;
  for (const Endpoint& endpoint : client_endpoints_) text += (text.empty() ? "" : ",") + endpoint.str();
  return text;
}

uint64_t LocalCluster::bootstrap_nodes() const {
  return options_.bootstrap_nodes == 0 ? options_.nodes : std::min(options_.bootstrap_nodes, options_.nodes);
}

std::string LocalCluster::peers_flag() const {
  std::string text;
  for (uint64_t id = 1; id <= bootstrap_nodes(); ++id) {
    text += (text.empty() ? "" : ",") + std::to_string(id) + "=" + peer_endpoints_[id - 1].str();
  }
  return text;
}

std::string LocalCluster::log_path(uint64_t id) const {
  return options_.directory + "/node" + std::to_string(id) + ".log";
}

uint64_t LocalCluster::log_bytes(uint64_t id) const {
  std::error_code error;
  uint64_t size = std::filesystem::file_size(log_path(id), error);
  return error ? 0 : size;
}

std::string LocalCluster::last_log_line(uint64_t id, const std::string& needle, uint64_t from) const {
  std::ifstream in(log_path(id));
  in.seekg(static_cast<std::streamoff>(from));
  std::string line, found;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) found = line;
  }
  auto tag = found.find("] ");
  return tag == std::string::npos ? found : found.substr(tag + 2);
}

std::string LocalCluster::data_directory(uint64_t id) const {
  if (options_.data_on_disks) return disk_directory(id) + "/data";
  return options_.directory + "/node" + std::to_string(id);
}

std::string LocalCluster::disk_directory(uint64_t id) const {
  return options_.directory + "/disk" + std::to_string(id);
}

pid_t LocalCluster::pid(uint64_t id) const { return pids_.at(id - 1); }

std::optional<NodeExit> LocalCluster::last_exit(uint64_t id) const { return exits_.at(id - 1); }

std::vector<std::string> LocalCluster::node_arguments(uint64_t id) const {
  std::vector<std::string> args = {options_.binary,    "node",           "--id",          std::to_string(id),
                                   "--data-dir",       data_directory(id), "--peers",     peers_flag(),
                                   "--client-listen",  client_endpoints_[id - 1].str(), "--cluster", options_.cluster,
                                   "--tick-ms",        std::to_string(options_.tick_ms)};
  if (!options_.tls_directory.empty()) {  // TLS: this node's certificate (scripts/make-certs.sh)
    const std::string& d = options_.tls_directory;
    const std::string node = d + "/node-" + std::to_string(id);
    args.insert(args.end(), {"--peer-cert", node + ".crt", "--peer-key", node + ".key", "--peer-ca", d + "/ca.crt",
                             "--client-cert", node + ".crt", "--client-key", node + ".key"});
  }
  if (!options_.cluster_secret_file.empty()) {
    args.insert(args.end(), {"--cluster-secret-file", options_.cluster_secret_file});
  }
  if (id <= bootstrap_nodes()) {
    if (options_.separate_peer_listen) args.insert(args.end(), {"--peer-listen", peer_listen_endpoints_[id - 1].str()});
    args.push_back("--bootstrap");  // creates the data directory at the first start, ignored at a restart
    return args;
  }
  std::string endpoints;
  for (uint64_t member = 1; member <= options_.nodes; ++member) {
    // The first nodes, and the running ones: after membership changes those are the members.
    if (member == id || (member > bootstrap_nodes() && pids_[member - 1] == 0)) continue;
    endpoints += (endpoints.empty() ? "" : ",") + client_endpoints_[member - 1].str();
  }
  args.insert(args.end(), {"--peer-listen", peer_listen_endpoints_[id - 1].str(), "--join", endpoints});
  return args;
}

Status LocalCluster::start(uint64_t id) {
  KV_ASSERT(id >= 1 && id <= options_.nodes);
  if (running(id)) return Status::invalid_argument("node " + std::to_string(id) + " runs already");
  std::vector<std::string> args = node_arguments(id);
  if (id <= options_.redis_ports.size()) {
    args.insert(args.end(), {"--redis-listen", "127.0.0.1:" + std::to_string(options_.redis_ports[id - 1])});
  }
  args.insert(args.end(), options_.extra_node_flags.begin(), options_.extra_node_flags.end());
  if (auto own = options_.node_flags.find(id); own != options_.node_flags.end()) {
    args.insert(args.end(), own->second.begin(), own->second.end());
  }
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string log = log_path(id);
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::from_errno("open", log, errno);
  const pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child < 0) {
    int error_number = errno;
    ::close(log_fd);
    return Status::from_errno("fork", options_.binary, error_number);
  }
  if (child == 0) {
    // Only async-signal-safe calls from here to exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pids_[id - 1] = child;
  exits_[id - 1].reset();
  return Status::ok();
}

Status LocalCluster::start_all() {
  for (uint64_t id = 1; id <= options_.nodes; ++id) {
    if (!running(id)) KV_RETURN_IF_ERROR(start(id));
  }
  return Status::ok();
}

void LocalCluster::reap(uint64_t id, int wait_status) {
  exits_[id - 1] = exit_of(wait_status);
  pids_[id - 1] = 0;
}

bool LocalCluster::running(uint64_t id) {
  pid_t child = pids_.at(id - 1);
  if (child == 0) return false;
  int wait_status = 0;
  if (::waitpid(child, &wait_status, WNOHANG) == child) {
    reap(id, wait_status);
    return false;
  }
  return true;
}

void LocalCluster::signal(uint64_t id, int signal_number) {
  if (!running(id)) return;
  pid_t child = pids_[id - 1];
  ::kill(child, signal_number);
  if (signal_number == SIGKILL) {
    int wait_status = 0;
    while (::waitpid(child, &wait_status, 0) < 0 && errno == EINTR) {
    }
    reap(id, wait_status);
  }
}

Result<NodeExit> LocalCluster::wait_exit(uint64_t id, uint64_t timeout_ms) {
  if (pids_.at(id - 1) == 0) {
    if (exits_[id - 1]) return *exits_[id - 1];
    return Status::not_found("node " + std::to_string(id) + " is not running");
  }
  const uint64_t deadline = now_ms() + timeout_ms;
  while (running(id)) {
    if (now_ms() >= deadline) {
      return Status::io_error("node " + std::to_string(id) + " (pid " + std::to_string(pids_[id - 1]) +
                              ") still runs after " + std::to_string(timeout_ms) + " ms");
    }
    sleep_ms(5);
  }
  return *exits_[id - 1];
}

std::map<uint64_t, NodeExit> LocalCluster::stop_all(uint64_t timeout_ms) {
  std::map<uint64_t, NodeExit> exits;
  std::vector<uint64_t> stopping;
  for (uint64_t id = 1; id <= options_.nodes; ++id) {
    if (running(id)) {
      ::kill(pids_[id - 1], SIGTERM);
      stopping.push_back(id);
    }
  }
  const uint64_t deadline = now_ms() + timeout_ms;
  for (uint64_t id : stopping) {
    uint64_t now = now_ms();
    auto exit = wait_exit(id, deadline > now ? deadline - now : 0);
    if (!exit.is_ok()) {
      signal(id, SIGKILL);
      exit = *exits_[id - 1];
    }
    exits[id] = *exit;
  }
  return exits;
}

std::vector<Result<ClientResponse>> LocalCluster::status(uint64_t request_timeout_ms) {
  KvClientOptions options;
  options.request_timeout_ms = request_timeout_ms;
  options.operation_timeout_ms = request_timeout_ms;
  options.tls = client_tls_;
  KvClient client(client_endpoints_, options);
  // By address: the harness knows which node each endpoint is.
  std::vector<Result<ClientResponse>> views;
  for (const Endpoint& endpoint : client_endpoints_) views.push_back(client.status_of(endpoint));
  return views;
}

Result<uint64_t> LocalCluster::wait_for_leader(uint64_t timeout_ms, uint64_t not_this) {
  std::vector<uint64_t> members;
  for (uint64_t id = 1; id <= options_.nodes; ++id) members.push_back(id);
  return wait_for_leader_among(members, timeout_ms, not_this);
}

Result<uint64_t> LocalCluster::wait_for_leader_among(const std::vector<uint64_t>& members, uint64_t timeout_ms,
                                                     uint64_t not_this) {
  const uint64_t deadline = now_ms() + timeout_ms;
  std::string last = "no node answered";
  while (true) {
    auto views = status();
    for (uint64_t candidate : members) {
      const auto& view = views.at(candidate - 1);
      if (!view.is_ok() || view->role != "leader" || candidate == not_this) continue;
      uint64_t agreeing = 0;
      for (uint64_t other_id : members) {
        const auto& other = views[other_id - 1];
        if (other.is_ok() && other->leader_hint == candidate && other->term == view->term) ++agreeing;
      }
      if (agreeing > members.size() / 2) return candidate;
      last = "node " + std::to_string(candidate) + " leads term " + std::to_string(view->term) + " but only " +
             std::to_string(agreeing) + " node(s) follow it";
    }
    if (now_ms() >= deadline) {
      return Status::io_error("no leader within " + std::to_string(timeout_ms) + " ms (" + last + ")");
    }
    sleep_ms(20);
  }
}

Status LocalCluster::wait_for_applied(uint64_t index, uint64_t timeout_ms) {
  const uint64_t deadline = now_ms() + timeout_ms;
  while (true) {
    auto views = status();
    std::string behind;
    for (uint64_t id = 1; id <= views.size(); ++id) {
      if (!running(id)) continue;
      if (!views[id - 1].is_ok()) {
        behind += " node " + std::to_string(id) + " (" + views[id - 1].status().message() + ")";
      } else if (views[id - 1]->applied_index < index) {
        behind += " node " + std::to_string(id) + " (applied " + std::to_string(views[id - 1]->applied_index) + ")";
      }
    }
    if (behind.empty()) return Status::ok();
    if (now_ms() >= deadline) {
      return Status::io_error("not applied through " + std::to_string(index) + " within " + std::to_string(timeout_ms) +
                              " ms:" + behind);
    }
    sleep_ms(20);
  }
}

// --- WriteLoad ----------------------------------------------------------------------------

WriteLoad::WriteLoad(std::vector<Endpoint> endpoints, uint64_t writers, uint64_t value_bytes, KvClientOptions options,
                     LoadShape shape)
    : endpoints_(std::move(endpoints)), writers_(writers), value_bytes_(value_bytes), options_(options), shape_(shape) {
  KV_ASSERT(shape.put_percent + shape.get_percent + shape.del_percent + shape.cas_percent == 100);
  for (uint64_t writer = 1; writer <= writers; ++writer) threads_.emplace_back([this, writer] { run_writer(writer); });
}

WriteLoad::~WriteLoad() { stop(); }

void WriteLoad::stop() {
  stop_ = true;
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

std::vector<LoadOp> WriteLoad::operations() {
  std::lock_guard<std::mutex> guard(mutex_);
  return operations_;
}

std::vector<std::pair<std::string, std::string>> WriteLoad::acknowledged_writes() {
  std::lock_guard<std::mutex> guard(mutex_);
  std::vector<std::pair<std::string, std::string>> acknowledged;
  for (const Write& write : writes_) {
    if (write.outcome == Write::acknowledged) acknowledged.emplace_back(write.key, write.value);
  }
  return acknowledged;
}

void WriteLoad::run_writer(uint64_t writer) {
  KvClient client(endpoints_, options_);
  std::mt19937_64 random(shape_.seed * 1000003 + writer);
  // Paced: each writer starts one operation every writers/rate seconds (on schedule, not
  // after the previous one: a slow answer does not lower the offered rate).
  const double interval_ms = shape_.rate_ops_per_s == 0 ? 0 : 1000.0 * writers_ / shape_.rate_ops_per_s;
  double next_ms = static_cast<double>(now_ms());
  uint64_t puts = 0;
  auto value_for = [this](const std::string& key) {
    std::string value = key + ":";
    value.resize(std::max<size_t>(value_bytes_, value.size()), 'v');
    return value;
  };
  while (!stop_) {
    if (interval_ms > 0) {
      next_ms += interval_ms;
      while (!stop_ && static_cast<double>(now_ms()) < next_ms) sleep_ms(1);
      if (stop_) break;
    }
    LoadOp op;
    const uint32_t roll = static_cast<uint32_t>(random() % 100);
    op.kind = roll < shape_.put_percent                                              ? LoadOp::put
              : roll < shape_.put_percent + shape_.get_percent                       ? LoadOp::get
              : roll < shape_.put_percent + shape_.get_percent + shape_.del_percent ? LoadOp::del
                                                                                     : LoadOp::cas;
    op.writer = writer;
    op.invoke_ns = now_ns();
    op.invoke_ms = op.invoke_ns / 1'000'000;
    Write write;
    Result<ClientResponse> response = Status::invalid_argument("no operation");
    if (op.kind == LoadOp::put) {
      write.key = shape_.key_prefix + std::to_string(writer) + "-" + std::to_string(++puts);
      write.value = value_for(write.key);
      op.key = write.key;
      op.value = write.value;
      response = client.put(write.key, write.value);
    } else {
      op.key = "k" + std::to_string(random() % shape_.keys);
      if (op.kind == LoadOp::cas) op.value = value_for(op.key);
      if (op.kind == LoadOp::get) response = client.get(op.key);
      if (op.kind == LoadOp::del) response = client.del(op.key);
      if (op.kind == LoadOp::cas) response = client.cas(op.key, std::nullopt, op.value);
    }
    op.complete_ns = now_ns();
    op.complete_ms = op.complete_ns / 1'000'000;
    if (response.is_ok()) {
      if (op.kind == LoadOp::get && response->found) op.output = response->value;
      if (op.kind == LoadOp::del) op.output = response->found ? "true" : "false";
      if (op.kind == LoadOp::cas) op.output = response->cas_succeeded ? "true" : "false";
    }
    const bool is_write = op.kind != LoadOp::get;
    op.outcome = response.is_ok()                                     ? LoadOp::acknowledged
                 : is_write && client.last_write_uncertain()          ? LoadOp::unknown
                                                                      : LoadOp::failed;
    if (op.kind == LoadOp::put) {
      write.outcome = op.outcome == LoadOp::acknowledged ? Write::acknowledged
                      : op.outcome == LoadOp::unknown    ? Write::unknown
                                                         : Write::failed;
      if (write.outcome == Write::acknowledged) ++acknowledged_;
    }
    ++completed_;
    std::lock_guard<std::mutex> guard(mutex_);
    operations_.push_back(op);
    if (op.kind == LoadOp::put) writes_.push_back(std::move(write));
  }
}

WriteLoadReport WriteLoad::verify(KvClientOptions options) {
  stop();
  WriteLoadReport report;
  KvClient client(endpoints_, options);
  for (const Write& write : writes_) {
    if (write.outcome == Write::failed) {
      ++report.failed;
      continue;
    }
    auto read = client.get(write.key);
    const bool present = read.is_ok() && read->found && read->value == write.value;
    if (write.outcome == Write::unknown) {
      ++report.unknown;
      if (present) ++report.unknown_present;
      continue;
    }
    ++report.acknowledged;
    if (present) {
      ++report.verified;
      continue;
    }
    ++(read.is_ok() ? report.lost : report.unreadable);
    if (report.problems.size() < 5) {
      report.problems.push_back(write.key + ": " +
                                (!read.is_ok() ? "read failed: " + read.status().message()
                                               : read->found ? "another value" : "absent"));
    }
  }
  return report;
}

}  // namespace keyval
