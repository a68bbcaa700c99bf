// The segmented write-ahead log (see wal.h for the contract and FORMAT.md for
// the layout and what a crash at each point leaves behind).
//
// In memory the WAL keeps, per retained entry, where its record lives (segment id
// and offset: 8 bytes an entry), the latest metadata and snapshot metadata, and a
// write buffer of records not yet written to the active segment. Every mutation
// is a record appended to the active segment; the in-memory state is the fold of
// all records, which is exactly what open() rebuilds by scanning them.
#include "storage/wal.h"

#include <algorithm>
#include <cstring>

#include "storage/codec.h"
#include "storage/wal_format.h"

namespace keyval {

using namespace wal_format;

namespace {

// Records that hold a Raft log entry and take the next index (the rest are bookkeeping).
bool is_log_record(EntryType type) { return type == EntryType::log || type == EntryType::configuration; }

constexpr size_t scan_chunk_bytes = 4u << 20;  // read-ahead while scanning and replaying
constexpr const char* lock_file_name = "LOCK";
constexpr const char* prepared_suffix = ".wal.tmp";

struct Location {
  uint32_t segment_id;  // ids stay below 2^32 (asserted at rotation)
  uint32_t offset;      // segments stay below 4 GiB (wal_format.h)
};

struct Segment {
  uint64_t id = 0;
  uint64_t first_index = 0;
  std::string name;
  std::unique_ptr<File> file;
  SegmentCodec codec;  // its salt and format version (from its header once scanned)
  uint64_t end_bytes = 0;      // end of the valid records, buffered ones included
  uint64_t carried_bytes = 0;  // end of the header and the records carried over at creation
  uint64_t zeroed_end = 0;     // zeros written ahead of the records reach this far (WalOptions)
};

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string at(const std::string& name, uint64_t offset) {
  return "segment " + name + " offset " + std::to_string(offset);
}

// Sequential reads of one file through a large buffer.
class ChunkReader {
 public:
  ChunkReader(File& file, uint64_t file_bytes) : file_(file), file_bytes_(file_bytes) {}

  // Bytes [offset, offset + wanted), fewer (`*available`) at the end of the file.
  Result<const uint8_t*> view(uint64_t offset, size_t wanted, size_t* available) {
    if (offset < buffer_offset_ || offset + wanted > buffer_offset_ + buffer_bytes_) {
      if (offset + wanted > buffer_offset_ + buffer_bytes_ && buffer_offset_ + buffer_bytes_ >= file_bytes_ &&
          offset >= buffer_offset_ && offset <= buffer_offset_ + buffer_bytes_) {
        // Already holding the end of the file.
      } else {
        KV_RETURN_IF_ERROR(refill(offset, wanted));
      }
    }
    uint64_t end = buffer_offset_ + buffer_bytes_;
    *available = offset >= end ? 0 : static_cast<size_t>(std::min<uint64_t>(wanted, end - offset));
    return buffer_.data() + (offset - buffer_offset_);
  }

  uint64_t file_bytes() const { return file_bytes_; }

 private:
  Status refill(uint64_t offset, size_t wanted) {
    size_t size = std::max(scan_chunk_bytes, wanted);
    if (offset >= file_bytes_) size = 0;
    size = static_cast<size_t>(std::min<uint64_t>(size, file_bytes_ - std::min(offset, file_bytes_)));
    if (buffer_.size() < std::max(size, wanted)) buffer_.resize(std::max(size, wanted));
    auto attempt = file_.read_at(offset, buffer_.data(), size);
    if (!attempt.is_ok() && size > wanted) {
      // An unreadable sector somewhere in the chunk (a latent sector error): read just what is
      // wanted, so the error is met at the record it hits, not records before it.
      size = static_cast<size_t>(std::min<uint64_t>(wanted, file_bytes_ - std::min(offset, file_bytes_)));
      attempt = file_.read_at(offset, buffer_.data(), size);
    }
    KV_ASSIGN_OR_RETURN(size_t read, std::move(attempt));
    buffer_offset_ = offset;
    buffer_bytes_ = read;
    return Status::ok();
  }

  File& file_;
  uint64_t file_bytes_;
  std::vector<uint8_t> buffer_;
  uint64_t buffer_offset_ = 0;
  size_t buffer_bytes_ = 0;
};

// What lies after the point where a segment's records stop.
struct TailScan {
  bool valid_record_found = false;
  uint64_t valid_record_offset = 0;
  uint64_t nonzero_end = 0;  // end of the last non-zero 8-byte word (0: all zero)
};

// Looks at every aligned position from `from` to the end of the file for non-zero
// bytes and for a record that validates in this segment. Reads in large chunks and
// checks a position in full only when its type and reserved bytes look like a record.
Result<TailScan> scan_tail(File& file, uint64_t file_bytes, uint64_t from, SegmentCodec codec) {
  TailScan result;
  // Sized to what is left to scan: a small segment must not cost a zeroed 4 MiB buffer.
  const uint64_t left = file_bytes > from ? file_bytes - from : 0;
  std::vector<uint8_t> chunk(static_cast<size_t>(std::min<uint64_t>(scan_chunk_bytes, left)) + record_header_bytes);
  std::vector<uint8_t> candidate;
  for (uint64_t base = from; base < file_bytes; base += scan_chunk_bytes) {
    // Preallocated space never written reads as zeros and can hold no record: skip it.
    KV_ASSIGN_OR_RETURN(uint64_t data, file.next_data_offset(base));
    if (data >= file_bytes) break;
    if (data > base) base = data & ~(uint64_t{record_alignment_bytes} - 1);
    size_t wanted = static_cast<size_t>(std::min<uint64_t>(chunk.size(), file_bytes - base));
    KV_ASSIGN_OR_RETURN(size_t read, file.read_at(base, chunk.data(), wanted));
    size_t limit = std::min(read, scan_chunk_bytes);
    // A file can end inside an 8-byte word (a write cut short): those bytes count too.
    for (size_t i = limit - limit % record_alignment_bytes; i < limit; ++i) {
      if (chunk[i] != 0) result.nonzero_end = base + limit;
    }
    for (size_t i = 0; i + record_alignment_bytes <= limit; i += record_alignment_bytes) {
      // Fast path over zeros: no record starts in a 64-byte line whose bytes, and the type
      // byte of its last position (in the next line), are all zero.
      if (i % 64 == 0 && i + 72 <= read && all_zero(chunk.data() + i, 72)) {
        i += 64 - record_alignment_bytes;
        continue;
      }
      uint64_t word;
      std::memcpy(&word, chunk.data() + i, 8);
      if (word != 0) result.nonzero_end = base + i + 8;
      if (i + record_header_bytes > read || !is_wal_record_type(chunk[i + 8])) continue;
      RecordHeader header;
      RecordCheck check = check_record(chunk.data() + i, record_header_bytes, codec, &header);
      if (check == RecordCheck::incomplete) {
        candidate.resize(static_cast<size_t>(record_bytes(header.payload_bytes)));
        KV_ASSIGN_OR_RETURN(size_t got, file.read_at(base + i, candidate.data(), candidate.size()));
        check = check_record(candidate.data(), got, codec, &header);
      }
      if (check == RecordCheck::valid) {
        result.valid_record_found = true;
        result.valid_record_offset = base + i;
        return result;
      }
    }
  }
  return result;
}

}  // namespace

struct Wal::Impl {
  Impl(Env& env_in, std::string directory_in, const WalOptions& options_in)
      : env(env_in), directory(std::move(directory_in)), options(options_in) {}

