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
  records @0 :List(Storage.WalEntry);
}

struct RecoveredState {
  currentTerm @0 :UInt64;
  votedFor @1 :UInt64;
  firstIndex @2 :UInt64;
  lastIndex @3 :UInt64;
  lastTerm @4 :UInt64;
  hasSnapshot @5 :Bool;
  snapshot @6 :Storage.SnapshotMetadata;
  summary @7 :Text;      # what recovery did, for the node's log line
  counted @8 :List(UInt64);  # Metadata.counted
  probation @9 :Bool;        # Metadata.probation
}
