// keyval bench snapshot / keyval bench size: the snapshot issue's speed and size figures, each
// on its own 3-node cluster of real `keyval node` processes on 127.0.0.1 (apps/local_cluster.h)
// in a temporary directory (removed at the end unless --keep).
//
//   keyval bench snapshot [--keys 1000000] [--value-bytes 100] [--clients 64] [--window-s 5]
//                         [--dir D] [--keep]
//     1. writes --keys keys (automatic snapshots off: --snapshot-entries above the load);
//     2. puts on those keys for --window-s seconds: their latency without a snapshot;
//     3. the same load again while a backup (`keyval snapshot save`) makes the leader take a
//        snapshot: the leader's own "snapshot taken ... in X ms" line, and the puts' latency
//        while the snapshot was being taken;
//     4. InstallSnapshot: a follower is killed, the others move past the log tail and take a
//        snapshot, the follower is restarted: the leader's "snapshot N sent to node F: B bytes
//        in S s" line gives the transfer rate, and the time until the follower has applied;
//     5. the backup restored (`keyval snapshot restore`'s code) into three fresh data
//        directories, timed, then the restored cluster started and timed until it serves a read.
//
//   keyval bench size [--puts 2000000] [--keys 10000] [--value-bytes 100] [--clients 64]
//                     [--checkpoints 500000,1000000,2000000] [--dir D] [--keep] [-- NODE FLAGS]
//     puts on --keys keys with the node's default snapshot settings; at each checkpoint every
//     node's data directory size (allocated blocks, what `du` shows), resident memory (VmRSS)
//     and peak (VmHWM); at the end one follower is killed with SIGKILL and restarted: the time
//     from its start until it answers a status with its applied index at the commit index it
//     had before the kill.
//
// Figures go to stdout as text lines; the last line is one JSON object.
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "apps/cli.h"
#include "apps/commands.h"
#include "client/kv_client.h"
#include "apps/local_cluster.h"
#include "apps/peers.h"
#include "apps/snapshot_restore.h"
#include "storage/env.h"

namespace keyval::commands {
namespace {

constexpr int exit_failed = 3;

// Keys as `keyval bench kv` names them (16 bytes).
constexpr uint64_t key_bytes = 16;

std::string key_name(uint64_t number) { return cli::bench_key(number, key_bytes); }

// The p99 of `values` (any order).
double p99(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return cli::percentile(values, 0.99);
}

// Closed-loop put clients over keys [0, keys), each put timed on the monotonic clock.
class PutLoad {
 public:
  struct Sample {
    double start;       // cli::monotonic_seconds()
    double latency_ms;
  };

  PutLoad(std::vector<Endpoint> endpoints, uint64_t clients, uint64_t keys, uint64_t value_bytes,
          uint64_t total = 0)
      : keys_(keys), total_(total) {
    for (uint64_t c = 0; c < clients; ++c) {
      threads_.emplace_back([this, endpoints, value_bytes, c] { run(endpoints, value_bytes, c); });
    }
  }
  ~PutLoad() { stop(); }

  void stop() {
    stop_ = true;
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }
  uint64_t done() const { return done_.load(); }
  uint64_t errors() const { return errors_.load(); }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mutex_);
    return first_error_;
  }
  // Latencies of the puts that started in [from, to).
  std::vector<double> latencies(double from, double to) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<double> out;
    for (const Sample& sample : samples_) {
      if (sample.start >= from && sample.start < to) out.push_back(sample.latency_ms);
    }
    return out;
  }

 private:
  void run(const std::vector<Endpoint>& endpoints, uint64_t value_bytes, uint64_t client) {
    KvClientOptions options;
    options.operation_timeout_ms = 20000;
    KvClient kv(endpoints, options);
    std::mt19937_64 random(client + 1);
    std::string value(value_bytes, 'v');
    std::vector<Sample> local;
    while (!stop_) {
      uint64_t key;
      if (total_ > 0) {  // the load phase: every key once, in order
        key = next_++;
        if (key >= total_) break;
        key %= keys_;
      } else {
        key = random() % keys_;
      }
      const double start = cli::monotonic_seconds();
      value[0] = static_cast<char>('a' + key % 26);
      auto response = kv.put(key_name(key), value);
      const double latency_ms = (cli::monotonic_seconds() - start) * 1e3;
      if (response.is_ok()) {
        local.push_back({start, latency_ms});
        ++done_;
      } else {
        std::lock_guard<std::mutex> lock(mutex_);
        if (errors_++ == 0) first_error_ = response.status().to_string();
      }
      if (local.size() >= 256) flush(local);
    }
    flush(local);
  }
  void flush(std::vector<Sample>& local) {
    std::lock_guard<std::mutex> lock(mutex_);
    samples_.insert(samples_.end(), local.begin(), local.end());
    local.clear();
  }

  uint64_t keys_;
  uint64_t total_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> next_{0};
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> errors_{0};
  std::mutex mutex_;
  std::string first_error_;
  std::vector<Sample> samples_;
  std::vector<std::thread> threads_;
};

