// libFuzzer: every Cap'n Proto decoder of bytes that arrive from a socket or cross between
// actors: raft messages (actors/raft_wire.h, peer links), client requests and responses
// (actors/client_protocol.h, client connections and the client library), and the
// persistence actors' record batches, entry lists and recovered state (actors/record_batch.h),
// and the peer-link handshake's hello and reply (actors/peer_handshake.h, before any frame),
// and the batches of gets a listener sends its gateway and their answers (GetBatch).
// Each must return a Status on malformed input and never crash or read out of bounds; a raft
// message or client request that decodes must survive encode/decode unchanged in what it says.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/peer_handshake.h"
#include "actors/raft_wire.h"
#include "actors/record_batch.h"

using namespace keyval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t which = data[0] % 10;
  const std::vector<uint8_t> bytes(data + 1, data + size);
  switch (which) {
    case 0: {
      std::string address;
      auto message = decode_raft_message(bytes.data(), bytes.size(), &address);
      if (message.is_ok()) {
        auto again_bytes = encode_raft_message(*message, address);
        std::string again_address;
        auto again = decode_raft_message(again_bytes.data(), again_bytes.size(), &again_address);
        if (!again.is_ok() || again->type != message->type || again->term != message->term ||
            again->entries.size() != message->entries.size() || again_address != address) {
          __builtin_trap();
        }
      }
      break;
    }
    case 1: {
      auto request = decode_client_request(bytes.data(), bytes.size());
      if (request.is_ok()) {
        auto again_bytes = encode_client_request(*request);
        auto again = decode_client_request(again_bytes.data(), again_bytes.size());
        if (!again.is_ok() || again->request_id != request->request_id || again->op != request->op) __builtin_trap();
      }
      break;
    }
    case 2: (void)decode_client_response(bytes.data(), bytes.size()); break;
    case 3: (void)decode_record_batch(bytes, "fuzz"); break;
    case 4: (void)decode_entries(bytes, "fuzz"); break;
    case 5: {
      std::string summary;
      (void)decode_recovered_state(bytes, &summary);
      break;
    }
    case 6: {
      auto hello = decode_peer_hello(bytes.data(), bytes.size());
      if (hello.is_ok()) {
        auto again_bytes = encode_peer_hello(*hello);
        auto again = decode_peer_hello(again_bytes.data(), again_bytes.size());
        if (!again.is_ok() || again->dialer_id != hello->dialer_id || again->acceptor_id != hello->acceptor_id ||
            again->mode != hello->mode || again->dialer_nonce != hello->dialer_nonce) {
          __builtin_trap();
        }
      }
      break;
    }
    case 7: (void)decode_peer_reply(bytes.data(), bytes.size()); break;
    case 8: {
      auto batch = decode_get_batch(bytes.data(), bytes.size());
      if (batch.is_ok()) {
        auto again_bytes = encode_get_batch(batch->keys, batch->directory_known);
        auto again = decode_get_batch(again_bytes.data(), again_bytes.size());
        if (!again.is_ok() || again->keys != batch->keys || again->directory_known != batch->directory_known) {
          __builtin_trap();
        }
      }
      break;
    }
    case 9: {
      auto answer = decode_get_batch_answer(bytes.data(), bytes.size());
      if (answer.is_ok()) {
        auto again_bytes = encode_get_batch_answer(answer->header, answer->found, answer->values);
        auto again = decode_get_batch_answer(again_bytes.data(), again_bytes.size());
        const bool ok = answer->header.status == ClientStatus::ok;
        if (!again.is_ok() || again->header.status != answer->header.status ||
            (ok && (again->values != answer->values || again->found != answer->found))) {
          __builtin_trap();
        }
      }
      break;
    }
  }
  return 0;
}
