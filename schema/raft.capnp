# The messages Raft nodes exchange (raft/message.h), as a transport carries them between
# nodes in a Frame, over TCP or through the simulator's network (actors/raft_wire.h).
#
# One flat struct for every type, as raft/message.h (etcd's raftpb.Message): each field says
# which types use it; the others are left at zero. Numbers of the enum are part of the wire
# format and equal raft::MessageType's values. Decoders refuse an unknown type, from or to 0,
# and an entry with index 0 (actors/raft_wire.cc).
@0xa4aab7cf7b2f807a;

$import "/capnp/c++.capnp".namespace("keyval::schema");

using Storage = import "storage.capnp";

enum RaftMessageType {
  invalid @0;                # never sent: an all-zero message is not a Raft message
  requestVote @1;            # §5.2: a candidate asks for a vote in `term`
  requestVoteResponse @2;    # voteGranted
  preVote @3;                # would you vote for me in `term` (= my term + 1)? Changes no state.
  preVoteResponse @4;        # voteGranted
  appendEntries @5;          # §5.3: entries (empty for a heartbeat) and the leader's commit index
  appendEntriesResponse @6;  # success, matchIndex or the conflict hint
  installSnapshot @7;        # §7: replace your log by the snapshot (snapshotIndex, snapshotTerm)
  snapshotChunk @8;          # host to host: chunkData of the snapshot file from chunkOffset
  snapshotChunkResponse @9;  # host to host: the next chunkOffset wanted, chunkError, chunkDone
  timeoutNow @10;            # §3.10 leadership transfer: the leader asks the recipient to campaign now
  probationQuery @11;        # a voter on probation asks: did you ever count my vote or acknowledgement?
  probationAnswer @12;       # probationCounted, and the answerer's configuration
}

# One Raft log entry (storage/types.h Entry).
struct RaftEntry {
  index @0 :UInt64;   # from 1; 0 is refused
  term @1 :UInt64;
  payload @2 :Data;   # log: an encoded kv Command (schema/kv.capnp), empty: Raft's own no-op;
                      # configuration: a Storage.ConfigurationEntry (raft/membership.h)
  type @3 :Storage.EntryType = log;  # log or configuration; anything else is refused
  checksum @4 :UInt32;  # CRC32C of type, index, term and payload: the WAL entry's own
                        # (storage/codec.h entry_checksum), checked where the entry arrives
}

struct RaftMessage {
  type @0 :RaftMessageType;
  from @1 :UInt64;          # sender's node id (never 0)
  to @2 :UInt64;            # receiver's node id (never 0)
  term @3 :UInt64;          # the sender's currentTerm (for preVote: the term it would campaign in)

  # requestVote, preVote: the candidate's last log position, for the §5.4.1 up-to-date check.
  lastLogIndex @4 :UInt64;
  lastLogTerm @5 :UInt64;

  # requestVoteResponse, preVoteResponse.
  voteGranted @6 :Bool;

  # appendEntries (§5.3): entries follow (prevLogIndex, prevLogTerm).
  prevLogIndex @7 :UInt64;
  prevLogTerm @8 :UInt64;
  entries @9 :List(RaftEntry);  # written by nodes before KVPEER04; no longer read (see frames)
  leaderCommit @10 :UInt64;

  # appendEntriesResponse. On success, matchIndex is the last index the request covered.
  # On rejection: rejectIndex is the request's prevLogIndex (so the leader can tell a stale
  # rejection from a fresh one), and the conflict hint for fast back-off (§5.3, end):
  # conflictTerm is the follower's term at rejectIndex and conflictIndex the first index it
  # holds with that term; conflictTerm 0 means the follower's log is too short and
  # conflictIndex is its last index + 1.
  success @11 :Bool;
  matchIndex @12 :UInt64;
  rejectIndex @13 :UInt64;
  conflictTerm @14 :UInt64;
  conflictIndex @15 :UInt64;

  # appendEntries and its response: the leader's ReadIndex round (§6.4), echoed back.
  readContext @16 :UInt64;

  # installSnapshot (also uses leaderCommit), snapshotChunk, snapshotChunkResponse: the
  # snapshot's last included index and its term.
  snapshotIndex @17 :UInt64;
  snapshotTerm @18 :UInt64;

  # snapshotChunk: chunkData is the file's bytes from chunkOffset, of chunkTotalBytes in all;
  # chunkDone marks the last chunk. snapshotChunkResponse: chunkOffset is where the receiver
  # wants the next chunk from; chunkError asks to restart from chunkOffset (0: from scratch);
  # chunkDone says the receiver has the whole file.
  chunkOffset @19 :UInt64;
  chunkTotalBytes @20 :UInt64;
  chunkDone @21 :Bool;
  chunkData @22 :Data;
  chunkError @23 :Bool;

  # requestVote: a campaign started by timeoutNow (§3.10); voters grant it within a leader's lease.
  leadershipTransfer @24 :Bool;

  # Every type: the address the sender serves clients on ("HOST:PORT"; empty: none, as in the
  # simulator). Receivers record it per sender so a client's answer can name the leader's and
  # every member's client address (schema/client.capnp ClientMember). Not Raft state: the core
  # never sees it.
  senderClientAddress @25 :Text;

  # installSnapshot: the cluster configuration as of snapshotIndex (the snapshot's metadata),
  # which the receiving core adopts with the snapshot (raft/membership.h); probationAnswer:
  # the answerer's configuration in use.
  configuration @26 :List(Storage.Member);

  # probationAnswer: the answerer counted the asker's vote or acknowledgement before (raft/probation.cc).
  probationCounted @27 :Bool;

  # snapshotChunk: the sender's round of its transfer (each rewind starts a new one);
  # snapshotChunkResponse: the round of the chunk it answers, so the sender can tell answers to
  # chunks sent before a rewind apart (0: a peer that sends no rounds; taken as current).
  chunkRound @28 :UInt64;

  # appendEntries: the entries, each as its frame (storage/entry_frame.h: the bytes the leader
  # wrote to its WAL, with their CRC32C), checked by the receiver. Replaced `entries` (KVPEER04).
  frames @29 :List(Data);

  # appendEntries, installSnapshot: the leader's sequence number of this request to this
  # follower, and the follower incarnation it heard a repairing answer from (0: none).
  # appendEntriesResponse: the request's sequence, echoed, and the sender's own incarnation
  # (drawn at each start). A leader ignores successes from an earlier incarnation that answer
  # requests sent before it heard the repairing one (raft/replication.cc).
  sequence @30 :UInt64;
  incarnation @31 :UInt64;
}
