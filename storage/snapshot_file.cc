// Snapshot files (snapshot_file.h): the streaming writer and reader, and the directory.
#include "storage/snapshot_file.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "storage/crc32c.h"
#include "storage/decimal.h"
#include "storage/kv_command.h"
#include "storage/little_endian.h"

namespace keyval {
namespace {

constexpr uint8_t snapshot_magic[8] = {'K', 'V', 'S', 'N', 'A', 'P', 'S', 'H'};
// Version 2: each member also carries its learner flag and client address (version 1 files,
// written before membership changes, are still read: every member a voter, no client address).
constexpr uint32_t snapshot_format_version = 2;
constexpr uint32_t snapshot_format_version_min = 1;
// magic, version, header bytes, index, term, chunk_bytes_max, member count.
constexpr size_t header_fixed_bytes = 8 + 4 + 4 + 8 + 8 + 8 + 4;
constexpr size_t checksum_bytes = 4;
constexpr size_t header_bytes_max = 1 << 20;  // bounds the configuration a header may carry
constexpr size_t member_fixed_bytes = 8 + 4;  // id, address bytes
constexpr size_t member_v2_bytes = 4 + 4;     // then flags, client address bytes
constexpr uint32_t member_learner_flag = 1;
constexpr size_t chunk_header_bytes = 16;     // kind, payload bytes, record count, CRC32C
constexpr size_t chunk_checked_header_bytes = 12;
constexpr uint32_t chunk_kind = 1;
constexpr uint32_t end_kind = 2;
constexpr size_t end_payload_bytes = 8 * 4 + 4;  // chunks, keys, sessions, file bytes, file CRC32C
// The writer syncs the file each time this much was written since its last sync, so the
// page cache never holds more than this of it unwritten: a large snapshot's final sync is
// short, and the WAL's fdatasyncs (which, on ext4, may have to wait for other files' dirty
// data in the same journal commit) never queue behind a hundred megabytes of it.
constexpr uint64_t sync_every_bytes = 8u << 20;
constexpr uint8_t kv_record_type = 1;
constexpr uint8_t session_record_type = 2;
constexpr size_t kv_record_header_bytes = 1 + 4 + 4;
constexpr size_t session_record_header_bytes = 1 + 8 + 8 + 4;
constexpr uint64_t snapshot_chunk_bytes_min = 1024;
// No chunk is ever bigger, even one holding a single large record: the reader's memory bound.
constexpr uint64_t snapshot_chunk_bytes_limit = 128ull << 20;
static_assert(snapshot_chunk_bytes_limit < (1ull << 32), "a chunk's length is a u32");
static_assert(snapshot_chunk_bytes_min >= session_record_header_bytes + end_payload_bytes);
const char* const temp_suffix = ".tmp";
const char* const snapshot_prefix = "snap-";
const char* const snapshot_suffix = ".snap";

void put_u32(std::vector<uint8_t>& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}
using little_endian::load_u32;
using little_endian::load_u64;
using little_endian::store_u32;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The CRC32C of a chunk or end record: its first 12 header bytes, then its payload.
uint32_t record_checksum(const uint8_t* header, const uint8_t* payload, size_t payload_bytes) {
  return crc32c_extend(crc32c(header, chunk_checked_header_bytes), payload, payload_bytes);
}

std::vector<uint8_t> encode_header(const SnapshotHeader& header, uint64_t chunk_bytes_max) {
  std::vector<uint8_t> bytes(snapshot_magic, snapshot_magic + sizeof(snapshot_magic));
  put_u32(bytes, snapshot_format_version);
  put_u32(bytes, 0);  // header bytes, set below
  put_u64(bytes, header.index);
  put_u64(bytes, header.term);
  put_u64(bytes, chunk_bytes_max);
  put_u32(bytes, static_cast<uint32_t>(header.configuration.size()));
  for (const Member& member : header.configuration) {
    put_u64(bytes, member.id);
    put_u32(bytes, static_cast<uint32_t>(member.address.size()));
    bytes.insert(bytes.end(), member.address.begin(), member.address.end());
    put_u32(bytes, member.learner ? member_learner_flag : 0);
    put_u32(bytes, static_cast<uint32_t>(member.client_address.size()));
    bytes.insert(bytes.end(), member.client_address.begin(), member.client_address.end());
  }
  store_u32(bytes.data() + 12, static_cast<uint32_t>(bytes.size() + checksum_bytes));
  put_u32(bytes, crc32c(bytes.data(), bytes.size()));
  return bytes;
}

}  // namespace

// --- SnapshotWriter ----------------------------------------------------------------------

struct SnapshotWriter::Impl {
  Env& env;
  std::string path;
  std::unique_ptr<File> file;
  SnapshotSummary summary;
  uint64_t chunk_bytes_max = 0;
  std::vector<uint8_t> chunk;  // chunk_header_bytes reserved for the header, then the payload
  uint32_t chunk_records = 0;
  uint64_t offset = 0;         // bytes written to the file so far
  uint64_t unsynced = 0;       // of those, written since the last sync (sync_every_bytes)
  uint32_t file_checksum = 0;  // CRC32C of those bytes
  Status failed;               // the first failure: every later call returns it
  bool finished = false;

