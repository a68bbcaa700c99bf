// SimDisk: the simulator's disk, an in-memory Env (storage/env.h) shared by every simulated
// node (each under its own directory prefix, e.g. "/n3"). It keeps, per file, what a power
// cut would leave, so a crash can be played out exactly and reproducibly from a seed.
//
// Model (the POSIX contract the WAL relies on, storage/env.h, and nothing more):
//   * Data: bytes written to a file are volatile until File::sync_data() returns ok; the
//     sync makes the file's bytes and size durable. Writes, truncations and preallocations
//     since the last sync are kept in order as a journal.
//   * Names: creating, renaming and removing a file change the directory's volatile view;
//     Env::sync_dir(directory) makes its current view durable. Directories themselves
//     (create_dir) are durable at once.
//   * crash(prefix, ...): a power cut for every file under `prefix`. Each directory reverts
//     to its durable view (a created-but-not-dir-synced file disappears, a rename reverts, a
//     removed file comes back). Each surviving file reverts to its durable bytes, then,
//     when `tear` is set, a seeded random prefix of its journal is replayed, the last
//     write replayed possibly only in part (a torn write: the disk wrote in order and lost
//     power mid-way); with `garbage` the lost part of that torn write reads as random bytes
//     instead of the old contents. File handles opened before the crash become dead: every
//     call on them returns io_error ("crashed"). Locks under the prefix are released.
//   * Faults: fail_syncs(prefix) makes sync_data and sync_dir under the prefix fail with
//     io_error (what fdatasync's EIO looks like); set_capacity(bytes) makes a write,
//     truncate or preallocate that would grow the disk's total size past it fail with
//     no_space, leaving the file unchanged; set_full(prefix) does the same for every growth
//     of a file under the prefix (one node's disk full, the others' not). Writes into space
//     a file already has (a preallocated WAL segment) still succeed, as on a real full disk.
//   * Media faults: bit flips at rest, latent sector errors (reads of a range fail), misdirected
//     writes (a write lands at another offset); see flip_at_rest below.
//   * kill_process(prefix): a process crash (SIGKILL) of the node under `prefix`. Its handles
//     die and its locks are released, nothing else: the page cache survives, so every byte
//     written and every name changed stays readable, still volatile (a later power cut of the
//     same machine may lose what was never synced, even if a restarted node read it).
//   * Boot ids. Each node is its own machine: machine(prefix) is the Env a node under `prefix`
//     uses, the shared disk with the boot id "sim-boot-<prefix>-<power cuts of prefix>",
//     changed by every crash(prefix) and by nothing else. So a node restarted after a process
//     crash finds its boot unchanged and trusts the LMDB it wrote without sync
//     (storage/lmdb_state.h); after a power cut it rebuilds it. SimDisk::boot_id(), for callers
//     that name no machine, changes at every power cut of any node.
// Deterministic: no clock, no global randomness, ordered containers only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/random.h"
#include "storage/env.h"

namespace keyval::sim {

class SimDisk : public Env {
 public:
  SimDisk();
  ~SimDisk() override;

  // Env.
  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override;
  Status sync_dir(const std::string& directory) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Result<std::vector<std::string>> list(const std::string& directory) override;
  Status create_dir(const std::string& directory) override;
  bool exists(const std::string& path) override;
  Result<std::unique_ptr<FileLock>> lock(const std::string& path) override;
  std::string boot_id() override;

  // A power cut under `prefix` (see the model above). `random` decides the torn prefixes.
  void crash(const std::string& prefix, raft::SplitMix64& random, bool tear, bool garbage);
  // A process crash under `prefix`: handles die, locks go, every byte and name stays (above).
  void kill_process(const std::string& prefix);
  // The process dies at its next fdatasync under `prefix`, between its write and the sync:
  // that sync fails ("killed") and kill_process(prefix) happens instead. killed_at_sync tells
  // whether it has happened since it was armed; disarm_kill drops a trap not yet sprung.
  void kill_at_next_sync(const std::string& prefix);
  bool killed_at_sync(const std::string& prefix) const;
  void disarm_kill(const std::string& prefix);

  // The disk as the machine of the node under `prefix` sees it: every call goes to this disk,
  // and boot_id() is that machine's (above). Must not outlive the disk.
  std::unique_ptr<Env> machine(const std::string& prefix);
  std::string boot_id(const std::string& prefix) const;

  // A replaced disk: every file and directory under `prefix` is gone, durably (the node must
  // be down: call crash(prefix, ...) first).
  void wipe(const std::string& prefix);

  // Faults.
  void fail_syncs(const std::string& prefix, bool fail);
  bool syncs_failing(const std::string& prefix) const;  // fail_syncs(prefix, true) is in force
  void set_capacity(uint64_t bytes);  // 0: unlimited
  void set_full(const std::string& prefix, bool full);

  // Media faults (docs/PERSISTENCE.md, "Corruption repaired from peers"), on bytes at rest:
  // flip_at_rest xors `mask` into byte `offset` of the file, both what reads see and what is
  // durable (the file's node should be down: what it had not synced is gone anyway).
  // add_read_error makes every read overlapping [from, to) of the file fail with io_error (a
  // latent sector error) until a write covers the range (the drive remaps the sector) or the
  // file is truncated below it. misdirect_next_write makes the next write to a `.wal` file
  // under `prefix` land `shift_bytes` further into the file than asked (its own place keeps
  // its old bytes): misdirected_writes() counts those that happened.
  Status flip_at_rest(const std::string& path, uint64_t offset, uint8_t mask);
  Status add_read_error(const std::string& path, uint64_t from, uint64_t to);
  void misdirect_next_write(const std::string& prefix, uint64_t shift_bytes);
  uint64_t misdirected_writes() const;

  // Observation.
  uint64_t unsynced_bytes(const std::string& prefix) const;  // journal bytes not yet synced
  uint64_t used_bytes() const;                               // sum of current file sizes
  uint64_t used_bytes(const std::string& prefix) const;      // of the files named under `prefix`
  uint64_t syncs() const;                                    // successful sync_data calls so far
  // Injected faults under `prefix`. faults_met counts the errors returned for them since the
  // last wipe (a failed sync, a full disk, a latent sector's read, a sync the process was
  // killed at). damage_present counts the damage placed (flip_at_rest, add_read_error, a
  // misdirected write) on files that still exist: named under `prefix` now, or removed but
  // still open there; a removed file takes its damage with it, and so does a wipe. A node
  // that stops by itself with faults_met unmoved since its start and no damage present has
  // no fault to blame.
  uint64_t faults_met(const std::string& prefix) const;
  uint64_t damage_present(const std::string& prefix) const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with open File handles
};

}  // namespace keyval::sim
