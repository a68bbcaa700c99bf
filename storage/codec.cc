// Cap'n Proto encoding of the persistent types. Cap'n Proto reports malformed
// input with exceptions; they are caught here and never leave this file.
#include "storage/codec.h"

#include "storage/entry_frame.h"

#include <cstring>

#include "schema/storage.capnp.h"
#include "storage/capnp_message.h"
#include "storage/crc32c.h"
#include "storage/member_codec.h"
#include "storage/metadata_codec.h"
#include "storage/status.h"

namespace keyval {

const char* entry_type_name(EntryType type) {
  switch (type) {
    case EntryType::log: return "log";
    case EntryType::metadata: return "metadata";
    case EntryType::snapshot: return "snapshot";
    case EntryType::truncate: return "truncate";
    case EntryType::configuration: return "configuration";
    case EntryType::seal: return "seal";
  }
  return "invalid";
}

bool is_valid_entry_type(uint8_t value) { return value >= 1 && value <= 5; }

const char* conf_change_kind_name(ConfChangeKind kind) {
  switch (kind) {
    case ConfChangeKind::bootstrap: return "bootstrap";
    case ConfChangeKind::add_learner: return "add_learner";
    case ConfChangeKind::promote: return "promote";
    case ConfChangeKind::remove: return "remove";
  }
  return "invalid";
}

namespace {

// Only these two entry types are Raft log entries (the rest are WAL bookkeeping).
bool is_log_entry_type(schema::EntryType type) {
  return type == schema::EntryType::LOG || type == schema::EntryType::CONFIGURATION;
}

}  // namespace

std::vector<uint8_t> encode_metadata(const Metadata& metadata) {
  return encode_message(16, [&](capnp::MessageBuilder& builder) {
    set_metadata(builder.initRoot<schema::Metadata>(), metadata);
  });
}

Result<Metadata> decode_metadata(const uint8_t* data, size_t bytes, const std::string& where) {
  Metadata metadata;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    KV_ASSIGN_OR_RETURN(metadata, get_metadata(reader.getRoot<schema::Metadata>(), where));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return metadata;
}

std::vector<uint8_t> encode_snapshot_metadata(const SnapshotMetadata& snapshot) {
  const size_t words = 1 + struct_words<schema::SnapshotMetadata>() + members_words(snapshot.configuration);
  return encode_message(static_cast<unsigned>(words), [&](capnp::MessageBuilder& builder) {
    auto root = builder.initRoot<schema::SnapshotMetadata>();
    root.setLastIncludedIndex(snapshot.last_included_index);
    root.setLastIncludedTerm(snapshot.last_included_term);
    set_members(root.initConfiguration(static_cast<unsigned>(snapshot.configuration.size())), snapshot.configuration);
  });
}

Result<SnapshotMetadata> decode_snapshot_metadata(const uint8_t* data, size_t bytes, const std::string& where) {
  SnapshotMetadata snapshot;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto root = reader.getRoot<schema::SnapshotMetadata>();
    snapshot.last_included_index = root.getLastIncludedIndex();
    snapshot.last_included_term = root.getLastIncludedTerm();
    snapshot.configuration = get_members(root.getConfiguration());
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return snapshot;
}

std::vector<uint8_t> encode_configuration_entry(const ConfigurationEntry& entry) {
  const size_t words = 1 + struct_words<schema::ConfigurationEntry>() + members_words(entry.members);
  return encode_message(static_cast<unsigned>(words), [&](capnp::MessageBuilder& builder) {
    auto root = builder.initRoot<schema::ConfigurationEntry>();
    root.setKind(static_cast<schema::ConfChangeKind>(entry.kind));
    root.setNodeId(entry.node_id);
    set_members(root.initMembers(static_cast<unsigned>(entry.members.size())), entry.members);
  });
}

Result<ConfigurationEntry> decode_configuration_entry(const uint8_t* data, size_t bytes, const std::string& where) {
  ConfigurationEntry entry;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto root = reader.getRoot<schema::ConfigurationEntry>();
    const auto kind = static_cast<uint16_t>(root.getKind());
    if (kind > static_cast<uint16_t>(ConfChangeKind::remove)) {
      return Status::corruption(where + ": configuration entry has unknown kind " + std::to_string(kind));
    }
    entry.kind = static_cast<ConfChangeKind>(kind);
    entry.node_id = root.getNodeId();
    entry.members = get_members(root.getMembers());
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return entry;
}

uint32_t entry_checksum(EntryType type, uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes) {
  uint8_t identity[17];
  identity[0] = static_cast<uint8_t>(type);
  std::memcpy(identity + 1, &index, 8);  // little-endian host (crc32c.cc asserts it)
  std::memcpy(identity + 9, &term, 8);
  return crc32c_extend(crc32c(identity, sizeof identity), payload, bytes);
}

std::vector<uint8_t> encode_entry(const Entry& entry) {
  KV_ASSERT(entry.type == EntryType::log || entry.type == EntryType::configuration);
  return entry.frame();
}

Result<Entry> decode_entry(const uint8_t* data, size_t bytes, uint64_t expected_index, const std::string& where) {
  if (entry_frame::looks_like_frame(data, bytes)) return entry_frame::decode(data, bytes, expected_index, where);
  // The older form, a Cap'n Proto WalEntry (written before entry frames, 2026-12-06): a
  // one-segment message starts with a zero word count too, but is never 32 bytes longer than
  // the number in its second word (storage/FORMAT.md).
  Entry entry;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto root = reader.getRoot<schema::WalEntry>();
    if (!is_log_entry_type(root.getType())) {
      return Status::corruption(where + ": stored entry has type " +
                                std::to_string(static_cast<unsigned>(root.getType())) +
                                ", expected log (1) or configuration (5)");
    }
    entry.type = static_cast<EntryType>(root.getType());
    entry.index = root.getIndex();
    entry.term = root.getTerm();
    auto payload = root.getPayload();
    entry.set_payload(ByteView(payload.begin(), payload.size()));  // its frame holds the checksum computed
    uint32_t expected = entry.checksum();
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
