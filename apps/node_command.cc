// keyval node: one cluster node as a process (DESIGN.md, "The node").
//
//   keyval node --id N --data-dir D [--peer-listen HOST:PORT] [--client-listen HOST:PORT]
//               [--peers 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT] [--cluster NAME] [--config FILE]
//               [--tick-ms T] [--threads N] [--persists-in-flight N] [--snapshot-entries N] [--snapshot-bytes B]
//               [--log-tail-entries N] [--wal-segment-bytes B] [--advertise-client HOST:PORT]
//               [--snapshot-send-rate B] [--bootstrap | --join HOST:PORT,...]
//               [--cluster-secret-file F] [--peer-cert F --peer-key F --peer-ca F]
//               [--client-cert F --client-key F [--client-ca F]] [--metrics-listen HOST:PORT]
//
// A data directory is created only when asked (docs/MEMBERSHIP.md):
//   --bootstrap  a node of a NEW cluster whose voters are --peers: a missing directory is
//                created and its log starts with the bootstrap configuration entry (index 1,
//                term 1, the members of --peers; the same on every node). For a directory that
//                already belongs to this node and cluster it is ignored, so the same command line
//                restarts the node.
//   --join E     a new member of a RUNNING cluster, reached at client endpoints E: a member is
//                asked for the configuration, which must list this node id (added first with
//                `keyval member add`); the directory is created with no configuration (the node
//                neither campaigns nor votes until the leader's log or snapshot gives it one),
//                and the transport dials the members' peer addresses. For an existing directory
//                the members' addresses are still asked for (best effort).
// Without either, a missing data directory (or one without IDENTITY) is refused, naming the
// path and both flags. A --join that would create a directory for an id the cluster lists as a
// voter is refused too, naming the replacement procedure (a new id, then remove the old one).
// These rules, the supervision of every actor and the stop order are the node's life cycle,
// actors/node_lifecycle.h, which the simulator's nodes go through as well; this file parses
// the flags, asks the cluster (KvClient), and owns the sockets and the signals.
//
// Defaults: --peers 1=127.0.0.1:7201,2=127.0.0.1:7202,3=127.0.0.1:7203; --peer-listen this
// node's own entry in --peers; --client-listen 127.0.0.1:(7100 + N); --cluster keyval;
// --tick-ms 10 (elections time out after 10-20 ticks, heartbeats every 2); --threads 0 (the
// raft node and the client gateway run on the network thread; N >= 1: on N CAF scheduler
// workers; the WAL writer, the LMDB indexer and the state machine have their own threads).
// Snapshots: one is taken once --snapshot-entries (default 10000) entries or --snapshot-bytes
// (default 67108864, 64 MiB) of entry payload were applied since the last (0 turns that
// trigger off), and the log it covers is released but for the last --log-tail-entries
// (default 5000) entries, kept for followers a little behind (docs/SNAPSHOTS.md).
// --snapshot-send-rate B bounds each InstallSnapshot stream a leader sends to B bytes per
// second (default 0: unbounded), so that catching up a new member leaves the disk and the CPUs
// to the writes served meanwhile (docs/MEMBERSHIP.md).
// --wal-segment-bytes (default 8388608, 8 MiB; 4096..2147483648) sizes the WAL's segments:
// small ones make a short run rotate and drop segments (the crash-state tests use it).
// --advertise-client: the address clients are told to reach this node on (in every answer,
// and to its peers with its raft messages, so a client given one endpoint finds the others);
// default --client-listen, with the host of this node's --peers entry when --client-listen
// listens on every interface (0.0.0.0 or ::).
// Who may talk to this node (docs/SECURITY.md), in one block of flags (parse_security_options):
// --cluster-secret-file F: every peer link proves, both ways, that the other side knows the secret
// in F (HMAC-SHA256 challenge-response, actors/peer_handshake.h); F must be readable by its owner
// only and hold 16..4096 bytes. Without it peer links are open: whoever reaches the peer port
// can pose as a peer.
// --peer-cert, --peer-key, --peer-ca (together): mutual TLS on every peer link; this node's
// certificate must name it (common name keyval-node-ID, scripts/make-certs.sh) and a peer's
// certificate must be signed by the CA and name the id the peer claims.
// --client-cert, --client-key: TLS on the client port; with --client-ca, clients must present a
// certificate signed by it. A --join to such a cluster talks TLS with --peer-ca as the CA and the
// peer certificate as the client certificate.
// --metrics-listen HOST:PORT (off by default): HTTP /metrics (Prometheus text format) and /health
// (actors/metrics_listener.h, docs/OPERATIONS.md "Metrics and health"); it listens from before
// recovery on, so /health says "recovering" meanwhile.
// --config FILE reads the same settings from "name = value" lines (names as the flags
// without the dashes; '#' starts a comment); a flag given on the command line wins.
//
// Log (spdlog, NodeLog below): one line per event, "TIME LEVEL [node N] what" ("[term T]" before
// the raft node's lines): listening, recovered N entries in M ms, role changes (elected,
// stepped down), peer up/down, shutdown. --log-level error|warn|info|debug (default info):
// the lowest level written; per-connection lines are debug. --log-file F appends to F instead
// of stderr.
// SIGTERM or SIGINT on the leader: it first hands leadership to its most up-to-date follower
// (§3.10, docs/LEADERSHIP.md), waiting at most handoff_wait_ms, so a rolling restart costs
// the cluster a round trip instead of an election timeout; then it stops.
// Exit: 0 after SIGTERM or SIGINT (clean shutdown); 1 when the node cannot start (port in use,
// data directory of another node or cluster, corrupt data) or stops itself (a failed fsync:
// fail-stop); 2 for a bad flag or config file.
#include <signal.h>
#include <time.h>

