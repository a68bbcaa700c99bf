# The key-value state machine's commands and results (storage/kv_command.h).
#
# A Raft log entry's payload is an encoded Command (an empty payload is Raft's own
# no-op). Results travel back to clients and are also stored in the client session
# table (LMDB database `sessions`, storage/FORMAT.md) so a retried command is answered
# with its first result. Keys and values are arbitrary bytes.
@0xb01cf870dc0b0df2;

$import "/capnp/c++.capnp".namespace("keyval::schema");

struct Command {
  clientId @0 :UInt64;   # 0: no session (applied every time it is committed, never deduplicated)
  sequence @1 :UInt64;   # per client, starting at 1 and increasing; a retry repeats it
  union {
    noop @2 :Void;       # a client-level no-op (the default of an all-zero message)
    put :group {
      key @3 :Data;
      value @4 :Data;
      # true: the value it replaces is not read, and the result leaves it out (found false,
      # no value): one LMDB search fewer per put (Redis SET without GET, the native put).
      # Entries from before this field read it, as they did.
      blind @18 :Bool;
    }
    delete :group {
      key @5 :Data;
    }
    cas :group {
      key @6 :Data;
      expectedAbsent @7 :Bool;  # true: succeed only when the key does not exist
      expected @8 :Data;        # ignored when expectedAbsent
      newValue @9 :Data;
    }
    # Several keys written in one entry, all or none (Redis MSET, MSETNX, SET NX/XX): keys[i]
    # gets values[i] when `condition` holds for every key, else nothing is written.
    putMany :group {
      keys @10 :List(Data);
      values @11 :List(Data);
      condition @12 :PutCondition;
    }
    # Several keys deleted in one entry (Redis DEL k1 k2 ...).
    deleteMany :group {
      keys @13 :List(Data);
    }
    # The key's value, a signed 64-bit decimal (absent: 0), plus delta (Redis INCR/INCRBY/
    # DECR/DECRBY). A value that is not such a number, or a sum that overflows, is rejected.
    increment :group {
      key @14 :Data;
      delta @15 :Int64;
    }
    # The key's value with `value` appended (absent: `value`) (Redis APPEND).
    append :group {
      key @16 :Data;
      value @17 :Data;
    }
  }
}

enum PutCondition {
  none @0;        # always written
  allAbsent @1;   # only when no key exists (MSETNX, SET NX)
  allPresent @2;  # only when every key exists (SET XX)
}

enum CommandStatus {
  ok @0;              # applied (a cas that did not match is still ok: see casSucceeded)
  staleRequest @1;    # the sequence is below the client's last applied one
  sessionExpired @2;  # unknown client with a sequence past 1: its session was evicted
  rejected @3;        # the command is invalid (undecodable, empty or oversized key)
  alreadyApplied @4;  # the entry was at or below the applied index and its result is gone
}

struct CommandResult {
  status @0 :CommandStatus;
  message @1 :Text;       # why, when status is not ok
  index @2 :UInt64;       # log index of the entry that produced this result
  found @3 :Bool;         # the key existed before the command
  value @4 :Data;         # the value before the command (put, delete, cas)
  casSucceeded @5 :Bool;  # cas: written; putMany: its condition held and the keys were written
  # increment: the new value; append: the new value's length in bytes; putMany, deleteMany:
  # how many of the keys existed before the command. found and value are the first key's.
  number @6 :Int64;
}

# One row of the session table: the client's last applied sequence and its result.
struct Session {
  sequence @0 :UInt64;
  result @1 :CommandResult;
}

# The results of one applied batch, one per entry in order (store_indexer -> state machine).
struct CommandResults {
  results @0 :List(CommandResult);
}
