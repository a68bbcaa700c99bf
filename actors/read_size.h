// How much a listener asks CAF to read from a connection at a time.
//
// CAF 0.17's stream reads into a buffer of the receive policy's size; after each read the
// scribe shrinks that buffer to the bytes read, and the stream then grows it back to the
// policy's size, zeroing what it grows (scribe::consume, stream::prepare_next_read). With an
// `at_most(64 KiB)` policy every read event cost a 64 KiB memset however few bytes arrived:
// under pipelined Redis load, 3 % of the leader's CPU samples. ReadSize keeps the policy near
// what the connection's reads bring: twice as large after a read that filled it (up to
// `max`), half as large after a read of at most a quarter of it (down to `min`).
#pragma once

#include <algorithm>
#include <cstddef>

namespace keyval {

class ReadSize {
 public:
  ReadSize(size_t min, size_t max) : min_(min), max_(max), current_(min) {}

  size_t current() const { return current_; }

  // After a read of `bytes`: true when current() moved (the listener then configures the
  // connection's next read with it).
  bool after_read(size_t bytes) {
    const size_t before = current_;
    if (bytes >= current_) {
      current_ = std::min(current_ * 2, max_);
    } else if (bytes <= current_ / 4) {
      current_ = std::max(current_ / 2, min_);
    }
    return current_ != before;
  }

 private:
  size_t min_;
  size_t max_;
  size_t current_;
};

}  // namespace keyval
