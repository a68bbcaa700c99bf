// The wal_writer actor: owns the node's WAL.
//
// Persist requests are appended to the WAL's buffer as they arrive; the first one
// after a group commit sends the actor a group_sync message, which the mailbox
// delivers after every request already queued. That message writes and
// fdatasyncs everything at once (group commit) and only then answers each
// requester "durable through index N"; the records go on to the store_indexer in batches
// (WalWriterConfig::index_batch_records).
// Requests arriving during the fdatasync form the next group.
//
// A failed write or sync is fail-stop: every waiting requester gets the error,
// and from then on every request is answered with that same error; nothing is
// retried as if it were safe. The node's owner stops the node when it sees it. The
// queue of unsynced requests is bounded (queue_bytes_max): beyond it a request is
// refused with Code::busy, which is the back-pressure the raft node must honour.
// In a real node it runs detached (its own thread: fdatasync blocks); in the
// simulator on the deterministic scheduler, the WAL's files through the seam.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "actors/messages.h"
#include "metrics/node_metrics.h"
#include "storage/wal.h"

namespace keyval {

struct WalWriterConfig {
  uint64_t queue_bytes_max = 64ull << 20;  // unsynced request bytes before Code::busy
  // A due group commit steps back behind requests already queued at most this many times,
  // so they share its fdatasync (bounded: a steady stream cannot postpone it forever).
  uint32_t group_deferrals_max = 4;
  // Durable records go to the store_indexer in batches: once this many have gathered, or
  // index_delay after the first of a batch. The indexer's LMDB log only speeds up a restart
  // (recovery replays what the WAL holds beyond it, and WAL segments are released only once
  // LMDB holds them durably), so nothing waits for it; a hand-off per group commit woke the
  // indexer's thread, and its answer the writer's, for every fdatasync. 0: every group. A
  // batch holding a snapshot record goes at once (recovery may need LMDB's copy of it).
  uint64_t index_batch_records = 1024;
  std::chrono::milliseconds index_delay{5};
  std::function<void(const std::string&)> log;  // one line per event; stderr when empty
  // fsync durations, entries per group commit, bytes written (metrics/node_metrics.h); null: none.
  std::shared_ptr<metrics::NodeMetrics> metrics;
};

wal_writer_actor spawn_wal_writer(caf::actor_system& system, std::shared_ptr<Wal> wal,
                                  store_indexer_actor indexer, const WalWriterConfig& config, bool detached);

}  // namespace keyval
