// Reading and writing flat Cap'n Proto messages safely: the one place that
// aligns input, bounds the traversal, and turns Cap'n Proto's exceptions into a
// corruption Status. Used by every codec (storage/codec.cc, actors/record_batch.cc).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
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

inline std::vector<uint8_t> message_to_bytes(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

// Runs `read(capnp::MessageReader&) -> Status` on the message in `data` (need not be
// word-aligned). Malformed input is a corruption Status naming `where`.
template <class Function>
Status read_message(const uint8_t* data, size_t bytes, const std::string& where, Function&& read) {
  if (bytes % sizeof(capnp::word) != 0 || bytes == 0) {
    return Status::corruption(where + ": encoded message of " + std::to_string(bytes) +
                              " bytes is not a whole number of 8-byte words");
  }
  kj::Array<capnp::word> aligned = kj::heapArray<capnp::word>(bytes / sizeof(capnp::word));
  std::memcpy(aligned.begin(), data, bytes);
  capnp::ReaderOptions options;
  options.traversalLimitInWords =
      std::min(decode_traversal_words_max,
               decode_traversal_words_per_message_word * (bytes / sizeof(capnp::word)) + decode_traversal_words_slack);
  Status status;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&]() {
    capnp::FlatArrayMessageReader reader(aligned.asPtr(), options);
    status = read(reader);
  });
  KJ_IF_MAYBE(exception, failure) {
    return Status::corruption(where + ": malformed message: " + std::string(exception->getDescription().cStr()));
  }
  return status;
}

}  // namespace keyval
