// raft::Message in Cap'n Proto (schema/raft.capnp). Decoding goes through read_message
// (storage/capnp_message.h), which aligns the input, bounds the traversal by the message's
// size and turns Cap'n Proto's exceptions into a corruption Status: none leaves this file.
#include "actors/raft_wire.h"

#include <string>

#include "schema/raft.capnp.h"
#include "storage/capnp_message.h"
#include "storage/codec.h"
#include "storage/entry_frame.h"
#include "storage/member_codec.h"

namespace keyval {
namespace {

const std::string where = "raft message";

constexpr bool same_number(schema::RaftMessageType wire, raft::MessageType type) {
  return static_cast<uint16_t>(wire) == static_cast<uint16_t>(type);
}
static_assert(same_number(schema::RaftMessageType::REQUEST_VOTE, raft::MessageType::request_vote) &&
                  same_number(schema::RaftMessageType::REQUEST_VOTE_RESPONSE,
                              raft::MessageType::request_vote_response) &&
                  same_number(schema::RaftMessageType::PRE_VOTE, raft::MessageType::pre_vote) &&
                  same_number(schema::RaftMessageType::PRE_VOTE_RESPONSE, raft::MessageType::pre_vote_response) &&
                  same_number(schema::RaftMessageType::APPEND_ENTRIES, raft::MessageType::append_entries) &&
                  same_number(schema::RaftMessageType::APPEND_ENTRIES_RESPONSE,
                              raft::MessageType::append_entries_response) &&
                  same_number(schema::RaftMessageType::INSTALL_SNAPSHOT, raft::MessageType::install_snapshot) &&
                  same_number(schema::RaftMessageType::SNAPSHOT_CHUNK, raft::MessageType::snapshot_chunk) &&
                  same_number(schema::RaftMessageType::SNAPSHOT_CHUNK_RESPONSE,
                              raft::MessageType::snapshot_chunk_response) &&
                  same_number(schema::RaftMessageType::TIMEOUT_NOW, raft::MessageType::timeout_now) &&
                  same_number(schema::RaftMessageType::PROBATION_QUERY, raft::MessageType::probation_query) &&
                  same_number(schema::RaftMessageType::PROBATION_ANSWER, raft::MessageType::probation_answer),
              "schema/raft.capnp numbers its types as raft::MessageType: the encoder casts one to the other");

bool is_known_type(uint16_t type) {
  return type >= static_cast<uint16_t>(raft::MessageType::request_vote) &&
         type <= static_cast<uint16_t>(raft::MessageType::probation_answer);
}

// Words of one segment that holds the whole message: the root pointer, the root struct, a
// chunk's padded data, per entry a list pointer and its padded frame (one word of slack for
// the frame list), and the member list.
// One segment keeps the encoding free of far pointers and of further segment table entries.
unsigned first_segment_words(const raft::Message& message) {
  size_t words = 1 + struct_words<schema::RaftMessage>() + 1 + (message.chunk_data.size() + 7) / 8;
  if (!message.entries.empty()) words += 1;  // slack: a list of Data has no tag word
  for (const Entry& entry : message.entries) words += 1 + (entry.frame().size() + 7) / 8;
  if (!message.configuration.empty()) words += 1;  // the member list's tag
  for (const Member& member : message.configuration) {
    words += struct_words<schema::Member>() + (member.address.size() + 8) / 8 + (member.client_address.size() + 8) / 8;
  }
  return static_cast<unsigned>(words);
}

void fill_frames(capnp::List<capnp::Data>::Builder list, const std::vector<Entry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::vector<uint8_t>& frame = entries[i].frame();
    list.set(static_cast<unsigned>(i), kj::arrayPtr(frame.data(), frame.size()));
  }
}

// Checks each frame before keeping it (storage/entry_frame.h check: its length, a log or
// configuration type, its CRC32C): TCP's own checksum is 16 bits and ends at the kernel, so an
// entry corrupted on its way (a NIC, a proxy, a bit flipped in a buffer) would otherwise be made
// durable and applied. A hostile list of empty elements is refused at its first element.
Status read_frames(capnp::List<capnp::Data>::Reader list, std::vector<Entry>* entries) {
  for (unsigned i = 0; i < list.size(); ++i) {
    auto frame = list[i];
    const std::string name = where + ": entry " + std::to_string(i);
    KV_ASSIGN_OR_RETURN(entry_frame::Header header, entry_frame::check(frame.begin(), frame.size(), 0, name));
    if (header.index == 0) return Status::corruption(name + " has index 0");
    entries->push_back(Entry::from_frame(std::make_shared<const std::vector<uint8_t>>(frame.begin(), frame.end())));
  }
  return Status::ok();
}

Status read_raft_message(schema::RaftMessage::Reader in, raft::Message* message) {
  auto type = static_cast<uint16_t>(in.getType());
  if (!is_known_type(type)) return Status::corruption(where + ": unknown message type " + std::to_string(type));
  // Node ids start at 1: 0 would be "nobody" (voted_for 0), never a sender or receiver.
  if (in.getFrom() == 0 || in.getTo() == 0) {
    return Status::corruption(where + ": node id 0 (from " + std::to_string(in.getFrom()) + ", to " +
                              std::to_string(in.getTo()) + ")");
  }
  message->type = static_cast<raft::MessageType>(type);
  message->from = in.getFrom();
  message->to = in.getTo();
  message->term = in.getTerm();
  message->last_log_index = in.getLastLogIndex();
  message->last_log_term = in.getLastLogTerm();
  message->vote_granted = in.getVoteGranted();
  message->prev_log_index = in.getPrevLogIndex();
  message->prev_log_term = in.getPrevLogTerm();
  message->leader_commit = in.getLeaderCommit();
  message->success = in.getSuccess();
  message->match_index = in.getMatchIndex();
  message->reject_index = in.getRejectIndex();
  message->conflict_term = in.getConflictTerm();
  message->conflict_index = in.getConflictIndex();
  message->read_context = in.getReadContext();
  message->snapshot_index = in.getSnapshotIndex();
  message->snapshot_term = in.getSnapshotTerm();
  message->chunk_offset = in.getChunkOffset();
  message->chunk_total_bytes = in.getChunkTotalBytes();
  message->chunk_done = in.getChunkDone();
  auto chunk_data = in.getChunkData();
  message->chunk_data.assign(chunk_data.begin(), chunk_data.end());
  message->chunk_error = in.getChunkError();
  message->chunk_round = in.getChunkRound();
  message->sequence = in.getSequence();
  message->incarnation = in.getIncarnation();
  message->leadership_transfer = in.getLeadershipTransfer();
  message->configuration = get_members(in.getConfiguration());
  message->probation_counted = in.getProbationCounted();
  return read_frames(in.getFrames(), &message->entries);
}

}  // namespace

