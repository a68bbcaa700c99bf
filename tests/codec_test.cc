// Goal: the Cap'n Proto codec round-trips every persistent type and turns any damaged or foreign bytes into a corruption Status.
// Method: encode then decode; plant damage in the encoded bytes (payload flips, truncation, odd lengths, seeded random garbage).
#define BOOST_TEST_MODULE codec_test
#include <boost/test/unit_test.hpp>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "schema/storage.capnp.h"
#include "storage/capnp_message.h"
#include "storage/codec.h"
#include "storage/entry_frame.h"
#include "storage/kv_command.h"
#include "storage/member_codec.h"
#include "tests/support/temp_dir.h"

namespace keyval {

// Lets BOOST_TEST print a Code when a comparison fails.
std::ostream& boost_test_print_type(std::ostream& out, Code code) { return out << code_name(code); }
std::ostream& boost_test_print_type(std::ostream& out, EntryType type) { return out << entry_type_name(type); }

namespace {

using testing::make_payload;

const std::string where = "log key 0000002a";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// 128 bytes that start with a marker no other part of an encoding can contain.
std::vector<uint8_t> marked_payload() {
  const std::string marker = "<<KEYVAL-PAYLOAD-MARKER>>";
  std::vector<uint8_t> payload(marker.begin(), marker.end());
  std::vector<uint8_t> filler = make_payload(17, 128 - payload.size());
  payload.insert(payload.end(), filler.begin(), filler.end());
  return payload;
}

size_t find_bytes(const std::vector<uint8_t>& haystack, const std::vector<uint8_t>& needle) {
  auto found = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end());
  BOOST_REQUIRE_MESSAGE(found != haystack.end(), "pattern not found in the encoding");
  BOOST_REQUIRE_MESSAGE(std::search(found + 1, haystack.end(), needle.begin(), needle.end()) == haystack.end(),
                        "pattern found twice in the encoding");
  return static_cast<size_t>(found - haystack.begin());
}

// A log entry as stores written before entry frames hold it: a Cap'n Proto WalEntry with the
// given checksum.
std::vector<uint8_t> wal_entry_message(schema::EntryType type, uint64_t index, uint64_t term, ByteView payload,
                                       uint32_t checksum) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<schema::WalEntry>();
  root.setType(type);
  root.setIndex(index);
  root.setTerm(term);
  root.setPayload(kj::arrayPtr(payload.data(), payload.size()));
  root.setChecksum(checksum);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  return std::vector<uint8_t>(words.asBytes().begin(), words.asBytes().end());
}

Entry decode_ok(const std::vector<uint8_t>& bytes, uint64_t expected_index = 0) {
  Result<Entry> decoded = decode_entry(bytes.data(), bytes.size(), expected_index, where);
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  return std::move(decoded).value();
}