#include <atomic>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/client_listener.h"
#include "actors/redis_listener.h"
#include "actors/messages.h"
#include "actors/metrics_listener.h"
#include "actors/node.h"
#include "actors/node_lifecycle.h"
#include "actors/peer_handshake.h"
#include "actors/tcp_transport.h"
#include "actors/tls.h"
#include "apps/cli.h"
#include "apps/config_file.h"
#include "apps/commands.h"
#include "client/kv_client.h"
#include "apps/peers.h"
#include "storage/node_identity.h"
#include "storage/wal_format.h"

namespace keyval::commands {
namespace {

constexpr int exit_failed = 1;
const char* const command_name = "node";
const char* const peers_default = "1=127.0.0.1:7201,2=127.0.0.1:7202,3=127.0.0.1:7203";
// A setting: a flag "--name VALUE" and a config file line "name = value". The default and the
// help are what `keyval node --help` shows (the value itself comes from the setting's parse
// below); a bare name is a setting too.
struct Setting {
  Setting(const char* name, const char* default_text = "", const char* help = "")
      : name(name), default_text(default_text), help(help) {}
  std::string name;
  std::string default_text;
  std::string help;
};
const std::vector<Setting> setting_names = {
    {"id", "", "this node's id, from 1; required"},
    {"data-dir", "", "the node's data directory; required"},
    {"peer-listen", "this node's --peers entry", "HOST:PORT to listen for peers on"},
    {"client-listen", "127.0.0.1:(7100 + id)", "HOST:PORT to serve clients on"},
    {"peers", peers_default, "every voter of a new cluster, ID=HOST:PORT,..."},
    {"cluster", "keyval", "the cluster's name (kept in the data directory)"},
    {"tick-ms", "10", "Raft tick; elections time out after 10-20 ticks, heartbeats every 2"},
    {"threads", "0", "0: the raft node and client gateway run on the network thread; 1..64: on that many CAF scheduler workers"},
    {"persists-in-flight", "8", "WAL persist requests the raft node keeps outstanding, 1..64 (1: one fsync at a time)"},
    {"snapshot-entries", "10000", "take a snapshot after this many applied entries (0: never by count)"},
    {"snapshot-bytes", "67108864", "... or this many bytes of applied entry payload (0: never by bytes)"},
    {"log-tail-entries", "5000", "entries kept behind a snapshot for followers a little behind"},
    {"wal-segment-bytes", "8388608", "WAL segment size, 4096..2147483648"},
    {"advertise-client", "--client-listen", "the client address told to clients and peers"},
    {"join", "", "HOST:PORT,... of a running cluster to join (after `keyval member add`)"},
    {"snapshot-send-rate", "0 (unbounded)", "bytes/s of each InstallSnapshot stream sent"},
    {"metrics-listen", "", "HOST:PORT to serve HTTP /metrics (Prometheus) and /health on (off when empty)"},
    {"log-level", "info", "error, warn, info or debug: the lowest level logged"},
    {"log-file", "stderr", "append the log to FILE"},
    // security (parse_security_options)
    {"cluster-secret-file", "", "the peers' shared secret (docs/SECURITY.md)"},
    {"peer-cert", "", "mutual TLS between peers: this node's certificate"},
    {"peer-key", "", "... its key"},
    {"peer-ca", "", "... and the CA that signed every node's"},
    {"client-cert", "", "TLS on the client port: the certificate"},
    {"client-key", "", "... its key"},
    {"client-ca", "", "... and, to require client certificates, their CA"},
    // the Redis gateway (parse_redis_options, docs/REDIS.md)
    {"redis-listen", "", "HOST:PORT to serve the Redis protocol on (off when empty)"},
    {"redis-password-file", "", "a file holding the password Redis clients must AUTH with"}};
// Bounds of the snapshot settings: far above any useful value, low enough that a typo in
// units (bytes given as entries) is caught.
constexpr uint64_t snapshot_entries_max = 1'000'000'000;
constexpr uint64_t snapshot_bytes_max = 1ull << 40;
constexpr uint64_t log_tail_entries_max = 1'000'000'000;
// A leader's hand-off before it stops: the raft node gives up after an election timeout (and
// two more waiting for the new leader), far below this; the bound keeps a stop bounded.
constexpr std::chrono::milliseconds handoff_wait_ms{2000};

struct NodeOptions {
  uint64_t id = 0;
  std::string data_directory;
  Endpoint peer_listen;
  Endpoint client_listen;
  Endpoint advertise_client;           // told to clients and peers as this node's client address
  std::map<uint64_t, Endpoint> peers;  // every voter, this node included
  std::string cluster = "keyval";
  uint64_t tick_ms = 10;
  uint64_t threads = 0;  // CAF scheduler workers for the raft node and gateway; 0: the network thread
  uint64_t persists_in_flight = 8;  // RaftNodeConfig::persists_in_flight_max
  uint64_t snapshot_entries = 10000;       // RaftNodeConfig::snapshot_entries
  uint64_t snapshot_bytes = 64ull << 20;   // RaftNodeConfig::snapshot_bytes
  uint64_t log_tail_entries = 5000;        // raft::Config::log_tail_entries
  uint64_t snapshot_send_rate = 0;         // RaftNodeConfig::snapshot_send_bytes_per_second
  uint64_t wal_segment_bytes = wal_format::segment_bytes_default;  // WalOptions::segment_bytes
  bool bootstrap = false;              // --bootstrap: create a new cluster's node
  std::vector<Endpoint> join;          // --join: a running cluster's client endpoints (empty: not joining)
  // Security (docs/SECURITY.md).
  std::string cluster_secret;          // --cluster-secret-file's contents; empty: open peer links
  std::shared_ptr<TlsContext> peer_tls_server, peer_tls_client;  // --peer-*; null: no TLS
  std::shared_ptr<TlsContext> client_tls;  // --client-*; null: plaintext client port
  std::shared_ptr<TlsContext> join_tls;    // --join's client side when the client port is TLS
  // The Redis gateway (docs/REDIS.md): off unless --redis-listen is given.
  std::optional<Endpoint> redis_listen;
  std::string redis_password;  // --redis-password-file's contents; empty: no AUTH
  std::optional<Endpoint> metrics_listen;  // --metrics-listen; none: no metrics served
  spdlog::level::level_enum log_level = spdlog::level::info;  // --log-level
  std::string log_file;  // --log-file; empty: stderr
};

// --- settings: flags over the config file ------------------------------------------------


// --snapshot-entries, --snapshot-bytes, --log-tail-entries (0 allowed: that trigger off, no tail),
// --snapshot-send-rate (bytes per second of each InstallSnapshot stream; 0: unbounded).
template <class Setting>
Status parse_snapshot_settings(const Setting& setting, NodeOptions& options) {
  struct Bounded {
    const char* name;
    uint64_t* value;
    uint64_t max;
  };
  for (const Bounded& bounded : {Bounded{"snapshot-entries", &options.snapshot_entries, snapshot_entries_max},
                                 Bounded{"snapshot-bytes", &options.snapshot_bytes, snapshot_bytes_max},
                                 Bounded{"log-tail-entries", &options.log_tail_entries, log_tail_entries_max},
                                 Bounded{"snapshot-send-rate", &options.snapshot_send_rate, snapshot_bytes_max}}) {
    const std::string flag = std::string("--") + bounded.name;
    KV_ASSIGN_OR_RETURN(*bounded.value, cli::parse_u64(setting(bounded.name, std::to_string(*bounded.value)), flag));
    if (*bounded.value > bounded.max) {
      return Status::invalid_argument(flag + " expects 0.." + std::to_string(bounded.max));
    }
  }
  return Status::ok();
}

// --cluster-secret-file: read and checked now, so a bad file stops the node before it starts.
template <class Setting>
Status parse_security_options(const Setting& setting, NodeOptions& options) {
  const std::string secret_file = setting("cluster-secret-file", "");
  if (!secret_file.empty()) {
    auto secret = read_cluster_secret(secret_file);
    if (!secret.is_ok()) return Status::invalid_argument("--cluster-secret-file: " + secret.status().message());
    options.cluster_secret = *secret;
  }
  const TlsFiles peer{setting("peer-cert", ""), setting("peer-key", ""), setting("peer-ca", "")};
  const int peer_given = !peer.certificate.empty() + !peer.key.empty() + !peer.ca.empty();
  if (peer_given != 0 && peer_given != 3) {
    return Status::invalid_argument("--peer-cert, --peer-key and --peer-ca go together (mutual TLS between peers)");
  }
  auto tls = [](TlsRole role, const TlsFiles& files, const std::string& flags) -> Result<std::shared_ptr<TlsContext>> {
    auto context = TlsContext::create(role, files);
    if (!context.is_ok()) return Status::invalid_argument(flags + ": " + context.status().message());
    return *context;
  };
  if (peer_given == 3) {
    KV_ASSIGN_OR_RETURN(options.peer_tls_server, tls(TlsRole::server, peer, "--peer-cert/--peer-key/--peer-ca"));
    KV_ASSIGN_OR_RETURN(options.peer_tls_client, tls(TlsRole::client, peer, "--peer-cert/--peer-key/--peer-ca"));
  }
  const TlsFiles client{setting("client-cert", ""), setting("client-key", ""), setting("client-ca", "")};
  if (client.certificate.empty() != client.key.empty() || (!client.ca.empty() && client.certificate.empty())) {
    return Status::invalid_argument("--client-cert and --client-key go together, and --client-ca needs them");
  }
  if (!client.certificate.empty()) {
    KV_ASSIGN_OR_RETURN(options.client_tls, tls(TlsRole::server, client, "--client-cert/--client-key/--client-ca"));
    if (peer_given == 3) {
      KV_ASSIGN_OR_RETURN(options.join_tls, tls(TlsRole::client, peer, "--join over TLS"));
    }
  }
  return Status::ok();
}

// --redis-listen HOST:PORT, --redis-password-file F (owner-only, like the cluster secret; one
// line, its trailing newline dropped).
template <class SettingOf>
Status parse_redis_options(const SettingOf& setting, NodeOptions& options) {
  const std::string listen = setting("redis-listen", "");
  const std::string password_file = setting("redis-password-file", "");
  if (listen.empty()) {
    if (!password_file.empty()) return Status::invalid_argument("--redis-password-file needs --redis-listen");
    return Status::ok();
  }
  KV_ASSIGN_OR_RETURN(Endpoint endpoint, parse_listen("redis-listen", listen));
  options.redis_listen = endpoint;
  if (options.client_tls) {
    return Status::invalid_argument(
        "--redis-listen cannot be combined with --client-cert yet: the Redis port has no TLS (docs/REDIS.md)");
  }
  if (!password_file.empty()) {
    auto password = read_cluster_secret(password_file);
    if (!password.is_ok()) return Status::invalid_argument("--redis-password-file: " + password.status().message());
    options.redis_password = *password;
    while (!options.redis_password.empty() &&
           (options.redis_password.back() == '\n' || options.redis_password.back() == '\r')) {
      options.redis_password.pop_back();
    }
  }
  return Status::ok();
}

// The flags: one per setting, then --config and --bootstrap.
cli::Command command() {
  cli::Command command(command_name, "one cluster node; SIGTERM or SIGINT stops it (a leader hands over first)");
  for (const Setting& setting : setting_names) command.value(setting.name, setting.default_text, setting.help);
  command.value("config", "", "read the settings above from FILE, \"name = value\" lines; a flag wins")
      .flag("bootstrap", "create a missing data directory as a node of a new cluster of --peers")
      .footer("exit: 0 stopped by SIGTERM or SIGINT, 1 could not start or stopped itself (fail-stop), 2 a bad flag "
              "or config file");
  return command;
}

Result<NodeOptions> parse_options(const cli::Flags& flags) {
  std::map<std::string, std::string> settings;
  std::vector<std::string> names;
  for (const Setting& setting : setting_names) names.push_back(setting.name);
  if (flags.has("config")) {
    KV_ASSIGN_OR_RETURN(settings, read_config_file(flags.get("config"), names));
  }
  for (const std::string& name : names) {
    if (flags.has(name)) settings[name] = flags.get(name);
  }
  auto setting = [&](const std::string& name, const std::string& fallback) {
    auto found = settings.find(name);
    return found == settings.end() ? fallback : found->second;
  };
  NodeOptions options;
  if (!settings.count("id")) return Status::invalid_argument("--id is required");
  KV_ASSIGN_OR_RETURN(options.id, cli::parse_u64(settings["id"], "--id"));
  if (options.id == 0) return Status::invalid_argument("--id must be above 0");
  options.data_directory = setting("data-dir", "");
  if (options.data_directory.empty()) return Status::invalid_argument("--data-dir is required");
  KV_ASSIGN_OR_RETURN(options.peers, parse_peers(setting("peers", peers_default)));
  options.bootstrap = flags.has("bootstrap");
  if (settings.count("join")) {
    auto join = parse_endpoints(settings["join"]);
    if (!join.is_ok()) return Status::invalid_argument("--join: " + join.status().message());
    options.join = *join;
  }
  if (options.bootstrap && !options.join.empty()) {
    return Status::invalid_argument("--bootstrap (a new cluster) and --join (a running one) exclude each other");
  }
  // A joining node is not among the bootstrap --peers: it names its own --peer-listen.
  auto own = options.peers.find(options.id);
  if (own == options.peers.end() && (options.bootstrap || !settings.count("peer-listen"))) {
    return Status::invalid_argument("--peers does not list this node (--id " + std::to_string(options.id) + ")" +
                                    (options.bootstrap ? std::string()
                                                       : ": give --peer-listen HOST:PORT (a node that joins)"));
  }
  const std::string own_peer = own != options.peers.end() ? own->second.str() : std::string();
  KV_ASSIGN_OR_RETURN(options.peer_listen, parse_listen("peer-listen", setting("peer-listen", own_peer)));
  if (options.id > 65535 - 7100 && !settings.count("client-listen")) {
    return Status::invalid_argument("--client-listen is required for ids above " + std::to_string(65535 - 7100));
  }
  const std::string client_listen_default = "127.0.0.1:" + std::to_string(7100 + options.id);
  KV_ASSIGN_OR_RETURN(options.client_listen, parse_listen("client-listen", setting("client-listen", client_listen_default)));
  Endpoint advertised = options.client_listen;
  if (advertised.host == "0.0.0.0" || advertised.host == "::") {
    advertised.host = own != options.peers.end() ? own->second.host : options.peer_listen.host;
  }
  auto advertise_client = parse_endpoint(setting("advertise-client", advertised.str()));
  if (!advertise_client.is_ok()) {
    return Status::invalid_argument("--advertise-client: " + advertise_client.status().message());
  }
  options.advertise_client = *advertise_client;
  if (settings.count("metrics-listen")) {
    KV_ASSIGN_OR_RETURN(options.metrics_listen, parse_listen("metrics-listen", settings["metrics-listen"]));
  }
  options.cluster = setting("cluster", options.cluster);
  KV_ASSIGN_OR_RETURN(options.tick_ms, cli::parse_u64(setting("tick-ms", "10"), "--tick-ms"));
  if (options.tick_ms == 0 || options.tick_ms > 10000) return Status::invalid_argument("--tick-ms expects 1..10000");
  KV_ASSIGN_OR_RETURN(options.threads, cli::parse_u64(setting("threads", "0"), "--threads"));
  if (options.threads > 64) return Status::invalid_argument("--threads expects 0..64");
  KV_ASSIGN_OR_RETURN(options.persists_in_flight, cli::parse_u64(setting("persists-in-flight", "8"), "--persists-in-flight"));
  if (options.persists_in_flight == 0 || options.persists_in_flight > 64) {
    return Status::invalid_argument("--persists-in-flight expects 1..64");
  }
  KV_RETURN_IF_ERROR(parse_snapshot_settings(setting, options));
  const std::string log_level = setting("log-level", "info");
  const std::map<std::string, spdlog::level::level_enum> log_levels = {
      {"error", spdlog::level::err}, {"warn", spdlog::level::warn}, {"info", spdlog::level::info},
      {"debug", spdlog::level::debug}};
  if (!log_levels.count(log_level)) {
    return Status::invalid_argument("--log-level expects error, warn, info or debug, got '" + log_level + "'");
  }
  options.log_level = log_levels.at(log_level);
  options.log_file = setting("log-file", "");
  KV_RETURN_IF_ERROR(parse_security_options(setting, options));
  KV_RETURN_IF_ERROR(parse_redis_options(setting, options));
  KV_ASSIGN_OR_RETURN(options.wal_segment_bytes,
                      cli::parse_u64(setting("wal-segment-bytes", std::to_string(options.wal_segment_bytes)),
                                     "--wal-segment-bytes"));
  if (options.wal_segment_bytes < wal_format::segment_bytes_min ||
      options.wal_segment_bytes > wal_format::segment_bytes_max) {
    return Status::invalid_argument("--wal-segment-bytes expects " + std::to_string(wal_format::segment_bytes_min) +
                                    ".." + std::to_string(wal_format::segment_bytes_max));
  }
  return options;
}

// --- the log --------------------------------------------------------------------------------

// The node's log (spdlog): one line per event,
//   2026-12-05T01:02:03.456Z info [node 1] [term 5] raft node 1: elected leader in term 5
// time (UTC, ms), level, node id, the current term on the raft node's lines, and what
// happened; on stderr or appended to --log-file, each line flushed as it is written (a
// crash loses none). --log-level drops the lines below it. The actors log plain lines
// through callbacks; the level of such a line is chosen here from what it says (level_of).
class NodeLog {
 public:
  static Result<std::unique_ptr<NodeLog>> open(uint64_t id, const std::string& file, spdlog::level::level_enum level) {
    std::shared_ptr<spdlog::sinks::sink> sink;
    try {
      if (file.empty()) {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
      } else {
        sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file);
      }
    } catch (const spdlog::spdlog_ex& error) {
      return Status::invalid_argument("--log-file " + file + ": " + error.what());
    }
    auto logger = std::make_shared<spdlog::logger>("node", std::move(sink));
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l [node " + std::to_string(id) + "] %v", spdlog::pattern_time_type::utc);
    logger->set_level(level);
    logger->flush_on(spdlog::level::trace);
    return std::unique_ptr<NodeLog>(new NodeLog(std::move(logger)));
  }

