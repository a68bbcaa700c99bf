// Frames on a TCP stream, for both peer links and client connections: a 4-byte
// little-endian payload length, then the payload (Cap'n Proto bytes: actors/raft_wire.h
// between nodes, actors/client_protocol.h between clients and nodes). A peer link starts
// with the handshake of actors/peer_handshake.h (hello "KVPEER04", reply, proof), not framed.
// A length of 0 or above the channel's bound is a protocol error: the connection closes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace keyval {

constexpr size_t frame_header_bytes = 4;

inline void write_frame_header(uint8_t* header, uint32_t payload_bytes) {
  for (int i = 0; i < 4; ++i) header[i] = static_cast<uint8_t>(payload_bytes >> (8 * i));
}

inline void append_frame_header(std::vector<uint8_t>& out, uint32_t payload_bytes) {
  // Grown, then written in place (an insert from a local array here set off GCC 12's
  // -Wstringop-overflow, a false positive).
  const size_t at = out.size();
  out.resize(at + frame_header_bytes);
  write_frame_header(out.data() + at, payload_bytes);
}

inline uint32_t read_frame_header(const uint8_t* header) {
  uint32_t length = 0;
  for (int i = 0; i < 4; ++i) length |= static_cast<uint32_t>(header[i]) << (8 * i);
  return length;
}

// header + payload, ready to write.
inline std::vector<uint8_t> make_frame(const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out;
  out.reserve(frame_header_bytes + payload.size());
  append_frame_header(out, static_cast<uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

}  // namespace keyval
