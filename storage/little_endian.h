// Little-endian integers in byte buffers, the byte order of every KeyVal file format (WAL
// segments and records, entry frames, snapshot files). Portable: independent of the host's
// byte order, and free of alignment requirements.
#pragma once

#include <cstdint>

namespace keyval::little_endian {

inline uint32_t load_u32(const uint8_t* in) {
  return static_cast<uint32_t>(in[0]) | static_cast<uint32_t>(in[1]) << 8 | static_cast<uint32_t>(in[2]) << 16 |
         static_cast<uint32_t>(in[3]) << 24;
}

inline uint64_t load_u64(const uint8_t* in) {
  return static_cast<uint64_t>(load_u32(in)) | static_cast<uint64_t>(load_u32(in + 4)) << 32;
}

inline void store_u32(uint8_t* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

inline void store_u64(uint8_t* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

}  // namespace keyval::little_endian