  void operator()(const std::string& line) { write(spdlog::level::info, line); }
  void error(const std::string& line) { write(spdlog::level::err, line); }
  void write(spdlog::level::level_enum level, const std::string& line) { logger_->log(level, "{}", line); }

  // For the actors' log callbacks.
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) { write(level_of(line), line); };
  }
  std::function<void(uint64_t, const std::string&)> sink_in_term() {
    return [this](uint64_t term, const std::string& line) {
      write(level_of(line), "[term " + std::to_string(term) + "] " + line);
    };
  }

 private:
  explicit NodeLog(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}

  // The noisy lines (one per client connection refused, per frame dropped) are debug; a TLS
  // failure a warning (a client or peer misconfigured); a failed write or stop an error.
  static spdlog::level::level_enum level_of(const std::string& line) {
    auto has = [&line](const char* text) { return line.find(text) != std::string::npos; };
    if (has("persist failed") || has("cannot start") || has("fail-stop")) return spdlog::level::err;
    if (has("TLS handshake failed") || has("did not prove the cluster secret") || has("send queue full")) {
      return spdlog::level::warn;
    }
    if (has("client listener: connection ") || has(": dropped a frame of ")) return spdlog::level::debug;
    return spdlog::level::info;
  }

  std::shared_ptr<spdlog::logger> logger_;
};

