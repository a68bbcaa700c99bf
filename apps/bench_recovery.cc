// keyval bench recovery: how long start-up recovery (storage/recovery.h) takes for a node
// that stopped with N entries in its WAL and the first P% of them indexed into LMDB, as the
// store_indexer leaves it running behind the WAL.
//
//   keyval bench recovery --entries N --value-bytes B [--indexed-percent P] [--dir D] [--keep]
//
// Writes the entries through the WAL (term 1, deterministic payloads, a sync every 1000),
// indexes the first P% into LMDB (relaxed, batches of 1000, then one sync), closes both, then
// times recover() on a monotonic clock and checks what it returns: the last index, and
// entries spread over the log loaded back from LMDB. Peak memory is getrusage's ru_maxrss
// before and after; it counts LMDB's map pages that recovery reads (file-backed page cache),
// so rss_anon_kib (heap and stacks, after recovery) is printed too. Last line: one JSON object.
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "storage/env.h"
#include "storage/recovery.h"
#include "storage/store.h"
#include "storage/wal.h"

namespace keyval::commands {
namespace {

const char* const command_name = "bench recovery";
constexpr int exit_failure = 1;  // the run or its checks failed
constexpr uint64_t entries_default = 100000;
constexpr uint64_t entries_max = 100'000'000;
constexpr uint64_t value_bytes_default = 128;
constexpr uint64_t value_bytes_max = 1ull << 20;
constexpr uint64_t indexed_percent_default = 90;
constexpr uint64_t wal_sync_every_entries = 1000;
constexpr uint64_t index_batch_entries = 1000;
constexpr uint64_t spot_checks = 64;  // entries loaded back from LMDB, spread over the log
constexpr uint64_t term = 1;

struct Config {
  uint64_t entries = entries_default;
  uint64_t value_bytes = value_bytes_default;
  uint64_t indexed_percent = indexed_percent_default;
  std::string directory;
  bool keep = false;
  uint64_t indexed_entries() const { return entries * indexed_percent / 100; }
};

struct Figures {
  double write_seconds = 0;
  double index_seconds = 0;
  double recovery_seconds = 0;
  long max_rss_kib_before = 0;
  long max_rss_kib = 0;
  uint64_t rss_anon_kib = 0;
  uint64_t spot_checked = 0;
  RecoveryReport report;
};

cli::Command command() {
  return cli::Command(command_name, "write a WAL and index part of it into LMDB, then time recovery")
      .value("entries", std::to_string(entries_default), "entries written, 1.." + std::to_string(entries_max))
      .value("value-bytes", std::to_string(value_bytes_default), "bytes of each entry's payload")
      .value("indexed-percent", std::to_string(indexed_percent_default), "share of the entries indexed into LMDB before the restart")
      .value("dir", "a new temporary directory", "data directory")
      .flag("keep", "keep the data directory");
}

Result<Config> parse(const cli::Flags& flags) {
  Config config;
  KV_ASSIGN_OR_RETURN(config.entries, flags.get_u64("entries", entries_default));
  KV_ASSIGN_OR_RETURN(config.value_bytes, flags.get_u64("value-bytes", value_bytes_default));
  KV_ASSIGN_OR_RETURN(config.indexed_percent, flags.get_u64("indexed-percent", indexed_percent_default));
  if (config.entries == 0 || config.entries > entries_max) {
    return Status::invalid_argument("--entries must be in [1, " + std::to_string(entries_max) + "]");
  }
  if (config.value_bytes > value_bytes_max) {
    return Status::invalid_argument("--value-bytes must be at most " + std::to_string(value_bytes_max));
  }
  if (config.indexed_percent > 100) return Status::invalid_argument("--indexed-percent must be in [0, 100]");
  config.directory = flags.get("dir");
  config.keep = flags.has("keep");
  return config;
}

// The payload of entry `index`: deterministic, different for every entry.
void fill_payload(uint64_t index, std::vector<uint8_t>& payload) {
  uint64_t state = index * 0x9E3779B97F4A7C15ull + 1;
  for (uint8_t& byte : payload) {
    state ^= state >> 29;
    state *= 0xBF58476D1CE4E5B9ull;
    byte = static_cast<uint8_t>(state >> 56);
  }
}

Status write_wal(const std::string& directory, const Config& config) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Wal> wal, Wal::open(posix_env(), directory));
  KV_RETURN_IF_ERROR(wal->save_metadata(Metadata{term, 1}));
  std::vector<uint8_t> payload(config.value_bytes);
  for (uint64_t index = 1; index <= config.entries; ++index) {
    fill_payload(index, payload);
    KV_RETURN_IF_ERROR(wal->append(index, term, payload.data(), payload.size()));
    if (index % wal_sync_every_entries == 0) KV_RETURN_IF_ERROR(wal->sync());
  }
  return wal->sync();
}

