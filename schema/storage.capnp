# The durable types of KeyVal's persistence layer.
#
# WAL records carry index, term and type in their fixed binary frame
# (storage/wal_format.h); the payloads of metadata and snapshot records are the
# structs below. The LMDB `log` database stores each entry as its frame
# (storage/entry_frame.h); stores written before frames hold a WalEntry, whose checksum
# (CRC32C over type, index, term and payload, the frame's too) is verified on every load.
@0xf1a21f692fe9c6d4;

$import "/capnp/c++.capnp".namespace("keyval::schema");

enum EntryType {
  invalid @0;    # never written: an all-zero frame is not a record
  log @1;        # a Raft log entry; payload is the command bytes
  metadata @2;   # current_term and voted_for (payload: Metadata)
  snapshot @3;   # snapshot metadata (payload: SnapshotMetadata)
  truncate @4;   # the log ends at `index`: later entries are discarded (Raft conflict)
  configuration @5;  # a Raft log entry holding a configuration change (payload: ConfigurationEntry)
}

struct WalEntry {
  type @0 :EntryType;
  index @1 :UInt64;
  term @2 :UInt64;
  payload @3 :Data;
  checksum @4 :UInt32;   # CRC32C of type, index, term (little-endian) and payload
}

struct Metadata {
  currentTerm @0 :UInt64;  # latest term this node has seen
  votedFor @1 :UInt64;     # candidate voted for in currentTerm, 0 for none
  counted @2 :List(UInt64);  # peers whose vote or acknowledgement this node counted (ascending)
  probation @3 :Bool;        # made by --bootstrap, not yet confirmed by every other voter
  repairing @4 :Bool;        # recovery discarded an unreadable part of the log: repaired from a leader
  repairLastIndex @5 :UInt64;  # the last index the log held before the damage, when known (0: unknown)
}

struct Member {
  id @0 :UInt64;
  address @1 :Text;        # peer address, "host:port"; empty when not known
  clientAddress @2 :Text;  # where it serves clients, "host:port"; empty when not known
  learner @3 :Bool;        # a non-voting member (absent in old data: a voter)
}

enum ConfChangeKind {
  bootstrap @0;    # the first entry of a new cluster's log
  addLearner @1;   # a new non-voting member
  promote @2;      # a learner becomes a voter
  remove @3;       # a member leaves
}

# The payload of a configuration log entry: the change and the whole configuration after it.
struct ConfigurationEntry {
  kind @0 :ConfChangeKind;
  nodeId @1 :UInt64;               # the member changed (0 for bootstrap)
  members @2 :List(Member);        # sorted by id
}

struct SnapshotMetadata {
  lastIncludedIndex @0 :UInt64;
  lastIncludedTerm @1 :UInt64;
  configuration @2 :List(Member);  # the cluster configuration as of lastIncludedIndex
}
