// CRC32C (Castagnoli), the checksum of every WAL record and stored entry.
// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise;
// both give identical results (tests/crc32c_test.cc checks it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace keyval {

// Extends `crc` (the value returned for the bytes before) over `bytes` more bytes.
uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t bytes);
inline uint32_t crc32c(const uint8_t* data, size_t bytes) { return crc32c_extend(0, data, bytes); }

// The table-driven version, always available (for tests and CPUs without SSE4.2).
uint32_t crc32c_extend_portable(uint32_t crc, const uint8_t* data, size_t bytes);
// True when crc32c_extend uses the CPU's crc32 instruction.
bool crc32c_is_hardware_accelerated();

}  // namespace keyval