  Impl(Env& env_in, std::string path_in) : env(env_in), path(std::move(path_in)) {}

  size_t payload_bytes() const { return chunk.size() - chunk_header_bytes; }

  void reset_chunk() {
    // A single oversized record may have grown the buffer: give that memory back.
    if (chunk.capacity() > 2 * (chunk_bytes_max + chunk_header_bytes)) chunk = std::vector<uint8_t>();
    chunk.assign(chunk_header_bytes, 0);
    chunk_records = 0;
  }

  Status write(const uint8_t* bytes, size_t size) {
    Status status = file->write_at(offset, bytes, size);
    if (!status.is_ok()) return failed = status;
    file_checksum = crc32c_extend(file_checksum, bytes, size);
    offset += size;
    unsynced += size;
    if (unsynced >= sync_every_bytes) {
      status = file->sync_data();
      if (!status.is_ok()) return failed = status;
      unsynced = 0;
    }
    return Status::ok();
  }

  Status flush_chunk() {
    if (chunk_records == 0) return Status::ok();
    store_u32(chunk.data(), chunk_kind);
    store_u32(chunk.data() + 4, static_cast<uint32_t>(payload_bytes()));
    store_u32(chunk.data() + 8, chunk_records);
    store_u32(chunk.data() + 12, record_checksum(chunk.data(), chunk.data() + chunk_header_bytes, payload_bytes()));
    KV_RETURN_IF_ERROR(write(chunk.data(), chunk.size()));
    ++summary.chunks;
    reset_chunk();
    return Status::ok();
  }

  // Makes room for a record of `record_bytes`, then the caller appends it.
  Status begin_record(size_t record_bytes) {
    if (finished) return Status::invalid_argument("snapshot " + path + ": record added after finish()");
    KV_RETURN_IF_ERROR(failed);
    if (record_bytes > snapshot_chunk_bytes_limit) {
      return Status::invalid_argument("snapshot " + path + ": a record of " + std::to_string(record_bytes) +
                                      " bytes exceeds the chunk limit of " +
                                      std::to_string(snapshot_chunk_bytes_limit));
    }
    if (payload_bytes() + record_bytes > chunk_bytes_max) KV_RETURN_IF_ERROR(flush_chunk());
    return Status::ok();
  }

