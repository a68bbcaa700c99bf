// Cap'n Proto encoding of the persistence actors' messages. Malformed input
// becomes a Status; Cap'n Proto's exceptions never leave this file.
#include "actors/record_batch.h"

#include "schema/persistence.capnp.h"
#include "storage/capnp_message.h"
#include "storage/codec.h"
#include "storage/member_codec.h"
#include "storage/metadata_codec.h"

namespace keyval {
namespace {

void fill(schema::WalEntry::Builder out, EntryType type, uint64_t index, uint64_t term,
          const std::vector<uint8_t>& payload) {
  out.setType(static_cast<schema::EntryType>(type));
  out.setIndex(index);
  out.setTerm(term);
  out.setPayload(kj::arrayPtr(payload.data(), payload.size()));
  // No checksum: a record batch only crosses mailboxes inside one process (raft node to WAL
  // writer to store indexer). The WAL's record framing checksums what reaches the disk, the
  // LMDB log entry carries its own, and a RaftEntry its own on the wire (docs/DATAPATH.md).
}

Status read_record(schema::WalEntry::Reader in, const std::string& where, Record* out) {
  uint8_t type = static_cast<uint8_t>(in.getType());
  if (!is_valid_entry_type(type)) {
    return Status::corruption(where + ": record of unknown type " + std::to_string(type));
  }
  out->type = static_cast<EntryType>(type);
  out->index = in.getIndex();
  out->term = in.getTerm();
  auto payload = in.getPayload();
  out->payload.assign(payload.begin(), payload.end());
  return Status::ok();
}

}  // namespace

Record Record::log(uint64_t index, uint64_t term, std::vector<uint8_t> payload) {
  return Record{EntryType::log, index, term, std::move(payload)};
}

Record Record::entry(const Entry& entry) {
  KV_ASSERT(entry.type == EntryType::log || entry.type == EntryType::configuration);
  return Record{entry.type, entry.index, entry.term, entry.payload};
}

Record Record::metadata(const Metadata& metadata) {
  return Record{EntryType::metadata, 0, metadata.current_term, encode_metadata(metadata)};
}

Record Record::snapshot(const SnapshotMetadata& snapshot) {
  return Record{EntryType::snapshot, snapshot.last_included_index, snapshot.last_included_term,
                encode_snapshot_metadata(snapshot)};
}

Record Record::truncate_after(uint64_t index) { return Record{EntryType::truncate, index, 0, {}}; }

// The root, the batch, the list tag, then per record its struct and its payload.
template <class Item>
unsigned batch_words(const std::vector<Item>& items) {
  size_t payload_bytes = 0;
  for (const Item& item : items) payload_bytes += item.payload.size();
  return first_segment_words(2 + struct_words<schema::RecordBatch>() + items.size() * struct_words<schema::WalEntry>(),
                             payload_bytes, items.size());
}

std::vector<uint8_t> encode_record_batch(const std::vector<Record>& records) {
  return encode_message(batch_words(records), [&](capnp::MessageBuilder& builder) {
    auto list = builder.initRoot<schema::RecordBatch>().initRecords(static_cast<unsigned>(records.size()));
    for (size_t i = 0; i < records.size(); ++i) {
      const Record& record = records[i];
      fill(list[static_cast<unsigned>(i)], record.type, record.index, record.term, record.payload);
    }
  });
}

Result<std::vector<Record>> decode_record_batch(const std::vector<uint8_t>& bytes, const std::string& where) {
  std::vector<Record> records;
  Status status = read_message(bytes.data(), bytes.size(), where, [&](capnp::MessageReader& reader) {
    auto list = reader.getRoot<schema::RecordBatch>().getRecords();
    records.resize(list.size());
    for (unsigned i = 0; i < list.size(); ++i) KV_RETURN_IF_ERROR(read_record(list[i], where, &records[i]));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return records;
}

std::vector<uint8_t> encode_entries(const std::vector<Entry>& entries) {
  return encode_message(batch_words(entries), [&](capnp::MessageBuilder& builder) {
    auto list = builder.initRoot<schema::RecordBatch>().initRecords(static_cast<unsigned>(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
      fill(list[static_cast<unsigned>(i)], entries[i].type, entries[i].index, entries[i].term, entries[i].payload);
    }
  });
}

Result<std::vector<Entry>> decode_entries(const std::vector<uint8_t>& bytes, const std::string& where) {
  KV_ASSIGN_OR_RETURN(std::vector<Record> records, decode_record_batch(bytes, where));
  std::vector<Entry> entries;
  entries.reserve(records.size());
  for (Record& record : records) {
    if (!record.is_log_entry()) return Status::corruption(where + ": expected only log entries");
    entries.push_back(Entry{record.index, record.term, std::move(record.payload), record.type});
  }
  return entries;
}

std::vector<uint8_t> encode_recovered_state(const RecoveredState& state, const std::string& summary) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<schema::RecoveredState>();
  set_metadata(root.initMetadata(), state.metadata);
  root.setFirstIndex(state.first_index);
  root.setLastIndex(state.last_index);
  root.setLastTerm(state.last_term);
  root.setHasSnapshot(state.snapshot.has_value());
  if (state.snapshot) {
    auto snapshot = root.initSnapshot();
    snapshot.setLastIncludedIndex(state.snapshot->last_included_index);
    snapshot.setLastIncludedTerm(state.snapshot->last_included_term);
    set_members(snapshot.initConfiguration(static_cast<unsigned>(state.snapshot->configuration.size())),
                state.snapshot->configuration);
  }
  root.setSummary(summary);
  return message_to_bytes(builder);
}

Result<RecoveredState> decode_recovered_state(const std::vector<uint8_t>& bytes, std::string* summary) {
  RecoveredState state;
  Status status = read_message(bytes.data(), bytes.size(), "recovered state", [&](capnp::MessageReader& reader) {
    auto root = reader.getRoot<schema::RecoveredState>();
    KV_ASSIGN_OR_RETURN(state.metadata, get_metadata(root.getMetadata(), "recovered state"));
    state.first_index = root.getFirstIndex();
    state.last_index = root.getLastIndex();
    state.last_term = root.getLastTerm();
    if (root.getHasSnapshot()) {
      SnapshotMetadata snapshot;
      snapshot.last_included_index = root.getSnapshot().getLastIncludedIndex();
      snapshot.last_included_term = root.getSnapshot().getLastIncludedTerm();
      snapshot.configuration = get_members(root.getSnapshot().getConfiguration());
      state.snapshot = snapshot;
    }
    if (summary != nullptr) *summary = root.getSummary().cStr();
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return state;
}

}  // namespace keyval