// Decodes `bytes` with all three decoders; each must return ok or corruption naming `where`, never throw.
// Returns how many of the three failed.
int decode_all_expecting_ok_or_corruption(const std::vector<uint8_t>& bytes, bool entry_must_fail) {
  int failures = 0;
  auto check = [&](const Status& status, bool must_fail) {
    if (status.is_ok()) {
      if (must_fail) BOOST_ERROR("garbage of " << bytes.size() << " bytes decoded as an entry");
      return;
    }
    ++failures;
    if (status.code() != Code::corruption || !contains(status.message(), where)) {
      BOOST_ERROR("garbage of " << bytes.size() << " bytes gave " << status.to_string());
    }
  };
  try {
    check(decode_entry(bytes.data(), bytes.size(), 0, where).status(), entry_must_fail);
    check(decode_metadata(bytes.data(), bytes.size(), where).status(), false);
    check(decode_snapshot_metadata(bytes.data(), bytes.size(), where).status(), false);
  } catch (...) {
    BOOST_ERROR("a decoder threw on garbage of " << bytes.size() << " bytes");
  }
  return failures;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(codec)

BOOST_AUTO_TEST_CASE(metadata_round_trips) {
  std::vector<Metadata> values = {{0, 0}, {1, 0}, {7, 3}, {UINT64_MAX, UINT64_MAX - 1}};
  Metadata recorded{9, 2};  // raft/probation.cc's records
  recorded.counted = {2, 3, 7};
  values.push_back(recorded);
  Metadata on_probation{1, 0};
  on_probation.probation = true;
  values.push_back(on_probation);
  for (const Metadata& metadata : values) {
    std::vector<uint8_t> bytes = encode_metadata(metadata);
    BOOST_TEST(bytes.size() % 8 == 0u);
    Result<Metadata> decoded = decode_metadata(bytes.data(), bytes.size(), where);
    BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
    BOOST_TEST(decoded->current_term == metadata.current_term);
    BOOST_TEST(decoded->voted_for == metadata.voted_for);
    BOOST_TEST(decoded->counted == metadata.counted);
    BOOST_TEST(decoded->probation == metadata.probation);
    BOOST_TEST((*decoded == metadata));
  }
}

BOOST_AUTO_TEST_CASE(metadata_with_counted_peers_out_of_order_is_corruption) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<schema::Metadata>();
  root.setCurrentTerm(4);
  auto counted = root.initCounted(2);
  counted.set(0, 3);
  counted.set(1, 2);
  std::vector<uint8_t> bytes = message_to_bytes(builder);
  Result<Metadata> decoded = decode_metadata(bytes.data(), bytes.size(), where);
  BOOST_REQUIRE(!decoded.is_ok());
  BOOST_TEST(decoded.status().code() == Code::corruption);
  BOOST_TEST(decoded.status().message().find("counted peers are not ascending") != std::string::npos,
             decoded.status().message());
}

BOOST_AUTO_TEST_CASE(snapshot_metadata_round_trips_with_members) {
  SnapshotMetadata snapshot;
  snapshot.last_included_index = 123456;
  snapshot.last_included_term = 42;
  snapshot.configuration = {{1, "10.0.0.1:7001"}, {2, "node-two.example:7002"}, {3, ""}, {UINT64_MAX, "[::1]:7003"}};
  std::vector<uint8_t> bytes = encode_snapshot_metadata(snapshot);
  Result<SnapshotMetadata> decoded = decode_snapshot_metadata(bytes.data(), bytes.size(), where);
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST(decoded->last_included_index == 123456u);
  BOOST_TEST(decoded->last_included_term == 42u);
  BOOST_REQUIRE(decoded->configuration.size() == 4u);
  for (size_t i = 0; i < 4; ++i) {
    BOOST_TEST(decoded->configuration[i].id == snapshot.configuration[i].id);
    BOOST_TEST(decoded->configuration[i].address == snapshot.configuration[i].address);
  }
  BOOST_TEST((decoded.value() == snapshot));

  SnapshotMetadata empty;  // no members at all
  std::vector<uint8_t> empty_bytes = encode_snapshot_metadata(empty);
  Result<SnapshotMetadata> empty_decoded = decode_snapshot_metadata(empty_bytes.data(), empty_bytes.size(), where);
  BOOST_REQUIRE_MESSAGE(empty_decoded.is_ok(), empty_decoded.status().to_string());
  BOOST_TEST((empty_decoded.value() == empty));
}