  Env& env;
  std::string directory;
  WalOptions options;
  std::unique_ptr<FileLock> lock;
  std::vector<Segment> segments;  // ids contiguous, oldest first; the last is active
  std::unique_ptr<File> prepared;
  std::string prepared_path;

  uint64_t first_index = 1;          // first retained entry
  std::vector<Location> locations;  // entries first_index .. first_index + size - 1
  std::optional<Metadata> metadata;
  std::optional<SnapshotMetadata> snapshot;

  std::vector<uint8_t> buffer;  // records for the active segment at [buffer_offset, ...)
  uint64_t buffer_offset = 0;
  uint64_t synced_index = 0;
  Status failure;  // set once by a failed write or sync: fail-stop
  WalOpenReport report;
  // Since the last seal (see seal()): a record was appended; a metadata record was, and where
  // in which segment the last one ends.
  bool unsealed = false;
  bool metadata_unsealed = false;
  uint64_t metadata_segment = 0;
  uint64_t metadata_end = 0;
  // The segments holding the latest metadata and snapshot records (read or written), and
  // whether those records are durable: drop_segments_through never removes the only durable
  // copy of either (carry_records, then a sync, first).
  uint64_t metadata_record_segment = 0;
  uint64_t snapshot_record_segment = 0;
  bool records_durable = true;

  uint64_t last_index() const { return first_index + locations.size() - 1; }
  Segment& active() { return segments.back(); }
  Segment& segment(uint32_t id) { return segments[id - segments.front().id]; }
  // True when the record at `offset` of `where` is still in the write buffer.
  bool is_buffered(const Segment& where, uint64_t offset) const {
    return &where == &segments.back() && offset >= buffer_offset && offset - buffer_offset < buffer.size();
  }

  // Salvage: where open met an unreadable record. `position` indexes segment_names.
  struct Damage {
    size_t position = 0;
    uint64_t offset = 0;       // readable records of that segment end here (0: the header is bad)
    bool metadata_seen = false;  // a metadata record lies before it
  };
  std::vector<std::string> segment_names;  // every segment file name open listed, in order
  std::optional<Damage> damage;
  uint64_t scan_good_end = 0;  // the segment being scanned: its readable records end here

  Status fail(Status status) {
    if (!status.is_ok() && failure.is_ok()) failure = status;
    return status;
  }

  // --- the fold of records into state ---
  Status apply(const RecordHeader& header, const uint8_t* payload, const Segment& where, uint64_t offset);
  void apply_truncate(uint64_t index);
  Status apply_snapshot(const SnapshotMetadata& snapshot_in);
  Result<uint64_t> term_at(uint64_t index);

  // --- open ---
  Status load_segments(const WalRecordObserver& observer);
  Status scan_segment(Segment& segment, bool is_first, bool is_last, const WalRecordObserver& observer);
  Status classify_stop(Segment& segment, ChunkReader& reader, uint64_t stop, bool stopped_at_bad, bool is_last);
  Status create_segment(uint64_t id, uint64_t first_index_in);

  // --- write ---
  Status append_record(EntryType type, uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes);
  Status check_append(uint64_t index, size_t payload_bytes, EntryType type);
  Status append_frame(const std::vector<uint8_t>& frame);
  Status maybe_rotate(uint64_t record_size);
  Status rotate();
  Status carry_records();
  uint64_t carried_record_bytes() const;
  Status prepare();
  Status seal();
  Status flush();
  Status zero_ahead(uint64_t data_end);

