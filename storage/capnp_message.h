// Reading and writing flat Cap'n Proto messages safely: the one place that
// aligns input, bounds the traversal, and turns Cap'n Proto's exceptions into a
// corruption Status. Used by every codec (storage/codec.cc, actors/record_batch.cc).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "storage/status.h"

namespace keyval {

// Bounds how much a reader may traverse, so a hostile length cannot make it loop.
constexpr uint64_t decode_traversal_words_max = 256ull << 20;
// Decoders read each object once, so an honest message traverses at most its own words.
// Cap'n Proto counts each zero-sized list element as one word: bounding the traversal by the
// message size also bounds how many elements a hostile list may declare (without it, 48
// bytes could declare 64 Mi empty members and make a decoder allocate gigabytes). Headroom
// (twice the words, plus a constant) keeps an honest message decodable if a field is read twice.
constexpr uint64_t decode_traversal_words_per_message_word = 2;
constexpr uint64_t decode_traversal_words_slack = 64;

// Byte strings in and out of Data fields.
inline capnp::Data::Reader as_data(const std::string& bytes) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size());
}

inline std::string as_string(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

// By size, not cStr(): a text with a NUL byte survives the round trip.
inline std::string as_string(capnp::Text::Reader text) { return std::string(text.cStr(), text.size()); }

// The standard flat encoding (what capnp::messageToFlatArray writes), straight into the
// vector: the segment table (segment count - 1, then each segment's size in words, as
// little-endian uint32, padded to a word), then the segments.
inline std::vector<uint8_t> message_to_bytes(capnp::MessageBuilder& builder) {
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments = builder.getSegmentsForOutput();
  const size_t table_words = (segments.size() + 2) / 2;
  size_t words = table_words;
  for (const auto& segment : segments) words += segment.size();
  // The table is written (its padding zeroed), the segments copied in: no byte is written
  // twice, as zero-initialising the whole vector first would.
  std::vector<uint8_t> bytes(table_words * sizeof(capnp::word));
  bytes.reserve(words * sizeof(capnp::word));
  auto put_u32 = [&](size_t at, size_t value) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<uint8_t>(value >> (8 * i));
  };
  put_u32(0, segments.size() - 1);
  for (size_t i = 0; i < segments.size(); ++i) put_u32(4 * (i + 1), segments[i].size());
  for (const auto& segment : segments) {
    const auto* begin = reinterpret_cast<const uint8_t*>(segment.begin());
    bytes.insert(bytes.end(), begin, begin + segment.size() * sizeof(capnp::word));
  }
  return bytes;
}

// Words of a Cap'n Proto struct: its data section and its pointers.
template <class Struct>
constexpr size_t struct_words() {
  return Struct::_capnpPrivate::dataWordSize + Struct::_capnpPrivate::pointerCount;
}

// A first segment for a builder that holds the whole message: `fixed_words` for its structs
// and pointers, plus each of `data_fields` byte fields padded to a word. The builder's
// default first segment is 1,024 words, allocated and zeroed for every message: 8 KiB for a
// 150-byte put. (Too small an estimate is still correct: the builder adds a segment.)
inline unsigned first_segment_words(size_t fixed_words, size_t data_bytes, size_t data_fields) {
  return static_cast<unsigned>(fixed_words + (data_bytes + 7) / 8 + data_fields);
}

// Builds a message with `fill(capnp::MessageBuilder&)` and returns its flat encoding
// (message_to_bytes). The first segment is a per-thread scratch array, not a fresh
// allocation: MallocMessageBuilder callocs its own first segment for every message, and
// glibc's calloc bypasses the per-thread cache, so on the request path each encode paid a
// trip through the allocator's bins (and their consolidation) on top of the vector
// returned. The builder zeroes what it used of a caller's segment when it is destroyed, so
// the scratch is zero for the next message. The scratch grows to the largest estimate seen
// (up to encode_scratch_words_max): a batch of entries (a Ready's records, an apply batch)
// callocked a fresh segment of its own size for every encode, and the allocator handed
// back pages the kernel had to fault in and zero, about a third of the leader's page
// faults under pipelined SETs (docs/BENCHMARKS.md, "Encodes into a kept scratch"). An
// encode nested inside another on the same thread, or one whose estimate
// (`first_segment_words`) exceeds the maximum, gets a segment of its own as before. The
// scratch is per thread and per encoder (each instantiation of this template has its own):
// only the batch encoders grow theirs, to the largest batch they encoded.
constexpr unsigned encode_scratch_words = 2048;            // 16 KiB at first
constexpr unsigned encode_scratch_words_max = 1u << 20;    // at most 8 MiB

template <class Fill>
std::vector<uint8_t> encode_message(unsigned estimated_words, Fill&& fill) {
  struct Scratch {
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(0);
    bool busy = false;
  };
  thread_local Scratch scratch;
  if (scratch.busy || estimated_words > encode_scratch_words_max) {
    capnp::MallocMessageBuilder builder(estimated_words);
    fill(static_cast<capnp::MessageBuilder&>(builder));
    return message_to_bytes(builder);
  }
  const size_t wanted = std::max<size_t>(estimated_words, encode_scratch_words);
  if (scratch.words.size() < wanted) {
    size_t size = std::max<size_t>(encode_scratch_words, scratch.words.size());
    while (size < wanted) size *= 2;
    size = std::min<size_t>(size, encode_scratch_words_max);
    scratch.words = kj::heapArray<capnp::word>(size);
    std::memset(scratch.words.begin(), 0, size * sizeof(capnp::word));
  }
  struct Release {
    bool& busy;
    ~Release() { busy = false; }
  } release{scratch.busy};
  scratch.busy = true;
  capnp::MallocMessageBuilder builder(scratch.words.asPtr());
  fill(static_cast<capnp::MessageBuilder&>(builder));
  return message_to_bytes(builder);
}

// Runs `read(capnp::MessageReader&) -> Status` on the message in `data` (need not be
// word-aligned). Malformed input is a corruption Status naming `where`.
template <class Function>
Status read_message(const uint8_t* data, size_t bytes, const std::string& where, Function&& read) {
  if (bytes % sizeof(capnp::word) != 0 || bytes == 0) {
    return Status::corruption(where + ": encoded message of " + std::to_string(bytes) +
                              " bytes is not a whole number of 8-byte words");
  }
  // Read in place when the bytes are word-aligned (a vector's or a receive buffer's are: the
  // allocator aligns to 16); copied to an aligned array otherwise.
  const size_t words = bytes / sizeof(capnp::word);
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> aligned;
  if (reinterpret_cast<uintptr_t>(data) % alignof(capnp::word) == 0) {
    aligned = kj::ArrayPtr<const capnp::word>(reinterpret_cast<const capnp::word*>(data), words);
  } else {
    copy = kj::heapArray<capnp::word>(words);
    std::memcpy(copy.begin(), data, bytes);
    aligned = copy.asPtr();
  }
  capnp::ReaderOptions options;
  options.traversalLimitInWords =
      std::min(decode_traversal_words_max,
               decode_traversal_words_per_message_word * (bytes / sizeof(capnp::word)) + decode_traversal_words_slack);
  Status status;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&]() {
    capnp::FlatArrayMessageReader reader(aligned, options);
    status = read(reader);
  });
  KJ_IF_MAYBE(exception, failure) {
    return Status::corruption(where + ": malformed message: " + std::string(exception->getDescription().cStr()));
  }
  return status;
}

}  // namespace keyval