// Bytes of disk a directory tree takes (allocated blocks, as du shows).
uint64_t disk_bytes(const std::string& directory) {
  uint64_t total = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(directory, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    struct stat info;
    if (::lstat(it->path().c_str(), &info) == 0) total += static_cast<uint64_t>(info.st_blocks) * 512;
  }
  return total;
}

// A field of /proc/PID/status in bytes (VmRSS, VmHWM); 0 when unreadable.
uint64_t proc_status_bytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream words(line.substr(field.size() + 1));
      uint64_t kib = 0;
      words >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

// The number after `prefix` in `line` (0 when absent).
double number_after(const std::string& line, const std::string& prefix) {
  auto at = line.find(prefix);
  if (at == std::string::npos) return 0;
  return std::strtod(line.c_str() + at + prefix.size(), nullptr);
}

// Polls `check` every 5 ms until it holds or timeout_s passes; the seconds it took, or -1.
template <typename Check>
double wait_until(Check check, double timeout_s) {
  const double start = cli::monotonic_seconds();
  while (cli::monotonic_seconds() - start < timeout_s) {
    if (check()) return cli::monotonic_seconds() - start;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

struct Common {
  uint64_t value_bytes = 100;
  uint64_t clients = 64;
  std::string directory;
  bool keep = false;
};

Result<Common> parse_common(const cli::Flags& flags, const std::string& purpose) {
  Common common;
  KV_ASSIGN_OR_RETURN(common.value_bytes, flags.get_u64("value-bytes", common.value_bytes));
  KV_ASSIGN_OR_RETURN(common.clients, flags.get_u64("clients", common.clients));
  if (common.clients == 0 || common.clients > 1024) return Status::invalid_argument("--clients expects 1..1024");
  if (common.value_bytes == 0 || common.value_bytes > (1u << 20)) {
    return Status::invalid_argument("--value-bytes expects 1..1048576");
  }
  common.keep = flags.has("keep");
  common.directory = flags.get("dir");
  if (common.directory.empty()) {
    KV_ASSIGN_OR_RETURN(common.directory, cli::make_temp_directory(purpose));
  } else {
    std::error_code error;
    std::filesystem::create_directories(common.directory, error);
    if (error) return Status::invalid_argument("--dir " + common.directory + ": " + error.message());
    if (!std::filesystem::is_empty(common.directory)) {
      return Status::invalid_argument("--dir " + common.directory + " is not empty");
    }
  }
  return common;
}

void finish(const Common& common) {
  if (common.keep) {
    std::cerr << "kept " << common.directory << "\n";
  } else {
    std::error_code error;
    std::filesystem::remove_all(common.directory, error);
  }
}

int fail(const std::string& command, const std::string& what) {
  std::cerr << "keyval " << command << ": " << what << "\n";
  return exit_failed;
}

// The node's view, or nullopt when it does not answer.
std::optional<ClientResponse> node_status(LocalCluster& cluster, uint64_t id) {
  auto views = cluster.status(300);
  if (id == 0 || id > views.size() || !views[id - 1].is_ok()) return std::nullopt;
  return *views[id - 1];
}

}  // namespace

int bench_snapshot_main(const std::vector<std::string>& args) {
  const std::string command = "bench snapshot";
  const cli::Command spec =
      cli::Command(command, "snapshot take time and put p99 under it, InstallSnapshot rate, restore (3 nodes)")
          .value("keys", "1000000", "keys written first")
          .value("window-s", "5", "seconds of puts measured with and without a snapshot")
          .value("value-bytes", "100", "bytes of each value, 1..1048576")
          .value("clients", "64", "concurrent clients, 1..1024")
          .value("dir", "a new temporary directory", "the cluster's directory (must be empty)")
          .flag("keep", "keep the directory");
  cli::Flags flags;
  if (auto exit = spec.parse(args, flags)) return *exit;
  auto keys = flags.get_u64("keys", 1'000'000);
  auto window_s = flags.get_u64("window-s", 5);
  if (!keys.is_ok()) return cli::usage_error(command, keys.status().message());
  if (!window_s.is_ok()) return cli::usage_error(command, window_s.status().message());
  if (*keys == 0) return cli::usage_error(command, "--keys must be at least 1");
  if (*window_s == 0) return cli::usage_error(command, "--window-s must be at least 1");
  auto common = parse_common(flags, "bench-snapshot");
  if (!common.is_ok()) return cli::usage_error(command, common.status().message());

  LocalClusterOptions options;
  options.directory = common->directory + "/cluster";
  // Snapshots only when asked (by the backup), so the one measured is the only one running.
  const uint64_t no_automatic = *keys * 4 + 1'000'000;
  options.extra_node_flags = {"--snapshot-entries", std::to_string(no_automatic), "--snapshot-bytes", "0"};
  auto cluster = LocalCluster::create(options);
  if (!cluster.is_ok()) return fail(command, cluster.status().to_string());
  if (Status started = (*cluster)->start_all(); !started.is_ok()) return fail(command, started.to_string());
  auto leader = (*cluster)->wait_for_leader(20000);
  if (!leader.is_ok()) return fail(command, "no leader: " + leader.status().to_string());
  const std::vector<Endpoint> endpoints = (*cluster)->client_endpoints();

  // 1. The state.
  double start = cli::monotonic_seconds();
  {
    PutLoad load(endpoints, common->clients, *keys, common->value_bytes, *keys);
    while (load.done() + load.errors() < *keys && load.errors() < 1000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    load.stop();
    if (load.errors() != 0) return fail(command, "loading the keys: " + load.first_error());
  }
  const double load_s = cli::monotonic_seconds() - start;
  std::cout << "loaded " << *keys << " keys of " << common->value_bytes << " B in " << load_s << " s ("
            << *keys / load_s << " puts/s)\n";

  // 2 and 3. Put latency without, then while taking, a snapshot.
  const std::string backup = common->directory + "/backup.snap";
  double window_start = cli::monotonic_seconds();
  PutLoad load(endpoints, common->clients, *keys, common->value_bytes);
  std::this_thread::sleep_for(std::chrono::seconds(*window_s));
  const double save_start = cli::monotonic_seconds();
  const uint64_t leader_log_from = (*cluster)->log_bytes(*leader);
  KvClient kv(endpoints);
  auto saved = kv.snapshot_save(backup);
  const double save_s = cli::monotonic_seconds() - save_start;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  load.stop();
  if (!saved.is_ok()) return fail(command, "backup: " + saved.status().to_string());
  const uint64_t snapshot_leader = kv.leader();
  std::string taken = (*cluster)->last_log_line(snapshot_leader, "snapshot taken at index",
                                                snapshot_leader == *leader ? leader_log_from : 0);
  const double take_ms = number_after(taken, " in ");
  if (taken.empty() || take_ms <= 0) return fail(command, "no 'snapshot taken' line in node " +
                                                          std::to_string(snapshot_leader) + "'s log");
  const std::vector<double> without = load.latencies(window_start + 0.5, save_start);
  const std::vector<double> during = load.latencies(save_start, save_start + take_ms / 1e3);
  const double p99_without = p99(without), p99_during = p99(during);
  std::cout << "snapshot of " << saved->keys << " keys, " << saved->file_bytes << " B taken in " << take_ms
            << " ms under " << common->clients << " put clients; backup saved in " << save_s << " s\n"
            << "put p99 without a snapshot " << p99_without << " ms (" << without.size() << " puts), while taking it "
            << p99_during << " ms (" << during.size() << " puts): ratio " << (p99_without > 0 ? p99_during / p99_without : 0)
            << "\n";

  // 4. InstallSnapshot: a follower misses more than the log tail.
  uint64_t follower = snapshot_leader == 1 ? 2 : 1;
  (*cluster)->signal(follower, SIGKILL);
  {
    const uint64_t tail_puts = 6000;  // past the node's default --log-tail-entries (5000)
    PutLoad tail(endpoints, common->clients, *keys, common->value_bytes, tail_puts);
    while (tail.done() + tail.errors() < tail_puts && tail.errors() < 1000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    tail.stop();
    if (tail.errors() != 0) return fail(command, "puts while the follower is down: " + tail.first_error());
  }
  auto second = kv.snapshot_save(common->directory + "/backup2.snap");  // the leader compacts past the tail
  if (!second.is_ok()) return fail(command, "second snapshot: " + second.status().to_string());
  const uint64_t sender = kv.leader();
  auto sender_view = node_status(**cluster, sender);
  if (!sender_view) return fail(command, "the leader stopped answering");
  const uint64_t target = sender_view->commit_index;
  const uint64_t sender_log_from = (*cluster)->log_bytes(sender);
  const uint64_t follower_log_from = (*cluster)->log_bytes(follower);
  if (Status started = (*cluster)->start(follower); !started.is_ok()) return fail(command, started.to_string());
  const std::string sent_needle = " sent to node " + std::to_string(follower) + ":";
  std::string sent;
  double caught_up_s = wait_until(
      [&] {
        if (sent.empty()) sent = (*cluster)->last_log_line(sender, sent_needle, sender_log_from);
        if (sent.empty()) return false;
        auto view = node_status(**cluster, follower);
        return view && view->applied_index >= target;
      },
      120);
  if (sent.empty()) return fail(command, "the leader sent node " + std::to_string(follower) + " no snapshot");
  if (caught_up_s < 0) return fail(command, "node " + std::to_string(follower) + " did not catch up in 120 s");
  const double sent_bytes = number_after(sent, sent_needle);
  const double sent_s = number_after(sent, " B in ") > 0 ? number_after(sent, " B in ") : number_after(sent, "bytes in ");
  const std::string installed = (*cluster)->last_log_line(follower, "installed snapshot", follower_log_from);
  const double install_mb_s = sent_s > 0 ? sent_bytes / sent_s / 1e6 : 0;
  std::cout << "InstallSnapshot to node " << follower << ": " << sent_bytes << " B in " << sent_s << " s ("
            << install_mb_s << " MB/s); the follower applied " << target << " " << caught_up_s
            << " s after its start" << (installed.empty() ? " (no 'installed snapshot' line!)" : "") << "\n";
  (*cluster)->stop_all();

  // 5. Restore the backup into a new cluster. The stopped cluster's dirty pages are written
  // back first, so the restore is timed on a quiet disk, as an operator would run it.
  ::sync();
  const uint64_t nodes = 3;
  LocalClusterOptions restored_options;
  restored_options.directory = common->directory + "/restored";
  auto restored = LocalCluster::create(restored_options);
  if (!restored.is_ok()) return fail(command, restored.status().to_string());
  auto peers = parse_peers((*restored)->peers_flag());  // the new cluster's voters
  if (!peers.is_ok()) return fail(command, peers.status().to_string());
  double restore_s = 0;
  for (uint64_t id = 1; id <= nodes; ++id) {
    RestoreOptions restore;
    restore.snapshot_path = backup;
    restore.data_directory = (*restored)->data_directory(id);
    restore.node_id = id;
    restore.cluster = restored_options.cluster;
    restore.members = members_of(*peers);
    const double one = cli::monotonic_seconds();
    auto report = restore_snapshot(posix_env(), restore);
    restore_s = std::max(restore_s, cli::monotonic_seconds() - one);
    if (!report.is_ok()) return fail(command, "restore into node " + std::to_string(id) + ": " + report.status().to_string());
  }
  const double serve_start = cli::monotonic_seconds();
  if (Status started = (*restored)->start_all(); !started.is_ok()) return fail(command, started.to_string());
  KvClient reader((*restored)->client_endpoints());
  const std::string probe = key_name(*keys - 1);
  double serve_s = wait_until(
      [&] {
        auto got = reader.get(probe);
        return got.is_ok() && got->found;
      },
      60);
  (*restored)->stop_all();
  if (serve_s < 0) {
    return fail(command, "the restored cluster served no read in 60 s; its logs: " + (*restored)->log_path(1) +
                             " (and node2.log, node3.log beside it)");
  }
  serve_s = cli::monotonic_seconds() - serve_start;
  std::cout << "restore of the " << saved->file_bytes << " B backup: " << restore_s << " s per node (the slowest of "
            << nodes << "); the restored cluster served a read " << serve_s << " s after its start\n";

  cli::JsonLine line;
  line.add("bench", "snapshot").add("keys", *keys).add("value_bytes", common->value_bytes)
      .add("clients", common->clients).add("load_s", load_s).add("snapshot_bytes", saved->file_bytes)
      .add("take_ms", take_ms).add("backup_s", save_s).add("put_p99_ms_without", p99_without)
      .add("put_p99_ms_during", p99_during).add("puts_during", static_cast<uint64_t>(during.size()))
      .add("install_bytes", sent_bytes).add("install_s", sent_s).add("install_mb_per_s", install_mb_s)
      .add("follower_caught_up_s", caught_up_s).add("restore_s", restore_s).add("restored_serving_s", serve_s);
  std::cout << line.str() << std::endl;
  finish(*common);
  return cli::exit_ok;
}

int bench_size_main(const std::vector<std::string>& args) {
  const std::string command = "bench size";
  std::vector<std::string> own = args, node_flags;
  auto separator = std::find(own.begin(), own.end(), "--");
  if (separator != own.end()) {
    node_flags.assign(separator + 1, own.end());
    own.erase(separator, own.end());
  }
  const cli::Command spec =
      cli::Command(command, "data directory size and memory of each node under puts, restart time; flags after -- go "
                            "to every node")
          .value("puts", "2000000", "puts in all")
          .value("keys", "10000", "distinct keys overwritten")
          .value("checkpoints", "puts/4,puts/2,puts", "after how many puts to measure, A,B,C")
          .value("value-bytes", "100", "bytes of each value, 1..1048576")
          .value("clients", "64", "concurrent clients, 1..1024")
          .value("dir", "a new temporary directory", "the cluster's directory (must be empty)")
          .flag("keep", "keep the directory");
  cli::Flags flags;
  if (auto exit = spec.parse(own, flags)) return *exit;
  auto puts = flags.get_u64("puts", 2'000'000);
  auto keys = flags.get_u64("keys", 10'000);
  if (!puts.is_ok()) return cli::usage_error(command, puts.status().message());
  if (!keys.is_ok()) return cli::usage_error(command, keys.status().message());
  if (*puts == 0 || *keys == 0) return cli::usage_error(command, "--puts and --keys must be at least 1");
  std::vector<uint64_t> checkpoints;
  {
    std::string list = flags.get("checkpoints", std::to_string(*puts / 4) + "," + std::to_string(*puts / 2) + "," +
                                                     std::to_string(*puts));
    std::stringstream words(list);
    std::string word;
    while (std::getline(words, word, ',')) {
      auto value = cli::parse_u64(word, "--checkpoints");
      if (!value.is_ok()) return cli::usage_error(command, value.status().message());
      if (*value == 0 || *value > *puts) return cli::usage_error(command, "--checkpoints must lie in 1..--puts");
      checkpoints.push_back(*value);
    }
    std::sort(checkpoints.begin(), checkpoints.end());
  }
  auto common = parse_common(flags, "bench-size");
  if (!common.is_ok()) return cli::usage_error(command, common.status().message());

  LocalClusterOptions options;
  options.directory = common->directory + "/cluster";
  options.extra_node_flags = node_flags;
  auto cluster = LocalCluster::create(options);
  if (!cluster.is_ok()) return fail(command, cluster.status().to_string());
  if (Status started = (*cluster)->start_all(); !started.is_ok()) return fail(command, started.to_string());
  auto leader = (*cluster)->wait_for_leader(20000);
  if (!leader.is_ok()) return fail(command, "no leader: " + leader.status().to_string());

  cli::JsonLine line;
  line.add("bench", "size").add("puts", *puts).add("keys", *keys).add("value_bytes", common->value_bytes)
      .add("clients", common->clients);
  uint64_t max_disk = 0, max_rss = 0;
  cli::Json samples = cli::Json::array();
  const double start = cli::monotonic_seconds();
  {
    PutLoad load((*cluster)->client_endpoints(), common->clients, *keys, common->value_bytes, *puts);
    for (uint64_t checkpoint : checkpoints) {
      while (load.done() < checkpoint && load.errors() < 1000) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (load.errors() >= 1000) return fail(command, "puts failing: " + load.first_error());
      const uint64_t at = load.done();
      std::ostringstream text;
      text << "at " << at << " puts (" << (cli::monotonic_seconds() - start) << " s):";
      cli::JsonLine sample;
      sample.add("puts", at);
      for (uint64_t id = 1; id <= (*cluster)->nodes(); ++id) {
        const uint64_t disk = disk_bytes((*cluster)->data_directory(id));
        const uint64_t rss = proc_status_bytes((*cluster)->pid(id), "VmRSS");
        const uint64_t hwm = proc_status_bytes((*cluster)->pid(id), "VmHWM");
        max_disk = std::max(max_disk, disk);
        max_rss = std::max(max_rss, std::max(rss, hwm));
        char cell[160];
        std::snprintf(cell, sizeof cell, " node %llu data %.1f MiB rss %.1f MiB (peak %.1f)",
                      static_cast<unsigned long long>(id), mib(disk), mib(rss), mib(hwm));
        text << cell;
        const std::string node = "node" + std::to_string(id);
        sample.add(node + "_data_mib", mib(disk)).add(node + "_rss_mib", mib(rss)).add(node + "_peak_rss_mib", mib(hwm));
      }
      std::cout << text.str() << std::endl;
      samples.push_back(sample.json());
    }
    load.stop();
    if (load.errors() != 0) std::cerr << "keyval bench size: " << load.errors() << " puts failed; first: " << load.first_error() << "\n";
  }
  const double load_s = cli::monotonic_seconds() - start;
  std::cout << *puts << " puts in " << load_s << " s (" << *puts / load_s << " puts/s)\n";

  // A follower killed and restarted: how soon it serves again.
  auto current = (*cluster)->wait_for_leader(10000);
  if (!current.is_ok()) return fail(command, "no leader after the load");
  const uint64_t follower = *current == 1 ? 2 : 1;
  auto before = node_status(**cluster, follower);
  if (!before) return fail(command, "node " + std::to_string(follower) + " does not answer");
  (*cluster)->signal(follower, SIGKILL);
  if (Status started = (*cluster)->start(follower); !started.is_ok()) return fail(command, started.to_string());
  const double serving_s = wait_until(
      [&] {
        auto view = node_status(**cluster, follower);
        return view && view->applied_index >= before->commit_index && view->role == "follower";
      },
      60);
  const std::string recovered = (*cluster)->last_log_line(follower, "recover");
  std::cout << "node " << follower << " killed (SIGKILL) and restarted: serving (applied >= " << before->commit_index
            << ") " << serving_s << " s after its start" << "\n";
  if (!recovered.empty()) std::cout << "  its log: " << recovered << "\n";
  (*cluster)->stop_all();
  line.add("load_s", load_s).add("max_data_mib", mib(max_disk)).add("max_rss_mib", mib(max_rss))
      .add("restart_serving_s", serving_s).add("checkpoints", samples);
  std::cout << line.str() << std::endl;
  finish(*common);
  return serving_s < 0 ? exit_failed : cli::exit_ok;
}

}  // namespace keyval::commands
