// Goal: raft_wire.h and client_protocol.h round-trip every message and refuse any other bytes with a Status.
// Method: encode then decode each type, op, status; decode every truncation, byte flips, oversized and foreign bytes.
#define BOOST_TEST_MODULE wire_test
#include <boost/test/unit_test.hpp>

#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/raft_wire.h"
#include "schema/client.capnp.h"
#include "schema/raft.capnp.h"
#include "storage/capnp_message.h"
#include "storage/codec.h"
#include "storage/entry_frame.h"
#include "storage/kv_command.h"
#include "tests/support/print.h"
#include "tests/support/temp_dir.h"

namespace keyval {
namespace {

using testing::make_payload;

const std::vector<raft::MessageType> all_types = {
    raft::MessageType::request_vote,   raft::MessageType::request_vote_response,
    raft::MessageType::pre_vote,       raft::MessageType::pre_vote_response,
    raft::MessageType::append_entries, raft::MessageType::append_entries_response,
    raft::MessageType::install_snapshot, raft::MessageType::snapshot_chunk,
    raft::MessageType::snapshot_chunk_response, raft::MessageType::timeout_now,
};

const std::vector<ClientOp> all_ops = {ClientOp::put,    ClientOp::get,            ClientOp::del,
                                       ClientOp::cas,    ClientOp::status,         ClientOp::snapshot_begin,
                                       ClientOp::snapshot_chunk, ClientOp::leader_transfer,
                                       ClientOp::member_list, ClientOp::member_add, ClientOp::member_promote,
                                       ClientOp::member_remove, ClientOp::range, ClientOp::put_many,
                                       ClientOp::del_many, ClientOp::increment, ClientOp::append};

const std::vector<ClientStatus> all_statuses = {
    ClientStatus::ok,       ClientStatus::not_leader,    ClientStatus::no_leader,       ClientStatus::timeout,
    ClientStatus::rejected, ClientStatus::stale_request, ClientStatus::session_expired, ClientStatus::lost,
    ClientStatus::busy,     ClientStatus::unavailable,
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Every field distinct and non-zero, so a field read into the wrong place shows.
raft::Message sample_message(raft::MessageType type, std::vector<Entry> entries) {
  raft::Message message;
  message.type = type;
  message.from = 3;
  message.to = 1;
  message.term = 7;
  message.last_log_index = 11;
  message.last_log_term = 6;
  message.vote_granted = true;
  message.prev_log_index = 40;
  message.prev_log_term = 5;
  message.entries = std::move(entries);
  message.leader_commit = 39;
  message.success = true;
  message.match_index = 42;
  message.reject_index = 17;
  message.conflict_term = 4;
  message.conflict_index = 13;
  message.read_context = UINT64_MAX;
  message.snapshot_index = 38;
  message.snapshot_term = 3;
  message.chunk_offset = 1 << 20;
  message.chunk_total_bytes = (5u << 20) + 9;
  message.chunk_done = true;
  message.chunk_data = make_payload(5, 33);
  message.chunk_error = true;
  message.chunk_round = 12;
  message.leadership_transfer = true;
  return message;
}

std::vector<Entry> sample_entries() {
  return {Entry{41, 7, make_payload(1, 100)}, Entry{42, 7, {}}, Entry{43, 7, make_payload(2, 1 << 20)},
          Entry{44, 7, make_payload(3, 1)}};
}

// Every scalar field and each entry's position, for a readable failure.
std::string describe(const raft::Message& m) {
  std::string text = std::string(raft::message_type_name(m.type));
  for (uint64_t field : {m.from, m.to, m.term, m.last_log_index, m.last_log_term, uint64_t{m.vote_granted},
                         m.prev_log_index, m.prev_log_term, m.leader_commit, uint64_t{m.success}, m.match_index,
                         m.reject_index, m.conflict_term, m.conflict_index, m.read_context, m.snapshot_index,
                         m.snapshot_term, m.chunk_offset, m.chunk_total_bytes, uint64_t{m.chunk_done},
                         uint64_t{m.chunk_error}, m.chunk_round, uint64_t{m.chunk_data.size()}, uint64_t{m.leadership_transfer}}) {
    text += " " + std::to_string(field);
  }
  for (const Entry& entry : m.entries) {
    text += " [" + std::to_string(entry.index) + "," + std::to_string(entry.term) + "," +
            std::to_string(entry.payload().size()) + "]";
  }
  return text;
}

Result<raft::Message> decode(const std::vector<uint8_t>& bytes) {
  return decode_raft_message(bytes.data(), bytes.size());
}

void check_round_trip(const raft::Message& message) {
  auto decoded = decode(encode_raft_message(message));
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST(describe(decoded.value()) == describe(message));
  BOOST_TEST((decoded->entries == message.entries));
  BOOST_TEST((decoded->chunk_data == message.chunk_data));
  BOOST_TEST((decoded->configuration == message.configuration));
}

// Each prefix in its own buffer, so a read past it is a sanitizer error, not a silent success.
template <class Decode>
void check_every_truncation_refused(const std::vector<uint8_t>& bytes, Decode decode_prefix) {
  for (size_t length = 0; length < bytes.size(); ++length) {
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
    BOOST_TEST_CONTEXT("prefix of " << length << " of " << bytes.size() << " bytes") {
      BOOST_TEST(!decode_prefix(prefix).is_ok());
    }
  }
}

// Flips 1-4 random bytes per trial. A flip may still leave a valid message (a changed term):
// then its re-encoding must decode too. What may never happen is a crash or a throw.
template <class Decode, class Encode>
void check_byte_flips_never_crash(const std::vector<uint8_t>& bytes, Decode decode_bytes, Encode encode, int trials) {
  std::mt19937_64 random(20240611);
  for (int trial = 0; trial < trials; ++trial) {
    std::vector<uint8_t> damaged = bytes;
    int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) damaged[random() % damaged.size()] ^= static_cast<uint8_t>(1 + random() % 255);
    auto decoded = decode_bytes(damaged);
    if (!decoded.is_ok()) continue;
    auto again = decode_bytes(encode(decoded.value()));
    BOOST_REQUIRE(again.is_ok());
  }
}

ClientRequest sample_request(ClientOp op) {
  ClientRequest request;
  request.request_id = 77;
  request.client_id = 5;
  request.sequence = 12;
  request.op = op;
  request.directory_known = 0x0123456789abcdefull;
  const bool keyed = op == ClientOp::put || op == ClientOp::get || op == ClientOp::del || op == ClientOp::cas ||
                     op == ClientOp::increment || op == ClientOp::append;
  if (keyed) request.key = std::string("k\0ey", 4);  // keys are bytes, NUL included
  if (op == ClientOp::put || op == ClientOp::cas || op == ClientOp::append) request.value = std::string("v\0alue", 6);
  if (op == ClientOp::put_many || op == ClientOp::del_many) request.keys = {std::string("a\0", 2), "b"};
  if (op == ClientOp::put_many) {
    request.values = {"", std::string("v\0", 2)};
    request.condition = 2;
  }
  if (op == ClientOp::increment) request.delta = INT64_MIN;
  if (op == ClientOp::cas) request.expected = std::string("old");
  if (op == ClientOp::status) request.hash = true;
  if (op == ClientOp::put) request.blind = true;
  if (op == ClientOp::snapshot_chunk) {
    request.snapshot_index = 4000;
    request.snapshot_term = 9;
    request.chunk_offset = 3u << 20;
  }
  if (op == ClientOp::leader_transfer) request.transfer_target = 3;
  if (op == ClientOp::member_add || op == ClientOp::member_promote || op == ClientOp::member_remove) {
    request.member_id = 4;
  }
  if (op == ClientOp::member_add) {
    request.member_peer_address = "127.0.0.1:7204";
    request.member_client_address = "[::1]:7104";
  }
  if (op == ClientOp::range) {
    request.key = std::string("a\0", 2);
    request.range_end = "b";
    request.range_limit = 10;
    request.range_bytes_max = 4096;
    request.keys_only = true;
    request.serializable = true;
  }
  return request;
}

ClientResponse sample_response(ClientStatus status) {
  ClientResponse response;
  response.request_id = 77;
  response.status = status;
  response.message = std::string("because\0why", 11);
  response.leader_hint = 2;
  response.found = true;
  response.value = std::string("v\0alue", 6);
  response.cas_succeeded = true;
  response.index = 99;
  response.node_id = 1;
  response.term = 8;
  response.commit_index = 98;
  response.applied_index = 97;
  response.role = "leader";
  response.snapshot_index = 90;
  response.snapshot_term = 7;
  response.first_index = 41;
  response.last_index = 100;
  response.hashed = true;
  response.state_hash = 0xfedcba9876543210ull;
  response.hash_index = 96;
  response.total_bytes = 123456;
  response.chunk = std::string("ch\0unk", 6);
  response.configuration_index = 57;
  response.configuration_committed = true;
  response.configuration = {ConfigurationMember{1, "127.0.0.1:7201", "127.0.0.1:7101", false, 99},
                            ConfigurationMember{4, "127.0.0.1:7204", "", true, 12}};
  response.keys = {"a", std::string("b\0", 2), ""};
  response.values = {"1", "", std::string("\0", 1)};
  response.range_count = 3;
  response.more = true;
  response.number = -42;
  response.directory_version = 0xfedcba9876543211ull;
  return response;
}

Result<ClientRequest> decode_request(const std::vector<uint8_t>& bytes) {
  return decode_client_request(bytes.data(), bytes.size());
}

Result<ClientResponse> decode_response(const std::vector<uint8_t>& bytes) {
  return decode_client_response(bytes.data(), bytes.size());
}

// Byte offset of the ClientRequest union's discriminant in a flat single-segment message:
// the segment table (8 bytes), the root pointer (8), then the root struct's data section.
size_t request_discriminant_offset() {
  auto proto = capnp::Schema::from<schema::ClientRequest>().getProto().getStruct();
  return 16 + 2 * size_t{proto.getDiscriminantOffset()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(raft_wire)

BOOST_AUTO_TEST_CASE(every_message_type_round_trips_without_entries) {
  for (raft::MessageType type : all_types) {
    BOOST_TEST_CONTEXT(raft::message_type_name(type)) {
      check_round_trip(sample_message(type, {}));
    }
  }
}

BOOST_AUTO_TEST_CASE(every_message_type_round_trips_with_large_and_empty_entries) {
  for (raft::MessageType type : all_types) {
    BOOST_TEST_CONTEXT(raft::message_type_name(type)) {
      check_round_trip(sample_message(type, sample_entries()));
    }
  }
}

BOOST_AUTO_TEST_CASE(install_snapshot_round_trips) {
  // As a leader sends it (§7): the snapshot's position and the leader's commit index only.
  raft::Message message;
  message.type = raft::MessageType::install_snapshot;
  message.from = 2;
  message.to = 5;
  message.term = 9;
  message.snapshot_index = 10000;
  message.snapshot_term = 8;
  message.leader_commit = 10042;
  check_round_trip(message);
  auto decoded = decode(encode_raft_message(message));
  BOOST_REQUIRE(decoded.is_ok());
  BOOST_TEST((decoded->type == raft::MessageType::install_snapshot));
  BOOST_TEST(decoded->snapshot_index == 10000u);
  BOOST_TEST(decoded->snapshot_term == 8u);
  BOOST_TEST(decoded->leader_commit == 10042u);
}

BOOST_AUTO_TEST_CASE(install_snapshot_carries_the_snapshot_configuration) {
  raft::Message message;
  message.type = raft::MessageType::install_snapshot;
  message.from = 1;
  message.to = 4;
  message.term = 3;
  message.snapshot_index = 50;
  message.snapshot_term = 2;
  message.configuration = {{1, "a:7001", "a:8001", false}, {2, "b:7001", "", false}, {4, "d:7001", "d:8001", true}};
  check_round_trip(message);
}

BOOST_AUTO_TEST_CASE(configuration_entries_keep_their_type_on_the_wire) {
  raft::Message message = sample_message(raft::MessageType::append_entries,
                                         {Entry{7, 2, {}}, Entry{8, 2, make_payload(3, 40), EntryType::configuration},
                                          Entry{9, 2, make_payload(4, 10)}});
  check_round_trip(message);
  auto decoded = decode(encode_raft_message(message));
  BOOST_REQUIRE(decoded.is_ok());
  BOOST_TEST((decoded->entries[1].type == EntryType::configuration));
  BOOST_TEST((decoded->entries[2].type == EntryType::log));
}

BOOST_AUTO_TEST_CASE(snapshot_chunk_round_trips_its_bytes) {
  // A middle chunk of 1 MiB (binary, NULs and all), the last one (odd size, done), an empty
  // one, and the receiver's answers: the next offset wanted, or an error asking for a restart.
  raft::Message chunk;
  chunk.type = raft::MessageType::snapshot_chunk;
  chunk.from = 1;
  chunk.to = 3;
  chunk.term = 4;
  chunk.snapshot_index = 777;
  chunk.snapshot_term = 4;
  chunk.chunk_offset = 1 << 20;
  chunk.chunk_total_bytes = (2 << 20) + 5;
  chunk.chunk_data = make_payload(9, 1 << 20);
  check_round_trip(chunk);
  chunk.chunk_offset = 2 << 20;
  chunk.chunk_data = make_payload(10, 5);
  chunk.chunk_done = true;
  check_round_trip(chunk);
  chunk.chunk_data.clear();
  check_round_trip(chunk);

  raft::Message answer;
  answer.type = raft::MessageType::snapshot_chunk_response;
  answer.from = 3;
  answer.to = 1;
  answer.term = 4;
  answer.snapshot_index = 777;
  answer.snapshot_term = 4;
  answer.chunk_offset = 2 << 20;
  check_round_trip(answer);
  answer.chunk_offset = 0;
  answer.chunk_error = true;
  check_round_trip(answer);
  answer.chunk_error = false;
  answer.chunk_done = true;
  auto decoded = decode(encode_raft_message(answer));
  BOOST_REQUIRE(decoded.is_ok());
  BOOST_TEST(decoded->chunk_done);
  BOOST_TEST(!decoded->chunk_error);

  // A 1 MiB chunk costs its data padded to words, in one segment, not more.
  raft::Message empty = chunk;
  empty.chunk_data.clear();
  chunk.chunk_data = make_payload(9, 1 << 20);
  BOOST_TEST(encode_raft_message(chunk).size() - encode_raft_message(empty).size() == size_t{1} << 20);
}

BOOST_AUTO_TEST_CASE(all_zero_fields_and_flags_round_trip) {
  raft::Message message;  // a bare heartbeat: only the type and the two node ids set
  message.from = 1;
  message.to = 2;
  check_round_trip(message);
}

BOOST_AUTO_TEST_CASE(unaligned_input_decodes) {
  std::vector<uint8_t> bytes = encode_raft_message(sample_message(raft::MessageType::append_entries, sample_entries()));
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
  auto decoded = decode_raft_message(shifted.data() + 1, bytes.size());
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST((decoded->entries == sample_entries()));
}

BOOST_AUTO_TEST_CASE(encoded_sizes_of_a_heartbeat_and_a_small_append) {
  raft::Message heartbeat = sample_message(raft::MessageType::append_entries, {});
  raft::Message append = sample_message(raft::MessageType::append_entries, {Entry{41, 7, make_payload(1, 100)}});
  size_t heartbeat_bytes = encode_raft_message(heartbeat).size();
  size_t append_bytes = encode_raft_message(append).size();
  BOOST_TEST_MESSAGE("append_entries heartbeat: " << heartbeat_bytes
                                                  << " bytes; with one 100-byte entry: " << append_bytes << " bytes");
  // One segment: the entry costs its struct (index, term, type and the payload pointer: 4
  // words), its list's tag and its payload padded to words.
  BOOST_TEST(append_bytes - heartbeat_bytes == 8u * (1 + 4 + (100 + 7) / 8));
}

BOOST_AUTO_TEST_CASE(every_truncation_is_refused) {
  check_every_truncation_refused(encode_raft_message(sample_message(raft::MessageType::request_vote, {})), decode);
  check_every_truncation_refused(
      encode_raft_message(
          sample_message(raft::MessageType::append_entries, {Entry{41, 7, make_payload(1, 100)}, Entry{42, 7, {}}})),
      decode);
}

BOOST_AUTO_TEST_CASE(random_byte_flips_never_crash) {
  auto encode = [](const raft::Message& message) { return encode_raft_message(message); };
  check_byte_flips_never_crash(encode_raft_message(sample_message(raft::MessageType::pre_vote, {})), decode, encode,
                               5000);
  check_byte_flips_never_crash(
      encode_raft_message(
          sample_message(raft::MessageType::append_entries, {Entry{41, 7, make_payload(1, 40)}, Entry{42, 7, {}}})),
      decode, encode, 20000);
}

BOOST_AUTO_TEST_CASE(message_at_the_bound_decodes_and_one_word_more_is_refused) {
  raft::Message message = sample_message(raft::MessageType::append_entries, {Entry{41, 7, {}}});
  size_t overhead_bytes = encode_raft_message(message).size();
  message.entries[0].set_payload(make_payload(4, raft_message_bytes_max - overhead_bytes));
  std::vector<uint8_t> bytes = encode_raft_message(message);
  BOOST_REQUIRE(bytes.size() == raft_message_bytes_max);
  auto decoded = decode(bytes);
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST(decoded->entries[0].payload().size() == raft_message_bytes_max - overhead_bytes);

  bytes.resize(raft_message_bytes_max + 8);
  auto refused = decode(bytes);
  BOOST_REQUIRE(!refused.is_ok());
  BOOST_TEST(refused.status().code() == Code::corruption);
  BOOST_TEST(contains(refused.status().message(), "over the bound"));
}

BOOST_AUTO_TEST_CASE(unknown_message_type_is_refused) {
  for (uint16_t type : {0, 13, 0xffff}) {
    capnp::MallocMessageBuilder builder;
    auto root = builder.initRoot<schema::RaftMessage>();
    root.setType(static_cast<schema::RaftMessageType>(type));
    root.setFrom(1);
    root.setTo(2);
    auto decoded = decode(message_to_bytes(builder));
    BOOST_REQUIRE(!decoded.is_ok());
    BOOST_TEST(decoded.status().code() == Code::corruption);
    BOOST_TEST(contains(decoded.status().message(), "unknown message type " + std::to_string(type)));
  }
}

BOOST_AUTO_TEST_CASE(node_id_zero_is_refused) {
  for (bool zero_from : {true, false}) {
    raft::Message message = sample_message(raft::MessageType::request_vote, {});
    (zero_from ? message.from : message.to) = 0;
    auto decoded = decode(encode_raft_message(message));
    BOOST_REQUIRE(!decoded.is_ok());
    BOOST_TEST(decoded.status().code() == Code::corruption);
    BOOST_TEST(contains(decoded.status().message(), "node id 0"));
  }
}

BOOST_AUTO_TEST_CASE(entry_with_index_zero_is_refused) {
  auto decoded = decode(encode_raft_message(
      sample_message(raft::MessageType::append_entries, {Entry{41, 7, {}}, Entry{0, 7, make_payload(1, 8)}})));
  BOOST_REQUIRE(!decoded.is_ok());
  BOOST_TEST(decoded.status().code() == Code::corruption);
  BOOST_TEST(contains(decoded.status().message(), "entry 1 has index 0"));
}

// TCP's 16-bit checksum ends at the kernel: each entry carries its own CRC32C (the WAL
// entry's), so bytes changed between two nodes are refused, not made durable and applied.
BOOST_AUTO_TEST_CASE(an_entry_changed_on_the_way_is_refused_by_its_checksum) {
  const std::vector<uint8_t> payload = make_payload(6, 64);
  std::vector<uint8_t> bytes = encode_raft_message(
      sample_message(raft::MessageType::append_entries, {Entry{41, 7, make_payload(1, 8)}, Entry{42, 7, payload}}));
  BOOST_REQUIRE(decode(bytes).is_ok());
  auto at = std::search(bytes.begin(), bytes.end(), payload.begin(), payload.end());
  BOOST_REQUIRE(at != bytes.end());
  at[20] ^= 0x04;  // one bit of the second entry's payload
  auto decoded = decode(bytes);
  BOOST_REQUIRE(!decoded.is_ok());
  BOOST_TEST(decoded.status().code() == Code::corruption);
  BOOST_TEST_MESSAGE(decoded.status().to_string());
  BOOST_TEST(contains(decoded.status().message(), "entry 1 (index 42, term 7) fails its checksum"));
}

// An AppendEntries from node 1 to node 2 carrying `frame` as its one entry, as sent.
std::vector<uint8_t> append_with_frame(const std::vector<uint8_t>& frame) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<schema::RaftMessage>();
  root.setType(schema::RaftMessageType::APPEND_ENTRIES);
  root.setFrom(1);
  root.setTo(2);
  root.initFrames(1).set(0, kj::arrayPtr(frame.data(), frame.size()));
  return message_to_bytes(builder);
}

// The checksum covers the entry's identity too: the same payload under another term (or from
// a sender that fills no checksum) is refused.
BOOST_AUTO_TEST_CASE(an_entry_checksum_covers_its_index_and_term) {
  const std::vector<uint8_t> payload = make_payload(7, 30);
  for (bool zero_checksum : {false, true}) {
    std::vector<uint8_t> frame = entry_frame::build(EntryType::log, 5, 3, payload.data(), payload.size());
    const uint64_t term = 4;  // the checksum was computed for term 3
    std::memcpy(frame.data() + 24, &term, 8);
    if (zero_checksum) std::memset(frame.data() + 12, 0, 4);
    auto decoded = decode(append_with_frame(frame));
    BOOST_REQUIRE(!decoded.is_ok());
    BOOST_TEST(contains(decoded.status().message(), "entry 0 (index 5, term 4) fails its checksum"));
  }
}

// A frame is checked whole where it arrives: one of a type no log holds, or too short for its
// header, is refused by name.
BOOST_AUTO_TEST_CASE(a_frame_too_short_or_of_another_type_is_refused) {
  const std::vector<uint8_t> payload = make_payload(8, 16);
  std::vector<uint8_t> metadata = entry_frame::build(EntryType::metadata, 5, 3, payload.data(), payload.size());
  std::vector<uint8_t> short_frame(20, 0);
  for (const auto& [frame, reason] : {std::make_pair(metadata, std::string("has type 2")),
                                      std::make_pair(short_frame, std::string("shorter than its 32-byte header"))}) {
    auto decoded = decode(append_with_frame(frame));
    BOOST_REQUIRE(!decoded.is_ok());
    BOOST_TEST_MESSAGE(decoded.status().to_string());
    BOOST_TEST(contains(decoded.status().message(), reason));
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(client_protocol)

BOOST_AUTO_TEST_CASE(every_op_round_trips) {
  for (ClientOp op : all_ops) {
    BOOST_TEST_CONTEXT(client_op_name(op)) {
      ClientRequest request = sample_request(op);
      auto decoded = decode_request(encode_client_request(request));
      BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
      BOOST_TEST((decoded.value() == request));
    }
  }
}

BOOST_AUTO_TEST_CASE(cas_on_an_absent_key_round_trips_apart_from_an_empty_expected_value) {
  ClientRequest absent = sample_request(ClientOp::cas);
  absent.expected.reset();
  ClientRequest empty = sample_request(ClientOp::cas);
  empty.expected = std::string();
  for (const ClientRequest& request : {absent, empty}) {
    auto decoded = decode_request(encode_client_request(request));
    BOOST_REQUIRE(decoded.is_ok());
    BOOST_TEST((decoded.value() == request));
  }
}

BOOST_AUTO_TEST_CASE(every_status_round_trips) {
  for (ClientStatus status : all_statuses) {
    BOOST_TEST_CONTEXT(client_status_name(status)) {
      ClientResponse response = sample_response(status);
      auto decoded = decode_response(encode_client_response(response));
      BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
      BOOST_TEST((decoded.value() == response));
    }
  }
  auto empty = decode_response(encode_client_response(ClientResponse{}));
  BOOST_REQUIRE(empty.is_ok());
  BOOST_TEST((empty.value() == ClientResponse{}));
}

BOOST_AUTO_TEST_CASE(names_match_the_header) {
  const char* op_names[] = {"put",    "get",           "del",            "cas",
                            "status", "snapshot_begin", "snapshot_chunk", "leader_transfer",
                            "member_list", "member_add", "member_promote", "member_remove", "range",
                            "put_many", "del_many", "increment", "append"};
  for (uint8_t op = 0; op <= 16; ++op) BOOST_TEST(client_op_name(static_cast<ClientOp>(op)) == op_names[op]);
  BOOST_TEST(client_op_name(static_cast<ClientOp>(17)) == "invalid");
  const char* status_names[] = {"ok",       "not_leader",    "no_leader",       "timeout",
                                "rejected", "stale_request", "session_expired", "lost",
                                "busy",     "unavailable"};
  for (ClientStatus status : all_statuses) {
    BOOST_TEST(client_status_name(status) == status_names[static_cast<uint8_t>(status)]);
  }
  BOOST_TEST(client_status_name(static_cast<ClientStatus>(10)) == "invalid");
}

BOOST_AUTO_TEST_CASE(equality_sees_every_field) {
  const ClientRequest request = sample_request(ClientOp::cas);
  std::vector<ClientRequest> requests(11, request);
  requests[0].request_id++;
  requests[1].client_id++;
  requests[2].sequence++;
  requests[3].op = ClientOp::put;
  requests[4].key += "x";
  requests[5].value += "x";
  requests[6].expected.reset();
  requests[7].hash = !request.hash;
  requests[8].snapshot_index++;
  requests[9].snapshot_term++;
  requests[10].chunk_offset++;
  for (const ClientRequest& other : requests) BOOST_TEST(!(other == request));

  const ClientResponse response = sample_response(ClientStatus::ok);
  std::vector<ClientResponse> responses(22, response);
  responses[0].request_id++;
  responses[1].status = ClientStatus::busy;
  responses[2].message += "x";
  responses[3].leader_hint++;
  responses[4].found = false;
  responses[5].value += "x";
  responses[6].cas_succeeded = false;
  responses[7].index++;
  responses[8].node_id++;
  responses[9].term++;
  responses[10].commit_index++;
  responses[11].applied_index++;
  responses[12].role = "follower";
  responses[13].snapshot_index++;
  responses[14].snapshot_term++;
  responses[15].first_index++;
  responses[16].last_index++;
  responses[17].hashed = false;
  responses[18].state_hash++;
  responses[19].hash_index++;
  responses[20].total_bytes++;
  responses[21].chunk += "x";
  for (const ClientResponse& other : responses) BOOST_TEST(!(other == response));
}

BOOST_AUTO_TEST_CASE(every_truncation_is_refused) {
  for (ClientOp op : {ClientOp::put, ClientOp::cas, ClientOp::status, ClientOp::snapshot_chunk}) {
    check_every_truncation_refused(encode_client_request(sample_request(op)), decode_request);
  }
  check_every_truncation_refused(encode_client_response(sample_response(ClientStatus::not_leader)), decode_response);
}

BOOST_AUTO_TEST_CASE(random_byte_flips_never_crash) {
  auto encode_request = [](const ClientRequest& request) { return encode_client_request(request); };
  auto encode_response = [](const ClientResponse& response) { return encode_client_response(response); };
  for (ClientOp op : {ClientOp::put, ClientOp::get, ClientOp::cas, ClientOp::status, ClientOp::snapshot_chunk}) {
    check_byte_flips_never_crash(encode_client_request(sample_request(op)), decode_request, encode_request, 5000);
  }
  check_byte_flips_never_crash(encode_client_response(sample_response(ClientStatus::ok)), decode_response,
                               encode_response, 10000);
}

BOOST_AUTO_TEST_CASE(oversized_messages_are_refused) {
  ClientRequest request = sample_request(ClientOp::put);
  request.value.assign(client_message_bytes_max, 'v');
  auto decoded_request = decode_request(encode_client_request(request));
  BOOST_REQUIRE(!decoded_request.is_ok());
  BOOST_TEST(decoded_request.status().code() == Code::corruption);
  BOOST_TEST(contains(decoded_request.status().message(), "client request"));
  BOOST_TEST(
      contains(decoded_request.status().message(), "over the bound of " + std::to_string(client_message_bytes_max)));

  ClientResponse response = sample_response(ClientStatus::ok);
  response.value.assign(client_message_bytes_max, 'v');
  auto decoded_response = decode_response(encode_client_response(response));
  BOOST_REQUIRE(!decoded_response.is_ok());
  BOOST_TEST(contains(decoded_response.status().message(), "over the bound"));
}

BOOST_AUTO_TEST_CASE(unknown_status_is_refused) {
  for (uint16_t status : {10, 0xffff}) {
    capnp::MallocMessageBuilder builder;
    builder.initRoot<schema::ClientResponse>().setStatus(static_cast<schema::ClientStatus>(status));
    auto decoded = decode_response(message_to_bytes(builder));
    BOOST_REQUIRE(!decoded.is_ok());
    BOOST_TEST(decoded.status().code() == Code::corruption);
    BOOST_TEST(contains(decoded.status().message(), "unknown status " + std::to_string(status)));
  }
}

BOOST_AUTO_TEST_CASE(unknown_op_is_refused) {
  std::vector<uint8_t> bytes = encode_client_request(sample_request(ClientOp::status));
  size_t offset = request_discriminant_offset();
  BOOST_REQUIRE(bytes[offset] == static_cast<uint8_t>(schema::ClientRequest::STATUS));  // the layout assumed
  bytes[offset] = 17;  // one past append
  auto decoded = decode_request(bytes);
  BOOST_REQUIRE(!decoded.is_ok());
  BOOST_TEST(decoded.status().code() == Code::corruption);
  BOOST_TEST(contains(decoded.status().message(), "unknown op 17"));
}

// The many-key requests are checked at the edge like keyed ones: at least one key, each a
// valid key, one value per key, a known condition.
BOOST_AUTO_TEST_CASE(many_key_requests_are_refused_when_malformed) {
  ClientRequest request = sample_request(ClientOp::put_many);
  auto check_refused = [](const ClientRequest& bad, const std::string& why) {
    auto decoded = decode_request(encode_client_request(bad));
    BOOST_REQUIRE(!decoded.is_ok());
    BOOST_TEST(decoded.status().code() == Code::invalid_argument);
    BOOST_TEST(contains(decoded.status().message(), why), decoded.status().message());
  };
  ClientRequest no_keys = request;
  no_keys.keys.clear();
  no_keys.values.clear();
  check_refused(no_keys, "with no keys");
  ClientRequest uneven = request;
  uneven.values.pop_back();
  check_refused(uneven, "2 keys and 1 values");
  ClientRequest empty_key = request;
  empty_key.keys[1] = "";
  check_refused(empty_key, "empty key");
  ClientRequest condition = request;
  condition.condition = 3;
  check_refused(condition, "unknown condition 3");
  ClientRequest del_many = sample_request(ClientOp::del_many);
  del_many.keys.push_back(std::string(kv_key_bytes_max + 1, 'k'));
  check_refused(del_many, "over the bound");
}

BOOST_AUTO_TEST_CASE(range_bounds_may_be_empty_but_not_over_the_key_bound) {
  ClientRequest request = sample_request(ClientOp::range);
  request.key.clear();  // from the first key
  request.range_end.clear();  // to the last
  BOOST_TEST(decode_request(encode_client_request(request)).is_ok());
  request.range_end = std::string(kv_key_bytes_max + 1, 'z');
  auto decoded = decode_request(encode_client_request(request));
  BOOST_REQUIRE(!decoded.is_ok());
  BOOST_TEST(decoded.status().code() == Code::invalid_argument);
  BOOST_TEST(contains(decoded.status().message(), "range key of 512 bytes"), decoded.status().message());
}

BOOST_AUTO_TEST_CASE(range_answer_with_values_not_matching_its_keys_is_refused) {
  ClientResponse response = sample_response(ClientStatus::ok);
  response.values.pop_back();
  auto decoded = decode_response(encode_client_response(response));
  BOOST_REQUIRE(!decoded.is_ok());
  BOOST_TEST(decoded.status().code() == Code::corruption);
  BOOST_TEST(contains(decoded.status().message(), "3 range keys but 2 values"), decoded.status().message());
}

BOOST_AUTO_TEST_CASE(empty_key_is_refused_naming_the_op) {
  for (ClientOp op : {ClientOp::put, ClientOp::get, ClientOp::del, ClientOp::cas}) {
    ClientRequest request = sample_request(op);
    request.key.clear();
    auto decoded = decode_request(encode_client_request(request));
    BOOST_REQUIRE(!decoded.is_ok());
    BOOST_TEST(decoded.status().code() == Code::invalid_argument);
    BOOST_TEST(decoded.status().message() ==
               std::string("client request: ") + client_op_name(op) + " with an empty key");
  }
  // status and the backup requests take no key: all-zero ones decode.
  for (ClientOp op : {ClientOp::status, ClientOp::snapshot_begin, ClientOp::snapshot_chunk}) {
    ClientRequest keyless;
    keyless.op = op;
    BOOST_TEST(decode_request(encode_client_request(keyless)).is_ok());
  }
}

BOOST_AUTO_TEST_CASE(a_full_snapshot_chunk_answer_fits_in_a_client_message) {
  ClientResponse response = sample_response(ClientStatus::ok);
  response.chunk.assign(client_snapshot_chunk_bytes_max, 'c');
  response.message.assign(4096, 'm');
  const std::vector<uint8_t> bytes = encode_client_response(response);
  BOOST_TEST(bytes.size() <= client_message_bytes_max);
  auto decoded = decode_response(bytes);
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST((decoded.value() == response));
}

BOOST_AUTO_TEST_CASE(key_over_the_bound_is_refused_and_at_the_bound_accepted) {
  for (ClientOp op : {ClientOp::put, ClientOp::get, ClientOp::del, ClientOp::cas}) {
    ClientRequest request = sample_request(op);
    request.key.assign(kv_key_bytes_max, 'k');
    BOOST_TEST(decode_request(encode_client_request(request)).is_ok());
    request.key.push_back('k');
    auto decoded = decode_request(encode_client_request(request));
    BOOST_REQUIRE(!decoded.is_ok());
    BOOST_TEST(decoded.status().code() == Code::invalid_argument);
    BOOST_TEST(decoded.status().message() == std::string("client request: ") + client_op_name(op) + " key of " +
                                                 std::to_string(kv_key_bytes_max + 1) + " bytes, over the bound of " +
                                                 std::to_string(kv_key_bytes_max));
  }
}

// A batch of gets and its answer (inside a node: listener to gateway) round-trip; a key the
// gateway would refuse alone is refused in a batch, as is a batch over get_batch_keys_max and
// an answer whose lists disagree; truncations are refused.
BOOST_AUTO_TEST_CASE(get_batches_round_trip_and_are_refused_when_malformed) {
  GetBatch batch{{"a", std::string(kv_key_bytes_max, 'k'), "a"}, 77};
  std::vector<uint8_t> batch_bytes = encode_get_batch(batch.keys, batch.directory_known);
  auto decoded = decode_get_batch(batch_bytes.data(), batch_bytes.size());
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  BOOST_TEST(decoded->keys == batch.keys);
  BOOST_TEST(decoded->directory_known == 77u);

  auto refused = [](const GetBatch& bad, Code code, const std::string& why) {
    std::vector<uint8_t> bytes = encode_get_batch(bad.keys, bad.directory_known);
    auto result = decode_get_batch(bytes.data(), bytes.size());
    BOOST_REQUIRE(!result.is_ok());
    BOOST_TEST((result.status().code() == code));
    BOOST_TEST(contains(result.status().message(), why), result.status().message());
  };
  refused(GetBatch{{"a", ""}, 0}, Code::invalid_argument, "empty key");
  refused(GetBatch{{std::string(kv_key_bytes_max + 1, 'k')}, 0}, Code::invalid_argument, "over the bound");
  refused(GetBatch{std::vector<std::string>(get_batch_keys_max + 1, "k"), 0}, Code::corruption,
          std::to_string(get_batch_keys_max + 1) + " keys");

  ClientResponse header = sample_response(ClientStatus::ok);
  std::vector<uint8_t> answer_bytes =
      encode_get_batch_answer(header, {1, 0, 1}, {"one", "", std::string(100000, 'v')});
  auto answer = decode_get_batch_answer(answer_bytes.data(), answer_bytes.size());
  BOOST_REQUIRE_MESSAGE(answer.is_ok(), answer.status().to_string());
  BOOST_TEST((answer->header == header));
  BOOST_TEST(answer->found == std::vector<uint8_t>({1, 0, 1}));
  BOOST_TEST(answer->values[2].size() == 100000u);
  ClientResponse third = get_batch_response(*answer, 2, 5);
  BOOST_TEST(third.request_id == 5u);
  BOOST_TEST(third.found);
  BOOST_TEST(third.value.size() == 100000u);
  BOOST_TEST(third.leader_hint == header.leader_hint);

  ClientResponse refusal = sample_response(ClientStatus::not_leader);
  std::vector<uint8_t> refusal_bytes = encode_get_batch_answer(refusal, {}, {});
  auto refused_answer = decode_get_batch_answer(refusal_bytes.data(), refusal_bytes.size());
  BOOST_REQUIRE(refused_answer.is_ok());
  BOOST_TEST((refused_answer->header.status == ClientStatus::not_leader));
  BOOST_TEST((get_batch_response(*refused_answer, 0, 3).status == ClientStatus::not_leader));

  capnp::MallocMessageBuilder uneven;
  auto root = uneven.initRoot<schema::GetBatchAnswer>();
  root.initFound(2);
  root.initValues(1);
  std::vector<uint8_t> uneven_bytes = message_to_bytes(uneven);
  auto uneven_answer = decode_get_batch_answer(uneven_bytes.data(), uneven_bytes.size());
  BOOST_REQUIRE(!uneven_answer.is_ok());
  BOOST_TEST(contains(uneven_answer.status().message(), "2 found flags but 1 values"));

  for (size_t size = 0; size < batch_bytes.size(); size += 8) {
    BOOST_TEST(!decode_get_batch(batch_bytes.data(), size).is_ok());
  }
  for (size_t size = 0; size < answer_bytes.size(); size += 8) {
    BOOST_TEST(!decode_get_batch_answer(answer_bytes.data(), size).is_ok());
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(capnp_message)

// message_to_bytes writes the segment table itself: it must match Cap'n Proto's own flat
// encoding, for one segment, for an odd and an even number of segments (the table's padding).
BOOST_AUTO_TEST_CASE(message_to_bytes_is_capnp_flat_encoding_for_any_segment_count) {
  std::set<size_t> segment_counts;
  for (size_t values : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{12}}) {
    capnp::MallocMessageBuilder builder(4, capnp::AllocationStrategy::FIXED_SIZE);  // tiny segments
    auto put = builder.initRoot<schema::ClientRequest>().initPut();
    put.setKey(as_data(std::string(100 * (values + 1), 'k')));
    if (values != 0) put.setValue(as_data(std::string(37 * values, 'v')));
    kj::Array<capnp::word> expected = capnp::messageToFlatArray(builder);
    std::vector<uint8_t> bytes = message_to_bytes(builder);
    segment_counts.insert(builder.getSegmentsForOutput().size());
    BOOST_REQUIRE_EQUAL(bytes.size(), expected.asBytes().size());
    BOOST_CHECK(std::equal(bytes.begin(), bytes.end(), expected.asBytes().begin()));
  }
  size_t odd = 0, even = 0;
  for (size_t count : segment_counts) (count % 2 ? odd : even) += 1;
  BOOST_CHECK_MESSAGE(odd > 0 && even > 0, "wanted odd and even segment counts above 1, got "
                                               << *segment_counts.begin() << ".." << *segment_counts.rbegin());
  capnp::MallocMessageBuilder single(64);
  single.initRoot<schema::ClientRequest>().initGet().setKey(as_data(std::string("key")));
  BOOST_REQUIRE_EQUAL(single.getSegmentsForOutput().size(), 1u);
  kj::Array<capnp::word> expected = capnp::messageToFlatArray(single);
  std::vector<uint8_t> bytes = message_to_bytes(single);
  BOOST_REQUIRE_EQUAL(bytes.size(), expected.asBytes().size());
  BOOST_CHECK(std::equal(bytes.begin(), bytes.end(), expected.asBytes().begin()));
}

// A put's encodings fit in their first segment: the sized builders hold the whole message.
BOOST_AUTO_TEST_CASE(a_put_encodes_in_one_segment) {
  ClientRequest request;
  request.op = ClientOp::put;
  request.key = std::string(16, 'k');
  request.value = std::string(100, 'v');
  std::vector<uint8_t> bytes = encode_client_request(request);
  BOOST_CHECK_EQUAL(bytes[0] | bytes[1] << 8 | bytes[2] << 16 | bytes[3] << 24, 0);  // segment count - 1
  Command command;
  command.kind = CommandKind::put;
  command.key = request.key;
  command.value = request.value;
  bytes = encode_command(command);
  BOOST_CHECK_EQUAL(bytes[0] | bytes[1] << 8 | bytes[2] << 16 | bytes[3] << 24, 0);
  CommandResult result;
  result.value = request.value;
  result.message = "ok";
  bytes = encode_results({result, result, result});
  BOOST_CHECK_EQUAL(bytes[0] | bytes[1] << 8 | bytes[2] << 16 | bytes[3] << 24, 0);
}

// encode_message builds in a per-thread scratch segment: a message too big for it, one that
// outgrows its estimate, and one encoded inside another's fill all come out right, and the
// scratch is zero again afterwards (the next message's bytes are a fresh builder's).
BOOST_AUTO_TEST_CASE(encode_message_reuses_its_scratch_safely) {
  auto put_of = [](size_t value_bytes) {
    ClientRequest request;
    request.op = ClientOp::put;
    request.key = "k";
    request.value = std::string(value_bytes, 'v');
    return request;
  };
  auto fill_put = [](capnp::MessageBuilder& builder, const ClientRequest& request) {
    auto put = builder.initRoot<schema::ClientRequest>().initPut();
    put.setKey(as_data(request.key));
    put.setValue(as_data(request.value));
  };
  for (size_t value_bytes : {size_t{3}, size_t{encode_scratch_words * 8 + 100}, size_t{5000}, size_t{3}}) {
    // An estimate of 4 words: a 5,000-byte value outgrows it inside the scratch, a value
    // larger than the scratch spills into a second segment.
    const ClientRequest request = put_of(value_bytes);
    std::vector<uint8_t> bytes = encode_message(4, [&](capnp::MessageBuilder& builder) {
      fill_put(builder, request);
      // Nested: encoded while the scratch is in use.
      std::vector<uint8_t> inner = encode_client_request(put_of(10));
      auto decoded_inner = decode_client_request(inner.data(), inner.size());
      BOOST_REQUIRE(decoded_inner.is_ok());
      BOOST_CHECK_EQUAL(decoded_inner->value, std::string(10, 'v'));
    });
    auto decoded = decode_client_request(bytes.data(), bytes.size());
    BOOST_REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
    BOOST_CHECK_EQUAL(decoded->value.size(), value_bytes);
    if (value_bytes < 8 * 1000) {
      capnp::MallocMessageBuilder fresh(4096);  // one segment, as the scratch gives
      fill_put(fresh, request);
      BOOST_CHECK(bytes == message_to_bytes(fresh));
    }
  }
  // Estimates beyond the first scratch grow it (a batch's encode); what follows, larger or
  // smaller, is encoded as a fresh builder of one segment would, so the grown scratch was
  // left zeroed and nothing of an earlier message shows through.
  for (size_t value_bytes : {size_t{100000}, size_t{3}, size_t{300000}, size_t{20000}, size_t{3}}) {
    const ClientRequest request = put_of(value_bytes);
    const unsigned estimate = first_segment_words(16, value_bytes + 1, 2);
    std::vector<uint8_t> bytes = encode_message(estimate, [&](capnp::MessageBuilder& builder) { fill_put(builder, request); });
    capnp::MallocMessageBuilder fresh(estimate);
    fill_put(fresh, request);
    BOOST_CHECK_MESSAGE(bytes == message_to_bytes(fresh), value_bytes << "-byte value");
    BOOST_CHECK_EQUAL(fresh.getSegmentsForOutput().size(), 1u);
  }
  // An estimate past the scratch's maximum gets a segment of its own.
  const ClientRequest huge = put_of(size_t{encode_scratch_words_max} * 8 + 64);
  const unsigned huge_estimate = first_segment_words(16, huge.value.size() + 1, 2);
  std::vector<uint8_t> bytes =
      encode_message(huge_estimate, [&](capnp::MessageBuilder& builder) { fill_put(builder, huge); });
  capnp::MallocMessageBuilder fresh(huge_estimate);
  fill_put(fresh, huge);
  BOOST_CHECK(bytes == message_to_bytes(fresh));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