// --- the data directory: created only by --bootstrap or --join (actors/node_lifecycle.h) ------

std::string join_endpoints(const NodeOptions& options) {
  std::string endpoints;
  for (const Endpoint& endpoint : options.join) endpoints += (endpoints.empty() ? "" : ",") + endpoint.str();
  return endpoints;
}

// --join: the configuration a running member answers (member_list), its leader's view when it
// can be had.
Result<ClusterView> ask_cluster(const NodeOptions& options) {
  KvClientOptions client_options;
  client_options.operation_timeout_ms = 5000;
  client_options.tls = options.join_tls;
  KvClient client(options.join, client_options);
  auto answer = client.member_list();
  if (!answer.is_ok()) {
    return Status::io_error("--join " + join_endpoints(options) + ": cannot get the cluster's configuration: " +
                            answer.status().message());
  }
  ClusterView view;
  view.answered_by = answer->node_id;
  view.configuration_index = answer->configuration_index;
  view.configuration = answer->configuration;
  return view;
}

// The members' peer addresses as the transport's start list (this node left out).
std::map<uint64_t, Endpoint> peers_of(const std::vector<ConfigurationMember>& members, uint64_t own_id, NodeLog& log) {
  std::map<uint64_t, Endpoint> peers;
  for (const ConfigurationMember& member : members) {
    if (member.node_id == own_id) continue;
    auto endpoint = parse_endpoint(member.peer_address);
    if (endpoint.is_ok()) {
      peers[member.node_id] = *endpoint;
    } else {
      log("node " + std::to_string(member.node_id) + ": peer address '" + member.peer_address + "' ignored: " +
          endpoint.status().message());
    }
  }
  return peers;
}