  // --- read ---
  Result<std::vector<uint8_t>> read_record(const Location& location, RecordHeader* header);
};

// ---------------------------------------------------------------------------------
// The fold: what each record means.

Status Wal::Impl::apply(const RecordHeader& header, const uint8_t* payload, const Segment& where, uint64_t offset) {
  switch (header.type) {
    case EntryType::log:
    case EntryType::configuration:  // a Raft log entry like any other (raft/membership.h)
      if (header.index != last_index() + 1) {
        return Status::corruption(at(where.name, offset) + ": log record has index " + std::to_string(header.index) +
                                  ", expected " + std::to_string(last_index() + 1));
      }
      locations.push_back(Location{static_cast<uint32_t>(where.id), static_cast<uint32_t>(offset)});
      return Status::ok();
    case EntryType::truncate:
      apply_truncate(header.index);
      return Status::ok();
    case EntryType::metadata: {
      KV_ASSIGN_OR_RETURN(Metadata decoded, decode_metadata(payload, header.payload_bytes, at(where.name, offset)));
      metadata = decoded;
      metadata_record_segment = where.id;
      return Status::ok();
    }
    case EntryType::snapshot: {
      KV_ASSIGN_OR_RETURN(SnapshotMetadata decoded,
                          decode_snapshot_metadata(payload, header.payload_bytes, at(where.name, offset)));
      snapshot_record_segment = where.id;
      return apply_snapshot(decoded);
    }
    case EntryType::seal: {
      // A seal restates where the log ends, and (when its batch wrote one) the metadata.
      if (header.index != last_index()) {
        return Status::corruption(at(where.name, offset) + ": seal says the log ends at index " +
                                  std::to_string(header.index) + ", but the records before it end at " +
                                  std::to_string(last_index()));
      }
      KV_ASSIGN_OR_RETURN(std::optional<Metadata> copy,
                          decode_seal_payload(payload, header.payload_bytes, at(where.name, offset)));
      if (copy) {
        metadata = std::move(copy);
        metadata_record_segment = where.id;
      }
      return Status::ok();
    }
  }
  return Status::corruption(at(where.name, offset) + ": unknown record type");
}

void Wal::Impl::apply_truncate(uint64_t index) {
  if (index + 1 < first_index) {
    locations.clear();
    first_index = index + 1;
    return;
  }
  if (index < last_index()) locations.resize(index + 1 - first_index);
}

Status Wal::Impl::apply_snapshot(const SnapshotMetadata& snapshot_in) {
  snapshot = snapshot_in;
  uint64_t index = snapshot_in.last_included_index;
  if (index < first_index) {
    // The snapshot's last entry was compacted away here, so its term cannot be compared. The
    // retained log continues the snapshot unless its first entry has an older term: terms
    // never decrease along a log, so that entry is from a branch the snapshot's committed
    // entry superseded; an entry of the snapshot's term or later was appended by a leader that
    // held every committed entry (§5.4.1). Simulator seed 20541: a follower whose WAL started
    // at 60 (term 24) installed a leader's snapshot at 59 (term 25) and kept entry 60.
    if (locations.empty()) return Status::ok();
    KV_ASSIGN_OR_RETURN(uint64_t first_term, term_at(first_index));
    if (first_term >= snapshot_in.last_included_term) return Status::ok();
  } else if (index <= last_index()) {
    KV_ASSIGN_OR_RETURN(uint64_t term, term_at(index));
    if (term == snapshot_in.last_included_term) return Status::ok();  // the log continues the snapshot
  }
  // Raft §7: the log does not hold the snapshot's last entry, so all of it is superseded.
  locations.clear();
  first_index = index + 1;
  return Status::ok();
}

Result<uint64_t> Wal::Impl::term_at(uint64_t index) {
  RecordHeader header;
  KV_ASSIGN_OR_RETURN(std::vector<uint8_t> record, read_record(locations[index - first_index], &header));
  return header.term;
}

// ---------------------------------------------------------------------------------
// Open: list, scan, repair.

Status Wal::Impl::load_segments(const WalRecordObserver& observer) {
  KV_ASSIGN_OR_RETURN(std::vector<std::string> names, env.list(directory));
  Status gap;  // a missing segment: the segments from there on are unreadable as a log
  for (const std::string& name : names) {
    if (ends_with(name, prepared_suffix) && !options.read_only) {
      // A crash while preparing a segment: it never held records.
      KV_RETURN_IF_ERROR(env.remove(join_path(directory, name)));
      ++report.segments_removed;
      continue;
    }
    Segment segment;
    if (!parse_segment_file_name(name, &segment.id, &segment.first_index)) continue;
    segment_names.push_back(name);
    if (damage) continue;  // listed for salvage only
    if (!segments.empty() && segment.id != segments.back().id + 1) {
      damage = Damage{segment_names.size() - 1, 0, false};
      gap = Status::corruption("segment " + name + " follows segment " + segments.back().name +
                               ": segment ids must be consecutive, a segment is missing");
      continue;
    }
    segment.name = name;
    segment.codec.salt = segment_salt(segment.id);
    segments.push_back(std::move(segment));
  }
  if (report.segments_removed > 0) KV_RETURN_IF_ERROR(env.sync_dir(directory));
  for (size_t i = 0; i < segments.size(); ++i) {
    bool is_last = i + 1 == segments.size() && !damage;
    OpenMode mode = (is_last && !options.read_only) ? OpenMode::read_write : OpenMode::read_only;
    scan_good_end = 0;
    auto file = env.open_file(join_path(directory, segments[i].name), mode);
    Status status = file.status();
    if (status.is_ok()) {
      segments[i].file = std::move(file).value();
      status = scan_segment(segments[i], i == 0, is_last, observer);
    }
    if (!status.is_ok()) {
      // The first unreadable point: what salvage cuts at (a later gap no longer matters).
      if (status.code() == Code::corruption || status.code() == Code::io_error) {
        damage = Damage{i, scan_good_end, metadata.has_value()};
      }
      return status;
    }
  }
  if (damage) {
    damage->metadata_seen = metadata.has_value();
    return gap;
  }
  report.segments = segments.size();
  return Status::ok();
}

Status Wal::Impl::scan_segment(Segment& segment, bool is_first, bool is_last, const WalRecordObserver& observer) {
  KV_ASSIGN_OR_RETURN(uint64_t file_bytes, segment.file->size());
  ChunkReader reader(*segment.file, file_bytes);
  size_t available = 0;
  KV_ASSIGN_OR_RETURN(const uint8_t* head, reader.view(0, segment_header_bytes, &available));
  KV_ASSIGN_OR_RETURN(SegmentHeader header, decode_segment_header(head, available, "segment " + segment.name));
  segment.codec.version = header.version;
  if (header.segment_id != segment.id || header.first_index != segment.first_index) {
    return Status::corruption("segment " + segment.name + " offset 0: header says segment " +
                              std::to_string(header.segment_id) + " first index " + std::to_string(header.first_index) +
                              ", which does not match the file name");
  }
  if (is_first) {
    first_index = header.first_index;
  } else if (header.first_index != last_index() + 1) {
    return Status::corruption("segment " + segment.name + " starts at index " + std::to_string(header.first_index) +
                              " but the log before it ends at " + std::to_string(last_index()) +
                              ": a segment is missing or damaged");
  }
  uint64_t offset = segment_header_bytes;
  scan_good_end = offset;
  bool stopped_at_bad = false;
  while (true) {
    KV_ASSIGN_OR_RETURN(const uint8_t* data, reader.view(offset, record_header_bytes, &available));
    if (available < record_header_bytes) break;  // classify_stop tells zeros from garbage
    RecordHeader record;
    RecordCheck check = check_record(data, available, segment.codec, &record);
    if (check == RecordCheck::incomplete) {
      KV_ASSIGN_OR_RETURN(data, reader.view(offset, static_cast<size_t>(record_bytes(record.payload_bytes)), &available));
      check = check_record(data, available, segment.codec, &record);
    }
    if (check != RecordCheck::valid) {
      stopped_at_bad = check != RecordCheck::zero;
      break;
    }
    KV_RETURN_IF_ERROR(apply(record, data + record_header_bytes, segment, offset));
    if (observer) {
      observer(WalRecordInfo{segment.name, offset, record.type, record.index, record.term, record.payload_bytes});
    }
    ++report.records;
    report.bytes += record_bytes(record.payload_bytes);
    offset += record_bytes(record.payload_bytes);
    scan_good_end = offset;
  }
  segment.end_bytes = offset;
  segment.carried_bytes = offset;
  return classify_stop(segment, reader, offset, stopped_at_bad, is_last);
}

// The records of `segment` stop at `stop`. Decides between the normal end (zeros), a torn
// tail (garbage, nothing valid after it, last segment) and corruption (anything else).
Status Wal::Impl::classify_stop(Segment& segment, ChunkReader& reader, uint64_t stop, bool stopped_at_bad,
                                bool is_last) {
  KV_ASSIGN_OR_RETURN(TailScan tail, scan_tail(*segment.file, reader.file_bytes(), stop, segment.codec));
  if (tail.valid_record_found) {
    return Status::corruption(at(segment.name, stop) + ": record is damaged but a valid record follows at offset " +
                              std::to_string(tail.valid_record_offset) + " (not a torn write; refusing to skip it)");
  }
  if (!stopped_at_bad && tail.nonzero_end == 0) return Status::ok();  // clean end: zeros or end of file
  if (!is_last) {
    // Rotation syncs a segment before the next one exists, so its end cannot be torn.
    return Status::corruption(at(segment.name, stop) + ": damaged record in a closed segment");
  }
  // The writer died while writing the last record(s): nothing after it was ever durable.
  uint64_t torn_end = std::max(tail.nonzero_end, std::min<uint64_t>(stop + record_alignment_bytes, reader.file_bytes()));
  report.torn_segment = segment.name;
  report.torn_offset = stop;
  report.torn_bytes = torn_end > stop ? torn_end - stop : 0;
  if (options.read_only) return Status::ok();
  KV_RETURN_IF_ERROR(segment.file->truncate(stop));
  if (options.preallocate) KV_RETURN_IF_ERROR(segment.file->preallocate(options.segment_bytes));
  return segment.file->sync_data();
}

Status Wal::Impl::create_segment(uint64_t id, uint64_t first_index_in) {
  KV_ASSERT(id < (1ull << 32));
  KV_RETURN_IF_ERROR(prepare());
  uint8_t header[segment_header_bytes];
  encode_segment_header(SegmentHeader{id, first_index_in}, header);
  KV_RETURN_IF_ERROR(prepared->write_at(0, header, sizeof header));
  // The header is durable before the name exists: a named segment always has a valid header.
  KV_RETURN_IF_ERROR(prepared->sync_data());
  Segment segment;
  segment.id = id;
  segment.first_index = first_index_in;
  segment.name = segment_file_name(id, first_index_in);
  segment.codec.salt = segment_salt(id);
  segment.end_bytes = segment_header_bytes;
  segment.carried_bytes = segment_header_bytes;
  std::string path = join_path(directory, segment.name);
  KV_RETURN_IF_ERROR(env.rename(prepared_path, path));
  KV_RETURN_IF_ERROR(env.sync_dir(directory));
  // Reopened under its real name, so every later error names the file that exists.
  prepared.reset();
  prepared_path.clear();
  KV_ASSIGN_OR_RETURN(segment.file, env.open_file(path, OpenMode::read_write));
  segments.push_back(std::move(segment));
  buffer_offset = segment_header_bytes;
  return Status::ok();
}

// ---------------------------------------------------------------------------------
// Write path.

Status Wal::Impl::prepare() {
  if (prepared) return Status::ok();
  uint64_t id = segments.empty() ? 1 : segments.back().id + 1;
  char name[32];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(id));
  std::string path = join_path(directory, std::string(name) + prepared_suffix);
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.open_file(path, OpenMode::create_or_open));
  KV_RETURN_IF_ERROR(file->truncate(0));
  if (options.preallocate) KV_RETURN_IF_ERROR(file->preallocate(options.segment_bytes));
  KV_RETURN_IF_ERROR(file->sync_data());
  prepared = std::move(file);
  prepared_path = path;
  return Status::ok();
}

