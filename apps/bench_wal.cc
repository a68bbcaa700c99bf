// keyval bench wal: appends N entries to a real WAL (syncing never, after each,
// or every K), then reopens it (scan + CRC check of every record) and replays
// every entry. The disk's own append+fdatasync rate is measured in the same run
// so the synced figures read as a ratio. Last line: one JSON object.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "storage/env.h"
#include "storage/wal.h"

namespace keyval::commands {
namespace {

constexpr uint64_t baseline_syncs_max = 2000;  // bounds the raw fdatasync measurement

struct SyncPlan {
  std::string name;         // none, each, batch:K
  uint64_t every_entries;   // 0: never
};

Result<SyncPlan> parse_sync(const std::string& text) {
  if (text == "none") return SyncPlan{text, 0};
  if (text == "each") return SyncPlan{text, 1};
  if (text.rfind("batch:", 0) == 0) {
    KV_ASSIGN_OR_RETURN(uint64_t every, cli::parse_u64(text.substr(6), "--sync batch:K"));
    if (every == 0) return Status::invalid_argument("--sync batch:K needs K >= 1");
    return SyncPlan{text, every};
  }
  return Status::invalid_argument("--sync expects none, each, batch:K or group, got '" + text + "'");
}

// The disk's own rate: append `bytes` then fdatasync, on a plain file, as a database log would.
double measure_fdatasync_per_s(const std::string& directory, size_t bytes, uint64_t count) {
  std::string path = directory + "/fdatasync-baseline";
  int descriptor = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (descriptor < 0) return 0;
  std::vector<uint8_t> block(bytes, 0x5A);
  double start = cli::monotonic_seconds();
  for (uint64_t i = 0; i < count; ++i) {
    if (::write(descriptor, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
        ::fdatasync(descriptor) != 0) {
      ::close(descriptor);
      return 0;
    }
  }
  double seconds = cli::monotonic_seconds() - start;
  ::close(descriptor);
  ::unlink(path.c_str());
  return static_cast<double>(count) / seconds;
}

struct Figures {
  double append_seconds = 0;
  uint64_t syncs = 0;
  double open_seconds = 0;
  double replay_seconds = 0;
  uint64_t replayed = 0;
  uint64_t segments = 0;
};

Status run(const std::string& directory, uint64_t entries, size_t value_bytes, const SyncPlan& plan,
           const WalOptions& options, Figures* figures) {
  std::vector<uint8_t> payload(value_bytes);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 131 + 7);
  {
    KV_ASSIGN_OR_RETURN(std::unique_ptr<Wal> wal, Wal::open(posix_env(), directory, options));
    double start = cli::monotonic_seconds();
    for (uint64_t index = 1; index <= entries; ++index) {
      KV_RETURN_IF_ERROR(wal->append(index, 1, payload.data(), payload.size()));
      if (plan.every_entries != 0 && index % plan.every_entries == 0) {
        KV_RETURN_IF_ERROR(wal->sync());
        ++figures->syncs;
      }
    }
    KV_RETURN_IF_ERROR(wal->sync());  // the run ends durable whatever the plan
    ++figures->syncs;
    figures->append_seconds = cli::monotonic_seconds() - start;
  }
  double start = cli::monotonic_seconds();
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Wal> wal, Wal::open(posix_env(), directory, options));
  figures->open_seconds = cli::monotonic_seconds() - start;
  figures->segments = wal->segment_count();
  start = cli::monotonic_seconds();
  uint64_t checksum = 0;
  KV_RETURN_IF_ERROR(wal->replay(1, [&](const EntryView& view) {
    checksum += view.payload_bytes + view.index;
    ++figures->replayed;
    return Status::ok();
  }));
  figures->replay_seconds = cli::monotonic_seconds() - start;
  if (figures->replayed != entries) {
    return Status::corruption("replay visited " + std::to_string(figures->replayed) + " entries, expected " +
                              std::to_string(entries));
  }
  return Status::ok();
}

}  // namespace

