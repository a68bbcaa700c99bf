// The snapshotter actor: every snapshot file of a node goes through it (storage/snapshot.h,
// storage/snapshot_file.h; the format is in storage/FORMAT.md).
//
//   * take: streams the state machine from one LMDB read transaction into a new snapshot
//     file (written beside the final name, fdatasynced, renamed, directory synced).
//     Older snapshots go once the WAL names a newer base (compact). Reading LMDB from this actor while the
//     store_indexer keeps writing is safe: LMDB readers never block writers, and the
//     store makes map growth wait for the reader (Store::read_state_machine).
//   * read: bytes of a published snapshot, for the leader's InstallSnapshot and backups. A
//     read at offset 0 (each transfer and backup begins there) checks the whole file first;
//     a damaged one is moved aside (snapshots/damaged-<name>, logged with its offset) and the
//     reply is corruption: the raft node then takes a new snapshot in its place.
//   * write / finish: an incoming snapshot (InstallSnapshot, §7) is written as it arrives
//     into a temporary file; finish verifies every chunk checksum and the whole-file
//     checksum, syncs it and publishes it. Nothing of a half-received snapshot is ever
//     published: a crash leaves a temporary file that recovery removes; a transfer its sender
//     gave up is removed at the first message after it has been idle incoming_idle_max.
// It does blocking I/O (fdatasync, long reads), so a real node runs it detached; the
// simulator runs it on the deterministic scheduler with the files on its disk.
// Errors are replies, never fail-stop: a failed snapshot leaves the previous one valid and
// the node serving (a full disk, say); the raft node logs it and tries again later.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "actors/messages.h"
#include "storage/env.h"
#include "storage/store.h"

namespace keyval {

struct SnapshotterConfig {
  Env* env = &posix_env();
  std::string directory;                // DATA/snapshots
  uint64_t read_bytes_max = 4ull << 20;  // bound on one read reply
  // An incoming snapshot that took no chunk for this long was given up by its sender (a
  // leader abandons a transfer after a second without progress, RaftNodeConfig, and starts
  // over from offset 0, which replaces it anyway): its temporary file goes at the
  // snapshotter's next message (every node takes snapshots and compacts, so one comes),
  // not only at the next restart.
  std::chrono::milliseconds incoming_idle_max{30'000};
  std::function<void(const std::string&)> log;  // one line per event; silent when empty
};

snapshotter_actor spawn_snapshotter(caf::actor_system& system, std::shared_ptr<Store> store,
                                    const SnapshotterConfig& config, bool detached);

}  // namespace keyval
