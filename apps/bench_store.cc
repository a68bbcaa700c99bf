// keyval bench store: how fast the LMDB store saves and loads log entries in each sync mode,
// next to the disk's own write + fdatasync latency measured in the same directory in the same
// run, so the store's numbers can be read against what the disk allows (a durable LMDB commit
// costs about two syncs: the data pages, then the meta page).
//
//   keyval bench store [--entries N] [--value-bytes B] [--sync durable|relaxed|both]
//                      [--dir D] [--keep]
//
// One line per measurement, then one JSON object as the last line.
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "storage/env.h"
#include "storage/store.h"

namespace keyval::commands {
namespace {

const char* const command_name = "bench store";
constexpr int exit_failure = 1;
constexpr uint64_t entries_default = 10000;
constexpr uint64_t value_bytes_default = 128;
constexpr uint64_t entries_max = 100'000'000;
constexpr uint64_t value_bytes_max = 64ull << 20;
// Each durable commit waits for the disk (two syncs), so durable measurements stop at this
// many commits each and the whole bench stays within seconds on a slow disk.
constexpr uint64_t durable_commits_max = 200;
constexpr uint64_t load_one_ops_max = 20000;
// Range loads copy range x value bytes each; this many bytes per measurement bounds their time.
constexpr uint64_t range_load_bytes_budget = 256ull << 20;
constexpr uint64_t range_load_ops_min = 5;
constexpr uint64_t range_load_ops_max = 1000;
constexpr uint64_t fdatasync_rounds = 200;
constexpr size_t fdatasync_block_bytes = 4096;
constexpr uint64_t random_seed = 42;  // the same indices on every run, for comparable numbers

struct BenchConfig {
  uint64_t entries = entries_default;
  uint64_t value_bytes = value_bytes_default;
  std::string sync = "both";
  std::string parent_directory = "/tmp";
  bool keep = false;
};

cli::Command command() {
  return cli::Command(command_name, "LMDB store puts, loads and range loads, durable and relaxed")
      .value("entries", std::to_string(entries_default), "entries written, 1.." + std::to_string(entries_max))
      .value("value-bytes", std::to_string(value_bytes_default), "bytes of each value")
      .value("sync", "both", "durable, relaxed or both")
      .value("dir", "/tmp", "where the store's temporary directory is made")
      .flag("keep", "keep the store's directory");
}

Result<BenchConfig> parse_config(const cli::Flags& flags) {
  BenchConfig config;
  KV_ASSIGN_OR_RETURN(config.entries, flags.get_u64("entries", entries_default));
  KV_ASSIGN_OR_RETURN(config.value_bytes, flags.get_u64("value-bytes", value_bytes_default));
  config.sync = flags.get("sync", "both");
  config.parent_directory = flags.get("dir", "/tmp");
  config.keep = flags.has("keep");
  if (config.entries == 0 || config.entries > entries_max) {
    return Status::invalid_argument("--entries must be in [1, " + std::to_string(entries_max) + "]");
  }
  if (config.value_bytes > value_bytes_max) {
    return Status::invalid_argument("--value-bytes must be at most " + std::to_string(value_bytes_max));
  }
  if (config.sync != "durable" && config.sync != "relaxed" && config.sync != "both") {
    return Status::invalid_argument("--sync expects durable, relaxed or both, got '" + config.sync + "'");
  }
  if (config.parent_directory.empty()) return Status::invalid_argument("--dir needs a directory");
  return config;
}

Result<std::string> make_temp_dir(const std::string& parent) {
  KV_RETURN_IF_ERROR(posix_env().create_dir(parent));
  std::string pattern = join_path(parent, "keyval-bench-store-XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) return Status::from_errno("mkdtemp", pattern, errno);
  return std::string(buffer.data());
}

// Prints one line per measurement as it completes (the progress) and gathers the JSON line.
class Report {
 public:
  // `name` + "_us" holds the mean time, `name` + "_count" how many operations it averages.
  void add(const std::string& name, double us, uint64_t count, const std::string& description) {
    std::printf("%-22s %10.2f us   (%llu x %s)\n", (name + "_us").c_str(), us,
                static_cast<unsigned long long>(count), description.c_str());
    std::fflush(stdout);
    json_.add(name + "_us", us);
    json_.add(name + "_count", count);
  }
  cli::JsonLine& json() { return json_; }

 private:
  cli::JsonLine json_;
};

// Saves `batches` batches of `batch_entries` entries from *next_index on, one transaction per
// batch; returns µs per batch. Only the save itself is timed, not building the batch.
Result<double> time_saves(Store& store, uint64_t* next_index, uint64_t batches, uint64_t batch_entries,
                          const std::vector<uint8_t>& payload) {
  std::vector<Entry> batch(batch_entries);
  double seconds = 0;
  for (uint64_t round = 0; round < batches; ++round) {
    for (Entry& entry : batch) entry = Entry{(*next_index)++, 1, payload};
    double start = cli::monotonic_seconds();
    KV_RETURN_IF_ERROR(store.save_entries(batch));
    seconds += cli::monotonic_seconds() - start;
  }
  return seconds * 1e6 / static_cast<double>(batches);
}

Status bench_saves(const BenchConfig& config, SyncMode mode, const std::string& directory, Report* report) {
  StoreOptions options;
  options.sync_mode = mode;
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::open(directory, options));
  const std::string prefix = mode == SyncMode::durable ? "durable_" : "relaxed_";
  const uint64_t commits_max = mode == SyncMode::durable ? durable_commits_max : UINT64_MAX;
  const std::vector<uint8_t> payload(config.value_bytes, 0xA5);
  uint64_t next_index = 1;
  const std::pair<const char*, uint64_t> shapes[] = {{"save_one", 1}, {"batch10", 10}, {"batch100", 100}};
  for (const auto& [name, batch_entries] : shapes) {
    uint64_t batches = std::min(std::max<uint64_t>(config.entries / batch_entries, 1), commits_max);
    KV_ASSIGN_OR_RETURN(double us, time_saves(*store, &next_index, batches, batch_entries, payload));
    report->add(prefix + name, us, batches,
                std::to_string(batch_entries) + "-entry commit of " + std::to_string(config.value_bytes) + " B values");
  }
  return Status::ok();
}

Result<double> time_load_one(Store& store, uint64_t last, uint64_t ops, std::mt19937_64& random) {
  std::uniform_int_distribution<uint64_t> pick(1, last);
  double seconds = 0;
  for (uint64_t op = 0; op < ops; ++op) {
    uint64_t index = pick(random);
    double start = cli::monotonic_seconds();
    KV_ASSIGN_OR_RETURN(Entry entry, store.load_entry(index));
    seconds += cli::monotonic_seconds() - start;
    if (entry.index != index) return Status::corruption("bench: loaded index " + std::to_string(entry.index));
  }
  return seconds * 1e6 / static_cast<double>(ops);
}

Result<double> time_load_range(Store& store, uint64_t last, uint64_t range_entries, uint64_t ops,
                               std::mt19937_64& random) {
  uint64_t expected = std::min(range_entries, last);
  std::uniform_int_distribution<uint64_t> pick(1, last - expected + 1);
  double seconds = 0;
  for (uint64_t op = 0; op < ops; ++op) {
    uint64_t first = pick(random);
    double start = cli::monotonic_seconds();
    KV_ASSIGN_OR_RETURN(std::vector<Entry> entries, store.load_range(first, first + expected - 1));
    seconds += cli::monotonic_seconds() - start;
    if (entries.size() != expected) {
      return Status::corruption("bench: range from " + std::to_string(first) + " returned " +
                                std::to_string(entries.size()) + " entries, expected " + std::to_string(expected));
    }
  }
  return seconds * 1e6 / static_cast<double>(ops);
}

// Loads do not depend on the sync mode: they run on their own store, filled in 100-entry batches.
Status bench_loads(const BenchConfig& config, const std::string& directory, Report* report) {
  StoreOptions options;
  options.sync_mode = SyncMode::relaxed;
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::open(directory, options));
  const std::vector<uint8_t> payload(config.value_bytes, 0x5A);
  uint64_t next_index = 1;
  uint64_t full_batches = config.entries / 100;
  if (full_batches > 0) KV_RETURN_IF_ERROR(time_saves(*store, &next_index, full_batches, 100, payload).status());
  if (config.entries % 100 != 0) {
    KV_RETURN_IF_ERROR(time_saves(*store, &next_index, 1, config.entries % 100, payload).status());
  }
  std::mt19937_64 random(random_seed);
  uint64_t load_ops = std::min(config.entries, load_one_ops_max);
  KV_ASSIGN_OR_RETURN(double load_one_us, time_load_one(*store, config.entries, load_ops, random));
  report->add("load_one", load_one_us, load_ops, "load of one random entry");
  for (uint64_t range_entries : {uint64_t{100}, uint64_t{1000}}) {
    uint64_t range_bytes = std::max<uint64_t>(range_entries * config.value_bytes, 1);
    uint64_t ops = std::clamp(range_load_bytes_budget / range_bytes, range_load_ops_min, range_load_ops_max);
    KV_ASSIGN_OR_RETURN(double us, time_load_range(*store, config.entries, range_entries, ops, random));
    uint64_t loaded_entries = std::min(range_entries, config.entries);  // fewer when the log is shorter
    report->add("load_range" + std::to_string(range_entries), us, ops,
                "load of " + std::to_string(loaded_entries) + " entries from a random index");
    report->json().add("load_range" + std::to_string(range_entries) + "_entries", loaded_entries);
  }
  return Status::ok();
}

// The disk's own cost of a small durable append: write 4 KiB into a preallocated file, then
// fdatasync, as the WAL does.
Status bench_fdatasync(const std::string& directory, Report* report) {
  std::string path = join_path(directory, "fdatasync.probe");
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, posix_env().open_file(path, OpenMode::create_new));
  KV_RETURN_IF_ERROR(file->preallocate(fdatasync_rounds * fdatasync_block_bytes));
  KV_RETURN_IF_ERROR(file->sync_data());
  const std::vector<uint8_t> block(fdatasync_block_bytes, 0xC3);
  double seconds = 0;
  for (uint64_t round = 0; round < fdatasync_rounds; ++round) {
    double start = cli::monotonic_seconds();
    KV_RETURN_IF_ERROR(file->write_at(round * fdatasync_block_bytes, block.data(), block.size()));
    KV_RETURN_IF_ERROR(file->sync_data());
    seconds += cli::monotonic_seconds() - start;
  }
  report->add("disk_fdatasync", seconds * 1e6 / fdatasync_rounds, fdatasync_rounds,
              "4 KiB write + fdatasync on a plain file");
  return Status::ok();
}

