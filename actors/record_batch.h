// Cap'n Proto frames exchanged by the persistence actors (schema/persistence.capnp):
// record batches and the recovered state. Plain C++, no CAF: the actors carry
// the bytes in a Frame (actors/messages.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/recovery.h"
#include "storage/status.h"
#include "storage/types.h"

namespace keyval {

// One WAL record as it travels between actors. A log or configuration entry travels as its
// frame (`entry`: storage/entry_frame.h), the bytes the WAL and LMDB store, built once when the
// entry was made; the other records as their fields and payload.
struct Record {
  EntryType type = EntryType::log;
  uint64_t index = 0;  // log: 0 asks the wal_writer to assign the next index
  uint64_t term = 0;
  std::vector<uint8_t> payload;  // metadata/snapshot: their Cap'n Proto encoding; empty for entries
  Entry entry;                   // log/configuration: the entry (its index and term are the record's)

  static Record log(uint64_t index, uint64_t term, const std::vector<uint8_t>& payload);
  // A Raft log entry with its type (log or configuration): shares the entry's frame.
  static Record entry_of(const Entry& entry);
  // Holds a Raft log entry (log or configuration), which takes the next index.
  bool is_log_entry() const { return type == EntryType::log || type == EntryType::configuration; }
  // The entry, with the record's index (a wal_writer may have assigned it).
  const Entry& log_entry() {
    entry.index = index;
    return entry;
  }
  // The payload: the entry's, or the record's own.
  ByteView bytes() const { return is_log_entry() ? entry.payload() : ByteView(payload); }
  static Record metadata(const Metadata& metadata);
  static Record snapshot(const SnapshotMetadata& snapshot);
  static Record truncate_after(uint64_t index);
};

std::vector<uint8_t> encode_record_batch(const std::vector<Record>& records);
// Checks each record's checksum; a malformed frame is a corruption Status naming `where`.
Result<std::vector<Record>> decode_record_batch(const std::vector<uint8_t>& bytes, const std::string& where);

// The entries of a batch (log and configuration records only), e.g. a store_indexer read reply.
std::vector<uint8_t> encode_entries(const std::vector<Entry>& entries);
Result<std::vector<Entry>> decode_entries(const std::vector<uint8_t>& bytes, const std::string& where);

std::vector<uint8_t> encode_recovered_state(const RecoveredState& state, const std::string& summary,
                                            const RecoveryFigures& figures = {});
Result<RecoveredState> decode_recovered_state(const std::vector<uint8_t>& bytes, std::string* summary,
                                              RecoveryFigures* figures = nullptr);

}  // namespace keyval
