// An entry's frame: the one form a Raft log entry takes outside the Raft core's memory. It is
// built once, when the entry is made (a proposal on the leader), and the same bytes are
// written to the WAL, sent to the followers and stored in LMDB's log (storage/FORMAT.md,
// "Entry frame"). Where the bytes cross a process or a disk boundary the receiver checks the
// frame (check below); hops inside one process pass it on unchecked.
//
// Layout (little-endian, 32-byte header, then the payload, unpadded):
//
//   0  u32  zero: the WAL record's CRC slot (the WAL fills it with its segment-salted CRC)
//   4  u32  payload bytes
//   8  u8   type (EntryType)
//   9  3    zero
//   12 u32  checksum: CRC32C of type, index, term and payload (storage/codec.h entry_checksum)
//   16 u64  index
//   24 u64  term
//   32      payload
//
// A WAL record of format version 3 is exactly a frame with its CRC slot filled and zeros to
// the next multiple of 8; the payload starts word-aligned, so a Cap'n Proto payload is read in
// place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/status.h"
#include "storage/types.h"

namespace keyval::entry_frame {

constexpr size_t header_bytes = 32;
constexpr uint32_t payload_bytes_max = 64u << 20;  // as a WAL record's (storage/wal_format.h)

struct Header {
  uint32_t payload_bytes = 0;
  EntryType type = EntryType::log;
  uint32_t checksum = 0;
  uint64_t index = 0;
  uint64_t term = 0;
};

// Writes the header for this payload (the checksum computed over it) into out[0, 32).
void write_header(EntryType type, uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes, uint8_t* out);
// A frame of this entry.
std::vector<uint8_t> build(EntryType type, uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes);
// Reads a header without checking it (the caller built it, or checked it).
Header read_header(const uint8_t* frame);

// Checks bytes that crossed a process or a disk boundary: the length, the zero bytes, a type
// a Raft log may hold (log or configuration), the checksum, and the index when `expected_index`
// is not 0. A corruption Status naming `where` and what was wrong otherwise.
Result<Header> check(const uint8_t* data, size_t bytes, uint64_t expected_index, const std::string& where);
// check, then an Entry holding a copy of the bytes.
Result<Entry> decode(const uint8_t* data, size_t bytes, uint64_t expected_index, const std::string& where);

// True when `bytes` of `data` have a frame's shape (zero CRC slot, the length matching), so a
// store holding values of an older form can tell them apart (storage/FORMAT.md).
bool looks_like_frame(const uint8_t* data, size_t bytes);

}  // namespace keyval::entry_frame
