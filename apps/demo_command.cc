// keyval demo: the storage engine end to end on real files. Writes entries and
// metadata through the WAL (group-synced), indexes them into the LMDB store the
// way the store_indexer will (relaxed commits, then one sync), closes both,
// reopens them, checks every entry in both against what was written, and runs
// the data-directory verifier (WAL and LMDB together). Exit 0 only when every check passed.
#include <stdlib.h>

#include <filesystem>
#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "storage/env.h"
#include "storage/store.h"
#include "storage/wal.h"

namespace keyval::commands {
namespace {

constexpr uint64_t demo_sync_every_entries = 1000;
constexpr uint64_t demo_index_batch_entries = 500;

std::vector<uint8_t> demo_payload(uint64_t index, size_t bytes) {
  std::vector<uint8_t> payload(bytes);
  for (size_t i = 0; i < bytes; ++i) payload[i] = static_cast<uint8_t>(index * 31 + i);
  return payload;
}

Status write_phase(const std::string& directory, uint64_t entries, size_t value_bytes) {
  WalOptions wal_options;
  wal_options.segment_bytes = 1ull << 20;  // small segments so the demo rotates
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Wal> wal, Wal::open(posix_env(), directory + "/wal", wal_options));
  StoreOptions store_options;
  store_options.sync_mode = SyncMode::relaxed;
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::open(directory + "/lmdb", store_options));
  KV_RETURN_IF_ERROR(wal->save_metadata(Metadata{3, 1}));
  std::vector<Entry> batch;
  for (uint64_t index = wal->next_index(); index <= entries; ++index) {
    Entry entry{index, 3, demo_payload(index, value_bytes)};
    KV_RETURN_IF_ERROR(wal->append(entry));
    batch.push_back(std::move(entry));
    if (index % demo_sync_every_entries == 0) KV_RETURN_IF_ERROR(wal->sync());
    if (batch.size() == demo_index_batch_entries) {
      KV_RETURN_IF_ERROR(wal->sync());  // the store only ever holds durable entries
      KV_RETURN_IF_ERROR(store->save_entries(batch));
      batch.clear();
    }
  }
  KV_RETURN_IF_ERROR(wal->sync());
  if (!batch.empty()) KV_RETURN_IF_ERROR(store->save_entries(batch));
  KV_RETURN_IF_ERROR(store->save_metadata(Metadata{3, 1}));
  KV_RETURN_IF_ERROR(store->save_positions(StorePositions{entries, 0}));
  KV_RETURN_IF_ERROR(store->sync());
  std::cout << "wrote " << entries << " entries of " << value_bytes << " B into " << wal->segment_count()
            << " WAL segments and the LMDB store\n";
  return Status::ok();
}

Status check_phase(const std::string& directory, uint64_t entries, size_t value_bytes) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Wal> wal, Wal::open(posix_env(), directory + "/wal"));
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::open(directory + "/lmdb"));
  std::cout << "reopened: WAL " << wal->first_index() << ".." << wal->last_index() << " in " << wal->segment_count()
            << " segments (" << wal->open_report().torn_bytes << " torn bytes cut)\n";
  if (wal->last_index() != entries || !wal->metadata() || !(*wal->metadata() == Metadata{3, 1})) {
    return Status::corruption("WAL after reopen ends at " + std::to_string(wal->last_index()) + ", expected " +
                              std::to_string(entries) + " with term 3 vote 1");
  }
  uint64_t checked = 0;
  KV_RETURN_IF_ERROR(wal->replay(1, [&](const EntryView& view) {
    std::vector<uint8_t> expected = demo_payload(view.index, value_bytes);
    if (view.term != 3 || view.payload_bytes != expected.size() ||
        !std::equal(expected.begin(), expected.end(), view.payload)) {
      return Status::corruption("WAL entry " + std::to_string(view.index) + " differs from what was written");
    }
    ++checked;
    return Status::ok();
  }));
  KV_ASSIGN_OR_RETURN(std::vector<Entry> stored, store->load_range(1, entries));
  for (const Entry& entry : stored) {
    if (!(entry == Entry{entry.index, 3, demo_payload(entry.index, value_bytes)})) {
      return Status::corruption("LMDB entry " + std::to_string(entry.index) + " differs from what was written");
    }
  }
  if (stored.size() != entries) {
    return Status::corruption("LMDB holds " + std::to_string(stored.size()) + " entries, expected " +
                              std::to_string(entries));
  }
  std::cout << "checked " << checked << " WAL entries and " << stored.size() << " LMDB entries: all match\n";
  return Status::ok();
}

}  // namespace

int demo_main(const std::vector<std::string>& args) {
  const cli::Command command = cli::Command("demo", "write, reopen and verify a WAL + LMDB store (a storage check)")
                                   .value("dir", "a new temporary directory", "where the store is written (new or empty)")
                                   .value("entries", "20000", "entries written")
                                   .value("value-bytes", "128", "bytes of each entry");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  auto entries = flags.get_u64("entries", 20000);
  auto value_bytes = flags.get_u64("value-bytes", 128);
  if (!entries.is_ok()) return cli::usage_error("demo", entries.status().message());
  if (!value_bytes.is_ok()) return cli::usage_error("demo", value_bytes.status().message());
  if (*entries == 0) return cli::usage_error("demo", "--entries must be at least 1");
  std::string directory = flags.get("dir");
  bool temporary = directory.empty();
  if (temporary) {
    auto made = cli::make_temp_directory("demo");
    if (!made.is_ok()) return cli::usage_error("demo", made.status().to_string());
    directory = *made;
  } else if (posix_env().exists(directory) && !std::filesystem::is_empty(directory)) {
    return cli::usage_error("demo", "--dir " + directory + " is not empty; give a new or empty directory");
  }
  double start = cli::monotonic_seconds();
  Status status = write_phase(directory, *entries, *value_bytes);
  if (status.is_ok()) status = check_phase(directory, *entries, *value_bytes);
  if (status.is_ok()) {
    std::cout << "keyval wal verify " << directory << "  (WAL and LMDB together)\n";
    if (wal_main({"verify", directory}) != cli::exit_ok) status = Status::corruption("wal verify failed");
  }
  if (temporary) {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
  if (!status.is_ok()) {
    std::cerr << "keyval demo: FAILED: " << status.to_string() << "\n";
    return 1;
  }
  std::cout << "demo passed in " << (cli::monotonic_seconds() - start) << " s"
            << (temporary ? "" : " (data kept in " + directory + ")") << "\n";
  return cli::exit_ok;
}

}  // namespace keyval::commands