  // After appending: a record bigger than chunk_bytes_max went alone and leaves at once.
  Status end_record() {
    ++chunk_records;
    if (payload_bytes() >= chunk_bytes_max) return flush_chunk();
    return Status::ok();
  }
};

SnapshotWriter::SnapshotWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SnapshotWriter::~SnapshotWriter() = default;

Result<std::unique_ptr<SnapshotWriter>> SnapshotWriter::create(Env& env, const std::string& path,
                                                               const SnapshotHeader& header,
                                                               uint64_t chunk_bytes_max) {
  if (chunk_bytes_max < snapshot_chunk_bytes_min || chunk_bytes_max > snapshot_chunk_bytes_limit) {
    return Status::invalid_argument("snapshot " + path + ": chunk_bytes_max " + std::to_string(chunk_bytes_max) +
                                    " is outside [" + std::to_string(snapshot_chunk_bytes_min) + ", " +
                                    std::to_string(snapshot_chunk_bytes_limit) + "]");
  }
  std::vector<uint8_t> header_bytes = encode_header(header, chunk_bytes_max);
  if (header_bytes.size() > header_bytes_max) {
    return Status::invalid_argument("snapshot " + path + ": a configuration of " +
                                    std::to_string(header.configuration.size()) + " members makes a header of " +
                                    std::to_string(header_bytes.size()) + " bytes, over " +
                                    std::to_string(header_bytes_max));
  }
  auto impl = std::make_unique<Impl>(env, path);
  impl->summary.header = header;
  impl->chunk_bytes_max = chunk_bytes_max;
  impl->chunk.reserve(chunk_bytes_max + chunk_header_bytes);
  impl->reset_chunk();
  // A stale file of that name (an attempt that died) is emptied, never appended to.
  KV_ASSIGN_OR_RETURN(impl->file, env.open_file(path, OpenMode::create_or_open));
  KV_RETURN_IF_ERROR(impl->file->truncate(0));
  KV_RETURN_IF_ERROR(impl->write(header_bytes.data(), header_bytes.size()));
  return std::unique_ptr<SnapshotWriter>(new SnapshotWriter(std::move(impl)));
}

Status SnapshotWriter::add_kv(std::string_view key, std::string_view value) {
  if (key.empty() || key.size() > kv_key_bytes_max || value.size() > UINT32_MAX) {
    return Status::invalid_argument("snapshot " + impl_->path + ": a key of " + std::to_string(key.size()) +
                                    " bytes (1 to " + std::to_string(kv_key_bytes_max) + ") or value of " +
                                    std::to_string(value.size()) + " bytes");
  }
  KV_RETURN_IF_ERROR(impl_->begin_record(kv_record_header_bytes + key.size() + value.size()));
  std::vector<uint8_t>& chunk = impl_->chunk;
  chunk.push_back(kv_record_type);
  put_u32(chunk, static_cast<uint32_t>(key.size()));
  put_u32(chunk, static_cast<uint32_t>(value.size()));
  chunk.insert(chunk.end(), key.begin(), key.end());
  chunk.insert(chunk.end(), value.begin(), value.end());
  ++impl_->summary.keys;
  return impl_->end_record();
}

Status SnapshotWriter::add_session(uint64_t client_id, const StoredSession& session) {
  if (session.record.size() > UINT32_MAX) {
    return Status::invalid_argument("snapshot " + impl_->path + ": session record of " +
                                    std::to_string(session.record.size()) + " bytes");
  }
  KV_RETURN_IF_ERROR(impl_->begin_record(session_record_header_bytes + session.record.size()));
  std::vector<uint8_t>& chunk = impl_->chunk;
  chunk.push_back(session_record_type);
  put_u64(chunk, client_id);
  put_u64(chunk, session.last_used_index);
  put_u32(chunk, static_cast<uint32_t>(session.record.size()));
  chunk.insert(chunk.end(), session.record.begin(), session.record.end());
  ++impl_->summary.sessions;
  return impl_->end_record();
}

Result<SnapshotSummary> SnapshotWriter::finish() {
  Impl& impl = *impl_;
  if (impl.finished) return Status::invalid_argument("snapshot " + impl.path + ": finish() called twice");
  KV_RETURN_IF_ERROR(impl.failed);
  KV_RETURN_IF_ERROR(impl.flush_chunk());
  impl.finished = true;
  std::vector<uint8_t> end(chunk_header_bytes, 0);
  store_u32(end.data(), end_kind);
  store_u32(end.data() + 4, static_cast<uint32_t>(end_payload_bytes));
  put_u64(end, impl.summary.chunks);
  put_u64(end, impl.summary.keys);
  put_u64(end, impl.summary.sessions);
  const uint64_t file_bytes = impl.offset + chunk_header_bytes + end_payload_bytes;
  put_u64(end, file_bytes);
  const uint32_t checksum = impl.file_checksum;
  put_u32(end, checksum);
  store_u32(end.data() + 12, record_checksum(end.data(), end.data() + chunk_header_bytes, end_payload_bytes));
  KV_RETURN_IF_ERROR(impl.write(end.data(), end.size()));
  KV_RETURN_IF_ERROR(impl.file->sync_data());
  impl.summary.file_bytes = file_bytes;
  impl.summary.checksum = checksum;
  return impl.summary;
}

const std::string& SnapshotWriter::path() const { return impl_->path; }

// --- SnapshotReader ----------------------------------------------------------------------

struct SnapshotReader::Impl {
  Env& env;
  std::string path;
  std::unique_ptr<File> file;
  uint64_t file_bytes = 0;
  SnapshotHeader header;
  uint64_t chunk_bytes_max = 0;
  uint64_t header_bytes = 0;
  uint32_t header_checksum = 0;  // CRC32C of the header record: the file checksum's start
  std::vector<uint8_t> chunk_header;  // of the chunk being read
  std::vector<uint8_t> chunk;         // its payload: the one chunk in memory

