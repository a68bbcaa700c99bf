// What the persistence actors say to each other: the Frame that carries a Cap'n
// Proto message (schema/), the atoms, the typed interfaces, and the conversion
// between Status and caf::error. Every actor system of a node must call
// add_message_types() on its config.
#pragma once

#include <caf/all.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/status.h"

namespace keyval {

class Store;

class LmdbCleanStop;
class Env;

// What the recovery coordinator hands the node for its state machine actor: the node's LMDB
// store (the state machine writes its keys there, beside the indexer's log), where snapshots
// are installed from, and the clean-stop mark both writers share (actors/lmdb_clean_stop.h).
// Pointers, so a local message only: nodes never send it over a network.
struct SharedStore {
  std::shared_ptr<Store> store;
  std::shared_ptr<LmdbCleanStop> clean_stop;
  Env* env = nullptr;
  std::string snapshot_directory;
};

// Cap'n Proto bytes in a copyable message element (CAF messages must be copyable).
struct Frame {
  std::vector<uint8_t> bytes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Frame& frame) {
  return f(caf::meta::type_name("keyval.Frame"), frame.bytes);
}

}  // namespace keyval

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(keyval::SharedStore)

CAF_BEGIN_TYPE_ID_BLOCK(keyval, caf::first_custom_type_id)
CAF_ADD_ATOM(keyval, keyval, persist_atom, "persist")
CAF_ADD_ATOM(keyval, keyval, group_sync_atom, "groupsync")
CAF_ADD_ATOM(keyval, keyval, index_atom, "index")
CAF_ADD_ATOM(keyval, keyval, read_atom, "read")
CAF_ADD_ATOM(keyval, keyval, bounds_atom, "bounds")
CAF_ADD_ATOM(keyval, keyval, checkpoint_atom, "checkpoint")
CAF_ADD_ATOM(keyval, keyval, recover_atom, "recover")
CAF_ADD_ATOM(keyval, keyval, stats_atom, "stats")
CAF_ADD_ATOM(keyval, keyval, kv_apply_atom, "kvapply")
CAF_ADD_ATOM(keyval, keyval, kv_get_atom, "kvget")
CAF_ADD_ATOM(keyval, keyval, kv_range_atom, "kvrange")
CAF_ADD_ATOM(keyval, keyval, kv_applied_atom, "kvapplied")
CAF_ADD_ATOM(keyval, keyval, apply_atom, "apply")
CAF_ADD_ATOM(keyval, keyval, wait_atom, "wait")
CAF_ADD_ATOM(keyval, keyval, client_atom, "client")
CAF_ADD_ATOM(keyval, keyval, transport_send_atom, "tsend")
CAF_ADD_ATOM(keyval, keyval, raft_tick_atom, "rafttick")
CAF_ADD_ATOM(keyval, keyval, raft_message_atom, "raftmsg")
CAF_ADD_ATOM(keyval, keyval, raft_propose_atom, "raftprop")
CAF_ADD_ATOM(keyval, keyval, raft_peer_atom, "raftpeer")
CAF_ADD_ATOM(keyval, keyval, raft_status_atom, "raftstat")
CAF_ADD_ATOM(keyval, keyval, raft_read_atom, "raftread")
CAF_ADD_ATOM(keyval, keyval, sweep_atom, "sweep")
CAF_ADD_ATOM(keyval, keyval, snapshot_take_atom, "snaptake")
CAF_ADD_ATOM(keyval, keyval, snapshot_read_atom, "snapread")
CAF_ADD_ATOM(keyval, keyval, snapshot_write_atom, "snapwrite")
CAF_ADD_ATOM(keyval, keyval, snapshot_finish_atom, "snapfin")
CAF_ADD_ATOM(keyval, keyval, snapshot_install_atom, "snapinst")
CAF_ADD_ATOM(keyval, keyval, snapshot_status_atom, "snapstat")
CAF_ADD_ATOM(keyval, keyval, compact_atom, "compact")
CAF_ADD_ATOM(keyval, keyval, hash_atom, "hash")
CAF_ADD_ATOM(keyval, keyval, leader_transfer_atom, "leadxfer")
CAF_ADD_ATOM(keyval, keyval, client_directory_atom, "clientdir")
CAF_ADD_ATOM(keyval, keyval, member_change_atom, "memchange")
CAF_ADD_ATOM(keyval, keyval, member_list_atom, "memlist")
CAF_ADD_ATOM(keyval, keyval, transport_peers_atom, "tpeers")
CAF_ADD_ATOM(keyval, keyval, client_batch_atom, "clientbat")
CAF_ADD_ATOM(keyval, keyval, raft_propose_many_atom, "raftpropm")
CAF_ADD_ATOM(keyval, keyval, wait_many_atom, "waitmany")
CAF_ADD_ATOM(keyval, keyval, kv_get_many_atom, "kvgetmany")
CAF_ADD_ATOM(keyval, keyval, client_gets_atom, "clientgets")
CAF_END_TYPE_ID_BLOCK(keyval)