Status Wal::Impl::flush() {
  if (buffer.empty()) return Status::ok();
  KV_RETURN_IF_ERROR(fail(zero_ahead(buffer_offset + buffer.size())));
  KV_RETURN_IF_ERROR(fail(active().file->write_at(buffer_offset, buffer.data(), buffer.size())));
  buffer_offset += buffer.size();
  buffer.clear();
  return Status::ok();
}

// Before records up to `data_end` are written: when they come within half of
// zero_ahead_bytes of the zeros, the next zero_ahead_bytes past both are written (never past
// the segment's size). Only offsets no record reaches are zeroed.
Status Wal::Impl::zero_ahead(uint64_t data_end) {
  Segment& segment = active();
  if (options.zero_ahead_bytes == 0 || data_end + options.zero_ahead_bytes / 2 <= segment.zeroed_end) {
    return Status::ok();
  }
  static const std::vector<uint8_t> zeros(256u << 10, 0);
  uint64_t from = std::max(segment.zeroed_end, data_end);
  const uint64_t to = std::min(from + options.zero_ahead_bytes, options.segment_bytes);
  while (from < to) {
    const uint64_t chunk = std::min<uint64_t>(zeros.size(), to - from);
    KV_RETURN_IF_ERROR(segment.file->write_at(from, zeros.data(), chunk));
    from += chunk;
  }
  segment.zeroed_end = std::max(from, data_end);
  return Status::ok();
}

Status Wal::Impl::maybe_rotate(uint64_t record_size) {
  Segment& current = active();
  bool full = current.end_bytes + record_size > options.segment_bytes;
  bool holds_new_records = current.end_bytes > current.carried_bytes;
  if (full && holds_new_records) return rotate();
  return Status::ok();
}

// Seals the active segment (written and synced, so its end can never be torn) and starts the
// next one with the current metadata and snapshot records carried over.
Status Wal::Impl::rotate() {
  KV_RETURN_IF_ERROR(flush());
  KV_RETURN_IF_ERROR(fail(active().file->sync_data()));
  synced_index = last_index();
  KV_RETURN_IF_ERROR(fail(create_segment(active().id + 1, last_index() + 1)));
  KV_RETURN_IF_ERROR(carry_records());
  active().carried_bytes = active().end_bytes;
  return Status::ok();
}

uint64_t Wal::Impl::carried_record_bytes() const {
  return (metadata ? record_bytes(encode_metadata(*metadata).size()) : 0) +
         (snapshot ? record_bytes(encode_snapshot_metadata(*snapshot).size()) : 0);
}

// The current metadata and snapshot records, written again into the active segment (buffered).
// Restating the snapshot the WAL already applied changes nothing on replay (apply_snapshot: the
// log continues it, or starts after it).
Status Wal::Impl::carry_records() {
  if (metadata) {
    std::vector<uint8_t> payload = encode_metadata(*metadata);
    KV_RETURN_IF_ERROR(append_record(EntryType::metadata, last_index(), metadata->current_term, payload.data(),
                                     payload.size()));
  }
  if (snapshot) {
    std::vector<uint8_t> payload = encode_snapshot_metadata(*snapshot);
    KV_RETURN_IF_ERROR(append_record(EntryType::snapshot, snapshot->last_included_index,
                                     snapshot->last_included_term, payload.data(), payload.size()));
  }
  return Status::ok();
}

Status Wal::Impl::check_append(uint64_t index, size_t payload_bytes, EntryType type) {
  KV_ASSERT(type == EntryType::log || type == EntryType::configuration);
  KV_RETURN_IF_ERROR(failure);
  if (options.read_only) return Status::invalid_argument("WAL " + directory + " is open read-only");
  if (index != last_index() + 1) {
    return Status::invalid_argument("append of index " + std::to_string(index) + ", expected " +
                                    std::to_string(last_index() + 1));
  }
  if (payload_bytes > record_payload_bytes_max) {
    return Status::invalid_argument("entry " + std::to_string(index) + " has " + std::to_string(payload_bytes) +
                                    " payload bytes, more than the limit of " + std::to_string(record_payload_bytes_max));
  }
  return Status::ok();
}

