// Names of message types, for logs and test failures.
#include "raft/message.h"

namespace keyval::raft {

const char* message_type_name(MessageType type) {
  switch (type) {
    case MessageType::request_vote: return "request_vote";
    case MessageType::request_vote_response: return "request_vote_response";
    case MessageType::pre_vote: return "pre_vote";
    case MessageType::pre_vote_response: return "pre_vote_response";
    case MessageType::append_entries: return "append_entries";
    case MessageType::append_entries_response: return "append_entries_response";
    case MessageType::install_snapshot: return "install_snapshot";
    case MessageType::snapshot_chunk: return "snapshot_chunk";
    case MessageType::snapshot_chunk_response: return "snapshot_chunk_response";
    case MessageType::timeout_now: return "timeout_now";
    case MessageType::probation_query: return "probation_query";
    case MessageType::probation_answer: return "probation_answer";
  }
  return "unknown";
}

}  // namespace keyval::raft
