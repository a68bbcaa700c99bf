// keyval bench kv: load on a running cluster, shaped like etcd's benchmark tool
// (`benchmark put --clients --total --val-size`): C clients, each its own session and
// connection with one request in flight, N operations in total. The clients share one thread
// (a ClientLoop, client/client_loop.h: epoll over their sockets, KvClient's policy and errors),
// so the load generator takes little of the CPU the nodes under test share with it; with TLS
// each client is a KvClient on a thread of its own.
//
//   keyval bench kv [--endpoints HOST:PORT,...] [--clients C] [--ops N] [--value-bytes B]
//                   [--op put|get] [--keys K] [--key-bytes 16] [--timeout-ms T]
//                   [--tls-ca F [--tls-cert F --tls-key F]]   TLS to the nodes (docs/SECURITY.md)
//
// Operation i uses key number i mod K, written as "k" + zero-padded number, --key-bytes long.
// --op get first writes those K keys (not timed) so every read finds its key; a read that
// finds none counts as an error. Latency is per operation, retries included; ops_per_s counts
// the operations that succeeded over the timed phase's wall time. Last line: one JSON object.
// Errors are counted by cause (status and message, the most frequent first) on stderr and in
// the JSON's errors_by_cause ([{"status","message","count"}], at most 32 distinct causes).
// Before the timed phase every client opens its connection and finds the leader with one
// untimed linearizable read of a key outside the workload; the clock starts once all are
// ready. A run longer than 5 s prints a progress line on stderr every 5 s.
// Exit 0 when any operation succeeded (errors are in the JSON), 2 usage, 3 when none did or
// the keys could not be written beforehand.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "apps/cli.h"
#include "apps/commands.h"
#include "client/client_loop.h"
#include "client/kv_client.h"
#include "storage/kv_command.h"