// An entry's record from its frame: the frame's bytes, the CRC slot filled (wal_format.h).
Status Wal::Impl::append_frame(const std::vector<uint8_t>& frame) {
  const uint64_t size = record_bytes(frame.size() - record_header_bytes);
  size_t position = buffer.size();
  buffer.resize(position + size);
  encode_framed_record(active().codec, frame, buffer.data() + position);
  active().end_bytes += size;
  unsealed = true;
  if (buffer.size() >= options.write_buffer_bytes) return flush();
  return Status::ok();
}

Status Wal::Impl::append_record(EntryType type, uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes) {
  uint64_t size = record_bytes(bytes);
  size_t position = buffer.size();
  buffer.resize(position + size);
  encode_record(active().codec, type, index, term, payload, bytes, buffer.data() + position);
  active().end_bytes += size;
  if (type != EntryType::seal) unsealed = true;
  if (type == EntryType::metadata) {
    metadata_unsealed = true;
    metadata_segment = active().id;
    metadata_end = active().end_bytes;
    metadata_record_segment = active().id;
    records_durable = false;
  }
  if (type == EntryType::snapshot) {
    snapshot_record_segment = active().id;
    records_durable = false;
  }
  if (buffer.size() >= options.write_buffer_bytes) return flush();
  return Status::ok();
}

// Ends the batch a sync makes durable with a seal record (storage/FORMAT.md, "Seals"): a
// record damaged at rest then always has a valid record after it (its batch's seal), so it is
// never mistaken for a write torn by a crash, which leaves nothing valid after it. When the
// batch wrote a metadata record, the seal carries a copy of the metadata, starting in another
// block than that record ends in (a padding seal fills the rest of the block), so that one
// damaged record or unreadable block cannot take the term and vote.
Status Wal::Impl::seal() {
  if (!unsealed) return Status::ok();
  std::vector<uint8_t> copy;
  if (metadata_unsealed && metadata) copy = encode_metadata(*metadata);
  const uint64_t seal_size = record_bytes(sizeof(uint32_t) + copy.size());
  // The padding a copy may need, at most a block and a small record: rotated first if it must be.
  KV_RETURN_IF_ERROR(maybe_rotate(copy.empty() ? seal_size : seal_size + seal_block_bytes + record_bytes(8)));
  if (!copy.empty() && metadata_segment == active().id) {
    const uint64_t block_end = (metadata_end + seal_block_bytes - 1) / seal_block_bytes * seal_block_bytes;
    uint64_t gap = block_end > active().end_bytes ? block_end - active().end_bytes : 0;
    if (gap > 0 && gap < record_bytes(sizeof(uint32_t))) gap += seal_block_bytes;  // too small for a record
    if (gap > 0) {
      std::vector<uint8_t> padding = encode_seal_payload({}, gap - record_header_bytes);
      KV_RETURN_IF_ERROR(append_record(EntryType::seal, last_index(), metadata->current_term, padding.data(),
                                       padding.size()));
    }
  }
  const uint64_t term = metadata ? metadata->current_term : 0;
  if (copy.empty()) {
    KV_RETURN_IF_ERROR(append_record(EntryType::seal, last_index(), term, nullptr, 0));
  } else {
    std::vector<uint8_t> payload = encode_seal_payload(copy, 0);
    KV_RETURN_IF_ERROR(append_record(EntryType::seal, last_index(), term, payload.data(), payload.size()));
  }
  unsealed = false;
  metadata_unsealed = false;
  return Status::ok();
}

// ---------------------------------------------------------------------------------
// Read path.

Result<std::vector<uint8_t>> Wal::Impl::read_record(const Location& location, RecordHeader* header) {
  Segment& where = segment(location.segment_id);
  std::vector<uint8_t> record(record_header_bytes);
  bool buffered = is_buffered(where, location.offset);
  auto fetch = [&](uint8_t* out, size_t bytes) -> Status {
    if (buffered) {
      size_t start = location.offset - buffer_offset;
      if (start + bytes > buffer.size()) return Status::corruption(at(where.name, location.offset) + ": short buffer");
      std::memcpy(out, buffer.data() + start, bytes);
      return Status::ok();
    }
    KV_ASSIGN_OR_RETURN(size_t read, where.file->read_at(location.offset, out, bytes));
    if (read != bytes) {
      return Status::corruption(at(where.name, location.offset) + ": record ends past the end of the file");
    }
    return Status::ok();
  };
  KV_RETURN_IF_ERROR(fetch(record.data(), record_header_bytes));
  RecordCheck check = check_record(record.data(), record.size(), where.codec, header);
  if (check == RecordCheck::incomplete) {
    record.resize(record_bytes(header->payload_bytes));
    KV_RETURN_IF_ERROR(fetch(record.data(), record.size()));
    check = check_record(record.data(), record.size(), where.codec, header);
  }
  if (check != RecordCheck::valid) {
    return Status::corruption(at(where.name, location.offset) + ": record fails its checksum on read");
  }
  return record;
}

// ---------------------------------------------------------------------------------
// Salvage (WalOptions::salvage).

namespace {

constexpr uint64_t salvage_block_bytes = 4096;  // copy unit: an unreadable block is written as zeros

// Copies `from` to a new file `to` block by block; blocks that cannot be read become zeros and
// are counted in *unreadable. The copy is synced.
Status copy_damaged(Env& env, const std::string& from, const std::string& to, uint64_t* unreadable) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> source, env.open_file(from, OpenMode::read_only));
  KV_ASSIGN_OR_RETURN(uint64_t bytes, source->size());
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> copy, env.open_file(to, OpenMode::create_or_open));
  KV_RETURN_IF_ERROR(copy->truncate(0));
  std::vector<uint8_t> block(salvage_block_bytes);
  for (uint64_t offset = 0; offset < bytes; offset += salvage_block_bytes) {
    const size_t wanted = static_cast<size_t>(std::min<uint64_t>(salvage_block_bytes, bytes - offset));
    auto read = source->read_at(offset, block.data(), wanted);
    if (!read.is_ok() || *read != wanted) {
      std::fill(block.begin(), block.end(), 0);
      *unreadable += wanted;
    }
    KV_RETURN_IF_ERROR(copy->write_at(offset, block.data(), wanted));
  }
  return copy->sync_data();
}

// Keeps the later of two Raft metadata records: the higher term, and in one term a vote over none.
void keep_latest(std::optional<Metadata>& kept, const Metadata& found) {
  if (!kept || found.current_term > kept->current_term ||
      (found.current_term == kept->current_term && kept->voted_for == 0 && found.voted_for != 0)) {
    kept = found;
  }
}

