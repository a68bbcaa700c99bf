// Cap'n Proto encoding of the persistent types. Cap'n Proto reports malformed
// input with exceptions; they are caught here and never leave this file.
#include "storage/codec.h"

#include <cstring>

#include "schema/storage.capnp.h"
#include "storage/capnp_message.h"
#include "storage/crc32c.h"

namespace keyval {

const char* entry_type_name(EntryType type) {
  switch (type) {
    case EntryType::log: return "log";
    case EntryType::metadata: return "metadata";
    case EntryType::snapshot: return "snapshot";
    case EntryType::truncate: return "truncate";
  }
  return "invalid";
}

bool is_valid_entry_type(uint8_t value) { return value >= 1 && value <= 4; }

std::vector<uint8_t> encode_metadata(const Metadata& metadata) {
  capnp::MallocMessageBuilder builder(16);
  auto root = builder.initRoot<schema::Metadata>();
  root.setCurrentTerm(metadata.current_term);
  root.setVotedFor(metadata.voted_for);
  return message_to_bytes(builder);
}

Result<Metadata> decode_metadata(const uint8_t* data, size_t bytes, const std::string& where) {
  Metadata metadata;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto root = reader.getRoot<schema::Metadata>();
    metadata.current_term = root.getCurrentTerm();
    metadata.voted_for = root.getVotedFor();
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return metadata;
}

std::vector<uint8_t> encode_snapshot_metadata(const SnapshotMetadata& snapshot) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<schema::SnapshotMetadata>();
  root.setLastIncludedIndex(snapshot.last_included_index);
  root.setLastIncludedTerm(snapshot.last_included_term);
  auto members = root.initConfiguration(static_cast<unsigned>(snapshot.configuration.size()));
  for (size_t i = 0; i < snapshot.configuration.size(); ++i) {
    members[static_cast<unsigned>(i)].setId(snapshot.configuration[i].id);
    members[static_cast<unsigned>(i)].setAddress(snapshot.configuration[i].address);
  }
  return message_to_bytes(builder);
}

Result<SnapshotMetadata> decode_snapshot_metadata(const uint8_t* data, size_t bytes, const std::string& where) {
  SnapshotMetadata snapshot;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto root = reader.getRoot<schema::SnapshotMetadata>();
    snapshot.last_included_index = root.getLastIncludedIndex();
    snapshot.last_included_term = root.getLastIncludedTerm();
    for (auto member : root.getConfiguration()) {
      snapshot.configuration.push_back(Member{member.getId(), member.getAddress().cStr()});
    }
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return snapshot;
}

uint32_t entry_checksum(EntryType type, uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes) {
  uint8_t identity[17];
  identity[0] = static_cast<uint8_t>(type);
  std::memcpy(identity + 1, &index, 8);  // little-endian host (crc32c.cc asserts it)
  std::memcpy(identity + 9, &term, 8);
  return crc32c_extend(crc32c(identity, sizeof identity), payload, bytes);
}

std::vector<uint8_t> encode_entry(const Entry& entry) {
  // Room for the root struct, the payload and the segment table in one first segment.
  capnp::MallocMessageBuilder builder(static_cast<unsigned>(8 + entry.payload.size() / 8));
  auto root = builder.initRoot<schema::WalEntry>();
  root.setType(schema::EntryType::LOG);
  root.setIndex(entry.index);
  root.setTerm(entry.term);
  root.setPayload(kj::arrayPtr(entry.payload.data(), entry.payload.size()));
  root.setChecksum(entry_checksum(EntryType::log, entry.index, entry.term, entry.payload.data(), entry.payload.size()));
  return message_to_bytes(builder);
}

Result<Entry> decode_entry(const uint8_t* data, size_t bytes, uint64_t expected_index, const std::string& where) {
  Entry entry;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto root = reader.getRoot<schema::WalEntry>();
    if (root.getType() != schema::EntryType::LOG) {
      return Status::corruption(where + ": stored entry has type " +
                                std::to_string(static_cast<unsigned>(root.getType())) + ", expected log (1)");
    }
    entry.index = root.getIndex();
    entry.term = root.getTerm();
    auto payload = root.getPayload();
    entry.payload.assign(payload.begin(), payload.end());
    uint32_t expected = entry_checksum(EntryType::log, entry.index, entry.term, entry.payload.data(), entry.payload.size());
    if (root.getChecksum() != expected) {
      return Status::corruption(where + ": entry checksum mismatch (stored " + std::to_string(root.getChecksum()) +
                                ", computed " + std::to_string(expected) + ")");
    }
    if (expected_index != 0 && entry.index != expected_index) {
      return Status::corruption(where + ": stored entry has index " + std::to_string(entry.index) + ", expected " +
                                std::to_string(expected_index));
    }
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return entry;
}

}  // namespace keyval
