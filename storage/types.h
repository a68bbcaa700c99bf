// The persistent types of a node: log entries, Raft metadata and snapshot
// metadata, as the WAL and the LMDB store take and return them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keyval {

// What a WAL record holds. Values are part of the on-disk format (schema/storage.capnp).
enum class EntryType : uint8_t {
  log = 1,       // a Raft log entry
  metadata = 2,  // current_term and voted_for
  snapshot = 3,  // snapshot metadata
  truncate = 4,  // the log ends at `index`; entries after it are discarded
};

const char* entry_type_name(EntryType type);
bool is_valid_entry_type(uint8_t value);

// One Raft log entry.
struct Entry {
  uint64_t index = 0;
  uint64_t term = 0;
  std::vector<uint8_t> payload;

  bool operator==(const Entry& other) const {
    return index == other.index && term == other.term && payload == other.payload;
  }
};

// Raft's persistent state (Figure 2): set ⇒ durable before any reply that depends on it.
struct Metadata {
  uint64_t current_term = 0;  // latest term seen; never decreases
  uint64_t voted_for = 0;     // node voted for in current_term, 0 for none

  bool operator==(const Metadata& other) const {
    return current_term == other.current_term && voted_for == other.voted_for;
  }
};

struct Member {
  uint64_t id = 0;
  std::string address;  // "host:port"

  bool operator==(const Member& other) const { return id == other.id && address == other.address; }
};

struct SnapshotMetadata {
  uint64_t last_included_index = 0;
  uint64_t last_included_term = 0;
  std::vector<Member> configuration;

  bool operator==(const SnapshotMetadata& other) const {
    return last_included_index == other.last_included_index &&
           last_included_term == other.last_included_term && configuration == other.configuration;
  }
};

}  // namespace keyval