DataDirectoryOptions data_directory_options(const NodeOptions& options, NodeLog& log) {
  DataDirectoryOptions directory;
  directory.env = &posix_env();
  directory.data_directory = options.data_directory;
  directory.cluster = options.cluster;
  directory.node_id = options.id;
  directory.bootstrap = options.bootstrap;
  directory.bootstrap_members = members_of(options.peers);
  directory.join = !options.join.empty();
  directory.ask_cluster = [&options] { return ask_cluster(options); };
  const std::string endpoints = join_endpoints(options);
  directory.join_source = "--join " + endpoints;
  directory.peer_address = options.peer_listen.str();
  directory.add_member_command = "keyval member add " + std::to_string(options.id) + " --peer " +
                                 options.peer_listen.str() + " --client " + options.advertise_client.str() +
                                 " --endpoints " + endpoints;
  directory.log = log.sink();
  return directory;
}

// --- running ------------------------------------------------------------------------------

// Set from the life cycle's failure callback when a part of the node stops by itself (fail-stop).
struct Failure {
  std::mutex mutex;
  std::string reason;
  std::atomic<bool> failed{false};

  void report(const std::string& what) {
    std::lock_guard<std::mutex> guard(mutex);
    if (failed.exchange(true)) return;
    reason = what;
  }
};