// The highest log index of the valid records that follow `offset` in segment `name` (0: none):
// what the damaged segment is known to have held after the damage; and into *metadata, the
// latest Raft metadata among them. Reads the rest of the file sector by sector, an unreadable
// sector as zeros, and checks every aligned position.
uint64_t last_index_after(Env& env, const std::string& directory, const std::string& name, uint64_t offset,
                          std::optional<Metadata>* metadata) {
  constexpr uint64_t sector_bytes = 512;
  uint64_t id = 0, first = 0;
  if (!parse_segment_file_name(name, &id, &first)) return 0;
  auto file = env.open_file(join_path(directory, name), OpenMode::read_only);
  if (!file.is_ok()) return 0;
  auto size = (*file)->size();
  if (!size.is_ok()) return 0;
  const uint64_t from = std::max<uint64_t>(offset, segment_header_bytes) / sector_bytes * sector_bytes;
  if (*size <= from) return 0;
  std::vector<uint8_t> bytes(static_cast<size_t>(*size - from), 0);
  for (uint64_t at = from; at < *size; at += sector_bytes) {
    const size_t wanted = static_cast<size_t>(std::min<uint64_t>(sector_bytes, *size - at));
    auto read = (*file)->read_at(at, bytes.data() + (at - from), wanted);
    if (!read.is_ok()) std::fill_n(bytes.data() + (at - from), wanted, 0);
  }
  // The header may be what is damaged: a record counts when it checks in either format.
  const uint32_t salt = segment_salt(id);
  uint64_t last = 0;
  for (uint64_t at = std::max<uint64_t>(offset, segment_header_bytes); at + record_header_bytes <= *size;) {
    RecordHeader header;
    const uint8_t* data = bytes.data() + (at - from);
    const size_t available = static_cast<size_t>(*size - at);
    if (check_record(data, available, SegmentCodec{salt, format_version}, &header) == RecordCheck::valid ||
        check_record(data, available, SegmentCodec{salt, format_version_sealed}, &header) == RecordCheck::valid) {
      if (header.type == EntryType::log || header.type == EntryType::configuration || header.type == EntryType::seal) {
        last = std::max(last, header.index);
      }
      if (header.type == EntryType::metadata) {
        auto decoded = decode_metadata(data + record_header_bytes, header.payload_bytes, name);
        if (decoded.is_ok()) keep_latest(*metadata, *decoded);
      }
      if (header.type == EntryType::seal) {
        auto copy = decode_seal_payload(data + record_header_bytes, header.payload_bytes, name);
        if (copy.is_ok() && copy->has_value()) keep_latest(*metadata, **copy);
      }
      at += record_bytes(header.payload_bytes);
    } else {
      at += record_alignment_bytes;
    }
  }
  return last;
}

}  // namespace

Status Wal::salvage(Impl& wal, const Status& damage_status, WalOpenReport& out) {
  const Impl::Damage damage = *wal.damage;
  const std::vector<std::string>& names = wal.segment_names;
  KV_ASSERT(damage.position < names.size());
  if (!damage.metadata_seen) {
    return Status::from_code(damage_status.code(), damage_status.message() +
                                            "; not repaired: nothing before the damage holds the Raft metadata "
                                            "(term and vote), so the node cannot safely rejoin: replace it "
                                            "(docs/OPERATIONS.md)");
  }
  Env& env = wal.env;
  const std::string base = wal.options.salvage_directory.empty() ? wal.directory : wal.options.salvage_directory;
  std::string copy_root;
  for (uint64_t n = 1;; ++n) {
    copy_root = join_path(base, "damaged-" + std::to_string(n));
    if (!env.exists(copy_root)) break;
  }
  const std::string copy_wal = join_path(copy_root, "wal");
  KV_RETURN_IF_ERROR(env.create_dir(copy_root));
  KV_RETURN_IF_ERROR(env.create_dir(copy_wal));
  out.damage = damage_status.to_string();
  out.damaged_segment = names[damage.position];
  out.damaged_offset = damage.offset;
  out.damaged_copy = copy_root;
  for (size_t i = damage.position; i < names.size(); ++i) {
    KV_RETURN_IF_ERROR(copy_damaged(env, join_path(wal.directory, names[i]), join_path(copy_wal, names[i]),
                                    &out.damaged_unreadable_bytes));
    ++out.damaged_segments;
    uint64_t id = 0, first = 0;
    if (i > damage.position && parse_segment_file_name(names[i], &id, &first) && first > 0) {
      out.damaged_last_index = std::max(out.damaged_last_index, first - 1);
    }
    // Every readable record after the damage: its indexes, and its terms and votes.
    const uint64_t from = i == damage.position ? damage.offset : 0;
    out.damaged_last_index =
        std::max(out.damaged_last_index, last_index_after(env, wal.directory, names[i], from, &out.damaged_metadata));
  }
  KV_RETURN_IF_ERROR(env.sync_dir(copy_wal));
  KV_RETURN_IF_ERROR(env.sync_dir(copy_root));
  KV_RETURN_IF_ERROR(env.sync_dir(base));
  // The copies are durable before anything is cut. Later segments go first (newest first), so
  // a crash part-way leaves a WAL whose damage the next start salvages again.
  for (size_t i = names.size(); i-- > damage.position + 1;) {
    KV_RETURN_IF_ERROR(env.remove(join_path(wal.directory, names[i])));
  }
  const std::string damaged = join_path(wal.directory, names[damage.position]);
  if (damage.offset >= segment_header_bytes) {
    KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.open_file(damaged, OpenMode::read_write));
    KV_RETURN_IF_ERROR(file->truncate(damage.offset));
    if (wal.options.preallocate) KV_RETURN_IF_ERROR(file->preallocate(wal.options.segment_bytes));
    KV_RETURN_IF_ERROR(file->sync_data());
  } else {
    KV_RETURN_IF_ERROR(env.remove(damaged));
  }
  return env.sync_dir(wal.directory);
}

// ---------------------------------------------------------------------------------
// Public interface.

Wal::Wal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Wal::~Wal() = default;

Result<std::unique_ptr<Wal>> Wal::open(Env& env, const std::string& directory, const WalOptions& options,
                                       const WalRecordObserver& observer) {
  if (options.segment_bytes < segment_bytes_min || options.segment_bytes > segment_bytes_max) {
    return Status::invalid_argument("WAL segment size " + std::to_string(options.segment_bytes) +
                                    " bytes is outside [" + std::to_string(segment_bytes_min) + ", " +
                                    std::to_string(segment_bytes_max) + "]");
  }
  if (options.first_index == 0) return Status::invalid_argument("WAL first index must be at least 1");
  auto impl = std::make_unique<Impl>(env, directory, options);
  Status opened = open_impl(*impl, observer);
  if (opened.is_ok()) return std::unique_ptr<Wal>(new Wal(std::move(impl)));
  if (!options.salvage || options.read_only || !impl->damage) return opened;
  WalOpenReport salvaged;
  KV_RETURN_IF_ERROR(salvage(*impl, opened, salvaged));
  impl.reset();  // releases the lock and the files: the WAL is opened anew, cut where it was damaged
  WalOptions again = options;
  again.salvage = false;
  auto reopened = open(env, directory, again, observer);
  if (!reopened.is_ok()) {
    return Status::from_code(reopened.status().code(), "after salvaging " + salvaged.damaged_segment + ": " +
                                               reopened.status().message());
  }
  WalOpenReport& report = (*reopened)->impl_->report;
  report.damaged = true;
  report.damage = salvaged.damage;
  report.damaged_segment = salvaged.damaged_segment;
  report.damaged_offset = salvaged.damaged_offset;
  report.damaged_segments = salvaged.damaged_segments;
  report.damaged_copy = salvaged.damaged_copy;
  report.damaged_unreadable_bytes = salvaged.damaged_unreadable_bytes;
  report.damaged_last_index = salvaged.damaged_last_index;
  report.damaged_metadata = salvaged.damaged_metadata;
  return reopened;
}

