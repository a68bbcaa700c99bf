# The client protocol (actors/client_protocol.h): what a client asks a node and what it
# answers. One message per frame, over a client's TCP connection or, in the simulator,
# between a simulated client and a node's client gateway.
#
# Keys and values are arbitrary bytes. Decoders refuse an unknown op or status, and a
# put/get/del/cas whose key is empty or longer than kv_key_bytes_max (storage/kv_command.h).
@0xcb67272f04fc2eae;

$import "/capnp/c++.capnp".namespace("keyval::schema");

struct ClientRequest {
  requestId @0 :UInt64;  # echoed in the response, so a connection can have several requests in flight
  clientId @1 :UInt64;   # writes: the session (0: no session, never deduplicated)
  sequence @2 :UInt64;   # writes: per client from 1, a retry repeats it (dissertation §6.3)
  # The union's order equals ClientOp's values: an all-zero message is a put with an empty
  # key, which the decoder refuses.
  union {
    put :group {
      key @3 :Data;
      value @4 :Data;
      blind @41 :Bool;  # the answer need not carry the value replaced (Command.put.blind)
    }
    get :group {
      key @5 :Data;
    }
    del :group {
      key @6 :Data;
    }
    cas :group {
      key @7 :Data;
      expectedAbsent @8 :Bool;  # true: succeed only when the key does not exist
      expected @9 :Data;        # the value required; ignored when expectedAbsent
      newValue @10 :Data;
    }
    status @11 :Void;           # the node's view: id, term, commit and applied index, role, log bounds
    # A backup, step 1 (the leader only): every write acknowledged before this request is in
    # a fresh durable snapshot; the answer names it (snapshotIndex, snapshotTerm) and its size
    # (totalBytes).
    snapshotBegin @12 :Void;
    # A backup, step 2: bytes of that snapshot file from `offset` (at most
    # client_snapshot_chunk_bytes_max); the answer holds them in `chunk`, with totalBytes.
    snapshotChunk :group {
      index @13 :UInt64;
      term @14 :UInt64;
      offset @15 :UInt64;
    }
    # Leadership transfer (thesis §3.10), to the leader: hand leadership to node `target` (0:
    # the most up-to-date follower), answered once it is over. ok: nodeId handed over to
    # leaderHint, which leads in `term`; unavailable: it did not happen (message says why).
    leaderTransfer :group {
      target @17 :UInt64;
    }
    # Membership (docs/MEMBERSHIP.md; Raft thesis §4.1, one server at a time). memberList: the
    # configuration this node uses (any node answers; a leader's answer has match indexes).
    memberList @18 :Void;
    # To the leader: add node `nodeId` as a learner (it receives the log, does not vote), at
    # peer address `peerAddress` and client address `clientAddress`. `learner` must be true: a
    # member joins as a learner and becomes a voter by memberPromote once caught up.
    memberAdd :group {
      nodeId @19 :UInt64;
      peerAddress @20 :Text;
      clientAddress @21 :Text;
      learner @22 :Bool;
    }
    # To the leader: make learner `nodeId` a voter (refused while it is far behind).
    memberPromote :group {
      nodeId @23 :UInt64;
    }
    # To the leader: remove member `nodeId`. Removing the leader itself first hands leadership
    # to another voter and answers notLeader naming it: ask the new leader again.
    memberRemove :group {
      nodeId @24 :UInt64;
    }
    # A range read: the pairs with from <= key < to (`to` empty: to the last key), in key
    # order, at most `limit` (0: no limit) and about `bytesMax` bytes of keys and values per
    # answer (0: the node's bound, range_bytes_max; a larger value is capped to it). The answer
    # says `more` when it stopped at a bound: ask again from the last key + "\0".
    # countOnly: only the number of pairs (within limit); keysOnly: no values.
    range :group {
      from @25 :Data;
      to @26 :Data;
      limit @27 :UInt64;
      bytesMax @28 :UInt64;
      keysOnly @29 :Bool;
      countOnly @30 :Bool;
    }
    # Atomic multi-key and read-modify-write commands (storage/kv_command.h; the Redis
    # gateway's MSET, MSETNX, SET NX/XX, DEL k..., INCRBY, APPEND): one log entry each.
    # putMany: keys[i] gets values[i] when `condition` (kv.capnp PutCondition's numbers) holds
    # for every key; the answer's casSucceeded says whether it wrote, `number` how many keys
    # existed, found/value the first key's previous value.
    putMany :group {
      keys @32 :List(Data);
      values @33 :List(Data);
      condition @34 :UInt8;
    }
    # deleteMany: the keys deleted; `number`: how many existed.
    deleteMany :group {
      keys @35 :List(Data);
    }
    # increment: the key's decimal value plus delta; `number`: the new value. A value that is
    # not a signed 64-bit decimal, or an overflow, is rejected.
    increment :group {
      key @36 :Data;
      delta @37 :Int64;
    }
    # append: `value` appended to the key's value; `number`: the new length.
    append :group {
      key @38 :Data;
      value @39 :Data;
    }
  }
  # get, range: serve from this node's applied state without a ReadIndex: possibly stale (a
  # follower behind, a deposed leader), never blocked by an election. Linearizable when false.
  serializable @31 :Bool;
  # status: also hash the key-value state (stateHash at hashIndex), as `etcdctl endpoint hashkv`.
  # It reads the whole state: ask for it when wanted, not on every status.
  hash @16 :Bool;
  # The directory fingerprint (ClientResponse.directoryVersion) of the member list the client
  # holds: an answer leaves `members` out when the answering node's directory has this
  # fingerprint. 0: the client holds none (members always sent).
  directoryKnown @40 :UInt64;
}