  Impl(Env& env_in, std::string path_in) : env(env_in), path(std::move(path_in)) {}

  Status corruption(uint64_t offset, const std::string& what) const {
    return Status::corruption("snapshot " + path + " at offset " + std::to_string(offset) + ": " + what);
  }
  Status truncated(const std::string& what) const {
    return Status::corruption("snapshot " + path + " truncated at offset " + std::to_string(file_bytes) + ": " +
                              what);
  }

  // Reads exactly `bytes` at `offset` into `out`, or says the file ends too early.
  Status read_exactly(uint64_t offset, size_t bytes, std::vector<uint8_t>& out, const std::string& what) {
    out.resize(bytes);
    if (offset + bytes > file_bytes) return truncated(what + " at offset " + std::to_string(offset) + " needs " +
                                                      std::to_string(bytes) + " bytes");
    KV_ASSIGN_OR_RETURN(size_t got, file->read_at(offset, out.data(), bytes));
    if (got != bytes) return truncated(what + " at offset " + std::to_string(offset) + " needs " +
                                       std::to_string(bytes) + " bytes");
    return Status::ok();
  }

  Status read_header();
  Status parse_members(const std::vector<uint8_t>& bytes, uint32_t count, uint32_t version);
  Status read_records(uint64_t chunk_offset, uint32_t records, const SnapshotKvVisitor& kv,
                      const SnapshotSessionVisitor& session, SnapshotSummary& summary);
  Status check_end(uint64_t offset, const uint8_t* payload, uint32_t file_checksum, const SnapshotSummary& summary);
};

Status SnapshotReader::Impl::read_header() {
  std::vector<uint8_t> bytes;
  KV_RETURN_IF_ERROR(read_exactly(0, header_fixed_bytes, bytes, "the header record"));
  if (std::memcmp(bytes.data(), snapshot_magic, sizeof(snapshot_magic)) != 0) {
    return corruption(0, "bad magic: not a KeyVal snapshot file");
  }
  const uint32_t version = load_u32(bytes.data() + 8);
  if (version < snapshot_format_version_min || version > snapshot_format_version) {
    return Status::unsupported("snapshot " + path + " at offset 8: format version " + std::to_string(version) +
                               ", this build reads versions " + std::to_string(snapshot_format_version_min) + " to " +
                               std::to_string(snapshot_format_version));
  }
  header_bytes = load_u32(bytes.data() + 12);
  if (header_bytes < header_fixed_bytes + checksum_bytes || header_bytes > header_bytes_max) {
    return corruption(12, "header length " + std::to_string(header_bytes) + " is out of bounds");
  }
  KV_RETURN_IF_ERROR(read_exactly(0, header_bytes, bytes, "the header record"));
  const size_t checked = header_bytes - checksum_bytes;
  if (crc32c(bytes.data(), checked) != load_u32(bytes.data() + checked)) {
    return corruption(0, "header checksum mismatch");
  }
  header_checksum = crc32c(bytes.data(), header_bytes);
  header.index = load_u64(bytes.data() + 16);
  header.term = load_u64(bytes.data() + 24);
  chunk_bytes_max = load_u64(bytes.data() + 32);
  if (chunk_bytes_max < snapshot_chunk_bytes_min || chunk_bytes_max > snapshot_chunk_bytes_limit) {
    return corruption(32, "chunk bound " + std::to_string(chunk_bytes_max) + " is out of bounds");
  }
  return parse_members(bytes, load_u32(bytes.data() + 40), version);
}

Status SnapshotReader::Impl::parse_members(const std::vector<uint8_t>& bytes, uint32_t count, uint32_t version) {
  const size_t end = header_bytes - checksum_bytes;
  size_t at = header_fixed_bytes;
  for (uint32_t i = 0; i < count; ++i) {
    if (at + member_fixed_bytes > end) return corruption(at, "member " + std::to_string(i) + " overruns the header");
    Member member;
    member.id = load_u64(bytes.data() + at);
    const uint32_t address_bytes = load_u32(bytes.data() + at + 8);
    at += member_fixed_bytes;
    if (address_bytes > end - at) return corruption(at, "member address overruns the header");
    member.address.assign(reinterpret_cast<const char*>(bytes.data() + at), address_bytes);
    at += address_bytes;
    if (version >= 2) {
      if (member_v2_bytes > end - at) return corruption(at, "member " + std::to_string(i) + " overruns the header");
      const uint32_t flags = load_u32(bytes.data() + at);
      const uint32_t client_bytes = load_u32(bytes.data() + at + 4);
      if ((flags & ~member_learner_flag) != 0) {
        return corruption(at, "member " + std::to_string(i) + " has unknown flags " + std::to_string(flags));
      }
      at += member_v2_bytes;
      if (client_bytes > end - at) return corruption(at, "member client address overruns the header");
      member.learner = (flags & member_learner_flag) != 0;
      member.client_address.assign(reinterpret_cast<const char*>(bytes.data() + at), client_bytes);
      at += client_bytes;
    }
    header.configuration.push_back(std::move(member));
  }
  if (at != end) return corruption(at, std::to_string(end - at) + " unexplained bytes in the header");
  return Status::ok();
}

// The records of the payload in `chunk` (its CRC checked) of the chunk at `chunk_offset`.
Status SnapshotReader::Impl::read_records(uint64_t chunk_offset, uint32_t records, const SnapshotKvVisitor& kv,
                                          const SnapshotSessionVisitor& session, SnapshotSummary& summary) {
  const uint8_t* payload = chunk.data();
  const size_t size = chunk.size();
  size_t at = 0;
  for (uint32_t i = 0; i < records; ++i) {
    const uint64_t offset = chunk_offset + chunk_header_bytes + at;
    const uint8_t type = at < size ? payload[at] : 0;
    if (type == kv_record_type && size - at >= kv_record_header_bytes) {
      const uint64_t key_bytes = load_u32(payload + at + 1);
      const uint64_t value_bytes = load_u32(payload + at + 5);
      if (key_bytes + value_bytes > size - at - kv_record_header_bytes) return corruption(offset, "kv record overruns its chunk");
      if (key_bytes == 0 || key_bytes > kv_key_bytes_max) {
        return corruption(offset, "kv record has a key of " + std::to_string(key_bytes) + " bytes (1.." +
                                      std::to_string(kv_key_bytes_max) + " allowed)");
      }
      const char* key = reinterpret_cast<const char*>(payload + at + kv_record_header_bytes);
      KV_RETURN_IF_ERROR(kv(std::string_view(key, key_bytes), std::string_view(key + key_bytes, value_bytes)));
      at += kv_record_header_bytes + key_bytes + value_bytes;
      ++summary.keys;
    } else if (type == session_record_type && size - at >= session_record_header_bytes) {
      StoredSession stored;
      const uint64_t client_id = load_u64(payload + at + 1);
      stored.last_used_index = load_u64(payload + at + 9);
      const uint64_t record_bytes = load_u32(payload + at + 17);
      if (record_bytes > size - at - session_record_header_bytes) return corruption(offset, "session record overruns its chunk");
      const uint8_t* record = payload + at + session_record_header_bytes;
      stored.record.assign(record, record + record_bytes);
      KV_RETURN_IF_ERROR(session(client_id, stored));
      at += session_record_header_bytes + record_bytes;
      ++summary.sessions;
    } else {
      return corruption(offset, "record " + std::to_string(i) + " of " + std::to_string(records) +
                                    " has type " + std::to_string(type) + " or is cut short");
    }
  }
  if (at != size) return corruption(chunk_offset + chunk_header_bytes + at, std::to_string(size - at) + " bytes after the chunk's last record");
  return Status::ok();
}

Status SnapshotReader::Impl::check_end(uint64_t offset, const uint8_t* payload, uint32_t file_checksum,
                                       const SnapshotSummary& summary) {
  const uint64_t fields[] = {load_u64(payload), load_u64(payload + 8), load_u64(payload + 16), load_u64(payload + 24)};
  const uint64_t expected[] = {summary.chunks, summary.keys, summary.sessions,
                               offset + chunk_header_bytes + end_payload_bytes};
  const char* names[] = {"chunks", "keys", "sessions", "file bytes"};
  for (size_t i = 0; i < 4; ++i) {
    if (fields[i] != expected[i]) {
      return corruption(offset, std::string("end record counts ") + std::to_string(fields[i]) + " " + names[i] +
                                    ", the file holds " + std::to_string(expected[i]));
    }
  }
  if (load_u32(payload + 32) != file_checksum) return corruption(offset, "file checksum mismatch");
  if (file_bytes != expected[3]) {
    return corruption(expected[3], std::to_string(file_bytes - expected[3]) + " bytes after the end record");
  }
  return Status::ok();
}

SnapshotReader::SnapshotReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SnapshotReader::~SnapshotReader() = default;

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::open(Env& env, const std::string& path) {
  auto impl = std::make_unique<Impl>(env, path);
  KV_ASSIGN_OR_RETURN(impl->file, env.open_file(path, OpenMode::read_only));
  KV_ASSIGN_OR_RETURN(impl->file_bytes, impl->file->size());
  KV_RETURN_IF_ERROR(impl->read_header());
  return std::unique_ptr<SnapshotReader>(new SnapshotReader(std::move(impl)));
}

const SnapshotHeader& SnapshotReader::header() const { return impl_->header; }
const std::string& SnapshotReader::path() const { return impl_->path; }

Status SnapshotReader::read_all(const SnapshotKvVisitor& kv, const SnapshotSessionVisitor& session,
                                SnapshotSummary* out) {
  Impl& impl = *impl_;
  SnapshotSummary summary;
  summary.header = impl.header;
  uint64_t offset = impl.header_bytes;
  uint32_t file_checksum = impl.header_checksum;
  for (;;) {
    // Each pass reads one chunk (or the end record) and ends: the file is finite.
    std::vector<uint8_t>& header = impl.chunk_header;
    KV_RETURN_IF_ERROR(impl.read_exactly(offset, chunk_header_bytes, header, "a chunk or the end record"));
    const uint32_t kind = load_u32(header.data());
    const uint32_t payload_bytes = load_u32(header.data() + 4);
    const uint32_t records = load_u32(header.data() + 8);
    const uint32_t stored_checksum = load_u32(header.data() + 12);
    const bool is_end = kind == end_kind;
    if (!is_end && kind != chunk_kind) return impl.corruption(offset, "unknown record kind " + std::to_string(kind));
    const bool bad_length = is_end ? payload_bytes != end_payload_bytes || records != 0
                                   : payload_bytes > snapshot_chunk_bytes_limit || records == 0 ||
                                         (payload_bytes > impl.chunk_bytes_max && records != 1);
    if (bad_length) {
      return impl.corruption(offset, std::string(is_end ? "end record" : "chunk") + " of " +
                                         std::to_string(payload_bytes) + " bytes and " + std::to_string(records) +
                                         " records is out of bounds");
    }
    std::vector<uint8_t>& payload = impl.chunk;
    KV_RETURN_IF_ERROR(impl.read_exactly(offset + chunk_header_bytes, payload_bytes, payload,
                                         is_end ? "the end record" : "a chunk"));
    if (record_checksum(header.data(), payload.data(), payload.size()) != stored_checksum) {
      return impl.corruption(offset, is_end ? "end record checksum mismatch" : "chunk checksum mismatch");
    }
    if (is_end) {
      KV_RETURN_IF_ERROR(impl.check_end(offset, payload.data(), file_checksum, summary));
      summary.file_bytes = impl.file_bytes;
      summary.checksum = file_checksum;
      if (out != nullptr) *out = summary;
      return Status::ok();
    }
    file_checksum = crc32c_extend(file_checksum, header.data(), header.size());
    file_checksum = crc32c_extend(file_checksum, payload.data(), payload.size());
    KV_RETURN_IF_ERROR(impl.read_records(offset, records, kv, session, summary));
    ++summary.chunks;
    offset += chunk_header_bytes + payload_bytes;
  }
}

Result<SnapshotSummary> verify_snapshot_file(Env& env, const std::string& path) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<SnapshotReader> reader, SnapshotReader::open(env, path));
  SnapshotSummary summary;
  KV_RETURN_IF_ERROR(reader->read_all([](std::string_view, std::string_view) { return Status::ok(); },
                                      [](uint64_t, const StoredSession&) { return Status::ok(); }, &summary));
  return summary;
}