Status Wal::open_impl(Impl& wal, const WalRecordObserver& observer) {
  Impl* impl = &wal;
  Env& env = wal.env;
  const std::string& directory = wal.directory;
  const WalOptions& options = wal.options;
  if (options.read_only) {
    if (!env.exists(directory)) return Status::not_found("WAL directory " + directory + " does not exist");
  } else {
    KV_RETURN_IF_ERROR(env.create_dir(directory));
    auto lock = env.lock(join_path(directory, lock_file_name));
    if (!lock.is_ok()) {
      return Status(lock.status().code() == Code::locked
                        ? Status::locked("WAL directory " + directory + " is in use by another process")
                        : lock.status());
    }
    impl->lock = std::move(lock).value();
  }
  KV_RETURN_IF_ERROR(impl->load_segments(observer));
  if (impl->segments.empty()) {
    impl->first_index = options.first_index;
    if (!options.read_only) KV_RETURN_IF_ERROR(impl->create_segment(1, options.first_index));
  } else {
    impl->buffer_offset = impl->active().end_bytes;
    // What was read may be only in the page cache: a process crash (SIGKILL) keeps bytes that
    // were never synced, and names (a segment created, renamed or removed) whose directory was
    // never synced; a later power cut would still lose them. Everything read is taken as
    // durable below (votes and acknowledgements rest on it), so it is made durable first:
    // the active segment's data (rotation synced every earlier one) and the directory.
    if (!options.read_only) {
      KV_RETURN_IF_ERROR(impl->active().file->sync_data());
      KV_RETURN_IF_ERROR(env.sync_dir(directory));
    }
  }
  impl->synced_index = impl->last_index();
  return Status::ok();
}

const WalOpenReport& Wal::open_report() const { return impl_->report; }

Status Wal::append(const Entry& entry) {
  Impl& wal = *impl_;
  const ByteView payload = entry.payload();
  KV_RETURN_IF_ERROR(wal.check_append(entry.index, payload.size(), entry.type));
  KV_RETURN_IF_ERROR(wal.maybe_rotate(record_bytes(payload.size())));
  Location location{static_cast<uint32_t>(wal.active().id), static_cast<uint32_t>(wal.active().end_bytes)};
  KV_RETURN_IF_ERROR(wal.append_frame(entry.frame()));
  wal.locations.push_back(location);
  return Status::ok();
}

Status Wal::append(uint64_t index, uint64_t term, const uint8_t* payload, size_t payload_bytes, EntryType type) {
  Impl& wal = *impl_;
  KV_RETURN_IF_ERROR(wal.check_append(index, payload_bytes, type));
  KV_RETURN_IF_ERROR(wal.maybe_rotate(record_bytes(payload_bytes)));
  Location location{static_cast<uint32_t>(wal.active().id), static_cast<uint32_t>(wal.active().end_bytes)};
  KV_RETURN_IF_ERROR(wal.append_record(type, index, term, payload, payload_bytes));
  wal.locations.push_back(location);
  return Status::ok();
}

Status Wal::append_batch(const std::vector<Entry>& entries) {
  for (const Entry& entry : entries) KV_RETURN_IF_ERROR(append(entry));
  return Status::ok();
}

Status Wal::save_metadata(const Metadata& metadata) {
  Impl& wal = *impl_;
  KV_RETURN_IF_ERROR(wal.failure);
  if (wal.options.read_only) return Status::invalid_argument("WAL " + wal.directory + " is open read-only");
  std::vector<uint8_t> payload = encode_metadata(metadata);
  KV_RETURN_IF_ERROR(wal.maybe_rotate(record_bytes(payload.size())));
  KV_RETURN_IF_ERROR(wal.append_record(EntryType::metadata, wal.last_index(), metadata.current_term, payload.data(),
                                       payload.size()));
  wal.metadata = metadata;
  return Status::ok();
}

Status Wal::save_snapshot(const SnapshotMetadata& snapshot) {
  Impl& wal = *impl_;
  KV_RETURN_IF_ERROR(wal.failure);
  if (wal.options.read_only) return Status::invalid_argument("WAL " + wal.directory + " is open read-only");
  std::vector<uint8_t> payload = encode_snapshot_metadata(snapshot);
  KV_RETURN_IF_ERROR(wal.maybe_rotate(record_bytes(payload.size())));
  KV_RETURN_IF_ERROR(wal.append_record(EntryType::snapshot, snapshot.last_included_index,
                                       snapshot.last_included_term, payload.data(), payload.size()));
  KV_RETURN_IF_ERROR(wal.fail(wal.apply_snapshot(snapshot)));
  if (wal.last_index() + 1 < wal.active().first_index) {
    // The snapshot discarded the log, and the next entry goes below the index the active
    // segment's header names. Once the older segments are dropped, a replay starts from that
    // header, and the snapshot record alone cannot say the log went (nothing before it in the
    // segment to compare): a truncate record says it (apply_truncate moves the first index
    // back). Simulator seed 27818. A rotation instead starts a segment at the right index.
    KV_RETURN_IF_ERROR(wal.maybe_rotate(record_bytes(0)));
    if (wal.last_index() + 1 < wal.active().first_index) {
      KV_RETURN_IF_ERROR(wal.append_record(EntryType::truncate, wal.last_index(), 0, nullptr, 0));
    }
  }
  wal.synced_index = std::min(wal.synced_index, wal.last_index());
  return Status::ok();
}

Status Wal::truncate_suffix_after(uint64_t index) {
  Impl& wal = *impl_;
  KV_RETURN_IF_ERROR(wal.failure);
  if (wal.options.read_only) return Status::invalid_argument("WAL " + wal.directory + " is open read-only");
  if (index > wal.last_index()) {
    return Status::invalid_argument("truncate after index " + std::to_string(index) + ", but the log ends at " +
                                    std::to_string(wal.last_index()));
  }
  KV_RETURN_IF_ERROR(wal.maybe_rotate(record_bytes(0)));
  KV_RETURN_IF_ERROR(wal.append_record(EntryType::truncate, index, 0, nullptr, 0));
  wal.apply_truncate(index);
  wal.synced_index = std::min(wal.synced_index, index);
  return Status::ok();
}

Status Wal::flush() {
  KV_RETURN_IF_ERROR(impl_->failure);
  return impl_->flush();
}