// The stored records built in a sized first segment (encode_message) are one segment, byte for
// byte what the builder's default 8 KiB first segment gave before: the formats on disk and in
// LMDB did not change, whatever the size of what they hold.
BOOST_AUTO_TEST_CASE(stored_records_are_one_segment_and_the_bytes_a_default_builder_writes) {
  auto one_segment = [](const std::vector<uint8_t>& bytes) {
    uint32_t segments_minus_one = 0;
    std::memcpy(&segments_minus_one, bytes.data(), sizeof(segments_minus_one));
    return bytes.size() >= 8 && segments_minus_one == 0;
  };
  for (size_t members : {0u, 1u, 3u, 40u}) {
    SnapshotMetadata snapshot{987654321, 77, {}};
    for (size_t i = 0; i < members; ++i) {
      snapshot.configuration.push_back(
          Member{i + 1, std::string(i * 7 % 61, 'a') + ":7001", std::string(i * 13 % 97, 'c') + ":7101", i % 2 == 1});
    }
    const std::vector<uint8_t> bytes = encode_snapshot_metadata(snapshot);
    BOOST_TEST(one_segment(bytes));
    capnp::MallocMessageBuilder reference;
    auto root = reference.initRoot<schema::SnapshotMetadata>();
    root.setLastIncludedIndex(snapshot.last_included_index);
    root.setLastIncludedTerm(snapshot.last_included_term);
    set_members(root.initConfiguration(static_cast<unsigned>(snapshot.configuration.size())), snapshot.configuration);
    BOOST_TEST((bytes == message_to_bytes(reference)), members << " members");

    ConfigurationEntry entry{ConfChangeKind::add_learner, members + 1, snapshot.configuration};
    const std::vector<uint8_t> entry_bytes = encode_configuration_entry(entry);
    BOOST_TEST(one_segment(entry_bytes));
    capnp::MallocMessageBuilder entry_reference;
    auto entry_root = entry_reference.initRoot<schema::ConfigurationEntry>();
    entry_root.setKind(static_cast<schema::ConfChangeKind>(entry.kind));
    entry_root.setNodeId(entry.node_id);
    set_members(entry_root.initMembers(static_cast<unsigned>(entry.members.size())), entry.members);
    BOOST_TEST((entry_bytes == message_to_bytes(entry_reference)), members << " members");
  }
  for (size_t value_bytes : {0u, 1u, 100u, 8191u, 65536u}) {
    CommandResult result;
    result.status = CommandStatus::ok;
    result.index = 42;
    result.found = true;
    result.value = std::string(value_bytes, 'v');
    result.message = std::string(value_bytes % 50, 'm');
    const std::vector<uint8_t> bytes = encode_session(Session{7, result});
    BOOST_TEST(one_segment(bytes), value_bytes << "-byte value");
    Result<Session> decoded = decode_session(bytes.data(), bytes.size(), where);
    BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
    BOOST_TEST(decoded->sequence == 7u);
    BOOST_TEST(decoded->result.value == result.value);
    BOOST_TEST(decoded->result.message == result.message);
  }
}

BOOST_AUTO_TEST_CASE(entry_round_trips_at_many_payload_sizes) {
  for (size_t payload_bytes : {1u, 7u, 8u, 9u, 128u, 4096u, 100000u}) {
    Entry entry{1000 + payload_bytes, 5, make_payload(payload_bytes, payload_bytes)};
    std::vector<uint8_t> bytes = encode_entry(entry);
    BOOST_TEST(bytes.size() == entry_frame::header_bytes + payload_bytes);  // the frame, unpadded
    BOOST_TEST((bytes == entry.frame()));
    Entry decoded = decode_ok(bytes, entry.index);
    BOOST_TEST_CONTEXT("payload of " << payload_bytes << " bytes") {
      BOOST_TEST(decoded.index == entry.index);
      BOOST_TEST(decoded.term == entry.term);
      BOOST_TEST((decoded.payload() == entry.payload()));
    }
  }
  Entry extreme{UINT64_MAX, UINT64_MAX, marked_payload()};
  BOOST_TEST((decode_ok(encode_entry(extreme)) == extreme));
}

// LMDB stores written before entry frames hold each log entry as a Cap'n Proto WalEntry: they
// still read, checksum and index checked, and decode_entry never takes one form for the other.
BOOST_AUTO_TEST_CASE(an_entry_stored_before_frames_still_reads) {
  for (size_t payload_bytes : {0u, 1u, 24u, 100u, 4096u}) {
    const std::vector<uint8_t> payload = make_payload(payload_bytes, payload_bytes);
    const std::vector<uint8_t> bytes = wal_entry_message(schema::EntryType::LOG, 42, 7, payload,
                                                         entry_checksum(EntryType::log, 42, 7, payload.data(),
                                                                        payload.size()));
    BOOST_TEST_CONTEXT("payload of " << payload_bytes << " bytes") {
      BOOST_TEST(!entry_frame::looks_like_frame(bytes.data(), bytes.size()));
      Entry decoded = decode_ok(bytes, 42);
      BOOST_TEST((decoded == Entry{42, 7, payload}));
      // Read back, it holds a frame like any other entry.
      BOOST_TEST((decoded.frame() == entry_frame::build(EntryType::log, 42, 7, payload.data(), payload.size())));
      if (payload_bytes > 0) {  // its checksum is still checked
        std::vector<uint8_t> damaged = bytes;
        damaged[find_bytes(bytes, payload)] ^= 0x01;
        BOOST_TEST(!decode_entry(damaged.data(), damaged.size(), 42, where).is_ok());
      }
    }
  }
}

