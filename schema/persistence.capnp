# Messages between a node's persistence actors (actors/): the raft node asks the
# wal_writer to persist records, the wal_writer hands durable records to the
# store_indexer, the store_indexer answers reads, and the recovery_coordinator
# hands the recovered state to whoever asked.
@0xc03d5f85e2806834;

$import "/capnp/c++.capnp".namespace("keyval::schema");

using Storage = import "storage.capnp";

# Records in WAL order: log and configuration entries (type 5, a Raft log entry like a log
# record, see schema/storage.capnp), metadata, snapshot metadata, truncations.
# A log record with index 0 asks the wal_writer to assign the next index.
struct RecordBatch {
  records @0 :List(PersistRecord);  # in process only, never stored: changed freely
}

# A log or configuration entry travels as its frame (storage/entry_frame.h), the bytes the WAL
# and LMDB store; metadata, snapshot and truncate records as their fields and payload.
struct PersistRecord {
  frame @0 :Data;
  type @1 :Storage.EntryType;
  index @2 :UInt64;
  term @3 :UInt64;
  payload @4 :Data;
}

# What recovery found, from the recovery coordinator to whoever asked (in process, never stored).
struct RecoveredState {
  metadata @0 :Storage.Metadata;
  firstIndex @1 :UInt64;
  lastIndex @2 :UInt64;
  lastTerm @3 :UInt64;
  hasSnapshot @4 :Bool;
  snapshot @5 :Storage.SnapshotMetadata;
  summary @6 :Text;      # what recovery did, for the node's log line
  entriesRecovered @7 :UInt64;  # RecoveryFigures (storage/recovery.h)
  tornBytesCut @8 :UInt64;
  lmdbRebuilt @9 :Bool;
}