// --- SnapshotDirectory -------------------------------------------------------------------

SnapshotDirectory::SnapshotDirectory(Env& env, std::string directory) : env_(env), directory_(std::move(directory)) {}

Status SnapshotDirectory::create() { return env_.create_dir(directory_); }

std::string SnapshotDirectory::file_name(uint64_t index, uint64_t term) {
  char name[64];
  std::snprintf(name, sizeof(name), "snap-%020llu-%020llu.snap", static_cast<unsigned long long>(index),
                static_cast<unsigned long long>(term));
  return name;
}

bool SnapshotDirectory::parse_file_name(const std::string& name, uint64_t* index, uint64_t* term) {
  constexpr size_t prefix_bytes = 5, digits = 20, suffix_bytes = 5;
  if (name.size() != prefix_bytes + digits + 1 + digits + suffix_bytes) return false;
  if (name.compare(0, prefix_bytes, snapshot_prefix) != 0 || name[prefix_bytes + digits] != '-' ||
      !ends_with(name, snapshot_suffix)) {
    return false;
  }
  auto parsed_index = parse_decimal(name.substr(prefix_bytes, digits));
  auto parsed_term = parse_decimal(name.substr(prefix_bytes + digits + 1, digits));
  if (!parsed_index || !parsed_term) return false;
  *index = *parsed_index;
  *term = *parsed_term;
  return true;
}