// The frame's layout is the on-disk format (storage/FORMAT.md, "Entry frame"): fields where
// the page says they are.
BOOST_AUTO_TEST_CASE(an_entry_frame_has_its_fields_where_the_format_says) {
  const std::vector<uint8_t> payload = make_payload(5, 13);
  const Entry entry{0x1122334455667788ull, 0x0102030405060708ull, payload, EntryType::configuration};
  const std::vector<uint8_t>& frame = entry.frame();
  BOOST_REQUIRE(frame.size() == 32u + 13u);
  auto u32 = [&](size_t at) { uint32_t v; std::memcpy(&v, frame.data() + at, 4); return v; };
  auto u64 = [&](size_t at) { uint64_t v; std::memcpy(&v, frame.data() + at, 8); return v; };
  BOOST_TEST(u32(0) == 0u);   // the WAL's CRC slot
  BOOST_TEST(u32(4) == 13u);  // payload bytes
  BOOST_TEST(unsigned(frame[8]) == 5u);  // configuration
  BOOST_TEST((frame[9] | frame[10] | frame[11]) == 0);
  BOOST_TEST(u32(12) == entry_checksum(EntryType::configuration, entry.index, entry.term, payload.data(), payload.size()));
  BOOST_TEST(u32(12) == entry.checksum());
  BOOST_TEST(u64(16) == entry.index);
  BOOST_TEST(u64(24) == entry.term);
  BOOST_TEST((std::vector<uint8_t>(frame.begin() + 32, frame.end()) == payload));
  // Copies share the bytes: the frame is built once.
  const Entry copy = entry;
  BOOST_TEST(copy.shared_frame().get() == entry.shared_frame().get());
  // A field changed afterwards gives a new frame, never a stale one.
  Entry moved = entry;
  moved.term = 9;
  BOOST_TEST(u64(24) == entry.term);
  Result<Entry> reread = decode_entry(moved.frame().data(), moved.frame().size(), 0, where);
  BOOST_REQUIRE(reread.is_ok());
  BOOST_TEST(reread->term == 9u);
}

BOOST_AUTO_TEST_CASE(entry_with_empty_payload_round_trips) {
  Entry entry{9, 2, {}};
  std::vector<uint8_t> bytes = encode_entry(entry);
  Entry decoded = decode_ok(bytes, 9);
  BOOST_TEST(decoded.index == 9u);
  BOOST_TEST(decoded.term == 2u);
  BOOST_TEST(decoded.payload().empty());
  // An empty payload still binds index and term: a changed term must not pass.
  BOOST_TEST(entry_checksum(EntryType::log, 9, 2, nullptr, 0) != entry_checksum(EntryType::log, 9, 3, nullptr, 0));
}

BOOST_AUTO_TEST_CASE(flipped_payload_byte_fails_the_checksum) {
  Entry entry{77, 3, marked_payload()};
  const std::vector<uint8_t> bytes = encode_entry(entry);
  const size_t payload_offset = find_bytes(bytes, entry.payload().to_vector());
  for (size_t i = 0; i < entry.payload().size(); ++i) {
    std::vector<uint8_t> damaged = bytes;
    damaged[payload_offset + i] ^= 0x01;
    Result<Entry> decoded = decode_entry(damaged.data(), damaged.size(), 77, where);
    BOOST_TEST_CONTEXT("payload byte " << i) {
      BOOST_REQUIRE(!decoded.is_ok());
      BOOST_TEST(decoded.status().code() == Code::corruption);
      BOOST_TEST(contains(decoded.status().message(), "checksum"));
      BOOST_TEST(contains(decoded.status().message(), where));
    }
  }
}