namespace keyval::commands {
namespace {

const char* const command_name = "bench kv";
const char* const endpoints_default = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";
constexpr int exit_unavailable = 3;
constexpr uint64_t clients_max = 1024;
constexpr uint64_t ops_max = 100'000'000;
constexpr uint64_t value_bytes_max = 1u << 20;  // well under client_message_bytes_max

struct BenchConfig {
  std::vector<Endpoint> endpoints;
  uint64_t clients = 16;
  uint64_t ops = 10000;
  uint64_t value_bytes = 256;
  uint64_t keys = 1000;
  uint64_t key_bytes = 16;
  bool get = false;
  KvClientOptions options;
};

// What one client thread measured.
struct ClientTally {
  std::vector<double> latencies_ms;  // of the operations that succeeded
  uint64_t errors = 0;
  std::string first_error;
  // Errors counted by (status, message); at most causes_max distinct ones, the rest under "other".
  std::map<std::pair<std::string, std::string>, uint64_t> causes;
};

constexpr size_t causes_max = 32;

using Causes = std::map<std::pair<std::string, std::string>, uint64_t>;

void count_cause(Causes& causes, std::pair<std::string, std::string> cause, uint64_t count) {
  if (causes.size() >= causes_max && !causes.count(cause)) cause = {"other", "(more distinct errors than listed)"};
  causes[cause] += count;
}

cli::Command command() {
  const BenchConfig defaults;
  return cli::Command(command_name, "closed-loop put or get load on a running cluster: throughput and latency")
      .value("endpoints", endpoints_default, "client addresses of the cluster's nodes, HOST:PORT,...")
      .value("clients", std::to_string(defaults.clients), "concurrent clients (one request in flight each), 1.." + std::to_string(clients_max))
      .value("ops", std::to_string(defaults.ops), "operations in all")
      .value("value-bytes", std::to_string(defaults.value_bytes), "bytes of each value")
      .value("op", "put", "put or get (get writes the keys first)")
      .value("keys", std::to_string(defaults.keys), "distinct keys")
      .value("key-bytes", std::to_string(defaults.key_bytes), "bytes of each key")
      .value("timeout-ms", "5000", "one operation, retries included")
      .value("tls-ca", "", "CA of the nodes' certificates (docs/SECURITY.md)")
      .value("tls-cert", "", "this client's certificate")
      .value("tls-key", "", "the key of --tls-cert");
}

Result<BenchConfig> parse_config(const cli::Flags& flags) {
  BenchConfig config;
  KV_ASSIGN_OR_RETURN(config.endpoints, parse_endpoints(flags.get("endpoints", endpoints_default)));
  KV_ASSIGN_OR_RETURN(config.clients, flags.get_u64("clients", config.clients));
  KV_ASSIGN_OR_RETURN(config.ops, flags.get_u64("ops", config.ops));
  KV_ASSIGN_OR_RETURN(config.value_bytes, flags.get_u64("value-bytes", config.value_bytes));
  KV_ASSIGN_OR_RETURN(config.keys, flags.get_u64("keys", config.keys));
  KV_ASSIGN_OR_RETURN(config.key_bytes, flags.get_u64("key-bytes", config.key_bytes));
  KV_ASSIGN_OR_RETURN(config.options.operation_timeout_ms, flags.get_u64("timeout-ms", 5000));
  KV_ASSIGN_OR_RETURN(config.options.tls, client_tls_from_flags(flags));
  std::string op = flags.get("op", "put");
  if (op != "put" && op != "get") return Status::invalid_argument("--op expects put or get, got '" + op + "'");
  config.get = op == "get";
  if (config.clients == 0 || config.clients > clients_max) {
    return Status::invalid_argument("--clients expects 1.." + std::to_string(clients_max));
  }
  if (config.ops == 0 || config.ops > ops_max) return Status::invalid_argument("--ops expects 1.." + std::to_string(ops_max));
  if (config.value_bytes > value_bytes_max) {
    return Status::invalid_argument("--value-bytes is over " + std::to_string(value_bytes_max));
  }
  if (config.keys == 0) return Status::invalid_argument("--keys must be at least 1");
  if (config.key_bytes > kv_key_bytes_max || config.key_bytes < std::to_string(config.keys - 1).size() + 1) {
    return Status::invalid_argument("--key-bytes " + std::to_string(config.key_bytes) + " cannot hold " +
                                    std::to_string(config.keys) + " keys (at most " +
                                    std::to_string(kv_key_bytes_max) + ")");
  }
  if (config.options.operation_timeout_ms == 0) return Status::invalid_argument("--timeout-ms must be at least 1");
  config.options.request_timeout_ms = std::min<uint64_t>(1000, config.options.operation_timeout_ms);
  return config;
}

// The timed phase's shared state: the clients' start line and the progress count.
struct Phase {
  std::mutex mutex;
  std::condition_variable changed;
  uint64_t ready = 0;   // clients connected and waiting at the start line
  bool started = false;
  std::atomic<uint64_t> next{0};  // the next operation to take
  std::atomic<uint64_t> done{0};  // operations finished (ok or not)
};

// Counts one operation's outcome; `key` of a get that found nothing is an error.
void record(const BenchConfig& config, bool write_keys, const std::string& key, const Result<ClientResponse>& response,
            double elapsed_ms, ClientTally* tally) {
  Status failure = response.status();
  if (failure.is_ok() && config.get && !write_keys && !response->found) {
    failure = Status::not_found("get '" + key + "': absent, though written beforehand");
  }
  if (failure.is_ok()) {
    tally->latencies_ms.push_back(elapsed_ms);
    return;
  }
  if (tally->errors++ == 0) tally->first_error = failure.message();
  count_cause(tally->causes, {code_name(failure.code()), failure.message()}, 1);
}

// Operation i of a phase: a put of key i mod K, or a get of it.
ClientRequest operation(const BenchConfig& config, bool write_keys, uint64_t i, const std::string& value) {
  ClientRequest request;
  request.key = cli::bench_key(i % config.keys, config.key_bytes);
  if (write_keys || !config.get) {
    request.op = ClientOp::put;
    request.value = value;
    request.blind = true;  // as KvClient::put
  } else {
    request.op = ClientOp::get;
  }
  return request;
}

// The key no operation uses, read once by every client before the timed phase.
const char* const warmup_key = "bench-kv-warmup";

// Runs operations taken from `phase.next` until `total`; `write_keys` makes every op a put.
void client_loop(const BenchConfig& config, Phase& phase, uint64_t total, bool write_keys, ClientTally* tally) {
  KvClient client(config.endpoints, config.options);
  // Untimed: connect and learn the leader (the answer itself does not matter; a failure here
  // shows again, counted, in the timed operations).
  (void)client.get(std::string(warmup_key));
  {
    std::unique_lock<std::mutex> lock(phase.mutex);
    ++phase.ready;
    phase.changed.notify_all();
    phase.changed.wait(lock, [&] { return phase.started; });
  }
  const std::string value(config.value_bytes, 'v');
  for (uint64_t i = phase.next++; i < total; i = phase.next++) {
    const ClientRequest request = operation(config, write_keys, i, value);
    double start = cli::monotonic_seconds();
    auto response = request.op == ClientOp::put ? client.put(request.key, request.value) : client.get(request.key);
    record(config, write_keys, request.key, response, (cli::monotonic_seconds() - start) * 1e3, tally);
    ++phase.done;
  }
}

struct ClientsRun {
  std::vector<ClientTally> tallies;
  double seconds = 0;  // from the start line (every client connected) to the last answer
};

// Prints a progress line on stderr every 5 s until `done` reaches `total`.
void report_progress(const std::atomic<uint64_t>& done, uint64_t total, double start, const std::string& label) {
  constexpr auto progress_every = std::chrono::seconds(5);
  auto next_progress = std::chrono::steady_clock::now() + progress_every;
  while (done.load() < total) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() < next_progress) continue;
    next_progress += progress_every;
    const uint64_t so_far = done.load();
    const double elapsed = cli::monotonic_seconds() - start;
    std::cerr << "keyval bench kv: " << label << " " << so_far << " of " << total << " ops, "
              << static_cast<uint64_t>(elapsed > 0 ? so_far / elapsed : 0) << " ops/s so far\n";
  }
}