namespace keyval {

// The wal_writer (actors/wal_writer.h).
using wal_writer_actor = caf::typed_actor<
    // Records (RecordBatch) to append; the reply comes once they are durable and is the
    // index of the request's last log record (the last index of the log for a request
    // without log records). Log records with index 0 get the next index assigned.
    caf::replies_to<persist_atom, Frame>::with<uint64_t>,
    // Internal: the group commit of everything queued since the last one.
    caf::reacts_to<group_sync_atom>,
    // Internal: hand the durable records gathered since the last hand-off to the store_indexer.
    caf::reacts_to<index_atom>,
    // LMDB synced, WAL segments it covers dropped; replies the index LMDB is durable through.
    caf::replies_to<checkpoint_atom>::with<uint64_t>,
    // A snapshot through `index` is durable (file and WAL record): whole segments whose
    // entries are all <= index are released. Replies the segments released and the WAL's
    // first retained index.
    caf::replies_to<compact_atom, uint64_t>::with<uint64_t, uint64_t>,
    // last index, synced index, group commits so far, records appended so far.
    caf::replies_to<stats_atom>::with<uint64_t, uint64_t, uint64_t, uint64_t>>;

// The store_indexer (actors/store_indexer.h).
using store_indexer_actor = caf::typed_actor<
    // Records already durable in the WAL, in WAL order. Replies the index LMDB is now
    // durable through when this batch made it sync, else 0.
    caf::replies_to<index_atom, Frame>::with<uint64_t>,
    // Entries first..last (RecordBatch of log records), bounded in bytes.
    caf::replies_to<read_atom, uint64_t, uint64_t>::with<Frame>,
    // First and last index LMDB holds (0, 0 when empty).
    caf::replies_to<bounds_atom>::with<uint64_t, uint64_t>,
    // Syncs LMDB; replies the index it is durable through.
    caf::replies_to<checkpoint_atom>::with<uint64_t>,
    // Releases the `log` database's entries <= index (compaction); replies how many went.
    caf::replies_to<compact_atom, uint64_t>::with<uint64_t>>;

// The snapshotter (actors/snapshotter.h): all snapshot file I/O of a node.
using snapshotter_actor = caf::typed_actor<
    // Takes a snapshot of the state machine now (configuration: an encoded SnapshotMetadata
    // whose members are used). Replies the snapshot's encoded SnapshotMetadata (index, term,
    // configuration), its file bytes and its keys, once the file is durable and published.
    caf::replies_to<snapshot_take_atom, Frame>::with<Frame, uint64_t, uint64_t>,
    // Bytes [offset, offset + bytes_max) of the published snapshot (index, term) and the
    // file's total size (the leader's InstallSnapshot, a backup).
    caf::replies_to<snapshot_read_atom, uint64_t, uint64_t, uint64_t, uint64_t>::with<Frame, uint64_t>,
    // An incoming snapshot's bytes at `offset` (offset 0 starts it over); replies the next
    // offset it expects (less than offset + size when the bytes did not continue the file).
    caf::replies_to<snapshot_write_atom, uint64_t, uint64_t, uint64_t, Frame>::with<uint64_t>,
    // The incoming snapshot is complete: verified end to end, synced and published.
    // Replies its encoded SnapshotMetadata and keys.
    caf::replies_to<snapshot_finish_atom, uint64_t, uint64_t>::with<Frame, uint64_t>,
    // The WAL now durably names (index, term) as the base snapshot: every older published
    // snapshot goes (newer ones, published but not yet named, stay). Replies how many went.
    caf::replies_to<compact_atom, uint64_t, uint64_t>::with<uint64_t>>;

// The recovery_coordinator (actors/recovery_coordinator.h).
using recovery_coordinator_actor = caf::typed_actor<
    // Recovers the data directory, spawns the wal_writer, store_indexer and snapshotter,
    // and replies the recovered state (schema RecoveredState) with their handles and the
    // store they share (for the state machine's reads).
    caf::replies_to<recover_atom>::with<Frame, wal_writer_actor, store_indexer_actor, snapshotter_actor, SharedStore>>;

// Registers the Frame type and the error category on a node's actor system config.
void add_message_types(caf::actor_system_config& config);

// A Status as a caf::error of the "keyval" category (code and message kept), and back.
caf::error to_error(const Status& status);
Status to_status(const caf::error& error);

}  // namespace keyval