std::string SnapshotDirectory::path_for(uint64_t index, uint64_t term) const {
  return join_path(directory_, file_name(index, term));
}

std::string SnapshotDirectory::temp_path_for(uint64_t index, uint64_t term, const std::string& purpose) const {
  return path_for(index, term) + "." + purpose + temp_suffix;
}

Status SnapshotDirectory::publish(const std::string& temp_path, uint64_t index, uint64_t term) {
  KV_RETURN_IF_ERROR(env_.rename(temp_path, path_for(index, term)));
  return env_.sync_dir(directory_);
}

std::string SnapshotDirectory::damaged_path_for(uint64_t index, uint64_t term) const {
  return join_path(directory_, "damaged-" + file_name(index, term));
}

Status SnapshotDirectory::move_aside(uint64_t index, uint64_t term) {
  KV_RETURN_IF_ERROR(env_.rename(path_for(index, term), damaged_path_for(index, term)));
  return env_.sync_dir(directory_);
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> SnapshotDirectory::list() const {
  std::vector<std::pair<uint64_t, uint64_t>> snapshots;
  if (!env_.exists(directory_)) return snapshots;
  KV_ASSIGN_OR_RETURN(std::vector<std::string> names, env_.list(directory_));
  for (const std::string& name : names) {
    uint64_t index = 0, term = 0;
    if (parse_file_name(name, &index, &term)) snapshots.emplace_back(index, term);
  }
  std::sort(snapshots.begin(), snapshots.end());
  return snapshots;
}

Status SnapshotDirectory::remove_temporaries() {
  if (!env_.exists(directory_)) return Status::ok();
  KV_ASSIGN_OR_RETURN(std::vector<std::string> names, env_.list(directory_));
  bool removed = false;
  for (const std::string& name : names) {
    if (name.compare(0, 5, snapshot_prefix) != 0 || !ends_with(name, temp_suffix)) continue;
    KV_RETURN_IF_ERROR(env_.remove(join_path(directory_, name)));
    removed = true;
  }
  return removed ? env_.sync_dir(directory_) : Status::ok();
}

Status SnapshotDirectory::retain_newest(size_t count) {
  KV_ASSIGN_OR_RETURN(auto snapshots, list());
  if (snapshots.size() <= count) return Status::ok();
  for (size_t i = 0; i + count < snapshots.size(); ++i) {
    KV_RETURN_IF_ERROR(env_.remove(path_for(snapshots[i].first, snapshots[i].second)));
  }
  return env_.sync_dir(directory_);
}

}  // namespace keyval