int bench_wal_main(const std::vector<std::string>& args) {
  const cli::Command command =
      cli::Command("bench wal", "WAL appends under a sync policy, then reopen and replay")
          .value("entries", "100000", "entries appended")
          .value("value-bytes", "128", "bytes of each entry's payload")
          .value("sync", "none", "none, each, batch:K (a sync every K entries) or group (the wal_writer actor)")
          .value("segment-bytes", std::to_string(64ull << 20), "WAL segment size")
          .value("writers", "1", "concurrent writers (--sync group)")
          .value("dir", "a new temporary directory", "where the WAL is written (must hold none)")
          .flag("keep", "keep the WAL");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  auto entries = flags.get_u64("entries", 100000);
  auto value_bytes = flags.get_u64("value-bytes", 128);
  auto segment_bytes = flags.get_u64("segment-bytes", 64ull << 20);
  auto writers = flags.get_u64("writers", 1);
  bool group = flags.get("sync", "none") == "group";
  auto plan = parse_sync(group ? "none" : flags.get("sync", "none"));
  for (const Status& status :
       {entries.status(), value_bytes.status(), segment_bytes.status(), plan.status(), writers.status()}) {
    if (!status.is_ok()) return cli::usage_error("bench wal", status.message());
  }
  if (*entries == 0) return cli::usage_error("bench wal", "--entries must be at least 1");
  std::string directory = flags.get("dir");
  if (directory.empty()) {
    auto made_temporary = cli::make_temp_directory("bench-wal");
    if (!made_temporary.is_ok()) return cli::usage_error("bench wal", made_temporary.status().to_string());
    directory = *made_temporary;
  } else if (posix_env().exists(directory + "/LOCK")) {
    return cli::usage_error("bench wal", "--dir " + directory + " already holds a WAL; give an empty directory");
  }
  Status made = posix_env().create_dir(directory);
  if (!made.is_ok()) return cli::usage_error("bench wal", made.to_string());
  if (group) {
    if (*writers == 0) return cli::usage_error("bench wal", "--writers must be at least 1");
    int code = bench_wal_group_main(*entries, *value_bytes, *writers, directory + "/data");
    if (!flags.has("keep")) {
      std::error_code ignored;
      std::filesystem::remove_all(directory, ignored);
    }
    return code;
  }

  double disk_syncs_per_s = 0;
  if (plan->every_entries != 0) {
    disk_syncs_per_s = measure_fdatasync_per_s(directory, *value_bytes, std::min(*entries, baseline_syncs_max));
  }
  WalOptions options;
  options.segment_bytes = *segment_bytes;
  Figures figures;
  Status status = run(directory + "/wal", *entries, *value_bytes, *plan, options, &figures);
  if (!flags.has("keep")) {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
  if (!status.is_ok()) {
    std::cerr << "keyval bench wal: " << status.to_string() << "\n";
    return cli::exit_usage;
  }
  double entries_per_s = *entries / figures.append_seconds;
  double syncs_per_s = figures.syncs / figures.append_seconds;
  std::cout << "append: " << *entries << " x " << *value_bytes << " B, sync " << plan->name << ": "
            << figures.append_seconds * 1e6 / *entries << " us/entry, " << entries_per_s << " entries/s, "
            << figures.syncs << " syncs (" << syncs_per_s << "/s)\n";
  if (disk_syncs_per_s > 0) {
    std::cout << "disk: " << disk_syncs_per_s << " append+fdatasync/s on a plain file; WAL sync rate is "
              << syncs_per_s / disk_syncs_per_s << " of it\n";
  }
  std::cout << "reopen (scan + verify " << figures.segments << " segments): " << figures.open_seconds * 1e3
            << " ms; replay: " << figures.replayed / figures.replay_seconds << " entries/s\n";
  cli::JsonLine line;
  line.add("bench", "wal").add("entries", *entries).add("value_bytes", *value_bytes).add("sync", plan->name)
      .add("seconds", figures.append_seconds).add("entries_per_s", entries_per_s)
      .add("us_per_entry", figures.append_seconds * 1e6 / *entries).add("syncs", figures.syncs)
      .add("syncs_per_s", syncs_per_s).add("disk_fdatasync_per_s", disk_syncs_per_s)
      .add("sync_rate_vs_disk", disk_syncs_per_s > 0 ? syncs_per_s / disk_syncs_per_s : 0.0)
      .add("segments", figures.segments).add("open_ms", figures.open_seconds * 1e3)
      .add("replay_entries_per_s", figures.replayed / figures.replay_seconds)
      .add("recover_entries_per_s", figures.replayed / (figures.open_seconds + figures.replay_seconds))
      .add("dir", flags.has("keep") ? directory : "");
  std::cout << line.str() << std::endl;
  return cli::exit_ok;
}

int bench_main(const std::vector<std::string>& args) {
  return cli::dispatch("bench",
                       {{"wal", "WAL appends under a sync policy, reopen and replay", bench_wal_main},
                        {"store", "LMDB store puts and loads", bench_store_main},
                        {"recovery", "recovery time of a WAL + LMDB data directory", bench_recovery_main},
                        {"kv", "put or get load on a running cluster", bench_kv_main},
                        {"snapshot", "snapshot take, InstallSnapshot and restore on a 3-node cluster", bench_snapshot_main},
                        {"size", "data directory size and memory under puts, restart time", bench_size_main},
                        {"transfer", "write unavailability across a leadership transfer and a SIGKILL", bench_transfer_main},
                        {"replace", "a follower of a loaded cluster replaced", bench_replace_main}},
                       args, "expects a benchmark: wal, store, recovery, kv, snapshot, size, transfer or replace",
                       "benchmark");
}

}  // namespace keyval::commands
