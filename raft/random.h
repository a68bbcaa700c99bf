// The Raft core's only source of randomness: a seeded SplitMix64 (Steele, Lea, Flood
// 2014). Seeded from Config so that one simulation seed reproduces every election
// timeout exactly; never std::random_device (STYLE.md: randomness comes through a seam).
#pragma once

#include <cstdint>

namespace keyval::raft {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform enough in [low, high] for timeouts (modulo bias is negligible for small ranges).
  uint64_t between(uint64_t low, uint64_t high) { return low + next() % (high - low + 1); }

 private:
  uint64_t state_;
};

}  // namespace keyval::raft
