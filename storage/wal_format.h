// The WAL's on-disk format: constants and the encoding of segment headers and
// records, shared by the writer (wal.cc) and every reader. storage/FORMAT.md
// documents the layout and what a crash at each point leaves behind.
//
// Segment file  NNNNNNNNNNNNNNNN-FFFFFFFFFFFFFFFF.wal  (segment id, first index; hex)
//   [0, 32)  segment header, little-endian:
//              0  u64 magic "KVWALSEG"
//              8  u32 format version (2: seals; version 1 segments are still read)
//             12  u32 CRC32C of the 32 header bytes with this field zeroed
//             16  u64 segment id (1, 2, 3 ... without gaps)
//             24  u64 first index (index the segment's first log record carries)
//   [32, ..)  records, each 8-byte aligned, then zeros (preallocated space)
//
// Record
//    0  u32 CRC32C, seeded with the segment's salt (CRC32C of its id), over bytes
//       [4, 32) of the header and the payload: a record copied from (or left over
//       by) another segment never validates
//    4  u32 payload bytes
//    8  u8  type (1 log, 2 metadata, 3 snapshot, 4 truncate, 5 configuration, 6 seal); 0 is never written,
//       so an all-zero header is unused space, never a record
//    9  u8[7] reserved, zero
//   16  u64 index
//   24  u64 term
//   32  payload, then zero padding to the next multiple of 8
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "storage/status.h"
#include "storage/types.h"

namespace keyval::wal_format {

constexpr uint64_t segment_magic = 0x4745534C4157564Bull;  // "KVWALSEG" read as little-endian
constexpr uint32_t format_version = 3;         // written: records are entry frames (storage/entry_frame.h)
constexpr uint32_t format_version_sealed = 2;  // read: seals, a record CRC over header and payload
constexpr uint32_t format_version_oldest = 1;  // read: version 1 never wrote seals
// A seal's metadata copy starts in another block than the metadata record it restates ends in,
// so that one unreadable block (a latent sector error) cannot take both (storage/FORMAT.md).
constexpr uint64_t seal_block_bytes = 4096;
constexpr size_t segment_header_bytes = 32;
constexpr size_t record_header_bytes = 32;
constexpr size_t record_alignment_bytes = 8;
constexpr uint32_t record_payload_bytes_max = 64u << 20;
constexpr uint64_t segment_bytes_default = 8ull << 20;
constexpr uint64_t segment_bytes_min = 4096;
// Offsets are kept as u32 in memory: a segment (even one holding one oversized record) stays below 4 GiB.
constexpr uint64_t segment_bytes_max = 1ull << 31;

static_assert(segment_header_bytes % record_alignment_bytes == 0, "records start aligned");
static_assert(record_header_bytes % record_alignment_bytes == 0, "payloads start aligned");
static_assert(segment_bytes_max + record_header_bytes + record_payload_bytes_max < (1ull << 32),
              "every offset inside a segment fits in 32 bits");

struct SegmentHeader {
  uint64_t segment_id = 0;
  uint64_t first_index = 0;
  uint32_t version = format_version;  // decode: the version the segment was written in
};

// How one segment's records are checksummed: its salt, and its format version (before 3 the
// record CRC covers header and payload; from 3 it covers the header, and the header holds the
// payload's checksum, the entry frame's).
struct SegmentCodec {
  uint32_t salt = 0;
  uint32_t version = format_version;
};

struct RecordHeader {
  uint32_t crc = 0;
  uint32_t payload_bytes = 0;
  EntryType type = EntryType::log;
  uint64_t index = 0;
  uint64_t term = 0;
};

// Bytes a record with `payload_bytes` of payload occupies, padding included.
constexpr uint64_t record_bytes(uint64_t payload_bytes) {
  return record_header_bytes + ((payload_bytes + record_alignment_bytes - 1) & ~(record_alignment_bytes - 1));
}

// The CRC seed that binds records to their segment.
uint32_t segment_salt(uint64_t segment_id);

std::string segment_file_name(uint64_t segment_id, uint64_t first_index);
// True and the two numbers when `name` is a segment file name.
bool parse_segment_file_name(const std::string& name, uint64_t* segment_id, uint64_t* first_index);

void encode_segment_header(const SegmentHeader& header, uint8_t* out);
// `where` names the file for the error message.
Result<SegmentHeader> decode_segment_header(const uint8_t* in, size_t available, const std::string& where);

// Writes header, payload and padding (record_bytes(bytes) in all) at `out`.
void encode_record(SegmentCodec codec, EntryType type, uint64_t index, uint64_t term, const uint8_t* payload,
                   size_t bytes, uint8_t* out);
// A log or configuration entry's record from its frame: in version 3 the frame's bytes as they
// are, with the CRC slot filled (no pass over the payload); before, as encode_record.
void encode_framed_record(SegmentCodec codec, const std::vector<uint8_t>& frame, uint8_t* out);

enum class RecordCheck : uint8_t {
  valid,       // a whole record whose CRC matches this segment
  zero,        // an all-zero header: unused space
  incomplete,  // the header is plausible but the record runs past `available`
  invalid,     // anything else: bad type, reserved bits, length or CRC
};

// Checks the record header at `data` (needs record_header_bytes available) and, when the whole
// record is within `available` bytes, its CRC. Fills `header` when it returns valid or incomplete.
RecordCheck check_record(const uint8_t* data, size_t available, SegmentCodec codec, RecordHeader* header);

// Record types a segment may hold: the log's (is_valid_entry_type) and the seal.
bool is_wal_record_type(uint8_t value);

// A seal's payload: empty; or u32 n, then n bytes of Cap'n Proto Metadata (the Raft metadata
// as the batch leaves it, when the batch wrote a metadata record), then zeros. n = 0 with zeros
// after it is a padding seal. Returns the copy (none for an empty or padding seal).
// True when the `bytes` bytes at `data` are all zero; eight at a time, then the tail (the WAL's
// tail scan asks it of every 72-byte line past the records, and a seal's padding is up to 4 KiB).
inline bool all_zero(const uint8_t* data, size_t bytes) {
  size_t at = 0;
  uint64_t bits = 0;
  for (; at + 8 <= bytes; at += 8) {
    uint64_t word;
    std::memcpy(&word, data + at, 8);
    bits |= word;
  }
  for (; at < bytes; ++at) bits |= data[at];
  return bits == 0;
}

std::vector<uint8_t> encode_seal_payload(const std::vector<uint8_t>& metadata, size_t padded_bytes);
Result<std::optional<Metadata>> decode_seal_payload(const uint8_t* payload, size_t bytes, const std::string& where);

}  // namespace keyval::wal_format