// Does not check raft_message_bytes_max: the core bounds an append's entries by bytes, and
// the receiver's decoder refuses an oversized message whatever the sender did.
std::vector<uint8_t> encode_raft_message(const raft::Message& message) { return encode_raft_message(message, ""); }

std::vector<uint8_t> encode_raft_message(const raft::Message& message, const std::string& sender_client_address) {
  return encode_message(first_segment_words(message) + (sender_client_address.size() + 8) / 8, [&](capnp::MessageBuilder& builder) {
    auto out = builder.initRoot<schema::RaftMessage>();
    out.setType(static_cast<schema::RaftMessageType>(message.type));
    out.setFrom(message.from);
    out.setTo(message.to);
    out.setTerm(message.term);
    out.setLastLogIndex(message.last_log_index);
    out.setLastLogTerm(message.last_log_term);
    out.setVoteGranted(message.vote_granted);
    out.setPrevLogIndex(message.prev_log_index);
    out.setPrevLogTerm(message.prev_log_term);
    // A heartbeat leaves the list pointer null (read back as empty): no list tag word.
    if (!message.entries.empty()) {
      fill_frames(out.initFrames(static_cast<unsigned>(message.entries.size())), message.entries);
    }
    out.setLeaderCommit(message.leader_commit);
    out.setSuccess(message.success);
    out.setMatchIndex(message.match_index);
    out.setRejectIndex(message.reject_index);
    out.setConflictTerm(message.conflict_term);
    out.setConflictIndex(message.conflict_index);
    out.setReadContext(message.read_context);
    out.setSnapshotIndex(message.snapshot_index);
    out.setSnapshotTerm(message.snapshot_term);
    out.setChunkOffset(message.chunk_offset);
    out.setChunkTotalBytes(message.chunk_total_bytes);
    out.setChunkDone(message.chunk_done);
    // Left null (read back as empty) unless there are bytes, as the entry list.
    if (!message.chunk_data.empty()) out.setChunkData(kj::arrayPtr(message.chunk_data.data(), message.chunk_data.size()));
    out.setChunkError(message.chunk_error);
    out.setChunkRound(message.chunk_round);
    out.setSequence(message.sequence);
    out.setIncarnation(message.incarnation);
    out.setLeadershipTransfer(message.leadership_transfer);
    out.setProbationCounted(message.probation_counted);
    // Left null (read back as empty) unless it is an installSnapshot's or probationAnswer's.
    if (!message.configuration.empty()) {
      set_members(out.initConfiguration(static_cast<unsigned>(message.configuration.size())), message.configuration);
    }
    // Left null without an address, so the simulator's messages keep their bytes.
    if (!sender_client_address.empty()) {
      out.setSenderClientAddress(capnp::Text::Reader(sender_client_address.c_str(), sender_client_address.size()));
    }
  });
}

Result<raft::Message> decode_raft_message(const uint8_t* data, size_t bytes) {
  return decode_raft_message(data, bytes, nullptr);
}

Result<raft::Message> decode_raft_message(const uint8_t* data, size_t bytes, std::string* sender_client_address) {
  // Checked before read_message copies the bytes into an aligned buffer.
  if (bytes > raft_message_bytes_max) {
    return Status::corruption(where + ": " + std::to_string(bytes) + " bytes, over the bound of " +
                              std::to_string(raft_message_bytes_max));
  }
  raft::Message message;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto root = reader.getRoot<schema::RaftMessage>();
    KV_RETURN_IF_ERROR(read_raft_message(root, &message));
    if (sender_client_address == nullptr) return Status::ok();
    auto address = root.getSenderClientAddress();
    if (address.size() > sender_client_address_bytes_max) {
      return Status::corruption(where + ": sender client address of " + std::to_string(address.size()) +
                                " bytes, over the bound of " + std::to_string(sender_client_address_bytes_max));
    }
    sender_client_address->assign(address.cStr(), address.size());
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return message;
}

}  // namespace keyval
