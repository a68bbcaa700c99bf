// Encoding and checking of WAL segment headers and records (wal_format.h).
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "storage/codec.h"
#include "storage/crc32c.h"
#include "storage/entry_frame.h"
#include "storage/little_endian.h"
#include "storage/wal_format.h"

namespace keyval::wal_format {
namespace {

using little_endian::load_u32;
using little_endian::load_u64;
using little_endian::store_u32;
using little_endian::store_u64;

uint32_t segment_header_crc(const uint8_t* in) {
  uint8_t copy[segment_header_bytes];
  std::memcpy(copy, in, segment_header_bytes);
  store_u32(copy + 12, 0);
  return crc32c(copy, segment_header_bytes);
}

}  // namespace

uint32_t segment_salt(uint64_t segment_id) {
  uint8_t id_bytes[8];
  store_u64(id_bytes, segment_id);
  return crc32c(id_bytes, sizeof id_bytes);
}

std::string segment_file_name(uint64_t segment_id, uint64_t first_index) {
  char name[64];
  std::snprintf(name, sizeof name, "%016llx-%016llx.wal", static_cast<unsigned long long>(segment_id),
                static_cast<unsigned long long>(first_index));
  return name;
}

bool parse_segment_file_name(const std::string& name, uint64_t* segment_id, uint64_t* first_index) {
  if (name.size() != 16 + 1 + 16 + 4 || name[16] != '-' || name.compare(33, 4, ".wal") != 0) return false;
  auto parse_hex = [](const std::string& text, uint64_t* out) {
    uint64_t value = 0;
    for (char c : text) {
      int digit;
      if (c >= '0' && c <= '9') digit = c - '0';
      else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      else return false;
      value = (value << 4) | static_cast<uint64_t>(digit);
    }
    *out = value;
    return true;
  };
  return parse_hex(name.substr(0, 16), segment_id) && parse_hex(name.substr(17, 16), first_index);
}

void encode_segment_header(const SegmentHeader& header, uint8_t* out) {
  std::memset(out, 0, segment_header_bytes);
  store_u64(out, segment_magic);
  store_u32(out + 8, header.version);
  store_u64(out + 16, header.segment_id);
  store_u64(out + 24, header.first_index);
  store_u32(out + 12, segment_header_crc(out));
}

Result<SegmentHeader> decode_segment_header(const uint8_t* in, size_t available, const std::string& where) {
  if (available < segment_header_bytes) {
    return Status::corruption(where + ": segment header is " + std::to_string(available) + " bytes, expected " +
                              std::to_string(segment_header_bytes));
  }
  if (load_u64(in) != segment_magic) return Status::corruption(where + " offset 0: bad segment magic");
  uint32_t version = load_u32(in + 8);
  uint32_t stored_crc = load_u32(in + 12);
  uint32_t computed_crc = segment_header_crc(in);
  if (stored_crc != computed_crc) {
    return Status::corruption(where + " offset 0: segment header checksum mismatch (stored " +
                              std::to_string(stored_crc) + ", computed " + std::to_string(computed_crc) + ")");
  }
  if (version < format_version_oldest || version > format_version) {
    return Status::unsupported(where + ": segment format version " + std::to_string(version) +
                               ", this build reads versions " + std::to_string(format_version_oldest) + " to " +
                               std::to_string(format_version));
  }
  return SegmentHeader{load_u64(in + 16), load_u64(in + 24), version};
}

void encode_record(SegmentCodec codec, EntryType type, uint64_t index, uint64_t term, const uint8_t* payload,
                   size_t bytes, uint8_t* out) {
  KV_ASSERT(bytes <= record_payload_bytes_max);
  size_t padded = record_bytes(bytes) - record_header_bytes;
  if (codec.version >= 3) {
    entry_frame::write_header(type, index, term, payload, bytes, out);
    if (bytes > 0) std::memcpy(out + record_header_bytes, payload, bytes);
    std::memset(out + record_header_bytes + bytes, 0, padded - bytes);
    store_u32(out, crc32c_extend(codec.salt, out + 4, record_header_bytes - 4));
    return;
  }
  std::memset(out, 0, record_header_bytes);
  store_u32(out + 4, static_cast<uint32_t>(bytes));
  out[8] = static_cast<uint8_t>(type);
  store_u64(out + 16, index);
  store_u64(out + 24, term);
  if (bytes > 0) std::memcpy(out + record_header_bytes, payload, bytes);
  std::memset(out + record_header_bytes + bytes, 0, padded - bytes);
  uint32_t crc =
      crc32c_extend(crc32c_extend(codec.salt, out + 4, record_header_bytes - 4), out + record_header_bytes, bytes);
  store_u32(out, crc);
}

void encode_framed_record(SegmentCodec codec, const std::vector<uint8_t>& frame, uint8_t* out) {
  static_assert(entry_frame::header_bytes == record_header_bytes, "a version 3 record is a frame");
  const entry_frame::Header header = entry_frame::read_header(frame.data());
  const uint8_t* payload = frame.data() + entry_frame::header_bytes;
  if (codec.version < 3) {
    encode_record(codec, header.type, header.index, header.term, payload, header.payload_bytes, out);
    return;
  }
  std::memcpy(out, frame.data(), frame.size());
  std::memset(out + frame.size(), 0, record_bytes(header.payload_bytes) - frame.size());
  store_u32(out, crc32c_extend(codec.salt, out + 4, record_header_bytes - 4));
}

RecordCheck check_record(const uint8_t* data, size_t available, SegmentCodec codec, RecordHeader* header) {
  KV_ASSERT(available >= record_header_bytes);
  if (all_zero(data, record_header_bytes)) return RecordCheck::zero;
  uint32_t payload_bytes = load_u32(data + 4);
  uint8_t type = data[8];
  const size_t reserved = codec.version >= 3 ? 3 : 7;  // from version 3, bytes 12..15 hold the payload's checksum
  if (!is_wal_record_type(type) || !all_zero(data + 9, reserved) || payload_bytes > record_payload_bytes_max) {
    return RecordCheck::invalid;
  }
  header->crc = load_u32(data);
  header->payload_bytes = payload_bytes;
  header->type = static_cast<EntryType>(type);
  header->index = load_u64(data + 16);
  header->term = load_u64(data + 24);
  if (record_bytes(payload_bytes) > available) return RecordCheck::incomplete;
  if (codec.version >= 3) {
    if (crc32c_extend(codec.salt, data + 4, record_header_bytes - 4) != header->crc) return RecordCheck::invalid;
    if (entry_checksum(header->type, header->index, header->term, data + record_header_bytes, payload_bytes) !=
        load_u32(data + 12)) {
      return RecordCheck::invalid;
    }
  } else {
    uint32_t crc = crc32c_extend(crc32c_extend(codec.salt, data + 4, record_header_bytes - 4),
                                 data + record_header_bytes, payload_bytes);
    if (crc != header->crc) return RecordCheck::invalid;
  }
  // Padding is written as zeros; anything else means the bytes were not written by us.
  if (!all_zero(data + record_header_bytes + payload_bytes, record_bytes(payload_bytes) - record_header_bytes - payload_bytes)) {
    return RecordCheck::invalid;
  }
  return RecordCheck::valid;
}

bool is_wal_record_type(uint8_t value) {
  return is_valid_entry_type(value) || value == static_cast<uint8_t>(EntryType::seal);
}

std::vector<uint8_t> encode_seal_payload(const std::vector<uint8_t>& metadata, size_t padded_bytes) {
  std::vector<uint8_t> payload(std::max(padded_bytes, sizeof(uint32_t) + metadata.size()), 0);
  store_u32(payload.data(), static_cast<uint32_t>(metadata.size()));
  if (!metadata.empty()) std::memcpy(payload.data() + sizeof(uint32_t), metadata.data(), metadata.size());
  return payload;
}

Result<std::optional<Metadata>> decode_seal_payload(const uint8_t* payload, size_t bytes, const std::string& where) {
  if (bytes == 0) return std::optional<Metadata>();
  if (bytes < sizeof(uint32_t)) return Status::corruption(where + ": seal payload of " + std::to_string(bytes) + " bytes");
  const uint32_t metadata_bytes = load_u32(payload);
  if (metadata_bytes > bytes - sizeof(uint32_t)) {
    return Status::corruption(where + ": seal says its metadata copy is " + std::to_string(metadata_bytes) +
                              " bytes, but its payload holds " + std::to_string(bytes - sizeof(uint32_t)));
  }
  if (!all_zero(payload + sizeof(uint32_t) + metadata_bytes, bytes - sizeof(uint32_t) - metadata_bytes)) {
    return Status::corruption(where + ": seal padding is not zero");
  }
  if (metadata_bytes == 0) return std::optional<Metadata>();
  KV_ASSIGN_OR_RETURN(Metadata copy, decode_metadata(payload + sizeof(uint32_t), metadata_bytes, where));
  return std::optional<Metadata>(std::move(copy));
}

}  // namespace keyval::wal_format