BOOST_AUTO_TEST_CASE(flipped_index_or_term_fails_the_checksum) {
  const uint64_t index = 0x1122334455667788ull;  // distinctive values to find in the encoding
  const uint64_t term = 0x0102030405060708ull;
  Entry entry{index, term, marked_payload()};
  const std::vector<uint8_t> bytes = encode_entry(entry);
  for (uint64_t field : {index, term}) {
    std::vector<uint8_t> pattern(8);
    std::memcpy(pattern.data(), &field, 8);  // Cap'n Proto is little-endian, like the host
    const size_t offset = find_bytes(bytes, pattern);
    std::vector<uint8_t> damaged = bytes;
    damaged[offset + 7] ^= 0x80;
    Result<Entry> decoded = decode_entry(damaged.data(), damaged.size(), 0, where);
    BOOST_REQUIRE(!decoded.is_ok());
    BOOST_TEST(decoded.status().code() == Code::corruption);
    BOOST_TEST(contains(decoded.status().message(), "checksum"));
  }
}

BOOST_AUTO_TEST_CASE(wrong_expected_index_is_corruption_naming_both_indices) {
  Entry entry{123456789, 4, make_payload(1, 32)};
  const std::vector<uint8_t> bytes = encode_entry(entry);
  Result<Entry> decoded = decode_entry(bytes.data(), bytes.size(), 987654321, where);
  BOOST_REQUIRE(!decoded.is_ok());
  BOOST_TEST(decoded.status().code() == Code::corruption);
  BOOST_TEST(contains(decoded.status().message(), "123456789"));
  BOOST_TEST(contains(decoded.status().message(), "987654321"));
  BOOST_TEST(contains(decoded.status().message(), where));
  // The right index, or 0 for any, accepts it.
  BOOST_TEST(decode_entry(bytes.data(), bytes.size(), 123456789, where).is_ok());
  BOOST_TEST(decode_entry(bytes.data(), bytes.size(), 0, where).is_ok());
}

BOOST_AUTO_TEST_CASE(entry_of_another_type_is_corruption) {
  // A WalEntry whose checksum is right for its own type, but which is not a log entry.
  std::vector<uint8_t> payload = make_payload(3, 16);
  const std::vector<uint8_t> bytes = wal_entry_message(
      schema::EntryType::METADATA, 5, 1, payload, entry_checksum(EntryType::metadata, 5, 1, payload.data(), payload.size()));

  Result<Entry> decoded = decode_entry(bytes.data(), bytes.size(), 0, where);
  BOOST_REQUIRE(!decoded.is_ok());
  BOOST_TEST(decoded.status().code() == Code::corruption);
  BOOST_TEST(contains(decoded.status().message(), "type"));
}

BOOST_AUTO_TEST_CASE(every_truncation_is_corruption) {
  const std::vector<uint8_t> entry_bytes = encode_entry(Entry{31, 2, marked_payload()});
  SnapshotMetadata snapshot{40, 3, {{1, "a:1"}, {2, "b:2"}}};
  const std::vector<uint8_t> snapshot_bytes = encode_snapshot_metadata(snapshot);
  const std::vector<uint8_t> metadata_bytes = encode_metadata(Metadata{5, 2});

  for (size_t length = 0; length < entry_bytes.size(); ++length) {
    BOOST_TEST_CONTEXT("entry truncated to " << length << " bytes") {
      Result<Entry> decoded = Status::corruption("not run");
      BOOST_CHECK_NO_THROW(decoded = decode_entry(entry_bytes.data(), length, 31, where));
      BOOST_TEST(decoded.status().code() == Code::corruption);
      BOOST_TEST(contains(decoded.status().message(), where));
    }
  }
  for (size_t length = 0; length < snapshot_bytes.size(); ++length) {
    BOOST_TEST_CONTEXT("snapshot metadata truncated to " << length << " bytes") {
      Result<SnapshotMetadata> decoded = Status::corruption("not run");
      BOOST_CHECK_NO_THROW(decoded = decode_snapshot_metadata(snapshot_bytes.data(), length, where));
      BOOST_TEST(decoded.status().code() == Code::corruption);
    }
  }
  for (size_t length = 0; length < metadata_bytes.size(); ++length) {
    BOOST_TEST_CONTEXT("metadata truncated to " << length << " bytes") {
      Result<Metadata> decoded = Status::corruption("not run");
      BOOST_CHECK_NO_THROW(decoded = decode_metadata(metadata_bytes.data(), length, where));
      BOOST_TEST(decoded.status().code() == Code::corruption);
    }
  }
}

