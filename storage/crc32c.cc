// CRC32C with a runtime choice between the SSE4.2 instruction and a
// slicing-by-8 table (reflected polynomial 0x82F63B78).
#include "storage/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace keyval {
namespace {

constexpr uint32_t polynomial_reflected = 0x82F63B78u;

struct Tables {
  uint32_t slice[8][256];
  Tables() {
    for (uint32_t byte = 0; byte < 256; ++byte) {
      uint32_t crc = byte;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? polynomial_reflected : 0u);
      slice[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < 256; ++byte) {
      for (int k = 1; k < 8; ++k) slice[k][byte] = (slice[k - 1][byte] >> 8) ^ slice[0][slice[k - 1][byte] & 0xFF];
    }
  }
};

const Tables& tables() {
  static const Tables instance;
  return instance;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t extend_hardware(uint32_t crc, const uint8_t* data, size_t bytes) {
  uint64_t state = ~crc;
  while (bytes > 0 && (reinterpret_cast<uintptr_t>(data) & 7u) != 0) {
    state = _mm_crc32_u8(static_cast<uint32_t>(state), *data++);
    --bytes;
  }
  while (bytes >= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    state = _mm_crc32_u64(state, word);
    data += 8;
    bytes -= 8;
  }
  while (bytes > 0) {
    state = _mm_crc32_u8(static_cast<uint32_t>(state), *data++);
    --bytes;
  }
  return ~static_cast<uint32_t>(state);
}

bool cpu_has_sse42() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#endif

}  // namespace

uint32_t crc32c_extend_portable(uint32_t crc, const uint8_t* data, size_t bytes) {
  const Tables& t = tables();
  uint32_t state = ~crc;
  while (bytes >= 8) {
    uint32_t low;
    uint32_t high;
    std::memcpy(&low, data, 4);
    std::memcpy(&high, data + 4, 4);
    low ^= state;  // little-endian host (static_assert below)
    state = t.slice[7][low & 0xFF] ^ t.slice[6][(low >> 8) & 0xFF] ^ t.slice[5][(low >> 16) & 0xFF] ^
            t.slice[4][low >> 24] ^ t.slice[3][high & 0xFF] ^ t.slice[2][(high >> 8) & 0xFF] ^
            t.slice[1][(high >> 16) & 0xFF] ^ t.slice[0][high >> 24];
    data += 8;
    bytes -= 8;
  }
  while (bytes > 0) {
    state = (state >> 8) ^ t.slice[0][(state ^ *data++) & 0xFF];
    --bytes;
  }
  return ~state;
}

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the slicing table assumes a little-endian host");

bool crc32c_is_hardware_accelerated() {
#if defined(__x86_64__)
  static const bool has = cpu_has_sse42();
  return has;
#else
  return false;
#endif
}

uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t bytes) {
#if defined(__x86_64__)
  if (crc32c_is_hardware_accelerated()) return extend_hardware(crc, data, bytes);
#endif
  return crc32c_extend_portable(crc, data, bytes);
}

}  // namespace keyval
