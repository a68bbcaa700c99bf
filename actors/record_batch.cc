// Cap'n Proto encoding of the persistence actors' messages. Malformed input
// becomes a Status; Cap'n Proto's exceptions never leave this file.
#include "actors/record_batch.h"

#include "schema/persistence.capnp.h"
#include "storage/capnp_message.h"
#include "storage/codec.h"
#include "storage/entry_frame.h"
#include "storage/member_codec.h"
#include "storage/metadata_codec.h"

namespace keyval {
namespace {

void fill(schema::PersistRecord::Builder out, const Record& record) {
  if (record.is_log_entry()) {
    // In process, unchecked: the frame carries the entry's checksum for where it is stored or
    // sent (docs/DATAPATH.md).
    const std::vector<uint8_t>& frame = record.entry.frame();
    out.setFrame(kj::arrayPtr(frame.data(), frame.size()));
    return;
  }
  out.setType(static_cast<schema::EntryType>(record.type));
  out.setIndex(record.index);
  out.setTerm(record.term);
  out.setPayload(kj::arrayPtr(record.payload.data(), record.payload.size()));
}

Status read_record(schema::PersistRecord::Reader in, const std::string& where, Record* out) {
  if (in.hasFrame()) {
    auto frame = in.getFrame();
    if (frame.size() < entry_frame::header_bytes) {
      return Status::corruption(where + ": entry frame of " + std::to_string(frame.size()) + " bytes");
    }
    out->entry = Entry::from_frame(std::make_shared<const std::vector<uint8_t>>(frame.begin(), frame.end()));
    out->type = out->entry.type;
    out->index = out->entry.index;
    out->term = out->entry.term;
    if (!out->is_log_entry()) {
      return Status::corruption(where + ": entry frame of type " + std::to_string(static_cast<unsigned>(out->type)));
    }
    return Status::ok();
  }
  uint8_t type = static_cast<uint8_t>(in.getType());
  if (!is_valid_entry_type(type) || type == static_cast<uint8_t>(EntryType::log) ||
      type == static_cast<uint8_t>(EntryType::configuration)) {
    return Status::corruption(where + ": record of type " + std::to_string(type) + " without a frame");
  }
  out->type = static_cast<EntryType>(type);
  out->index = in.getIndex();
  out->term = in.getTerm();
  auto payload = in.getPayload();
  out->payload.assign(payload.begin(), payload.end());
  return Status::ok();
}

}  // namespace

Record Record::log(uint64_t index, uint64_t term, const std::vector<uint8_t>& payload) {
  return entry_of(Entry{index, term, payload});
}

Record Record::entry_of(const Entry& entry) {
  KV_ASSERT(entry.type == EntryType::log || entry.type == EntryType::configuration);
  Record record{entry.type, entry.index, entry.term, {}, entry};
  return record;
}

Record Record::metadata(const Metadata& metadata) {
  return Record{EntryType::metadata, 0, metadata.current_term, encode_metadata(metadata), {}};
}

Record Record::snapshot(const SnapshotMetadata& snapshot) {
  return Record{EntryType::snapshot, snapshot.last_included_index, snapshot.last_included_term,
                encode_snapshot_metadata(snapshot), {}};
}

Record Record::truncate_after(uint64_t index) { return Record{EntryType::truncate, index, 0, {}, {}}; }

namespace {

// The root, the batch, the list tag, then per record its struct and its frame or payload.
unsigned batch_words(size_t count, size_t bytes) {
  return first_segment_words(2 + struct_words<schema::RecordBatch>() + count * struct_words<schema::PersistRecord>(),
                             bytes, count);
}

}  // namespace

std::vector<uint8_t> encode_record_batch(const std::vector<Record>& records) {
  size_t bytes = 0;
  for (const Record& record : records) {
    bytes += record.is_log_entry() ? record.entry.frame().size() : record.payload.size();
  }
  return encode_message(batch_words(records.size(), bytes), [&](capnp::MessageBuilder& builder) {
    auto list = builder.initRoot<schema::RecordBatch>().initRecords(static_cast<unsigned>(records.size()));
    for (size_t i = 0; i < records.size(); ++i) fill(list[static_cast<unsigned>(i)], records[i]);
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
  size_t bytes = 0;
  for (const Entry& entry : entries) bytes += entry.frame().size();
  return encode_message(batch_words(entries.size(), bytes), [&](capnp::MessageBuilder& builder) {
    auto list = builder.initRoot<schema::RecordBatch>().initRecords(static_cast<unsigned>(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
      const std::vector<uint8_t>& frame = entries[i].frame();
      list[static_cast<unsigned>(i)].setFrame(kj::arrayPtr(frame.data(), frame.size()));
    }
  });
}

Result<std::vector<Entry>> decode_entries(const std::vector<uint8_t>& bytes, const std::string& where) {
  KV_ASSIGN_OR_RETURN(std::vector<Record> records, decode_record_batch(bytes, where));
  std::vector<Entry> entries;
  entries.reserve(records.size());
  for (Record& record : records) {
    if (!record.is_log_entry()) return Status::corruption(where + ": expected only log entries");
    entries.push_back(std::move(record.entry));
  }
  return entries;
}

std::vector<uint8_t> encode_recovered_state(const RecoveredState& state, const std::string& summary,
                                            const RecoveryFigures& figures) {
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
  root.setEntriesRecovered(figures.entries_recovered);
  root.setTornBytesCut(figures.torn_bytes_cut);
  root.setLmdbRebuilt(figures.lmdb_rebuilt);
  return message_to_bytes(builder);
}

Result<RecoveredState> decode_recovered_state(const std::vector<uint8_t>& bytes, std::string* summary,
                                              RecoveryFigures* figures) {
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
    if (figures != nullptr) *figures = {root.getEntriesRecovered(), root.getTornBytesCut(), root.getLmdbRebuilt()};
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return state;
}

}  // namespace keyval