BOOST_AUTO_TEST_CASE(odd_length_input_is_corruption) {
  std::vector<uint8_t> bytes = encode_entry(Entry{8, 1, make_payload(8, 40)});
  for (size_t extra = 1; extra < 8; ++extra) {
    std::vector<uint8_t> longer = bytes;
    longer.resize(bytes.size() + extra, 0);
    Result<Entry> decoded = decode_entry(longer.data(), longer.size(), 8, where);
    BOOST_TEST_CONTEXT(extra << " trailing bytes") {
      BOOST_TEST(decoded.status().code() == Code::corruption);
      BOOST_TEST(contains(decoded.status().message(), std::to_string(longer.size()) + " bytes"));
    }
    BOOST_TEST(decode_metadata(longer.data(), longer.size(), where).status().code() == Code::corruption);
    BOOST_TEST(decode_snapshot_metadata(longer.data(), longer.size(), where).status().code() == Code::corruption);
  }
}

BOOST_AUTO_TEST_CASE(random_garbage_is_corruption_never_a_throw_or_crash) {
  std::mt19937_64 random(424242);
  int decoder_failures = 0;
  // Any length, mostly rejected by the word-size check or the segment table.
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> garbage(random() % 300);
    for (auto& byte : garbage) byte = static_cast<uint8_t>(random());
    decoder_failures += decode_all_expecting_ok_or_corruption(garbage, true);
  }
  // Whole words behind a valid one-segment table, so the reader gets as far as following pointers.
  for (int round = 0; round < 20000; ++round) {
    const uint32_t segment_words = static_cast<uint32_t>(1 + random() % 40);
    std::vector<uint8_t> garbage((1 + segment_words) * 8);
    const uint32_t header[2] = {0, segment_words};
    std::memcpy(garbage.data(), header, 8);
    for (size_t i = 8; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(random());
    decoder_failures += decode_all_expecting_ok_or_corruption(garbage, true);
  }
  // Fully random whole words, segment table included.
  for (int round = 0; round < 5000; ++round) {
    std::vector<uint8_t> garbage(8 * (1 + random() % 40));
    for (auto& byte : garbage) byte = static_cast<uint8_t>(random());
    decoder_failures += decode_all_expecting_ok_or_corruption(garbage, true);
  }
  BOOST_TEST_MESSAGE(decoder_failures << " decoder calls reported corruption");
  BOOST_TEST(decoder_failures > 0);
}

BOOST_AUTO_TEST_CASE(plausible_pointer_garbage_is_corruption_or_a_value_never_a_throw) {
  // Words that are mostly small, in-range struct and list pointers, so decoding goes deep into the
  // message (nested structs, lists, text) before anything fails.
  std::mt19937_64 random(31337);
  int decoder_failures = 0;
  for (int round = 0; round < 20000; ++round) {
    const uint32_t segment_words = static_cast<uint32_t>(1 + random() % 24);
    std::vector<uint64_t> words = {uint64_t{segment_words} << 32};
    for (uint32_t i = 0; i < segment_words; ++i) {
      const uint64_t offset = (random() % 8) << 2;  // pointer kind in the low 2 bits
      const uint64_t kind = random() % 4;           // struct, list, far, other
      uint64_t high;
      if (kind == 1) {
        high = (random() % 8) | ((random() % 16) << 3);  // element size, element count
      } else {
        high = (random() % 4) | ((random() % 4) << 16);  // data words, pointer count
      }
      words.push_back(random() % 4 == 0 ? random() : (offset | kind | (high << 32)));
    }
    std::vector<uint8_t> garbage(words.size() * 8);
    std::memcpy(garbage.data(), words.data(), garbage.size());
    decoder_failures += decode_all_expecting_ok_or_corruption(garbage, true);
  }
  BOOST_TEST_MESSAGE(decoder_failures << " of 60000 decoder calls reported corruption");
  BOOST_TEST(decoder_failures > 0);
}

