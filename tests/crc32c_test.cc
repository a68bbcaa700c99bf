// Goal: CRC32C gives the published Castagnoli values, extends across split buffers, and the SSE4.2 and table paths agree.
// Method: RFC 3720 test vectors, every split point of a buffer, seeded random buffers at every misalignment, single-bit flips.
#define BOOST_TEST_MODULE crc32c_test
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "storage/crc32c.h"

namespace keyval {
namespace {

using CrcFunction = uint32_t (*)(uint32_t, const uint8_t*, size_t);

// Both implementations under test; the hardware one falls back to the table on CPUs without SSE4.2.
struct Implementation {
  const char* name;
  CrcFunction extend;
};
const Implementation implementations[] = {{"crc32c_extend", &crc32c_extend},
                                          {"crc32c_extend_portable", &crc32c_extend_portable}};

// Bit-at-a-time reference, straight from the definition (reflected polynomial 0x82F63B78).
uint32_t crc32c_reference(const uint8_t* data, size_t bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < bytes; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  return ~crc;
}

std::vector<uint8_t> random_bytes(std::mt19937_64& random, size_t bytes) {
  std::vector<uint8_t> data(bytes);
  for (auto& byte : data) byte = static_cast<uint8_t>(random());
  return data;
}

}  // namespace
}  // namespace keyval

// At global scope: a suite named `crc32c` inside namespace keyval would collide with keyval::crc32c().
BOOST_AUTO_TEST_SUITE(crc32c)

using namespace keyval;

BOOST_AUTO_TEST_CASE(uses_hardware_exactly_when_the_cpu_has_sse42) {
  BOOST_TEST_MESSAGE("crc32c_extend uses "
                     << (crc32c_is_hardware_accelerated() ? "the SSE4.2 crc32 instruction" : "the slicing-by-8 table"));
#if defined(__x86_64__)
  // An independent witness of the CPU's features: the kernel's flag list.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  bool flags_seen = false;
  bool has_sse42 = false;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    flags_seen = true;
    has_sse42 = (line + " ").find(" sse4_2 ") != std::string::npos;
    break;
  }
  if (!flags_seen) {
    BOOST_TEST_MESSAGE("no /proc/cpuinfo flags; cannot cross-check the CPU");
    return;
  }
  BOOST_TEST(crc32c_is_hardware_accelerated() == has_sse42);
#else
  BOOST_TEST(!crc32c_is_hardware_accelerated());  // only the x86-64 instruction is wired in
#endif
}

BOOST_AUTO_TEST_CASE(matches_published_test_vectors) {
  const std::string check = "123456789";
  std::vector<uint8_t> zeros(32, 0x00);
  std::vector<uint8_t> ones(32, 0xFF);
  std::vector<uint8_t> ascending(32);
  std::vector<uint8_t> descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<uint8_t>(i);
    descending[i] = static_cast<uint8_t>(31 - i);
  }
  for (const Implementation& implementation : implementations) {
    BOOST_TEST_CONTEXT(implementation.name) {
      auto crc = [&](const uint8_t* data, size_t bytes) { return implementation.extend(0, data, bytes); };
      BOOST_TEST(crc(reinterpret_cast<const uint8_t*>(check.data()), check.size()) == 0xE3069283u);
      BOOST_TEST(crc(zeros.data(), zeros.size()) == 0x8A9136AAu);
      BOOST_TEST(crc(ones.data(), ones.size()) == 0x62A8AB43u);
      BOOST_TEST(crc(ascending.data(), ascending.size()) == 0x46DD794Eu);
      BOOST_TEST(crc(descending.data(), descending.size()) == 0x113FDB5Cu);
      BOOST_TEST(crc(nullptr, 0) == 0u);  // the empty message
    }
  }
  BOOST_TEST(keyval::crc32c(reinterpret_cast<const uint8_t*>(check.data()), check.size()) == 0xE3069283u);
  BOOST_TEST(crc32c_reference(reinterpret_cast<const uint8_t*>(check.data()), check.size()) == 0xE3069283u);
}