// TLS: runs `total` operations on config.clients threads, each a KvClient, timed once every
// client is connected; `label` names the phase in the progress lines.
ClientsRun run_client_threads(const BenchConfig& config, uint64_t total, bool write_keys, const std::string& label) {
  ClientsRun run;
  run.tallies.resize(config.clients);
  Phase phase;
  std::vector<std::thread> threads;
  for (uint64_t c = 0; c < config.clients; ++c) {
    threads.emplace_back(client_loop, std::cref(config), std::ref(phase), total, write_keys, &run.tallies[c]);
  }
  double start = 0;
  {
    std::unique_lock<std::mutex> lock(phase.mutex);
    phase.changed.wait(lock, [&] { return phase.ready == config.clients; });
    start = cli::monotonic_seconds();
    phase.started = true;
    phase.changed.notify_all();
  }
  report_progress(phase.done, total, start, label);
  for (std::thread& thread : threads) thread.join();
  run.seconds = cli::monotonic_seconds() - start;
  return run;
}

// Plaintext: the same on one thread, every client of one ClientLoop (client/client_loop.h),
// already connected (the loop's first run reads warmup_key once per client).
ClientsRun run_client_loop(ClientLoop& loop, const BenchConfig& config, uint64_t total, bool write_keys,
                           const std::string& label) {
  ClientsRun run;
  run.tallies.resize(config.clients);
  std::vector<double> started(config.clients, 0);
  std::atomic<uint64_t> done{0};
  const std::string value(config.value_bytes, 'v');
  uint64_t next = 0;
  const double start = cli::monotonic_seconds();
  std::thread progress(report_progress, std::cref(done), total, start, label);
  Status looped = loop.run(
      [&](size_t client, ClientRequest* request) {
        if (next >= total) return false;
        *request = operation(config, write_keys, next++, value);
        started[client] = cli::monotonic_seconds();
        return true;
      },
      [&](size_t client, const ClientRequest& request, Result<ClientResponse> outcome) {
        record(config, write_keys, request.key, outcome, (cli::monotonic_seconds() - started[client]) * 1e3,
               &run.tallies[client]);
        ++done;
      });
  run.seconds = cli::monotonic_seconds() - start;
  if (!looped.is_ok()) {  // the operations not begun count as failed, with the loop's error
    for (; next < total; ++next) record(config, write_keys, "", looped, 0, &run.tallies[0]);
    done = total;
  }
  progress.join();
  return run;
}

}  // namespace

