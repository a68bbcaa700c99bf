// What a crash-test child writes and what the parent must find after it was killed.
//
// Every payload is derived from (cycle, writer, seq) and starts with them, so any entry
// found on disk can be recomputed and checked, acknowledged or not. The Ledger holds every
// entry a child acknowledged as durable, across cycles; verify_directory() recovers a data
// directory with the storage layer alone (no actors, no threads: the parent forks) and
// checks it against the ledger with Boost.Test assertions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/recovery.h"

namespace keyval::testing {

uint64_t mix(uint64_t a, uint64_t b = 0, uint64_t c = 0);

// 16 bytes (u32 cycle, u32 writer, u64 seq), then 0..239 bytes of filler derived from them.
std::vector<uint8_t> payload_for(uint64_t cycle, uint64_t writer, uint64_t seq);

struct Identity {
  uint64_t cycle = 0, writer = 0, seq = 0;
};
// The header of a payload; nullopt when it is too short to hold one.
std::optional<Identity> identity_of(const uint8_t* payload, size_t bytes);

// One entry a child was told is durable: at `index`, term `term`, written by (writer, seq).
struct Ack {
  uint64_t index = 0, term = 0, writer = 0, seq = 0;
};

// Every entry ever acknowledged, across cycles: index -> what the child wrote there.
class Ledger {
 public:
  // Takes a cycle's acknowledgements (in the order the child reported them); notes every
  // one that contradicts an earlier one. `metadata_durable`: the cycle's Metadata{cycle} was.
  void absorb(uint64_t cycle, const std::vector<Ack>& acks, bool metadata_durable);

  const Ack* find(uint64_t index) const;
  size_t size() const { return acked_.size(); }
  uint64_t first_index() const { return acked_.empty() ? 0 : acked_.begin()->first; }
  uint64_t last_index() const { return acked_.empty() ? 0 : acked_.rbegin()->first; }
  uint64_t metadata_term() const { return metadata_term_; }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::map<uint64_t, Ack> acked_;
  uint64_t metadata_term_ = 0;  // highest term whose metadata was acknowledged durable
  std::vector<std::string> problems_;
};

struct Verified {
  RecoveryReport report;
  RecoveredState state;
  uint64_t wal_first_index = 0;
  uint64_t wal_segments = 0;
  uint64_t lmdb_entries_checked = 0;
  uint64_t wal_entries_checked = 0;
  uint64_t acked_only_in_lmdb = 0;  // acknowledged entries below the WAL's first index
};

// Recovers `data_directory` with recover() and checks: every acknowledged index is present
// with its term and payload, LMDB has no gap from first to last index, terms never
// decrease, every entry (acknowledged or not) is one a child wrote, the WAL's retained
// entries agree, and current_term is at least every acknowledged metadata term and the
// last entry's term. The WAL and LMDB are closed on return (the WAL holds a lock).
Verified verify_directory(const std::string& data_directory, const RecoveryOptions& options, const Ledger& ledger,
                          uint64_t voted_for);

}  // namespace keyval::testing
