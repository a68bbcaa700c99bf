// raft::Message on the wire: Cap'n Proto (schema/raft.capnp), the bytes a transport carries
// between nodes in a Frame, over TCP or through the simulator's network.
// Decoding never throws: malformed bytes (truncated, unknown type, a flag out of range,
// an entry list larger than the message) become a corruption Status naming what was wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "raft/message.h"
#include "storage/status.h"

namespace keyval {

// A raft message's encoded size is bounded (the core bounds entries per append by bytes).
constexpr size_t raft_message_bytes_max = 64u << 20;

std::vector<uint8_t> encode_raft_message(const raft::Message& message);
Result<raft::Message> decode_raft_message(const uint8_t* data, size_t bytes);

// The same, with the address the sender serves clients on (senderClientAddress: not Raft
// state, the core never sees it; empty: none, and the bytes are those of the form above).
// The decoder refuses an address longer than sender_client_address_bytes_max.
constexpr size_t sender_client_address_bytes_max = 300;
std::vector<uint8_t> encode_raft_message(const raft::Message& message, const std::string& sender_client_address);
Result<raft::Message> decode_raft_message(const uint8_t* data, size_t bytes, std::string* sender_client_address);

}  // namespace keyval
