// The persistent types of a node: log entries, Raft metadata and snapshot
// metadata, as the WAL and the LMDB store take and return them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace keyval {

// What a WAL record holds. Values are part of the on-disk format (schema/storage.capnp).
enum class EntryType : uint8_t {
  log = 1,       // a Raft log entry
  metadata = 2,  // current_term and voted_for
  snapshot = 3,  // snapshot metadata
  truncate = 4,  // the log ends at `index`; entries after it are discarded
  configuration = 5,  // a Raft log entry holding a configuration change (raft/membership.h)
  seal = 6,  // WAL only, never in a log or a message: ends every synced batch (storage/FORMAT.md)
};

const char* entry_type_name(EntryType type);
// The types a log, a message or a persistence request may carry (not seal, which the WAL keeps to itself).
bool is_valid_entry_type(uint8_t value);

// Bytes viewed in place, without owning them (an entry's payload inside its frame).
class ByteView {
 public:
  ByteView() = default;
  ByteView(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  ByteView(const std::vector<uint8_t>& bytes) : data_(bytes.data()), size_(bytes.size()) {}  // NOLINT: implicit
  ByteView(const ByteView&) = default;
  // Only to a named view: `entry.payload() = bytes` would change nothing, so it does not compile.
  ByteView& operator=(const ByteView&) & = default;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const uint8_t* begin() const { return data_; }
  const uint8_t* end() const { return data_ + size_; }
  uint8_t operator[](size_t i) const { return data_[i]; }
  std::vector<uint8_t> to_vector() const { return std::vector<uint8_t>(begin(), end()); }

  friend bool operator==(ByteView a, ByteView b) {
    return a.size_ == b.size_ && (a.size_ == 0 || std::memcmp(a.data_, b.data_, a.size_) == 0);
  }
  friend bool operator!=(ByteView a, ByteView b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& out, ByteView bytes);

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// One Raft log entry. It holds its frame (storage/entry_frame.h): the bytes it is stored and
// sent as, built once when the entry is made and shared by every copy of the entry, so the
// WAL, LMDB and the peers get the same bytes without encoding the entry again. The payload is
// a view into the frame. index, term and type are plain fields; a frame built before one of
// them changed is rebuilt by frame() (only tests and recovery's hand-made entries do that).
struct Entry {
  uint64_t index = 0;
  uint64_t term = 0;
  // log: a state-machine command (empty: the leader's no-op); configuration: the payload is
  // encode_configuration_entry(...) (raft/membership.h), applied by Raft, not the state machine.
  EntryType type = EntryType::log;

  Entry() = default;
  // Frames the payload: one copy of it, one checksum over it.
  Entry(uint64_t index_in, uint64_t term_in, ByteView payload_in, EntryType type_in = EntryType::log);
  Entry(uint64_t index_in, uint64_t term_in, std::initializer_list<uint8_t> payload_in,
        EntryType type_in = EntryType::log)
      : Entry(index_in, term_in, ByteView(payload_in.begin(), payload_in.size()), type_in) {}
  // Takes a frame's bytes (index, term and type are read from its header): bytes that came
  // from another process or from disk only after entry_frame::check accepted them; bytes from
  // another actor of this node as they are (docs/DATAPATH.md: in-process hops check nothing).
  static Entry from_frame(std::shared_ptr<const std::vector<uint8_t>> frame);

  ByteView payload() const;
  void set_payload(ByteView payload_in);
  // The entry's frame, as stored and sent (rebuilt first if index, term or type changed).
  const std::vector<uint8_t>& frame() const;
  const std::shared_ptr<const std::vector<uint8_t>>& shared_frame() const;
  // CRC32C of type, index, term and payload (storage/codec.h entry_checksum), from the frame.
  uint32_t checksum() const;

  bool operator==(const Entry& other) const {
    return index == other.index && term == other.term && type == other.type && payload() == other.payload();
  }
  bool operator!=(const Entry& other) const { return !(*this == other); }

 private:
  bool frame_matches() const;
  mutable std::shared_ptr<const std::vector<uint8_t>> frame_;
};

// Raft's persistent state (Figure 2): set ⇒ durable before any reply that depends on it.
//
// counted and probation guard against a voter whose data directory was lost and re-created
// under the same id (docs/MEMBERSHIP.md, "A voter that lost its data"):
//   counted:   the peers whose promises this node has relied on, ever (sorted, no
//              duplicates): whose vote or append acknowledgement it counted, to whom it
//              granted its vote, whom it followed as leader. A peer is recorded here, durably,
//              before its first vote or acknowledgement counts (and with the vote granted to
//              it); the set only grows.
//   probation: set when `keyval node --bootstrap` creates the directory. Such a node neither
//              votes, campaigns nor acknowledges until every other voter answered that it
//              never counted this node (so this really is the node's first life); cleared
//              durably then. A peer that did count it makes it refuse to serve.
//
// repairing and repair_last_index (docs/PERSISTENCE.md, "Corruption repaired from peers"):
//   repairing: recovery found an entry it could not read (a failed checksum or an I/O error)
//              and discarded the log from there on. Set ⇒ durable before the node takes part.
//              Such a node never votes nor campaigns until its log matches, through the
//              commit index, a leader of term T holding an entry of term T at or below it
//              (then, by Leader Completeness, it holds every committed entry); cleared
//              durably then.
//   repair_last_index: the last index the log held before the damage as far as recovery
//              could tell (a lower bound; 0 when unknown), for the operator and the logs.
struct Metadata {
  Metadata() = default;
  Metadata(uint64_t current_term_in, uint64_t voted_for_in) : current_term(current_term_in), voted_for(voted_for_in) {}

  uint64_t current_term = 0;  // latest term seen; never decreases
  uint64_t voted_for = 0;     // node voted for in current_term, 0 for none
  std::vector<uint64_t> counted;
  bool probation = false;
  bool repairing = false;
  uint64_t repair_last_index = 0;

  bool has_counted(uint64_t id) const { return std::binary_search(counted.begin(), counted.end(), id); }
  // Adds `id` to counted; false when it was there already.
  bool add_counted(uint64_t id) {
    auto at = std::lower_bound(counted.begin(), counted.end(), id);
    if (at != counted.end() && *at == id) return false;
    counted.insert(at, id);
    return true;
  }

  bool operator==(const Metadata& other) const {
    return current_term == other.current_term && voted_for == other.voted_for && counted == other.counted &&
           probation == other.probation && repairing == other.repairing &&
           repair_last_index == other.repair_last_index;
  }
  bool operator!=(const Metadata& other) const { return !(*this == other); }
};

struct Member {
  Member() = default;
  Member(uint64_t id_in, std::string address_in, std::string client_address_in = "", bool learner_in = false)
      : id(id_in), address(std::move(address_in)), client_address(std::move(client_address_in)), learner(learner_in) {}

  uint64_t id = 0;
  std::string address;         // peer address, "host:port"
  std::string client_address;  // where it serves clients, "host:port" (empty: not known)
  bool learner = false;        // a non-voting member (raft/membership.h)

  bool operator==(const Member& other) const {
    return id == other.id && address == other.address && client_address == other.client_address &&
           learner == other.learner;
  }
};

// What a change does. `bootstrap` is only ever the first entry of a new cluster's log
// (index 1, term 1, written identically by every node `keyval node --bootstrap` creates).
enum class ConfChangeKind : uint8_t {
  bootstrap = 0,
  add_learner = 1,  // a new member that receives the log but does not vote
  promote = 2,      // a learner becomes a voter
  remove = 3,       // a member (learner or voter) leaves
};
const char* conf_change_kind_name(ConfChangeKind kind);

// One configuration entry's payload: the change and the configuration that results.
struct ConfigurationEntry {
  ConfChangeKind kind = ConfChangeKind::bootstrap;
  uint64_t node_id = 0;         // the member changed (0 for bootstrap)
  std::vector<Member> members;  // the whole configuration after the change, sorted by id

  bool operator==(const ConfigurationEntry& other) const {
    return kind == other.kind && node_id == other.node_id && members == other.members;
  }
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