int bench_kv_main(const std::vector<std::string>& args) {
  cli::Flags flags;
  if (auto exit = command().parse(args, flags)) return *exit;
  auto config = parse_config(flags);
  if (!config.is_ok()) return cli::usage_error(command_name, config.status().message());
  // Plaintext clients share one thread (a ClientLoop); TLS clients are threads of their own.
  std::unique_ptr<ClientLoop> loop;
  if (!config->options.tls) {
    loop = std::make_unique<ClientLoop>(config->endpoints, config->options, config->clients);
    std::vector<bool> warmed(config->clients, false);
    (void)loop->run(
        [&](size_t client, ClientRequest* request) {  // untimed: connect and learn the leader
          if (warmed[client]) return false;
          warmed[client] = true;
          request->op = ClientOp::get;
          request->key = warmup_key;
          return true;
        },
        [](size_t, const ClientRequest&, Result<ClientResponse>) {});
  }
  auto run_clients = [&](uint64_t total, bool write_keys, const std::string& label) {
    return loop ? run_client_loop(*loop, *config, total, write_keys, label)
                : run_client_threads(*config, total, write_keys, label);
  };
  if (config->get) {
    for (const ClientTally& tally : run_clients(config->keys, true, "writing the keys:").tallies) {
      if (tally.errors != 0) {
        std::cerr << "keyval bench kv: writing the keys to read failed: " << tally.first_error << "\n";
        return exit_unavailable;
      }
    }
  }
  ClientsRun run = run_clients(config->ops, false, config->get ? "get:" : "put:");
  const std::vector<ClientTally>& tallies = run.tallies;
  const double seconds = run.seconds;
  std::vector<double> latencies;
  uint64_t errors = 0;
  std::string first_error;
  Causes causes;
  for (const ClientTally& tally : tallies) {
    latencies.insert(latencies.end(), tally.latencies_ms.begin(), tally.latencies_ms.end());
    if (tally.errors != 0 && first_error.empty()) first_error = tally.first_error;
    errors += tally.errors;
    for (const auto& [cause, count] : tally.causes) count_cause(causes, cause, count);
  }
  // The causes, most frequent first: what the errors were, not only how many.
  std::vector<std::pair<uint64_t, std::pair<std::string, std::string>>> by_count;
  for (const auto& [cause, count] : causes) by_count.emplace_back(count, cause);
  std::stable_sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  cli::Json causes_json = cli::Json::array();
  for (const auto& [count, cause] : by_count) {
    causes_json.push_back(cli::JsonLine().add("status", cause.first).add("message", cause.second).add("count", count).json());
  }
  std::sort(latencies.begin(), latencies.end());
  const double ops_per_s = seconds > 0 ? latencies.size() / seconds : 0;
  const std::string op = config->get ? "get" : "put";
  if (errors != 0) {
    std::cerr << "keyval bench kv: " << errors << " operations failed; first: " << first_error << "\n";
    for (const auto& [count, cause] : by_count) {
      std::cerr << "  " << count << " x " << cause.first << ": " << cause.second << "\n";
    }
  }
  std::cout << op << ": " << config->ops << " ops by " << config->clients << " clients, " << config->value_bytes
            << " B values: " << ops_per_s << " ops/s, p50 " << cli::percentile(latencies, 0.5) << " ms, p99 "
            << cli::percentile(latencies, 0.99) << " ms, " << errors << " errors\n";
  cli::JsonLine line;
  line.add("bench", "kv").add("op", op).add("clients", config->clients).add("ops", config->ops)
      .add("ok", static_cast<uint64_t>(latencies.size())).add("errors", errors).add("value_bytes", config->value_bytes)
      .add("key_bytes", config->key_bytes).add("keys", config->keys).add("seconds", seconds)
      .add("ops_per_s", ops_per_s).add("p50_ms", cli::percentile(latencies, 0.5))
      .add("p90_ms", cli::percentile(latencies, 0.9)).add("p99_ms", cli::percentile(latencies, 0.99)).add("max_ms", latencies.empty() ? 0.0 : latencies.back())
      .add("errors_by_cause", causes_json);
  std::cout << line.str() << std::endl;
  return latencies.empty() ? exit_unavailable : cli::exit_ok;
}

}  // namespace keyval::commands