BOOST_AUTO_TEST_CASE(tiny_message_cannot_declare_millions_of_members) {
  // 48 bytes: a SnapshotMetadata whose configuration is a list of 4 Mi zero-sized Members. They take no
  // words, so only the traversal limit stands between these bytes and millions of decoded Members.
  const uint64_t members_declared = 1ull << 22;
  const std::vector<uint64_t> words = {
      uint64_t{5} << 32,                         // segment table: one segment of 5 words
      (uint64_t{2} << 32) | (uint64_t{1} << 48),  // root struct: 2 data words, 1 pointer
      40, 3,                                     // lastIncludedIndex, lastIncludedTerm
      1 | (uint64_t{7} << 32),                   // configuration: composite list of 0 words
      members_declared << 2,                     // its tag: that many structs of 0 data, 0 pointers
  };
  std::vector<uint8_t> bytes(words.size() * 8);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  Result<SnapshotMetadata> decoded = decode_snapshot_metadata(bytes.data(), bytes.size(), where);
  if (decoded.is_ok()) {
    BOOST_ERROR(bytes.size() << " bytes decoded into " << decoded->configuration.size() << " members");
  } else {
    BOOST_TEST(decoded.status().code() == Code::corruption);
    BOOST_TEST_MESSAGE(decoded.status().to_string());
  }
}

BOOST_AUTO_TEST_CASE(large_configuration_still_round_trips) {
  // The traversal bound must not reject honest messages: many members, long addresses.
  SnapshotMetadata snapshot{1000000, 77, {}};
  for (uint64_t id = 1; id <= 5000; ++id) {
    snapshot.configuration.push_back(Member{id, "host-" + std::to_string(id) + std::string(id % 50, 'x') + ":7000"});
  }
  std::vector<uint8_t> bytes = encode_snapshot_metadata(snapshot);
  Result<SnapshotMetadata> decoded = decode_snapshot_metadata(bytes.data(), bytes.size(), where);
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST((decoded.value() == snapshot));
  Entry big{1, 1, make_payload(5, 8u << 20)};  // 8 MiB payload
  BOOST_TEST((decode_ok(encode_entry(big), 1) == big));
}

BOOST_AUTO_TEST_CASE(any_single_byte_damage_is_caught_or_harmless) {
  // Every byte of an encoded entry, damaged three ways: either corruption, or (padding, unused bits)
  // exactly the original entry. Never a different entry.
  const Entry entry{1234, 56, marked_payload()};
  const std::vector<uint8_t> bytes = encode_entry(entry);
  int caught = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xFF}) {
      std::vector<uint8_t> damaged = bytes;
      damaged[i] ^= mask;
      Result<Entry> decoded = Status::corruption("not run");
      BOOST_CHECK_NO_THROW(decoded = decode_entry(damaged.data(), damaged.size(), 0, where));
      if (!decoded.is_ok()) {
        ++caught;
        BOOST_TEST(decoded.status().code() == Code::corruption);
      } else if (!(decoded.value() == entry)) {
        BOOST_ERROR("byte " << i << " xor " << int(mask) << " decoded as a different entry");
      }
    }
  }
  BOOST_TEST(caught >= static_cast<int>(entry.payload().size()) * 3);  // at least every payload byte
}

BOOST_AUTO_TEST_CASE(configuration_entry_round_trips_with_every_member_field) {
  ConfigurationEntry entry;
  entry.kind = ConfChangeKind::add_learner;
  entry.node_id = 4;
  entry.members = {{1, "10.0.0.1:7001", "10.0.0.1:8001", false},
                   {2, "node-two:7002", "", false},
                   {4, "[::1]:7004", "[::1]:8004", true}};
  std::vector<uint8_t> bytes = encode_configuration_entry(entry);
  Result<ConfigurationEntry> decoded = decode_configuration_entry(bytes.data(), bytes.size(), where);
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST((decoded.value() == entry));
  for (ConfChangeKind kind : {ConfChangeKind::bootstrap, ConfChangeKind::promote, ConfChangeKind::remove}) {
    ConfigurationEntry other{kind, kind == ConfChangeKind::bootstrap ? 0u : 2u, {entry.members[0]}};
    std::vector<uint8_t> other_bytes = encode_configuration_entry(other);
    Result<ConfigurationEntry> other_decoded = decode_configuration_entry(other_bytes.data(), other_bytes.size(), where);
    BOOST_REQUIRE(other_decoded.is_ok());
    BOOST_TEST((other_decoded.value() == other));
  }
}