Status Wal::sync() {
  Impl& wal = *impl_;
  KV_RETURN_IF_ERROR(wal.failure);
  if (wal.options.read_only) return Status::ok();
  KV_RETURN_IF_ERROR(wal.fail(wal.seal()));
  KV_RETURN_IF_ERROR(wal.flush());
  KV_RETURN_IF_ERROR(wal.fail(wal.active().file->sync_data()));
  wal.synced_index = wal.last_index();
  wal.records_durable = true;
  return Status::ok();
}

Result<uint64_t> Wal::drop_segments_through(uint64_t index) {
  Impl& wal = *impl_;
  KV_RETURN_IF_ERROR(wal.failure);
  if (wal.options.read_only) return Status::invalid_argument("WAL " + wal.directory + " is open read-only");
  // The latest metadata (term, vote) and snapshot records must outlive the segments dropped, as
  // durable records in one that stays. Rotation carries them into each new segment, but a crash
  // before those copies were synced leaves a new segment without them (simulator seed 12662: the
  // next start appended to it, a later drop removed the only copies, and the node came back
  // with no term and no vote).
  size_t dropping = 0;
  while (dropping + 1 < wal.segments.size() && wal.segments[dropping + 1].first_index <= index + 1) ++dropping;
  if (dropping > 0) {
    const uint64_t kept_from = wal.segments[dropping].id;
    if ((wal.metadata && wal.metadata_record_segment < kept_from) ||
        (wal.snapshot && wal.snapshot_record_segment < kept_from)) {
      const uint64_t before = wal.active().id;
      KV_RETURN_IF_ERROR(wal.fail(wal.maybe_rotate(wal.carried_record_bytes())));  // a rotation carries them
      if (wal.active().id == before) KV_RETURN_IF_ERROR(wal.fail(wal.carry_records()));
    }
    if (!wal.records_durable) KV_RETURN_IF_ERROR(sync());
  }
  uint64_t removed = 0;
  while (wal.segments.size() > 1 && wal.segments[1].first_index <= index + 1) {
    // Every entry of the oldest segment is below the next segment's first index.
    uint32_t id = static_cast<uint32_t>(wal.segments.front().id);
    KV_RETURN_IF_ERROR(wal.fail(wal.env.remove(join_path(wal.directory, wal.segments.front().name))));
    size_t dropped = 0;
    while (dropped < wal.locations.size() && wal.locations[dropped].segment_id == id) ++dropped;
    wal.locations.erase(wal.locations.begin(), wal.locations.begin() + static_cast<std::ptrdiff_t>(dropped));
    wal.first_index += dropped;
    wal.segments.erase(wal.segments.begin());
    ++removed;
  }
  // Fail-stop like every other write or sync: a failed directory sync is never retried.
  if (removed > 0) KV_RETURN_IF_ERROR(wal.fail(wal.env.sync_dir(wal.directory)));
  return removed;
}

Status Wal::prepare_next_segment() {
  KV_RETURN_IF_ERROR(impl_->failure);
  if (impl_->options.read_only) return Status::invalid_argument("WAL " + impl_->directory + " is open read-only");
  return impl_->fail(impl_->prepare());
}

uint64_t Wal::first_index() const { return impl_->first_index; }
uint64_t Wal::last_index() const { return impl_->last_index(); }
uint64_t Wal::synced_index() const { return impl_->synced_index; }
std::optional<Metadata> Wal::metadata() const { return impl_->metadata; }
std::optional<SnapshotMetadata> Wal::snapshot() const { return impl_->snapshot; }
uint64_t Wal::segment_count() const { return impl_->segments.size(); }
const std::string& Wal::directory() const { return impl_->directory; }

Result<Entry> Wal::read(uint64_t index) {
  Impl& wal = *impl_;
  if (index < wal.first_index || index > wal.last_index()) {
    return Status::not_found("WAL " + wal.directory + " holds entries " + std::to_string(wal.first_index) + ".." +
                             std::to_string(wal.last_index()) + ", not " + std::to_string(index));
  }
  RecordHeader header;
  KV_ASSIGN_OR_RETURN(std::vector<uint8_t> record, wal.read_record(wal.locations[index - wal.first_index], &header));
  if (!is_log_record(header.type) || header.index != index) {
    return Status::corruption("WAL " + wal.directory + ": record located for entry " + std::to_string(index) +
                              " holds " + entry_type_name(header.type) + " index " + std::to_string(header.index));
  }
  return Entry{header.index, header.term, ByteView(record.data() + record_header_bytes, header.payload_bytes),
               header.type};
}

Result<std::vector<Entry>> Wal::read_range(uint64_t first, uint64_t last) {
  std::vector<Entry> entries;
  Status status = replay(first, [&](const EntryView& view) {
    if (view.index > last) return Status::not_found("end of range");
    entries.push_back(Entry{view.index, view.term, ByteView(view.payload, view.payload_bytes), view.type});
    return Status::ok();
  });
  if (!status.is_ok() && !(status.code() == Code::not_found && status.message() == "end of range")) return status;
  return entries;
}

Status Wal::replay(uint64_t from, const std::function<Status(const EntryView&)>& visit) {
  Impl& wal = *impl_;
  std::unique_ptr<ChunkReader> reader;
  uint32_t reader_segment = 0;
  for (uint64_t index = std::max(from, wal.first_index); index <= wal.last_index(); ++index) {
    const Location location = wal.locations[index - wal.first_index];
    Segment& where = wal.segment(location.segment_id);
    const uint8_t* data = nullptr;
    size_t available = 0;
    if (wal.is_buffered(where, location.offset)) {
      data = wal.buffer.data() + (location.offset - wal.buffer_offset);
      available = wal.buffer.size() - (location.offset - wal.buffer_offset);
    } else {
      if (!reader || reader_segment != location.segment_id) {
        // Only the written records, not the preallocated tail, are worth reading ahead.
        uint64_t written = &where == &wal.active() ? wal.buffer_offset : where.end_bytes;
        reader = std::make_unique<ChunkReader>(*where.file, written);
        reader_segment = location.segment_id;
      }
      KV_ASSIGN_OR_RETURN(data, reader->view(location.offset, record_header_bytes, &available));
      RecordHeader peek;
      if (available == record_header_bytes &&
          check_record(data, available, where.codec, &peek) == RecordCheck::incomplete) {
        KV_ASSIGN_OR_RETURN(data, reader->view(location.offset, record_bytes(peek.payload_bytes), &available));
      }
    }
    RecordHeader header;
    if (available < record_header_bytes || check_record(data, available, where.codec, &header) != RecordCheck::valid ||
        header.index != index || !is_log_record(header.type)) {
      return Status::corruption(at(where.name, location.offset) + ": entry " + std::to_string(index) +
                                " fails its check on replay");
    }
    KV_RETURN_IF_ERROR(
        visit(EntryView{index, header.term, data + record_header_bytes, header.payload_bytes, header.type}));
  }
  return Status::ok();
}

}  // namespace keyval