// What the store_indexer does behind the WAL: relaxed batches, positions, one sync at the end.
Status index_prefix(const std::string& directory, const Config& config) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::open(directory, StoreOptions{SyncMode::relaxed}));
  KV_RETURN_IF_ERROR(store->save_metadata(Metadata{term, 1}));
  std::vector<Entry> batch;
  for (uint64_t index = 1; index <= config.indexed_entries(); ++index) {
    std::vector<uint8_t> payload(config.value_bytes);
    fill_payload(index, payload);
    batch.push_back(Entry{index, term, payload});
    if (batch.size() == index_batch_entries || index == config.indexed_entries()) {
      KV_RETURN_IF_ERROR(store->save_entries(batch));
      batch.clear();
    }
  }
  KV_RETURN_IF_ERROR(store->save_positions(StorePositions{config.indexed_entries(), 0}));
  return store->sync();
}

// Entries spread evenly over the log, plus both ends of the indexed prefix, read back from LMDB.
Status spot_check(Store& store, const Config& config, uint64_t* checked) {
  std::vector<uint64_t> indices = {1, config.entries, config.indexed_entries(), config.indexed_entries() + 1};
  for (uint64_t i = 0; i < spot_checks; ++i) indices.push_back(1 + i * (config.entries - 1) / (spot_checks - 1));
  std::vector<uint8_t> expected(config.value_bytes);
  for (uint64_t index : indices) {
    if (index < 1 || index > config.entries) continue;
    KV_ASSIGN_OR_RETURN(Entry entry, store.load_entry(index));
    fill_payload(index, expected);
    if (entry.index != index || entry.term != term || entry.payload() != expected) {
      return Status::corruption("entry " + std::to_string(index) +
                                " loaded from LMDB after recovery differs from the one written");
    }
    ++*checked;
  }
  return Status::ok();
}

long max_rss_kib() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // KiB on Linux
}

uint64_t rss_anon_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::strtoull(line.c_str() + 8, nullptr, 10);
  }
  return 0;
}

Status recover_and_check(const std::string& directory, const Config& config, Figures* figures) {
  figures->max_rss_kib_before = max_rss_kib();
  double start = cli::monotonic_seconds();
  KV_ASSIGN_OR_RETURN(Recovered recovered, recover(posix_env(), directory));
  figures->recovery_seconds = cli::monotonic_seconds() - start;
  figures->max_rss_kib = max_rss_kib();
  figures->rss_anon_kib = rss_anon_kib();
  figures->report = recovered.report;
  if (recovered.state.last_index != config.entries || recovered.state.first_index != 1 ||
      recovered.state.last_term != term) {
    return Status::corruption("recovered log " + std::to_string(recovered.state.first_index) + ".." +
                              std::to_string(recovered.state.last_index) + " (last term " +
                              std::to_string(recovered.state.last_term) + "), expected 1.." +
                              std::to_string(config.entries) + " term 1");
  }
  uint64_t expected_replayed = config.entries - config.indexed_entries();
  if (recovered.report.entries_replayed != expected_replayed) {
    return Status::corruption("recovery replayed " + std::to_string(recovered.report.entries_replayed) +
                              " entries from the WAL, expected " + std::to_string(expected_replayed));
  }
  return spot_check(*recovered.store, config, &figures->spot_checked);
}