BOOST_AUTO_TEST_CASE(configuration_entry_with_unknown_kind_is_corruption) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<schema::ConfigurationEntry>();
  root.setKind(static_cast<schema::ConfChangeKind>(9));
  root.setNodeId(3);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  std::vector<uint8_t> bytes(words.asBytes().begin(), words.asBytes().end());
  Result<ConfigurationEntry> decoded = decode_configuration_entry(bytes.data(), bytes.size(), where);
  BOOST_REQUIRE(!decoded.is_ok());
  BOOST_TEST(decoded.status().code() == Code::corruption);
  BOOST_TEST(contains(decoded.status().message(), "kind"));
}

BOOST_AUTO_TEST_CASE(snapshot_members_keep_client_address_and_learner) {
  SnapshotMetadata snapshot{7, 2, {{1, "a:1", "a:2", false}, {5, "e:1", "e:2", true}}};
  std::vector<uint8_t> bytes = encode_snapshot_metadata(snapshot);
  Result<SnapshotMetadata> decoded = decode_snapshot_metadata(bytes.data(), bytes.size(), where);
  BOOST_REQUIRE(decoded.is_ok());
  BOOST_TEST((decoded.value() == snapshot));
}

BOOST_AUTO_TEST_CASE(old_members_without_the_new_fields_read_as_voters) {
  // Snapshot metadata as written before Member had clientAddress and learner: only id and
  // address set, the new fields unset (as in old bytes, they read as their defaults).
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<schema::SnapshotMetadata>();
  root.setLastIncludedIndex(9);
  auto members = root.initConfiguration(1);
  members[0].setId(3);
  members[0].setAddress("c:1");
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  std::vector<uint8_t> bytes(words.asBytes().begin(), words.asBytes().end());
  Result<SnapshotMetadata> decoded = decode_snapshot_metadata(bytes.data(), bytes.size(), where);
  BOOST_REQUIRE(decoded.is_ok());
  BOOST_REQUIRE(decoded->configuration.size() == 1u);
  BOOST_TEST(decoded->configuration[0].client_address.empty());
  BOOST_TEST(!decoded->configuration[0].learner);
}

BOOST_AUTO_TEST_CASE(configuration_entry_keeps_its_type_through_encode_entry) {
  Entry entry{12, 3, encode_configuration_entry({ConfChangeKind::remove, 2, {{1, "a:1", "", false}}}),
              EntryType::configuration};
  std::vector<uint8_t> bytes = encode_entry(entry);
  Result<Entry> decoded = decode_entry(bytes.data(), bytes.size(), 12, where);
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST(decoded->type == EntryType::configuration);
  BOOST_TEST((decoded.value() == entry));
  // The checksum covers the type: the same bytes relabelled as a log entry do not verify, in
  // the frame or in the older form.
  std::vector<uint8_t> relabelled_frame = bytes;
  relabelled_frame[8] = static_cast<uint8_t>(EntryType::log);
  const std::vector<uint8_t> relabelled = wal_entry_message(schema::EntryType::LOG, entry.index, entry.term,
                                                            entry.payload(), entry.checksum());
  const std::vector<const std::vector<uint8_t>*> forgeries{&relabelled_frame, &relabelled};
  for (const std::vector<uint8_t>* forgery : forgeries) {
    Result<Entry> forged = decode_entry(forgery->data(), forgery->size(), 12, where);
    BOOST_REQUIRE(!forged.is_ok());
    BOOST_TEST(forged.status().code() == Code::corruption);
    BOOST_TEST(contains(forged.status().message(), "checksum"));
  }
  // A plain log entry still decodes as one.
  Entry plain{13, 3, make_payload(5, 20)};
  std::vector<uint8_t> plain_bytes = encode_entry(plain);
  Result<Entry> plain_decoded = decode_entry(plain_bytes.data(), plain_bytes.size(), 13, where);
  BOOST_REQUIRE(plain_decoded.is_ok());
  BOOST_TEST(plain_decoded->type == EntryType::log);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