BOOST_AUTO_TEST_CASE(extend_over_split_buffers_equals_one_shot) {
  std::mt19937_64 random(20240601);
  const std::vector<uint8_t> data = random_bytes(random, 200);
  for (const Implementation& implementation : implementations) {
    const uint32_t whole = implementation.extend(0, data.data(), data.size());
    BOOST_TEST(whole == crc32c_reference(data.data(), data.size()));
    for (size_t split = 0; split <= data.size(); ++split) {
      uint32_t crc = implementation.extend(0, data.data(), split);
      crc = implementation.extend(crc, data.data() + split, data.size() - split);
      BOOST_TEST_CONTEXT(implementation.name << " split at " << split) { BOOST_TEST(crc == whole); }
    }
    // Three pieces, including empty ones, in every combination of small cuts.
    for (size_t first = 0; first <= 24; ++first) {
      for (size_t second = first; second <= 40; ++second) {
        uint32_t crc = implementation.extend(0, data.data(), first);
        crc = implementation.extend(crc, data.data() + first, second - first);
        crc = implementation.extend(crc, data.data() + second, data.size() - second);
        BOOST_TEST_CONTEXT(implementation.name << " cuts at " << first << " and " << second) {
          BOOST_TEST(crc == whole);
        }
      }
    }
  }
  // The two implementations can be mixed mid-stream: they share the state convention.
  uint32_t mixed = crc32c_extend(0, data.data(), 77);
  mixed = crc32c_extend_portable(mixed, data.data() + 77, data.size() - 77);
  BOOST_TEST(mixed == keyval::crc32c(data.data(), data.size()));
}

BOOST_AUTO_TEST_CASE(hardware_equals_portable_on_random_data_of_many_lengths_and_alignments) {
  BOOST_TEST_MESSAGE("comparing crc32c_extend ("
                     << (crc32c_is_hardware_accelerated() ? "SSE4.2" : "table, no SSE4.2 on this CPU")
                     << ") with crc32c_extend_portable");
  std::mt19937_64 random(7);
  std::vector<size_t> lengths;
  for (size_t length = 0; length <= 300; ++length) lengths.push_back(length);
  for (size_t length : {511u, 512u, 513u, 4095u, 4096u, 4097u, 65536u + 3u, (1u << 20) + 5u}) lengths.push_back(length);

  size_t compared = 0;
  for (size_t length : lengths) {
    // 16 spare bytes so every start offset 0..15 (all misalignments against 8 and 16) fits.
    const std::vector<uint8_t> buffer = random_bytes(random, length + 16);
    for (size_t offset = 0; offset < 16; ++offset) {
      const uint8_t* data = buffer.data() + offset;
      const uint32_t seed = offset % 2 == 0 ? 0u : static_cast<uint32_t>(random());
      const uint32_t hardware = crc32c_extend(seed, data, length);
      const uint32_t portable = crc32c_extend_portable(seed, data, length);
      if (hardware != portable) {
        BOOST_ERROR("length " << length << " offset " << offset << " seed " << seed << ": hardware " << std::hex
                              << hardware << " portable " << portable);
      }
      ++compared;
    }
    if (length <= 300) {
      BOOST_TEST(keyval::crc32c(buffer.data() + 3, length) == crc32c_reference(buffer.data() + 3, length));
    }
  }
  BOOST_TEST_MESSAGE("compared " << compared << " buffers");
  BOOST_TEST(compared == lengths.size() * 16);
}

BOOST_AUTO_TEST_CASE(single_bit_flip_changes_the_crc) {
  std::mt19937_64 random(99);
  for (size_t length : {1u, 7u, 8u, 9u, 64u, 1000u}) {
    std::vector<uint8_t> data = random_bytes(random, length);
    for (const Implementation& implementation : implementations) {
      const uint32_t original = implementation.extend(0, data.data(), data.size());
      size_t unchanged = 0;
      for (size_t bit = 0; bit < length * 8; ++bit) {
        data[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        if (implementation.extend(0, data.data(), data.size()) == original) ++unchanged;
        data[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      }
      BOOST_TEST_CONTEXT(implementation.name << " length " << length) {
        BOOST_TEST(unchanged == 0u);
        BOOST_TEST(implementation.extend(0, data.data(), data.size()) == original);  // flips were undone
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