Status run_bench(const BenchConfig& config, const std::string& directory, Report* report) {
  report->json().add("bench", "store").add("entries", config.entries).add("value_bytes", config.value_bytes);
  report->json().add("sync", config.sync).add("dir", directory);
  std::printf("keyval bench store: %llu entries of %llu B, sync %s, in %s\n",
              static_cast<unsigned long long>(config.entries), static_cast<unsigned long long>(config.value_bytes),
              config.sync.c_str(), directory.c_str());
  if (config.sync != "durable") {
    KV_RETURN_IF_ERROR(bench_saves(config, SyncMode::relaxed, join_path(directory, "relaxed"), report));
  }
  if (config.sync != "relaxed") {
    KV_RETURN_IF_ERROR(bench_saves(config, SyncMode::durable, join_path(directory, "durable"), report));
  }
  KV_RETURN_IF_ERROR(bench_loads(config, join_path(directory, "load"), report));
  return bench_fdatasync(directory, report);
}

}  // namespace

int bench_store_main(const std::vector<std::string>& args) {
  cli::Flags flags;
  if (auto exit = command().parse(args, flags)) return *exit;
  Result<BenchConfig> config = parse_config(flags);
  if (!config.is_ok()) return cli::usage_error(command_name, config.status().message());
  Result<std::string> directory = make_temp_dir(config->parent_directory);
  if (!directory.is_ok()) {
    std::cerr << "keyval " << command_name << ": " << directory.status().to_string() << "\n";
    return exit_failure;
  }
  Report report;
  Status status;
  try {
    status = run_bench(config.value(), directory.value(), &report);
  } catch (const std::exception& exception) {
    status = Status::io_error(std::string("unexpected exception: ") + exception.what());
  }
  report.json().add_bool("kept", config->keep);
  if (!config->keep) {
    std::error_code ignored;
    std::filesystem::remove_all(directory.value(), ignored);
  }
  if (!status.is_ok()) {
    std::cerr << "keyval " << command_name << ": " << status.to_string() << "\n";
    return exit_failure;
  }
  std::printf("%s\n", report.json().str().c_str());
  return cli::exit_ok;
}

}  // namespace keyval::commands
