// libFuzzer: the WAL's record and segment-header checks (storage/wal_format.h) on arbitrary
// bytes, in every record format version. check_record must classify every input without
// reading past `available`, and a record it calls valid must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "storage/wal_format.h"

using namespace keyval;
using namespace keyval::wal_format;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)decode_segment_header(data, size, "fuzz");
  if (size < 4 + record_header_bytes) return 0;
  uint32_t salt = 0;
  std::memcpy(&salt, data, 4);
  // Exactly the bytes after the salt, copied so ASan sees reads past the end.
  std::vector<uint8_t> record(data + 4, data + size);
  // Every format version's rules (before 3: one CRC over header and payload; from 3: a CRC
  // over the header, which holds the payload's checksum).
  for (uint32_t version : {format_version_sealed, format_version}) {
    const SegmentCodec codec{salt, version};
    RecordHeader header;
    RecordCheck check = check_record(record.data(), record.size(), codec, &header);
    if (check == RecordCheck::valid) {
      if (record_bytes(header.payload_bytes) > record.size()) __builtin_trap();
      std::vector<uint8_t> again(record_bytes(header.payload_bytes));
      encode_record(codec, header.type, header.index, header.term, record.data() + record_header_bytes,
                    header.payload_bytes, again.data());
      if (std::memcmp(again.data(), record.data(), record_header_bytes) != 0) __builtin_trap();
    }
  }
  return 0;
}