# Numbers are part of the wire format and equal keyval::ClientStatus's values.
enum ClientStatus {
  ok @0;              # done; the response's fields hold the answer
  notLeader @1;       # not the leader: ask leaderHint (0: unknown); nothing was done
  noLeader @2;        # no leader known right now: retry later; nothing was done
  timeout @3;         # gave up waiting: the write may or may not take effect (retry with the same sequence)
  rejected @4;        # invalid request (bad key, malformed): nothing was done
  staleRequest @5;    # the session has a later sequence already: not applied
  sessionExpired @6;  # the session was evicted: not applied
  lost @7;            # proposed, but leadership changed and another entry took its place: not applied
  busy @8;            # the node is overloaded (back-pressure): nothing was done
  unavailable @9;     # the node is stopping or failed: the write may or may not take effect
}

struct ClientResponse {
  requestId @0 :UInt64;
  status @1 :ClientStatus;
  message @2 :Text;         # why, when status is not ok
  leaderHint @3 :UInt64;    # the node id this node believes leads (0: unknown); always filled
  # get: whether the key exists and its value. put, del, cas: whether the key existed before
  # the command and its previous value.
  found @4 :Bool;
  value @5 :Data;
  casSucceeded @6 :Bool;    # cas: the comparison matched and the new value was written
  index @7 :UInt64;         # writes: the log index of the entry; get: the read index served
  # The answering node's id (every answer); status: the answering node's view.
  nodeId @8 :UInt64;
  term @9 :UInt64;
  commitIndex @10 :UInt64;
  appliedIndex @11 :UInt64;
  role @12 :Text;           # "leader", "follower", "candidate", "pre_candidate"
  # status: the log bounds (the node's latest snapshot; its first and last log index).
  # snapshotBegin, snapshotChunk: the backup snapshot's index and term.
  snapshotIndex @13 :UInt64;
  snapshotTerm @14 :UInt64;
  firstIndex @15 :UInt64;
  lastIndex @16 :UInt64;
  # status with hash: the key-value state's hash (storage/snapshot.h hash_state_machine) and
  # the applied index it was computed at; hashed says they are filled in.
  hashed @17 :Bool;
  stateHash @18 :UInt64;
  hashIndex @19 :UInt64;
  # snapshotBegin: the snapshot file's size; snapshotChunk: the same, and its bytes from the
  # requested offset (empty at the end of the file).
  totalBytes @20 :UInt64;
  chunk @21 :Data;
  # Every answer, whatever its status: where the cluster's nodes serve clients, so a client
  # given one reachable endpoint finds the others (nodeId above names the answering node in
  # every answer). leaderClientAddress is leaderHint's client address, "HOST:PORT" ("": not
  # known to the answering node); members is the configuration as the answering node knows it.
  leaderClientAddress @22 :Text;
  members @23 :List(ClientMember);
  # memberList, memberAdd, memberPromote, memberRemove (ok): the configuration in use at the
  # answering node, the index of its entry (0: from a snapshot or the node's flags) and whether
  # that entry is committed. memberAdd/Promote/Remove answer once their entry is committed
  # (`index` and `term` name it); lost: another entry took its index; rejected: refused, and
  # `message` says why (one change at a time, a learner far behind, ...).
  configurationIndex @24 :UInt64;
  configurationCommitted @25 :Bool;
  configuration @26 :List(ConfigurationMember);
  # range: the pairs in key order (values empty with keysOnly; none with countOnly), how many
  # (returned, or counted with countOnly) and whether keys are left past a bound.
  keys @27 :List(Data);
  values @28 :List(Data);
  rangeCount @29 :UInt64;
  more @30 :Bool;
  # putMany, deleteMany, increment, append: the number their comment names.
  number @31 :Int64;
  # Every answer: the fingerprint of the answering node's directory (its member list with
  # their client addresses; 0: it has none). `members` is left out when the request's
  # directoryKnown equals it: the client holds that list already.
  directoryVersion @32 :UInt64;
}

# One member of a configuration as member_list answers it. matchIndex: the leader's view of
# how far the member's log matches its own (the leader's own last index for itself); 0 when
# the answering node is not the leader.
struct ConfigurationMember {
  nodeId @0 :UInt64;
  peerAddress @1 :Text;
  clientAddress @2 :Text;
  learner @3 :Bool;
  matchIndex @4 :UInt64;
}

# A member of the cluster and the address it serves clients on ("HOST:PORT"; "": not known to
# the answering node). Nodes tell each other their client address with their raft messages
# (schema/raft.capnp senderClientAddress).
struct ClientMember {
  nodeId @0 :UInt64;
  clientAddress @1 :Text;
}

# A batch of linearizable gets inside one node, never on a socket: from a listener (the Redis
# gateway's plain GET and MGET commands, the native listener's gets of one cycle, the
# simulator's client port) to the node's client gateway (actors/client_gateway.h
# client_gets_atom). The keys share one ReadIndex, one read and one answer, with no request
# or response struct per key. At most get_batch_keys_max keys (actors/client_protocol.h).
struct GetBatch {
  keys @0 :List(Data);
  # As ClientRequest.directoryKnown: the header of the answer leaves the members out when
  # the gateway's directory has this fingerprint.
  directoryKnown @1 :UInt64;
}

# The answer to a GetBatch: `header` says for the whole batch what a get's answer says (status,
# why, the leader, the read index served, the answering node and its directory); when it is
# ok, found[i] and values[i] are keys[i]'s, and the lists are as long as the keys.
struct GetBatchAnswer {
  header @0 :ClientResponse;
  found @1 :List(Bool);
  values @2 :List(Data);
}