Status run(const std::string& directory, const Config& config, Figures* figures) {
  std::cout << "writing " << config.entries << " entries of " << config.value_bytes << " B through the WAL"
            << std::endl;
  double start = cli::monotonic_seconds();
  KV_RETURN_IF_ERROR(write_wal(join_path(directory, "wal"), config));
  figures->write_seconds = cli::monotonic_seconds() - start;
  std::cout << "indexing the first " << config.indexed_entries() << " (" << config.indexed_percent << "%) into LMDB"
            << std::endl;
  start = cli::monotonic_seconds();
  KV_RETURN_IF_ERROR(index_prefix(join_path(directory, "lmdb"), config));
  figures->index_seconds = cli::monotonic_seconds() - start;
  std::cout << "recovering" << std::endl;
  return recover_and_check(directory, config, figures);
}

Result<std::string> make_directory(const Config& config) {
  std::string directory = config.directory;
  if (directory.empty()) {
    return cli::make_temp_directory("bench-recovery");
  }
  if (posix_env().exists(join_path(directory, "wal")) || posix_env().exists(join_path(directory, "lmdb"))) {
    return Status::invalid_argument("--dir " + directory + " already holds a data directory; give an empty one");
  }
  KV_RETURN_IF_ERROR(posix_env().create_dir(directory));
  return directory;
}

void print(const Config& config, const std::string& directory, const Figures& figures) {
  double entries_per_s = config.entries / figures.recovery_seconds;
  std::cout << figures.report.summary() << "\n"
            << "recovery: " << figures.recovery_seconds * 1e3 << " ms, " << entries_per_s << " entries/s; "
            << figures.spot_checked << " entries checked in LMDB after it; peak RSS " << figures.max_rss_kib_before
            << " -> " << figures.max_rss_kib << " KiB (anonymous now " << figures.rss_anon_kib << " KiB)\n";
  cli::JsonLine line;
  line.add("bench", "recovery")
      .add("entries", config.entries)
      .add("value_bytes", config.value_bytes)
      .add("indexed_percent", config.indexed_percent)
      .add("indexed_entries", config.indexed_entries())
      .add("recovery_ms", figures.recovery_seconds * 1e3)
      .add("entries_per_s", entries_per_s)
      .add("entries_replayed", figures.report.entries_replayed)
      .add("lmdb_entries_checked", figures.report.lmdb_entries_checked)
      .add("wal_records", figures.report.wal_records)
      .add("wal_segments", figures.report.wal_segments)
      .add("spot_checked", figures.spot_checked)
      .add("max_rss_kib_before", static_cast<int64_t>(figures.max_rss_kib_before))
      .add("max_rss_kib", static_cast<int64_t>(figures.max_rss_kib))
      .add("rss_anon_kib", figures.rss_anon_kib)
      .add("write_s", figures.write_seconds)
      .add("index_s", figures.index_seconds)
      .add("dir", config.keep ? directory : "");
  std::cout << line.str() << std::endl;
}

}  // namespace

int bench_recovery_main(const std::vector<std::string>& args) {
  cli::Flags flags;
  if (auto exit = command().parse(args, flags)) return *exit;
  auto config = parse(flags);
  if (!config.is_ok()) return cli::usage_error(command_name, config.status().message());
  auto directory = make_directory(*config);
  if (!directory.is_ok()) return cli::usage_error(command_name, directory.status().to_string());
  Figures figures;
  Status status = run(*directory, *config, &figures);
  if (!config->keep) {
    std::error_code ignored;
    std::filesystem::remove_all(*directory, ignored);
  }
  if (!status.is_ok()) {
    std::cerr << "keyval " << command_name << ": " << status.to_string() << "\n";
    return exit_failure;
  }
  print(*config, *directory, figures);
  return cli::exit_ok;
}

}  // namespace keyval::commands
