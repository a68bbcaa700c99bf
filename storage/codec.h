// Cap'n Proto encoding of the persistent types (schema/storage.capnp).
// Decoding never throws: malformed bytes become a corruption Status naming
// `where` (a file and offset, or an LMDB key).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/status.h"
#include "storage/types.h"

namespace keyval {

std::vector<uint8_t> encode_metadata(const Metadata& metadata);
Result<Metadata> decode_metadata(const uint8_t* data, size_t bytes, const std::string& where);

std::vector<uint8_t> encode_snapshot_metadata(const SnapshotMetadata& snapshot);
Result<SnapshotMetadata> decode_snapshot_metadata(const uint8_t* data, size_t bytes, const std::string& where);
// A configuration entry's payload (EntryType::configuration; raft/membership.h).
std::vector<uint8_t> encode_configuration_entry(const ConfigurationEntry& entry);
Result<ConfigurationEntry> decode_configuration_entry(const uint8_t* data, size_t bytes, const std::string& where);

// A log entry as the LMDB `log` database stores it: its frame (storage/entry_frame.h).
std::vector<uint8_t> encode_entry(const Entry& entry);
// Checks the checksum and that the stored index is `expected_index` (0: any). Reads a frame,
// or the Cap'n Proto WalEntry that stores written before frames hold.
Result<Entry> decode_entry(const uint8_t* data, size_t bytes, uint64_t expected_index, const std::string& where);

// CRC32C of a log entry's identity and payload, independent of where it is stored.
uint32_t entry_checksum(EntryType type, uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes);

}  // namespace keyval