// A stopping leader hands leadership over first (a follower answers not_leader at once and
// stops without delay). The raft node logs the transfer's start and end.
void hand_off_leadership(caf::actor_system& system, const raft_node_actor& raft_node, NodeLog& log) {
  caf::scoped_actor self{system};
  self->request(raft_node, handoff_wait_ms, leader_transfer_atom_v, uint64_t{0})
      .receive(
          [&](uint64_t outcome, uint64_t, uint64_t, std::string& why) {
            if (outcome == static_cast<uint64_t>(TransferOutcome::refused)) log("no leadership hand-off: " + why);
          },
          [&](caf::error& error) { log("leadership hand-off: " + system.render(error)); });
}

int run_node(const NodeOptions& options, NodeLog& log) {
  auto directory = open_data_directory(data_directory_options(options, log));
  if (!directory.is_ok()) {
    log.error("cannot start: " + directory.status().message());
    return exit_failed;
  }
  const NodeIdentity& identity = directory->identity;
  std::map<uint64_t, Endpoint> peers = options.peers;
  if (directory->cluster_view) peers = peers_of(directory->cluster_view->configuration, options.id, log);

  // The signals are taken synchronously by this thread; every thread CAF starts inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Failure failure;  // outlives the actor system: exit functors write to it
  caf::actor_system_config system_config;
  system_config.load<caf::io::middleman>();
  system_config.set("logger.verbosity", caf::atom("quiet"));
  system_config.set("middleman.enable-automatic-connections", false);
  use_node_scheduler(system_config, std::max<size_t>(1, static_cast<size_t>(options.threads)));
  add_message_types(system_config);
  caf::actor_system system{system_config};

  TcpTransportConfig transport_config;
  transport_config.node_id = options.id;
  transport_config.listen_host = options.peer_listen.host;
  transport_config.listen_port = options.peer_listen.port;
  for (const auto& [id, endpoint] : peers) {
    transport_config.peers[id] = TcpPeerAddress{endpoint.host, endpoint.port};
  }
  transport_config.log = log.sink();
  transport_config.cluster_secret = options.cluster_secret;
  transport_config.tls_server = options.peer_tls_server;
  transport_config.tls_client = options.peer_tls_client;
  // A restarted peer is found within half a second (the default backs off to 5 s, which
  // would leave a node that was down a few seconds without its log for as long).
  transport_config.reconnect_backoff_ms_max = 500;
  caf::actor transport = spawn_tcp_transport(system, transport_config);
  if (!transport) {
    log.error("cannot start: cannot listen for peers on " + options.peer_listen.str());
    return exit_failed;
  }

  // Metrics (--metrics-listen) are served from before recovery on: /health says "recovering".
  std::shared_ptr<metrics::NodeMetrics> node_metrics;
  caf::actor metrics_listener;
  if (options.metrics_listen) {
    node_metrics = std::make_shared<metrics::NodeMetrics>();
    MetricsListenerConfig metrics_config;
    metrics_config.host = options.metrics_listen->host;
    metrics_config.port = options.metrics_listen->port;
    metrics_config.metrics = node_metrics;
    metrics_config.log = log.sink();
    std::string why;
    metrics_listener = spawn_metrics_listener(system, metrics_config, &why);
    if (!metrics_listener) {
      log("cannot start: " + why);
      caf::anon_send_exit(transport, caf::exit_reason::user_shutdown);
      return exit_failed;
    }
  }

  NodeConfig config;
  config.persistence.data_directory = options.data_directory;
  config.persistence.writer.metrics = node_metrics;
  config.raft.metrics = node_metrics;
  config.state_machine.metrics = node_metrics;
  config.persistence.detached = true;
  config.on_network_thread = options.threads == 0;
  config.persistence.log = log.sink();
  config.persistence.recovery.wal.segment_bytes = options.wal_segment_bytes;
  config.persistence.recovery.bootstrap = directory->bootstrap;
  config.raft.raft.node_id = options.id;
  // An older directory's voters (IDENTITY), used while its log holds no configuration; empty
  // for one made by --bootstrap or --join, whose log (or the leader's) has the configuration.
  config.raft.raft.voters = identity.voters;
  config.raft.transport_follows_configuration = true;
  config.raft.raft.random_seed = random_client_id();
  config.raft.raft.log_tail_entries = options.log_tail_entries;
  config.raft.persists_in_flight_max = static_cast<uint32_t>(options.persists_in_flight);
  config.raft.snapshot_entries = options.snapshot_entries;
  config.raft.snapshot_bytes = options.snapshot_bytes;
  config.raft.snapshot_send_bytes_per_second = options.snapshot_send_rate;
  config.raft.members = members_of(options.peers);
  config.raft.client_address = options.advertise_client.str();
  config.raft.tick_interval = std::chrono::milliseconds(options.tick_ms);
  config.raft.transport = transport;
  config.raft.log_in_term = log.sink_in_term();

  NodeLifecycleConfig lifecycle_config;
  lifecycle_config.transport = transport;
  lifecycle_config.failed = [&failure](const std::string& actor, const std::string& reason) {
    failure.report(actor + " stopped: " + reason);
  };
  lifecycle_config.hand_off = [&system, &log](const NodeHandles& handles) {
    hand_off_leadership(system, handles.raft_node, log);
  };
  NodeLifecycle lifecycle(system, std::move(lifecycle_config));
  lifecycle.supervise_client_side(metrics_listener, "metrics listener");  // none without --metrics-listen

  log("starting " + identity.describe() + " in " + options.data_directory);
  const double started_at = cli::monotonic_seconds();
  std::promise<Result<NodeHandles>> started;
  auto start_result = started.get_future();
  lifecycle.start(std::move(config), [&started](Result<NodeHandles> result) { started.set_value(std::move(result)); });
  bool stop_requested = false;
  timespec no_wait{0, 0};
  while (start_result.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    if (::sigtimedwait(&stop_signals, nullptr, &no_wait) > 0) stop_requested = true;
  }
  Result<NodeHandles> handles = start_result.get();
  if (!handles.is_ok()) {
    log.error("cannot start: " + handles.status().to_string());
    lifecycle.stop(StopMode::clean_without_hand_off);  // only the transport runs
    return exit_failed;
  }
  const double recovery_ms = (cli::monotonic_seconds() - started_at) * 1e3;
  char recovered[200];
  std::snprintf(recovered, sizeof recovered, "started in %.1f ms: log %llu..%llu, term %llu, applied %llu", recovery_ms,
                static_cast<unsigned long long>(handles->recovered.first_index),
                static_cast<unsigned long long>(handles->recovered.last_index),
                static_cast<unsigned long long>(handles->recovered.metadata.current_term),
                static_cast<unsigned long long>(handles->applied_index));
  log(recovered);

  // The Redis listener binds before the client listener: a port that cannot be bound stops the
  // node before any broker of its own was spawned (a broker spawned and stopped at once leaves
  // CAF's doorman behind, which LeakSanitizer reports).
  if (options.redis_listen) {
    RedisListenerConfig redis_config;
    redis_config.host = options.redis_listen->host;
    redis_config.port = options.redis_listen->port;
    redis_config.node_id = options.id;
    redis_config.password = options.redis_password;
    redis_config.log = log.sink();
    caf::actor redis = spawn_redis_listener(system, redis_config, handles->gateway);
    if (!redis) {
      log.error("cannot start: cannot serve the Redis protocol on " + options.redis_listen->str());
      lifecycle.stop(StopMode::clean_without_hand_off);
      return exit_failed;
    }
    lifecycle.supervise_client_side(redis, "redis listener");
  }
  ClientListenerConfig listener_config;
  listener_config.host = options.client_listen.host;
  listener_config.port = options.client_listen.port;
  listener_config.log = log.sink();
  listener_config.tls = options.client_tls;
  listener_config.metrics = node_metrics;
  caf::actor listener = spawn_client_listener(system, listener_config, handles->gateway);
  if (!listener) {
    log.error("cannot start: cannot listen for clients on " + options.client_listen.str());
    lifecycle.stop(StopMode::clean_without_hand_off);
    return exit_failed;
  }
  lifecycle.supervise_client_side(listener, "client listener");
  log("serving clients on " + options.client_listen.str() + ", peers on " + options.peer_listen.str());
  if (node_metrics) node_metrics->serving.set(1);

  int exit_code = cli::exit_ok;
  StopMode stop_mode = StopMode::clean_without_hand_off;  // a stop asked for while it started
  timespec poll_interval{0, 100 * 1000 * 1000};
  while (!stop_requested) {
    siginfo_t info{};
    if (::sigtimedwait(&stop_signals, &info, &poll_interval) > 0) {
      log(std::string(info.si_signo == SIGTERM ? "SIGTERM" : "SIGINT") + ": shutting down");
      stop_mode = StopMode::clean;  // the leader hands leadership over first
      break;
    }
    if (failure.failed) {
      std::lock_guard<std::mutex> guard(failure.mutex);
      log.error(failure.reason + "; shutting down (fail-stop)");
      exit_code = exit_failed;
      stop_mode = StopMode::crash;  // a failed node marks nothing clean
      break;
    }
  }
  lifecycle.stop(stop_mode);
  system.await_all_actors_done();
  log(exit_code == cli::exit_ok ? "stopped" : "stopped after a failure");
  return exit_code;
}

}  // namespace

int node_main(const std::vector<std::string>& args) {
  cli::Flags flags;
  if (auto exit = command().parse(args, flags)) return *exit;
  auto options = parse_options(flags);
  if (!options.is_ok()) return cli::usage_error(command_name, options.status().message());
  auto log = NodeLog::open(options->id, options->log_file, options->log_level);
  if (!log.is_ok()) return cli::usage_error(command_name, log.status().message());
  return run_node(*options, **log);
}

}  // namespace keyval::commands
